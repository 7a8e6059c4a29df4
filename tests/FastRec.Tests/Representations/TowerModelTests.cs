// TowerModel and TowerScorer: history features at any time equal the logged rows', a planted taste is learned, the
// scorer equals the model's own logits, float64 finite differences of every parameter block, determinism, bad input.
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Metrics;
using FastRec.Engine.Representations;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;

namespace FastRec.Tests.Representations;

public class TowerModelTests
{
    private const int U = 80, V = 40, D = 6;
    private string _dir = "";

    [OneTimeSetUp]
    public void Setup() => _dir = Directory.CreateTempSubdirectory("fastrec-tower-").FullName;

    [OneTimeTearDown]
    public void TearDown() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    /// <summary>Users of taste group u % 2 like items of their own cluster (i % 2) 90 % of the time, others 10 %; items
    /// 0..9 are rated 3x as often (popular). Train/validation rows have distinct timestamps (seconds, hours apart); every
    /// test row has the same timestamp, so a test row's history and features are those at the test start.</summary>
    private (RecDataset Data, ItemVectors Vectors) Make(int rounds = 30)
    {
        var items = new List<string> { "item,title" };
        for (int i = 0; i < V; i++) items.Add($"i{i},item {i}");
        var rows = new List<string> { "user,item,label,timestamp" };
        long ts = 1;
        for (int k = 0; k < rounds; k++)
            for (int u = 0; u < U; u++)
            {
                ulong h = Rng.Hash(3, (ulong)(k * 1000 + u));
                int item = h % 4 == 0 ? (int)(h / 4 % 10) : (int)(h / 4 % V);
                bool like = Rng.Uniform(4, (ulong)(k * 1000 + u)) < (item % 2 == u % 2 ? 0.9f : 0.1f);
                long t = k < rounds * 8 / 10 ? 3_600 * ts++ : k < rounds * 9 / 10 ? 100_000_000 + 3_600 * ts++ : 1_000_000_000;
                rows.Add($"u{u},i{item},{(like ? 1 : 0)},{t}");
            }
        string ip = Path.Combine(_dir, "items.csv"), rp = Path.Combine(_dir, $"rows-{Guid.NewGuid():N}.csv");
        File.WriteAllLines(ip, items); File.WriteAllLines(rp, rows);
        var table = HistoryFeatures.Append(InteractionTable.Load(rp, ItemCatalog.Load(ip)));
        var data = RecDataset.Build(table, new ExampleOptions { ContextSize = 1, ValidationStart = 100_000_000, TestStart = 1_000_000_000 });
        var vals = new float[V * D];
        for (int i = 0; i < V; i++)
            for (int d = 0; d < D; d++)
                vals[i * D + d] = (d < 2 ? (d == i % 2 ? 1f : 0f) : 0) + 0.3f * (Rng.Uniform(5, (ulong)(i * D + d)) - 0.5f);
        Assert.That(data.Catalog.IndexOf("i7"), Is.EqualTo(7), "vectors are by catalogue index");
        return (data, new ItemVectors("planted", V, D, vals));
    }

    private static TowerModelOptions Small(int epochs = 2, int negatives = 2) => new()
    { Dim = 4, Hidden = 8, HistoryLength = 6, Negatives = negatives, Epochs = epochs, BatchSize = 32, ValidationRankingUsers = 20 };

    [Test]
    public void HistoryFeaturesAtAnyTimeEqualTheLoggedRows()
    {
        var (data, _) = Make();
        var w = EvalWindow.FromDataset(data);
        var f = new float[4];
        int checkedRows = 0;
        foreach (var set in new[] { data.Train, data.Validation, data.Test })
            for (int k = 0; k < set.Count; k++)
            {
                w.HistoryFeaturesAt(w.Before(set.Users[k], set.Timestamps[k]), set.Items[k], set.Timestamps[k], f);
                var logged = set.DenseRow(k)[^4..];
                for (int c = 0; c < 4; c++) Assert.That(f[c], Is.EqualTo(logged[c]).Within(1e-6), $"{set.Name} row {k}, {HistoryFeatures.Names[c]}");
                checkedRows++;
            }
        Assert.That(checkedRows, Is.EqualTo(U * 30));
        Assert.That(() => w.HistoryFeaturesAt(w.Before(0, 5), V, 5, f), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("item index"));
    }

