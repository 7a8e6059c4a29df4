// LayerNorm kernels of the ILGPU backend (post-LN residual add + LayerNorm): one warp per row, deterministic δγ, δβ partials.
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu.Kernels;

/// <summary>Arguments of the LayerNorm kernels.</summary>
internal struct LnArgs
{
    /// <summary>Threads per row: the warp size on a GPU (warp-shuffle reductions), 1 on the CPU accelerator.</summary>
    public int Width;
    public int N, C, HasB;
    public float Eps;
}

/// <summary>Residual add + LayerNorm forward and backward, one row per <see cref="LnArgs.Width"/> threads (see
/// <see cref="ReductionKernels"/>); δγ, δβ via column-chunk partials finished by <see cref="ReductionKernels.ColSumFinish"/>.</summary>
internal static class LayerNormKernels
{
    /// <summary>x = a (+ b) into sum; out = (x − mean)·rstd·γ + β; saves mean, rstd (population variance, two passes).</summary>
    public static void LayerNormForward(ArrayView<float> output, ArrayView<float> sum, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> a, ArrayView<float> b, ArrayView<float> gamma, ArrayView<float> beta, LnArgs p)
    {
        int row = ReductionKernels.RowOf(p.Width);
        if (row >= p.N) return;
        int lane = ReductionKernels.LaneOf(p.Width), ws = p.Width, o = row * p.C;
        float s = 0f;
        for (int c = lane; c < p.C; c += ws)
        {
            float x = a[o + c];
            if (p.HasB != 0) x += b[o + c];
            sum[o + c] = x;
            s += x;
        }
        float mu = GpuMath.WarpSum(p.Width, s) / p.C;
        float v = 0f;
        for (int c = lane; c < p.C; c += ws) { float d = sum[o + c] - mu; v += d * d; }
        float rs = 1f / XMath.Sqrt(GpuMath.WarpSum(p.Width, v) / p.C + p.Eps);
        for (int c = lane; c < p.C; c += ws)
            output[o + c] = (sum[o + c] - mu) * rs * gamma[c] + beta[c];
        if (lane == 0) { mean[row] = mu; rstd[row] = rs; }
    }

    /// <summary>dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) with dx̂ = δout·γ (assigned).</summary>
    public static void LayerNormBackward(ArrayView<float> dx, ArrayView<float> dOut, ArrayView<float> sum, ArrayView<float> gamma,
        ArrayView<float> mean, ArrayView<float> rstd, LnArgs p)
    {
        int row = ReductionKernels.RowOf(p.Width);
        if (row >= p.N) return;
        int lane = ReductionKernels.LaneOf(p.Width), ws = p.Width, o = row * p.C;
        float mu = mean[row], rs = rstd[row];
        float s1 = 0f, s2 = 0f;
        for (int c = lane; c < p.C; c += ws)
        {
            float xh = (sum[o + c] - mu) * rs;
            float g = dOut[o + c] * gamma[c];
            s1 += g;
            s2 += g * xh;
        }
        float m1 = GpuMath.WarpSum(p.Width, s1) / p.C, m2 = GpuMath.WarpSum(p.Width, s2) / p.C;
        for (int c = lane; c < p.C; c += ws)
        {
            float xh = (sum[o + c] - mu) * rs;
            float g = dOut[o + c] * gamma[c];
            dx[o + c] = rs * (g - m1 - xh * m2);
        }
    }

    /// <summary>Stage 1 of δγ, δβ: partial[0 | 1][chunk, c] = Σ over the chunk's rows of δout·x̂ | δout.</summary>
    public static void LayerNormParamPartial(ArrayView<float> partial, ArrayView<float> dOut, ArrayView<float> sum,
        ArrayView<float> mean, ArrayView<float> rstd, int n, int cdim)
    {
        var sh = SharedMemory.Allocate<float>(2 * ReductionKernels.Threads);
        int lane = Group.IdxX & 31, slice = Group.IdxX >> 5, slices = Group.DimX >> 5;
        int col = Grid.IdxX * 32 + lane, r0 = Grid.IdxY * ReductionKernels.ColChunk;
        float sg = 0f, sb = 0f;
        if (col < cdim)
            for (int k = 0; k < ReductionKernels.ColChunk / slices; k++)
            {
                int r = r0 + slice + slices * k;
                if (r < n)
                {
                    float d = dOut[r * cdim + col];
                    sg += d * (sum[r * cdim + col] - mean[r]) * rstd[r];
                    sb += d;
                }
            }
        sh[Group.IdxX] = sg;
        sh[ReductionKernels.Threads + Group.IdxX] = sb;
        Group.Barrier();
        if (slice == 0 && col < cdim)
        {
            float tg = 0f, tb = 0f;
            for (int k = 0; k < slices; k++) { tg += sh[k * 32 + lane]; tb += sh[ReductionKernels.Threads + k * 32 + lane]; }
            int chunks = Grid.DimY;
            partial[Grid.IdxY * cdim + col] = tg;
            partial[(chunks + Grid.IdxY) * cdim + col] = tb;
        }
    }
}
