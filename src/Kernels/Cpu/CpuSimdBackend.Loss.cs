// CPU backend distillation loss: fused mean squared error (loss + gradient in one pass), Vector256 with double block sums.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FastRec.Kernels.Cpu;

public sealed partial class CpuSimdBackend
{
    /// <summary>Elements summed in float lanes before the block sum is added to the double total (fixed order).</summary>
    private const int MseBlock = 256;

    /// <inheritdoc/>
    public void MseForwardBackward(View<float> loss, View<float> dPred, View<float> pred, View<float> target, int N,
        float scale = 1f, bool accumulate = false)
    {
        Check.MseForwardBackward(loss, dPred, pred, target, N, scale);
        double sum = Mse(S(pred), S(target), S(dPred), (float)(2.0 * scale / N), accumulate);
        S(loss)[0] = (float)(scale * sum / N);
    }

    /// <summary>Returns Σ (p − t)² (blocks of <see cref="MseBlock"/> summed in float lanes, blocks added in double, in order);
    /// g (unless empty) = k·(p − t), or g += k·(p − t) when <paramref name="accumulate"/>. g may be p.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double Mse(ReadOnlySpan<float> p, ReadOnlySpan<float> t, Span<float> g, float k, bool accumulate)
    {
        int n = p.Length;
        bool grad = !g.IsEmpty;
        ref float pr = ref MemoryMarshal.GetReference(p);
        ref float tr = ref MemoryMarshal.GetReference(t);
        ref float gr = ref MemoryMarshal.GetReference(g);
        double total = 0;
        var vk = Vector256.Create(k);
        for (int b0 = 0; b0 < n; b0 += MseBlock)
        {
            int b1 = Math.Min(n, b0 + MseBlock), i = b0;
            float block = 0f;
            if (Vector256.IsHardwareAccelerated)
            {
                var acc = Vector256<float>.Zero;
                for (; i <= b1 - 8; i += 8)
                {
                    var d = Vector256.LoadUnsafe(ref pr, (nuint)i) - Vector256.LoadUnsafe(ref tr, (nuint)i);
                    acc = Vector256.FusedMultiplyAdd(d, d, acc);
                    if (grad)
                    {
                        var gi = d * vk;
                        if (accumulate) gi += Vector256.LoadUnsafe(ref gr, (nuint)i);
                        gi.StoreUnsafe(ref gr, (nuint)i);
                    }
                }
                block = Vector256.Sum(acc);
            }
            for (; i < b1; i++)
            {
                float d = Unsafe.Add(ref pr, i) - Unsafe.Add(ref tr, i);
                block = MathF.FusedMultiplyAdd(d, d, block);
                if (grad)
                {
                    float gi = d * k;
                    Unsafe.Add(ref gr, i) = accumulate ? Unsafe.Add(ref gr, i) + gi : gi;
                }
            }
            total += block;
        }
        return total;
    }
}
