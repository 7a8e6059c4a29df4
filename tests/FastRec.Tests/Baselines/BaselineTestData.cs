// Hand-made datasets for the baseline tests: rows given per split, one timestamp per row, optional history features.
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;

namespace FastRec.Tests.Baselines;

/// <summary>A small dataset with its <see cref="EvalWindow"/>: users "u0".., items "i0".. (text "item k").</summary>
internal sealed record HandData(RecDataset Data, EvalWindow Window)
{
    /// <summary>Rows (user, item, label) of each split in time order; row r of the whole list gets timestamp 10·r.
    /// Every split needs at least one row.</summary>
    public static HandData Build(int users, int items, (int U, int I, float Y)[] train, (int U, int I, float Y)[] validation,
        (int U, int I, float Y)[] test, bool historyFeatures = false)
    {
        var catalog = new ItemCatalog();
        for (int i = 0; i < items; i++) catalog.Add($"i{i}", $"item {i}");
        var rows = train.Concat(validation).Concat(test).ToArray();
        int N = rows.Length;
        var table = new InteractionTable("hand", catalog, Enumerable.Range(0, users).Select(u => $"u{u}").ToArray(), [],
            rows.Select(r => r.U).ToArray(), rows.Select(r => r.I).ToArray(), rows.Select(r => r.Y).ToArray(),
            Enumerable.Repeat(1f, N).ToArray(), Enumerable.Range(0, N).Select(r => 10L * r).ToArray(), [],
            Enumerable.Range(2, N).ToArray(), 0, 0);
        if (historyFeatures) table = HistoryFeatures.Append(table);
        var data = RecDataset.Build(table, new ExampleOptions
        {
            TrainFraction = (double)train.Length / N, ValidationFraction = (double)validation.Length / N,
        });
        Assert.That((data.Train.Count, data.Validation.Count, data.Test.Count), Is.EqualTo((train.Length, validation.Length, test.Length)));
        return new HandData(data, EvalWindow.FromDataset(data));
    }

    /// <summary>The window's full-ranking scores of <paramref name="users"/>. (users, V)</summary>
    public static float[] Scores(FastRec.Engine.Evaluation.IItemScorer scorer, EvalWindow window, params int[] users)
    {
        var s = new float[users.Length * window.ItemCount];
        scorer.ScoreItems(window, users, s);
        return s;
    }
}
