// The Predictor from a FastRec checkpoint, and its text front door (tokenize the context items and candidates, then score).
using FastRec.Engine.Text;
using FastRec.Engine.Training;
using FastRec.Kernels.Cpu;

namespace FastRec.Engine.Serving;

public sealed partial class Predictor
{
    private BertTextTokenizer? _tok;
    private int[] _separator = [];

    /// <summary>The checkpoint's data schema (null for a predictor made from a bare model).</summary>
    public DataSchema? Schema { get; private set; }
    /// <summary>Names of the raw dense features, in order, that calls must pass (empty when the head has none).</summary>
    public IReadOnlyList<string> DenseFeatures { get; private set; } = [];

    /// <summary>
    /// Loads a FastRec checkpoint (from <c>fastrec train</c> or <c>fastrec distill</c>) once: weights, tokenizer, text options
    /// (maximum length, context separator) and dense-feature standardisation come from it; <paramref name="options"/> supplies
    /// the rest (batching, threads). With <paramref name="expectDenseFeatures"/> the checkpoint must take exactly those raw
    /// features, by name and order: a model trained on another data schema is refused before any call.
    /// </summary>
    /// <exception cref="InvalidDataException">not a FastRec checkpoint of this format, or another schema (the message names both).</exception>
    /// <exception cref="FileNotFoundException">the directory has no fastrec.json.</exception>
    /// <exception cref="DirectoryNotFoundException">the directory does not exist.</exception>
    public static Predictor Load(string checkpointDir, PredictorOptions? options = null, IReadOnlyList<string>? expectDenseFeatures = null)
    {
        ArgumentNullException.ThrowIfNull(checkpointDir);
        using var backend = new CpuSimdBackend();
        using var rec = Checkpoint.Load(checkpointDir, backend).Recommender;
        var names = rec.Scaler.Names;
        if (expectDenseFeatures is not null && !expectDenseFeatures.SequenceEqual(names))
            throw new InvalidDataException(
                $"{checkpointDir}: the checkpoint was trained on another data schema: its dense features are [{string.Join(", ", names)}], " +
                $"the caller expects [{string.Join(", ", expectDenseFeatures)}]");
        var tok = new BertTextTokenizer(rec.VocabPath, rec.Text.LowerCase, rec.Text.MaxLength, rec.Model.Bert.MaxPositionEmbeddings);
        var o = (options ?? new PredictorOptions()) with
        {
            MaxLength = rec.Text.MaxLength, ClsId = tok.ClsId, SepId = tok.SepId,
            DenseMean = names.Length > 0 ? rec.Scaler.Mean : null, DenseStd = names.Length > 0 ? rec.Scaler.Std : null,
        };
        var p = new Predictor(rec.Model, o) { _tok = tok, _separator = [.. tok.Tokenize(rec.Text.ContextSeparator)], Schema = rec.Schema, DenseFeatures = names };
        return p;
    }

    private BertTextTokenizer Tokenizer => _tok ?? throw new InvalidOperationException(
        "this Predictor has no tokenizer (it was made from a bare model): load it from a checkpoint, or pass token ids");

    /// <summary>The context segment's tokens: each item's text tokenized, items in the given order (most recent first, as in
    /// training), joined by the context separator's tokens. Allocates.</summary>
    public int[] EncodeContext(IReadOnlyList<string> contextItems)
    {
        ArgumentNullException.ThrowIfNull(contextItems);
        var tok = Tokenizer;
        return JoinContext(contextItems.Count, i => tok.Tokenize(contextItems[i] ?? throw new ArgumentException($"contextItems[{i}] is null", nameof(contextItems))));
    }

    /// <summary>The context segment from items already tokenized with <see cref="EncodeItem"/> (most recent first), joined
    /// by the context separator's tokens exactly as <see cref="EncodeContext"/> joins texts: for a host that tokenizes its
    /// catalogue once at start. Allocates the result.</summary>
    public int[] JoinContext(IReadOnlyList<int[]> itemTokens)
    {
        ArgumentNullException.ThrowIfNull(itemTokens);
        _ = Tokenizer;   // the separator's tokens come from the checkpoint
        return JoinContext(itemTokens.Count, i => itemTokens[i] ?? throw new ArgumentException($"itemTokens[{i}] is null", nameof(itemTokens)));
    }

    private int[] JoinContext(int count, Func<int, IEnumerable<int>> item)
    {
        var ids = new List<int>();
        for (int i = 0; i < count; i++)
        {
            if (i > 0) ids.AddRange(_separator);
            ids.AddRange(item(i));
            if (ids.Count > Options.MaxLength) break;   // the rest would be truncated anyway
        }
        return [.. ids];
    }

    /// <summary>A candidate item's tokens. Allocates.</summary>
    public int[] EncodeItem(string text) => [.. Tokenizer.Tokenize(text ?? throw new ArgumentNullException(nameof(text)))];

    /// <summary>Text convenience: the probability for one (context items, candidate text) pair; tokenizes on every call
    /// (allocates; for the allocation-free path encode once and call the token overload).</summary>
    public float Score(IReadOnlyList<string> contextItems, string candidate, ReadOnlySpan<float> dense = default)
        => Score(EncodeContext(contextItems), EncodeItem(candidate), dense);

    /// <summary>Text convenience: one context against many candidate texts (batched); <paramref name="dense"/> (N, D).</summary>
    public float[] ScoreCandidates(IReadOnlyList<string> contextItems, IReadOnlyList<string> candidates, ReadOnlySpan<float> dense = default)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        var ctx = EncodeContext(contextItems);
        var offsets = new int[candidates.Count + 1];
        var flat = new List<int>();
        for (int i = 0; i < candidates.Count; i++)
        {
            flat.AddRange(EncodeItem(candidates[i]));
            offsets[i + 1] = flat.Count;
        }
        var scores = new float[candidates.Count];
        ScoreCandidates(ctx, flat.ToArray(), offsets, scores, dense);
        return scores;
    }
}
