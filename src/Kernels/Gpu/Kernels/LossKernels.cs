// Loss kernels of the ILGPU backend: fused sigmoid + weighted BCE (one group), fused MSE (deterministic two-stage sum).
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu.Kernels;

/// <summary>Arguments of <see cref="LossKernels.Bce"/>.</summary>
internal struct BceArgs
{
    public int N, HasWeights, HasGrad, Accumulate;
    public float Temperature, Scale;
}

/// <summary>Arguments of <see cref="LossKernels"/>: K = 2·scale/N (gradient factor), LossScale = scale/N.</summary>
internal struct MseArgs
{
    public int N, HasGrad, Accumulate;
    public float K, LossScale;
}

/// <summary>
/// <see cref="IBackend.BceForwardBackward"/> on ILGPU: one group sums the weighted loss and the weights, then writes the
/// gradient. <see cref="IBackend.MseForwardBackward"/> on ILGPU: stage 1 over a grid of groups (gradient written, partial sums of
/// squares per group), stage 2 in one group. Groups are a power of two ≤ <see cref="Threads"/> threads (256 on a GPU, 32 on
/// the CPU accelerator); the partition depends only on N, so the same N always sums in the same order.
/// </summary>
internal static class LossKernels
{
    public const int Threads = 256;

    /// <summary>One group: loss[0] = scale·Σ w·ℓ / Σ w and δlogits = scale·w·(σ(z) − y)/(T·Σ w) (=|+=).</summary>
    public static void Bce(ArrayView<float> loss, ArrayView<float> dLogits, ArrayView<float> logits, ArrayView<float> targets,
        ArrayView<float> weights, BceArgs p)
    {
        var sh = SharedMemory.Allocate<float>(Threads);
        int tid = Group.IdxX;
        float sl = 0f, sw = 0f;
        for (int i = tid; i < p.N; i += Group.DimX)
        {
            float w = p.HasWeights != 0 ? weights[i] : 1f;
            float z = logits[i] / p.Temperature, y = targets[i];
            float l = XMath.Max(z, 0f) - z * y + GpuMath.Log1p(XMath.Exp(-XMath.Abs(z)));
            sl += w * l;
            sw += w;
        }
        float totalL = GpuMath.GroupSum(sh, sl);
        float totalW = GpuMath.GroupSum(sh, sw);
        if (tid == 0) loss[0] = p.Scale * totalL / totalW;
        if (p.HasGrad == 0) return;
        float k = p.Scale / (p.Temperature * totalW);
        for (int i = tid; i < p.N; i += Group.DimX)
        {
            float w = p.HasWeights != 0 ? weights[i] : 1f;
            float z = logits[i] / p.Temperature;
            float g = k * w * (GpuMath.Sigmoid(z) - targets[i]);
            dLogits[i] = p.Accumulate != 0 ? dLogits[i] + g : g;
        }
    }

    /// <summary>Stage 1: partial[g] = Σ d² over group g's grid-strided elements (d = pred − target);
    /// δpred[i] (=|+=) K·d when HasGrad. δpred may alias pred (each thread reads its element before writing it).</summary>
    public static void MsePartial(ArrayView<float> partial, ArrayView<float> dPred, ArrayView<float> pred, ArrayView<float> target, MseArgs p)
    {
        var sh = SharedMemory.Allocate<float>(Threads);
        float s = 0f;
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < p.N; i += stride)
        {
            float d = pred[i] - target[i];
            s += d * d;
            if (p.HasGrad != 0)
            {
                float g = p.K * d;
                dPred[i] = p.Accumulate != 0 ? dPred[i] + g : g;
            }
        }
        float t = GpuMath.GroupSum(sh, s);
        if (Group.IdxX == 0) partial[Grid.IdxX] = t;
    }

    /// <summary>Stage 2 (one group): loss[0] = LossScale · Σ partials, summed in a fixed tree.</summary>
    public static void MseFinish(ArrayView<float> loss, ArrayView<float> partial, int parts, MseArgs p)
    {
        var sh = SharedMemory.Allocate<float>(Threads);
        float s = 0f;
        for (int i = Group.IdxX; i < parts; i += Group.DimX) s += partial[i];
        float t = GpuMath.GroupSum(sh, s);
        if (Group.IdxX == 0) loss[0] = p.LossScale * t;
    }
}
