// The model a host serves: one Predictor loaded from a checkpoint at start, the item catalogue and its tokens, shared by every request.
using FastRec.Engine.Data;
using FastRec.Engine.Serving;

namespace FastRec.Serving;

/// <summary>
/// A FastRec checkpoint ready to serve: its <see cref="Engine.Serving.Predictor"/> (thread-safe, allocation-free per call),
/// the item catalogue its data schema names (item id -> text), every item's WordPiece tokens (computed once here, so a
/// request only joins them), the context size K and the raw dense features the head takes. One instance per process,
/// shared by all requests; disposing it disposes the Predictor.
/// </summary>
public sealed class ScoringModel : IDisposable
{
    private readonly int[][] _tokens;   // (V) each catalogue item's tokens

    /// <summary>The shared predictor.</summary>
    public Predictor Predictor { get; }
    /// <summary>The catalogue request item ids are looked up in.</summary>
    public ItemCatalog Catalog { get; }
    /// <summary>The checkpoint directory, as given.</summary>
    public string ModelDirectory { get; }
    /// <summary>K: the most recent history items the model reads (the checkpoint's context size, as in training).</summary>
    public int ContextSize { get; }
    /// <summary>Names of the raw dense features a request must give, in the head's order (empty when it takes none).</summary>
    public IReadOnlyList<string> DenseFeatures => Predictor.DenseFeatures;

    private ScoringModel(Predictor predictor, ItemCatalog catalog, string dir, int contextSize)
    {
        Predictor = predictor; Catalog = catalog; ModelDirectory = dir; ContextSize = contextSize;
        _tokens = new int[catalog.Count][];
        for (int i = 0; i < catalog.Count; i++) _tokens[i] = predictor.EncodeItem(catalog.Text(i));
    }

    /// <summary>Loads the checkpoint <paramref name="options"/>.Model once, with the item catalogue of its data schema (or
    /// <paramref name="options"/>.Items when given: a movies.dat for the MovieTweetings preset, else an items file with the
    /// checkpoint's column mapping).</summary>
    /// <exception cref="InvalidDataException">not a FastRec checkpoint, or a checkpoint without a data schema.</exception>
    public static ScoringModel Load(ServingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Model is null) throw new ArgumentException("--model is required to serve POST /score", nameof(options));
        var predictor = Predictor.Load(options.Model, new PredictorOptions { Precision = options.Precision, MaxBatch = 1 });
        try
        {
            var schema = predictor.Schema ?? throw new InvalidDataException($"{options.Model}: the checkpoint has no data schema");
            if (options.Items is not null) schema = schema with { ItemsPath = Path.GetFullPath(options.Items) };
            return new ScoringModel(predictor, schema.LoadItems(), options.Model, schema.Examples.ContextSize);
        }
        catch
        {
            predictor.Dispose();
            throw;
        }
    }

    /// <summary>The probability that the user whose liked items are <paramref name="history"/> (catalogue indices, most
    /// recent first; the first <see cref="ContextSize"/> are read) engages with <paramref name="candidate"/>.
    /// <paramref name="dense"/>: the <see cref="DenseFeatures"/> raw values (standardised inside, as in training).</summary>
    public float Score(IReadOnlyList<int> history, int candidate, ReadOnlySpan<float> dense)
    {
        ArgumentNullException.ThrowIfNull(history);
        int k = Math.Min(ContextSize, history.Count);
        var context = new int[k][];
        for (int i = 0; i < k; i++) context[i] = _tokens[history[i]];
        return Predictor.Score(Predictor.JoinContext(context), _tokens[candidate], dense);
    }

    /// <summary>Disposes the predictor.</summary>
    public void Dispose() => Predictor.Dispose();
}
