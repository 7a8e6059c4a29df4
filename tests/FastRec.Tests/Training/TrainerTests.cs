// Trainer behaviour: freezing keeps frozen tensors bit-identical, the activation cache gives the same losses, determinism,
// gradient accumulation, class weights, early stopping, and bad options.
using FastRec.Engine.Data;
using FastRec.Engine.Model;
using FastRec.Engine.Training;
using FastRec.Kernels;

namespace FastRec.Tests.Training;

[TestFixture("reference")]
[TestFixture("cpu")]
public class TrainerTests(string backendName)
{
    private TrainFixture _fx = null!;
    private RecDataset _data = null!;

    [OneTimeSetUp] public void Setup() { _fx = new TrainFixture(); _data = _fx.Load(); }
    [OneTimeTearDown] public void TearDown() => _fx.Dispose();

    private (TrainResult Result, float[] Params) Run(TrainerOptions options, AdapterConfig? adapter = null, bool validation = true)
    {
        using var backend = TrainFixture.Backend(backendName);
        using var rec = _fx.NewRecommender(backend, adapter);
        var trainer = new Trainer(rec, options);
        var result = trainer.Fit(_data.Train, validation ? _data.Validation : null);
        return (result, TrainAssert.Params(rec.Model));
    }

    private static readonly TrainerOptions Base = new() { Epochs = 2, BatchSize = 8, LearningRate = 1e-3f, WarmupFraction = 0.2, Seed = 3 };

    [TestCase(Freeze.AdapterOnly, 0)]
    [TestCase(Freeze.TopK, 1)]
    [TestCase(Freeze.TopK, 0)]
    public void FrozenTensorsAreBitIdenticalAfterTraining(Freeze mode, int k)
    {
        using var backend = TrainFixture.Backend(backendName);
        using var rec = _fx.NewRecommender(backend);
        var before = TrainAssert.Params(rec.Model);
        var trainer = new Trainer(rec, Base with { Freeze = mode, TopK = k });
        var result = trainer.Fit(_data.Train, _data.Validation);
        var after = TrainAssert.Params(rec.Model);
        int L = rec.Model.Layout.NumLayers, frozen = 0, changed = 0;
        foreach (var t in rec.Model.Layout.Tensors)
        {
            bool trainable = mode == Freeze.AdapterOnly ? t.Layer == rec.Model.Layout.HeadLayer : t.Layer >= L - k;
            bool same = TrainAssert.BitEqual(before.AsSpan(t.Offset, t.Length), after.AsSpan(t.Offset, t.Length));
            if (!trainable) { Assert.That(same, Is.True, $"{t.Name} is frozen under {mode}({k}) but changed"); frozen++; }
            else if (!same) changed++;
        }
        Assert.That(frozen, Is.GreaterThan(0));
        Assert.That(changed, Is.GreaterThan(0), "training changed no trainable tensor");
        Assert.That(result.CachedLayer, Is.EqualTo(L - (mode == Freeze.AdapterOnly ? 0 : k)), "the frozen layers were cached");
    }

    [TestCase(Freeze.TopK, 1)]
    [TestCase(Freeze.AdapterOnly, 0)]
    [TestCase(Freeze.TopK, 0)]
    [TestCase(Freeze.AdapterOnly, 0, AdapterInput.Mean)]
    [TestCase(Freeze.TopK, 1, AdapterInput.Mean)]
    public void ActivationCacheGivesTheSameLossesAsRecomputing(Freeze mode, int k, AdapterInput input = AdapterInput.Pooler)
    {
        // Encoder dropout is 0 in the fixture (frozen layers under the cache run without dropout); the head keeps its dropout.
        // With the Mean head input and only the head training, the cache must keep every real token (not [CLS] alone).
        var o = Base with { Freeze = mode, TopK = k };
        var head = new AdapterConfig { HiddenSizes = [8], Dropout = 0.1f, Input = input };
        var (with, pWith) = Run(o with { ActivationCache = true }, head);
        var (without, pWithout) = Run(o with { ActivationCache = false }, head);
        Assert.That(with.CachedLayer, Is.GreaterThan(0));
        Assert.That(without.CachedLayer, Is.EqualTo(-1));
        Assert.That(with.State.StepLosses, Has.Count.EqualTo(without.State.StepLosses.Count));
        for (int i = 0; i < with.State.StepLosses.Count; i++)
            Assert.That(with.State.StepLosses[i], Is.EqualTo(without.State.StepLosses[i]).Within(1e-5f).Percent, $"step {i + 1}");
        // The reference backend's rows do not depend on their batch neighbours, so there the two paths agree bit for bit
        // (an optimised GEMM may round an edge tile differently, hence the tolerance above).
        if (backendName == "reference")
        {
            Assert.That(with.State.StepLosses, Is.EqualTo(without.State.StepLosses), "bit-identical on the reference backend");
            Assert.That(TrainAssert.BitEqual(pWith, pWithout), Is.True, "weights bit-identical on the reference backend");
        }
        for (int i = 0; i < with.State.Evaluations.Count; i++)
            Assert.That(with.State.Evaluations[i].ValidationAuc, Is.EqualTo(without.State.Evaluations[i].ValidationAuc).Within(1e-9), $"eval {i}");
        float maxDiff = 0;
        for (int i = 0; i < pWith.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(pWith[i] - pWithout[i]));
        Assert.That(maxDiff, Is.LessThan(1e-5f), "final weights");
    }

