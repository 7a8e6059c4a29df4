// Where a training run stands (step, epoch, cursor, early stopping, history) and what it reports as it goes.
namespace FastRec.Engine.Training;

/// <summary>One evaluation on the validation set during training.</summary>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="Epoch">Fractional epoch (steps done / steps per epoch).</param>
/// <param name="TrainLoss">Mean training loss of the steps since the previous evaluation.</param>
/// <param name="ValidationLoss">Mean BCE (unweighted, unclipped logits) on the validation set.</param>
/// <param name="ValidationAuc">ROC AUC on the validation set.</param>
/// <param name="LearningRate">The rate of the last step.</param>
/// <param name="Seconds">Training seconds so far (this process).</param>
public sealed record EvalPoint(int Step, double Epoch, double TrainLoss, double ValidationLoss, double ValidationAuc, double LearningRate, double Seconds);

/// <summary>
/// The resumable state of a run besides the weights and Adam moments: the RNG is counter-based (example order keyed by
/// (seed, epoch), dropout by (seed, step)), so (seed, step, epoch, cursor) is the whole RNG state.
/// </summary>
public sealed class TrainingState
{
    /// <summary>Optimizer steps done.</summary>
    public int Step { get; set; }
    /// <summary>S: optimizer steps of the whole run (fixes the schedule).</summary>
    public int TotalSteps { get; set; }
    /// <summary>Current epoch (0-based).</summary>
    public int Epoch { get; set; }
    /// <summary>Examples of the current epoch's order already consumed.</summary>
    public int Cursor { get; set; }
    /// <summary>Training examples (a resumed run must have the same).</summary>
    public int TrainExamples { get; set; }
    /// <summary>Examples per optimizer step: BatchSize × GradientAccumulation × ranks (a resumed run must take the same;
    /// 0 in checkpoints written before it was recorded).</summary>
    public int ExamplesPerStep { get; set; }
    /// <summary>Ranks (processes) of the run's latest leg (1 without data parallelism).</summary>
    public int Ranks { get; set; } = 1;
    /// <summary>The seed (also in the options; kept so a state explains itself).</summary>
    public ulong Seed { get; set; }
    /// <summary>Best validation AUC so far (NaN before the first evaluation).</summary>
    public double BestAuc { get; set; } = double.NaN;
    /// <summary>Step of the best evaluation (0 = none).</summary>
    public int BestStep { get; set; }
    /// <summary>Evaluations since the best one (early stopping).</summary>
    public int BadEvaluations { get; set; }
    /// <summary>True when training finished (end of schedule or early stop); a finished run does not resume.</summary>
    public bool Finished { get; set; }
    /// <summary>True when early stopping ended the run.</summary>
    public bool EarlyStopped { get; set; }
    /// <summary>Loss of every optimizer step so far (weighted BCE mean over the effective batch).</summary>
    public List<float> StepLosses { get; set; } = [];
    /// <summary>Every evaluation so far.</summary>
    public List<EvalPoint> Evaluations { get; set; } = [];
    /// <summary>Trainer options fingerprint (name → value) the run was started with.</summary>
    public Dictionary<string, string> Options { get; set; } = [];
    /// <summary>Host copies of the trainable tensors at the best evaluation (name → values); empty when none yet.</summary>
    internal Dictionary<string, float[]> BestWeights { get; set; } = [];
}

/// <summary>What the trainer is doing, for a progress bar. Engine code never prints: it reports through
/// <see cref="IProgress{T}"/> and the CLI draws.</summary>
public enum TrainPhase
{
    /// <summary>Tokenising examples.</summary>
    Encoding,
    /// <summary>Running the frozen layers once per example (<see cref="TrainProgress.Done"/> of <see cref="TrainProgress.Total"/> examples).</summary>
    Caching,
    /// <summary>Optimizer steps (<see cref="TrainProgress.Done"/> of <see cref="TrainProgress.Total"/> steps).</summary>
    Training,
    /// <summary>An evaluation just finished (<see cref="TrainProgress.Evaluation"/> is set).</summary>
    Evaluated,
    /// <summary>A message (<see cref="TrainProgress.Message"/>).</summary>
    Message,
}

/// <summary>One progress report.</summary>
public sealed record TrainProgress
{
    /// <summary>The phase.</summary>
    public required TrainPhase Phase { get; init; }
    /// <summary>Units done in this phase (examples or steps).</summary>
    public long Done { get; init; }
    /// <summary>Units in this phase.</summary>
    public long Total { get; init; }
    /// <summary>Mean loss of the recent steps (Training).</summary>
    public double Loss { get; init; } = double.NaN;
    /// <summary>The loss of this optimizer step alone (Training): weighted BCE mean over the effective batch.</summary>
    public double StepLoss { get; init; } = double.NaN;
    /// <summary>Fractional epoch: steps done / steps per epoch (Training).</summary>
    public double Epoch { get; init; } = double.NaN;
    /// <summary>Training examples per second since the start of this process's training.</summary>
    public double ExamplesPerSecond { get; init; }
    /// <summary>Estimated time left in this phase.</summary>
    public TimeSpan? Eta { get; init; }
    /// <summary>Current learning rate.</summary>
    public double LearningRate { get; init; }
    /// <summary>Set in <see cref="TrainPhase.Evaluated"/>.</summary>
    public EvalPoint? Evaluation { get; init; }
    /// <summary>Set in <see cref="TrainPhase.Message"/>.</summary>
    public string? Message { get; init; }
}

/// <summary>The outcome of <see cref="Trainer.Fit"/>.</summary>
public sealed record TrainResult
{
    /// <summary>The state at the end (history included).</summary>
    public required TrainingState State { get; init; }
    /// <summary>True when the run stopped at <see cref="TrainerOptions.StopAfterStep"/> and can be resumed.</summary>
    public bool Interrupted { get; init; }
    /// <summary>Seconds spent building the activation cache (0 without).</summary>
    public double CacheSeconds { get; init; }
    /// <summary>Seconds spent in optimizer steps and evaluations.</summary>
    public double TrainSeconds { get; init; }
    /// <summary>The cached layer, or -1 when the cache was not used.</summary>
    public int CachedLayer { get; init; } = -1;
}
