// A trained or trainable recommender: the model plus everything needed to turn examples into its inputs.
using FastRec.Engine.Data;
using FastRec.Engine.Model;
using FastRec.Engine.Weights;
using FastRec.Kernels;

namespace FastRec.Engine.Training;

/// <summary>Where the training data came from and how examples were built, so eval/predict can rebuild them the same way.</summary>
public sealed record DataSchema
{
    /// <summary>"files" (generic CSV/TSV) or "movietweetings" (the .dat preset).</summary>
    public string Kind { get; init; } = "files";
    /// <summary>Column mapping of the interactions file (Kind = files).</summary>
    public InteractionFileOptions? Interactions { get; init; }
    /// <summary>Column mapping of the items file (Kind = files).</summary>
    public ItemFileOptions? Items { get; init; }
    /// <summary>Rating threshold of the MovieTweetings preset.</summary>
    public double PositiveThreshold { get; init; } = MovieTweetings.DefaultPositiveThreshold;
    /// <summary>How examples were built (context size K, split, negatives, seed).</summary>
    public ExampleOptions Examples { get; init; } = new();
    /// <summary>Append the leak-free <see cref="Data.HistoryFeatures"/> (user and item positive rates and counts) to the
    /// dense features.</summary>
    public bool HistoryFeatures { get; init; }

    /// <summary>The interactions file the model was trained on (a full path in memory; stored in fastrec.json relative to
    /// the checkpoint directory when possible), or null for the vendored MovieTweetings.</summary>
    public string? InteractionsPath { get; init; }
    /// <summary>The items file, like <see cref="InteractionsPath"/>.</summary>
    public string? ItemsPath { get; init; }

    /// <summary>The item catalogue the schema reads: <see cref="ItemsPath"/> with the <see cref="Items"/> column mapping, or
    /// movies.dat for the MovieTweetings preset (the vendored snapshot's when no path is set). What a serving host maps
    /// item ids to texts with.</summary>
    /// <exception cref="InvalidOperationException">a generic ("files") schema that names no items file.</exception>
    public ItemCatalog LoadItems()
    {
        if (Kind == "movietweetings")
            return MovieTweetings.LoadItems(ItemsPath ?? Path.Combine(MovieTweetings.FindVendoredDirectory(), "movies.dat"));
        if (ItemsPath is null) throw new InvalidOperationException($"the data schema (kind '{Kind}') names no items file");
        return ItemCatalog.Load(ItemsPath, Items);
    }

    /// <summary>Applies the schema's derived features to a freshly loaded table.</summary>
    public InteractionTable Prepare(InteractionTable table) => HistoryFeatures ? Data.HistoryFeatures.Append(table) : table;

    /// <summary>This schema with its file paths relative to <paramref name="directory"/> (as written into a checkpoint there).</summary>
    public DataSchema RelativeTo(string directory) => this with
    {
        InteractionsPath = InteractionsPath is null ? null : Path.GetRelativePath(directory, Path.GetFullPath(InteractionsPath)),
        ItemsPath = ItemsPath is null ? null : Path.GetRelativePath(directory, Path.GetFullPath(ItemsPath)),
    };

    /// <summary>This schema with relative file paths resolved against <paramref name="directory"/> (the checkpoint read).</summary>
    public DataSchema ResolvedFrom(string directory) => this with
    {
        InteractionsPath = InteractionsPath is null ? null : Path.GetFullPath(InteractionsPath, Path.GetFullPath(directory)),
        ItemsPath = ItemsPath is null ? null : Path.GetFullPath(ItemsPath, Path.GetFullPath(directory)),
    };

