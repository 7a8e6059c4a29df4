// Paired bootstrap: zero-width for identical models, a planted difference recovered with the expected width, seeds,
// thread independence, the weighted AUC against duplicated rows, percentiles, the lift text and bad inputs.
using FastRec.Engine.Evaluation;
using FastRec.Engine.Metrics;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Data;

namespace FastRec.Tests.Evaluation;

[NonParallelizable] // one test changes CpuParallel.Threads
public class PairedBootstrapTests
{
    /// <summary>Rows of <paramref name="users"/> users with 2..6 rows each, mixed labels; the model's scores carry
    /// <paramref name="signal"/> times the label plus noise, the baseline's only noise.</summary>
    private static (float[] Y, int[] U, float[] Model, float[] Baseline) Rows(int users, float signal, ulong seed = 1)
    {
        var y = new List<float>(); var u = new List<int>(); var m = new List<float>(); var b = new List<float>();
        ulong c = 0;
        for (int user = 0; user < users; user++)
            for (int j = 0, n = 2 + (int)(Rng.Hash(seed, (ulong)user) % 5); j < n; j++, c++)
            {
                float label = j == 0 ? 1 : j == 1 ? 0 : Rng.Uniform(seed + 1, c) < 0.5f ? 1 : 0;
                y.Add(label); u.Add(user);
                b.Add(Rng.Uniform(seed + 2, c));
                m.Add(Math.Clamp(signal * label + (1 - signal) * Rng.Uniform(seed + 3, c), 0, 1));
            }
        return (y.ToArray(), u.ToArray(), m.ToArray(), b.ToArray());
    }

    [Test]
    public void IdenticalModelsGiveZeroDeltaAndAZeroWidthInterval()
    {
        var (y, u, m, _) = Rows(50, 0.3f);
        foreach (var lift in new[] { PairedBootstrap.Auc(y, u, m, m), PairedBootstrap.Gauc(y, u, m, m) })
        {
            Assert.That((lift.Delta, lift.Lo, lift.Hi), Is.EqualTo((0.0, 0.0, 0.0)));
            Assert.That(lift.Significant, Is.False);
            Assert.That(lift.ToString(), Is.EqualTo("no significant lift (+0.0000 [+0.0000, +0.0000])"));
        }
        var (w, scorer) = FullRankingTests.RandomCase(users: 40, items: 30);
        var options = new FullRankingOptions { SampledNegatives = 0 };
        var ndcg = PairedBootstrap.Ndcg(FullRanking.Evaluate(w, scorer, options), FullRanking.Evaluate(w, scorer, options));
        Assert.That((ndcg.Delta, ndcg.Lo, ndcg.Hi), Is.EqualTo((0.0, 0.0, 0.0)));
    }

    [Test]
    public void PlantedDifferenceIsRecoveredWithTheExpectedWidth()
    {
        // model_u = baseline_u + d_u, d_u = 0.03 + 0.1·z_u over n = 400 users: the interval of the mean difference should
        // have width ≈ 2·1.96·sd(d)/sqrt(n) ≈ 0.0196 and cover 0.03.
        const int n = 400;
        var b = new double[n]; var m = new double[n]; var d = new double[n];
        for (int i = 0; i < n; i++)
        {
            b[i] = Rng.Uniform(11, (ulong)i);
            d[i] = 0.03 + 0.1 * Rng.Normal(12, (ulong)i);
            m[i] = b[i] + d[i];
        }
        double mean = d.Average(), sd = Math.Sqrt(d.Sum(x => (x - mean) * (x - mean)) / (n - 1));
        var lift = PairedBootstrap.PerUser(m, b, new BootstrapOptions { Resamples = 2000 });
        TestContext.Out.WriteLine($"{lift}; mean {mean:0.00000}, expected width {2 * 1.96 * sd / Math.Sqrt(n):0.00000}");
        Assert.That(lift.Delta, Is.EqualTo(mean).Within(1e-12));
        Assert.That(lift.Lo, Is.LessThan(0.03));
        Assert.That(lift.Hi, Is.GreaterThan(0.03));
        Assert.That(lift.Hi - lift.Lo, Is.EqualTo(2 * 1.96 * sd / Math.Sqrt(n)).Within(10).Percent);
        Assert.That((lift.Lo + lift.Hi) / 2, Is.EqualTo(mean).Within(0.1 * (lift.Hi - lift.Lo)));
        Assert.That(lift.Significant, Is.True);
        Assert.That(lift.ToString(), Does.StartWith("lift +0.0"));
    }

