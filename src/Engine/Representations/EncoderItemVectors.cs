// Item vectors from a BERT encoder: each item's text mean-pooled and L2-normalised as sentence-transformers does, cached on disk.
using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using FastRec.Engine.Data;
using FastRec.Engine.Model;
using FastRec.Engine.Serving;
using FastRec.Engine.Text;
using FastRec.Engine.Weights;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;

namespace FastRec.Engine.Representations;

/// <summary>How <see cref="EncoderItemVectors"/> encodes the items.</summary>
public sealed record EncoderItemVectorOptions
{
    /// <summary>Longest sequence in tokens, [CLS] and [SEP] included, in [3, max_position_embeddings]; longer texts are cut. Default 32.</summary>
    public int MaxLength { get; init; } = 32;
    /// <summary>Texts per forward pass, in [1, 4096]. Texts are sorted by token length first, so a batch holds texts of
    /// about the same length and little padding. Does not change the vectors. Default 64.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>Encode with randomly initialised weights (the checkpoint's architecture and tokenizer, Hugging Face BERT
    /// initialisation from <see cref="Seed"/>, see <see cref="RecModel.InitRandom"/>) instead of the checkpoint's: the
    /// random-init ablation.</summary>
    public bool RandomInit { get; init; }
    /// <summary>Seed of <see cref="RandomInit"/> (and of the unused head).</summary>
    public ulong Seed { get; init; }
    /// <summary>Folder of the disk cache (created when missing); null = no cache. A file is named by the SHA-256 of everything
    /// the vectors depend on (the weights' SHA-256, or the seed under <see cref="RandomInit"/>; config; vocabulary and casing;
    /// the texts; <see cref="MaxLength"/>), not by the backend: vectors computed on another backend are reused.</summary>
    public string? CacheDirectory { get; init; }
}

/// <summary>
/// V x C item vectors from a BERT model directory: item i's text, <see cref="ItemText.Format"/>(catalog text), tokenized as
/// one segment ([CLS] text [SEP], cut to <see cref="EncoderItemVectorOptions.MaxLength"/>), encoded in evaluation mode, then
/// the mean of the last hidden state over its tokens, L2-normalised (<see cref="SentenceEmbedding"/>: sentence-transformers'
/// recipe, the one all-MiniLM-L6-v2 was trained with). Equal to <see cref="TextEncoder"/>'s
/// <see cref="TextEncoding.SentenceEmbedding"/> of the same text; padding does not enter. An item whose text is empty (or
/// white space) gets a zero row. On a <see cref="CpuSimdBackend"/> the forward is the <see cref="Predictor"/>'s (pre-packed
/// fp32 weights, <see cref="Predictor.SentenceEmbeddings"/>); on any other backend it is <see cref="RecModel.Encode"/> on it.
/// Deterministic.
/// </summary>
public static class EncoderItemVectors
{
    private const string Recipe = "fastrec item vectors v1: [CLS] text [SEP], token type 0, mean over the mask, L2";

    /// <summary>
    /// The vectors of every item of <paramref name="catalog"/> encoded by the model in <paramref name="modelDir"/> on
    /// <paramref name="backend"/> (not owned). With a cache directory, a valid cache file is read instead; a missing one is
    /// written after computing; a corrupt or mismatching one is reported through <paramref name="log"/> and recomputed.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">an option is out of range (the message names it).</exception>
    /// <exception cref="DirectoryNotFoundException">the model directory does not exist.</exception>
    public static ItemVectors Compute(string modelDir, IBackend backend, ItemCatalog catalog, EncoderItemVectorOptions? options = null,
        Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(modelDir); ArgumentNullException.ThrowIfNull(backend); ArgumentNullException.ThrowIfNull(catalog);
        var o = options ?? new EncoderItemVectorOptions();
        var info = BertCheckpoint.Open(modelDir);
        Validate(o, info.Config);
        var texts = new string[catalog.Count];
        for (int i = 0; i < texts.Length; i++) texts[i] = ItemText.Format(catalog.Text(i));

        string? path = null;
        byte[] key = [];
        if (o.CacheDirectory is not null)
        {
            key = CacheKey(info, texts, o);
            path = Path.Combine(o.CacheDirectory, $"item-vectors-{Convert.ToHexStringLower(key)}.bin");
            if (File.Exists(path))
            {
                var cached = ItemVectorFile.TryRead(path, key, texts.Length, info.Config.HiddenSize, out string? problem);
                if (cached is not null)
                {
                    log?.Invoke($"item vectors: {cached.Name}: read from cache {path}");
                    return cached;
                }
                log?.Invoke($"item vectors: cache file {path} {problem}; recomputing");
            }
        }

        var sw = Stopwatch.StartNew();
        var vectors = Encode(info, backend, texts, o, out int empty, out int truncated);
        log?.Invoke($"item vectors: {vectors.Name}: {texts.Length} items encoded in {sw.Elapsed.TotalSeconds:F1} s " +
                    $"({empty} without text, {truncated} cut to {o.MaxLength} tokens)");
        if (path is not null)
        {
            ItemVectorFile.Write(path, key, vectors);
            log?.Invoke($"item vectors: wrote cache {path}");
        }
        return vectors;
    }

