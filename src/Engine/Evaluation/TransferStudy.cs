// `fastrec study transfer`: does the pretrained encoder transfer? The same head over five item representations, at four
// training windows and several seeds, on one fixed test set; paired bootstrap intervals for the lifts.
using System.Diagnostics;
using FastRec.Engine.Data;
using FastRec.Engine.Metrics;
using FastRec.Engine.Representations;
using FastRec.Engine.Training;
using FastRec.Kernels;

namespace FastRec.Engine.Evaluation;

/// <summary>What a variant needs to produce its item vectors for one fit.</summary>
/// <param name="Data">The windowed dataset.</param>
/// <param name="Window">Its evaluation window.</param>
/// <param name="Seed">The fit's seed.</param>
/// <param name="Backend">The backend.</param>
public sealed record TransferFitContext(RecDataset Data, EvalWindow Window, ulong Seed, IBackend Backend);

/// <summary>One representation of the study. <paramref name="Vectors"/> null means "no item vectors" (history features only).</summary>
/// <param name="Key">"a".."e".</param>
/// <param name="Name">Short name for tables and plots.</param>
/// <param name="Vectors">Item vectors for a fit (may be computed once and reused, or fitted on the window, e.g. ID embeddings).</param>
public sealed record TransferVariant(string Key, string Name, Func<TransferFitContext, ItemVectors?> Vectors);

/// <summary>Options of <see cref="TransferStudy.Run"/>.</summary>
public sealed record TransferStudyOptions
{
    /// <summary>Training windows: fractions of the training period, most recent part.</summary>
    public double[] Windows { get; init; } = [0.01, 0.05, 0.25, 1.0];
    /// <summary>Seeds per (variant, window).</summary>
    public int Seeds { get; init; } = 3;
    /// <summary>First seed; seed s is BaseSeed + s.</summary>
    public ulong BaseSeed { get; init; } = 42;
    /// <summary>Full ranking on this many test users (an evenly spaced sample of the users with a test positive; 0 = all).</summary>
    public int RankingUsers { get; init; } = 600;
    /// <summary>The head (same for every variant).</summary>
    public ItemVectorModelOptions Head { get; init; } = new();
    /// <summary>Bootstrap resamples of the lift intervals.</summary>
    public int BootstrapResamples { get; init; } = 1000;
}

/// <summary>One fit's test metrics.</summary>
public sealed record TransferPoint(string Variant, double Window, int Seed, int TrainRows, int TrainUsers, double ValidationAuc, int BestEpoch,
    double Auc, double Gauc, double LogLoss, double ColdGauc, double Ndcg10, double Recall20, double Seconds);

/// <summary>A lift of one variant over another at one window (first seed's models, paired bootstrap over users).</summary>
public sealed record TransferLift(string Variant, string Over, double Window, string Metric, Lift Lift);

/// <summary>Everything the study measured.</summary>
public sealed class TransferStudyResult
{
    /// <summary>Every fit.</summary>
    public required List<TransferPoint> Points { get; init; }
    /// <summary>The lifts of variant a over b, c and e (and of every variant over e) per window and metric.</summary>
    public required List<TransferLift> Lifts { get; init; }
    /// <summary>The variants, in order.</summary>
    public required IReadOnlyList<(string Key, string Name)> Variants { get; init; }
    /// <summary>Test rows and users (the same at every window).</summary>
    public required (int Rows, int Users, int RankingUsers, int ColdRows) Test { get; init; }
    /// <summary>Wall seconds of the whole study.</summary>
    public double Seconds { get; set; }

    /// <summary>Mean and standard deviation over seeds of <paramref name="metric"/> for a (variant, window).</summary>
    public (double Mean, double Sd, int N) Summary(string variant, double window, Func<TransferPoint, double> metric)
    {
        var v = Points.Where(p => p.Variant == variant && p.Window == window).Select(metric).Where(double.IsFinite).ToArray();
        if (v.Length == 0) return (double.NaN, double.NaN, 0);
        double m = v.Average();
        return (m, v.Length > 1 ? Math.Sqrt(v.Sum(x => (x - m) * (x - m)) / (v.Length - 1)) : 0, v.Length);
    }
}

