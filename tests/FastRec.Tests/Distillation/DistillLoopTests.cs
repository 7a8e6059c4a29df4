// Distillation and co-training run through the Trainer's loop: gradient accumulation equals the accumulated batch, early
// stopping on validation, best weights restored, and the objective's guards.
using FastRec.Engine.Data;
using FastRec.Engine.Distillation;
using FastRec.Engine.Metrics;
using FastRec.Engine.Model;
using FastRec.Engine.Training;
using FastRec.Tests.Training;

namespace FastRec.Tests.Distillation;

public class DistillLoopTests
{
    private TrainFixture _fx = null!;
    private RecDataset _data = null!;

    [OneTimeSetUp] public void Setup() { _fx = new TrainFixture(users: 16, perUser: 16); _data = _fx.Load(); }
    [OneTimeTearDown] public void TearDown() => _fx.Dispose();

    /// <summary>A teacher fine-tuned for one epoch (no dropout anywhere, so micro-batches see the same network as one batch).</summary>
    private Recommender Teacher(FastRec.Kernels.IBackend backend)
    {
        var teacher = _fx.NewRecommender(backend, new AdapterConfig { HiddenSizes = [8], Dropout = 0f });
        new Trainer(teacher, new TrainerOptions { Epochs = 1, BatchSize = 16, LearningRate = 3e-3f, Seed = 1 }).Fit(_data.Train, _data.Validation);
        return teacher;
    }

    private static DistillRunOptions Options => new()
    {
        Student = new StudentConfig { Layers = 1 }, Distill = new DistillOptions { Alpha = 0.6f, Temperature = 2f },
        Epochs = 2, BatchSize = 16, LearningRate = 1e-3f, LatencyRequests = 0, PrecisionCheckExamples = 0, Seed = 7,
    };

    [Test]
    public void DistillationWithGradientAccumulationEqualsTheAccumulatedBatch()
    {
        using var backend = TrainFixture.Backend("cpu");
        using var teacher = Teacher(backend);
        var (big, repBig) = DistillationRun.Distill(teacher, _data, Options with { RestoreBest = false });
        var (acc, repAcc) = DistillationRun.Distill(teacher, _data, Options with { RestoreBest = false, BatchSize = 4, GradientAccumulation = 4 });
        using var _ = big; using var __ = acc;
        var a = repBig.Training!; var b = repAcc.Training!;
        Assert.That(b.TotalSteps, Is.EqualTo(a.TotalSteps));
        Assert.That(b.StepLosses, Has.Count.EqualTo(a.StepLosses.Count));
        for (int i = 0; i < a.StepLosses.Count; i++)
            Assert.That(b.StepLosses[i], Is.EqualTo(a.StepLosses[i]).Within(1e-4f).Percent, $"step {i + 1} loss");
        for (int e = 0; e < repBig.Epochs.Count; e++)
        {
            Assert.That(repAcc.Epochs[e].Hard, Is.EqualTo(repBig.Epochs[e].Hard).Within(1e-4).Percent, $"epoch {e + 1} hard term");
            Assert.That(repAcc.Epochs[e].Soft, Is.EqualTo(repBig.Epochs[e].Soft).Within(1e-4).Percent, $"epoch {e + 1} soft term");
        }
        float[] pa = TrainAssert.Params(big.Model), pb = TrainAssert.Params(acc.Model);
        float maxDiff = 0;
        for (int i = 0; i < pa.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(pa[i] - pb[i]));
        Assert.That(maxDiff, Is.LessThan(2e-5f), "student weights after the same effective batches");
        Assert.That(TrainAssert.BitEqual(pa, TrainAssert.Params(teacher.Model)), Is.False);
    }

