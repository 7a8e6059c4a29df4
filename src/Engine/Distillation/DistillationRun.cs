// Distillation and co-training end to end: sample the splits, train student(s), score teacher, student(s) and baselines, time them.
using System.Diagnostics;
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Metrics;
using FastRec.Engine.Model;
using FastRec.Engine.Serving;
using FastRec.Engine.Training;

namespace FastRec.Engine.Distillation;

/// <summary>Options of <see cref="DistillationRun"/> (the data sampling mirrors <see cref="ExperimentOptions"/>).</summary>
public sealed record DistillRunOptions
{
    /// <summary>The student's shape.</summary>
    public StudentConfig Student { get; init; } = new();
    /// <summary>Loss weights, temperature, cache; its optimizer's rate is replaced by the schedule.</summary>
    public DistillOptions Distill { get; init; } = new();
    /// <summary>Epochs over the training sample.</summary>
    public int Epochs { get; init; } = 2;
    /// <summary>Examples per step.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Peak learning rate (linear warmup, then linear decay).</summary>
    public float LearningRate { get; init; } = 1e-4f;
    /// <summary>Fraction of the steps that warm up.</summary>
    public double WarmupFraction { get; init; } = 0.1;
    /// <summary>Train on the last (most recent) this many training examples; null = all.</summary>
    public int? MaxTrain { get; init; }
    /// <summary>Validate on the first this many validation examples; null = all.</summary>
    public int? MaxValidation { get; init; }
    /// <summary>Test on the first this many test examples; null = all.</summary>
    public int? MaxTest { get; init; }
    /// <summary>Keep the student of the epoch with the best validation AUC.</summary>
    public bool RestoreBest { get; init; } = true;
    /// <summary>Examples per scoring pass.</summary>
    public int EvalBatchSize { get; init; } = 64;
    /// <summary>Batch-1 requests timed per model with the <see cref="Predictor"/> (0 = no latency).</summary>
    public int LatencyRequests { get; init; } = 100;
    /// <summary>Test examples scored one by one through fp32 and int16 <see cref="Predictor"/>s of each model, to report what
    /// <see cref="ServingPrecision.Int16"/> does to AUC, scores and latency (0 = no check).</summary>
    public int PrecisionCheckExamples { get; init; } = 300;
    /// <summary>Student initialisation seed and epoch order seed.</summary>
    public ulong Seed { get; init; } = 42;
    /// <summary>Options of the test metrics.</summary>
    public MetricsOptions Metrics { get; init; } = new();
}

/// <summary>Options of the co-training run.</summary>
public sealed record MutualRunOptions
{
    /// <summary>α, temperature, seed (hidden/attention weights are not used).</summary>
    public DistillOptions Distill { get; init; } = new();
    /// <summary>Epochs.</summary>
    public int Epochs { get; init; } = 2;
    /// <summary>Examples per step.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Peak learning rate.</summary>
    public float LearningRate { get; init; } = 1e-4f;
    /// <summary>Fraction of the steps that warm up.</summary>
    public double WarmupFraction { get; init; } = 0.1;
    /// <summary>Sampling as <see cref="DistillRunOptions"/>.</summary>
    public int? MaxTrain { get; init; }
    /// <inheritdoc cref="MaxTrain"/>
    public int? MaxValidation { get; init; }
    /// <inheritdoc cref="MaxTrain"/>
    public int? MaxTest { get; init; }
    /// <summary>Examples per scoring pass.</summary>
    public int EvalBatchSize { get; init; } = 64;
    /// <summary>Batch-1 requests timed per model (0 = none).</summary>
    public int LatencyRequests { get; init; } = 100;
    /// <summary>Epoch order seed.</summary>
    public ulong Seed { get; init; } = 42;
    /// <summary>Options of the test metrics.</summary>
    public MetricsOptions Metrics { get; init; } = new();
}

/// <summary>One epoch of a run: mean weighted loss terms over its steps and the validation AUC after it (one per model).</summary>
public sealed record EpochRecord(int Epoch, double Loss, double Hard, double Soft, double Hidden, double Attention, double ValidationAuc,
                                 double LossB = double.NaN, double ValidationAucB = double.NaN);

