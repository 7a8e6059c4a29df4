// ILGPU kernels of the fused mean squared error (distillation): deterministic two-stage sum, gradient in stage 1.
using ILGPU;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu.Kernels;

/// <summary>Arguments of <see cref="MseKernels"/>: K = 2·scale/N (gradient factor), LossScale = scale/N.</summary>
internal struct MseArgs
{
    public int N, HasGrad, Accumulate;
    public float K, LossScale;
}

/// <summary>
/// <see cref="IBackend.MseForwardBackward"/> on ILGPU: stage 1 over a grid of groups (gradient written, partial sums of
/// squares per group), stage 2 in one group. Groups are a power of two ≤ <see cref="Threads"/> threads (256 on a GPU, 32 on
/// the CPU accelerator); the partition depends only on N, so the same N always sums in the same order.
/// </summary>
internal static class MseKernels
{
    public const int Threads = 256;

    /// <summary>Deterministic tree sum over the group's threads (a power of two ≤ <see cref="Threads"/>); every thread gets the total.</summary>
    private static float GroupSum(ArrayView<float> sh, float v)
    {
        int tid = Group.IdxX;
        sh[tid] = v;
        Group.Barrier();
        for (int s = Group.DimX / 2; s > 0; s >>= 1)
        {
            if (tid < s) sh[tid] += sh[tid + s];
            Group.Barrier();
        }
        float total = sh[0];
        Group.Barrier();
        return total;
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
        float t = GroupSum(sh, s);
        if (Group.IdxX == 0) partial[Grid.IdxX] = t;
    }

    /// <summary>Stage 2 (one group): loss[0] = LossScale · Σ partials, summed in a fixed tree.</summary>
    public static void MseFinish(ArrayView<float> loss, ArrayView<float> partial, int parts, MseArgs p)
    {
        var sh = SharedMemory.Allocate<float>(Threads);
        float s = 0f;
        for (int i = Group.IdxX; i < parts; i += Group.DimX) s += partial[i];
        float t = GroupSum(sh, s);
        if (Group.IdxX == 0) loss[0] = p.LossScale * t;
    }
}
