// Paired bootstrap over users: percentile intervals of (model − baseline) for AUC, GAUC and per-user ranking metrics.
using System.Globalization;
using FastRec.Engine.Metrics;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;

namespace FastRec.Engine.Evaluation;

/// <summary>Options of <see cref="PairedBootstrap"/>.</summary>
public sealed record BootstrapOptions
{
    /// <summary>Resamples (each draws as many users as there are, with replacement).</summary>
    public int Resamples { get; init; } = 1000;
    /// <summary>Seed of the draws: the same seed gives the same interval.</summary>
    public ulong Seed { get; init; } = 42;
    /// <summary>Coverage of the percentile interval, in (0, 1).</summary>
    public double Confidence { get; init; } = 0.95;
}

/// <summary>A difference model − baseline with its bootstrap percentile interval [Lo, Hi].</summary>
/// <param name="Delta">The difference on the full data.</param>
/// <param name="Lo">Lower end of the interval.</param>
/// <param name="Hi">Upper end of the interval.</param>
public sealed record Lift(double Delta, double Lo, double Hi)
{
    /// <summary>True when the interval excludes 0.</summary>
    public bool Significant => Lo > 0 || Hi < 0;

    /// <summary>"lift +0.0123 [+0.0050, +0.0190]" when significant (a negative lift keeps its sign), else
    /// "no significant lift (+0.0010 [-0.0030, +0.0050])".</summary>
    public override string ToString() => Significant
        ? $"lift {Signed(Delta)} [{Signed(Lo)}, {Signed(Hi)}]"
        : $"no significant lift ({Signed(Delta)} [{Signed(Lo)}, {Signed(Hi)}])";

    private static string Signed(double v) => v.ToString("+0.0000;-0.0000;+0.0000", CultureInfo.InvariantCulture);
}

/// <summary>One line of a lift table: <see cref="Model"/> against <see cref="Baseline"/> on <see cref="Metric"/>.</summary>
public sealed record LiftRow(string Model, string Baseline, string Metric, Lift Lift);

/// <summary>
/// Paired bootstrap over users for two models scored on the same rows (or the same users): each resample draws users
/// with replacement (a counter RNG keyed by the seed and the resample, so the result does not depend on threads) and
/// recomputes model − baseline with each user's rows weighted by how often the user was drawn. The interval is the
/// percentile interval (linear interpolation, numpy's default) of the resampled differences; Delta is the difference on
/// the full data.
/// </summary>
public static class PairedBootstrap
{
    /// <summary>Global AUC (ties count 1/2). Users drawn: those with at least one row. Each model is sorted once; a
    /// resample is one pass over each order with the drawn multiplicities as weights.</summary>
    public static Lift Auc(ReadOnlySpan<float> labels, ReadOnlySpan<int> users, ReadOnlySpan<float> model, ReadOnlySpan<float> baseline, BootstrapOptions? options = null)
    {
        var o = Check(options);
        CheckRows(labels, users, model, baseline);
        var (population, rowPop) = Population(users);
        var y = labels.ToArray();
        var job = new AucJob(y, rowPop, Sorted(model), Sorted(baseline));
        double delta = job.Delta(null);
        if (double.IsNaN(delta)) throw new ArgumentException("AUC is undefined: the rows hold one class only", nameof(labels));
        return Interval(delta, o, population.Length, job);
    }

    /// <summary>GAUC (impression-weighted per-user AUC). Users drawn: those with both classes; each user's AUC under each
    /// model and impressions are computed once.</summary>
    public static Lift Gauc(ReadOnlySpan<float> labels, ReadOnlySpan<int> users, ReadOnlySpan<float> model, ReadOnlySpan<float> baseline, BootstrapOptions? options = null)
    {
        var o = Check(options);
        CheckRows(labels, users, model, baseline);
        var (m, impressions) = PerUserAuc(labels, users, model);
        var (b, _) = PerUserAuc(labels, users, baseline);
        if (m.Length == 0) throw new ArgumentException("GAUC is undefined: no user has both classes", nameof(labels));
        var job = new WeightedMeanJob(m, b, impressions);
        return Interval(job.Delta(null), o, m.Length, job);
    }