/// <summary>Size and speed of one model.</summary>
/// <param name="Name">Model name.</param>
/// <param name="Parameters">Parameters (floats).</param>
/// <param name="LatencyP50Ms">Batch-1 request latency, median (NaN = not measured).</param>
/// <param name="LatencyP99Ms">99th percentile.</param>
public sealed record ModelFacts(string Name, long Parameters, double LatencyP50Ms, double LatencyP99Ms)
{
    /// <summary>Bytes of the fp32 parameters (the checkpoint's weights are about this).</summary>
    public long Bytes => Parameters * sizeof(float);
    /// <summary>Bytes on disk of the saved checkpoint, when known (set by the caller after saving).</summary>
    public long? DiskBytes { get; init; }
}

/// <summary>One model served in fp32 and in <see cref="ServingPrecision.Int16"/> on the same <paramref name="Examples"/> test
/// examples, one request each (the two predictors alternating).</summary>
/// <param name="Name">Model name.</param>
/// <param name="Examples">Test examples scored.</param>
/// <param name="AucFloat32">AUC of the fp32 Predictor's scores (NaN when the examples hold one class only).</param>
/// <param name="AucInt16">AUC of the int16 Predictor's scores.</param>
/// <param name="MaxAbsDiff">max |p_int16 − p_fp32|.</param>
/// <param name="MeanAbsDiff">mean |p_int16 − p_fp32|.</param>
/// <param name="P50Float32Ms">Median request latency, fp32.</param>
/// <param name="P50Int16Ms">Median request latency, int16.</param>
public sealed record PrecisionCheck(string Name, int Examples, double AucFloat32, double AucInt16, double MaxAbsDiff, double MeanAbsDiff,
                                    double P50Float32Ms, double P50Int16Ms);

/// <summary>What a distillation or co-training run measured on the test sample.</summary>
public sealed class DistillRunReport
{
    /// <summary>Models scored on the test sample: the teacher (or model A), the student (or model B).</summary>
    public required ScoredModel Teacher { get; init; }
    /// <inheritdoc cref="Teacher"/>
    public required ScoredModel Student { get; init; }
    /// <summary>The baselines, fitted on the same training examples.</summary>
    public required IReadOnlyList<ScoredModel> Baselines { get; init; }
    /// <summary>Parameters and latency of the teacher (model A) and student (model B).</summary>
    public required ModelFacts TeacherFacts { get; set; }
    /// <inheritdoc cref="TeacherFacts"/>
    public required ModelFacts StudentFacts { get; set; }
    /// <summary>Per-epoch losses and validation AUC.</summary>
    public required IReadOnlyList<EpochRecord> Epochs { get; init; }
    /// <summary>Examples used: train, validation, test.</summary>
    public required (int Train, int Validation, int Test) Sizes { get; init; }
    /// <summary>Seconds spent training.</summary>
    public required double TrainSeconds { get; init; }
    /// <summary>How the student was initialised (empty for co-training).</summary>
    public string StudentInit { get; init; } = "";
    /// <summary>The teacher cache's final state (empty without cache).</summary>
    public string Cache { get; init; } = "";
    /// <summary>"distillation" or "co-training".</summary>
    public required string Kind { get; init; }
    /// <summary>fp32 against int16 serving of each model on the first test examples (empty when not checked).</summary>
    public IReadOnlyList<PrecisionCheck> Precision { get; init; } = [];

    /// <summary>The baseline with the highest test AUC.</summary>
    public ScoredModel BestBaseline => Baselines.MaxBy(b => b.Metrics.Auc)!;
    /// <summary>Teacher test AUC minus the best baseline's.</summary>
    public double TeacherLift => Teacher.Metrics.Auc - BestBaseline.Metrics.Auc;
    /// <summary>Student test AUC minus the best baseline's.</summary>
    public double StudentLift => Student.Metrics.Auc - BestBaseline.Metrics.Auc;
    /// <summary>The fraction of the teacher's AUC lift over the best baseline that the student keeps (NaN when the teacher has no lift).</summary>
    public double LiftKept => TeacherLift > 0 ? StudentLift / TeacherLift : double.NaN;
}

