// Metrics of predicted probabilities: log loss (clipped), MAE, RMSE, calibration bins and expected calibration error.
namespace FastRec.Engine.Metrics;

/// <summary>One equal-width calibration bin [Lower, Upper): how many predictions fell in it, their mean probability
/// and the mean label of those examples. An empty bin has Count 0 and NaN means (skip it when plotting).</summary>
public sealed record CalibrationBin(double Lower, double Upper, long Count, double MeanProbability, double MeanLabel);

/// <summary>Metrics that read the scores as probabilities in [0, 1] and the labels as (possibly soft) targets in [0, 1].</summary>
public static class ProbabilityMetrics
{
    /// <summary>Lower clip of probabilities in <see cref="LogLoss"/>; the upper clip is 1 - Epsilon.</summary>
    public const double Epsilon = 1e-7;

    /// <summary>Mean binary cross-entropy −[y·ln p + (1−y)·ln(1−p)] with p clipped to [1e-7, 1 − 1e-7], so a confident
    /// mistake costs at most −ln(1e-7) ≈ 16.12 instead of infinity. Accumulated in double.</summary>
    public static double LogLoss(ReadOnlySpan<float> labels, ReadOnlySpan<float> probabilities)
    {
        MetricsInput.Validate(labels, probabilities, probabilities: true);
        double sum = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            double p = Math.Clamp((double)probabilities[i], Epsilon, 1 - Epsilon), y = labels[i];
            sum -= y * Math.Log(p) + (1 - y) * Math.Log(1 - p);
        }
        return sum / labels.Length;
    }

    /// <summary>Mean |p − y|.</summary>
    public static double MeanAbsoluteError(ReadOnlySpan<float> labels, ReadOnlySpan<float> probabilities)
    {
        MetricsInput.Validate(labels, probabilities, probabilities: true);
        double sum = 0;
        for (int i = 0; i < labels.Length; i++) sum += Math.Abs((double)probabilities[i] - labels[i]);
        return sum / labels.Length;
    }

    /// <summary>sqrt(mean (p − y)²).</summary>
    public static double RootMeanSquaredError(ReadOnlySpan<float> labels, ReadOnlySpan<float> probabilities)
    {
        MetricsInput.Validate(labels, probabilities, probabilities: true);
        double sum = 0;
        for (int i = 0; i < labels.Length; i++) { double d = (double)probabilities[i] - labels[i]; sum += d * d; }
        return Math.Sqrt(sum / labels.Length);
    }

    /// <summary><paramref name="bins"/> equal-width bins over [0, 1]; p falls in bin min(floor(p·bins), bins−1), so p = 1 is
    /// in the last bin (as sklearn's calibration_curve with strategy="uniform", which drops the empty bins we keep).</summary>
    public static CalibrationBin[] Calibration(ReadOnlySpan<float> labels, ReadOnlySpan<float> probabilities, int bins = 10)
    {
        MetricsInput.Validate(labels, probabilities, probabilities: true);
        if (bins < 1 || bins > 10_000) throw new ArgumentOutOfRangeException(nameof(bins), bins, "calibration bins must be in [1, 10000]");
        var count = new long[bins]; var sumP = new double[bins]; var sumY = new double[bins];
        for (int i = 0; i < labels.Length; i++)
        {
            int b = Math.Min((int)(probabilities[i] * (double)bins), bins - 1);
            count[b]++; sumP[b] += probabilities[i]; sumY[b] += labels[i];
        }
        var result = new CalibrationBin[bins];
        for (int b = 0; b < bins; b++)
            result[b] = new CalibrationBin((double)b / bins, (double)(b + 1) / bins, count[b],
                count[b] == 0 ? double.NaN : sumP[b] / count[b], count[b] == 0 ? double.NaN : sumY[b] / count[b]);
        return result;
    }

    /// <summary>Expected calibration error: Σ_b (n_b / N)·|mean p_b − mean y_b| over the non-empty bins.</summary>
    public static double ExpectedCalibrationError(IReadOnlyList<CalibrationBin> bins)
    {
        long n = 0; double sum = 0;
        foreach (var b in bins) if (b.Count > 0) { n += b.Count; sum += b.Count * Math.Abs(b.MeanProbability - b.MeanLabel); }
        return n == 0 ? double.NaN : sum / n;
    }
}
