// Attention kernels of the ILGPU backend: head permutes and the masked softmax (one warp per row); the GEMMs are GemmKernels'.
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu.Kernels;

/// <summary>Arguments of <see cref="AttentionKernels.HeadsPermute"/>: (B,T,G·C) ↔ (G,B,NH,T,HS).</summary>
internal struct PermuteArgs
{
    public int B, T, C, NH, G, ToHeads;
}

/// <summary>Arguments of the softmax kernels: rows = B·NH·T, each of length T.</summary>
internal struct SoftmaxArgs
{
    /// <summary>Threads per row (see <see cref="LnArgs.Width"/>).</summary>
    public int Width;
    public int Rows, T, RowsPerBatch, HasMask;
    public float Scale;
}

/// <summary>The non-GEMM kernels of multi-head self-attention: (B,T,G·C) ↔ (G,B,NH,T,HS) permutes (grid-strided) and the
/// masked row softmax, forward and backward (one row per <see cref="SoftmaxArgs.Width"/> threads, see <see cref="ReductionKernels"/>).</summary>
internal static class AttentionKernels
{
    /// <summary>Moves elements between token-major (B,T,G·C) and head-major (G,B,NH,T,HS) layouts.
    /// i walks the token-major layout (coalesced reads or writes there).</summary>
    public static void HeadsPermute(ArrayView<float> dst, ArrayView<float> src, PermuteArgs p, int n)
    {
        int gc = p.G * p.C, hs = p.C / p.NH;
        for (int i = Grid.GlobalIndex.X; i < n; i += ElementwiseKernels.Stride)
        {
            int bt = i / gc, w = i - bt * gc;
            int b = bt / p.T, t = bt - b * p.T;
            int g = w / p.C, wc = w - g * p.C;
            int h = wc / hs, d = wc - h * hs;
            int hi = (((g * p.B + b) * p.NH + h) * p.T + t) * hs + d;
            if (p.ToHeads != 0) dst[hi] = src[i];
            else dst[i] = src[hi];
        }
    }
    /// <summary>probs = softmax_j(scale·scores + mask) per row; masked keys get 0, a fully masked row is all 0. May alias.</summary>
    public static void SoftmaxForward(ArrayView<float> probs, ArrayView<float> scores, ArrayView<float> mask, SoftmaxArgs p)
    {
        int row = ReductionKernels.RowOf(p.Width);
        if (row >= p.Rows) return;
        int lane = ReductionKernels.LaneOf(p.Width), ws = p.Width, o = row * p.T, mo = row / p.RowsPerBatch * p.T;
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
        int row = ReductionKernels.RowOf(p.Width);
        if (row >= p.Rows) return;
        int lane = ReductionKernels.LaneOf(p.Width), ws = p.Width, o = row * p.T;
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
