// Scoreboard (reference chosen on validation, lifts, row subsets), TransferStudy and ColdItemStudy on planted synthetic data,
// and the `fastrec study` verbs end to end on a tiny dataset.
using FastRec.Tests.Cli;
using System.Text.Json.Nodes;
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Representations;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Training;
using static FastRec.Tests.Evaluation.EvalTestUtil;

namespace FastRec.Tests.Evaluation;

public class ScoreboardTests
{
    private static RecDataset Data()
    {
        var rows = new List<Row>();
        for (int u = 0; u < 6; u++)
        {
            rows.Add(Train($"u{u}", u % 4, 1)); rows.Add(Train($"u{u}", (u + 1) % 4, 0));
            rows.Add(Val($"u{u}", (u + 2) % 4, 1)); rows.Add(Val($"u{u}", (u + 3) % 4, 0));
            rows.Add(Test($"u{u}", 4 + u % 2, 1)); rows.Add(Test($"u{u}", 6 + u % 2, 0));
        }
        return Dataset(8, rows);
    }

    [Test]
    public void ReferenceIsTheBaselineWithTheBestValidationAucNotTheBestTest()
    {
        var data = Data();
        var w = EvalWindow.FromDataset(data);
        var t = data.Test;
        float[] Perfect() => t.Labels.ToArray().Select(y => y >= 0.5f ? 0.9f : 0.1f).ToArray();
        float[] Flat() => Enumerable.Repeat(0.5f, t.Count).ToArray();
        var good = new FixedScorer("good", (u, i) => i is 4 or 5 ? 1 : 0);
        var entries = new List<ScoreboardEntry>
        {
            new("model", Perfect(), 0.9, good, IsBaseline: false),
            new("test-best", Perfect(), 0.6, good, IsBaseline: true),
            new("val-best", Flat(), 0.7, new FixedScorer("flat", (_, _) => 0), IsBaseline: true),
            new("no-ranker", Flat(), 0.5, null, IsBaseline: true, Note: "cannot rank"),
        };
        var board = Scoreboard.Build(w, t, entries, new ScoreboardOptions { Bootstrap = new BootstrapOptions { Resamples = 200 } });
        Assert.That(board.Reference!.Name, Is.EqualTo("val-best"));
        Assert.That(board.Lifts.Select(l => (l.Model, l.Baseline, l.Metric)),
            Is.EqualTo(new[] { ("model", "val-best", "AUC"), ("model", "val-best", "GAUC"), ("model", "val-best", "NDCG@10") }));
        Assert.That(board.Lifts[0].Lift.Delta, Is.EqualTo(0.5).Within(1e-9), "perfect AUC 1 against a flat 0.5");
        Assert.That(board["no-ranker"].Ranking, Is.Null);
        var also = Scoreboard.Build(w, t, entries, new ScoreboardOptions { Bootstrap = new BootstrapOptions { Resamples = 50 }, AlsoOver = ["test-best", "absent"] });
        Assert.That(also.Lifts.Select(l => l.Baseline).Distinct(), Is.EqualTo(new[] { "val-best", "test-best" }));
        Assert.That(also.Lifts.First(l => l.Baseline == "test-best" && l.Metric == "AUC").Lift.Delta, Is.EqualTo(0).Within(1e-12));
        Assert.That(board["model"].Ranking!.Overall.Ndcg[0], Is.GreaterThan(board["val-best"].Ranking!.Overall.Ndcg[0]), "K is capped at the 8 items");
        Assert.That(board["model"].Slices, Is.Not.Empty);
        Assert.That(() => Scoreboard.Build(w, t, [new("short", new float[3], 0.5, null, true)]),
            Throws.ArgumentException.With.Message.Contains("short: 3 test probabilities"));
    }

    [Test]
    public void RowsRestrictTheRowsEvaluated()
    {
        var data = Data();
        var w = EvalWindow.FromDataset(data);
        var t = data.Test;
        var p = t.Labels.ToArray().Select((y, k) => k % 3 == 0 ? 0.2f : y >= 0.5f ? 0.8f : 0.3f).ToArray();
        int[] rows = [0, 1, 2, 3, 4, 5];
        var board = Scoreboard.Build(w, t, [new("m", p, 0.5, null, false)], new ScoreboardOptions { Rows = rows, Slices = false });
        Assert.That(board.Test.Rows, Is.EqualTo(6));
        var sub = t.Subset(rows);
        Assert.That(board["m"].Metrics!.Auc, Is.EqualTo(Engine.Metrics.RocAuc.Compute(sub.Labels, rows.Select(k => p[k]).ToArray())));
    }
}

public class TransferAndColdStudyTests
{
    private const int U = 60, V = 40, D = 6;

