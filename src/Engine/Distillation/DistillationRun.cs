// Distillation and co-training end to end: sample the splits, train student(s), score teacher, student(s) and baselines, time them.
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Metrics;
using FastRec.Engine.Model;
using FastRec.Engine.Serving;
using FastRec.Engine.Training;

namespace FastRec.Engine.Distillation;

/// <summary>Runs distillation (<see cref="Distill"/>) and co-training (<see cref="CoTrain"/>) experiments; used by
/// <c>fastrec distill</c>, <c>fastrec cotrain</c> and the end-to-end tests. Both train through <see cref="Trainer"/> with the
/// <see cref="Distiller"/> or <see cref="MutualLearning"/> as its <see cref="ITrainingObjective"/>, so they share its
/// schedule, gradient accumulation, evaluation, early stopping, best-weights restore and progress reporting.</summary>
public static class DistillationRun
{
    /// <summary>
    /// Builds the student (<see cref="Student.Derive"/>, <see cref="Student.InitializeFrom"/>) on the teacher's backend, distils
    /// it from <paramref name="teacher"/> on the training sample through <see cref="Trainer"/> (validation AUC after each epoch
    /// or every <see cref="DistillRunOptions.EvalEverySteps"/>, early stopping, best evaluation kept), then scores teacher,
    /// student and the baselines on the test sample and times both models at batch 1.
    /// Returns the student (with the teacher's tokenizer, text options, scaler and schema; the caller owns it) and the report.
    /// </summary>
    public static (Recommender Student, DistillRunReport Report) Distill(Recommender teacher, RecDataset data, DistillRunOptions options,
        Action<string>? log = null, CancellationToken ct = default, IProgress<TrainProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(teacher); ArgumentNullException.ThrowIfNull(data); ArgumentNullException.ThrowIfNull(options);
        var trainerOptions = options.Trainer();
        trainerOptions.Validate();
        var (train, val, test) = Sample(data, options.MaxTrain, options.MaxValidation, options.MaxTest);
        teacher.Scaler.Check(train);
        var bert = Student.Derive(teacher.Model.Bert, options.Student);
        var model = new RecModel(teacher.Model.Backend, bert, teacher.Model.Adapter);
        Recommender? student = null;
        try
        {
            var init = Student.InitializeFrom(model, teacher.Model, options.Seed, null);
            log?.Invoke(init.Summary);
            student = new Recommender(model, teacher.VocabPath, teacher.Text, teacher.Scaler, teacher.Schema)
            { BaseModel = $"distilled from {(teacher.BaseModel.Length > 0 ? teacher.BaseModel : "a teacher")}" };
            var dOpts = options.Distill with { Log = options.Distill.Log ?? log };
            using var distiller = new Distiller(model, [teacher.Model], dOpts, train.Count);
            var trainer = new Trainer(student, trainerOptions, distiller);
            var result = trainer.Fit(train, val, Reporter(progress, log, null), ct);
            result.State.BestWeights = [];   // the report keeps the state: not a copy of the weights
            var steps = distiller.StepLosses;
            var epochs = Epochs(result.State, options.Epochs, (from, to) =>
            {
                double l = 0, h = 0, s = 0, hid = 0, att = 0;
                for (int i = from; i < to; i++) { var r = steps[i]; l += r.Total; h += r.Hard; s += r.Soft; hid += r.Hidden; att += r.Attention; }
                int n = to - from;
                return (l / n, h / n, s / n, hid / n, att / n, double.NaN);
            }, _ => double.NaN);
            foreach (var e in epochs)
                log?.Invoke($"epoch {e.Epoch}: loss {e.Loss:0.0000} (hard {e.Hard:0.0000}, soft {e.Soft:0.0000}, hidden {e.Hidden:0.0000}, attention {e.Attention:0.000000}), validation AUC {e.ValidationAuc:0.0000}");
            if (result.State.EarlyStopped) log?.Invoke($"early stopped at step {result.State.Step} of {result.State.TotalSteps} (best validation AUC {result.State.BestAuc:0.0000} at step {result.State.BestStep})");
            double trainSecs = result.TrainSeconds;
            if (distiller.Cache is { } cache) log?.Invoke(cache.Describe());

            var (scoredT, scoredS, baselines) = ScoreAll(teacher, "teacher", student, "student", train, test, data, options.Metrics, options.EvalBatchSize, ct);
            var (tFacts, sFacts) = Facts(teacher, "teacher", student, "student", test, options.LatencyRequests);
            var report = new DistillRunReport
            {
                Teacher = scoredT, Student = scoredS, Baselines = baselines, TeacherFacts = tFacts, StudentFacts = sFacts, Epochs = epochs,
                Sizes = (train.Count, val.Count, test.Count), TrainSeconds = trainSecs, StudentInit = init.Summary,
                Cache = distiller.Cache?.Describe() ?? "", Kind = "distillation", Training = result.State,
                Precision = options.PrecisionCheckExamples > 0
                    ? [ServingChecks.CheckPrecision(teacher, "teacher", test, options.PrecisionCheckExamples),
                       ServingChecks.CheckPrecision(student, "student", test, options.PrecisionCheckExamples)]
                    : [],
            };
            return (student, report);
        }
        catch
        {
            if (student is not null) student.Dispose(); else model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Deep mutual learning of <paramref name="a"/> and <paramref name="b"/> (same tokenizer and text options) on the training
    /// sample through <see cref="Trainer"/> (model A is the trainer's, B the <see cref="MutualLearning"/> objective's peer;
    /// early stopping and the best weights follow A's validation AUC), then both and the baselines scored on the test sample
    /// and timed at batch 1.
    /// </summary>
    public static DistillRunReport CoTrain(Recommender a, Recommender b, RecDataset data, MutualRunOptions options,
        Action<string>? log = null, CancellationToken ct = default, IProgress<TrainProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(a); ArgumentNullException.ThrowIfNull(b); ArgumentNullException.ThrowIfNull(data); ArgumentNullException.ThrowIfNull(options);
        if (a.Text != b.Text || a.Model.Bert.VocabSize != b.Model.Bert.VocabSize)
            throw new ArgumentException("b: co-training needs both models to share the tokenizer and text options (vocabulary, maximum length, separator)");
        var trainerOptions = options.Trainer();
        trainerOptions.Validate();
        var (train, val, test) = Sample(data, options.MaxTrain, options.MaxValidation, options.MaxTest);
        if (!a.Scaler.Fitted) a.Scaler = FeatureScaler.Fit(train);   // fresh heads: standardise on the training sample
        if (!b.Scaler.Fitted || !ReferenceEquals(b.Scaler, a.Scaler)) b.Scaler = a.Scaler;
        var encVal = a.EncoderFor(val.Catalog).Encode(val);
        using var ml = new MutualLearning(a.Model, b.Model, options.Distill);
        var trainer = new Trainer(a, trainerOptions, ml);
        var aucB = new Dictionary<int, double>();   // step → model B's validation AUC, taken with each evaluation of A
        var result = trainer.Fit(train, val, Reporter(progress, log, p =>
        {
            double auc = RocAuc.Compute(val.Labels, b.PredictLogits(val, encVal, options.EvalBatchSize, ct: ct));
            aucB[p.Step] = auc;
            log?.Invoke($"eval @ step {p.Step} (epoch {p.Epoch:0.00}): validation AUC A {p.ValidationAuc:0.0000}, B {auc:0.0000}");
        }), ct);
        result.State.BestWeights = [];
        var steps = ml.StepLosses;
        var epochs = Epochs(result.State, options.Epochs, (from, to) =>
        {
            double la = 0, lb = 0, ha = 0, sa = 0;
            for (int i = from; i < to; i++) { var r = steps[i]; la += r.TotalA; lb += r.TotalB; ha += r.HardA; sa += r.SoftA; }
            int n = to - from;
            return (la / n, ha / n, sa / n, 0, 0, lb / n);
        }, step => aucB.TryGetValue(step, out var v) ? v : double.NaN);
        foreach (var e in epochs)
            log?.Invoke($"epoch {e.Epoch}: loss A {e.Loss:0.0000}, B {e.LossB:0.0000}; validation AUC A {e.ValidationAuc:0.0000}, B {e.ValidationAucB:0.0000}");
        if (result.State.EarlyStopped) log?.Invoke($"early stopped at step {result.State.Step} of {result.State.TotalSteps} (best validation AUC of A {result.State.BestAuc:0.0000} at step {result.State.BestStep})");
        var (scoredA, scoredB, baselines) = ScoreAll(a, "model A", b, "model B", train, test, data, options.Metrics, options.EvalBatchSize, ct);
        var (fa, fb) = Facts(a, "model A", b, "model B", test, options.LatencyRequests);
        return new DistillRunReport
        {
            Teacher = scoredA, Student = scoredB, Baselines = baselines, TeacherFacts = fa, StudentFacts = fb, Epochs = epochs,
            Sizes = (train.Count, val.Count, test.Count), TrainSeconds = result.TrainSeconds, Kind = "co-training", Training = result.State,
        };
    }

    /// <summary>The <see cref="Trainer"/> options of a distillation or co-training run: <paramref name="optimizer"/>'s AdamW
    /// settings (its rate replaced by the schedule), nothing frozen, no activation cache (the objectives run whole models).</summary>
    internal static TrainerOptions TrainerFor(AdamWOptions optimizer, int epochs, int batchSize, int accumulation, float learningRate,
        double warmup, ulong seed, int evalEvery, int patience, bool restoreBest, int evalBatch) => new()
    {
        Epochs = epochs, BatchSize = batchSize, GradientAccumulation = accumulation, LearningRate = learningRate, WarmupFraction = warmup,
        WeightDecay = optimizer.WeightDecay, MaxGradNorm = optimizer.MaxGradNorm, Beta1 = optimizer.Beta1, Beta2 = optimizer.Beta2, Eps = optimizer.Eps,
        Freeze = Freeze.All, ActivationCache = false, Seed = seed, EvalEverySteps = evalEvery, Patience = patience, RestoreBest = restoreBest,
        EvalBatchSize = evalBatch,
    };

    /// <summary>Per-epoch records of a finished <see cref="Trainer.Fit"/>: the loss terms of each epoch's steps
    /// (<paramref name="terms"/> over the step indices [from, to)) and the validation AUC of its last evaluation.</summary>
    private static List<EpochRecord> Epochs(TrainingState state, int epochCount,
        Func<int, int, (double Loss, double Hard, double Soft, double Hidden, double Attention, double LossB)> terms, Func<int, double> aucB)
    {
        int spe = state.TotalSteps / epochCount;
        var list = new List<EpochRecord>();
        for (int e = 0; e * spe < state.Step; e++)
        {
            int from = e * spe, to = Math.Min(state.Step, (e + 1) * spe);
            var t = terms(from, to);
            var eval = state.Evaluations.LastOrDefault(p => p.Step > from && p.Step <= to);
            list.Add(new EpochRecord(e + 1, t.Loss, t.Hard, t.Soft, t.Hidden, t.Attention, eval?.ValidationAuc ?? double.NaN,
                                     t.LossB, eval is null ? double.NaN : aucB(eval.Step)));
        }
        return list;
    }

    /// <summary>Forwards <paramref name="progress"/>'s reports, logs the trainer's messages when there is no progress view, and
    /// calls <paramref name="evaluated"/> after each evaluation (synchronously, on the training thread).</summary>
    private static IProgress<TrainProgress>? Reporter(IProgress<TrainProgress>? progress, Action<string>? log, Action<EvalPoint>? evaluated)
        => progress is null && log is null && evaluated is null ? null : new ForwardingProgress(progress, log, evaluated);

    private sealed class ForwardingProgress(IProgress<TrainProgress>? inner, Action<string>? log, Action<EvalPoint>? evaluated) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value)
        {
            inner?.Report(value);
            if (inner is null && value.Phase == TrainPhase.Message && value.Message is { } m) log?.Invoke(m);
            if (inner is null && evaluated is null && value.Phase == TrainPhase.Evaluated && value.Evaluation is { } p)
                log?.Invoke($"eval @ step {p.Step} (epoch {p.Epoch:0.00}): train loss {p.TrainLoss:0.0000}, validation loss {p.ValidationLoss:0.0000}, AUC {p.ValidationAuc:0.0000}");
            if (value.Phase == TrainPhase.Evaluated && value.Evaluation is { } e) evaluated?.Invoke(e);
        }
    }