    [Test]
    public void SameSeedGivesIdenticalLossesAndWeights()
    {
        var o = Base with { Freeze = Freeze.All };
        var (a, pa) = Run(o);
        var (b, pb) = Run(o);
        Assert.That(b.State.StepLosses, Is.EqualTo(a.State.StepLosses), "step losses bit-identical");
        Assert.That(TrainAssert.BitEqual(pa, pb), Is.True, "weights bit-identical");
        var (c, _) = Run(o with { Seed = 4 });
        Assert.That(c.State.StepLosses, Is.Not.EqualTo(a.State.StepLosses), "another seed gives another run");
    }

    [Test]
    public void TrainingLowersTheLossAndLogsEvaluations()
    {
        var (r, _) = Run(Base with { Epochs = 4, Freeze = Freeze.All, LearningRate = 3e-3f });
        var losses = r.State.StepLosses;
        double first = losses.Take(5).Average(x => x), last = losses.TakeLast(5).Average(x => x);
        Assert.That(last, Is.LessThan(first), "mean loss of the last steps below the first");
        Assert.That(r.State.Evaluations, Has.Count.EqualTo(4), "one evaluation per epoch");
        Assert.That(r.State.Evaluations.Select(e => e.Step), Is.Ordered.Ascending);
        Assert.That(r.State.Finished, Is.True);
    }

    private sealed class Collect : IProgress<TrainProgress>
    {
        public readonly List<TrainProgress> Reports = [];
        public void Report(TrainProgress value) => Reports.Add(value);
    }

    [Test]
    public void ProgressReportsEveryStepEvaluationAndTheCache()
    {
        using var backend = TrainFixture.Backend(backendName);
        using var rec = _fx.NewRecommender(backend);
        var progress = new Collect();
        var r = new Trainer(rec, Base with { Freeze = Freeze.TopK, TopK = 1 }).Fit(_data.Train, _data.Validation, progress);
        var steps = progress.Reports.Where(p => p.Phase == TrainPhase.Training).ToList();
        Assert.That(steps.Select(p => p.Done), Is.EqualTo(Enumerable.Range(1, r.State.TotalSteps).Select(i => (long)i)));
        Assert.That(steps, Has.All.Matches<TrainProgress>(p => p.Total == r.State.TotalSteps && p.ExamplesPerSecond > 0 && p.Eta is not null && double.IsFinite(p.Loss)));
        Assert.That(steps[^1].Eta, Is.EqualTo(TimeSpan.Zero));
        Assert.That(progress.Reports.Count(p => p.Phase == TrainPhase.Evaluated), Is.EqualTo(r.State.Evaluations.Count));
        var cache = progress.Reports.Where(p => p.Phase == TrainPhase.Caching).ToList();
        Assert.That(cache[^1].Done, Is.EqualTo(_data.Train.Count + _data.Validation.Count), "every train and validation example cached once");
    }

