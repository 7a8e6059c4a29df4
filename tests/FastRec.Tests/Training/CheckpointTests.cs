// FastRec checkpoints: round trip, atomic directory swap and crash recovery, resume == uninterrupted, mismatch refusal.
using FastRec.Engine.Data;
using FastRec.Engine.Model;
using FastRec.Engine.Training;
using FastRec.Engine.Weights;

namespace FastRec.Tests.Training;

[TestFixture("reference")]
[TestFixture("cpu")]
public class CheckpointTests(string backendName)
{
    private TrainFixture _fx = null!;
    private RecDataset _data = null!;

    [OneTimeSetUp] public void Setup() { _fx = new TrainFixture(dense: true); _data = _fx.Load(options: new InteractionFileOptions { DenseColumns = ["score"] }); }
    [OneTimeTearDown] public void TearDown() => _fx.Dispose();

    private static readonly AdapterConfig Head = new() { HiddenSizes = [8], Dropout = 0.1f, DenseFeatures = 1 };
    private static readonly TrainerOptions Opt = new()
    {
        Epochs = 3, BatchSize = 8, GradientAccumulation = 2, LearningRate = 2e-3f, Seed = 9, EvalEverySteps = 3, Patience = 50,
        Freeze = Freeze.TopK, TopK = 1, LayerLrDecay = 0.8f,
    };

    [Test]
    public void SaveThenLoadGivesTheSameWeightsPredictionsAndSettings()
    {
        using var backend = TrainFixture.Backend(backendName);
        using var rec = _fx.NewRecommender(backend, Head, maxLength: 24);
        rec.Schema = new DataSchema { Interactions = new InteractionFileOptions { DenseColumns = ["score"] }, Examples = new ExampleOptions { ContextSize = 3 } };
        var trainer = new Trainer(rec, Opt with { Epochs = 1 });
        trainer.Fit(_data.Train, _data.Validation);
        string dir = _fx.Ckpt("roundtrip");
        Checkpoint.Save(rec, dir, trainer.State, trainer.Options, new System.Text.Json.Nodes.JsonObject { ["auc"] = 0.5 });
        Assert.That(Directory.Exists(dir + ".tmp"), Is.False, "no temp directory left");
        Assert.That(Directory.Exists(dir + ".bak"), Is.False, "no backup left");
        foreach (var f in new[] { "config.json", "model.safetensors", "vocab.txt", Checkpoint.AdapterFile, Checkpoint.InfoFile, Checkpoint.StateFile })
            Assert.That(File.Exists(Path.Combine(dir, f)), Is.True, f);
        Assert.That(BertCheckpoint.Open(dir).Config.HiddenSize, Is.EqualTo(16), "the encoder is a plain HF model directory");

        var loaded = Checkpoint.Load(dir, backend);
        using var rec2 = loaded.Recommender;
        Assert.That(TrainAssert.BitEqual(TrainAssert.Params(rec.Model), TrainAssert.Params(rec2.Model)), Is.True, "weights");
        Assert.That(rec2.Text, Is.EqualTo(rec.Text));
        Assert.That(rec2.Scaler.Names, Is.EqualTo(new[] { "score" }));
        Assert.That(rec2.Scaler.Mean, Is.EqualTo(rec.Scaler.Mean));
        Assert.That(rec2.Scaler.Std, Is.EqualTo(rec.Scaler.Std));
        Assert.That(rec2.Schema.Interactions!.DenseColumns, Is.EqualTo(new[] { "score" }));
        Assert.That(rec2.Schema.Examples.ContextSize, Is.EqualTo(3));
        Assert.That(rec2.Model.Adapter.HiddenSizes, Is.EqualTo(Head.HiddenSizes));
        Assert.That(loaded.Metrics["auc"]!.GetValue<double>(), Is.EqualTo(0.5));
        Assert.That(loaded.State!.Step, Is.EqualTo(trainer.State.Step));
        Assert.That(rec2.Predict(_data.Test), Is.EqualTo(rec.Predict(_data.Test)), "same predictions");
    }

