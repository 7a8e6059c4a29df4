// End to end on a slice of the real MovieTweetings data with a tiny random BERT: the model must beat popularity.
using FastRec.Engine.Data;
using FastRec.Engine.Model;
using FastRec.Engine.Training;
using FastRec.Engine.Weights;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Weights;

namespace FastRec.Tests.Training;

public class EndToEndTests
{
    private string _root = null!;

    [OneTimeSetUp]
    public void Setup()
    {
        // A tiny random BERT (2 layers, hidden 32) with MiniLM's real WordPiece vocabulary, so the titles tokenize as in the demo.
        _root = Directory.CreateTempSubdirectory("fastrec-e2e-").FullName;
        MiniLm.WriteTinyBert(Path.Combine(_root, "tiny"), m => m.InitRandom(17));
    }

    [OneTimeTearDown] public void TearDown() { try { Directory.Delete(_root, true); } catch (IOException) { } }

    private ExperimentReport Run(bool history)
    {
        var schema = new DataSchema { Kind = "movietweetings", Examples = new ExampleOptions { ContextSize = 3 }, HistoryFeatures = history };
        var data = RecDataset.Build(schema.Prepare(MovieTweetings.Load(MovieTweetings.FindVendoredDirectory())), schema.Examples);
        using var backend = new CpuSimdBackend();
        var head = new AdapterConfig { HiddenSizes = [16], Dropout = 0.1f, DenseFeatures = data.Table.DenseNames.Length };
        using var rec = Recommender.FromPretrained(Path.Combine(_root, "tiny"), backend, head, new TextOptions { MaxLength = 32 }, seed: 1);
        var options = new ExperimentOptions
        {
            MaxTrain = 3000, MaxValidation = 600, MaxTest = 600,
            Trainer = new TrainerOptions { Epochs = 2, BatchSize = 32, LearningRate = 3e-3f, WarmupFraction = 0.1, Freeze = Freeze.All, EvalEverySteps = 40, Seed = 5 },
        };
        var r = Experiment.Run(rec, data, options);
        TestContext.Out.WriteLine($"history features: {history}; best validation AUC {r.Training.State.BestAuc:0.0000} at step {r.Training.State.BestStep}");
        foreach (var (name, auc) in r.BaselineValidationAuc) TestContext.Out.WriteLine($"  validation AUC {name}: {auc:0.0000}");
        TestContext.Out.WriteLine($"  test AUC model {r.Model.Metrics.Auc:0.0000}; " + string.Join("; ", r.Baselines.Select(x => $"{x.Name} {x.Metrics.Auc:0.0000}")));
        return r;
    }

    [Test]
    public void TinyBertWithHistoryFeaturesBeatsPopularityOnValidationAuc()
    {
        var r = Run(history: true);
        Assert.That(r.Training.State.BestAuc, Is.GreaterThan(r.BaselineValidationAuc["popularity"]),
            "best validation AUC of the fine-tuned model above the popularity baseline's");
        Assert.That(r.Model.Metrics.Auc, Is.GreaterThan(r.Baselines.Single(b => b.Name == "popularity").Metrics.Auc), "and on the test sample");
    }
}
