// The full report agrees with the individual metrics, and every bad input is a clear ArgumentException.
using FastRec.Engine.Metrics;

namespace FastRec.Tests.Metrics;

public class MetricsReportTests
{
    private static readonly float[] Y = [0, 1, 0, 1, 1, 0];
    private static readonly float[] P = [0.2f, 0.7f, 0.6f, 0.6f, 0.9f, 0.1f];
    private static readonly int[] U = [0, 0, 0, 1, 1, 1];
    private static readonly int[] I = [0, 1, 2, 3, 4, 5];

    [Test]
    public void ReportAgreesWithTheIndividualMetrics()
    {
        var r = MetricsReport.Compute(Y, P, U, I, new MetricsOptions { Ks = [1, 2], CalibrationBins = 5 });
        Assert.That(r.Count, Is.EqualTo(6));
        Assert.That(r.Positives, Is.EqualTo(3));
        // pairs: pos {.7,.6,.9} vs neg {.2,.6,.1}: .7 beats 3, .6 beats 2 ties 1, .9 beats 3 -> 8.5/9.
        Assert.That(r.Auc, Is.EqualTo(8.5 / 9).Within(1e-12));
        Assert.That(r.Gauc.Value, Is.EqualTo(UserMetrics.Gauc(Y, P, U).Value));
        Assert.That(r.Gauc.Value, Is.EqualTo(1.0)); // both users rank their positives first
        Assert.That(r.LogLoss, Is.EqualTo(ProbabilityMetrics.LogLoss(Y, P)));
        Assert.That(r.AtHalf, Is.EqualTo(Classification.AtThreshold(Y, P, 0.5f)));
        Assert.That(r.AtBestF1, Is.EqualTo(Classification.AtBestF1(Y, P)));
        Assert.That(r.Mae, Is.EqualTo(ProbabilityMetrics.MeanAbsoluteError(Y, P)));
        Assert.That(r.Rmse, Is.EqualTo(ProbabilityMetrics.RootMeanSquaredError(Y, P)));
        Assert.That(r.Ranking.Select(x => x.K), Is.EqualTo(new[] { 1, 2 }));
        Assert.That(r.Ranking[0].Ndcg, Is.EqualTo(1.0));
        Assert.That(r.Roc.Threshold, Has.Length.EqualTo(6)); // +inf and 5 distinct scores
        Assert.That(r.Calibration, Has.Length.EqualTo(5));
        Assert.That(r.Ece, Is.EqualTo(ProbabilityMetrics.ExpectedCalibrationError(r.Calibration)));
    }

    private static void AssertBad(TestDelegate call, string expected)
    {
        var ex = Assert.Throws<ArgumentException>(call);
        Assert.That(ex!.Message, Does.Contain(expected));
    }

    [Test]
    public void EmptyInput() => AssertBad(() => MetricsReport.Compute([], [], [], []), "empty input");

    [Test]
    public void LengthMismatch()
    {
        AssertBad(() => RocAuc.Compute([0, 1, 1], [0.1f, 0.2f]), "labels has 3 elements but scores has 2");
        AssertBad(() => MetricsReport.Compute(Y, P, [0, 1], I), "users has 2 elements");
    }

    [Test]
    public void NaNScore()
    {
        AssertBad(() => RocAuc.Compute([0, 1], [0.1f, float.NaN]), "scores[1] is NaN");
        AssertBad(() => ProbabilityMetrics.LogLoss([0, 1], [float.NaN, 0.5f]), "scores[0] is NaN");
    }

    [Test]
    public void InfiniteScore() => AssertBad(() => RocAuc.Compute([0, 1], [0.1f, float.PositiveInfinity]), "must be finite");

    [Test]
    public void LabelOutsideZeroOne()
    {
        AssertBad(() => RocAuc.Compute([0, 2], [0.1f, 0.2f]), "labels[1] = 2 is outside [0, 1]");
        AssertBad(() => ProbabilityMetrics.LogLoss([-1, 1], [0.1f, 0.2f]), "labels[0] = -1 is outside [0, 1]");
        AssertBad(() => RocAuc.Compute([0, float.NaN], [0.1f, 0.2f]), "labels[1] is NaN");
    }

    [Test]
    public void ProbabilityOutsideZeroOne() => AssertBad(() => MetricsReport.Compute(Y, [0.2f, 0.7f, 0.6f, 0.6f, 1.5f, 0.1f], U, I), "scores[4] = 1.5 is not a probability");

    [Test]
    public void NegativeUserIndex() => AssertBad(() => MetricsReport.Compute(Y, P, [0, 0, -1, 1, 1, 1], I), "users[2] = -1 is negative");

    [Test]
    public void OneClassTestSet() => AssertBad(() => MetricsReport.Compute([1, 1], [0.2f, 0.3f], [0, 0], [0, 1]), "only one class");
}