    [Test]
    public void ResumedRunEndsWithTheSameWeightsAsAnUninterruptedOne()
    {
        using var backend = TrainFixture.Backend(backendName);
        float[] full;
        TrainingState fullState;
        using (var rec = _fx.NewRecommender(backend, Head, maxLength: 24))
        {
            var t = new Trainer(rec, Opt);
            var r = t.Fit(_data.Train, _data.Validation);
            Assert.That(r.Interrupted, Is.False);
            full = TrainAssert.Params(rec.Model);
            fullState = r.State;
        }
        string dir = _fx.Ckpt("resume");
        int stop = fullState.TotalSteps / 2 + 1;   // mid-epoch, between evaluations
        using (var rec = _fx.NewRecommender(backend, Head, maxLength: 24))
        {
            var r = new Trainer(rec, Opt with { CheckpointDir = dir, StopAfterStep = stop }).Fit(_data.Train, _data.Validation);
            Assert.That(r.Interrupted, Is.True);
            Assert.That(r.State.Step, Is.EqualTo(stop));
        }
        var loaded = Checkpoint.Load(dir, backend);
        using (var rec = loaded.Recommender)
        {
            Assert.That(loaded.State!.Step, Is.EqualTo(stop));
            var t = new Trainer(rec, Opt with { CheckpointDir = dir });
            t.Resume(loaded.State);
            var r = t.Fit(_data.Train, _data.Validation);
            Assert.That(r.State.StepLosses, Is.EqualTo(fullState.StepLosses), "every step loss");
            Assert.That(r.State.Evaluations.Select(e => e.ValidationAuc), Is.EqualTo(fullState.Evaluations.Select(e => e.ValidationAuc)));
            Assert.That(r.State.BestStep, Is.EqualTo(fullState.BestStep));
            Assert.That(TrainAssert.BitEqual(TrainAssert.Params(rec.Model), full), Is.True, "final weights bit-identical");
        }
    }

    [Test]
    public void ResumeRefusesOtherOptionsAndFinishedRuns()
    {
        using var backend = TrainFixture.Backend(backendName);
        string dir = _fx.Ckpt("refuse");
        using (var rec = _fx.NewRecommender(backend, Head, maxLength: 24))
            new Trainer(rec, Opt with { CheckpointDir = dir, StopAfterStep = 2 }).Fit(_data.Train, _data.Validation);
        var loaded = Checkpoint.Load(dir, backend);
        using var rec2 = loaded.Recommender;
        var t = new Trainer(rec2, Opt with { LearningRate = 1e-3f });
        TrainAssert.Throws<ArgumentException>(() => t.Resume(loaded.State!), "LearningRate", "0.002", "0.001");
        var t2 = new Trainer(rec2, Opt);
        t2.Resume(loaded.State!);
        var fewer = _data.Train.Subset(Enumerable.Range(0, _data.Train.Count - 1).ToArray());
        TrainAssert.Throws<ArgumentException>(() => t2.Fit(fewer, _data.Validation), "training examples", $"{_data.Train.Count}");
        var done = new TrainingState { Finished = true, Step = 7 };
        TrainAssert.Throws<InvalidOperationException>(() => new Trainer(rec2, Opt).Resume(done), "finished", "step 7");
    }

    [Test]
    public void TheMeanHeadInputRoundTrips()
    {
        using var backend = TrainFixture.Backend(backendName);
        string dir = _fx.Ckpt("mean");
        var head = new AdapterConfig { HiddenSizes = [8], Dropout = 0.1f, DenseFeatures = 1, Input = AdapterInput.Mean };
        using var rec = _fx.NewRecommender(backend, head, maxLength: 24);
        rec.Schema = new DataSchema { Interactions = new InteractionFileOptions { DenseColumns = ["score"] }, Examples = new ExampleOptions { ContextSize = 3 } };
        new Trainer(rec, Opt with { Epochs = 1, Freeze = Freeze.AdapterOnly }).Fit(_data.Train, _data.Validation);
        Checkpoint.Save(rec, dir);
        Assert.That(File.ReadAllText(Path.Combine(dir, Checkpoint.InfoFile)), Does.Contain("\"Mean\""), "stored by name");
        using var loaded = Checkpoint.Load(dir, backend).Recommender;
        Assert.That(loaded.Model.Adapter.Input, Is.EqualTo(AdapterInput.Mean));
        Assert.That(loaded.Predict(_data.Test), Is.EqualTo(rec.Predict(_data.Test)), "same predictions");
        TrainAssert.Throws<InvalidDataException>(() => Checkpoint.Load(dir, backend, expectAdapter: Head), "input", "Mean", "Pooler");
    }

