// The trainer, head, text and sample-size options of `fastrec train` and `fastrec demo`, each falling back to a default.
using System.CommandLine;
using FastRec.Engine.Model;
using FastRec.Engine.Training;
using FastRec.Kernels;

namespace FastRec.Cli.Commands;

/// <summary>Nullable options over a set of defaults (so `demo` and `train` share them with different defaults, and
/// "given on the command line" is known, e.g. to check a head against an --init-from checkpoint).</summary>
internal sealed class TrainerCliOptions
{
    public readonly Option<int?> Epochs = new("--epochs") { Description = "Passes over the training examples" };
    public readonly Option<int?> BatchSize = new("--batch-size") { Description = "Examples per forward/backward" };
    public readonly Option<int?> GradAccum = new("--grad-accum") { Description = "Micro-batches per optimizer step" };
    public readonly Option<float?> Lr = new("--lr") { Description = "Peak learning rate" };
    public readonly Option<double?> Warmup = new("--warmup") { Description = "Warmup fraction of the steps (linear warmup, then linear decay)" };
    public readonly Option<float?> WeightDecay = new("--weight-decay") { Description = "AdamW weight decay (weights only)" };
    public readonly Option<float?> MaxGradNorm = new("--max-grad-norm") { Description = "Global-norm clipping, 0 = off" };
    public readonly Option<float?> LayerLrDecay = new("--layer-lr-decay") { Description = "Layer-wise LR decay in (0,1], 1 = off" };
    public readonly Option<string?> Freeze = new("--freeze") { Description = "all (nothing frozen) | adapter (head only) | top-k (head, pooler and the top --top-k layers train)" };
    public readonly Option<int?> TopK = new("--top-k") { Description = "Encoder layers trained with --freeze top-k" };
    public readonly Option<bool> NoCache = new("--no-cache") { Description = "Recompute frozen layers every step instead of caching their activations" };
    public readonly Option<float?> PosWeight = new("--pos-weight") { Description = "BCE weight of positive examples" };
    public readonly Option<float?> NegWeight = new("--neg-weight") { Description = "BCE weight of negative examples" };
    public readonly Option<ulong?> Seed = new("--seed") { Description = "Seed: order, dropout, head init" };
    public readonly Option<int?> EvalEvery = new("--eval-every") { Description = "Evaluate every N steps (0 = each epoch)" };
    public readonly Option<int?> Patience = new("--patience") { Description = "Early stopping after N evaluations without better validation AUC (0 = off)" };
    public readonly Option<bool> NoRestoreBest = new("--no-restore-best") { Description = "Keep the last weights instead of the best evaluation's" };
    public readonly Option<int?> CheckpointEvery = new("--checkpoint-every") { Description = "Write a resumable checkpoint to --out every N steps" };
    public readonly Option<int?> EvalBatch = new("--eval-batch-size") { Description = "Examples per forward pass when scoring" };
    public readonly Option<int?> MaxLength = new("--max-length") { Description = "Longest token sequence, special tokens included" };
    public readonly Option<string?> HeadHidden = new("--head-hidden") { Description = "Hidden widths of the head, comma separated ('none' = one Linear)" };
    public readonly Option<float?> HeadDropout = new("--head-dropout") { Description = "Dropout in the head" };
    public readonly Option<string?> HeadInput = new("--head-input") { Description = "pooler | cls | mean (masked mean of the last hidden state)" };
    public readonly Option<string?> HeadActivation = new("--head-activation") { Description = "gelu | relu | tanh" };
    public readonly Option<int?> MaxTrain = new("--max-train") { Description = "Train on the most recent N training examples" };
    public readonly Option<int?> MaxVal = new("--max-val") { Description = "Validate on N evenly spaced validation examples" };
    public readonly Option<int?> MaxTest = new("--max-test") { Description = "Test on N evenly spaced test examples" };

    public void AddTo(Command cmd)
    {
        foreach (var o in new[] { MaxTrain, MaxVal, MaxTest }) CliRun.AtLeast(o, 1);
        foreach (var o in new Option[] { Epochs, BatchSize, GradAccum, Lr, Warmup, WeightDecay, MaxGradNorm, LayerLrDecay, Freeze, TopK, NoCache,
                     PosWeight, NegWeight, Seed, EvalEvery, Patience, NoRestoreBest, CheckpointEvery, EvalBatch, MaxLength, HeadHidden, HeadDropout,
                     HeadInput, HeadActivation, MaxTrain, MaxVal, MaxTest })
            cmd.Options.Add(o);
    }

    /// <summary>Adds the training-loop flags that `distill` and `cotrain` share with `train` (they run the same
    /// <see cref="Engine.Training.Trainer"/> loop): --grad-accum, --eval-every, --patience.</summary>
    public void AddLoopTo(Command cmd)
    {
        foreach (var o in new Option[] { GradAccum, EvalEvery, Patience }) cmd.Options.Add(o);
    }

    /// <summary>The loop flags of <see cref="AddLoopTo"/> (defaults: no accumulation, evaluation each epoch, no early stopping).</summary>
    public (int Accumulation, int EvalEvery, int Patience) Loop(ParseResult r)
        => (r.GetValue(GradAccum) ?? 1, r.GetValue(EvalEvery) ?? 0, r.GetValue(Patience) ?? 0);

