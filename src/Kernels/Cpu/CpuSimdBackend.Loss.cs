// CPU backend losses (loss + gradient in one pass): fused sigmoid + weighted BCE, mean squared error (Vector256, double block sums).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FastRec.Kernels.Cpu;

public sealed partial class CpuSimdBackend
{
    /// <inheritdoc/>
    public void BceForwardBackward(View<float> loss, View<float> dLogits, View<float> logits, View<float> targets, View<float> weights,
        int N, float temperature = 1f, float scale = 1f, bool accumulate = false)
    {
        Check.BceForwardBackward(loss, dLogits, logits, targets, weights, N, temperature);
        ReadOnlySpan<float> z0 = S(logits), y = S(targets), w = S(weights);
        Span<float> g = S(dLogits);
        bool hasW = !weights.IsNone;
        double sumW = N;
        if (hasW)
        {
            sumW = 0;
            for (int i = 0; i < N; i++) sumW += w[i];
        }
        double invT = 1.0 / temperature;
        double lossSum = 0;
        float gScale = (float)(scale / (temperature * sumW));
        for (int i = 0; i < N; i++)
        {
            double z = z0[i] * invT;
            double yi = y[i];
            double wi = hasW ? w[i] : 1.0;
            double e = Math.Exp(-Math.Abs(z));                    // in (0, 1], no overflow for any |z|
            lossSum += wi * (Math.Max(z, 0) - z * yi + Math.Log(1 + e)); // log1p(e): absolute error ~1e-16 in double
            double sig = z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            if (!g.IsEmpty)
            {
                float gi = (float)(wi * (sig - yi)) * gScale;
                g[i] = accumulate ? g[i] + gi : gi;
            }
        }
        S(loss)[0] = (float)(scale * lossSum / sumW);
    }

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