    /// <summary>NDCG@K per user from two full-ranking results of the same users (NaN = skipped, identically in both).</summary>
    public static Lift Ndcg(FullRankingResult model, FullRankingResult baseline, int k = 10, BootstrapOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model); ArgumentNullException.ThrowIfNull(baseline);
        if (!model.Users.SequenceEqual(baseline.Users))
            throw new ArgumentException($"the results of '{model.Scorer}' and '{baseline.Scorer}' cover different users; evaluate both with the same window and options", nameof(baseline));
        return PerUser(model.PerUser(RankingMetric.Ndcg, k), baseline.PerUser(RankingMetric.Ndcg, k), options);
    }

    /// <summary>The mean of per-user values (aligned by user; NaN = user not counted, and it must be NaN in both).</summary>
    public static Lift PerUser(ReadOnlySpan<double> model, ReadOnlySpan<double> baseline, BootstrapOptions? options = null)
    {
        var o = Check(options);
        if (model.Length != baseline.Length)
            throw new ArgumentException($"length mismatch: model has {model.Length} per-user values but baseline has {baseline.Length}", nameof(baseline));
        var m = new List<double>(model.Length); var b = new List<double>(model.Length);
        for (int i = 0; i < model.Length; i++)
        {
            if (double.IsNaN(model[i]) != double.IsNaN(baseline[i]))
                throw new ArgumentException($"user {i}: model value {model[i]} and baseline value {baseline[i]}; a user must be counted by both or neither", nameof(baseline));
            if (double.IsInfinity(model[i]) || double.IsInfinity(baseline[i]))
                throw new ArgumentException($"user {i}: values must be finite or NaN, got {model[i]} and {baseline[i]}", nameof(model));
            if (double.IsNaN(model[i])) continue;
            m.Add(model[i]); b.Add(baseline[i]);
        }
        if (m.Count == 0) throw new ArgumentException("no user has a value in both models", nameof(model));
        var job = new WeightedMeanJob(m.ToArray(), b.ToArray(), null);
        return Interval(job.Delta(null), o, m.Count, job);
    }

    /// <summary>The percentile at <paramref name="q"/> in [0, 1] of ascending <paramref name="sorted"/>, interpolated linearly.</summary>
    internal static double Percentile(ReadOnlySpan<double> sorted, double q)
    {
        double h = (sorted.Length - 1) * q;
        int lo = (int)Math.Floor(h);
        return lo + 1 >= sorted.Length ? sorted[^1] : sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]);
    }

    private static BootstrapOptions Check(BootstrapOptions? options)
    {
        var o = options ?? new BootstrapOptions();
        if (o.Resamples < 2) throw new ArgumentOutOfRangeException(nameof(o.Resamples), o.Resamples, "Resamples must be >= 2");
        if (!(o.Confidence > 0 && o.Confidence < 1)) throw new ArgumentOutOfRangeException(nameof(o.Confidence), o.Confidence, "Confidence must be in (0, 1)");
        return o;
    }

    private static void CheckRows(ReadOnlySpan<float> labels, ReadOnlySpan<int> users, ReadOnlySpan<float> model, ReadOnlySpan<float> baseline)
    {
        MetricsInput.Validate(labels, model);
        MetricsInput.Validate(labels, baseline);
        MetricsInput.ValidateIndex(users, labels.Length, nameof(users));
    }

    /// <summary>Resample b's multiplicity of each of <paramref name="n"/> population members (n draws with replacement).</summary>
    private static void Draw(ulong seed, int b, int n, int[] weights)
    {
        Array.Clear(weights, 0, n);
        ulong s = Rng.Hash(seed ^ 0xB0_07_57_4A_0000_0004UL, (ulong)b);
        for (int j = 0; j < n; j++) weights[(int)(Rng.Hash(s, (ulong)j) % (ulong)n)]++;
    }

    /// <summary>A statistic recomputed under resample weights (null = every weight 1).</summary>
    private interface IResampled
    {
        double Delta(int[]? weights);
    }

    private static Lift Interval<TJob>(double delta, BootstrapOptions o, int population, TJob stat) where TJob : struct, IResampled
    {
        var deltas = new double[o.Resamples];
        var scratch = new int[CpuParallel.Threads][];
        var job = new ResampleJob<TJob>(stat, deltas, scratch, population, o.Seed);
        CpuParallel.ForRange(o.Resamples, ref job, scratch.Length);
        foreach (double d in deltas)
            if (double.IsNaN(d)) throw new ArgumentException("a resample left the metric undefined (too few users of both classes for a bootstrap)");
        Array.Sort(deltas);
        double tail = (1 - o.Confidence) / 2;
        return new Lift(delta, Percentile(deltas, tail), Percentile(deltas, 1 - tail));
    }

    private readonly struct ResampleJob<TJob>(TJob stat, double[] deltas, int[][] scratch, int population, ulong seed) : IParallelRangeJob
        where TJob : struct, IResampled
    {
        public void Execute(int start, int end, int part)
        {
            var w = scratch[part] ??= new int[population];
            for (int b = start; b < end; b++)
            {
                Draw(seed, b, population, w);
                deltas[b] = stat.Delta(w);
            }
        }
    }

    /// <summary>Σ w·n·m / Σ w·n − Σ w·n·b over population members (n = 1 when no impressions are given).</summary>
    private readonly struct WeightedMeanJob(double[] model, double[] baseline, long[]? impressions) : IResampled
    {
        public double Delta(int[]? weights)
        {
            double sm = 0, sb = 0, sw = 0;
            for (int i = 0; i < model.Length; i++)
            {
                double w = (weights is null ? 1 : weights[i]) * (impressions is null ? 1 : impressions[i]);
                if (w == 0) continue;
                sm += w * model[i]; sb += w * baseline[i]; sw += w;
            }
            return (sm - sb) / sw;
        }
    }

    /// <summary>Global AUC difference with row weights = the drawn multiplicity of the row's user.</summary>
    private readonly struct AucJob(float[] labels, int[] rowPop, (int[] Order, int[] GroupEnd) model, (int[] Order, int[] GroupEnd) baseline) : IResampled
    {
        public double Delta(int[]? weights) => WeightedAuc(labels, rowPop, model, weights) - WeightedAuc(labels, rowPop, baseline, weights);
    }

    /// <summary>AUC with row r weighted by weights[rowPop[r]] (null = 1) over <paramref name="sorted"/> (see
    /// <see cref="Sorted"/>): each tie group adds fp·(2·tp_before + tp_group) / 2 (weighted Mann-Whitney, ties 1/2).
    /// NaN when one class has zero weight.</summary>
    internal static double WeightedAuc(float[] labels, int[] rowPop, (int[] Order, int[] GroupEnd) sorted, int[]? weights)
    {
        var (order, groupEnd) = sorted;
        double tp = 0, fp = 0, twice = 0;
        for (int a = 0; a < order.Length;)
        {
            int end = groupEnd[a];
            double tpg = 0, fpg = 0;
            for (int r = a; r < end; r++)
            {
                int row = order[r];
                double w = weights is null ? 1 : weights[rowPop[row]];
                if (MetricsInput.IsPositive(labels[row])) tpg += w; else fpg += w;
            }
            twice += fpg * (2 * tp + tpg);
            tp += tpg; fp += fpg;
            a = end;
        }
        return tp == 0 || fp == 0 ? double.NaN : twice / (2 * tp * fp);
    }

    /// <summary>The descending-score order and, at each group start, the end of its group of equal scores.</summary>
    internal static (int[] Order, int[] GroupEnd) Sorted(ReadOnlySpan<float> scores)
    {
        int[] order = RocAuc.SortedByScore(scores);
        var groupEnd = new int[order.Length];
        for (int a = 0; a < order.Length;)
        {
            int b = a + 1;
            while (b < order.Length && scores[order[b]] == scores[order[a]]) b++;
            groupEnd[a] = b;
            a = b;
        }
        return (order, groupEnd);
    }

    /// <summary>The distinct users (ascending) and each row's position among them.</summary>
    private static (int[] Population, int[] RowPop) Population(ReadOnlySpan<int> users)
    {
        var population = users.ToArray().Distinct().Order().ToArray();
        var index = new Dictionary<int, int>(population.Length);
        for (int i = 0; i < population.Length; i++) index[population[i]] = i;
        var rowPop = new int[users.Length];
        for (int r = 0; r < users.Length; r++) rowPop[r] = index[users[r]];
        return (population, rowPop);
    }

    /// <summary>AUC and impressions of each user with both classes, in ascending user order.</summary>
    private static (double[] Auc, long[] Impressions) PerUserAuc(ReadOnlySpan<float> labels, ReadOnlySpan<int> users, ReadOnlySpan<float> scores)
    {
        int[] order = UserMetrics.GroupedOrder(scores, users);
        var auc = new List<double>(); var n = new List<long>();
        for (int a = 0; a < order.Length;)
        {
            int b = a + 1;
            while (b < order.Length && users[order[b]] == users[order[a]]) b++;
            double v = RocAuc.Sorted(labels, scores, order.AsSpan(a, b - a), out _, out _);
            if (!double.IsNaN(v)) { auc.Add(v); n.Add(b - a); }
            a = b;
        }
        return (auc.ToArray(), n.ToArray());
    }
}
