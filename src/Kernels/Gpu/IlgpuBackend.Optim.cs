// ILGPU backend optimiser: deterministic global gradient norm, multi-tensor AdamW with clipping.
using FastRec.Kernels.Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu;

public sealed partial class IlgpuBackend
{
    // ---------------------------------------------------------------- optimiser

    /// <inheritdoc/>
    public void GlobalNorm(View<float> norm, View<float> grads)
    {
        Check.GlobalNorm(norm, grads);
        var g = Arr(grads);
        var nv = Arr(norm);
        int n = grads.Length;
        // the partition depends only on n: the same length always sums in the same order
        int parts = Math.Clamp(Ceil(n, 16 * _reduceGroup), 1, 256);
        var partial = ScratchF(parts);
        Run(SumSquaresPartial)(_stream, new KernelConfig(new Index1D(parts), new Index1D(_reduceGroup)), partial, g, n);
        Run(SumSquaresFinish)(_stream, new KernelConfig(new Index1D(1), new Index1D(_reduceGroup)), nv, partial, parts);
    }

    /// <inheritdoc/>
    public void AdamW(View<float> param, View<float> grad, View<float> m, View<float> v, View<AdamSegment> segments,
                      View<float> norm, float maxNorm, float lr, float beta1, float beta2, float eps, int step)
    {
        Check.AdamW(param, grad, m, v, segments, norm, maxNorm, beta1, beta2, step);
        int n = param.Length;
        Arr(segments);
        // segments are validated from the buffer's host mirror (kept by Upload): no device round-trip
        var segs = ((GpuBuffer<AdamSegment>)segments.Buffer!).Mirror!.AsSpan(checked((int)segments.Offset), segments.Length);
        int maxLen = Check.AdamSegments(segs, n);
        if (segs.Length == 0 || maxLen == 0) return;
        var p = new AdamArgs
        {
            Length = n, MaxNorm = maxNorm, Lr = lr, Beta1 = beta1, Beta2 = beta2, Eps = eps,
            Bc1 = (float)(1.0 - Math.Pow(beta1, step)), Bc2 = (float)(1.0 - Math.Pow(beta2, step)),
        };
        int gx = Math.Clamp(Ceil(maxLen, 4 * _reduceGroup), 1, 256);
        Run(AdamWUpdate)(_stream, new KernelConfig(new Index2D(gx, segs.Length), new Index2D(_reduceGroup, 1)),
               Arr(param), Arr(grad), Arr(m), Arr(v), Arr(segments), norm.IsNone ? _dummyF.ViewOf(0, 1) : Arr(norm), p);
    }
}
