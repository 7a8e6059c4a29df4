// ROC AUC (trapezoid over distinct thresholds, ties count 1/2, as sklearn roc_auc_score) and the ROC curve.
namespace FastRec.Engine.Metrics;

/// <summary>One point set of a ROC curve: at threshold[i] (predict positive when score &gt;= threshold[i]) the rates are
/// (FalsePositiveRate[i], TruePositiveRate[i]). The first point is (0, 0) at threshold +Infinity; thresholds then
/// decrease through every distinct score, as sklearn's roc_curve with drop_intermediate=False.</summary>
public sealed record RocCurve(double[] FalsePositiveRate, double[] TruePositiveRate, float[] Threshold);

/// <summary>Area under the ROC curve.</summary>
public static class RocAuc
{
    /// <summary>AUC of <paramref name="scores"/> against <paramref name="labels"/> (positive when label &gt;= 0.5). The curve
    /// is a trapezoid over distinct thresholds, so a positive and a negative with equal scores count 1/2: the result
    /// equals sklearn's roc_auc_score and the Mann-Whitney statistic. Throws when only one class is present.</summary>
    public static double Compute(ReadOnlySpan<float> labels, ReadOnlySpan<float> scores)
    {
        MetricsInput.Validate(labels, scores);
        int[] order = SortedByScore(scores);
        double auc = Sorted(labels, scores, order, out long pos, out long neg);
        if (double.IsNaN(auc)) throw OneClass(pos, neg);
        return auc;
    }

    /// <summary>The ROC curve (see <see cref="RocCurve"/>). Throws when only one class is present.</summary>
    public static RocCurve Curve(ReadOnlySpan<float> labels, ReadOnlySpan<float> scores)
    {
        MetricsInput.Validate(labels, scores);
        return Curve(labels, scores, SortedByScore(scores));
    }

    internal static RocCurve Curve(ReadOnlySpan<float> labels, ReadOnlySpan<float> scores, int[] order)
    {
        long pos = 0;
        foreach (float y in labels) if (MetricsInput.IsPositive(y)) pos++;
        long neg = labels.Length - pos;
        if (pos == 0 || neg == 0) throw OneClass(pos, neg);
        var fpr = new List<double> { 0 }; var tpr = new List<double> { 0 }; var thr = new List<float> { float.PositiveInfinity };
        long tp = 0, fp = 0;
        for (int i = 0; i < order.Length;)
        {
            float s = scores[order[i]];
            for (; i < order.Length && scores[order[i]] == s; i++)
                if (MetricsInput.IsPositive(labels[order[i]])) tp++; else fp++;
            fpr.Add((double)fp / neg); tpr.Add((double)tp / pos); thr.Add(s);
        }
        return new RocCurve(fpr.ToArray(), tpr.ToArray(), thr.ToArray());
    }

    /// <summary>AUC over the examples <paramref name="order"/> lists, already sorted by descending score; NaN when the
    /// range holds one class only. Trapezoid: each group of equal scores adds width fp·(tp_before + tp_after)/2.</summary>
    internal static double Sorted(ReadOnlySpan<float> labels, ReadOnlySpan<float> scores, ReadOnlySpan<int> order, out long pos, out long neg)
    {
        long tp = 0, fp = 0;
        double twiceArea = 0;
        for (int i = 0; i < order.Length;)
        {
            float s = scores[order[i]];
            long tpg = 0, fpg = 0;
            for (; i < order.Length && scores[order[i]] == s; i++)
                if (MetricsInput.IsPositive(labels[order[i]])) tpg++; else fpg++;
            twiceArea += (double)fpg * (2 * tp + tpg);
            tp += tpg; fp += fpg;
        }
        pos = tp; neg = fp;
        if (tp == 0 || fp == 0) return double.NaN;
        return twiceArea / (2.0 * tp * fp);
    }

    /// <summary>Indices 0..N-1 sorted by descending score; equal scores keep ascending index (deterministic).</summary>
    internal static int[] SortedByScore(ReadOnlySpan<float> scores)
    {
        var order = new int[scores.Length];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        var keys = scores.ToArray();
        order.AsSpan().Sort(new ByScoreDesc(keys));
        return order;
    }

    private static ArgumentException OneClass(long pos, long neg)
        => new($"AUC is undefined when only one class is present ({pos} positives, {neg} negatives)");

    private readonly struct ByScoreDesc(float[] scores) : IComparer<int>
    {
        public int Compare(int a, int b)
        {
            float sa = scores[a], sb = scores[b];
            if (sa > sb) return -1;
            if (sa < sb) return 1;
            return a.CompareTo(b);
        }
    }
}
