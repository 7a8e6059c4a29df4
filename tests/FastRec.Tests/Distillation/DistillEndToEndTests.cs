// End to end on a real MovieTweetings slice: fine-tune a tiny teacher, `fastrec distill` it, the student beats popularity;
// the student checkpoint serves through Predictor.Load; `fastrec cotrain` on a small synthetic set.
using FastRec.Tests.Cli;
using System.CommandLine;
using System.Text.Json.Nodes;
using FastRec.Cli;
using FastRec.Engine.Data;
using FastRec.Engine.Model;
using FastRec.Engine.Serving;
using FastRec.Engine.Training;
using FastRec.Engine.Weights;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Training;
using FastRec.Tests.Weights;

namespace FastRec.Tests.Distillation;

[NonParallelizable]
public class DistillEndToEndTests
{
    private string _root = null!;
    private string Teacher => Path.Combine(_root, "teacher");

    [OneTimeSetUp]
    public void Setup()
    {
        // A tiny random BERT (2 layers, hidden 32) with MiniLM's WordPiece vocabulary, fine-tuned on a MovieTweetings slice.
        _root = Directory.CreateTempSubdirectory("fastrec-distill-e2e-").FullName;
        MiniLm.WriteTinyBert(Path.Combine(_root, "tiny"), m => m.InitRandom(17));
        var schema = new DataSchema { Kind = "movietweetings", Examples = new ExampleOptions { ContextSize = 3 }, HistoryFeatures = true };
        var data = RecDataset.Build(schema.Prepare(MovieTweetings.Load(MovieTweetings.FindVendoredDirectory())), schema.Examples);
        using var backend = new CpuSimdBackend();
        var head = new AdapterConfig { HiddenSizes = [16], Dropout = 0.1f, DenseFeatures = data.Table.DenseNames.Length };
        using var rec = Recommender.FromPretrained(Path.Combine(_root, "tiny"), backend, head, new TextOptions { MaxLength = 32 }, seed: 1);
        rec.Schema = schema;
        var r = Experiment.Run(rec, data, new ExperimentOptions
        {
            MaxTrain = 3000, MaxValidation = 600, MaxTest = 600,
            Trainer = new TrainerOptions { Epochs = 2, BatchSize = 32, LearningRate = 3e-3f, WarmupFraction = 0.1, Freeze = Freeze.All, EvalEverySteps = 40, Seed = 5 },
        });
        TestContext.Out.WriteLine($"teacher: test AUC {r.Model.Metrics.Auc:0.0000}; " + string.Join("; ", r.Baselines.Select(x => $"{x.Name} {x.Metrics.Auc:0.0000}")));
        Checkpoint.Save(rec, Teacher, null, null, null);
    }

    [OneTimeTearDown] public void TearDown() { try { Directory.Delete(_root, true); } catch (IOException) { } }

    private static (int Code, string Out, string Err) Cli(params string[] args) => FastRec.Tests.Cli.CliTests.Run(args);

    /// <summary>With --json, stdout is exactly one JSON document.</summary>
    private static JsonObject LastJson(string stdout) => (JsonObject)JsonNode.Parse(stdout)!;