    private static (ExampleSet Train, ExampleSet Val, ExampleSet Test) Sample(RecDataset data, int? maxTrain, int? maxVal, int? maxTest)
    {
        var train = Experiment.Last(data.Train, maxTrain);
        var val = Experiment.First(data.Validation, maxVal);
        var test = Experiment.First(data.Test, maxTest);
        foreach (var set in new[] { val, test })
            if (set.Positives == 0 || set.Positives == set.Count)
                throw new InvalidDataException($"the {set.Name} sample has {set.Positives} positives among {set.Count} examples: AUC needs both classes; use a larger sample");
        if (train.Count == 0) throw new InvalidDataException("the training sample is empty");
        return (train, val, test);
    }

    private static (ScoredModel, ScoredModel, List<ScoredModel>) ScoreAll(Recommender a, string nameA, Recommender b, string nameB,
        ExampleSet train, ExampleSet test, RecDataset data, MetricsOptions mo, int batch, CancellationToken ct)
    {
        mo = mo with { ItemCount = mo.ItemCount == 0 ? data.Catalog.Count : mo.ItemCount };
        var enc = a.EncoderFor(test.Catalog).Encode(test);
        ScoredModel Score(Recommender r, string name)
        {
            var p = Recommender.Sigmoid(r.PredictLogits(test, enc, batch, ct: ct));
            return new ScoredModel(name, p, MetricsReport.Compute(test.Labels, p, test.Users, test.Items, mo));
        }
        var sa = Score(a, nameA);
        var sb = Score(b, nameB);
        var fitted = new List<IBaseline> { PopularityBaseline.Fit(train), BiasBaseline.Fit(train) };
        if (train.DenseCount > 0)
            fitted.Add(DenseLogisticBaseline.Fit(train, name: train.DenseNames.SequenceEqual(HistoryFeatures.Names) ? "history-feature logistic" : null));
        var baselines = fitted.Select(bl =>
        {
            var p = bl.Predict(test);
            return new ScoredModel(bl.Name, p, MetricsReport.Compute(test.Labels, p, test.Users, test.Items, mo));
        }).ToList();
        return (sa, sb, baselines);
    }

    private static (ModelFacts, ModelFacts) Facts(Recommender a, string nameA, Recommender b, string nameB, ExampleSet test, int requests)
    {
        if (requests <= 0)
            return (new ModelFacts(nameA, a.Model.Layout.TotalSize, double.NaN, double.NaN), new ModelFacts(nameB, b.Model.Layout.TotalSize, double.NaN, double.NaN));
        var (pa, qa, pb, qb) = ServingChecks.Latency(a, b, test, requests);
        return (new ModelFacts(nameA, a.Model.Layout.TotalSize, pa, qa), new ModelFacts(nameB, b.Model.Layout.TotalSize, pb, qb));
    }
}