    /// <summary>
    /// The vectors (N, C) of arbitrary item texts (new items, say), encoded exactly as <see cref="Compute"/> encodes a
    /// catalogue's: each text read as <see cref="ItemText.Format"/>(text), the same options and forward; no cache. Row i is
    /// texts[i]'s. Loads the model on every call. A text that tokenises to nothing (empty, white space, only characters the
    /// tokenizer drops) is refused: it would have no representation.
    /// </summary>
    /// <exception cref="ArgumentException">a null text or one that tokenises to nothing (the message gives its index and text).</exception>
    /// <exception cref="DirectoryNotFoundException">the model directory does not exist.</exception>
    public static ItemVectors ComputeTexts(string modelDir, IBackend backend, IReadOnlyList<string> texts, EncoderItemVectorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(modelDir); ArgumentNullException.ThrowIfNull(backend); ArgumentNullException.ThrowIfNull(texts);
        var o = options ?? new EncoderItemVectorOptions();
        var info = BertCheckpoint.Open(modelDir);
        Validate(o, info.Config);
        var tok = new BertTextTokenizer(info.VocabPath, info.LowerCase, o.MaxLength, info.Config.MaxPositionEmbeddings);
        var formatted = new string[texts.Count];
        for (int i = 0; i < formatted.Length; i++)
        {
            formatted[i] = ItemText.Format(texts[i] ?? throw new ArgumentException($"texts[{i}] is null", nameof(texts)));
            if (tok.Tokenize(formatted[i]).Count == 0)
                throw new ArgumentException($"texts[{i}] (\"{texts[i]}\") tokenises to nothing; an item needs text the encoder can read", nameof(texts));
        }
        return Encode(info, backend, formatted, o, out _, out _);
    }

    /// <summary>
    /// The encoder <see cref="Compute"/> runs (the caller disposes it): the checkpoint in <paramref name="modelDir"/>, or with
    /// <see cref="EncoderItemVectorOptions.RandomInit"/> the same architecture initialised by <see cref="RecModel.InitRandom"/>
    /// from <see cref="EncoderItemVectorOptions.Seed"/>. Its head (one Linear on [CLS]) is not used.
    /// </summary>
    public static RecModel LoadModel(string modelDir, IBackend backend, EncoderItemVectorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(modelDir); ArgumentNullException.ThrowIfNull(backend);
        return LoadModel(BertCheckpoint.Open(modelDir), backend, options ?? new EncoderItemVectorOptions());
    }

    private static RecModel LoadModel(BertCheckpointInfo info, IBackend backend, EncoderItemVectorOptions o)
    {
        var head = new AdapterConfig { Input = AdapterInput.Cls };
        if (!o.RandomInit) return BertCheckpoint.Load(info.Directory, backend, head, o.Seed);
        var model = new RecModel(backend, info.Config, head);
        model.InitRandom(o.Seed);
        return model;
    }

    private static void Validate(EncoderItemVectorOptions o, BertConfig c)
    {
        if (o.MaxLength < 3 || o.MaxLength > c.MaxPositionEmbeddings)
            throw new ArgumentOutOfRangeException(nameof(EncoderItemVectorOptions.MaxLength), o.MaxLength,
                $"EncoderItemVectorOptions.MaxLength must be in [3, max_position_embeddings = {c.MaxPositionEmbeddings}], got {o.MaxLength}");
        if (o.BatchSize < 1 || o.BatchSize > 4096)
            throw new ArgumentOutOfRangeException(nameof(EncoderItemVectorOptions.BatchSize), o.BatchSize,
                $"EncoderItemVectorOptions.BatchSize must be in [1, 4096], got {o.BatchSize}");
        if (o.CacheDirectory is { Length: 0 })
            throw new ArgumentException("EncoderItemVectorOptions.CacheDirectory is empty; give a folder or null for no cache", nameof(o.CacheDirectory));
    }