    [Test]
    public void GradientAccumulationMatchesOneLargeBatch()
    {
        var adapter = new AdapterConfig { HiddenSizes = [8], Dropout = 0f };
        var big = Base with { Epochs = 1, BatchSize = 16, GradientAccumulation = 1, Freeze = Freeze.TopK, TopK = 1, WeightDecay = 0.1f, MaxGradNorm = 0.5f };
        var (a, pa) = Run(big, adapter, validation: false);
        var (b, pb) = Run(big with { BatchSize = 4, GradientAccumulation = 4 }, adapter, validation: false);
        Assert.That(b.State.TotalSteps, Is.EqualTo(a.State.TotalSteps));
        for (int i = 0; i < a.State.StepLosses.Count; i++)
            Assert.That(b.State.StepLosses[i], Is.EqualTo(a.State.StepLosses[i]).Within(1e-4f).Percent, $"step {i + 1} loss");
        float maxDiff = 0;
        for (int i = 0; i < pa.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(pa[i] - pb[i]));
        Assert.That(maxDiff, Is.LessThan(2e-5f), "weights after the same effective batches");
    }

    [Test]
    public void ClassWeightsChangeTheLossAsExampleWeights()
    {
        var o = Base with { Epochs = 1, Freeze = Freeze.AdapterOnly };
        var (plain, _) = Run(o);
        var (weighted, _) = Run(o with { PositiveWeight = 3f });
        Assert.That(weighted.State.StepLosses[0], Is.Not.EqualTo(plain.State.StepLosses[0]));
        var (zeroNeg, _) = Run(o with { NegativeWeight = 0f });
        Assert.That(zeroNeg.State.StepLosses, Has.All.GreaterThanOrEqualTo(0f));
    }

    [Test]
    public void EarlyStoppingStopsAndRestoresTheBestWeights()
    {
        // Evaluate every step with patience 1 and a learning rate so large the AUC soon stops improving.
        var o = Base with { Epochs = 6, EvalEverySteps = 1, Patience = 1, LearningRate = 0.05f, Freeze = Freeze.All, RestoreBest = true };
        using var backend = TrainFixture.Backend(backendName);
        using var rec = _fx.NewRecommender(backend);
        var trainer = new Trainer(rec, o);
        var r = trainer.Fit(_data.Train, _data.Validation);
        Assert.That(r.State.EarlyStopped, Is.True, "patience 1 with a diverging rate stops early");
        Assert.That(r.State.Step, Is.LessThan(r.State.TotalSteps));
        double best = r.State.Evaluations.Max(e => e.ValidationAuc);
        Assert.That(r.State.BestAuc, Is.EqualTo(best));
        var (_, auc) = trainer.Evaluate(_data.Validation, rec.EncoderFor(_data.Catalog).Encode(_data.Validation));
        Assert.That(auc, Is.EqualTo(best).Within(1e-12), "the model holds the best evaluation's weights");
    }

    [Test]
    public void BadOptionsAreRefusedByName()
    {
        using var backend = TrainFixture.Backend(backendName);
        using var rec = _fx.NewRecommender(backend);
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => _ = new Trainer(rec, new TrainerOptions { BatchSize = 0 }), "BatchSize", "[1, 65536]");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => _ = new Trainer(rec, new TrainerOptions { Epochs = 0 }), "Epochs");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => _ = new Trainer(rec, new TrainerOptions { LearningRate = -1 }), "LearningRate");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => _ = new Trainer(rec, new TrainerOptions { LayerLrDecay = 0 }), "LayerLrDecay", "(0, 1]");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => _ = new Trainer(rec, new TrainerOptions { WarmupFraction = 2 }), "WarmupFraction");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => _ = new Trainer(rec, new TrainerOptions { PositiveWeight = float.NaN }), "PositiveWeight");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => _ = new Trainer(rec, new TrainerOptions { Freeze = Freeze.TopK, TopK = 3 }), "TopK", "num_hidden_layers = 2");
        var t = new Trainer(rec, new TrainerOptions { Patience = 2 });
        TrainAssert.Throws<ArgumentException>(() => t.Fit(_data.Train, null), "early stopping", "validation");
    }

    [Test]
    public void DenseFeaturesMustMatchTheAdapter()
    {
        using var backend = TrainFixture.Backend(backendName);
        using var rec = _fx.NewRecommender(backend, new AdapterConfig { DenseFeatures = 2 });
        var t = new Trainer(rec, Base);
        TrainAssert.Throws<InvalidDataException>(() => t.Fit(_data.Train, _data.Validation), "2 dense features", "data has 0");
    }
}
