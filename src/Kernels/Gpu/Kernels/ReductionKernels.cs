// Row and column reductions of the ILGPU backend: LayerNorm and softmax (one warp per row), deterministic column sums.
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

/// <summary>Arguments of the softmax kernels: rows = B·NH·T, each of length T.</summary>
internal struct SoftmaxArgs
{
    /// <summary>Threads per row (see <see cref="LnArgs.Width"/>).</summary>
    public int Width;
    public int Rows, T, RowsPerBatch, HasMask;
    public float Scale;
}

/// <summary>Row reductions give each row Width threads: a warp on a GPU (lanes stride the row, warp-shuffle butterflies
/// reduce), one thread on the CPU accelerator (no cross-thread traffic; its shuffles are OS-thread barriers).
/// Column sums are two-stage and deterministic: stage 1 reduces chunks of <see cref="ColChunk"/> rows in groups of
/// 32 columns × (group size / 32) row slices (8 on a GPU, 1 on the CPU accelerator) into partials (⌈N/64⌉, C);
/// stage 2 adds the partials in chunk order.</summary>
internal static class ReductionKernels
{
    public const int Threads = 256, RowsPerGroup = 8, ColChunk = 64;

    /// <summary>Row of the calling thread when <paramref name="width"/> consecutive threads (a warp, or one thread) share a row.</summary>
    private static int RowOf(int width) => Grid.GlobalIndex.X / width;

    /// <summary>Lane of the calling thread within its row's threads.</summary>
    private static int LaneOf(int width) => Grid.GlobalIndex.X % width;

    /// <summary>x = a (+ b) into sum; out = (x − mean)·rstd·γ + β; saves mean, rstd (population variance, two passes).</summary>
    public static void LayerNormForward(ArrayView<float> output, ArrayView<float> sum, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> a, ArrayView<float> b, ArrayView<float> gamma, ArrayView<float> beta, LnArgs p)
    {
        int row = RowOf(p.Width);
        if (row >= p.N) return;
        int lane = LaneOf(p.Width), ws = p.Width, o = row * p.C;
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
        int row = RowOf(p.Width);
        if (row >= p.N) return;
        int lane = LaneOf(p.Width), ws = p.Width, o = row * p.C;
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
        var sh = SharedMemory.Allocate<float>(2 * Threads);
        int lane = Group.IdxX & 31, slice = Group.IdxX >> 5, slices = Group.DimX >> 5;
        int col = Grid.IdxX * 32 + lane, r0 = Grid.IdxY * ColChunk;
        float sg = 0f, sb = 0f;
        if (col < cdim)
            for (int k = 0; k < ColChunk / slices; k++)
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
        sh[Threads + Group.IdxX] = sb;
        Group.Barrier();
        if (slice == 0 && col < cdim)
        {
            float tg = 0f, tb = 0f;
            for (int k = 0; k < slices; k++) { tg += sh[k * 32 + lane]; tb += sh[Threads + k * 32 + lane]; }
            int chunks = Grid.DimY;
            partial[Grid.IdxY * cdim + col] = tg;
            partial[(chunks + Grid.IdxY) * cdim + col] = tb;
        }
    }

    /// <summary>Stage 1 of a column sum: partial[chunk, c] = Σ over the chunk's rows of x[r, c].</summary>
    public static void ColSumPartial(ArrayView<float> partial, ArrayView<float> x, int n, int cdim)
    {
        var sh = SharedMemory.Allocate<float>(Threads);
        int lane = Group.IdxX & 31, slice = Group.IdxX >> 5, slices = Group.DimX >> 5;
        int col = Grid.IdxX * 32 + lane, r0 = Grid.IdxY * ColChunk;
        float s = 0f;
        if (col < cdim)
            for (int k = 0; k < ColChunk / slices; k++)
            {
                int r = r0 + slice + slices * k;
                if (r < n) s += x[r * cdim + col];
            }
        sh[Group.IdxX] = s;
        Group.Barrier();
        if (slice == 0 && col < cdim)
        {
            float t = 0f;
            for (int k = 0; k < slices; k++) t += sh[k * 32 + lane];
            partial[Grid.IdxY * cdim + col] = t;
        }
    }

    /// <summary>Stage 2: dst[c] += Σ_chunk partial[chunk, c], chunks in order.</summary>
    public static void ColSumFinish(ArrayView<float> dst, ArrayView<float> partial, int chunks, int cdim)
    {
        for (int col = Grid.GlobalIndex.X; col < cdim; col += ElementwiseKernels.Stride)
        {
            float t = 0f;
            for (int k = 0; k < chunks; k++) t += partial[k * cdim + col];
            dst[col] += t;
        }
    }

    /// <summary>probs = softmax_j(scale·scores + mask) per row; masked keys get 0, a fully masked row is all 0. May alias.</summary>
    public static void SoftmaxForward(ArrayView<float> probs, ArrayView<float> scores, ArrayView<float> mask, SoftmaxArgs p)
    {
        int row = RowOf(p.Width);
        if (row >= p.Rows) return;
        int lane = LaneOf(p.Width), ws = p.Width, o = row * p.T, mo = row / p.RowsPerBatch * p.T;
        float m = float.NegativeInfinity;
        for (int j = lane; j < p.T; j += ws)
            if (p.HasMask == 0 || mask[mo + j] != 0f) m = XMath.Max(m, p.Scale * scores[o + j]);
        m = GpuMath.WarpMax(p.Width, m);
        float s = 0f;
        for (int j = lane; j < p.T; j += ws)
        {
            float e = 0f;
            if (p.HasMask == 0 || mask[mo + j] != 0f) e = XMath.Exp(p.Scale * scores[o + j] - m);
            probs[o + j] = e;
            s += e;
        }
        s = GpuMath.WarpSum(p.Width, s);
        float inv = s > 0f ? 1f / s : 0f;
        for (int j = lane; j < p.T; j += ws) probs[o + j] *= inv;
    }

    /// <summary>dScores = scale·P ⊙ (dP − Σ_j dP·P) per row (assigned; may alias dProbs).</summary>
    public static void SoftmaxBackward(ArrayView<float> dScores, ArrayView<float> dProbs, ArrayView<float> probs, SoftmaxArgs p)
    {
        int row = RowOf(p.Width);
        if (row >= p.Rows) return;
        int lane = LaneOf(p.Width), ws = p.Width, o = row * p.T;
        float dot = 0f;
        for (int j = lane; j < p.T; j += ws) dot += dProbs[o + j] * probs[o + j];
        dot = GpuMath.WarpSum(p.Width, dot);
        for (int j = lane; j < p.T; j += ws)
        {
            float pj = probs[o + j];
            dScores[o + j] = p.Scale * pj * (dProbs[o + j] - dot);
        }
    }
}