    public TrainerOptions Trainer(ParseResult r, TrainerOptions d, string? checkpointDir)
    {
        var freeze = r.GetValue(Freeze) is { } f
            ? f.ToLowerInvariant() switch
            {
                "all" or "none" => Engine.Model.Freeze.All,
                "adapter" or "adapter-only" or "head" => Engine.Model.Freeze.AdapterOnly,
                "top-k" or "topk" => Engine.Model.Freeze.TopK,
                _ => throw new ArgumentException($"--freeze: '{f}' is not all, adapter or top-k"),
            }
            : d.Freeze;
        if (r.GetValue(TopK) is not null && freeze != Engine.Model.Freeze.TopK)
            throw new ArgumentException("--top-k needs --freeze top-k");
        var t = d with
        {
            Epochs = r.GetValue(Epochs) ?? d.Epochs,
            BatchSize = r.GetValue(BatchSize) ?? d.BatchSize,
            GradientAccumulation = r.GetValue(GradAccum) ?? d.GradientAccumulation,
            LearningRate = r.GetValue(Lr) ?? d.LearningRate,
            WarmupFraction = r.GetValue(Warmup) ?? d.WarmupFraction,
            WeightDecay = r.GetValue(WeightDecay) ?? d.WeightDecay,
            MaxGradNorm = r.GetValue(MaxGradNorm) ?? d.MaxGradNorm,
            LayerLrDecay = r.GetValue(LayerLrDecay) ?? d.LayerLrDecay,
            Freeze = freeze,
            TopK = r.GetValue(TopK) ?? d.TopK,
            ActivationCache = !r.GetValue(NoCache) && d.ActivationCache,
            PositiveWeight = r.GetValue(PosWeight) ?? d.PositiveWeight,
            NegativeWeight = r.GetValue(NegWeight) ?? d.NegativeWeight,
            Seed = r.GetValue(Seed) ?? d.Seed,
            EvalEverySteps = r.GetValue(EvalEvery) ?? d.EvalEverySteps,
            Patience = r.GetValue(Patience) ?? d.Patience,
            RestoreBest = !r.GetValue(NoRestoreBest) && d.RestoreBest,
            EvalBatchSize = r.GetValue(EvalBatch) ?? d.EvalBatchSize,
            CheckpointDir = checkpointDir,
            CheckpointEverySteps = r.GetValue(CheckpointEvery) ?? d.CheckpointEverySteps,
        };
        CliRun.InFlagWords(t.Validate, new Dictionary<string, Option>
        {
            [nameof(TrainerOptions.Epochs)] = Epochs, [nameof(TrainerOptions.BatchSize)] = BatchSize, [nameof(TrainerOptions.GradientAccumulation)] = GradAccum,
            [nameof(TrainerOptions.LearningRate)] = Lr, [nameof(TrainerOptions.WarmupFraction)] = Warmup, [nameof(TrainerOptions.WeightDecay)] = WeightDecay,
            [nameof(TrainerOptions.MaxGradNorm)] = MaxGradNorm, [nameof(TrainerOptions.LayerLrDecay)] = LayerLrDecay, [nameof(TrainerOptions.TopK)] = TopK,
            [nameof(TrainerOptions.PositiveWeight)] = PosWeight, [nameof(TrainerOptions.NegativeWeight)] = NegWeight,
            [nameof(TrainerOptions.EvalEverySteps)] = EvalEvery, [nameof(TrainerOptions.Patience)] = Patience,
            [nameof(TrainerOptions.EvalBatchSize)] = EvalBatch, [nameof(TrainerOptions.CheckpointEverySteps)] = CheckpointEvery,
        });
        return t;
    }

    /// <summary>True when any head option was given.</summary>
    public bool HeadGiven(ParseResult r) => r.GetValue(HeadHidden) is not null || r.GetValue(HeadDropout) is not null
                                            || r.GetValue(HeadInput) is not null || r.GetValue(HeadActivation) is not null;

    public AdapterConfig Adapter(ParseResult r, AdapterConfig d, int denseFeatures) => new()
    {
        HiddenSizes = r.GetValue(HeadHidden) is { } h ? Parse.IntList(h, "--head-hidden") : d.HiddenSizes,
        Dropout = r.GetValue(HeadDropout) ?? d.Dropout,
        Input = r.GetValue(HeadInput) is { } i
            ? i.ToLowerInvariant() switch
            {
                "pooler" => AdapterInput.Pooler,
                "cls" => AdapterInput.Cls,
                "mean" => AdapterInput.Mean,
                _ => throw new ArgumentException($"--head-input: '{i}' is not pooler, cls or mean"),
            }
            : d.Input,
        Activation = r.GetValue(HeadActivation) is { } a
            ? a.ToLowerInvariant() switch
            {
                "gelu" => Activation.Gelu,
                "relu" => Activation.Relu,
                "tanh" => Activation.Tanh,
                _ => throw new ArgumentException($"--head-activation: '{a}' is not gelu, relu or tanh"),
            }
            : d.Activation,
        DenseFeatures = denseFeatures,
    };

    public TextOptions Text(ParseResult r, TextOptions d) => d with { MaxLength = r.GetValue(MaxLength) ?? d.MaxLength };

    public ExperimentOptions Experiment(ParseResult r, ExperimentOptions d, TrainerOptions trainer)
    {
        var e = d with
        {
            MaxTrain = r.GetValue(MaxTrain) ?? d.MaxTrain,
            MaxValidation = r.GetValue(MaxVal) ?? d.MaxValidation,
            MaxTest = r.GetValue(MaxTest) ?? d.MaxTest,
            Trainer = trainer,
        };
        CliRun.InFlagWords(e.Validate, new Dictionary<string, Option>
        {
            [nameof(ExperimentOptions.MaxTrain)] = MaxTrain, [nameof(ExperimentOptions.MaxValidation)] = MaxVal, [nameof(ExperimentOptions.MaxTest)] = MaxTest,
        });
        return e;
    }
}