    [Test]
    public void LearnsThePlantedTasteAndRanksItsCluster()
    {
        var (data, vectors) = Make();
        var w = EvalWindow.FromDataset(data);
        using var b = new CpuSimdBackend();
        using var m = TowerModel.Fit("tower", w, data.Train, data.Validation, vectors, b, Small(30) with { LearningRate = 1e-2f, Patience = 5 });
        double auc = RocAuc.Compute(data.Test.Labels, m.Predict(data.Test));
        Assert.That(auc, Is.GreaterThan(0.8), "the taste is in the vectors and the history");
        Assert.That(m.Trained, Is.EqualTo((data.Train.Count, U)));
        // The ranking puts the user's own cluster first: most of each test user's top 10 share the user's parity.
        var users = w.TestUsers.ToArray();
        var scores = new float[users.Length * V];
        m.ScoreItems(w, users, scores);
        int own = 0, all = 0;
        var top = new int[10];
        for (int j = 0; j < users.Length; j++)
        {
            int n = TopK.Select(scores.AsSpan(j * V, V), 10, top);
            for (int q = 0; q < n; q++) { all++; if (top[q] % 2 == users[j] % 2) own++; }
        }
        Assert.That(own / (double)all, Is.GreaterThan(0.7), $"{own} of {all} top-10 items in the user's cluster");
    }

    /// <summary>With no "rated" output the scorer's score of (user, item) at the test start is log σ of the model's own
    /// logit for that test row: one row construction, two code paths (backend head vs host GEMM).</summary>
    [Test]
    public void ScorerEqualsTheModelsLogits()
    {
        var (data, vectors) = Make();
        var w = EvalWindow.FromDataset(data);
        using var b = new CpuSimdBackend();
        using var m = TowerModel.Fit("tower", w, data.Train, data.Validation, vectors, b, Small(3, negatives: 0));
        var z = m.PredictLogits(data.Test);
        var users = data.Test.Users.ToArray().Distinct().Order().ToArray();
        var scores = new float[users.Length * V];
        m.ScoreItems(w, users, scores);
        for (int k = 0; k < data.Test.Count; k++)
        {
            int j = Array.IndexOf(users, data.Test.Users[k]);
            float expected = -MathF.Log(1 + MathF.Exp(-z[k]));
            Assert.That(scores[j * V + data.Test.Items[k]], Is.EqualTo(expected).Within(2e-4), $"test example {k}");
        }
    }