    [Test]
    public void DistillationEarlyStopsOnValidationAndKeepsTheBestStudent()
    {
        using var backend = TrainFixture.Backend("cpu");
        using var teacher = Teacher(backend);
        var o = Options with { Epochs = 8, LearningRate = 3e-3f, EvalEverySteps = 1, Patience = 2 };
        var (full, repFull) = DistillationRun.Distill(teacher, _data, o with { Patience = 0 });
        full.Dispose();
        Assert.That(repFull.Training!.EarlyStopped, Is.False);
        Assert.That(repFull.Training.Step, Is.EqualTo(repFull.Training.TotalSteps), "without patience every step runs");

        var (student, rep) = DistillationRun.Distill(teacher, _data, o);
        using var _ = student;
        var st = rep.Training!;
        Assert.That(st.EarlyStopped, Is.True, "patience 2 over evaluations at every step stops early");
        Assert.That(st.Step, Is.LessThan(st.TotalSteps));
        Assert.That(st.Evaluations, Has.Count.EqualTo(st.Step), "one evaluation per step");
        var last = st.Evaluations.TakeLast(2).ToList();
        Assert.That(last, Has.All.Matches<EvalPoint>(p => p.ValidationAuc <= st.BestAuc), "the last two evaluations were not better");
        Assert.That(st.BestStep, Is.EqualTo(st.Step - 2));
        Assert.That(rep.Epochs, Has.Count.EqualTo((st.Step + st.TotalSteps / o.Epochs - 1) / (st.TotalSteps / o.Epochs)), "one record per epoch begun");
        // the same run up to the stop: identical evaluations to the run without patience (the loop is deterministic)
        for (int i = 0; i < st.Evaluations.Count; i++)
            Assert.That(st.Evaluations[i].ValidationAuc, Is.EqualTo(repFull.Training.Evaluations[i].ValidationAuc), $"evaluation {i + 1}");
        // the best evaluation's student was restored
        var val = _data.Validation;
        var enc = student.EncoderFor(val.Catalog).Encode(val);
        Assert.That(RocAuc.Compute(val.Labels, student.PredictLogits(val, enc, o.EvalBatchSize)), Is.EqualTo(st.BestAuc));
    }

    [Test]
    public void CotrainingEarlyStopsAndRestoresBothModels()
    {
        using var backend = TrainFixture.Backend("cpu");
        using var a = _fx.NewRecommender(backend, new AdapterConfig { HiddenSizes = [8], Dropout = 0f }, seed: 3);
        using var b = _fx.NewRecommender(backend, new AdapterConfig { HiddenSizes = [4], Dropout = 0f }, seed: 4);
        var o = new MutualRunOptions { Epochs = 6, BatchSize = 16, LearningRate = 3e-3f, LatencyRequests = 0, Seed = 5, EvalEverySteps = 1, Patience = 2, RestoreBest = true };
        var rep = DistillationRun.CoTrain(a, b, _data, o);
        var st = rep.Training!;
        Assert.That(st.EarlyStopped, Is.True);
        Assert.That(st.BestStep, Is.EqualTo(st.Step - 2));
        Assert.That(rep.Epochs, Has.All.Matches<EpochRecord>(e => double.IsFinite(e.ValidationAucB) && double.IsFinite(e.LossB)));
        // both models hold the weights of the best step: the same run stopped there (no restore) ends bit-identical
        using var a2 = _fx.NewRecommender(backend, new AdapterConfig { HiddenSizes = [8], Dropout = 0f }, seed: 3);
        using var b2 = _fx.NewRecommender(backend, new AdapterConfig { HiddenSizes = [4], Dropout = 0f }, seed: 4);
        using (var ml = new MutualLearning(a2.Model, b2.Model, o.Distill))
            new Trainer(a2, o.Trainer() with { Patience = 0, RestoreBest = false, StopAfterStep = st.BestStep }, ml).Fit(_data.Train, _data.Validation);
        Assert.That(TrainAssert.BitEqual(TrainAssert.Params(a.Model), TrainAssert.Params(a2.Model)), Is.True, "model A restored to the best step");
        Assert.That(TrainAssert.BitEqual(TrainAssert.Params(b.Model), TrainAssert.Params(b2.Model)), Is.True, "model B restored to the best step");
    }

    [Test]
    public void TrainerRefusesAnObjectiveOfAnotherModelAndCheckpointsOfOwnParameters()
    {
        using var backend = TrainFixture.Backend("cpu");
        using var a = _fx.NewRecommender(backend, seed: 3);
        using var b = _fx.NewRecommender(backend, seed: 4);
        using var ml = new MutualLearning(a.Model, b.Model, new DistillOptions());
        Assert.That(() => new Trainer(b, new TrainerOptions(), ml), Throws.ArgumentException.With.Message.Contains("another model"));
        Assert.That(() => new Trainer(a, new TrainerOptions { CheckpointDir = _fx.Ckpt() }, ml),
            Throws.TypeOf<NotSupportedException>().With.Message.Contains("parameters of its own"));
        Assert.That(new Trainer(a, new TrainerOptions()).Objective, Is.TypeOf<SupervisedObjective>());
    }
}