    /// <summary>The fields (not the file paths) in which <paramref name="other"/> differs from this schema: (field, this
    /// value, other value), named as in fastrec.json ("examples.split", "interactions.positive_threshold", ...). The
    /// column mappings and example options are compared property by property, so a field added to them is compared too.</summary>
    public IReadOnlyList<(string Field, string Value, string Other)> Differences(DataSchema other)
    {
        ArgumentNullException.ThrowIfNull(other);
        var diff = new List<(string, string, string)>();
        void Add(string field, object? a, object? b)
        {
            string x = Text(a), y = Text(b);
            if (x != y) diff.Add((field, x, y));
        }
        void Each<T>(string prefix, T a, T b)
        {
            foreach (var p in typeof(T).GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance))
                if (p.GetIndexParameters().Length == 0)
                    Add(prefix + "." + System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name), p.GetValue(a), p.GetValue(b));
        }
        Add("kind", Kind, other.Kind);
        Add("positive_threshold", PositiveThreshold, other.PositiveThreshold);
        Add("history_features", HistoryFeatures, other.HistoryFeatures);
        Each("interactions", Interactions ?? new(), other.Interactions ?? new());
        Each("items", Items ?? new(), other.Items ?? new());
        Each("examples", Examples, other.Examples);
        return diff;
    }

    private static string Text(object? v) => v switch
    {
        null => "none",
        string s => s,
        System.Collections.IEnumerable l => "[" + string.Join(", ", l.Cast<object?>().Select(Text)) + "]",
        double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    /// <summary>The fields that decide which examples fall in which split, where <paramref name="other"/> differs: the
    /// split kind, the fractions or boundary times, and the seed when either split is random (see <see cref="Differences"/>).</summary>
    public IReadOnlyList<(string Field, string Value, string Other)> SplitDifferences(DataSchema other)
    {
        bool random = Examples.Split == SplitKind.Random || other.Examples.Split == SplitKind.Random;
        return Differences(other).Where(d => d.Field is "examples.split" or "examples.train_fraction" or "examples.validation_fraction"
                                                 or "examples.validation_start" or "examples.test_start"
                                             || (random && d.Field == "examples.seed")).ToList();
    }
}

/// <summary>
/// The model (BERT encoder + adapter) with its vocabulary, text options, dense-feature scaler and data schema: what a
/// FastRec checkpoint holds (see <see cref="Checkpoint"/>). Owns the <see cref="RecModel"/>.
/// </summary>
public sealed class Recommender : IDisposable
{
    /// <summary>The model.</summary>
    public RecModel Model { get; }
    /// <summary>vocab.txt of the model.</summary>
    public string VocabPath { get; internal set; }
    /// <summary>How examples become tokens.</summary>
    public TextOptions Text { get; }
    /// <summary>Dense-feature standardisation (fitted on the training set).</summary>
    public FeatureScaler Scaler { get; set; }
    /// <summary>The data schema.</summary>
    public DataSchema Schema { get; set; }
    /// <summary>The pretrained model this one started from (a directory or name), for the record.</summary>
    public string BaseModel { get; set; } = "";

    /// <summary>Wraps <paramref name="model"/> (taking ownership).</summary>
    public Recommender(RecModel model, string vocabPath, TextOptions text, FeatureScaler? scaler = null, DataSchema? schema = null)
    {
        ArgumentNullException.ThrowIfNull(model); ArgumentNullException.ThrowIfNull(vocabPath); ArgumentNullException.ThrowIfNull(text);
        if (text.MaxLength < 3 || text.MaxLength > model.Bert.MaxPositionEmbeddings)
            throw new ArgumentOutOfRangeException(nameof(text), text.MaxLength,
                $"max length must be in [3, max_position_embeddings = {model.Bert.MaxPositionEmbeddings}], got {text.MaxLength}");
        if ((scaler?.Names.Length ?? 0) != model.Adapter.DenseFeatures)
            throw new ArgumentException($"the adapter takes {model.Adapter.DenseFeatures} dense features but the scaler has {scaler?.Names.Length ?? 0}");
        Model = model; VocabPath = vocabPath; Text = text; Scaler = scaler ?? FeatureScaler.None; Schema = schema ?? new DataSchema();
    }

