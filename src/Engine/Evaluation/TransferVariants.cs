// The five item representations of the transfer study, built once per catalogue (or per fit for ID embeddings).
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Representations;
using FastRec.Kernels;

namespace FastRec.Engine.Evaluation;

/// <summary>The standard variants: (a) pretrained encoder, (b) the same encoder randomly initialised, (c) non-neural text
/// (genres + year + hashed title words), (d) ID embeddings (BPR-MF item factors fitted on the training window),
/// (e) history features only. (a)-(d) also get the history features: every variant is "history + a representation".</summary>
public static class TransferVariants
{
    /// <summary>The keys of the standard variants, in order.</summary>
    public static readonly string[] Keys = ["a", "b", "c", "d", "e"];

    /// <summary>Builds the variants named in <paramref name="keys"/> (subset of a-e, in the standard order). Encoder vectors
    /// are computed (or read from <paramref name="cacheDirectory"/>) now; ID embeddings are fitted per window and seed.</summary>
    public static List<TransferVariant> Build(IEnumerable<string> keys, string encoderDir, ItemCatalog catalog, IBackend backend,
        string? cacheDirectory, BprOptions? bpr = null, Action<string>? log = null)
    {
        var want = keys.Select(k => k.Trim().ToLowerInvariant()).ToHashSet();
        foreach (var k in want)
            if (!Keys.Contains(k)) throw new ArgumentException($"unknown variant '{k}': the variants are {string.Join(", ", Keys)}");
        if (want.Count == 0) throw new ArgumentException("no variants selected");
        string model = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(encoderDir)));
        var list = new List<TransferVariant>();
        if (want.Contains("a"))
        {
            var v = EncoderItemVectors.Compute(encoderDir, backend, catalog, new EncoderItemVectorOptions { CacheDirectory = cacheDirectory }, log);
            list.Add(new TransferVariant("a", $"pretrained {model} item vectors", _ => v));
        }
        if (want.Contains("b"))
        {
            var v = EncoderItemVectors.Compute(encoderDir, backend, catalog, new EncoderItemVectorOptions { CacheDirectory = cacheDirectory, RandomInit = true, Seed = 1 }, log);
            list.Add(new TransferVariant("b", $"random-init {model} item vectors", _ => v));
        }
        if (want.Contains("c"))
        {
            var v = NonNeuralItemVectors.Compute(catalog);
            list.Add(new TransferVariant("c", "genre + year + title-word vectors", _ => v));
        }
        if (want.Contains("d"))
            list.Add(new TransferVariant("d", "ID embeddings (BPR-MF item factors)", c =>
            {
                var mf = BprBaseline.Fit(c.Window, c.Backend, (bpr ?? new BprOptions()) with { Seed = c.Seed });
                int V = c.Window.ItemCount, D = mf.Options.Dim;
                var values = new float[V * D];
                for (int i = 0; i < V; i++)
                    if (c.Window.TrainItemCount[i] > 0) mf.ItemVector(i).CopyTo(values.AsSpan(i * D, D));   // untrained items: zero (no ID signal)
                return new ItemVectors("BPR-MF item factors", V, D, values);
            }));
        if (want.Contains("e")) list.Add(new TransferVariant("e", "history features only", _ => null));
        return list;
    }
}
