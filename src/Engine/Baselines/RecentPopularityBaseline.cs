// Recently popular: every user gets the items ranked by how often they were rated in the last few days. On a log of
// new releases (MovieTweetings) this is the baseline to beat for full ranking.
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Metrics;

namespace FastRec.Engine.Baselines;

/// <summary>
/// r(i, t) = the number of interactions with item i in [t − Δ, t) (timestamps in seconds), over every interaction of the
/// window before t. <see cref="ScoreItems"/> ranks by r(i, test start) for every user; as an <see cref="IBaseline"/> the raw
/// score ln(1 + r(i, t)) at each example's time is calibrated by a 1-D logistic regression on the training rows. Δ is
/// chosen by full-ranking NDCG@10 on the validation window (<see cref="FitTuned"/>), never on the test split.
/// </summary>
public sealed class RecentPopularityBaseline : IRankingBaseline
{
    private readonly EvalWindow _window;
    private readonly long _seconds;
    private DenseLogisticBaseline? _calibration;

    /// <inheritdoc/>
    public string Name => "recently popular";
    /// <summary>Δ in days.</summary>
    public double Days { get; }

    private RecentPopularityBaseline(EvalWindow window, double days)
    {
        _window = window; Days = days; _seconds = (long)Math.Round(days * 86_400);
    }

    /// <summary>Δ = <paramref name="days"/>, calibrated on <paramref name="train"/> (rows of <paramref name="window"/>'s data).</summary>
    public static RecentPopularityBaseline Fit(EvalWindow window, ExampleSet train, double days)
    {
        ArgumentNullException.ThrowIfNull(window); ArgumentNullException.ThrowIfNull(train);
        if (!(days > 0 && days <= 36_500)) throw new ArgumentOutOfRangeException(nameof(days), days, "the window must be in (0, 36500] days");
        ScorerArgs.CheckSet(window, train);
        if (train.Count == 0) throw new ArgumentException("the training set is empty");
        var m = new RecentPopularityBaseline(window, days);
        m._calibration = DenseLogisticBaseline.Fit("recently popular calibration", ["raw score"], m.Raw(train), train.Labels, train.Weights);
        return m;
    }

    /// <summary>Δ from <paramref name="grid"/> (days) with the best NDCG@10 on <see cref="EvalWindow.ForValidation"/> (ties: the earlier).</summary>
    public static RecentPopularityBaseline FitTuned(EvalWindow window, ExampleSet train, ExampleSet validation, IReadOnlyList<double> grid)
    {
        ArgumentNullException.ThrowIfNull(window); ArgumentNullException.ThrowIfNull(grid);
        if (grid.Count == 0) throw new ArgumentException("the recent-popularity grid is empty", nameof(grid));
        var vw = EvalWindow.ForValidation(window.Catalog, train, validation);
        double best = grid[0], bestNdcg = double.NegativeInfinity;
        if (vw.TestUsers.Length > 0)
            foreach (double days in grid)
            {
                var r = FullRanking.Evaluate(vw, Fit(vw, train, days), new FullRankingOptions { Ks = [10], SampledNegatives = 0 });
                if (r.Overall.Ndcg[0] > bestNdcg) { bestNdcg = r.Overall.Ndcg[0]; best = days; }
            }
        return Fit(window, train, best);
    }

    private float Count(EvalWindow w, int item, long t) => (float)(w.ItemHistoryBefore(item, t).Interactions - w.ItemHistoryBefore(item, t - _seconds).Interactions);

    private float[] Raw(ExampleSet set)
    {
        var raw = new float[set.Count];
        for (int k = 0; k < set.Count; k++) raw[k] = MathF.Log(1 + Count(_window, set.Items[k], set.Timestamps[k]));
        return raw;
    }

    /// <inheritdoc/>
    public float[] Predict(ExampleSet set)
    {
        ScorerArgs.CheckSet(_window, set);
        var raw = Raw(set);
        for (int k = 0; k < raw.Length; k++) raw[k] = (float)(1 / (1 + Math.Exp(-_calibration!.Logit([raw[k]]))));
        return raw;
    }

    /// <summary>Writes r(i, test start of <paramref name="window"/>) for every item into each user's row. (users.Length, V)</summary>
    public void ScoreItems(EvalWindow window, ReadOnlySpan<int> users, Span<float> scores)
    {
        int V = _window.ItemCount;
        ScorerArgs.Check(window, users, scores, V);
        long t = Math.Min(window.TestStart, window.End);
        var row = new float[V];
        for (int i = 0; i < V; i++) row[i] = Count(window, i, t);
        for (int b = 0; b < users.Length; b++) row.CopyTo(scores.Slice(b * V, V));
    }
}
