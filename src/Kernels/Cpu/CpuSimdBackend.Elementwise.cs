// CPU backend elementwise ops: activations (GELU erf form, ReLU, tanh, identity) and dropout, forward and backward.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FastRec.Kernels.Cpu;

public sealed partial class CpuSimdBackend
{
    private const int Chunk = 512; // elements per stack chunk where an op needs a temporary

    /// <inheritdoc/>
    public void ActivationForward(Activation act, View<float> output, View<float> input)
    {
        if (input.IsNone || input.Length == 0) throw new ShapeException("input: required tensor is missing or empty");
        Check.Len(output, input.Length, "input.Length");
        ReadOnlySpan<float> x = S(input);
        Span<float> y = S(output);
        switch (act)
        {
            case Activation.Gelu: SimdLoop.Map<GeluOp>(x, y); break;
            case Activation.Relu: SimdLoop.Map<ReluOp>(x, y); break;
            case Activation.Tanh: TensorPrimitives.Tanh(x, y); break;
            case Activation.Identity: x.CopyTo(y); break;
            default: throw new ArgumentOutOfRangeException(nameof(act), act, "act: unknown activation");
        }
    }

    /// <inheritdoc/>
    public void ActivationBackward(Activation act, View<float> dInput, View<float> dOutput, View<float> input)
    {
        if (input.IsNone || input.Length == 0) throw new ShapeException("input: required tensor is missing or empty");
        Check.Len(dInput, input.Length, "input.Length");
        Check.Len(dOutput, input.Length, "input.Length");
        ReadOnlySpan<float> x = S(input), dy = S(dOutput);
        Span<float> dx = S(dInput);
        switch (act)
        {
            case Activation.Gelu: SimdLoop.Map<GeluBackwardOp>(dy, x, dx); break;
            case Activation.Relu: SimdLoop.Map<ReluBackwardOp>(dy, x, dx); break;
            case Activation.Tanh:
            {
                // t = tanh(x) per stack chunk, then δin = δout·(1 − t²); chunking keeps δin aliasing δout safe.
                Span<float> t = stackalloc float[Chunk];
                for (int i = 0; i < x.Length; i += Chunk)
                {
                    int n = Math.Min(Chunk, x.Length - i);
                    TensorPrimitives.Tanh(x.Slice(i, n), t[..n]);
                    SimdLoop.Map<TanhBackwardOp>(dy.Slice(i, n), t[..n], dx.Slice(i, n));
                }
                break;
            }
            case Activation.Identity: dy.CopyTo(dx); break;
            default: throw new ArgumentOutOfRangeException(nameof(act), act, "act: unknown activation");
        }
    }

    /// <inheritdoc/>
    public void DropoutForward(View<float> output, View<float> input, DropoutSpec dropout)
    {
        if (input.IsNone || input.Length == 0) throw new ShapeException("input: required tensor is missing or empty");
        Check.Len(output, input.Length, "input.Length");
        CheckDropout(dropout);
        Dropout(S(output), S(input), dropout, 0);
    }

    /// <inheritdoc/>
    public void DropoutBackward(View<float> dInput, View<float> dOutput, DropoutSpec dropout)
    {
        if (dOutput.IsNone || dOutput.Length == 0) throw new ShapeException("dOutput: required tensor is missing or empty");
        Check.Len(dInput, dOutput.Length, "dOutput.Length");
        CheckDropout(dropout);
        Dropout(S(dInput), S(dOutput), dropout, 0);
    }

    private static void CheckDropout(DropoutSpec d)
    {
        if (!(d.P >= 0f && d.P < 1f))
            throw new ArgumentOutOfRangeException(nameof(d), d.P, $"dropout: probability P must be in [0, 1), got {d.P}");
    }

    /// <summary>y[i] = keep(first + i) ? x[i]/(1−p) : 0; a copy when dropout is off. y may be x.
    /// The keep decisions are exactly <see cref="Rng.Keep"/>'s, computed 8 at a time (see <see cref="SimdRng"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Dropout(Span<float> y, ReadOnlySpan<float> x, in DropoutSpec d, long first)
    {
        if (!d.IsOn)
        {
            x.CopyTo(y);
            return;
        }
        float scale = (float)(1.0 / (1.0 - d.P)); // in double: 1f - P would round first
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float yr = ref MemoryMarshal.GetReference(y);
        int n = x.Length, i = 0;
        if (SimdRng.IsAccelerated && n >= 8)
        {
            var keep = new SimdRng.KeepStream(d, first);
            Vector256<float> vs = Vector256.Create(scale);
            for (; i <= n - 8; i += 8)
                ((Vector256.LoadUnsafe(ref xr, (nuint)i) * vs) & keep.Next8()).StoreUnsafe(ref yr, (nuint)i);
        }
        for (; i < n; i++)
            Unsafe.Add(ref yr, i) = Rng.Keep(d, first + i) ? Unsafe.Add(ref xr, i) * scale : 0f;
    }
}
