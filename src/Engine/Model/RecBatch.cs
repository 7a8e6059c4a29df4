// One host-side training/scoring batch and its validation against the model's configuration.
using FastRec.Kernels;

namespace FastRec.Engine.Model;

/// <summary>
/// A batch of B sequences of T tokens, as host arrays (row-major, b-major). Every array must have exactly the
/// documented length; <see cref="Validate"/> says which one does not. Properties are settable so a loader can reuse one batch.
/// </summary>
public sealed class RecBatch
{
    /// <summary>B: number of examples.</summary>
    public int B { get; set; }
    /// <summary>T: tokens per example (padded).</summary>
    public int T { get; set; }
    /// <summary>(B, T) word-piece ids in [0, vocab_size).</summary>
    public int[] InputIds { get; set; } = [];
    /// <summary>(B, T) segment ids in [0, type_vocab_size); null = all 0.</summary>
    public int[]? TokenTypeIds { get; set; }
    /// <summary>(B, T) 1 for real tokens, 0 for padding; every row needs at least one 1.</summary>
    public float[] AttentionMask { get; set; } = [];
    /// <summary>(B, D) dense features; null when the adapter has none.</summary>
    public float[]? Dense { get; set; }
    /// <summary>(B) targets in [0, 1] (soft labels allowed); needed for training only.</summary>
    public float[] Labels { get; set; } = [];
    /// <summary>(B) non-negative example weights with a positive sum; null = all 1.</summary>
    public float[]? Weights { get; set; }
    /// <summary>(B, T, C) the input of encoder layer <see cref="StartLayer"/> (the output of the layers below it, e.g. from
    /// <see cref="RecModel.EncodeTo"/>): the frozen-layer activation cache. null = run the whole encoder from the ids.
    /// Rows of padding positions are never read by the layers above (their keys are masked) and may hold anything finite.</summary>
    public float[]? Hidden { get; set; }
    /// <summary>With <see cref="Hidden"/>: the first encoder layer to run, in [0, L] (L = only the pooler/head run).</summary>
    public int StartLayer { get; set; }

    /// <summary>
    /// Checks shapes and values. Shape mismatches throw <see cref="ShapeException"/>, bad values
    /// <see cref="ArgumentOutOfRangeException"/>; messages name the array, the expected and the actual size or value.
    /// </summary>
    public void Validate(BertConfig bert, AdapterConfig adapter, bool requireLabels)
    {
        if (B <= 0) throw new ShapeException($"RecBatch.B must be positive, got {B}");
        if (T <= 0) throw new ShapeException($"RecBatch.T must be positive, got {T}");
        if (T > bert.MaxPositionEmbeddings)
            throw new ShapeException($"RecBatch.T = {T} exceeds max_position_embeddings = {bert.MaxPositionEmbeddings}");
        long bt = (long)B * T;
        static void Len(string name, int actual, long expected, string shape)
        {
            if (actual != expected) throw new ShapeException($"RecBatch.{name}: expected {shape} = {expected} elements, got {actual}");
        }
        Len(nameof(InputIds), InputIds?.Length ?? 0, bt, $"(B={B}, T={T})");
        Len(nameof(AttentionMask), AttentionMask?.Length ?? 0, bt, $"(B={B}, T={T})");
        if (TokenTypeIds is not null) Len(nameof(TokenTypeIds), TokenTypeIds.Length, bt, $"(B={B}, T={T})");
        int D = adapter.DenseFeatures;
        if (D > 0) Len(nameof(Dense), Dense?.Length ?? 0, (long)B * D, $"(B={B}, D={D})");
        else if (Dense is { Length: > 0 })
            throw new ShapeException($"RecBatch.Dense: the adapter has no dense features (D = 0) but {Dense.Length} values were given");
        if (requireLabels) Len(nameof(Labels), Labels?.Length ?? 0, B, $"(B={B})");
        if (Weights is not null) Len(nameof(Weights), Weights.Length, B, $"(B={B})");
        if (Hidden is not null)
        {
            if (StartLayer < 0 || StartLayer > bert.NumHiddenLayers)
                throw new ArgumentOutOfRangeException(nameof(StartLayer), StartLayer, $"RecBatch.StartLayer = {StartLayer} is outside [0, num_hidden_layers = {bert.NumHiddenLayers}]");
            Len(nameof(Hidden), Hidden.Length, bt * bert.HiddenSize, $"(B={B}, T={T}, C={bert.HiddenSize})");
        }

        var ids = InputIds!;
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)bert.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(InputIds), ids[i],
                    $"RecBatch.InputIds[{i}] (b={i / T}, t={i % T}) = {ids[i]} is outside [0, vocab_size = {bert.VocabSize})");
        if (TokenTypeIds is { } types)
            for (int i = 0; i < types.Length; i++)
                if ((uint)types[i] >= (uint)bert.TypeVocabSize)
                    throw new ArgumentOutOfRangeException(nameof(TokenTypeIds), types[i],
                        $"RecBatch.TokenTypeIds[{i}] (b={i / T}, t={i % T}) = {types[i]} is outside [0, type_vocab_size = {bert.TypeVocabSize})");
        var mask = AttentionMask!;
        for (int b = 0; b < B; b++)
        {
            bool any = false;
            for (int t = 0; t < T; t++)
            {
                float m = mask[b * T + t];
                if (m != 0f && m != 1f)
                    throw new ArgumentOutOfRangeException(nameof(AttentionMask), m,
                        $"RecBatch.AttentionMask[{b * T + t}] (b={b}, t={t}) = {m}; must be 0 or 1");
                any |= m == 1f;
            }
            if (!any) throw new ArgumentOutOfRangeException(nameof(AttentionMask), $"RecBatch.AttentionMask row b={b} has no token with mask 1");
        }
        if (D > 0 && Dense is { } dense)
            for (int i = 0; i < dense.Length; i++)
                if (!float.IsFinite(dense[i]))
                    throw new ArgumentOutOfRangeException(nameof(Dense), dense[i], $"RecBatch.Dense[{i}] (b={i / D}, feature {i % D}) = {dense[i]} is not finite");
        if (requireLabels && Labels is { } labels)
            for (int b = 0; b < B; b++)
                if (!(labels[b] >= 0f && labels[b] <= 1f))
                    throw new ArgumentOutOfRangeException(nameof(Labels), labels[b], $"RecBatch.Labels[{b}] = {labels[b]} is outside [0, 1]");
        if (Weights is { } w)
        {
            double sum = 0;
            for (int b = 0; b < B; b++)
            {
                if (!(w[b] >= 0f && float.IsFinite(w[b])))
                    throw new ArgumentOutOfRangeException(nameof(Weights), w[b], $"RecBatch.Weights[{b}] = {w[b]} must be finite and >= 0");
                sum += w[b];
            }
            if (!(sum > 0)) throw new ArgumentOutOfRangeException(nameof(Weights), $"RecBatch.Weights sum to {sum}; at least one must be positive");
        }
    }
}
