// Turns examples into token sequences ([CLS] context [SEP] candidate [SEP]) and packs them into padded RecBatches.
using FastRec.Engine.Data;
using FastRec.Engine.Model;
using FastRec.Engine.Text;

namespace FastRec.Engine.Training;

/// <summary>How an example becomes text tokens (stored in fastrec.json so scoring encodes exactly as training did).</summary>
public sealed record TextOptions
{
    /// <summary>Longest sequence in tokens, special tokens included; in [3, max_position_embeddings].</summary>
    public int MaxLength { get; init; } = 64;
    /// <summary>Placed between the context items' texts in segment A (tokenized once).</summary>
    public string ContextSeparator { get; init; } = ";";
    /// <summary>Lower-case (and strip accents) before WordPiece: the model's tokenizer setting.</summary>
    public bool LowerCase { get; init; } = true;
}

/// <summary>
/// Token sequences of N examples, CSR: example i is Ids[Offsets[i] .. Offsets[i+1]] = [CLS] A [SEP] B [SEP], with token
/// type 0 for positions &lt; <see cref="TypeStart"/>[i] and 1 from there on.
/// </summary>
public sealed class EncodedExamples
{
    /// <summary>All token ids, example after example.</summary>
    public required int[] Ids { get; init; }
    /// <summary>(N+1) CSR offsets into <see cref="Ids"/>.</summary>
    public required int[] Offsets { get; init; }
    /// <summary>(N) first position of segment B (token type 1).</summary>
    public required int[] TypeStart { get; init; }
    /// <summary>Examples whose sequence was truncated to the maximum length.</summary>
    public int Truncated { get; init; }
    /// <summary>N.</summary>
    public int Count => TypeStart.Length;
    /// <summary>Tokens of example <paramref name="i"/>.</summary>
    public int Length(int i) => Offsets[i + 1] - Offsets[i];
    /// <summary>The ids of example <paramref name="i"/>.</summary>
    public ReadOnlySpan<int> Row(int i) => Ids.AsSpan(Offsets[i], Length(i));
}

/// <summary>
/// Tokenizes each item's text once (cached by item index) and assembles examples from the cached ids:
/// segment A = the context items' tokens, most recent first, separated by <see cref="TextOptions.ContextSeparator"/>;
/// segment B = the candidate's tokens. Pairs longer than <see cref="TextOptions.MaxLength"/> are truncated longest-first
/// (Hugging Face "longest_first": tokens are dropped from the end of the longer segment, the candidate's on ties), so
/// the oldest context items go first.
/// </summary>
public sealed class ExampleEncoder
{
    private readonly BertTextTokenizer _tok;
    private readonly ItemCatalog _catalog;
    private readonly int[]?[] _itemTokens;
    private readonly int[] _separator;

    /// <summary>The tokenizer.</summary>
    public BertTextTokenizer Tokenizer => _tok;
    /// <summary>The options.</summary>
    public TextOptions Options { get; }
    /// <summary>The catalog item indices refer to.</summary>
    public ItemCatalog Catalog => _catalog;

    /// <summary>Creates an encoder over <paramref name="catalog"/>; <paramref name="tokenizer"/>.MaxLength must equal the options'.</summary>
    public ExampleEncoder(BertTextTokenizer tokenizer, ItemCatalog catalog, TextOptions options)
    {
        ArgumentNullException.ThrowIfNull(tokenizer); ArgumentNullException.ThrowIfNull(catalog); ArgumentNullException.ThrowIfNull(options);
        if (options.MaxLength < 3)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxLength, $"max length must be at least 3 ([CLS] a [SEP] b [SEP]), got {options.MaxLength}");
        if (tokenizer.MaxLength != options.MaxLength)
            throw new ArgumentException($"tokenizer max length {tokenizer.MaxLength} differs from the text options' {options.MaxLength}");
        _tok = tokenizer; _catalog = catalog; Options = options;
        _itemTokens = new int[]?[catalog.Count];
        _separator = [.. tokenizer.Tokenize(options.ContextSeparator)];
    }

    /// <summary>Creates the tokenizer from a vocab.txt and the encoder in one go.</summary>
    public static ExampleEncoder Create(string vocabPath, ItemCatalog catalog, TextOptions options, int maxPositions)
    {
        if (options.MaxLength < 3 || options.MaxLength > maxPositions)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxLength,
                $"max length must be in [3, max_position_embeddings = {maxPositions}], got {options.MaxLength}");
        return new ExampleEncoder(new BertTextTokenizer(vocabPath, options.LowerCase, options.MaxLength, maxPositions), catalog, options);
    }

    /// <summary>WordPiece ids of item <paramref name="item"/>'s text (cached).</summary>
    public int[] ItemTokens(int item) => _itemTokens[item] ??= [.. _tok.Tokenize(_catalog.Text(item))];

    /// <summary>Encodes every example of <paramref name="set"/> (which must use this encoder's catalog).</summary>
    public EncodedExamples Encode(ExampleSet set)
    {
        ArgumentNullException.ThrowIfNull(set);
        if (!ReferenceEquals(set.Catalog, _catalog))
            throw new ArgumentException($"the '{set.Name}' examples use another item catalog than this encoder");
        int N = set.Count, budget = Options.MaxLength - 3, truncated = 0;
        var offsets = new int[N + 1];
        var typeStart = new int[N];
        var ids = new List<int>(N * Math.Min(Options.MaxLength, 48));
        var a = new List<int>(256);
        for (int i = 0; i < N; i++)
        {
            a.Clear();
            var ctx = set.Context(i);
            for (int j = 0; j < ctx.Length; j++)
            {
                if (j > 0) a.AddRange(_separator);
                a.AddRange(ItemTokens(ctx[j]));
                if (a.Count > budget) break;   // the rest would be truncated anyway
            }
            var b = ItemTokens(set.Items[i]);
            int na = a.Count, nb = b.Length;
            if (na + nb > budget)
            {
                truncated++;
                (na, nb) = BertTextTokenizer.TruncatePair(na, nb, budget);
            }
            ids.Add(_tok.ClsId);
            for (int k = 0; k < na; k++) ids.Add(a[k]);
            ids.Add(_tok.SepId);
            typeStart[i] = na + 2;
            for (int k = 0; k < nb; k++) ids.Add(b[k]);
            ids.Add(_tok.SepId);
            offsets[i + 1] = ids.Count;
        }
        return new EncodedExamples { Ids = [.. ids], Offsets = offsets, TypeStart = typeStart, Truncated = truncated };
    }
}

