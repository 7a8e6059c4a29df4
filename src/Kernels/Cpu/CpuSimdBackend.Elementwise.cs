// CPU backend elementwise ops: activations (GELU erf form, ReLU, tanh, identity) and dropout, forward and backward.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FastRec.Kernels.Cpu;

public sealed partial class CpuSimdBackend
{
    /// <inheritdoc/>
    public void ActivationForward(Activation act, View<float> output, View<float> input)
    {
        Check.ActivationForward(act, output, input);
        RunActivation(act, false, S(input), default, S(output));
    }

    /// <inheritdoc/>
    public void ActivationBackward(Activation act, View<float> dInput, View<float> dOutput, View<float> input)
    {
        Check.ActivationBackward(act, dInput, dOutput, input);
        RunActivation(act, true, S(input), S(dOutput), S(dInput));
    }

    private static void RunActivation(Activation act, bool backward, ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> y)
    {
        var job = new ActivationJob { Act = act, Backward = backward, X = x, DOut = dy, Out = y };
        CpuParallel.ForRange(Blocks(x.Length), ref job, Parts(x.Length));
    }

    /// <summary>Activation forward (Out = act(X)) or backward (Out = DOut·act'(X)) over blocks of <see cref="Block"/> elements.</summary>
    private ref struct ActivationJob : IParallelRangeJob
    {
        public Activation Act;
        public bool Backward;
        public ReadOnlySpan<float> X, DOut;
        public Span<float> Out;

        public readonly void Execute(int start, int end, int part)
        {
            int s = start * Block, e = Math.Min(end * Block, X.Length);
            ReadOnlySpan<float> x = X[s..e];
            Span<float> y = Out[s..e];
            if (!Backward)
            {
                switch (Act)
                {
                    case Activation.Gelu: SimdLoop.Map<GeluOp>(x, y); break;
                    case Activation.Relu: SimdLoop.Map<ReluOp>(x, y); break;
                    case Activation.Tanh: SimdLoop.Map<TanhOp>(x, y); break;
                    default: x.CopyTo(y); break;
                }
                return;
            }
            ReadOnlySpan<float> dy = DOut[s..e];
            switch (Act)
            {
                case Activation.Gelu: SimdLoop.Map<GeluBackwardOp>(dy, x, y); break;
                case Activation.Relu: SimdLoop.Map<ReluBackwardOp>(dy, x, y); break;
                case Activation.Tanh: SimdLoop.Map<TanhBackwardFromInputOp>(dy, x, y); break;
                default: dy.CopyTo(y); break;
            }
        }
    }

    /// <inheritdoc/>
    public void DropoutForward(View<float> output, View<float> input, DropoutSpec dropout)
    {
        Check.DropoutForward(output, input, dropout);
        RunDropout(S(output), S(input), dropout);
    }

    /// <inheritdoc/>
    public void DropoutBackward(View<float> dInput, View<float> dOutput, DropoutSpec dropout)
    {
        Check.DropoutBackward(dInput, dOutput, dropout);
        RunDropout(S(dInput), S(dOutput), dropout);
    }

    private static void RunDropout(Span<float> y, ReadOnlySpan<float> x, in DropoutSpec d)
    {
        var job = new DropoutJob { X = x, Y = y, D = d };
        CpuParallel.ForRange(Blocks(x.Length), ref job, Parts(x.Length));
    }

    /// <summary><see cref="Dropout"/> over blocks of <see cref="Block"/> elements (element i keeps its counter i).</summary>
    private ref struct DropoutJob : IParallelRangeJob
    {
        public ReadOnlySpan<float> X;
        public Span<float> Y;
        public DropoutSpec D;

        public readonly void Execute(int start, int end, int part)
        {
            int s = start * Block, e = Math.Min(end * Block, X.Length);
            Dropout(Y[s..e], X[s..e], D, s);
        }
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
