// Metrics per slice: items by training interactions (cold / 1-4 / >= 5), users by history before the test window.
using FastRec.Engine.Data;
using FastRec.Engine.Metrics;

namespace FastRec.Engine.Evaluation;

/// <summary>What a <see cref="Slice"/> selects.</summary>
public enum SliceKind : byte
{
    /// <summary>Every row (the overall line).</summary>
    All = 0,
    /// <summary>Rows whose item is a member (Members has one flag per catalogue item, V).</summary>
    Item = 1,
    /// <summary>Rows whose user is a member (Members has one flag per user, U).</summary>
    User = 2,
}

/// <summary>A named subset of items or users.</summary>
/// <param name="Name">Label for tables, e.g. "cold items (0 train)".</param>
/// <param name="Kind">Whether <paramref name="Members"/> flags items or users.</param>
/// <param name="Members">One flag per item (V) or user (U); empty for <see cref="SliceKind.All"/>.</param>
public sealed record Slice(string Name, SliceKind Kind, bool[] Members)
{
    /// <summary>"items", "users" or "all rows", for messages.</summary>
    internal string Selects => Kind switch { SliceKind.Item => "items", SliceKind.User => "users", _ => "all rows" };
}

/// <summary>Per-example metrics of one slice of the test rows. Undefined values are NaN (tables print "n/a").</summary>
/// <param name="Name">The slice.</param>
/// <param name="Kind">All, Item or User.</param>
/// <param name="Rows">Test rows in the slice.</param>
/// <param name="Share">Rows / all test rows.</param>
/// <param name="Positives">Rows with label &gt;= 0.5.</param>
/// <param name="Auc">ROC AUC; NaN with no rows or one class.</param>
/// <param name="Gauc">Impression-weighted per-user AUC; NaN when fewer than the minimum users have both classes.</param>
/// <param name="GaucUsers">Users with both classes (the users GAUC averages).</param>
/// <param name="LogLoss">Mean clipped BCE; NaN with no rows.</param>
public sealed record SliceMetrics(string Name, SliceKind Kind, long Rows, double Share, long Positives,
    double Auc, double Gauc, int GaucUsers, double LogLoss);

/// <summary>
/// The slices of the evaluation: items with 0 / 1-4 / &gt;= 5 training interactions (<see cref="EvalWindow.TrainItemCount"/>)
/// and users with 0 (new) / 1-3 / &gt;= 4 (warm) interactions before the test window (<see cref="EvalWindow.HistoryUserCount"/>).
/// Per-example metrics per slice (<see cref="Compute"/>) and full-ranking metrics per slice (<see cref="Ranking"/>).
/// </summary>
public static class Slices
{
    /// <summary>GAUC from fewer users with both classes than this is reported as undefined.</summary>
    public const int MinGaucUsers = 20;

    /// <summary>Item slices by training interactions: "items: cold (0 train)", "items: 1-4 train", "items: >= 5 train".</summary>
    public static Slice[] ItemSlices(EvalWindow window)
    {
        ArgumentNullException.ThrowIfNull(window);
        var counts = window.TrainItemCount;
        return
        [
            new("items: cold (0 train)", SliceKind.Item, counts.Select(c => c == 0).ToArray()),
            new("items: 1-4 train", SliceKind.Item, counts.Select(c => c is >= 1 and <= 4).ToArray()),
            new("items: >= 5 train", SliceKind.Item, counts.Select(c => c >= 5).ToArray()),
        ];
    }

    /// <summary>User slices by interactions before the test window: "users: new (0 before test)", "users: 1-3 before test",
    /// "users: warm (>= 4 before test)".</summary>
    public static Slice[] UserSlices(EvalWindow window)
    {
        ArgumentNullException.ThrowIfNull(window);
        var h = Enumerable.Range(0, window.UserCount).Select(window.HistoryUserCount).ToArray();
        return
        [
            new("users: new (0 before test)", SliceKind.User, h.Select(c => c == 0).ToArray()),
            new("users: 1-3 before test", SliceKind.User, h.Select(c => c is >= 1 and <= 3).ToArray()),
            new("users: warm (>= 4 before test)", SliceKind.User, h.Select(c => c >= 4).ToArray()),
        ];
    }

