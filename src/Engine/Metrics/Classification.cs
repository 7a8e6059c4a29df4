// Confusion counts, accuracy, precision, recall and F1 at a fixed threshold and at the threshold with the best F1.
namespace FastRec.Engine.Metrics;

/// <summary>Thresholded classification quality: an example is predicted positive when its score &gt;= <see cref="Threshold"/>.
/// Precision with no predicted positives, recall with no positives and F1 with both zero are 0 (sklearn's zero_division=0).</summary>
public sealed record ClassificationMetrics(float Threshold, long TruePositives, long FalsePositives, long TrueNegatives, long FalseNegatives)
{
    /// <summary>Examples counted.</summary>
    public long Count => TruePositives + FalsePositives + TrueNegatives + FalseNegatives;
    /// <summary>(TP + TN) / N.</summary>
    public double Accuracy => Count == 0 ? 0 : (double)(TruePositives + TrueNegatives) / Count;
    /// <summary>TP / (TP + FP).</summary>
    public double Precision => TruePositives + FalsePositives == 0 ? 0 : (double)TruePositives / (TruePositives + FalsePositives);
    /// <summary>TP / (TP + FN).</summary>
    public double Recall => TruePositives + FalseNegatives == 0 ? 0 : (double)TruePositives / (TruePositives + FalseNegatives);
    /// <summary>2·TP / (2·TP + FP + FN).</summary>
    public double F1 => TruePositives == 0 ? 0 : 2.0 * TruePositives / (2.0 * TruePositives + FalsePositives + FalseNegatives);
}

/// <summary>Classification metrics of scores against labels (positive when label &gt;= 0.5).</summary>
public static class Classification
{
    /// <summary>Confusion counts with "predicted positive" = score &gt;= <paramref name="threshold"/>.</summary>
    public static ClassificationMetrics AtThreshold(ReadOnlySpan<float> labels, ReadOnlySpan<float> scores, float threshold)
    {
        MetricsInput.Validate(labels, scores);
        if (float.IsNaN(threshold)) throw new ArgumentException("threshold is NaN");
        long tp = 0, fp = 0, tn = 0, fn = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            bool y = MetricsInput.IsPositive(labels[i]), p = scores[i] >= threshold;
            if (y) { if (p) tp++; else fn++; } else { if (p) fp++; else tn++; }
        }
        return new ClassificationMetrics(threshold, tp, fp, tn, fn);
    }

    /// <summary>The metrics at the threshold, among the distinct scores, that maximises F1; among equal F1 the highest
    /// threshold wins. With no positives at all the threshold is +Infinity (nothing predicted positive).</summary>
    public static ClassificationMetrics AtBestF1(ReadOnlySpan<float> labels, ReadOnlySpan<float> scores)
    {
        MetricsInput.Validate(labels, scores);
        return AtBestF1(labels, scores, RocAuc.SortedByScore(scores));
    }

    internal static ClassificationMetrics AtBestF1(ReadOnlySpan<float> labels, ReadOnlySpan<float> scores, ReadOnlySpan<int> order)
    {
        long pos = 0;
        foreach (float y in labels) if (MetricsInput.IsPositive(y)) pos++;
        long neg = labels.Length - pos;
        // Start from "predict nothing": F1 = 0.
        float bestT = float.PositiveInfinity; long bestTp = 0, bestFp = 0; double bestF1 = 0;
        long tp = 0, fp = 0;
        for (int i = 0; i < order.Length;)
        {
            float s = scores[order[i]];
            for (; i < order.Length && scores[order[i]] == s; i++)
                if (MetricsInput.IsPositive(labels[order[i]])) tp++; else fp++;
            double f1 = tp == 0 ? 0 : 2.0 * tp / (tp + fp + pos);
            if (f1 > bestF1) { bestF1 = f1; bestT = s; bestTp = tp; bestFp = fp; }
        }
        return new ClassificationMetrics(bestT, bestTp, bestFp, neg - bestFp, pos - bestTp);
    }
}
