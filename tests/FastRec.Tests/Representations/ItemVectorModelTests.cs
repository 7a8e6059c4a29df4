// ItemVectorModel: starts at the logistic baseline, learns a planted taste signal, full-ranking scores equal per-example
// logits, determinism and bad input.
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Metrics;
using FastRec.Engine.Representations;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;

namespace FastRec.Tests.Representations;

public class ItemVectorModelTests
{
    private const int U = 80, V = 40, D = 6;
    private string _dir = "";

    [OneTimeSetUp]
    public void Setup() => _dir = Directory.CreateTempSubdirectory("fastrec-ivm-").FullName;

    [OneTimeTearDown]
    public void TearDown() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    /// <summary>Users of taste group u % 2 like items of their own cluster (i % 2) 90 % of the time, others 10 %.
    /// Train/validation rows have distinct timestamps; every test row has the same timestamp (so history "before t" is
    /// history before the test window and the history features at the row equal those at the test start).</summary>
    private (RecDataset Data, ItemVectors Vectors) Make(bool history = true)
    {
        var items = new List<string> { "item,title" };
        for (int i = 0; i < V; i++) items.Add($"i{i},item {i}");
        var rows = new List<string> { "user,item,label,timestamp" };
        long ts = 1;
        for (int k = 0; k < 30; k++)
            for (int u = 0; u < U; u++)
            {
                int item = (int)(Rng.Hash(3, (ulong)(k * 1000 + u)) % V);
                bool like = Rng.Uniform(4, (ulong)(k * 1000 + u)) < (item % 2 == u % 2 ? 0.9f : 0.1f);
                long t = k < 24 ? ts++ : k < 27 ? 100_000 + ts++ : 1_000_000;
                rows.Add($"u{u},i{item},{(like ? 1 : 0)},{t}");
            }
        string ip = Path.Combine(_dir, "items.csv"), rp = Path.Combine(_dir, $"rows-{Guid.NewGuid():N}.csv");
        File.WriteAllLines(ip, items); File.WriteAllLines(rp, rows);
        var table = InteractionTable.Load(rp, ItemCatalog.Load(ip));
        if (history) table = HistoryFeatures.Append(table);
        var data = RecDataset.Build(table, new ExampleOptions { ContextSize = 1, ValidationStart = 100_000, TestStart = 1_000_000 });
        var vals = new float[V * D];
        for (int i = 0; i < V; i++)
            for (int d = 0; d < D; d++)
                vals[i * D + d] = (d < 2 ? (d == data.Catalog.IndexOf($"i{i}") % 2 ? 1f : 0f) : 0) + 0.3f * (Rng.Uniform(5, (ulong)(i * D + d)) - 0.5f);
        // Vectors are by catalogue index: item "i{i}" was added in order, so index i.
        return (data, new ItemVectors("planted", V, D, vals));
    }

    [Test]
    public void StartsAtTheHistoryLogisticBaseline()
    {
        var (data, vectors) = Make();
        var w = EvalWindow.FromDataset(data);
        using var b = new CpuSimdBackend();
        using var m = ItemVectorModel.Fit("x", w, data.Train, data.Validation, vectors, b, new ItemVectorModelOptions { Epochs = 1, LearningRate = 1e-12f });
        var lr = DenseLogisticBaseline.Fit(data.Train).Predict(data.Test);
        var p = m.Predict(data.Test);
        for (int k = 0; k < p.Length; k++) Assert.That(p[k], Is.EqualTo(lr[k]).Within(1e-4), $"example {k}");
    }

    [Test]
    public void LearnsThePlantedTasteAndBeatsHistoryOnly()
    {
        var (data, vectors) = Make();
        var w = EvalWindow.FromDataset(data);
        using var b = new CpuSimdBackend();
        var o = new ItemVectorModelOptions { Epochs = 30, BatchSize = 32, LearningRate = 5e-3f, Patience = 5, Hidden = 16 };
        using var withVectors = ItemVectorModel.Fit("vectors", w, data.Train, data.Validation, vectors, b, o);
        using var historyOnly = ItemVectorModel.Fit("history", w, data.Train, data.Validation, null, b, o);
        double a = RocAuc.Compute(data.Test.Labels, withVectors.Predict(data.Test));
        double h = RocAuc.Compute(data.Test.Labels, historyOnly.Predict(data.Test));
        Assert.That(a, Is.GreaterThan(0.8), "the taste signal is in the vectors and the history");
        Assert.That(a, Is.GreaterThan(h + 0.1), $"vectors {a:0.000} vs history only {h:0.000}");
    }

