// The popularity and user+item bias baselines on hand-made data: exact rates, learned biases, unknown users/items.
using FastRec.Tests.Training;
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Tests.Data;

namespace FastRec.Tests.Baselines;

public class PopularityAndBiasBaselineTests
{
    private static RecDataset Hand(TempDir dir)
    {
        // Items a (3 of 4 positive), b (0 of 4), c (only in the later splits); user u0 likes everything, u1 nothing.
        var rows = new List<string> { "user,item,label,timestamp" };
        int ts = 0;
        (string U, string I, int Y)[] train =
        [
            ("u0", "a", 1), ("u0", "b", 0), ("u1", "a", 0), ("u1", "b", 0), ("u0", "a", 1), ("u2", "a", 1), ("u2", "b", 0), ("u0", "b", 0),
        ];
        foreach (var (u, i, y) in train) rows.Add($"{u},{i},{y},{ts++}");
        rows.Add($"u0,c,1,{ts++}");
        rows.Add($"u3,a,0,{ts++}");
        string inter = dir.Write("i.csv", [.. rows]);
        string items = dir.Write("items.csv", "item,title", "a,alpha", "b,beta", "c,gamma");
        return RecDataset.Load(inter, items, null, null, new ExampleOptions { TrainFraction = 0.8, ValidationFraction = 0.1 });
    }

    [Test]
    public void PopularityIsTheSmoothedPositiveRate()
    {
        using var dir = new TempDir();
        var d = Hand(dir);
        Assert.That(d.Train.Count, Is.EqualTo(8));
        var pop = PopularityBaseline.Fit(d.Train, smoothing: 2);
        double prior = 3.0 / 8;
        Assert.That(pop.Prior, Is.EqualTo(prior).Within(1e-7));
        var p = pop.Predict(d.Train);
        Assert.That(p[0], Is.EqualTo((float)((3 + 2 * prior) / (4 + 2))).Within(1e-7f), "item a: 3 of 4 positive");
        Assert.That(p[1], Is.EqualTo((float)((0 + 2 * prior) / (4 + 2))).Within(1e-7f), "item b: 0 of 4");
        Assert.That(pop.Predict(d.Validation)[0], Is.EqualTo((float)prior).Within(1e-7f), "item c never trained: the prior");
    }

    [Test]
    public void BiasModelLearnsUserAndItemBiases()
    {
        using var dir = new TempDir();
        var d = Hand(dir);
        var m = BiasBaseline.Fit(d.Train, lambda: 0.5);
        Assert.That(m.Iterations, Is.LessThan(100), "converged");
        var p = m.Predict(d.Train);
        // u0 on a vs u1 on a: the user bias orders them; a vs b for u2: the item bias.
        Assert.That(p[0], Is.GreaterThan(p[2]), "u0 (likes all) above u1 (likes none) on item a");
        Assert.That(p[5], Is.GreaterThan(p[6]), "item a above item b for u2");
        var test = m.Predict(d.Test);   // u3 never trained: user bias 0, between u1's (negative) and u0's (positive)
        Assert.That(test[0], Is.InRange(p[2], p[0]), "an unknown user gets no user bias");
        // Converged optimum of the unpenalised global bias: Σ (p − y) = 0 on the training set.
        double sum = 0;
        for (int k = 0; k < d.Train.Count; k++) sum += p[k] - d.Train.Labels[k];
        Assert.That(sum, Is.EqualTo(0).Within(1e-5));
    }

    [Test]
    public void BadBaselineArgumentsAreRefused()
    {
        using var dir = new TempDir();
        var d = Hand(dir);
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => PopularityBaseline.Fit(d.Train, 0), "smoothing");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => BiasBaseline.Fit(d.Train, -1), "lambda");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => BiasBaseline.Fit(d.Train, 1, 0), "iterations");
    }
}