    /// <summary>Items appear over time (item i first at step i/2); users of taste u % 2 like items of cluster i % 2 90 % of the
    /// time. Planted vectors carry the cluster; the last 4 steps are validation and test.</summary>
    private static (InteractionTable Raw, ItemVectors Planted, ItemVectors Noise) Raw()
    {
        var catalog = new ItemCatalog();
        for (int i = 0; i < V; i++) catalog.Add($"i{i}", $"item {i} cluster {i % 2}");
        var b = new InteractionTableBuilder("planted.csv", catalog, [], MissingItemText.Refuse);
        long ts = 1; int line = 1;
        for (int k = 0; k < 24; k++)
            for (int u = 0; u < U; u++)
            {
                int reach = Math.Min(V, 2 * (k + 1) + 16);
                int item = (int)(Rng.Hash(3, (ulong)(k * 1000 + u)) % (ulong)reach);
                bool like = Rng.Uniform(4, (ulong)(k * 1000 + u)) < (item % 2 == u % 2 ? 0.9f : 0.1f);
                b.Add($"u{u}", $"i{item}", like ? 1 : 0, 1, ts++, [], line++);
            }
        var planted = new float[V * D]; var noise = new float[V * D];
        for (int i = 0; i < V; i++)
            for (int d = 0; d < D; d++)
            {
                noise[i * D + d] = Rng.Uniform(6, (ulong)(i * D + d)) - 0.5f;
                planted[i * D + d] = (d == i % 2 ? 1f : 0f) + 0.3f * (Rng.Uniform(5, (ulong)(i * D + d)) - 0.5f);
            }
        return (b.Build(), new ItemVectors("planted", V, D, planted), new ItemVectors("noise", V, D, noise));
    }

    private static readonly ExampleOptions Examples = new() { ContextSize = 1, TrainFraction = 0.75, ValidationFraction = 0.125 };

    [Test]
    public void TransferStudyFitsEveryVariantWindowAndSeedOnFixedTestRows()
    {
        var (raw, planted, noise) = Raw();
        var full = RecDataset.Build(HistoryFeatures.Append(raw), Examples);
        var bounds = StudyBoundaries.Of(full);
        using var b = new CpuSimdBackend();
        var variants = new List<TransferVariant> { new("a", "planted", _ => planted), new("b", "noise", _ => noise), new("e", "history only", _ => null) };
        var r = TransferStudy.Run(raw, t => HistoryFeatures.Append(t), Examples, bounds, variants, b,
            new TransferStudyOptions { Windows = [0.25, 1.0], Seeds = 2, RankingUsers = 0, Head = new ItemVectorModelOptions { Epochs = 15, BatchSize = 32, Hidden = 16, LearningRate = 5e-3f, Patience = 4 },
                                       BootstrapResamples = 100 });
        Assert.That(r.Points, Has.Count.EqualTo(3 * 2 * 2));
        Assert.That(r.Test.Rows, Is.EqualTo(full.Test.Count));
        var small = r.Points.First(p => p.Window == 0.25); var large = r.Points.First(p => p.Window == 1.0);
        Assert.That(small.TrainRows, Is.LessThan(large.TrainRows));
        Assert.That(large.TrainRows, Is.EqualTo(full.Train.Count));
        Assert.That(r.Summary("a", 1.0, p => p.Gauc).Mean, Is.GreaterThan(r.Summary("e", 1.0, p => p.Gauc).Mean + 0.05), "the planted vectors carry the taste");
        Assert.That(r.Summary("a", 1.0, p => p.Gauc).N, Is.EqualTo(2));
        var pairs = r.Lifts.Where(l => l.Window == 1.0 && l.Metric == "GAUC").Select(l => (l.Variant, l.Over)).ToArray();
        Assert.That(pairs, Is.EquivalentTo(new[] { ("a", "b"), ("a", "e"), ("b", "e") }));
        Assert.That(r.Lifts.First(l => l.Window == 1.0 && l.Metric == "GAUC" && l.Over == "e").Lift.Significant, Is.True);
    }

