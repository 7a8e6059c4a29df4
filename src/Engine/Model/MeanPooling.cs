// Attention-masked mean pooling of the last hidden state (the AdapterInput.Mean head input) as batched GEMMs.
using FastRec.Kernels;

namespace FastRec.Engine.Model;

/// <summary>
/// pooled[b, :] = Σ_t mask[b,t]·hidden[b,t,:] / max(Σ_t mask[b,t], 1e-9), not L2-normalised. The per-row weights
/// w[b,t] = mask[b,t] / max(Σ_t mask[b,t], 1e-9) are computed on the host from the mask (which comes from the host), and
/// the pooling is one strided-batched <see cref="IBackend.Gemm"/> per direction: forward (1, T)·(T, C) per row b, backward
/// the outer product (T, 1)·(1, C) written into δhidden for every token. B batch, T sequence, C hidden.
/// </summary>
internal static class MeanPooling
{
    /// <summary>weights (B, T) = mask[b,t] / max(Σ_t mask[b,t], 1e-9) (sum in double).</summary>
    public static void Weights(ReadOnlySpan<float> mask, int B, int T, Span<float> weights)
    {
        if (mask.Length != B * T) throw new ShapeException($"mask: expected (B={B}, T={T}) = {B * T} elements, got {mask.Length}");
        if (weights.Length != B * T) throw new ShapeException($"weights: expected (B={B}, T={T}) = {B * T} elements, got {weights.Length}");
        for (int b = 0; b < B; b++)
        {
            var m = mask.Slice(b * T, T);
            double count = 0;
            for (int t = 0; t < T; t++) count += m[t];
            double inv = 1.0 / Math.Max(count, 1e-9);
            var w = weights.Slice(b * T, T);
            for (int t = 0; t < T; t++) w[t] = (float)(m[t] * inv);
        }
    }

    /// <summary>pooled (B, C) = Σ_t weights[b,t]·hidden[b,t,:]; hidden (B, T, C), weights (B, T).</summary>
    public static void Forward(IBackend be, View<float> pooled, View<float> weights, View<float> hidden, int B, int T, int C)
        => be.Gemm(false, false, 1, C, T, 1f, weights, T, hidden, C, accumulate: false, pooled, C,
                   batch: B, strideA: T, strideB: (long)T * C, strideC: C);

    /// <summary>δhidden[b,t,:] = weights[b,t]·δpooled[b, 0..C) (assigned for every token, padding included: weight 0);
    /// δpooled rows are <paramref name="ldDPooled"/> floats apart (the head input's width).</summary>
    public static void Backward(IBackend be, View<float> dHidden, View<float> weights, View<float> dPooled, int ldDPooled, int B, int T, int C)
        => be.Gemm(true, false, T, C, 1, 1f, weights, T, dPooled, ldDPooled, accumulate: false, dHidden, C,
                   batch: B, strideA: T, strideB: ldDPooled, strideC: (long)T * C);
}