    [Test]
    public void MismatchedConfigIsRefusedByField()
    {
        using var backend = TrainFixture.Backend(backendName);
        string dir = _fx.Ckpt("mismatch");
        using (var rec = _fx.NewRecommender(backend, Head, maxLength: 24))
            Checkpoint.Save(rec, dir);
        var bigger = TrainFixture.TinyConfig();
        bigger.HiddenSize = 32;
        TrainAssert.Throws<InvalidDataException>(() => Checkpoint.Load(dir, backend, expectBert: bigger), "hidden_size", "16", "32", "do not match");
        var layers = TrainFixture.TinyConfig(layers: 3);
        TrainAssert.Throws<InvalidDataException>(() => Checkpoint.Load(dir, backend, expectBert: layers), "num_hidden_layers", "3");
        TrainAssert.Throws<InvalidDataException>(() => Checkpoint.Load(dir, backend, expectAdapter: WithHidden([16, 4])), "hidden_sizes", "[8]", "[16, 4]");
        TrainAssert.Throws<FileNotFoundException>(() => Checkpoint.Load(_fx.ModelDir, backend), "fastrec.json", "not a FastRec checkpoint");
        using var ok = Checkpoint.Load(dir, backend, TrainFixture.TinyConfig(), Head).Recommender;
        Assert.That(ok.Model.Adapter.DenseFeatures, Is.EqualTo(1));
    }

    private static AdapterConfig WithHidden(int[] sizes) => new() { HiddenSizes = sizes, Dropout = Head.Dropout, DenseFeatures = Head.DenseFeatures };

    [Test]
    public void SaveReplacesAtomicallyAndLoadRecoversFromACrashBetweenRenames()
    {
        using var backend = TrainFixture.Backend(backendName);
        string dir = _fx.Ckpt("atomic");
        using var rec = _fx.NewRecommender(backend, Head, maxLength: 24);
        Checkpoint.Save(rec, dir, metrics: new System.Text.Json.Nodes.JsonObject { ["v"] = 1 });
        // A stale temp directory from a crashed save is ignored and replaced.
        Directory.CreateDirectory(dir + ".tmp");
        File.WriteAllText(Path.Combine(dir + ".tmp", "garbage"), "x");
        Checkpoint.Save(rec, dir, metrics: new System.Text.Json.Nodes.JsonObject { ["v"] = 2 });
        Assert.That(Checkpoint.Load(dir, backend).Metrics["v"]!.GetValue<int>(), Is.EqualTo(2));
        Assert.That(Directory.Exists(dir + ".tmp") || Directory.Exists(dir + ".bak"), Is.False);
        // Crash between "DIR -> DIR.bak" and "DIR.tmp -> DIR": DIR missing, the backup complete.
        Directory.Move(dir, dir + ".bak");
        Assert.That(Checkpoint.Exists(dir), Is.True);
        var loaded = Checkpoint.Load(dir, backend);
        using var r2 = loaded.Recommender;
        Assert.That(loaded.Metrics["v"]!.GetValue<int>(), Is.EqualTo(2));
        Assert.That(loaded.Directory, Does.EndWith(".bak"));
        // The next save completes the swap.
        Checkpoint.Save(rec, dir, metrics: new System.Text.Json.Nodes.JsonObject { ["v"] = 3 });
        Assert.That(Checkpoint.Load(dir, backend).Metrics["v"]!.GetValue<int>(), Is.EqualTo(3));
        Assert.That(Directory.Exists(dir + ".bak"), Is.False);
    }