    [Test]
    public void AucAndGaucDeltasAreTheFullDataDifferences()
    {
        var (y, u, m, b) = Rows(200, 0.3f);
        var auc = PairedBootstrap.Auc(y, u, m, b, new BootstrapOptions { Resamples = 300 });
        Assert.That(auc.Delta, Is.EqualTo(RocAuc.Compute(y, m) - RocAuc.Compute(y, b)).Within(1e-12));
        Assert.That(auc.Significant, Is.True);
        Assert.That(auc.Lo, Is.LessThan(auc.Delta));
        Assert.That(auc.Hi, Is.GreaterThan(auc.Delta));
        var gauc = PairedBootstrap.Gauc(y, u, m, b, new BootstrapOptions { Resamples = 300 });
        Assert.That(gauc.Delta, Is.EqualTo(UserMetrics.Gauc(y, m, u).Value - UserMetrics.Gauc(y, b, u).Value).Within(1e-12));
        Assert.That(gauc.Lo, Is.LessThan(gauc.Delta));
        Assert.That(gauc.Hi, Is.GreaterThan(gauc.Delta));
    }

    [Test]
    public void WeightedAucEqualsTheAucOfDuplicatedRows()
    {
        var (y, u, m, _) = Rows(30, 0.2f);
        for (int i = 0; i < m.Length; i++) m[i] = MathF.Round(m[i] * 5) / 5; // ties
        for (ulong seed = 1; seed <= 5; seed++)
        {
            var weights = Enumerable.Range(0, 30).Select(x => (int)(Rng.Hash(seed, (ulong)x) % 4)).ToArray(); // 0..3 copies
            var ey = new List<float>(); var es = new List<float>();
            for (int r = 0; r < y.Length; r++)
                for (int c = 0; c < weights[u[r]]; c++) { ey.Add(y[r]); es.Add(m[r]); }
            double got = PairedBootstrap.WeightedAuc(y, u, PairedBootstrap.Sorted(m), weights);
            Assert.That(got, Is.EqualTo(RocAuc.Compute(ey.ToArray(), es.ToArray())).Within(1e-12), $"seed {seed}");
        }
    }

    [Test]
    public void SameSeedSameIntervalAndNoDependenceOnThreads()
    {
        var (y, u, m, b) = Rows(100, 0.2f);
        int saved = CpuParallel.Threads;
        try
        {
            CpuParallel.Threads = 1;
            var one = PairedBootstrap.Auc(y, u, m, b);
            CpuParallel.Threads = 2;
            Assert.That(PairedBootstrap.Auc(y, u, m, b), Is.EqualTo(one));
            Assert.That(PairedBootstrap.Auc(y, u, m, b, new BootstrapOptions { Seed = 43 }), Is.Not.EqualTo(one));
        }
        finally { CpuParallel.Threads = saved; }
    }

    [Test]
    public void PercentilesInterpolateLinearly()
    {
        double[] x = [1, 2, 3, 4];
        Assert.That(PairedBootstrap.Percentile(x, 0.5), Is.EqualTo(2.5));
        Assert.That(PairedBootstrap.Percentile(x, 0.025), Is.EqualTo(1.075).Within(1e-12)); // h = 3·0.025
        Assert.That(PairedBootstrap.Percentile(x, 1), Is.EqualTo(4));
        Assert.That(PairedBootstrap.Percentile(x, 0), Is.EqualTo(1));
    }

    [Test]
    public void LiftText()
    {
        Assert.That(new Lift(0.0123, 0.005, 0.019).ToString(), Is.EqualTo("lift +0.0123 [+0.0050, +0.0190]"));
        Assert.That(new Lift(0.001, -0.003, 0.005).ToString(), Is.EqualTo("no significant lift (+0.0010 [-0.0030, +0.0050])"));
        Assert.That(new Lift(-0.02, -0.03, -0.01).ToString(), Is.EqualTo("lift -0.0200 [-0.0300, -0.0100]"));
        Assert.That(new Lift(-0.02, -0.03, -0.01).Significant, Is.True);
    }

    [Test]
    public void BadInputsAreErrors()
    {
        DataAssert.Throws<ArgumentException>(() => PairedBootstrap.PerUser([0.1, double.NaN], [0.2, 0.3]), "user 1", "counted by both or neither");
        DataAssert.Throws<ArgumentException>(() => PairedBootstrap.PerUser([0.1], [0.2, 0.3]), "model has 1 per-user values but baseline has 2");
        DataAssert.Throws<ArgumentOutOfRangeException>(() => PairedBootstrap.PerUser([0.1], [0.2], new BootstrapOptions { Resamples = 1 }), "Resamples must be >= 2");
        DataAssert.Throws<ArgumentOutOfRangeException>(() => PairedBootstrap.PerUser([0.1], [0.2], new BootstrapOptions { Confidence = 1 }), "Confidence must be in (0, 1)");
        DataAssert.Throws<ArgumentException>(() => PairedBootstrap.Auc([1, 1], [0, 1], [0.1f, 0.2f], [0.3f, 0.4f]), "one class only");
        DataAssert.Throws<ArgumentException>(() => PairedBootstrap.Gauc([1, 0], [0, 1], [0.1f, 0.2f], [0.3f, 0.4f]), "no user has both classes");
        DataAssert.Throws<ArgumentException>(() => PairedBootstrap.Auc([1, 0], [0, 1], [0.1f, float.NaN], [0.3f, 0.4f]), "scores[1] is NaN");
    }
}
