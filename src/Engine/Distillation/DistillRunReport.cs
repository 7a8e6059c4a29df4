// What a distillation or co-training run reports: per-epoch records, model facts, test scores and the lift kept.
using FastRec.Engine.Metrics;
using FastRec.Engine.Serving;
using FastRec.Engine.Training;

namespace FastRec.Engine.Distillation;

/// <summary>One epoch of a run: mean weighted loss terms over its steps and the validation AUC of its last evaluation (one per
/// model; NaN when the epoch had no evaluation).</summary>
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
    /// <summary>The trainer's final state: steps, evaluations, early stopping (of the student, or model A).</summary>
    public TrainingState? Training { get; init; }
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