    [Test]
    public void DistilledStudentBeatsPopularityAndServes()
    {
        string student = Path.Combine(_root, "student"), report = Path.Combine(_root, "report");
        var (code, output, err) = Cli("distill", "--teacher", Teacher, "--out", student, "--layers", "1", "--hidden-weight", "1", "--attention-weight", "1",
            "--alpha", "0.5", "--temperature", "2", "--epochs", "2", "--lr", "3e-3", "--max-train", "3000", "--max-val", "600", "--max-test", "600",
            "--latency-requests", "30", "--precision-check", "200", "--report", report, "--json");
        TestContext.Out.WriteLine(output + err);
        Assert.That(code, Is.Zero, err);
        var json = LastJson(output);
        double studentAuc = json["student"]!["auc"]!.GetValue<double>();
        double popularity = json["baselines_test"]!["popularity"]!["auc"]!.GetValue<double>();
        Assert.That(studentAuc, Is.GreaterThan(popularity), "the distilled student beats the popularity baseline on the test slice");
        Assert.That(json["student_facts"]!["parameters"]!.GetValue<long>(), Is.LessThan(json["teacher_facts"]!["parameters"]!.GetValue<long>()));
        Assert.That(json["student_facts"]!["latency_p50_ms"]!.GetValue<double>(), Is.GreaterThan(0));
        var checks = json["int16_serving"]!.AsArray();
        Assert.That(checks.Select(c => c!["model"]!.GetValue<string>()), Is.EqualTo(new[] { "teacher", "student" }));
        foreach (var c in checks)
        {
            double a32 = c!["auc_fp32"]!.GetValue<double>(), a16 = c["auc_int16"]!.GetValue<double>(), dp = c["max_abs_dp"]!.GetValue<double>();
            Assert.That(c["examples"]!.GetValue<int>(), Is.EqualTo(200));
            Assert.That(Math.Abs(a16 - a32), Is.LessThan(0.01), $"{c["model"]}: int16 serving keeps the AUC ({a16} vs {a32})");
            Assert.That(dp, Is.LessThan(0.02).And.GreaterThan(0), $"{c["model"]}: int16 moves scores a little, not at all or a lot");
        }
        string md = File.ReadAllText(Path.Combine(report, "report.md"));
        Assert.That(md, Does.Contain("## Serving precision: fp32 vs int16"));
        Assert.That(md, Does.Contain("| teacher |").And.Contain("| student |").And.Contain("| popularity |").And.Contain("batch-1 latency"));
        Assert.That(File.Exists(Path.Combine(report, "auc_side_by_side.png")) && File.Exists(Path.Combine(report, "latency.png")), Is.True, "plots");

        // the student checkpoint serves: Predictor.Load scores like the model on the test examples
        using var backend = new CpuSimdBackend();
        using var rec = Checkpoint.Load(student, backend).Recommender;
        var schema = rec.Schema;
        var data = RecDataset.Build(schema.Prepare(MovieTweetings.Load(MovieTweetings.FindVendoredDirectory())), schema.Examples);
        var test = Experiment.First(data.Test, 20);
        var expected = rec.Predict(test);
        using var p = Predictor.Load(student, expectDenseFeatures: rec.Scaler.Names);
        var enc = rec.EncoderFor(test.Catalog).Encode(test);
        for (int i = 0; i < test.Count; i++)
        {
            var row = enc.Row(i);
            int ts = enc.TypeStart[i];
            Assert.That(p.Score(row[1..(ts - 1)], row[ts..^1], test.DenseRow(i)), Is.EqualTo(expected[i]).Within(2e-5), $"test example {i}");
        }
        // text front door: item titles in, the same score out
        var ctxTitles = test.Context(0).ToArray().Select(j => test.Catalog.Text(j)).ToArray();
        Assert.That(p.Score(ctxTitles, test.Catalog.Text(test.Items[0]), test.DenseRow(0)), Is.EqualTo(expected[0]).Within(2e-5), "text API");
        // the same checkpoint served in int16 keeps its options (precision, tokenizer, scaler) through Load
        using var q = Predictor.Load(student, new PredictorOptions { Precision = ServingPrecision.Int16 });
        Assert.That(q.Options.Precision, Is.EqualTo(ServingPrecision.Int16));
        Assert.That(q.PackedBytes, Is.LessThan(p.PackedBytes));
        for (int i = 0; i < test.Count; i++)
        {
            var row = enc.Row(i);
            int ts = enc.TypeStart[i];
            Assert.That(q.Score(row[1..(ts - 1)], row[ts..^1], test.DenseRow(i)), Is.EqualTo(expected[i]).Within(5e-3), $"int16, test example {i}");
        }
    }

