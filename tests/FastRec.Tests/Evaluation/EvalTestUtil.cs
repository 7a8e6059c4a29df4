// Fixtures of the evaluation tests: tiny EvalWindows built through RecDataset.Build, and scorers returning fixed scores.
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;

namespace FastRec.Tests.Evaluation;

/// <summary>One interaction of a synthetic dataset: user id, item index, label and the split it must land in.</summary>
internal readonly record struct Row(string User, int Item, float Label, SplitPart Part);

internal static class EvalTestUtil
{
    /// <summary>A dataset over items "i0".."i{items−1}" whose temporal split puts every row in its <see cref="Row.Part"/>:
    /// timestamps follow the rows ordered by part (then as given) and the fractions cut exactly there. Each part must be
    /// non-empty.</summary>
    public static RecDataset Dataset(int items, IEnumerable<Row> rows)
    {
        var catalog = new ItemCatalog();
        for (int i = 0; i < items; i++) catalog.Add($"i{i}", $"item {i}");
        var ordered = rows.OrderBy(r => r.Part).ToList(); // stable
        var b = new InteractionTableBuilder("synthetic.csv", catalog, [], MissingItemText.Refuse);
        long ts = 1;
        foreach (var r in ordered) b.Add(r.User, $"i{r.Item}", r.Label, 1, ts++, [], (int)ts);
        int n = ordered.Count, train = ordered.Count(r => r.Part == SplitPart.Train), val = ordered.Count(r => r.Part == SplitPart.Validation);
        return RecDataset.Build(b.Build(), new ExampleOptions { ContextSize = 2, TrainFraction = (double)train / n, ValidationFraction = (double)val / n });
    }

    /// <summary>The <see cref="EvalWindow"/> of <see cref="Dataset"/>.</summary>
    public static EvalWindow Window(int items, IEnumerable<Row> rows) => EvalWindow.FromDataset(Dataset(items, rows));

    /// <summary>Rows that only fill the train and validation splits (user "filler", item 0), so a test can put all its
    /// users in one split.</summary>
    public static IEnumerable<Row> Filler() => [new("filler", 0, 1, SplitPart.Train), new("filler", 0, 1, SplitPart.Validation)];

    public static Row Train(string user, int item, float label = 1) => new(user, item, label, SplitPart.Train);
    public static Row Val(string user, int item, float label = 1) => new(user, item, label, SplitPart.Validation);
    public static Row Test(string user, int item, float label = 1) => new(user, item, label, SplitPart.Test);

    /// <summary>Index of user <paramref name="id"/>.</summary>
    public static int U(this EvalWindow w, string id) => Array.IndexOf(w.UserIds, id);
}

/// <summary>A scorer returning score(userId, item); records the batch sizes it was called with.</summary>
internal sealed class FixedScorer(string name, Func<string, int, float> score) : IItemScorer
{
    public List<int> Batches { get; } = [];
    public string Name => name;

    /// <summary>Per-user score rows by user id; users not listed score 0 everywhere.</summary>
    public static FixedScorer Rows(string name, Dictionary<string, float[]> rows)
        => new(name, (u, i) => rows.TryGetValue(u, out var r) ? r[i] : 0f);

    public void ScoreItems(EvalWindow window, ReadOnlySpan<int> users, Span<float> scores)
    {
        Batches.Add(users.Length);
        int V = window.ItemCount;
        for (int b = 0; b < users.Length; b++)
            for (int i = 0; i < V; i++) scores[b * V + i] = score(window.UserIds[users[b]], i);
    }
}
