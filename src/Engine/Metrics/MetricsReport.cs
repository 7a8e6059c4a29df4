// The full evaluation report of predicted probabilities on a test set, and the one call that computes it.
namespace FastRec.Engine.Metrics;

/// <summary>Options of <see cref="MetricsReport.Compute"/>.</summary>
public sealed record MetricsOptions
{
    /// <summary>Cut-offs for Recall@K, NDCG@K and coverage@K.</summary>
    public int[] Ks { get; init; } = [5, 10, 20];
    /// <summary>Equal-width calibration bins over [0, 1].</summary>
    public int CalibrationBins { get; init; } = 10;
    /// <summary>Coverage denominator (catalog size); 0 = the number of distinct items among the evaluated impressions.</summary>
    public int ItemCount { get; init; }
}

/// <summary>Every metric of one evaluation. Labels are positive when &gt;= 0.5; scores are probabilities in [0, 1].
/// See <see cref="RocAuc"/>, <see cref="Classification"/>, <see cref="ProbabilityMetrics"/> and <see cref="UserMetrics"/>
/// for the exact definitions.</summary>
/// <param name="Count">Examples evaluated.</param>
/// <param name="Positives">Examples with label &gt;= 0.5.</param>
/// <param name="Auc">ROC AUC, ties count 1/2 (sklearn roc_auc_score).</param>
/// <param name="Gauc">Per-user AUC weighted by impressions, with the users used and skipped.</param>
/// <param name="LogLoss">Mean BCE with probabilities clipped to [1e-7, 1 − 1e-7].</param>
/// <param name="AtHalf">Confusion metrics at threshold 0.5 (predicted positive when p &gt;= 0.5).</param>
/// <param name="AtBestF1">Confusion metrics at the threshold that maximises F1.</param>
/// <param name="Mae">Mean |p − y|.</param>
/// <param name="Rmse">sqrt(mean (p − y)²).</param>
/// <param name="Ranking">Recall@K, NDCG@K, coverage@K for each K of the options.</param>
/// <param name="Roc">The ROC curve, for plotting.</param>
/// <param name="Calibration">Equal-width calibration bins, for plotting.</param>
/// <param name="Ece">Expected calibration error over <paramref name="Calibration"/>.</param>
public sealed record MetricsReport(
    long Count, long Positives, double Auc, GaucResult Gauc, double LogLoss,
    ClassificationMetrics AtHalf, ClassificationMetrics AtBestF1, double Mae, double Rmse,
    RankingMetrics[] Ranking, RocCurve Roc, CalibrationBin[] Calibration, double Ece)
{
    /// <summary>Computes every metric. <paramref name="users"/> and <paramref name="items"/> are per-example indices
    /// (e.g. ExampleSet.Users and ExampleSet.Items). Throws <see cref="ArgumentException"/> for empty input, length
    /// mismatches, NaN or infinite scores, probabilities or labels outside [0, 1], and a test set with one class only.</summary>
    public static MetricsReport Compute(ReadOnlySpan<float> labels, ReadOnlySpan<float> probabilities,
        ReadOnlySpan<int> users, ReadOnlySpan<int> items, MetricsOptions? options = null)
    {
        options ??= new MetricsOptions();
        MetricsInput.Validate(labels, probabilities, probabilities: true);
        MetricsInput.ValidateIndex(users, labels.Length, nameof(users));
        MetricsInput.ValidateIndex(items, labels.Length, nameof(items));

        int[] byScore = RocAuc.SortedByScore(probabilities);
        double auc = RocAuc.Sorted(labels, probabilities, byScore, out long pos, out long neg);
        if (double.IsNaN(auc))
            throw new ArgumentException($"AUC is undefined when only one class is present ({pos} positives, {neg} negatives)");
        int[] byUser = UserMetrics.GroupedOrder(probabilities, users);
        var calibration = ProbabilityMetrics.Calibration(labels, probabilities, options.CalibrationBins);
        return new MetricsReport(
            Count: labels.Length, Positives: pos, Auc: auc,
            Gauc: UserMetrics.Gauc(labels, probabilities, byUser, users),
            LogLoss: ProbabilityMetrics.LogLoss(labels, probabilities),
            AtHalf: Classification.AtThreshold(labels, probabilities, 0.5f),
            AtBestF1: Classification.AtBestF1(labels, probabilities, byScore),
            Mae: ProbabilityMetrics.MeanAbsoluteError(labels, probabilities),
            Rmse: ProbabilityMetrics.RootMeanSquaredError(labels, probabilities),
            Ranking: UserMetrics.Ranking(labels, probabilities, users, items, options.Ks, options.ItemCount, byUser),
            Roc: RocAuc.Curve(labels, probabilities, byScore),
            Calibration: calibration,
            Ece: ProbabilityMetrics.ExpectedCalibrationError(calibration));
    }
}
