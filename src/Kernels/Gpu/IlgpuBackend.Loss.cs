// ILGPU backend losses: fused sigmoid + weighted BCE, fused mean squared error (distillation).
using FastRec.Kernels.Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu;

public sealed partial class IlgpuBackend
{
    // ---------------------------------------------------------------- BCE

    /// <inheritdoc/>
    public void BceForwardBackward(View<float> loss, View<float> dLogits, View<float> logits, View<float> targets, View<float> weights,
                                   int N, float temperature = 1f, float scale = 1f, bool accumulate = false)
    {
        Check.BceForwardBackward(loss, dLogits, logits, targets, weights, N, temperature);
        var p = new BceArgs
        {
            N = N, HasWeights = weights.IsNone ? 0 : 1, HasGrad = dLogits.IsNone ? 0 : 1, Accumulate = accumulate ? 1 : 0,
            Temperature = temperature, Scale = scale,
        };
        Run(Bce)(_stream, new KernelConfig(new Index1D(1), new Index1D(_reduceGroup)),
             Arr(loss), Opt(dLogits), Arr(logits), Arr(targets), Opt(weights), p);
    }

    // ---------------------------------------------------------------- mean squared error

    /// <inheritdoc/>
    public void MseForwardBackward(View<float> loss, View<float> dPred, View<float> pred, View<float> target, int N,
                                   float scale = 1f, bool accumulate = false)
    {
        Check.MseForwardBackward(loss, dPred, pred, target, N, scale);
        var p = new MseArgs
        {
            N = N, HasGrad = dPred.IsNone ? 0 : 1, Accumulate = accumulate ? 1 : 0,
            K = (float)(2.0 * scale / N), LossScale = (float)((double)scale / N),
        };
        // the partition depends only on N: the same length always sums in the same order
        int parts = Math.Clamp(Ceil(N, 16 * _reduceGroup), 1, 256);
        var partial = ScratchF(parts);
        Run(MsePartial)(_stream, new KernelConfig(new Index1D(parts), new Index1D(_reduceGroup)), partial, Opt(dPred), Arr(pred), Arr(target), p);
        Run(MseFinish)(_stream, new KernelConfig(new Index1D(1), new Index1D(_reduceGroup)), Arr(loss), partial, parts, p);
    }
}