    [Test]
    public void ResumingFromTheBackupSurvivesItsNextSaves()
    {
        using var backend = TrainFixture.Backend(backendName);
        string dir = _fx.Ckpt("bak-resume");
        using (var rec = _fx.NewRecommender(backend, Head, maxLength: 24))
            new Trainer(rec, Opt with { CheckpointDir = dir, StopAfterStep = 2 }).Fit(_data.Train, _data.Validation);
        Directory.Move(dir, dir + ".bak");   // a crash between "DIR -> DIR.bak" and "DIR.tmp -> DIR"
        var loaded = Checkpoint.Load(dir, backend);
        using var rec2 = loaded.Recommender;
        Assert.That(rec2.VocabPath, Does.Contain(".bak"));
        var t = new Trainer(rec2, Opt with { CheckpointDir = dir, CheckpointEverySteps = 1, StopAfterStep = 4 });
        t.Resume(loaded.State!);
        var r = t.Fit(_data.Train, _data.Validation);   // saves at steps 3 (which deletes DIR.bak) and 4 (which reads the vocab again)
        Assert.That(r.State.Step, Is.EqualTo(4));
        Assert.That(Directory.Exists(dir + ".bak"), Is.False);
        Assert.That(rec2.VocabPath, Is.EqualTo(Path.Combine(Path.GetFullPath(dir), "vocab.txt")));
        var reloaded = Checkpoint.Load(dir, backend);
        using var rec3 = reloaded.Recommender;
        Assert.That(reloaded.State!.Step, Is.EqualTo(4));
    }

    [Test]
    public void DataFilesAreStoredRelativeToTheCheckpoint()
    {
        using var backend = TrainFixture.Backend(backendName);
        string dir = _fx.Ckpt("paths");
        using (var rec = _fx.NewRecommender(backend, new AdapterConfig { HiddenSizes = [8] }, maxLength: 24))
        {
            rec.Schema = new DataSchema { InteractionsPath = _fx.Interactions, ItemsPath = "/elsewhere/items.csv" };
            Checkpoint.Save(rec, dir);
        }
        var data = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, Checkpoint.InfoFile)))!["data"]!;
        Assert.That(data["interactions_path"]!.GetValue<string>(), Is.EqualTo("../interactions.csv"));
        Assert.That(data["items_path"]!.GetValue<string>(), Is.EqualTo(Path.GetRelativePath(dir, "/elsewhere/items.csv")));
        using var loaded = Checkpoint.Load(dir, backend).Recommender;
        Assert.That(loaded.Schema.InteractionsPath, Is.EqualTo(_fx.Interactions));
        Assert.That(loaded.Schema.ItemsPath, Is.EqualTo("/elsewhere/items.csv"));
    }

    [Test]
    public void InitFromContinuesFromAFineTunedCheckpoint()
    {
        using var backend = TrainFixture.Backend(backendName);
        string dir = _fx.Ckpt("initfrom");
        using (var rec = _fx.NewRecommender(backend, Head, maxLength: 24))
        {
            new Trainer(rec, Opt with { Epochs = 1 }).Fit(_data.Train, _data.Validation);
            Checkpoint.Save(rec, dir);
        }
        var loaded = Checkpoint.Load(dir, backend, TrainFixture.TinyConfig(), Head);
        using var rec2 = loaded.Recommender;
        var before = TrainAssert.Params(rec2.Model);
        var scaler = rec2.Scaler;
        var r = new Trainer(rec2, Opt with { Epochs = 1, Seed = 10 }).Fit(_data.Validation, _data.Test);
        Assert.That(r.State.Step, Is.GreaterThan(0));
        Assert.That(rec2.Scaler, Is.SameAs(scaler), "the fitted scaler of the checkpoint is kept");
        Assert.That(TrainAssert.BitEqual(before, TrainAssert.Params(rec2.Model)), Is.False, "training continued from the loaded weights");
    }
}