    /// <summary>Every parameter block (projection, residuals, label embeddings, head, wide path) in float64 on the device
    /// side against central differences of the loss of one batch with its sampled items, after two epochs so that W₂
    /// (0 at the start) carries signal down to the towers. The towers run in float32 on the host: h and the tolerance
    /// are sized for that.</summary>
    [Test]
    public void GradientMatchesCentralDifferences()
    {
        var (data, vectors) = Make();
        var w = EvalWindow.FromDataset(data);
        var be = new Model.Float64Backend();
        using var m = TowerModel.Fit("x", w, data.Train, data.Validation, vectors, be, Small(2) with { LearningRate = 3e-2f, Patience = 2 });
        var rows = Enumerable.Range(100, 24).ToArray();
        m.LossAndGradient(data.Train, rows);
        var grads = be.Data(m.GradientView).ToArray();
        var p = be.Data(m.ParameterView);
        var (oP, oR, oE, oW1, oW2, count) = m.Layout;
        Assert.That(p.Length, Is.EqualTo(count));
        // Towers (host float32): h = 2e-3, 2 % tolerance. Head (float64 on the device, the rows fixed): h = 1e-6, 1e-5.
        var blocks = new (string Name, int Offset, int Length, double H, double Rel)[]
        {
            ("P", oP, oR - oP, 2e-3, 2e-2), ("residual", oR, oE - oR, 2e-3, 2e-2), ("E", oE, oW1 - oE, 2e-3, 2e-2),
            ("W1", oW1, oW2 - oW1, 1e-6, 1e-5), ("W2, b2, wide", oW2, count - oW2, 1e-6, 1e-5),
        };
        var failures = new List<string>();
        foreach (var (name, offset, length, h, rel) in blocks)
        {
            double maxAbs = 0; int tried = 0;
            for (int k = 0; tried < 10 && k < 400; k++)
            {
                int i = offset + (int)(Rng.Hash(91, (ulong)(offset * 8 + k)) % (ulong)length);
                if (Math.Abs(grads[i]) < 1e-4) continue;   // untouched residual rows and dead ReLUs say nothing
                tried++;
                double orig = p[i];
                p[i] = orig + h; m.LossAndGradient(data.Train, rows); double lp = be.LastLoss;
                p[i] = orig - h; m.LossAndGradient(data.Train, rows); double lm = be.LastLoss;
                p[i] = orig;
                double fd = (lp - lm) / (2 * h), an = grads[i];
                if (!(Math.Abs(fd - an) <= 2e-5 * rel / 1e-2 + rel * Math.Abs(fd))) failures.Add($"{name}[{i - offset}]: analytic {an:E6}, finite difference {fd:E6}");
                maxAbs = Math.Max(maxAbs, Math.Abs(an));
            }
            if (tried < 3) failures.Add($"{name}: only {tried} parameters with a gradient; the check would be vacuous");
        }
        Assert.That(failures, Is.Empty, string.Join("\n", failures));
    }

    /// <summary>ILGPU's CPU accelerator runs the projection GEMM, head, loss and AdamW with the GPU kernels (device memory,
    /// host copies each step): the same model up to rounding after two epochs.</summary>
    [Test]
    public void IlgpuBackendTrainsTheSameModel()
    {
        var (data, vectors) = Make();
        var w = EvalWindow.FromDataset(data);
        using var cpu = new CpuSimdBackend();
        using var ilgpu = FastRec.Kernels.Gpu.IlgpuBackend.CreateCpuAccelerator();
        var o = Small(2) with { ValidationRankingUsers = 0 };
        using var a = TowerModel.Fit("cpu", w, data.Train, data.Validation, vectors, cpu, o);
        using var g = TowerModel.Fit("ilgpu", w, data.Train, data.Validation, vectors, ilgpu, o);
        Assert.That(g.Best.Epoch, Is.EqualTo(a.Best.Epoch));
        var za = a.PredictLogits(data.Test); var zg = g.PredictLogits(data.Test);
        Assert.That(zg, Is.EqualTo(za).Within(2e-3f));
    }

    [Test]
    public void SameSeedSameModel()
    {
        var (data, vectors) = Make();
        var w = EvalWindow.FromDataset(data);
        using var b = new CpuSimdBackend();
        using var m1 = TowerModel.Fit("x", w, data.Train, data.Validation, vectors, b, Small(2) with { Seed = 9 });
        using var m2 = TowerModel.Fit("x", w, data.Train, data.Validation, vectors, b, Small(2) with { Seed = 9 });
        using var m3 = TowerModel.Fit("x", w, data.Train, data.Validation, vectors, b, Small(2) with { Seed = 10 });
        Assert.That(m1.PredictLogits(data.Test), Is.EqualTo(m2.PredictLogits(data.Test)));
        Assert.That(m1.PredictLogits(data.Test), Is.Not.EqualTo(m3.PredictLogits(data.Test)));
    }

