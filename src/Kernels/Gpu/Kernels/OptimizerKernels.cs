// Optimiser kernels of the ILGPU backend: deterministic global norm, multi-tensor AdamW.
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu.Kernels;

/// <summary>Arguments of <see cref="OptimizerKernels.AdamW"/>; Bc1, Bc2 = 1 − β^step (computed on the host in double).</summary>
internal struct AdamArgs
{
    public int Length;
    public float MaxNorm, Lr, Beta1, Beta2, Eps, Bc1, Bc2;
}

internal static class OptimizerKernels
{
    public const int Threads = 256;

    /// <summary>Stage 1 of the global norm: partial[g] = Σ x² over the grid-strided elements of group g.</summary>
    public static void SumSquaresPartial(ArrayView<float> partial, ArrayView<float> x, int n)
    {
        var sh = SharedMemory.Allocate<float>(Threads);
        float s = 0f;
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride) { float v = x[i]; s += v * v; }
        float t = GpuMath.GroupSum(sh, s);
        if (Group.IdxX == 0) partial[Grid.IdxX] = t;
    }

    /// <summary>Stage 2 (one group): norm[0] = sqrt(Σ partials), partials summed in a fixed tree.</summary>
    public static void SumSquaresFinish(ArrayView<float> norm, ArrayView<float> partial, int parts)
    {
        var sh = SharedMemory.Allocate<float>(Threads);
        float s = 0f;
        for (int i = Group.IdxX; i < parts; i += Group.DimX) s += partial[i];
        float t = GpuMath.GroupSum(sh, s);
        if (Group.IdxX == 0) norm[0] = XMath.Sqrt(t);
    }

    /// <summary>AdamW over segment Grid.IdxY, its elements strided over Grid.DimX groups; clipping read from norm[0].</summary>
    public static void AdamW(ArrayView<float> param, ArrayView<float> grad, ArrayView<float> m, ArrayView<float> v,
        ArrayView<AdamSegment> segments, ArrayView<float> norm, AdamArgs p)
    {
        AdamSegment s = segments[Grid.IdxY];
        if (s.LrScale == 0f || s.Offset < 0 || s.Length <= 0 || s.Offset > p.Length - s.Length) return;
        float clip = 1f;
        if (p.MaxNorm > 0f) clip = XMath.Min(1f, p.MaxNorm / (norm[0] + 1e-6f));
        float lr = p.Lr * s.LrScale;
        float decay = 1f - lr * s.WeightDecay;
        int stride = Grid.DimX * Group.DimX;
        for (int k = Grid.IdxX * Group.DimX + Group.IdxX; k < s.Length; k += stride)
        {
            int i = s.Offset + k;
            float g = grad[i] * clip;
            float mi = p.Beta1 * m[i] + (1f - p.Beta1) * g;
            float vi = p.Beta2 * v[i] + (1f - p.Beta2) * g * g;
            m[i] = mi;
            v[i] = vi;
            float pi = param[i] * decay;
            param[i] = pi - lr * (mi / p.Bc1) / (XMath.Sqrt(vi / p.Bc2) + p.Eps);
        }
    }
}