    [Test]
    public void ColdItemStudyRefitsWithoutTheNewestItemsAndFlagsTheBlindModels()
    {
        var (raw, planted, _) = Raw();
        var full = RecDataset.Build(HistoryFeatures.Append(raw), Examples);
        using var b = new CpuSimdBackend();
        var r = ColdItemStudy.Run(raw, t => HistoryFeatures.Append(t), Examples, StudyBoundaries.Of(full), planted, planted, b,
            new ColdItemStudyOptions { HeldOut = 0.25, Head = new ItemVectorModelOptions { Epochs = 15, BatchSize = 32, Hidden = 16, LearningRate = 5e-3f, Patience = 4 },
                                       Tower = new TowerModelOptions { Dim = 8, Hidden = 16, HistoryLength = 10, Epochs = 15, BatchSize = 32, LearningRate = 1e-2f, Patience = 4 },
                                       Bootstrap = new BootstrapOptions { Resamples = 100 } });
        Assert.That(r.HeldOutItems, Is.EqualTo(10));
        Assert.That(r.Blind, Is.SupersetOf(new[] { "most popular", "ItemKNN", "BPR-MF" }));
        var tower = r.Board[ColdItemStudy.TowerModel];
        Assert.That(tower.Ranking!.UniverseSize, Is.EqualTo(10));
        Assert.That(tower.Metrics!.Auc, Is.GreaterThan(r.Board["history-feature logistic"].Metrics!.Auc + 0.05), "the tower reads the planted taste of new items from their vectors");
        Assert.That(r.Lifts.Where(l => l.Model == ColdItemStudy.TowerModel).Select(l => l.Baseline), Does.Contain(ColdItemStudy.TowerNonNeural));
        var text = r.Board[ColdItemStudy.TextModel];
        Assert.That(text.Ranking!.UniverseSize, Is.EqualTo(10), "ranking among the held-out items only");
        Assert.That(text.Metrics!.Auc, Is.GreaterThan(r.Board["history-feature logistic"].Metrics!.Auc + 0.05));
        Assert.That(r.Lifts.Select(l => l.Baseline), Does.Contain("history-feature logistic"));
        // Blind models give every held-out item one score: their ranking is the random-order expectation.
        var knn = r.Board["ItemKNN"].Ranking!.Overall;
        Assert.That(knn.HitRateAt(10), Is.EqualTo(1.0), "10 held-out items, K = 10: everything is in the top 10");
    }
}

public class StudyCliTests
{
    [Test]
    public void TransferOnATinyDatasetWritesItsReportAndOneJsonDocument()
    {
        using var f = new TrainFixture(users: 24, perUser: 16);
        string outDir = Path.Combine(f.Root, "study");
        var (code, stdout, stderr) = CliTests.Run("study", "transfer", "--interactions", f.Interactions, "--items", f.Items, "--variants", "c,e",
            "--windows", "0.5,1", "--seeds", "1", "--ranking-users", "0", "--epochs", "2", "--out", outDir, "--json");
        Assert.That(code, Is.EqualTo(0), stderr);
        var doc = JsonNode.Parse(stdout)!;
        Assert.That(doc["points"]!.AsArray(), Has.Count.EqualTo(4));
        Assert.That(doc["variants"]!["c"]!.GetValue<string>(), Does.Contain("title-word"));
        Assert.That(File.Exists(Path.Combine(outDir, "report.md")), Is.True);
        Assert.That(File.Exists(Path.Combine(outDir, "learning-gauc.png")), Is.True);
        Assert.That(File.ReadAllText(Path.Combine(outDir, "results.csv")).Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(5));
    }

    [Test]
    public void DistillItemsOnATinyDatasetSavesItsStudentsAndWritesOneJsonDocument()
    {
        using var f = new TrainFixture(users: 24, perUser: 16);
        string outDir = Path.Combine(f.Root, "distil");
        var (code, stdout, stderr) = CliTests.Run("study", "distill-items", "--interactions", f.Interactions, "--items", f.Items, "--model", f.ModelDir,
            "--layers", "1", "--distill-epochs", "2", "--epochs", "2", "--held-out", "0.3", "--ranking-users", "0", "--out", outDir, "--json", "--backend", "cpu");
        Assert.That(code, Is.EqualTo(0), stderr);
        var doc = JsonNode.Parse(stdout)!;
        var encoders = doc["encoders"]!.AsArray();
        Assert.That(encoders.Select(e => e!["layers"]!.GetValue<int>()), Is.EqualTo(new[] { 2, 1, 1 }), "teacher, distilled, copied");
        Assert.That(encoders[0]!["gauc_lift_kept"], Is.Null, "the teacher keeps its own lift by definition");
        Assert.That(encoders.All(e => e!["ms_per_item"]!.GetValue<double>() > 0), Is.True);
        Assert.That(doc["lifts"]!.AsArray(), Is.Not.Empty);
        Assert.That(File.ReadAllText(Path.Combine(outDir, "report.md")), Does.Contain("lift kept"));
        foreach (string s in new[] { "student-1l", "student-1l-copy" })
            Assert.That(Engine.Weights.BertCheckpoint.Open(Path.Combine(outDir, "students", s)).Config.NumHiddenLayers, Is.EqualTo(1), s);
    }

    [TestCase("--windows", "2", "--windows: '2' is not a fraction")]
    [TestCase("--variants", "z", "unknown variant 'z'")]
    [TestCase("--seeds", "0", "--seeds must be >= 1")]
    public void BadStudyOptionsAreOneLineErrors(string flag, string value, string message)
    {
        using var f = new TrainFixture(users: 6, perUser: 8);
        var args = new List<string> { "study", "transfer", "--interactions", f.Interactions, "--items", f.Items, flag, value, "--out", Path.Combine(f.Root, "s") };
        if (flag != "--variants") args.AddRange(["--variants", "e"]);
        var (code, _, stderr) = CliTests.Run([.. args]);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain(message));
        Assert.That(stderr.Trim().Split('\n'), Has.Length.EqualTo(1), stderr);
    }
}