/// <summary>Standardises dense features with the training set's mean and standard deviation (std 0 → 1).</summary>
public sealed record FeatureScaler(string[] Names, float[] Mean, float[] Std)
{
    /// <summary>False for a placeholder (identity) that <see cref="Trainer"/> replaces by one fitted on the training set.</summary>
    public bool Fitted { get; init; } = true;

    /// <summary>An identity placeholder for <paramref name="count"/> features, to be fitted by the trainer.</summary>
    public static FeatureScaler Unfitted(int count) => count == 0 ? None
        : new(Enumerable.Range(0, count).Select(i => $"f{i}").ToArray(), new float[count], Enumerable.Repeat(1f, count).ToArray()) { Fitted = false };

    /// <summary>No features.</summary>
    public static FeatureScaler None { get; } = new([], [], []);

    /// <summary>Fits on <paramref name="train"/>'s dense features.</summary>
    public static FeatureScaler Fit(ExampleSet train)
    {
        int F = train.DenseCount, N = train.Count;
        var mean = new double[F]; var sq = new double[F];
        var dense = train.Dense;
        for (int i = 0; i < N; i++)
            for (int f = 0; f < F; f++) { double x = dense[i * F + f]; mean[f] += x; sq[f] += x * x; }
        var m = new float[F]; var s = new float[F];
        for (int f = 0; f < F; f++)
        {
            double mu = N == 0 ? 0 : mean[f] / N, v = N == 0 ? 0 : Math.Max(0, sq[f] / N - mu * mu);
            m[f] = (float)mu;
            s[f] = v > 1e-12 ? (float)Math.Sqrt(v) : 1f;
        }
        return new FeatureScaler([.. train.DenseNames], m, s);
    }

    /// <summary>Checks that <paramref name="set"/> has the same features, by name and order.</summary>
    public void Check(ExampleSet set)
    {
        if (!set.DenseNames.SequenceEqual(Names))
            throw new InvalidDataException(
                $"the '{set.Name}' examples have dense features [{string.Join(", ", set.DenseNames)}] but the model was trained with [{string.Join(", ", Names)}]");
    }
}

/// <summary>Packs examples into <see cref="RecBatch"/>es padded to the longest sequence of the batch.</summary>
public static class BatchPacker
{
    /// <summary>
    /// A batch of examples <paramref name="rows"/> of <paramref name="set"/>/<paramref name="enc"/>: ids, token types, mask,
    /// standardised dense features, labels and weights (example weight × class weight). T = the longest row.
    /// </summary>
    public static RecBatch Pack(ExampleSet set, EncodedExamples enc, ReadOnlySpan<int> rows, int padId, FeatureScaler scaler,
                                float positiveWeight = 1f, float negativeWeight = 1f)
    {
        int B = rows.Length, T = 1;
        foreach (int r in rows) T = Math.Max(T, enc.Length(r));
        var ids = new int[B * T]; var types = new int[B * T]; var mask = new float[B * T];
        var labels = new float[B]; var weights = new float[B];
        int F = scaler.Names.Length;
        var dense = F > 0 ? new float[B * F] : null;
        for (int b = 0; b < B; b++)
        {
            int r = rows[b], n = enc.Length(r);
            enc.Row(r).CopyTo(ids.AsSpan(b * T, n));
            ids.AsSpan(b * T + n, T - n).Fill(padId);
            types.AsSpan(b * T + enc.TypeStart[r], n - enc.TypeStart[r]).Fill(1);
            mask.AsSpan(b * T, n).Fill(1f);
            float y = set.Labels[r];
            labels[b] = y;
            weights[b] = set.Weights[r] * (y >= 0.5f ? positiveWeight : negativeWeight);
            if (dense is not null)
            {
                var row = set.DenseRow(r);
                for (int f = 0; f < F; f++) dense[b * F + f] = (row[f] - scaler.Mean[f]) / scaler.Std[f];
            }
        }
        return new RecBatch { B = B, T = T, InputIds = ids, TokenTypeIds = types, AttentionMask = mask, Dense = dense, Labels = labels, Weights = weights };
    }
}
