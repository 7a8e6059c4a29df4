// WordPiece tokenization for BERT (Microsoft.ML.Tokenizers BertTokenizer): singles and pairs, truncation, padding, batches.
using Microsoft.ML.Tokenizers;

namespace FastRec.Engine.Text;

/// <summary>One encoded text (or pair) before padding: ids with [CLS]/[SEP], token types 0/1.</summary>
/// <param name="InputIds">[CLS] a [SEP] (b [SEP]).</param>
/// <param name="TokenTypeIds">0 for [CLS] a [SEP], 1 for b [SEP].</param>
/// <param name="Truncated">True when tokens were dropped to fit the maximum length.</param>
public sealed record TokenizedText(int[] InputIds, int[] TokenTypeIds, bool Truncated)
{
    /// <summary>Number of tokens (T of this row before padding).</summary>
    public int Length => InputIds.Length;
}

/// <summary>
/// BERT tokenization with the model's vocab.txt: lower-casing (and accent stripping, as Hugging Face does for uncased
/// models) per the model's tokenizer settings, single texts and pairs, longest-first truncation to <see cref="MaxLength"/>,
/// padding with [PAD] and attention masks, and batch encoding straight into the engine's flat (B, T) buffers.
/// <para>Sequences longer than <see cref="MaxLength"/> are truncated (never refused) and reported through
/// <see cref="TokenizedText.Truncated"/> and the count returned by the batch methods; a <see cref="MaxLength"/> above the
/// model's max_position_embeddings is refused when the tokenizer is created.</para>
/// </summary>
public sealed class BertTextTokenizer
{
    private readonly BertTokenizer _tok;

    /// <summary>The Microsoft.ML.Tokenizers tokenizer underneath.</summary>
    public BertTokenizer Inner => _tok;
    /// <summary>Longest sequence produced, special tokens included.</summary>
    public int MaxLength { get; }
    /// <summary>Whether text is lower-cased (and accents stripped) before WordPiece.</summary>
    public bool LowerCase { get; }
    /// <summary>Id of [CLS].</summary>
    public int ClsId => _tok.ClassificationTokenId;
    /// <summary>Id of [SEP].</summary>
    public int SepId => _tok.SeparatorTokenId;
    /// <summary>Id of [PAD].</summary>
    public int PadId => _tok.PaddingTokenId;