    [Test]
    public void InterruptedTrainingResumesFromItsCheckpointBitIdentical()
    {
        var (data, vectors) = Make();
        var w = EvalWindow.FromDataset(data);
        using var b = new CpuSimdBackend();
        var o = Small(4) with { Patience = 10, LearningRate = 1e-2f };
        using var straight = TowerModel.Fit("x", w, data.Train, data.Validation, vectors, b, o);

        string path = Path.Combine(_dir, "tower.ckpt");
        using (var cts = new CancellationTokenSource())
            Assert.That(() => TowerModel.Fit("x", w, data.Train, data.Validation, vectors, b, o with { CheckpointPath = path },
                line => { if (line.Contains("epoch 2:")) cts.Cancel(); }, cts.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(File.Exists(path), Is.True, "the state after epoch 2 was saved before the interruption");
        var log = new List<string>();
        using var resumed = TowerModel.Fit("x", w, data.Train, data.Validation, vectors, b, o with { CheckpointPath = path }, log.Add);
        Assert.That(log, Has.Some.Contains("resumed from").And.Some.Contains("after epoch 2"));
        Assert.That(log.Count(l => l.Contains(": epoch ")), Is.EqualTo(2), "epochs 3 and 4 only");
        Assert.That(resumed.History, Is.EqualTo(straight.History));
        Assert.That(resumed.Best, Is.EqualTo(straight.Best));
        Assert.That(resumed.PredictLogits(data.Test), Is.EqualTo(straight.PredictLogits(data.Test)), "bit-identical to the uninterrupted run");

        // Another run's file is refused, a corrupt one too; both name the file.
        Assert.That(() => TowerModel.Fit("x", w, data.Train, data.Validation, vectors, b, o with { CheckpointPath = path, Seed = 77 }),
            Throws.InstanceOf<InvalidDataException>().With.Message.Contains(path).And.Message.Contains("another run"));
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x10;
        File.WriteAllBytes(path, bytes);
        Assert.That(() => TowerModel.Fit("x", w, data.Train, data.Validation, vectors, b, o with { CheckpointPath = path }),
            Throws.InstanceOf<InvalidDataException>().With.Message.Contains(path).And.Message.Contains("checksum"));
        File.WriteAllBytes(path, bytes.AsSpan(0, 20).ToArray());
        Assert.That(() => TowerModel.Fit("x", w, data.Train, data.Validation, vectors, b, o with { CheckpointPath = path }),
            Throws.InstanceOf<InvalidDataException>().With.Message.Contains(path));
        Assert.That(() => TowerModel.Fit("x", w, data.Train, data.Validation, vectors, b, o with { CheckpointPath = "" }),
            Throws.ArgumentException.With.Message.Contains("CheckpointPath"));
    }

    [Test]
    public void ScorerServesNewUsersAndNewItems()
    {
        var (data, vectors) = Make();
        var w = EvalWindow.FromDataset(data);
        using var b = new CpuSimdBackend();
        using var m = TowerModel.Fit("x", w, data.Train, data.Validation, vectors, b, Small(2));
        var s = m.CreateScorer(w, includeTest: true);
        var ws = s.CreateWorkspace();
        var scores = new float[V];
        s.Score([], [], scores, ws);
        Assert.That(scores.All(float.IsFinite), Is.True, "an empty history is a new user");
        var s2 = s.WithItems(vectors.Values.AsSpan(0, 2 * D));
        Assert.That(s2.ItemCount, Is.EqualTo(V + 2));
        Assert.That(s.ItemCount, Is.EqualTo(V), "WithItems leaves the original alone");
        var scores2 = new float[V + 2];
        s2.Score([3, 5], [1, 0], scores2, s2.CreateWorkspace());
        Assert.That(scores2.All(float.IsFinite), Is.True);
        // A new item with item 0's text has item 0's projection without the residual.
        Assert.That(s2.ItemVector(V).ToArray(), Has.Length.EqualTo(s2.Dim));
        // Bad input names the problem.
        Assert.That(() => s.Score([V], [1], scores, ws), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("history item 0"));
        Assert.That(() => s.Score([1], [2], scores, ws), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("[0, 1]"));
        Assert.That(() => s.Score([1, 2], [1], scores, ws), Throws.ArgumentException.With.Message.Contains("2 items but 1 labels"));
        Assert.That(() => s.Score([1], [1], new float[V - 1], ws), Throws.ArgumentException.With.Message.Contains("one per item"));
        Assert.That(() => s.WithItems(new float[D + 1]), Throws.ArgumentException.With.Message.Contains("whole number"));
        var nan = new float[D]; nan[2] = float.NaN;
        Assert.That(() => s.WithItems(nan), Throws.ArgumentException.With.Message.Contains("NaN"));
    }

    /// <summary>The robustness case of issue 11: a few very active users dominate the recent rows (and rate against the
    /// crowd), the other users' likes follow their own rate. Trained on all rows, the model must not fall below the
    /// history-feature logistic regression on the other users' test rows (its wide path starts there).</summary>
    [Test]
    public void DominantUsersDoNotPullItBelowTheLogisticBaseline()
    {
        var items = new List<string> { "item,title" };
        for (int i = 0; i < V; i++) items.Add($"i{i},item {i}");
        var rows = new List<string> { "user,item,label,timestamp" };
        long ts = 1;
        for (int k = 0; k < 2_400; k++)
        {
            ulong h = Rng.Hash(11, (ulong)k);
            bool heavy = k > 1_200 && k < 1_900 && h % 10 < 8;   // 80 % of the later training rows come from 3 users
            int user = heavy ? (int)(h / 10 % 3) : 3 + (int)(h / 10 % 120);
            int item = (int)(h / 2_000 % V);
            float p = heavy ? (item % 2 == 0 ? 0.05f : 0.95f) : user % 3 == 0 ? 0.8f : 0.2f;   // users 3k like most things
            bool like = Rng.Uniform(12, (ulong)k) < p;
            long t = k < 1_900 ? 3_600 * ts++ : k < 2_150 ? 100_000_000 + 3_600 * ts++ : 1_000_000_000;
            rows.Add($"u{user},i{item},{(like ? 1 : 0)},{t}");
        }
        string ip = Path.Combine(_dir, "items-dom.csv"), rp = Path.Combine(_dir, "rows-dom.csv");
        File.WriteAllLines(ip, items); File.WriteAllLines(rp, rows);
        var table = HistoryFeatures.Append(InteractionTable.Load(rp, ItemCatalog.Load(ip)));
        var data = RecDataset.Build(table, new ExampleOptions { ContextSize = 1, ValidationStart = 100_000_000, TestStart = 1_000_000_000 });
        var w = EvalWindow.FromDataset(data);
        var vectors = new ItemVectors("random", V, D, Enumerable.Range(0, V * D).Select(k => Rng.Uniform(13, (ulong)k) - 0.5f).ToArray());
        using var b = new CpuSimdBackend();
        using var m = TowerModel.Fit("tower", w, data.Train, data.Validation, vectors, b, Small(20) with { LearningRate = 1e-2f, Patience = 3 });
        var logistic = Engine.Baselines.DenseLogisticBaseline.Fit(data.Train);
        var heavyUsers = new[] { "u0", "u1", "u2" }.Select(id => Array.IndexOf(data.Train.UserIds, id)).ToHashSet();
        var others = Enumerable.Range(0, data.Test.Count).Where(k => !heavyUsers.Contains(data.Test.Users[k])).ToArray();
        Assert.That(others.Length, Is.GreaterThan(100));
        var test = data.Test.Subset(others);
        double tower = RocAuc.Compute(test.Labels, m.Predict(test)), lr = RocAuc.Compute(test.Labels, logistic.Predict(test));
        Assert.That(lr, Is.GreaterThan(0.7), "the users' own rates carry the signal");
        Assert.That(tower, Is.GreaterThanOrEqualTo(lr - 0.01), $"tower {tower:0.000} vs history logistic {lr:0.000} on the other users");
    }

    /// <summary>With α = 0 mutual learning is two independent fits, bit for bit (the same rows, steps and selection);
    /// with α &gt; 0 both end elsewhere (the effect on quality is measured on real data, docs/TRAINING.md).</summary>
    [Test]
    public void MutualLearningWithZeroWeightIsTwoFits()
    {
        var (data, vectors) = Make();
        var w = EvalWindow.FromDataset(data);
        using var b = new CpuSimdBackend();
        var ids = TowerModel.IdOnlyVectors(V);
        var o = Small(3);
        using var textAlone = TowerModel.Fit("text", w, data.Train, data.Validation, vectors, b, o);
        using var idsAlone = TowerModel.Fit("ids", w, data.Train, data.Validation, ids, b, o);
        var (t0, i0) = TowerModel.FitMutual("text", vectors, "ids", ids, w, data.Train, data.Validation, b, o, new MutualOptions { Weight = 0 });
        using (t0) using (i0)
        {
            Assert.That(t0.PredictLogits(data.Test), Is.EqualTo(textAlone.PredictLogits(data.Test)));
            Assert.That(i0.PredictLogits(data.Test), Is.EqualTo(idsAlone.PredictLogits(data.Test)));
        }
        // With α > 0 each model's gradient carries its peer's predictions: both end elsewhere than alone, still finite.
        var (t1, i1) = TowerModel.FitMutual("text", vectors, "ids", ids, w, data.Train, data.Validation, b, o with { Patience = 10 }, new MutualOptions { Weight = 2 });
        using (t1) using (i1)
        {
            using var ta = TowerModel.Fit("text", w, data.Train, data.Validation, vectors, b, o with { Patience = 10 });
            using var ia = TowerModel.Fit("ids", w, data.Train, data.Validation, ids, b, o with { Patience = 10 });
            var z1 = t1.PredictLogits(data.Test); var y1 = i1.PredictLogits(data.Test);
            Assert.That(z1.All(float.IsFinite) && y1.All(float.IsFinite), Is.True);
            if (t1.Best.Epoch > 0) Assert.That(z1, Is.Not.EqualTo(ta.PredictLogits(data.Test)));
            if (i1.Best.Epoch > 0) Assert.That(y1, Is.Not.EqualTo(ia.PredictLogits(data.Test)));
            Assert.That(t1.Best.Epoch + i1.Best.Epoch, Is.GreaterThan(0), "at least one peer kept a trained epoch");
        }
        Assert.That(() => TowerModel.FitMutual("a", vectors, "b", ids, w, data.Train, data.Validation, b, o, new MutualOptions { Temperature = 0 }),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("temperature"));
    }

    [Test]
    public void BadInputIsNamed()
    {
        var (data, vectors) = Make();
        var w = EvalWindow.FromDataset(data);
        using var b = new CpuSimdBackend();
        var wrong = new ItemVectors("short", V - 1, D, new float[(V - 1) * D]);
        Assert.That(() => TowerModel.Fit("x", w, data.Train, data.Validation, wrong, b), Throws.ArgumentException.With.Message.Contains("cover 39 items"));
        Assert.That(() => TowerModel.Fit("x", w, data.Train, data.Validation, vectors, b, new TowerModelOptions { Negatives = -1 }),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("sampled negatives"));
        Assert.That(() => TowerModel.Fit("x", w, data.Train, data.Validation, vectors, b, new TowerModelOptions { Dim = 0 }),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("tower width"));
        var empty = data.Train.Subset([], "empty");
        Assert.That(() => TowerModel.Fit("x", w, empty, data.Validation, vectors, b), Throws.ArgumentException.With.Message.Contains("no rated"));
    }
}