    /// <summary>
    /// A pretrained Hugging Face model directory (config.json, model.safetensors, vocab.txt) plus a new head from
    /// <paramref name="adapter"/> initialised from <paramref name="seed"/>. The tokenizer's lower-casing comes from the directory.
    /// </summary>
    public static Recommender FromPretrained(string modelDir, IBackend backend, AdapterConfig adapter, TextOptions text, ulong seed = 42)
    {
        var info = BertCheckpoint.Open(modelDir);
        var model = BertCheckpoint.Load(modelDir, backend, adapter, seed);
        try
        {
            return new Recommender(model, info.VocabPath, text with { LowerCase = info.LowerCase }, FeatureScaler.Unfitted(adapter.DenseFeatures))
            { BaseModel = Path.GetFullPath(modelDir) };
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>An encoder of examples over <paramref name="catalog"/> with this model's vocabulary and text options.</summary>
    public ExampleEncoder EncoderFor(ItemCatalog catalog) => ExampleEncoder.Create(VocabPath, catalog, Text, Model.Bert.MaxPositionEmbeddings);

    /// <summary>Pad token id (the model's pad_token_id).</summary>
    public int PadId => Model.Bert.PadTokenId;

    /// <summary>Logits of every example of <paramref name="set"/> (evaluation mode), batched by length; with
    /// <paramref name="cache"/> the frozen layers are not recomputed.</summary>
    public float[] PredictLogits(ExampleSet set, EncodedExamples enc, int batchSize = 64, ActivationCache? cache = null,
                                 Action<int>? progress = null, CancellationToken ct = default)
        => PredictLogits(set, enc, 0, set?.Count ?? 0, batchSize, cache, ct, progress);

    /// <summary>As <see cref="PredictLogits(ExampleSet, EncodedExamples, int, ActivationCache?, Action{int}?, CancellationToken)"/>
    /// for the examples [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>) only (one rank's shard);
    /// the other logits are 0.</summary>
    public float[] PredictLogits(ExampleSet set, EncodedExamples enc, int start, int count, int batchSize, ActivationCache? cache,
                                 CancellationToken ct = default, Action<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(set); ArgumentNullException.ThrowIfNull(enc);
        if (enc.Count != set.Count) throw new ArgumentException($"{enc.Count} encoded examples for a set of {set.Count}");
        if (start < 0 || count < 0 || start > set.Count - count)
            throw new ArgumentOutOfRangeException(nameof(start), start, $"examples [{start}, {start} + {count}) are outside a set of {set.Count}");
        Scaler.Check(set);
        int N = count;
        var order = new int[N];
        var keys = new int[N];
        for (int i = 0; i < N; i++) { order[i] = start + i; keys[i] = enc.Length(start + i); }
        Array.Sort(keys, order);
        var logits = new float[set.Count];
        for (int s = 0; s < N; s += batchSize)
        {
            ct.ThrowIfCancellationRequested();
            var idx = order.AsSpan(s, Math.Min(batchSize, N - s));
            var batch = BatchPacker.Pack(set, enc, idx, PadId, Scaler);
            cache?.Attach(batch, idx, Model.Layout.NumLayers);
            var z = Model.Forward(batch);
            for (int b = 0; b < idx.Length; b++) logits[idx[b]] = z[b];
            progress?.Invoke(idx.Length);
        }
        return logits;
    }

    /// <summary>Probabilities σ(logit) of every example of <paramref name="set"/>.</summary>
    public float[] Predict(ExampleSet set, int batchSize = 64, CancellationToken ct = default)
    {
        var enc = EncoderFor(set.Catalog).Encode(set);
        return Sigmoid(PredictLogits(set, enc, batchSize, ct: ct));
    }

    /// <summary>σ applied elementwise (in double, rounded to float).</summary>
    public static float[] Sigmoid(ReadOnlySpan<float> logits)
    {
        var p = new float[logits.Length];
        for (int i = 0; i < p.Length; i++) p[i] = (float)(1.0 / (1.0 + Math.Exp(-(double)logits[i])));
        return p;
    }

    /// <summary>Disposes the model.</summary>
    public void Dispose() => Model.Dispose();
}
