// Thresholded metrics, log loss, MAE/RMSE and calibration bins against hand-computed values.
using FastRec.Engine.Metrics;

namespace FastRec.Tests.Metrics;

public class ClassificationTests
{
    private static readonly float[] Y = [0, 0, 1, 1];
    private static readonly float[] P = [0.1f, 0.4f, 0.35f, 0.8f];

    [Test]
    public void AtHalf()
    {
        var m = Classification.AtThreshold(Y, P, 0.5f); // only 0.8 is predicted positive
        Assert.That((m.TruePositives, m.FalsePositives, m.TrueNegatives, m.FalseNegatives), Is.EqualTo((1L, 0L, 2L, 1L)));
        Assert.That(m.Accuracy, Is.EqualTo(0.75));
        Assert.That(m.Precision, Is.EqualTo(1.0));
        Assert.That(m.Recall, Is.EqualTo(0.5));
        Assert.That(m.F1, Is.EqualTo(2.0 / 3.0).Within(1e-12));
    }

    [Test]
    public void ThresholdIsInclusive()
    {
        var m = Classification.AtThreshold([1, 0], [0.5f, 0.49f], 0.5f);
        Assert.That(m.TruePositives, Is.EqualTo(1));
        Assert.That(m.FalsePositives, Is.EqualTo(0));
    }

    [Test]
    public void BestF1PicksTheThresholdWithTheHighestF1()
    {
        // F1 at thresholds .8, .4, .35, .1 = 2/3, 1/2, 4/5, 2/3.
        var m = Classification.AtBestF1(Y, P);
        Assert.That(m.Threshold, Is.EqualTo(0.35f));
        Assert.That(m.F1, Is.EqualTo(0.8).Within(1e-12));
        Assert.That(m.Precision, Is.EqualTo(2.0 / 3.0).Within(1e-12));
        Assert.That(m.Recall, Is.EqualTo(1.0));
        Assert.That(m.Accuracy, Is.EqualTo(0.75));
    }

    [Test]
    public void BestF1WithTiesPutsTheWholeTieGroupOnOneSide()
    {
        // Scores .9 (pos) then a tie at .5 of {pos, neg, neg}: at .9 F1 = 2/(1+0+2) = 2/3; at .5 F1 = 4/(4+2) = 2/3
        // -> equal F1, the higher threshold wins.
        var m = Classification.AtBestF1([1, 1, 0, 0], [0.9f, 0.5f, 0.5f, 0.5f]);
        Assert.That(m.Threshold, Is.EqualTo(0.9f));
        Assert.That(m.F1, Is.EqualTo(2.0 / 3.0).Within(1e-12));
        var n = Classification.AtBestF1([1, 1, 0], [0.9f, 0.5f, 0.5f]); // at .5: 4/(3+2) = 0.8 > 2/3
        Assert.That(n.Threshold, Is.EqualTo(0.5f));
        Assert.That((n.TruePositives, n.FalsePositives), Is.EqualTo((2L, 1L)));
    }

    [Test]
    public void ZeroDivisionGivesZero()
    {
        var m = Classification.AtThreshold([1, 0], [0.1f, 0.2f], 0.5f);
        Assert.That(m.Precision, Is.EqualTo(0));
        Assert.That(m.F1, Is.EqualTo(0));
    }

    [Test]
    public void LogLossMatchesHandValues()
    {
        Assert.That(ProbabilityMetrics.LogLoss([1, 0], [0.8f, 0.3f]), Is.EqualTo(-(Math.Log(0.8) + Math.Log(0.7)) / 2).Within(1e-7));
        Assert.That(ProbabilityMetrics.LogLoss([0.25f], [0.5f]), Is.EqualTo(Math.Log(2)).Within(1e-12)); // soft label
    }

    [Test]
    public void LogLossClipsProbabilities()
    {
        // A confident mistake costs -ln(1e-7) = 16.118..., a confident hit -ln(1 - 1e-7) = 1e-7, never infinity or 0.
        Assert.That(ProbabilityMetrics.LogLoss([0, 1], [1f, 0f]), Is.EqualTo(16.11809565095832).Within(1e-6));
        Assert.That(ProbabilityMetrics.LogLoss([1, 0], [1f, 0f]), Is.EqualTo(1.0000000494736474e-07).Within(1e-12));
    }

    [Test]
    public void MaeAndRmse()
    {
        Assert.That(ProbabilityMetrics.MeanAbsoluteError(Y, P), Is.EqualTo(1.35 / 4).Within(1e-7));
        Assert.That(ProbabilityMetrics.RootMeanSquaredError(Y, P), Is.EqualTo(Math.Sqrt(0.6325 / 4)).Within(1e-7));
    }

    [Test]
    public void CalibrationBinsAndEce()
    {
        var bins = ProbabilityMetrics.Calibration(Y, P, bins: 2);
        Assert.That(bins[0].Count, Is.EqualTo(3));
        Assert.That(bins[0].MeanProbability, Is.EqualTo((0.1 + 0.4 + 0.35) / 3).Within(1e-7));
        Assert.That(bins[0].MeanLabel, Is.EqualTo(1.0 / 3).Within(1e-12));
        Assert.That(bins[1].Count, Is.EqualTo(1));
        Assert.That(bins[1].MeanLabel, Is.EqualTo(1.0));
        Assert.That(ProbabilityMetrics.ExpectedCalibrationError(bins), Is.EqualTo((3 * (1.0 / 3 - 0.85 / 3) + 0.2) / 4).Within(1e-7));
    }

    [Test]
    public void CalibrationEdgesAndEmptyBins()
    {
        var bins = ProbabilityMetrics.Calibration([1, 0, 1], [1f, 0.5f, 0f], bins: 4);
        Assert.That(bins.Select(b => b.Count), Is.EqualTo(new long[] { 1, 0, 1, 1 })); // 1 -> last bin, .5 -> bin 2
        Assert.That(bins[1].MeanProbability, Is.NaN);
        Assert.That(bins[3].Upper, Is.EqualTo(1.0));
    }
}
