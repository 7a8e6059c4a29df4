// AUC, ROC curve and GAUC against hand-computed values (ties included) and a brute-force pairwise oracle.
using FastRec.Engine.Metrics;
using FastRec.Kernels;

namespace FastRec.Tests.Metrics;

public class AucTests
{
    [Test]
    public void AucMatchesTheSklearnDocExample()
        => Assert.That(RocAuc.Compute([0, 0, 1, 1], [0.1f, 0.4f, 0.35f, 0.8f]), Is.EqualTo(0.75).Within(1e-12));

    [Test]
    public void TiedPositiveAndNegativeCountHalf()
    {
        // Pairs (pos, neg): (.6,.2)=1 (.6,.6)=1/2 (.9,.2)=1 (.9,.6)=1 (.2,.2)=1/2 (.2,.6)=0 -> 4/6.
        Assert.That(RocAuc.Compute([0, 0, 1, 1, 1], [0.2f, 0.6f, 0.6f, 0.9f, 0.2f]), Is.EqualTo(4.0 / 6.0).Within(1e-12));
        Assert.That(RocAuc.Compute([0, 1, 0, 1], [0.5f, 0.5f, 0.5f, 0.5f]), Is.EqualTo(0.5).Within(1e-12));
    }

    [Test]
    public void PerfectAndReversedRankings()
    {
        Assert.That(RocAuc.Compute([0, 0, 1], [-3f, 1f, 2f]), Is.EqualTo(1.0));
        Assert.That(RocAuc.Compute([1, 1, 0], [-3f, 1f, 2f]), Is.EqualTo(0.0));
    }

    [Test]
    public void AucEqualsThePairwiseCountOnRandomDataWithManyTies()
    {
        for (ulong seed = 1; seed <= 5; seed++)
        {
            int n = 50 + (int)seed * 17;
            var y = new float[n]; var s = new float[n];
            for (int i = 0; i < n; i++)
            {
                y[i] = Rng.Uniform(seed, (ulong)i) < 0.4f ? 1 : 0;
                s[i] = MathF.Floor(Rng.Uniform(seed + 100, (ulong)i) * 6) / 6; // 6 distinct values: many ties
            }
            double pairs = 0, count = 0;
            for (int i = 0; i < n; i++) if (y[i] == 1)
                for (int j = 0; j < n; j++) if (y[j] == 0)
                { count++; pairs += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0; }
            Assert.That(RocAuc.Compute(y, s), Is.EqualTo(pairs / count).Within(1e-12), $"seed {seed}");
        }
    }

    [Test]
    public void RocCurveHasOnePointPerDistinctThreshold()
    {
        var roc = RocAuc.Curve([0, 0, 1, 1], [0.1f, 0.4f, 0.35f, 0.8f]);
        Assert.That(roc.Threshold, Is.EqualTo(new[] { float.PositiveInfinity, 0.8f, 0.4f, 0.35f, 0.1f }));
        Assert.That(roc.FalsePositiveRate, Is.EqualTo(new[] { 0, 0, 0.5, 0.5, 1 }));
        Assert.That(roc.TruePositiveRate, Is.EqualTo(new[] { 0, 0.5, 0.5, 1, 1 }));
        var tied = RocAuc.Curve([0, 1, 1], [0.5f, 0.5f, 0.2f]);
        Assert.That(tied.Threshold, Is.EqualTo(new[] { float.PositiveInfinity, 0.5f, 0.2f }));
        Assert.That(tied.FalsePositiveRate, Is.EqualTo(new[] { 0, 1, 1 }));
        Assert.That(tied.TruePositiveRate, Is.EqualTo(new[] { 0, 0.5, 1 }));
    }

    [Test]
    public void GaucWeightsUsersByImpressionsAndSkipsOneClassUsers()
    {
        // user 0: AUC 1 over 2 impressions; user 1: pos {.3,.8} vs neg {.8} -> (0 + 1/2)/2 = 1/4 over 3; user 2: positives only.
        float[] y = [1, 0, 0, 1, 1, 1, 1];
        float[] s = [0.9f, 0.1f, 0.8f, 0.3f, 0.8f, 0.5f, 0.6f];
        int[] u = [0, 0, 1, 1, 1, 2, 2];
        var g = UserMetrics.Gauc(y, s, u);
        Assert.That(g.Value, Is.EqualTo((2 * 1.0 + 3 * 0.25) / 5).Within(1e-12));
        Assert.That(g.UsersUsed, Is.EqualTo(2));
        Assert.That(g.UsersSkipped, Is.EqualTo(1));
        Assert.That(g.ImpressionsUsed, Is.EqualTo(5));
    }

    [Test]
    public void GaucIsNaNWhenNoUserHasBothClasses()
    {
        var g = UserMetrics.Gauc([1, 0], [0.3f, 0.4f], [0, 1]);
        Assert.That(g.Value, Is.NaN);
        Assert.That(g.UsersSkipped, Is.EqualTo(2));
    }

    [Test]
    public void OneClassIsAnError()
    {
        var ex = Assert.Throws<ArgumentException>(() => RocAuc.Compute([1, 1], [0.2f, 0.3f]));
        Assert.That(ex!.Message, Does.Contain("only one class"));
    }
}