    /// <summary>AUC, GAUC (with its user count), log loss, rows and share of <paramref name="probabilities"/> on
    /// <paramref name="test"/>: overall ("all"), then each item slice, then each user slice. A GAUC from fewer than
    /// <paramref name="minGaucUsers"/> users with both classes is NaN.</summary>
    public static SliceMetrics[] Compute(EvalWindow window, ExampleSet test, float[] probabilities, int minGaucUsers = MinGaucUsers)
    {
        ArgumentNullException.ThrowIfNull(window); ArgumentNullException.ThrowIfNull(test); ArgumentNullException.ThrowIfNull(probabilities);
        if (test.UserIds.Length != window.UserCount)
            throw new ArgumentException($"the test set has {test.UserIds.Length} users but the window has {window.UserCount}; build both from one RecDataset", nameof(test));
        if (test.Catalog.Count != window.ItemCount)
            throw new ArgumentException($"the test set's catalogue has {test.Catalog.Count} items but the window's has {window.ItemCount}", nameof(test));
        if (probabilities.Length != test.Count)
            throw new ArgumentException($"probabilities has {probabilities.Length} values but the test set has {test.Count} rows", nameof(probabilities));
        if (minGaucUsers < 1) throw new ArgumentOutOfRangeException(nameof(minGaucUsers), minGaucUsers, "minGaucUsers must be >= 1");
        MetricsInput.Validate(test.Labels, probabilities, probabilities: true);

        var result = new List<SliceMetrics> { Metrics("all", SliceKind.All, test, probabilities, _ => true, minGaucUsers) };
        foreach (var s in ItemSlices(window))
            result.Add(Metrics(s.Name, s.Kind, test, probabilities, i => s.Members[test.Items[i]], minGaucUsers));
        foreach (var s in UserSlices(window))
            result.Add(Metrics(s.Name, s.Kind, test, probabilities, i => s.Members[test.Users[i]], minGaucUsers));
        return result.ToArray();
    }

    private static SliceMetrics Metrics(string name, SliceKind kind, ExampleSet test, float[] p, Func<int, bool> member, int minGaucUsers)
    {
        var rows = Enumerable.Range(0, test.Count).Where(member).ToArray();
        var y = rows.Select(i => test.Labels[i]).ToArray();
        var s = rows.Select(i => p[i]).ToArray();
        var u = rows.Select(i => test.Users[i]).ToArray();
        long positives = y.Count(MetricsInput.IsPositive);
        double share = test.Count == 0 ? double.NaN : (double)rows.Length / test.Count;
        if (rows.Length == 0) return new SliceMetrics(name, kind, 0, share, 0, double.NaN, double.NaN, 0, double.NaN);
        double auc = RocAuc.Sorted(y, s, RocAuc.SortedByScore(s), out _, out _);
        var g = UserMetrics.Gauc(y, s, u);
        double gauc = g.UsersUsed < minGaucUsers ? double.NaN : g.Value;
        return new SliceMetrics(name, kind, rows.Length, share, positives, auc, gauc, g.UsersUsed, ProbabilityMetrics.LogLoss(y, s));
    }

    /// <summary><paramref name="options"/> (default options when null) with the item slices of <paramref name="window"/> as
    /// relevant filters, so that one <see cref="FullRanking.Evaluate"/> pass also yields the per-item-slice metrics.</summary>
    public static FullRankingOptions WithItemSlices(EvalWindow window, FullRankingOptions? options = null)
        => (options ?? new FullRankingOptions()) with { RelevantFilters = ItemSlices(window) };

    /// <summary>Full-ranking metrics overall, per user slice (the users restricted; from the per-user values) and per item
    /// slice (the relevant items restricted, candidates unchanged; users without a relevant item of the slice skipped).
    /// <paramref name="result"/> must come from options built by <see cref="WithItemSlices"/>.</summary>
    public static RankingSummary[] Ranking(EvalWindow window, FullRankingResult result)
    {
        ArgumentNullException.ThrowIfNull(window); ArgumentNullException.ThrowIfNull(result);
        var list = new List<RankingSummary> { result.Overall };
        foreach (var s in UserSlices(window)) list.Add(result.Summarize(s));
        foreach (var s in ItemSlices(window))
        {
            var r = result.Restrictions.FirstOrDefault(x => x.Name == s.Name)
                ?? throw new ArgumentException($"the result has no restriction '{s.Name}'; evaluate with Slices.WithItemSlices(window, options)", nameof(result));
            list.Add(r);
        }
        return list.ToArray();
    }
}
