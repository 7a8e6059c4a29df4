// One evaluation of several models on the same test rows and users: per-example metrics, slices, full ranking, and the
// paired-bootstrap lift of each model over the reference baseline chosen on validation.
using FastRec.Engine.Data;
using FastRec.Engine.Metrics;

namespace FastRec.Engine.Evaluation;

/// <summary>A model to put on the scoreboard.</summary>
/// <param name="Name">Its name.</param>
/// <param name="Test">P(like) per test example (the scoreboard's test set, in order).</param>
/// <param name="ValidationAuc">Its validation AUC (model selection never looks at the test split).</param>
/// <param name="Scorer">Its full-ranking scorer, or null when it cannot rank the catalogue (then ranking prints n/a).</param>
/// <param name="IsBaseline">True for baselines: the reference is the baseline with the best validation AUC.</param>
/// <param name="Note">Why it cannot rank, or any caveat, for the report.</param>
public sealed record ScoreboardEntry(string Name, float[] Test, double ValidationAuc, IItemScorer? Scorer, bool IsBaseline, string? Note = null);

/// <summary>Options of <see cref="Scoreboard.Build"/>.</summary>
public sealed record ScoreboardOptions
{
    /// <summary>Full-ranking options (users, universe, K, sampled variant).</summary>
    public FullRankingOptions Ranking { get; init; } = new();
    /// <summary>Bootstrap options of the lifts.</summary>
    public BootstrapOptions Bootstrap { get; init; } = new();
    /// <summary>Also compute per-slice metrics (items cold / 1-4 / &gt;= 5, users new / 1-3 / warm).</summary>
    public bool Slices { get; init; } = true;
    /// <summary>Baselines (by name) that the models' lifts are also computed over, beside the reference (e.g. the
    /// history-feature logistic: "what does text add beyond the history features"); names not on the board are ignored.</summary>
    public IReadOnlyList<string> AlsoOver { get; init; } = [];
    /// <summary>Test rows to evaluate (indices into the test set); null = all. The strict cold-item test passes the rows of held-out items.</summary>
    public int[]? Rows { get; init; }
}

/// <summary>One model's results.</summary>
public sealed record ScoreboardRow(ScoreboardEntry Entry, MetricsReport? Metrics, FullRankingResult? Ranking, IReadOnlyList<SliceMetrics> Slices,
    IReadOnlyList<RankingSummary> RankingSlices)
{
    /// <summary>The model's name.</summary>
    public string Name => Entry.Name;
}

/// <summary>Several models evaluated on the same rows and users.</summary>
public sealed class Scoreboard
{
    /// <summary>Every model, in the order given.</summary>
    public required IReadOnlyList<ScoreboardRow> Rows { get; init; }
    /// <summary>The baseline with the best validation AUC: the reference of the lifts.</summary>
    public required ScoreboardRow? Reference { get; init; }
    /// <summary>Each non-baseline model over the reference: AUC, GAUC and NDCG@10 (when both rank).</summary>
    public required IReadOnlyList<LiftRow> Lifts { get; init; }
    /// <summary>Test rows evaluated and how many are positive.</summary>
    public required (int Rows, long Positives, int Users) Test { get; init; }

    /// <summary>Evaluates every entry on <paramref name="test"/> (rows <see cref="ScoreboardOptions.Rows"/>) and ranks the catalogue
    /// for the window's test users with each scorer.</summary>
    public static Scoreboard Build(EvalWindow window, ExampleSet test, IReadOnlyList<ScoreboardEntry> entries, ScoreboardOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(window); ArgumentNullException.ThrowIfNull(test); ArgumentNullException.ThrowIfNull(entries);
        var o = options ?? new ScoreboardOptions();
        foreach (var e in entries)
            if (e.Test.Length != test.Count) throw new ArgumentException($"{e.Name}: {e.Test.Length} test probabilities for {test.Count} test examples");
        var set = o.Rows is null ? test : test.Subset(o.Rows, test.Name);
        var rankingOptions = o.Slices ? Evaluation.Slices.WithItemSlices(window, o.Ranking) : o.Ranking;
        var rows = new List<ScoreboardRow>();
        foreach (var e in entries)
        {
            var p = o.Rows is null ? e.Test : o.Rows.Select(r => e.Test[r]).ToArray();
            MetricsReport? m = null;
            int pos = set.Positives;
            if (set.Count > 0 && pos > 0 && pos < set.Count) m = MetricsReport.Compute(set.Labels, p, set.Users, set.Items, new MetricsOptions { Ks = [10] });
            var ranking = e.Scorer is null ? null : FullRanking.Evaluate(window, e.Scorer, rankingOptions);
            var slices = o.Slices ? Evaluation.Slices.Compute(window, set, p) : [];
            var rankingSlices = o.Slices && ranking is not null ? Evaluation.Slices.Ranking(window, ranking) : [];
            rows.Add(new ScoreboardRow(e, m, ranking, slices, rankingSlices));
        }
        var reference = rows.Where(r => r.Entry.IsBaseline && double.IsFinite(r.Entry.ValidationAuc)).MaxBy(r => r.Entry.ValidationAuc);
        var lifts = new List<LiftRow>();
        if (reference is not null)
            foreach (var r in rows.Where(r => !r.Entry.IsBaseline))
            {
                lifts.AddRange(LiftsOver(test, r, reference, o));
                foreach (var other in rows.Where(x => x.Entry.IsBaseline && x != reference && o.AlsoOver.Contains(x.Name)))
                    lifts.AddRange(LiftsOver(test, r, other, o));
            }
        return new Scoreboard
        {
            Rows = rows, Reference = reference, Lifts = lifts,
            Test = (set.Count, set.Positives, set.Users.ToArray().Distinct().Count()),
        };
    }

    /// <summary>Paired-bootstrap lifts of <paramref name="model"/> over <paramref name="baseline"/> on the rows
    /// <see cref="ScoreboardOptions.Rows"/> of <paramref name="test"/> (the whole test set the entries were scored on).</summary>
    public static IEnumerable<LiftRow> LiftsOver(ExampleSet test, ScoreboardRow model, ScoreboardRow baseline, ScoreboardOptions o)
    {
        var set = o.Rows is null ? test : test.Subset(o.Rows, test.Name);
        var pm = Probabilities(model, o); var pb = Probabilities(baseline, o);
        if (model.Metrics is not null && baseline.Metrics is not null)
        {
            // Undefined metrics (one class only; no user with both classes) get no lift row rather than an error.
            if (!double.IsNaN(model.Metrics.Auc))
                yield return new LiftRow(model.Name, baseline.Name, "AUC", PairedBootstrap.Auc(set.Labels, set.Users, pm, pb, o.Bootstrap));
            if (model.Metrics.Gauc.UsersUsed > 0)
                yield return new LiftRow(model.Name, baseline.Name, "GAUC", PairedBootstrap.Gauc(set.Labels, set.Users, pm, pb, o.Bootstrap));
        }
        if (model.Ranking is not null && baseline.Ranking is not null)
            yield return new LiftRow(model.Name, baseline.Name, "NDCG@10", PairedBootstrap.Ndcg(model.Ranking, baseline.Ranking, 10, o.Bootstrap));
    }

    private static float[] Probabilities(ScoreboardRow r, ScoreboardOptions o)
        => o.Rows is null ? r.Entry.Test : o.Rows.Select(k => r.Entry.Test[k]).ToArray();

    /// <summary>The row named <paramref name="name"/>.</summary>
    public ScoreboardRow this[string name] => Rows.First(r => r.Name == name);
}