    private static string Name(BertCheckpointInfo info, EncoderItemVectorOptions o)
    {
        string model = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(info.Directory)));
        return (o.RandomInit ? $"random-init {model} (seed {o.Seed})" : model) + $" mean-pooled, max {o.MaxLength} tokens";
    }

    /// <summary>Tokenizes, sorts by length, encodes in batches and puts the rows back in item order.</summary>
    private static ItemVectors Encode(BertCheckpointInfo info, IBackend backend, string[] texts, EncoderItemVectorOptions o, out int empty, out int truncated)
    {
        int V = texts.Length, C = info.Config.HiddenSize, budget = o.MaxLength - 2;
        var tok = new BertTextTokenizer(info.VocabPath, info.LowerCase, o.MaxLength, info.Config.MaxPositionEmbeddings);
        var tokens = new IReadOnlyList<int>[V];
        var todo = new List<int>(V);
        truncated = 0;
        for (int i = 0; i < V; i++)
        {
            if (string.IsNullOrWhiteSpace(texts[i])) continue;
            tokens[i] = tok.Tokenize(texts[i]);
            if (tokens[i].Count > budget) truncated++;
            todo.Add(i);
        }
        empty = V - todo.Count;
        // Buckets: by token length (as cut), ties by index, so every batch is nearly unpadded and the order deterministic.
        int[] order = [.. todo.OrderBy(i => Math.Min(tokens[i].Count, budget)).ThenBy(i => i)];
        var sorted = new float[(long)order.Length * C];   // (N, C) in sorted order
        if (order.Length > 0)
        {
            using var model = LoadModel(info, backend, o);
            if (backend is CpuSimdBackend) EncodePacked(model, tok, tokens, order, o, sorted);
            else EncodeOnBackend(model, tok, texts, order, o, sorted);
        }
        var values = new float[(long)V * C];   // (V, C)
        for (int k = 0; k < order.Length; k++) sorted.AsSpan(k * C, C).CopyTo(values.AsSpan(order[k] * C, C));
        return new ItemVectors(Name(info, o), V, C, values);
    }

    /// <summary>The Predictor's forward (pre-packed fp32 weights) on the CPU.</summary>
    private static void EncodePacked(RecModel model, BertTextTokenizer tok, IReadOnlyList<int>[] tokens, int[] order, EncoderItemVectorOptions o, float[] sorted)
    {
        var offsets = new int[order.Length + 1];   // (N + 1) CSR
        for (int k = 0; k < order.Length; k++) offsets[k + 1] = offsets[k] + tokens[order[k]].Count;
        var flat = new int[offsets[^1]];
        for (int k = 0; k < order.Length; k++)
            for (int j = 0; j < tokens[order[k]].Count; j++) flat[offsets[k] + j] = tokens[order[k]][j];
        using var p = new Predictor(model, new PredictorOptions
        {
            MaxLength = o.MaxLength, MaxBatch = o.BatchSize, ClsId = tok.ClsId, SepId = tok.SepId, Workspaces = 1,
        });
        p.SentenceEmbeddings(flat, offsets, sorted);
    }

    /// <summary><see cref="RecModel.Encode"/> on the model's backend, one padded batch at a time.</summary>
    private static void EncodeOnBackend(RecModel model, BertTextTokenizer tok, string[] texts, int[] order, EncoderItemVectorOptions o, float[] sorted)
    {
        int C = model.Bert.HiddenSize;
        for (int s = 0; s < order.Length; s += o.BatchSize)
        {
            int B = Math.Min(o.BatchSize, order.Length - s);
            var batch = new string[B];
            for (int b = 0; b < B; b++) batch[b] = texts[order[s + b]];
            var (T, _) = tok.EncodeBatch(batch, null, out var ids, out var types, out var mask);   // (B, T)
            var enc = model.Encode(new RecBatch { B = B, T = T, InputIds = ids, TokenTypeIds = types, AttentionMask = mask });
            SentenceEmbedding.MeanPooled(enc.LastHiddenState, mask, B, T, C, sorted.AsSpan(s * C, B * C));   // (B, C)
        }
    }

    /// <summary>SHA-256 of everything the vectors depend on: the recipe, the weights (or the random-init seed), the config,
    /// the vocabulary and casing, the maximum length and the texts.</summary>
    private static byte[] CacheKey(BertCheckpointInfo info, string[] texts, EncoderItemVectorOptions o)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Str(string s) { var b = Encoding.UTF8.GetBytes(s); Int(b.Length); h.AppendData(b); }
        void Int(long x) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteInt64LittleEndian(b, x); h.AppendData(b); }
        Str(Recipe);
        if (o.RandomInit) { Str("random-init"); Int((long)o.Seed); }
        else { Str("pretrained"); Int(new FileInfo(info.WeightsPath).Length); h.AppendData(FileSha256(info.WeightsPath)); }
        Str(info.Config.ToJson());
        Str(info.LowerCase ? "lower-case" : "cased");
        h.AppendData(FileSha256(info.VocabPath));
        Int(o.MaxLength);
        Int(texts.Length);
        foreach (var t in texts) Str(t);
        return h.GetHashAndReset();
    }

    private static byte[] FileSha256(string path)
    {
        using var s = File.OpenRead(path);
        return SHA256.HashData(s);
    }
}