/// <summary>Runs distillation (<see cref="Distill"/>) and co-training (<see cref="CoTrain"/>) experiments; used by
/// <c>fastrec distill</c>, <c>fastrec cotrain</c> and the end-to-end tests.</summary>
public static class DistillationRun
{
    /// <summary>
    /// Builds the student (<see cref="Student.Derive"/>, <see cref="Student.InitializeFrom"/>) on the teacher's backend, distils
    /// it from <paramref name="teacher"/> on the training sample with a warmup/decay schedule (validation AUC after each epoch,
    /// best epoch kept), then scores teacher, student and the baselines on the test sample and times both models at batch 1.
    /// Returns the student (with the teacher's tokenizer, text options, scaler and schema; the caller owns it) and the report.
    /// </summary>
    public static (Recommender Student, DistillRunReport Report) Distill(Recommender teacher, RecDataset data, DistillRunOptions options,
        Action<string>? log = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(teacher); ArgumentNullException.ThrowIfNull(data); ArgumentNullException.ThrowIfNull(options);
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
            var encoder = teacher.EncoderFor(train.Catalog);
            var enc = encoder.Encode(train);
            var encVal = encoder.Encode(val);
            var dOpts = options.Distill with { Log = options.Distill.Log ?? log };
            using var distiller = new Distiller(model, [teacher.Model], dOpts, train.Count);

            int N = train.Count, B = options.BatchSize;
            if (B < 1) throw new ArgumentOutOfRangeException(nameof(options), B, $"batch size must be at least 1, got {B}");
            int perEpoch = (N + B - 1) / B, total = Math.Max(1, perEpoch * options.Epochs);
            var schedule = new LrSchedule(options.LearningRate, total, LrSchedule.WarmupFor(options.WarmupFraction, total));
            var epochs = new List<EpochRecord>();
            float[]? best = null;
            double bestAuc = double.NegativeInfinity;
            var sw = Stopwatch.StartNew();
            int step = 0;
            for (int e = 0; e < options.Epochs; e++)
            {
                var order = Trainer.EpochOrder(N, options.Seed, e);
                double l = 0, h = 0, s = 0, hid = 0, att = 0;
                for (int i = 0; i < N; i += B)
                {
                    ct.ThrowIfCancellationRequested();
                    var rows = order.AsSpan(i, Math.Min(B, N - i));
                    var batch = BatchPacker.Pack(train, enc, rows, teacher.PadId, teacher.Scaler);
                    var r = distiller.Step(batch, rows, ++step, schedule.At(step));
                    l += r.Total; h += r.Hard; s += r.Soft; hid += r.Hidden; att += r.Attention;
                }
                double auc = RocAuc.Compute(val.Labels, Recommender.Sigmoid(student.PredictLogits(val, encVal, options.EvalBatchSize, ct: ct)));
                epochs.Add(new EpochRecord(e + 1, l / perEpoch, h / perEpoch, s / perEpoch, hid / perEpoch, att / perEpoch, auc));
                log?.Invoke($"epoch {e + 1}: loss {l / perEpoch:0.0000} (hard {h / perEpoch:0.0000}, soft {s / perEpoch:0.0000}, hidden {hid / perEpoch:0.0000}, attention {att / perEpoch:0.000000}), validation AUC {auc:0.0000}");
                if (options.RestoreBest && auc > bestAuc)
                {
                    bestAuc = auc;
                    best ??= new float[model.Layout.TotalSize];
                    model.Backend.Download(model.Params.All, best);
                }
            }
            if (options.RestoreBest && best is not null) model.Backend.Upload(model.Params.All, best);
            double trainSecs = sw.Elapsed.TotalSeconds;
            if (distiller.Cache is { } cache) log?.Invoke(cache.Describe());

            var (scoredT, scoredS, baselines) = ScoreAll(teacher, "teacher", student, "student", train, test, data, options.Metrics, options.EvalBatchSize, ct);
            var (tFacts, sFacts) = Facts(teacher, "teacher", student, "student", test, options.LatencyRequests);
            var report = new DistillRunReport
            {
                Teacher = scoredT, Student = scoredS, Baselines = baselines, TeacherFacts = tFacts, StudentFacts = sFacts, Epochs = epochs,
                Sizes = (train.Count, val.Count, test.Count), TrainSeconds = trainSecs, StudentInit = init.Summary,
                Cache = distiller.Cache?.Describe() ?? "", Kind = "distillation",
                Precision = options.PrecisionCheckExamples > 0
                    ? [CheckPrecision(teacher, "teacher", test, options.PrecisionCheckExamples), CheckPrecision(student, "student", test, options.PrecisionCheckExamples)]
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
    /// sample, then both and the baselines scored on the test sample and timed at batch 1.
    /// </summary>
    public static DistillRunReport CoTrain(Recommender a, Recommender b, RecDataset data, MutualRunOptions options,
        Action<string>? log = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(a); ArgumentNullException.ThrowIfNull(b); ArgumentNullException.ThrowIfNull(data); ArgumentNullException.ThrowIfNull(options);
        if (a.Text != b.Text || a.Model.Bert.VocabSize != b.Model.Bert.VocabSize)
            throw new ArgumentException("b: co-training needs both models to share the tokenizer and text options (vocabulary, maximum length, separator)");
        var (train, val, test) = Sample(data, options.MaxTrain, options.MaxValidation, options.MaxTest);
        if (!a.Scaler.Fitted) a.Scaler = FeatureScaler.Fit(train);   // fresh heads: standardise on the training sample
        if (!b.Scaler.Fitted || !ReferenceEquals(b.Scaler, a.Scaler)) b.Scaler = a.Scaler;
        var encoder = a.EncoderFor(train.Catalog);
        var enc = encoder.Encode(train);
        var encVal = encoder.Encode(val);
        using var ml = new MutualLearning(a.Model, b.Model, options.Distill);
        int N = train.Count, B = options.BatchSize;
        if (B < 1) throw new ArgumentOutOfRangeException(nameof(options), B, $"batch size must be at least 1, got {B}");
        int perEpoch = (N + B - 1) / B, total = Math.Max(1, perEpoch * options.Epochs);
        var schedule = new LrSchedule(options.LearningRate, total, LrSchedule.WarmupFor(options.WarmupFraction, total));
        var epochs = new List<EpochRecord>();
        var sw = Stopwatch.StartNew();
        int step = 0;
        for (int e = 0; e < options.Epochs; e++)
        {
            var order = Trainer.EpochOrder(N, options.Seed, e);
            double la = 0, lb = 0, ha = 0, sa = 0;
            for (int i = 0; i < N; i += B)
            {
                ct.ThrowIfCancellationRequested();
                var rows = order.AsSpan(i, Math.Min(B, N - i));
                var r = ml.Step(BatchPacker.Pack(train, enc, rows, a.PadId, a.Scaler), ++step, schedule.At(step));
                la += r.TotalA; lb += r.TotalB; ha += r.HardA; sa += r.SoftA;
            }
            double aucA = RocAuc.Compute(val.Labels, Recommender.Sigmoid(a.PredictLogits(val, encVal, options.EvalBatchSize, ct: ct)));
            double aucB = RocAuc.Compute(val.Labels, Recommender.Sigmoid(b.PredictLogits(val, encVal, options.EvalBatchSize, ct: ct)));
            epochs.Add(new EpochRecord(e + 1, la / perEpoch, ha / perEpoch, sa / perEpoch, 0, 0, aucA, lb / perEpoch, aucB));
            log?.Invoke($"epoch {e + 1}: loss A {la / perEpoch:0.0000}, B {lb / perEpoch:0.0000}; validation AUC A {aucA:0.0000}, B {aucB:0.0000}");
        }
        double trainSecs = sw.Elapsed.TotalSeconds;
        var (scoredA, scoredB, baselines) = ScoreAll(a, "model A", b, "model B", train, test, data, options.Metrics, options.EvalBatchSize, ct);
        var (fa, fb) = Facts(a, "model A", b, "model B", test, options.LatencyRequests);
        return new DistillRunReport
        {
            Teacher = scoredA, Student = scoredB, Baselines = baselines, TeacherFacts = fa, StudentFacts = fb, Epochs = epochs,
            Sizes = (train.Count, val.Count, test.Count), TrainSeconds = trainSecs, Kind = "co-training",
        };
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
        var (pa, qa, pb, qb) = Latency(a, b, test, requests);
        return (new ModelFacts(nameA, a.Model.Layout.TotalSize, pa, qa), new ModelFacts(nameB, b.Model.Layout.TotalSize, pb, qb));
    }

    /// <summary>
    /// Batch-1 latency (p50, p99 in ms) of <see cref="Predictor"/>s on <paramref name="a"/> and <paramref name="b"/>: one
    /// request per test example (cycling over the first 64), the two models alternating, after 10 warm-up requests each.
    /// </summary>
    public static (double P50A, double P99A, double P50B, double P99B) Latency(Recommender a, Recommender b, ExampleSet test, int requests)
    {
        ArgumentNullException.ThrowIfNull(a); ArgumentNullException.ThrowIfNull(b); ArgumentNullException.ThrowIfNull(test);
        var encoder = a.EncoderFor(test.Catalog);
        var sample = Experiment.First(test, Math.Min(64, test.Count));
        var enc = encoder.Encode(sample);
        using var pa = new Predictor(a.Model, ServingOptions(a, encoder));
        using var pb = new Predictor(b.Model, ServingOptions(b, encoder));
        var (ta, tb, _, _) = Alternate(sample, enc, pa, pb, requests);
        return (Pct(ta, 0.5), Pct(ta, 0.99), Pct(tb, 0.5), Pct(tb, 0.99));
    }

    /// <summary>
    /// Scores the first <paramref name="examples"/> test examples one request at a time through an fp32 and an int16
    /// <see cref="Predictor"/> of <paramref name="r"/> (alternating, after 10 warm-up requests each): AUC of each, the score
    /// differences, and the median latency of each.
    /// </summary>
    public static PrecisionCheck CheckPrecision(Recommender r, string name, ExampleSet test, int examples)
    {
        ArgumentNullException.ThrowIfNull(r); ArgumentNullException.ThrowIfNull(test);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(examples);
        var encoder = r.EncoderFor(test.Catalog);
        int n = Math.Min(examples, test.Count);
        var sample = Experiment.First(test, n);
        var enc = encoder.Encode(sample);
        var opts = ServingOptions(r, encoder);
        using var f32 = new Predictor(r.Model, opts);
        using var i16 = new Predictor(r.Model, opts with { Precision = ServingPrecision.Int16 });
        var (tf, tq, pf, pq) = Alternate(sample, enc, f32, i16, n);
        float[] labels = sample.Labels.ToArray();
        bool both = labels.Any(y => y > 0.5f) && labels.Any(y => y < 0.5f);
        double maxDiff = 0, sumDiff = 0;
        for (int i = 0; i < n; i++) { double d = Math.Abs((double)pq[i] - pf[i]); maxDiff = Math.Max(maxDiff, d); sumDiff += d; }
        return new PrecisionCheck(name, n, both ? RocAuc.Compute(labels, pf) : double.NaN, both ? RocAuc.Compute(labels, pq) : double.NaN,
                                  maxDiff, sumDiff / n, Pct(tf, 0.5), Pct(tq, 0.5));
    }

    /// <summary>Batch-1 Predictor options for <paramref name="r"/>: its text length, the tokenizer's special ids, its scaler.</summary>
    private static PredictorOptions ServingOptions(Recommender r, ExampleEncoder encoder) => new()
    {
        MaxLength = r.Text.MaxLength, MaxBatch = 1, ClsId = encoder.Tokenizer.ClsId, SepId = encoder.Tokenizer.SepId,
        DenseMean = r.Scaler.Names.Length > 0 ? r.Scaler.Mean : null, DenseStd = r.Scaler.Names.Length > 0 ? r.Scaler.Std : null,
    };

    /// <summary>
    /// One (context, candidate) request per round on example r mod n of <paramref name="sample"/>, through <paramref name="pa"/>
    /// and <paramref name="pb"/> in alternating order; 10 warm-up rounds, then <paramref name="rounds"/> timed ones. Returns each
    /// predictor's request times and its score of every example (from the timed rounds).
    /// </summary>
    private static (List<double> TimesA, List<double> TimesB, float[] ScoresA, float[] ScoresB) Alternate(ExampleSet sample,
        EncodedExamples enc, Predictor pa, Predictor pb, int rounds)
    {
        int n = sample.Count;
        var ta = new List<double>(); var tb = new List<double>();
        var sa = new float[n]; var sb = new float[n];
        var sw = new Stopwatch();
        for (int r = 0; r < 10 + rounds; r++)
        {
            int i = r % n;
            var row = enc.Row(i);
            int ts = enc.TypeStart[i];
            var ctx = row[1..(ts - 1)];
            var cand = row[ts..^1];
            var dense = sample.DenseRow(i);
            for (int k = 0; k < 2; k++)
            {
                bool first = (k + r) % 2 == 0;
                sw.Restart();
                float p = (first ? pa : pb).Score(ctx, cand, dense);
                sw.Stop();
                if (r < 10) continue;
                (first ? sa : sb)[i] = p;
                (first ? ta : tb).Add(sw.Elapsed.TotalMilliseconds);
            }
        }
        return (ta, tb, sa, sb);
    }

    private static double Pct(List<double> xs, double q)
    {
        if (xs.Count == 0) return double.NaN;
        var s = xs.Order().ToArray();
        double pos = q * (s.Length - 1);
        int lo = (int)pos, hi = Math.Min(lo + 1, s.Length - 1);
        return s[lo] + (s[hi] - s[lo]) * (pos - lo);
    }
}