    [TestCase(true)]
    [TestCase(false)]
    public void FullRankingScoresEqualPerExampleLogits(bool history)
    {
        var (data, vectors) = Make(history);
        var w = EvalWindow.FromDataset(data);
        using var b = new CpuSimdBackend();
        using var m = ItemVectorModel.Fit("x", w, data.Train, data.Validation, vectors, b, new ItemVectorModelOptions { Epochs = 3, BatchSize = 32, Hidden = 8 });
        var z = m.PredictLogits(data.Test);
        var users = data.Test.Users.ToArray().Distinct().Order().ToArray();
        var scores = new float[users.Length * V];
        m.ScoreItems(w, users, scores);
        for (int k = 0; k < data.Test.Count; k++)
        {
            int j = Array.IndexOf(users, data.Test.Users[k]);
            Assert.That(scores[j * V + data.Test.Items[k]], Is.EqualTo(z[k]).Within(2e-4), $"test example {k}");
        }
    }

    /// <summary>The whole head (deep and wide paths, fused BCE) in float64: every parameter block's analytic gradient
    /// matches central differences of the loss, after two epochs so that W₂ (0 at the start) carries signal to W₁.</summary>
    [TestCase(true)]
    [TestCase(false)]
    public void GradientMatchesCentralDifferences(bool history)
    {
        var (data, vectors) = Make(history);
        var w = EvalWindow.FromDataset(data);
        var be = new Model.Float64Backend();
        using var m = ItemVectorModel.Fit("x", w, data.Train, data.Validation, vectors, be,
            new ItemVectorModelOptions { Epochs = 2, BatchSize = 64, Hidden = 8, LearningRate = 2e-2f, Patience = 2 });
        var batch = data.Test.Subset(Enumerable.Range(0, 48).ToArray());
        m.LossAndGradient(batch);
        double loss0 = be.LastLoss;
        Assert.That(double.IsFinite(loss0), Is.True);
        var grads = be.Data(m.GradientView).ToArray();
        var p = be.Data(m.ParameterView);
        int In = 3 * D + 4 + (history ? 4 : 0), H = 8, F = history ? 4 : 0;
        var blocks = new List<(string Name, int Offset, int Length)> { ("W1", 0, H * In), ("b1", H * In, H), ("W2", H * In + H, H), ("b2", H * In + 2 * H, 1) };
        if (history) blocks.Add(("wide", H * In + 2 * H + 1, F + 1));
        Assert.That(p.Length, Is.EqualTo(H * In + 2 * H + 1 + F + 1));
        const double h = 1e-6;
        var failures = new List<string>();
        foreach (var (name, offset, length) in blocks)
        {
            double maxAbs = 0;
            for (int k = 0; k < Math.Min(8, length); k++)
            {
                int i = offset + (int)(Rng.Hash(91, (ulong)(offset * 8 + k)) % (ulong)length);
                double orig = p[i];
                p[i] = orig + h; m.LossAndGradient(batch); double lp = be.LastLoss;
                p[i] = orig - h; m.LossAndGradient(batch); double lm = be.LastLoss;
                p[i] = orig;
                double fd = (lp - lm) / (2 * h), an = grads[i];
                if (!(Math.Abs(fd - an) <= 1e-8 + 1e-5 * Math.Abs(fd))) failures.Add($"{name}[{i - offset}]: analytic {an:E6}, finite difference {fd:E6}");
                maxAbs = Math.Max(maxAbs, Math.Abs(an));
            }
            if (maxAbs < 1e-9) failures.Add($"{name}: every sampled gradient is ~0; the check would be vacuous");
        }
        Assert.That(failures, Is.Empty, string.Join("\n", failures));
    }

    [Test]
    public void SameSeedSameLogits()
    {
        var (data, vectors) = Make();
        var w = EvalWindow.FromDataset(data);
        using var b = new CpuSimdBackend();
        var o = new ItemVectorModelOptions { Epochs = 2, BatchSize = 32, Seed = 9 };
        using var m1 = ItemVectorModel.Fit("x", w, data.Train, data.Validation, vectors, b, o);
        using var m2 = ItemVectorModel.Fit("x", w, data.Train, data.Validation, vectors, b, o);
        Assert.That(m1.PredictLogits(data.Test), Is.EqualTo(m2.PredictLogits(data.Test)));
    }

    [Test]
    public void BadInputIsNamed()
    {
        var (data, _) = Make();
        var w = EvalWindow.FromDataset(data);
        using var b = new CpuSimdBackend();
        var wrong = new ItemVectors("short", V - 1, D, new float[(V - 1) * D]);
        Assert.That(() => ItemVectorModel.Fit("x", w, data.Train, data.Validation, wrong, b),
            Throws.ArgumentException.With.Message.Contains("cover 39 items"));
        Assert.That(() => ItemVectorModel.Fit("x", w, data.Train, data.Validation, null, b, new ItemVectorModelOptions { BatchSize = 0 }),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("batch size"));
        using var m = ItemVectorModel.Fit("x", w, data.Train, data.Validation, null, b, new ItemVectorModelOptions { Epochs = 1 });
        var other = EvalWindow.FromDataset(data);
        Assert.That(() => m.ScoreItems(other, [0], new float[V]), Throws.ArgumentException.With.Message.Contains("another EvalWindow"));
        Assert.That(() => m.ScoreItems(w, [0], new float[V - 1]), Throws.ArgumentException.With.Message.Contains("scores: expected"));
    }
}