    /// <summary>Creates the tokenizer from a vocab.txt (LF or CRLF line endings).</summary>
    /// <param name="vocabPath">One WordPiece token per line; line number = id.</param>
    /// <param name="lowerCase">Uncased model: lower-case and strip accents (Hugging Face's do_lower_case).</param>
    /// <param name="maxLength">Longest sequence, special tokens included (at least 2 for a single text, 3 for pairs).</param>
    /// <param name="maxPositions">The model's max_position_embeddings; <paramref name="maxLength"/> may not exceed it.</param>
    public BertTextTokenizer(string vocabPath, bool lowerCase, int maxLength, int maxPositions = int.MaxValue)
    {
        if (maxLength < 2) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "max length must be at least 2 ([CLS] and [SEP])");
        if (maxLength > maxPositions)
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength,
                $"max length {maxLength} exceeds the model's max_position_embeddings {maxPositions}: sequences that long have no position embedding");
        using var s = File.OpenRead(vocabPath);
        _tok = BertTokenizer.Create(s, new BertOptions
        {
            LowerCaseBeforeTokenization = lowerCase,
            RemoveNonSpacingMarks = lowerCase,
            ApplyBasicTokenization = true,
            SplitOnSpecialTokens = true,
            IndividuallyTokenizeCjk = true,
        });
        MaxLength = maxLength;
        LowerCase = lowerCase;
    }

    /// <summary>WordPiece ids of <paramref name="text"/> without special tokens.</summary>
    public IReadOnlyList<int> Tokenize(string text) => _tok.EncodeToIds(text, addSpecialTokens: false);

    /// <summary>Encodes a text, or a pair (token types 0 then 1), truncating longest-first to <see cref="MaxLength"/>.</summary>
    public TokenizedText Encode(string text, string? pair = null)
    {
        var a = Tokenize(text);
        var b = pair is null ? null : Tokenize(pair);
        int na = a.Count, nb = b?.Count ?? 0;
        bool truncated = Truncate(ref na, ref nb, b is not null);
        int n = Length(na, nb, b is not null);
        var ids = new int[n];
        var types = new int[n];
        Fill(a, na, b, nb, ids, types);
        return new TokenizedText(ids, types, truncated);
    }

    /// <summary>
    /// Encodes a batch into flat row-major buffers of (B, T): ids padded with [PAD], token types, attention mask 1/0.
    /// <paramref name="pairs"/>: null for single texts, else one second segment per row (a null entry = a single text).
    /// <paramref name="seqLen"/> = T: when null, the longest row of the batch. Returns T and the number of truncated rows.
    /// </summary>
    public (int SeqLen, int Truncated) EncodeBatch(IReadOnlyList<string> texts, IReadOnlyList<string?>? pairs,
                                                   out int[] inputIds, out int[] tokenTypeIds, out float[] attentionMask, int? seqLen = null)
    {
        int B = texts.Count;
        if (pairs is not null && pairs.Count != B) throw new ArgumentException($"{B} texts but {pairs.Count} pairs");
        if (B == 0) throw new ArgumentException("empty batch");
        var tokA = new IReadOnlyList<int>[B];
        var tokB = new IReadOnlyList<int>?[B];
        var lens = new (int A, int B)[B];
        int T = 0, truncated = 0;
        for (int i = 0; i < B; i++)
        {
            tokA[i] = Tokenize(texts[i]);
            tokB[i] = pairs?[i] is { } p ? Tokenize(p) : null;
            bool isPair = tokB[i] is not null;
            int na = tokA[i].Count, nb = tokB[i]?.Count ?? 0;
            if (Truncate(ref na, ref nb, isPair)) truncated++;
            lens[i] = (na, nb);
            T = Math.Max(T, Length(na, nb, isPair));
        }
        if (seqLen is { } fixedT)
        {
            if (fixedT < T) throw new ArgumentOutOfRangeException(nameof(seqLen), fixedT, $"a row needs {T} tokens; seqLen must be at least that (or raise truncation)");
            T = fixedT;
        }
        inputIds = new int[B * T];       // (B, T)
        tokenTypeIds = new int[B * T];   // (B, T)
        attentionMask = new float[B * T];   // (B, T)
        for (int i = 0; i < B; i++)
        {
            var row = inputIds.AsSpan(i * T, T);
            int n = Fill(tokA[i], lens[i].A, tokB[i], lens[i].B, row, tokenTypeIds.AsSpan(i * T, T));
            row[n..].Fill(PadId);
            attentionMask.AsSpan(i * T, n).Fill(1f);
        }
        return (T, truncated);
    }

    /// <summary>
    /// Encodes one row straight into caller-owned buffers of one padded row (T = <paramref name="inputIds"/>.Length), e.g. a
    /// slice of a reused batch: truncates longest-first to min(<see cref="MaxLength"/>, T), pads with [PAD], writes the mask.
    /// Returns the number of real tokens.
    /// </summary>
    public int EncodeRow(string text, string? pair, Span<int> inputIds, Span<int> tokenTypeIds, Span<float> attentionMask, out bool truncated)
    {
        int T = inputIds.Length;
        if (tokenTypeIds.Length != T || attentionMask.Length != T)
            throw new ArgumentException($"row buffers differ in length: ids {T}, types {tokenTypeIds.Length}, mask {attentionMask.Length}");
        var a = Tokenize(text);
        var b = pair is null ? null : Tokenize(pair);
        int na = a.Count, nb = b?.Count ?? 0;
        truncated = Truncate(ref na, ref nb, b is not null, Math.Min(MaxLength, T));
        int n = Fill(a, na, b, nb, inputIds, tokenTypeIds);
        inputIds[n..].Fill(PadId);
        tokenTypeIds[n..].Clear();
        attentionMask[..n].Fill(1f);
        attentionMask[n..].Clear();
        return n;
    }

    private static int Length(int na, int nb, bool isPair) => isPair ? na + nb + 3 : na + 2;

    /// <summary>Hugging Face "longest_first": drop one token at a time from the longer side (the second on ties).</summary>
    private bool Truncate(ref int na, ref int nb, bool isPair) => Truncate(ref na, ref nb, isPair, MaxLength);

    private static bool Truncate(ref int na, ref int nb, bool isPair, int maxLength)
    {
        int budget = maxLength - (isPair ? 3 : 2);
        if (budget < 0) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, $"max length {maxLength} too small ([CLS] a [SEP]{(isPair ? " b [SEP]" : "")} needs {(isPair ? 3 : 2)} special tokens)");
        if (na + nb <= budget) return false;
        if (!isPair) { na = budget; return true; }
        (na, nb) = TruncatePair(na, nb, budget);
        return true;
    }

    /// <summary>Hugging Face "longest_first" truncation of a pair of <paramref name="na"/> and <paramref name="nb"/> tokens to
    /// <paramref name="budget"/> tokens (special tokens excluded): tokens leave the end of the longer segment, the second
    /// one on ties. The one implementation used by the tokenizer, the training example encoder and the Predictor.</summary>
    public static (int A, int B) TruncatePair(int na, int nb, int budget)
    {
        if (na + nb <= budget) return (na, nb);
        int excess = na + nb - budget;
        // Equivalent to popping one at a time: first level the longer side down, then alternate (second side first).
        int d = Math.Min(excess, Math.Abs(na - nb));
        if (na > nb) na -= d; else nb -= d;
        excess -= d;
        nb -= (excess + 1) / 2;
        na -= excess / 2;
        return (na, nb);
    }

    /// <summary>Writes [CLS] a[..na] [SEP] (b[..nb] [SEP]) into ids/types; returns the count written.</summary>
    private int Fill(IReadOnlyList<int> a, int na, IReadOnlyList<int>? b, int nb, Span<int> ids, Span<int> types)
    {
        int k = 0;
        ids[k] = ClsId; types[k++] = 0;
        for (int j = 0; j < na; j++) { ids[k] = a[j]; types[k++] = 0; }
        ids[k] = SepId; types[k++] = 0;
        if (b is not null)
        {
            for (int j = 0; j < nb; j++) { ids[k] = b[j]; types[k++] = 1; }
            ids[k] = SepId; types[k++] = 1;
        }
        return k;
    }
}