/// <summary>The transfer study (issue 10, part 5).</summary>
public static class TransferStudy
{
    /// <summary>
    /// For each window (<see cref="StudyData.Window"/>, history features recomputed on it) and each variant and seed:
    /// fit <see cref="ItemVectorModel"/> on the window, early-stop on the fixed validation rows, score the fixed test rows
    /// (AUC, GAUC, log loss, GAUC on the items without a training interaction in the window) and rank the full catalogue
    /// for a fixed sample of test users (NDCG@10, Recall@20). Lifts of the first variant over the others at each window:
    /// paired bootstrap over users on the first seed's models.
    /// </summary>
    public static TransferStudyResult Run(InteractionTable raw, Func<InteractionTable, InteractionTable> prepare, ExampleOptions examples,
        StudyBoundaries bounds, IReadOnlyList<TransferVariant> variants, IBackend backend, TransferStudyOptions? options = null,
        Action<string>? log = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(variants); ArgumentNullException.ThrowIfNull(backend);
        var o = options ?? new TransferStudyOptions();
        if (variants.Count == 0) throw new ArgumentException("no variants to compare");
        if (o.Seeds < 1) throw new ArgumentOutOfRangeException(nameof(options), o.Seeds, "seeds must be >= 1");
        if (o.Windows.Length == 0) throw new ArgumentException("no training windows");
        var wall = Stopwatch.StartNew();
        var points = new List<TransferPoint>(); var lifts = new List<TransferLift>();
        (int, int, int, int) test = default;
        foreach (double frac in o.Windows)
        {
            var data = StudyData.Window(raw, prepare, examples, bounds, frac);
            var window = EvalWindow.FromDataset(data);
            var users = RankingSample(window, o.RankingUsers);
            string coldSlice = Slices.ItemSlices(window)[0].Name;   // items without a training interaction in the window
            int coldRows = 0;
            for (int k = 0; k < data.Test.Count; k++) if (window.TrainItemCount[data.Test.Items[k]] == 0) coldRows++;
            int trainUsers = data.Train.Users.ToArray().Distinct().Count();
            test = (data.Test.Count, data.Test.Users.ToArray().Distinct().Count(), users.Length, coldRows);
            log?.Invoke($"window {frac:P0} of the training period: {data.Train.Count:N0} training rows from {trainUsers:N0} users; " +
                        $"test {data.Test.Count:N0} rows ({coldRows:N0} on items without a training interaction), ranking {users.Length:N0} users");
            var first = new Dictionary<string, (float[] Probs, FullRankingResult Ranking)>();
            foreach (var variant in variants)
                for (int s = 0; s < o.Seeds; s++)
                {
                    ct.ThrowIfCancellationRequested();
                    var sw = Stopwatch.StartNew();
                    ulong seed = o.BaseSeed + (ulong)s;
                    var vectors = variant.Vectors(new TransferFitContext(data, window, seed, backend));
                    using var model = ItemVectorModel.Fit($"{variant.Key}) {variant.Name}", window, data.Train, data.Validation, vectors, backend,
                        o.Head with { Seed = seed }, null, ct);
                    var p = model.Predict(data.Test);
                    var m = MetricsReport.Compute(data.Test.Labels, p, data.Test.Users, data.Test.Items);
                    double coldGauc = Slices.Compute(window, data.Test, p).First(x => x.Name == coldSlice).Gauc;
                    var ranking = FullRanking.Evaluate(window, model, new FullRankingOptions { Users = users, Ks = [10, 20], SampledNegatives = 0 });
                    var point = new TransferPoint(variant.Key, frac, s, data.Train.Count, trainUsers, model.Best.ValidationAuc, model.Best.Epoch,
                        m.Auc, m.Gauc.Reportable ? m.Gauc.Value : double.NaN, m.LogLoss, coldGauc,
                        ranking.Overall.NdcgAt(10), ranking.Overall.RecallAt(20), sw.Elapsed.TotalSeconds);
                    points.Add(point);
                    log?.Invoke($"  {variant.Key}) {variant.Name,-34} seed {s}: AUC {point.Auc:0.0000} GAUC {point.Gauc:0.0000} cold GAUC {point.ColdGauc:0.0000} " +
                                $"NDCG@10 {point.Ndcg10:0.0000} (val AUC {point.ValidationAuc:0.0000}, epoch {point.BestEpoch}, {point.Seconds:0.0} s)");
                    if (s == 0) first[variant.Key] = (p, ranking);
                }
            // Lifts of the first variant over each other one, and of every variant over the last one (the reference).
            string a = variants[0].Key, e = variants[^1].Key;
            var pairs = variants.Skip(1).Select(v => (a, v.Key)).Concat(variants.Skip(1).SkipLast(1).Select(v => (v.Key, e))).Distinct();
            foreach (var (x, y) in pairs)
            {
                var bs = new BootstrapOptions { Resamples = o.BootstrapResamples, Seed = o.BaseSeed };
                lifts.Add(new(x, y, frac, "AUC", PairedBootstrap.Auc(data.Test.Labels, data.Test.Users, first[x].Probs, first[y].Probs, bs)));
                lifts.Add(new(x, y, frac, "GAUC", PairedBootstrap.Gauc(data.Test.Labels, data.Test.Users, first[x].Probs, first[y].Probs, bs)));
                lifts.Add(new(x, y, frac, "NDCG@10", PairedBootstrap.Ndcg(first[x].Ranking, first[y].Ranking, 10, bs)));
            }
        }
        var result = new TransferStudyResult
        {
            Points = points, Lifts = lifts, Variants = variants.Select(v => (v.Key, v.Name)).ToList(), Test = test,
            Seconds = wall.Elapsed.TotalSeconds,
        };
        return result;
    }

    /// <summary>An evenly spaced sample of <paramref name="count"/> of the window's test users (all when 0 or more).</summary>
    public static int[] RankingSample(EvalWindow window, int count)
    {
        var all = window.TestUsers.ToArray();
        return count <= 0 ? all : Experiment.SpacedIndices(all.Length, count).Select(i => all[i]).ToArray();
    }

}
