// One fine-tuning experiment end to end: sample the splits, train, score the test set, fit the baselines, compare.
using System.Diagnostics;
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Metrics;

namespace FastRec.Engine.Training;

/// <summary>How much of each split an experiment uses and how it trains.</summary>
public sealed record ExperimentOptions
{
    /// <summary>Train on the last (most recent) this many training examples; null = all.</summary>
    public int? MaxTrain { get; init; }
    /// <summary>Validate on the first (earliest) this many validation examples; null = all.</summary>
    public int? MaxValidation { get; init; }
    /// <summary>Test on the first (earliest) this many test examples, right after the validation period; null = all.</summary>
    public int? MaxTest { get; init; }
    /// <summary>The trainer's options.</summary>
    public TrainerOptions Trainer { get; init; } = new();
    /// <summary>Options of the test metrics.</summary>
    public MetricsOptions Metrics { get; init; } = new();
    /// <summary>Popularity smoothing α.</summary>
    public double PopularitySmoothing { get; init; } = 10;
    /// <summary>Bias model L2 λ.</summary>
    public double BiasLambda { get; init; } = 2;

    /// <summary>Checks the sample sizes and the trainer's options; throws <see cref="ArgumentOutOfRangeException"/> whose
    /// ParamName is the property.</summary>
    public void Validate()
    {
        foreach (var (name, value) in new[] { (nameof(MaxTrain), MaxTrain), (nameof(MaxValidation), MaxValidation), (nameof(MaxTest), MaxTest) })
            if (value is < 1) throw new ArgumentOutOfRangeException(name, value, $"{name} must be >= 1 (null = all), got {value}");
        Trainer.Validate();
    }
}

/// <summary>One model's scores on the test set.</summary>
/// <param name="Name">Model name.</param>
/// <param name="Probabilities">Per test example.</param>
/// <param name="Metrics">Every metric.</param>
public sealed record ScoredModel(string Name, float[] Probabilities, MetricsReport Metrics);

/// <summary>What <see cref="Experiment.Run"/> measured.</summary>
public sealed class ExperimentReport
{
    /// <summary>The training run (history included).</summary>
    public required TrainResult Training { get; init; }
    /// <summary>The fine-tuned model on the test set.</summary>
    public required ScoredModel Model { get; init; }
    /// <summary>The baselines on the test set (fitted on the same training examples).</summary>
    public required IReadOnlyList<ScoredModel> Baselines { get; init; }
    /// <summary>The baselines' validation AUC, for reference.</summary>
    public required IReadOnlyDictionary<string, double> BaselineValidationAuc { get; init; }
    /// <summary>Examples used: train, validation, test.</summary>
    public required (int Train, int Validation, int Test) Sizes { get; init; }
    /// <summary>Seconds: training (cache included), test scoring, baselines.</summary>
    public required (double Train, double Test, double Baselines) Seconds { get; init; }
    /// <summary>The test examples scored.</summary>
    public required ExampleSet Test { get; init; }

    /// <summary>The baseline with the highest test AUC.</summary>
    public ScoredModel BestBaseline => Baselines.MaxBy(b => b.Metrics.Auc)!;
    /// <summary>Test AUC of the model minus that of the best baseline.</summary>
    public double AucLift => Model.Metrics.Auc - BestBaseline.Metrics.Auc;
}

/// <summary>Runs an experiment (used by <c>fastrec train</c>, <c>fastrec demo</c> and the end-to-end test).</summary>
public static class Experiment
{
    /// <summary>The last <paramref name="max"/> examples of <paramref name="set"/> (all when null or larger).</summary>
    public static ExampleSet Last(ExampleSet set, int? max)
        => max is { } m && m < set.Count ? set.Subset(Enumerable.Range(set.Count - m, m).ToArray()) : set;

    /// <summary>The first <paramref name="max"/> examples of <paramref name="set"/> (all when null or larger).</summary>
    public static ExampleSet First(ExampleSet set, int? max)
        => max is { } m && m < set.Count ? set.Subset(Enumerable.Range(0, m).ToArray()) : set;

