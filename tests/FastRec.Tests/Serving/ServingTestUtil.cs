// Fixtures of the serving tests: a small TowerModel trained for one epoch on a synthetic log with random item vectors.
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Representations;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;

namespace FastRec.Tests.Serving;

internal static class ServingTestUtil
{
    public const int Users = 30, Items = 25, EncodingDim = 6;

    /// <summary>Users of taste u % 2 rate 12 random items each (liked when the item's parity matches, 80 %), one hour
    /// apart; items "m0".."m24" with texts "movie k"; a temporal 80/10/10 split.</summary>
    public static RecDataset Dataset()
    {
        var catalog = new ItemCatalog();
        for (int i = 0; i < Items; i++) catalog.Add($"m{i}", $"movie {i}");
        var b = new InteractionTableBuilder("serving.csv", catalog, [], MissingItemText.Refuse);
        int line = 1;
        for (int k = 0; k < 12; k++)
            for (int u = 0; u < Users; u++)
            {
                ulong c = (ulong)(k * 1000 + u);
                int item = (int)(Rng.Hash(21, c) % Items);
                bool like = Rng.Uniform(22, c) < (item % 2 == u % 2 ? 0.8f : 0.2f);
                b.Add($"u{u}", $"m{item}", like ? 1 : 0, 1, 3_600L * line, [], ++line);
            }
        return RecDataset.Build(b.Build(), new ExampleOptions { ContextSize = 1 });
    }

    /// <summary>Random item vectors (Items, EncodingDim).</summary>
    public static ItemVectors Vectors()
    {
        var v = new float[Items * EncodingDim];
        for (int i = 0; i < v.Length; i++) v[i] = Rng.Normal(23, (ulong)i);
        return new ItemVectors("random", Items, EncodingDim, v);
    }

    /// <summary>The model trained for one epoch (d 4, H 8, N 6, two sampled items per rating) on <paramref name="vectors"/>
    /// (default <see cref="Vectors"/>) and its serving scorer.</summary>
    public static (RecDataset Data, EvalWindow Window, TowerScorer Scorer) Trained(ItemVectors? vectors = null)
    {
        var data = Dataset();
        var window = EvalWindow.FromDataset(data);
        using var backend = new CpuSimdBackend();
        using var model = TowerModel.Fit("serving", window, data.Train, data.Validation, vectors ?? Vectors(), backend, new TowerModelOptions
        { Dim = 4, Hidden = 8, HistoryLength = 6, Negatives = 2, Epochs = 1, BatchSize = 32, ValidationRankingUsers = 10 });
        return (data, window, model.CreateScorer(window, includeTest: true));
    }

    /// <summary>A random history of <paramref name="n"/> items with labels 0, 1 and 0.5.</summary>
    public static (int[] Items, float[] Labels) History(int n, int itemCount, ulong seed)
    {
        var items = new int[n]; var labels = new float[n];
        for (int j = 0; j < n; j++)
        {
            items[j] = (int)(Rng.Hash(seed, (ulong)j) % (ulong)itemCount);
            labels[j] = (j % 3) switch { 0 => 1f, 1 => 0f, _ => 0.5f };
        }
        return (items, labels);
    }

    /// <summary>All V scores of a history.</summary>
    public static float[] Scores(TowerScorer s, int[] items, float[] labels)
    {
        var scores = new float[s.ItemCount];
        s.Score(items, labels, scores, s.CreateWorkspace());
        return scores;
    }
}
