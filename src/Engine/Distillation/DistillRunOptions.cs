// Options of the distillation and co-training runs: student shape, loss, schedule, sampling, what is measured.
using FastRec.Engine.Metrics;
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
    /// <summary>Examples per forward/backward (micro-batch).</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Micro-batches per optimizer step (<see cref="TrainerOptions.GradientAccumulation"/>).</summary>
    public int GradientAccumulation { get; init; } = 1;
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
    /// <summary>Keep the student of the evaluation with the best validation AUC.</summary>
    public bool RestoreBest { get; init; } = true;
    /// <summary>Evaluate on the validation sample every this many optimizer steps; 0 = after each epoch.</summary>
    public int EvalEverySteps { get; init; }
    /// <summary>Early stopping: stop after this many evaluations without a better validation AUC; 0 = off.</summary>
    public int Patience { get; init; }
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

    /// <summary>The <see cref="Trainer"/>'s options of this run: the schedule, accumulation and early stopping above, the
    /// optimiser of <see cref="Distill"/> (its rate replaced by the schedule), everything trainable, no activation cache.</summary>
    public TrainerOptions Trainer() => DistillationRun.TrainerFor(Distill.Optimizer, Epochs, BatchSize, GradientAccumulation, LearningRate,
        WarmupFraction, Seed, EvalEverySteps, Patience, RestoreBest, EvalBatchSize);
}

/// <summary>Options of the co-training run.</summary>
public sealed record MutualRunOptions
{
    /// <summary>α, temperature, seed (hidden/attention weights are not used).</summary>
    public DistillOptions Distill { get; init; } = new();
    /// <summary>Epochs.</summary>
    public int Epochs { get; init; } = 2;
    /// <summary>Examples per forward/backward (micro-batch).</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Micro-batches per optimizer step (<see cref="TrainerOptions.GradientAccumulation"/>).</summary>
    public int GradientAccumulation { get; init; } = 1;
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
    /// <summary>Evaluate on the validation sample every this many optimizer steps; 0 = after each epoch.</summary>
    public int EvalEverySteps { get; init; }
    /// <summary>Early stopping on model A's validation AUC: stop after this many evaluations without a better one; 0 = off.</summary>
    public int Patience { get; init; }
    /// <summary>At the end, put back both models' weights of the evaluation with model A's best validation AUC (off by
    /// default: co-training keeps the last weights).</summary>
    public bool RestoreBest { get; init; }
    /// <summary>Batch-1 requests timed per model (0 = none).</summary>
    public int LatencyRequests { get; init; } = 100;
    /// <summary>Epoch order seed.</summary>
    public ulong Seed { get; init; } = 42;
    /// <summary>Options of the test metrics.</summary>
    public MetricsOptions Metrics { get; init; } = new();

    /// <summary>The <see cref="Trainer"/>'s options of this run (as <see cref="DistillRunOptions.Trainer"/>); model A is the
    /// trainer's model, B the objective's peer.</summary>
    public TrainerOptions Trainer() => DistillationRun.TrainerFor(Distill.Optimizer, Epochs, BatchSize, GradientAccumulation, LearningRate,
        WarmupFraction, Seed, EvalEverySteps, Patience, RestoreBest, EvalBatchSize);
}