    /// <summary><paramref name="max"/> examples evenly spaced over <paramref name="set"/> (all when null or larger).</summary>
    public static ExampleSet Spaced(ExampleSet set, int? max)
        => max is not { } m || m >= set.Count ? set : set.Subset(SpacedIndices(set.Count, m));

    /// <summary><paramref name="max"/> indices evenly spaced over [0, <paramref name="count"/>) (all when null or larger).</summary>
    public static int[] SpacedIndices(int count, int? max)
    {
        if (max is not { } m || m >= count) return Enumerable.Range(0, count).ToArray();
        if (m < 1) throw new ArgumentOutOfRangeException(nameof(max), m, $"a sample needs at least 1 example, got {m}");
        var idx = new int[m];
        for (int i = 0; i < m; i++) idx[i] = (int)((long)i * count / m);
        return idx;
    }

    /// <summary>
    /// Samples the splits, fine-tunes <paramref name="rec"/> with <see cref="Trainer"/>, scores the test sample, fits the
    /// popularity and bias baselines on the same training examples and scores them too.
    /// </summary>
    public static ExperimentReport Run(Recommender rec, RecDataset data, ExperimentOptions options, IProgress<TrainProgress>? progress = null,
                                       TrainingState? resume = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(rec); ArgumentNullException.ThrowIfNull(data); ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var train = Last(data.Train, options.MaxTrain);
        var val = First(data.Validation, options.MaxValidation);
        var test = First(data.Test, options.MaxTest);
        RequireBothClasses(val); RequireBothClasses(test);

        var trainer = new Trainer(rec, options.Trainer);
        if (resume is not null) trainer.Resume(resume);
        var sw = Stopwatch.StartNew();
        var result = trainer.Fit(train, val, progress, ct);
        double trainSecs = sw.Elapsed.TotalSeconds;

        sw.Restart();
        var metricsOptions = options.Metrics with { ItemCount = options.Metrics.ItemCount == 0 ? data.Catalog.Count : options.Metrics.ItemCount };
        var enc = rec.EncoderFor(test.Catalog).Encode(test);
        long done = 0;
        var logits = rec.PredictLogits(test, enc, options.Trainer.EvalBatchSize, null, k =>
        {
            done += k;
            progress?.Report(new TrainProgress { Phase = TrainPhase.Caching, Done = done, Total = test.Count, Message = "scoring the test set" });
        }, ct);
        var probs = Recommender.Sigmoid(logits);
        var model = new ScoredModel("fine-tuned " + Path.GetFileName(rec.BaseModel.TrimEnd('/')), probs,
            MetricsReport.Compute(test.Labels, probs, test.Users, test.Items, metricsOptions));
        double testSecs = sw.Elapsed.TotalSeconds;

        sw.Restart();
        var baselines = new List<ScoredModel>();
        var valAuc = new Dictionary<string, double>();
        var fitted = new List<IBaseline> { PopularityBaseline.Fit(train, options.PopularitySmoothing), BiasBaseline.Fit(train, options.BiasLambda) };
        if (train.DenseCount > 0)
            fitted.Add(DenseLogisticBaseline.Fit(train, name: train.DenseNames.SequenceEqual(HistoryFeatures.Names) ? "history-feature logistic" : null));
        foreach (var b in fitted)
        {
            var p = b.Predict(test);
            baselines.Add(new ScoredModel(b.Name, p, MetricsReport.Compute(test.Labels, p, test.Users, test.Items, metricsOptions)));
            valAuc[b.Name] = RocAuc.Compute(val.Labels, b.Predict(val));
        }
        return new ExperimentReport
        {
            Training = result, Model = model, Baselines = baselines, BaselineValidationAuc = valAuc,
            Sizes = (train.Count, val.Count, test.Count), Seconds = (trainSecs, testSecs, sw.Elapsed.TotalSeconds), Test = test,
        };
    }

    private static void RequireBothClasses(ExampleSet set)
    {
        int pos = set.Positives;
        if (pos == 0 || pos == set.Count)
            throw new InvalidDataException($"the {set.Name} sample has {pos} positives among {set.Count} examples: AUC needs both classes; use a larger sample");
    }
}