    [Test]
    public void APredictorRefusesACheckpointOfAnotherSchema()
    {
        Assert.That(() => Predictor.Load(Teacher, expectDenseFeatures: ["age", "price"]),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("another data schema").And.Message.Contains("[age, price]"));
        Assert.That(() => Predictor.Load(Path.Combine(_root, "tiny")),
            Throws.TypeOf<FileNotFoundException>().With.Message.Contains("fastrec.json"));
        using var p = Predictor.Load(Teacher);
        Assert.That(p.DenseFeatures, Is.EqualTo(HistoryFeatures.Names));
        Assert.That(() => p.Score(["Heat (1995)"], "Alien (1979)"), Throws.ArgumentException.With.Message.Contains("dense"));
    }

    [Test]
    public void CotrainVerbTrainsTwoModelsAndWritesBoth()
    {
        using var fx = new TrainFixture(users: 16, perUser: 16);
        string a = Path.Combine(_root, "co-a"), b = Path.Combine(_root, "co-b"), report = Path.Combine(_root, "co-report");
        var (code, output, err) = Cli("cotrain", "--model", fx.ModelDir, "--layers-b", "1", "--out", a, "--out-b", b, "--interactions", fx.Interactions,
            "--items", fx.Items, "--context-size", "3", "--epochs", "6", "--batch-size", "8", "--lr", "3e-3", "--temperature", "1", "--max-length", "32", "--head-hidden", "8",
            "--latency-requests", "10", "--report", report, "--json");
        TestContext.Out.WriteLine(output + err);
        Assert.That(code, Is.Zero, err);
        var json = LastJson(output);
        Assert.That(json["kind"]!.GetValue<string>(), Is.EqualTo("co-training"));
        Assert.That(json["model A"]!["auc"]!.GetValue<double>(), Is.GreaterThan(0.6), "model A learned the fixture's rule (good items are liked)");
        Assert.That(Checkpoint.Exists(a) && Checkpoint.Exists(b), Is.True);
        using var backend = new CpuSimdBackend();
        using var rb = Checkpoint.Load(b, backend).Recommender;
        Assert.That(rb.Model.Bert.NumHiddenLayers, Is.EqualTo(1));
        Assert.That(File.ReadAllText(Path.Combine(report, "report.md")), Does.Contain("model B"));
    }

    [Test]
    public void DistillVerbNamesBadOptions()
    {
        var (code, _, err) = Cli("distill", "--teacher", Path.Combine(_root, "nope"), "--out", Path.Combine(_root, "x"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("nope"));
        var parse = CliApp.Root().Parse(["distill", "--teacher", Teacher]);
        Assert.That(string.Join("\n", parse.Errors.Select(x => x.Message)), Does.Contain("--out"));
        (code, _, err) = Cli("distill", "--teacher", Teacher, "--out", Path.Combine(_root, "y"), "--alpha", "2", "--max-train", "200", "--max-val", "200", "--max-test", "200");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--alpha must be in [0, 1], got 2"));
        // the shared training loop's flags are checked in their own words, before any work
        (code, _, err) = Cli("distill", "--teacher", Teacher, "--out", Path.Combine(_root, "y"), "--grad-accum", "0");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--grad-accum must be in [1, 4096], got 0"));
        (code, _, err) = Cli("cotrain", "--model", Path.Combine(_root, "tiny"), "--out", Path.Combine(_root, "ca"), "--out-b", Path.Combine(_root, "cb"),
            "--interactions", "none.csv", "--patience", "-1");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--patience must be >= 0, got -1"));
        foreach (var opt in new[] { "--precision-check", "--latency-requests" })
        {
            parse = CliApp.Root().Parse(["distill", "--teacher", Teacher, "--out", Path.Combine(_root, "z"), opt, "-3"]);
            Assert.That(string.Join("\n", parse.Errors.Select(x => x.Message)), Does.Contain($"{opt} must be >= 0"), opt);
        }
    }
}
