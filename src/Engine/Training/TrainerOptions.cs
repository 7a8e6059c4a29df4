// The trainer's hyper-parameters (schedule, optimiser, freezing, early stopping, checkpoints) and their validation.
using FastRec.Engine.Model;
using FastRec.Kernels.Distributed;

namespace FastRec.Engine.Training;

/// <summary>Hyper-parameters of <see cref="Trainer"/>. Everything that changes the result is part of the checkpoint, and a
/// resumed run must use the same values (<see cref="Trainer.Resume"/> refuses others).</summary>
public sealed record TrainerOptions
{
    /// <summary>Passes over the training examples.</summary>
    public int Epochs { get; init; } = 3;
    /// <summary>Examples per forward/backward (micro-batch).</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Micro-batches per optimizer step: the effective batch is BatchSize × GradientAccumulation. Gradients are
    /// weighted so the step equals one step on the whole effective batch (weighted BCE mean over all its examples).</summary>
    public int GradientAccumulation { get; init; } = 1;
    /// <summary>Peak learning rate (after warmup).</summary>
    public float LearningRate { get; init; } = 5e-5f;
    /// <summary>Fraction of the optimizer steps spent warming up linearly from 0; then linear decay (see <see cref="LrSchedule"/>).</summary>
    public double WarmupFraction { get; init; } = 0.1;
    /// <summary>AdamW decoupled weight decay, applied to weights only (not biases, not LayerNorm).</summary>
    public float WeightDecay { get; init; } = 0.01f;
    /// <summary>Global-norm gradient clipping; 0 = off.</summary>
    public float MaxGradNorm { get; init; } = 1f;
    /// <summary>AdamW β1.</summary>
    public float Beta1 { get; init; } = 0.9f;
    /// <summary>AdamW β2.</summary>
    public float Beta2 { get; init; } = 0.999f;
    /// <summary>AdamW ε.</summary>
    public float Eps { get; init; } = 1e-8f;
    /// <summary>Layer-wise LR decay in (0, 1]: head and pooler × 1, encoder layer i × decay^(L − i), embeddings × decay^(L + 1).
    /// 1 = off.</summary>
    public float LayerLrDecay { get; init; } = 1f;
    /// <summary>Which tensors train.</summary>
    public Freeze Freeze { get; init; } = Freeze.All;
    /// <summary>With <see cref="Freeze.TopK"/>: the number of top encoder layers that train.</summary>
    public int TopK { get; init; }
    /// <summary>Cache the frozen layers' activations (computed once per example, reused by every epoch and evaluation).
    /// Frozen layers then run without dropout.</summary>
    public bool ActivationCache { get; init; } = true;
    /// <summary>Largest cache allowed (bytes, train + validation); above it training runs without the cache.</summary>
    public long CacheMaxBytes { get; init; } = 3L << 30;
    /// <summary>Multiplies the weight of positive examples (label &gt;= 0.5) in the BCE.</summary>
    public float PositiveWeight { get; init; } = 1f;
    /// <summary>Multiplies the weight of negative examples in the BCE.</summary>
    public float NegativeWeight { get; init; } = 1f;
    /// <summary>Seed of the example order, dropout and the head's initialisation: same seed, backend and threads → same run.</summary>
    public ulong Seed { get; init; } = 42;
    /// <summary>Evaluate on the validation set every this many optimizer steps; 0 = at the end of each epoch.</summary>
    public int EvalEverySteps { get; init; }
    /// <summary>Early stopping: stop after this many evaluations without a better validation AUC; 0 = off.</summary>
    public int Patience { get; init; }
    /// <summary>At the end, put back the weights of the evaluation with the best validation AUC.</summary>
    public bool RestoreBest { get; init; } = true;
    /// <summary>Examples per forward pass when evaluating or caching.</summary>
    public int EvalBatchSize { get; init; } = 64;
    /// <summary>Write a resumable checkpoint here every <see cref="CheckpointEverySteps"/> steps (and when stopped early); null = never.</summary>
    public string? CheckpointDir { get; init; }
    /// <summary>See <see cref="CheckpointDir"/>; 0 = only when the run is stopped by <see cref="StopAfterStep"/>.</summary>
    public int CheckpointEverySteps { get; init; }
    /// <summary>Stop after this optimizer step (the schedule is unchanged), writing a resumable checkpoint when
    /// <see cref="CheckpointDir"/> is set: an interrupted run. null = run to the end.</summary>
    public int? StopAfterStep { get; init; }
    /// <summary>Data parallelism: the ranks this run is spread over (one <see cref="Trainer"/> per rank, same options and data);
    /// null = this process alone (<see cref="LocalCollective"/>). With N ranks an optimizer step takes
    /// BatchSize × GradientAccumulation × N examples, each rank a disjoint shard (<see cref="Trainer.ShardOf"/>); the result
    /// equals one process with N times the batch up to the summation order of the all-reduce. Not part of the
    /// <see cref="Fingerprint"/>: a run can resume on another number of ranks with the same examples per step.</summary>
    public ICollective? Collective { get; init; }
    /// <summary>Debug aid with more than one rank: after every optimizer step the ranks compare a hash of their parameters and
    /// stop with an error naming the step if they differ (they must stay bit-identical). Costs one pass over the parameters.</summary>
    public bool VerifyRanks { get; init; }

    /// <summary>Checks every field; throws <see cref="ArgumentOutOfRangeException"/> naming the option and its range.</summary>
    public void Validate()
    {
        static void Range(bool ok, string name, object value, string range)
        {
            if (!ok) throw new ArgumentOutOfRangeException(name, value, $"{name} must be {range}, got {value}");
        }
        Range(Epochs >= 1 && Epochs <= 10_000, nameof(Epochs), Epochs, "in [1, 10000]");
        Range(BatchSize >= 1 && BatchSize <= 65_536, nameof(BatchSize), BatchSize, "in [1, 65536]");
        Range(GradientAccumulation >= 1 && GradientAccumulation <= 4096, nameof(GradientAccumulation), GradientAccumulation, "in [1, 4096]");
        Range(LearningRate > 0 && float.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "finite and > 0");
        Range(WarmupFraction >= 0 && WarmupFraction <= 1, nameof(WarmupFraction), WarmupFraction, "in [0, 1]");
        Range(WeightDecay >= 0 && float.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "finite and >= 0");
        Range(MaxGradNorm >= 0 && float.IsFinite(MaxGradNorm), nameof(MaxGradNorm), MaxGradNorm, "finite and >= 0");
        Range(Beta1 >= 0 && Beta1 < 1, nameof(Beta1), Beta1, "in [0, 1)");
        Range(Beta2 >= 0 && Beta2 < 1, nameof(Beta2), Beta2, "in [0, 1)");
        Range(Eps > 0 && float.IsFinite(Eps), nameof(Eps), Eps, "finite and > 0");
        Range(LayerLrDecay > 0 && LayerLrDecay <= 1, nameof(LayerLrDecay), LayerLrDecay, "in (0, 1]");
        Range(Enum.IsDefined(Freeze), nameof(Freeze), Freeze, "AdapterOnly, TopK or All");
        Range(TopK >= 0, nameof(TopK), TopK, ">= 0 (and <= the number of encoder layers)");
        Range(CacheMaxBytes >= 0, nameof(CacheMaxBytes), CacheMaxBytes, ">= 0");
        Range(PositiveWeight >= 0 && float.IsFinite(PositiveWeight), nameof(PositiveWeight), PositiveWeight, "finite and >= 0");
        Range(NegativeWeight >= 0 && float.IsFinite(NegativeWeight), nameof(NegativeWeight), NegativeWeight, "finite and >= 0");
        Range(PositiveWeight + NegativeWeight > 0, nameof(PositiveWeight), PositiveWeight, "> 0 when NegativeWeight is 0");
        Range(EvalEverySteps >= 0, nameof(EvalEverySteps), EvalEverySteps, ">= 0");
        Range(Patience >= 0, nameof(Patience), Patience, ">= 0");
        Range(EvalBatchSize >= 1 && EvalBatchSize <= 65_536, nameof(EvalBatchSize), EvalBatchSize, "in [1, 65536]");
        Range(CheckpointEverySteps >= 0, nameof(CheckpointEverySteps), CheckpointEverySteps, ">= 0");
        Range(StopAfterStep is null or >= 1, nameof(StopAfterStep), StopAfterStep ?? 0, ">= 1");
    }

    /// <summary>The LR multiplier of tensor <paramref name="t"/> under <see cref="LayerLrDecay"/>.</summary>
    public float LrScale(ParamInfo t, int numLayers)
    {
        if (LayerLrDecay == 1f || t.Layer >= numLayers) return 1f;
        int depth = t.Layer == ParameterLayout.EmbeddingsLayer ? numLayers + 1 : numLayers - t.Layer;
        return (float)Math.Pow(LayerLrDecay, depth);
    }

    /// <summary>The fields a resumed run must share with the interrupted one: (name, value) pairs (also written to fastrec.json).</summary>
    public IEnumerable<(string Name, string Value)> Fingerprint()
    {
        var c = System.Globalization.CultureInfo.InvariantCulture;
        yield return (nameof(Epochs), Epochs.ToString(c));
        yield return (nameof(BatchSize), BatchSize.ToString(c));
        yield return (nameof(GradientAccumulation), GradientAccumulation.ToString(c));
        yield return (nameof(LearningRate), LearningRate.ToString("R", c));
        yield return (nameof(WarmupFraction), WarmupFraction.ToString("R", c));
        yield return (nameof(WeightDecay), WeightDecay.ToString("R", c));
        yield return (nameof(MaxGradNorm), MaxGradNorm.ToString("R", c));
        yield return (nameof(Beta1), Beta1.ToString("R", c));
        yield return (nameof(Beta2), Beta2.ToString("R", c));
        yield return (nameof(Eps), Eps.ToString("R", c));
        yield return (nameof(LayerLrDecay), LayerLrDecay.ToString("R", c));
        yield return (nameof(Freeze), Freeze.ToString());
        yield return (nameof(TopK), TopK.ToString(c));
        yield return (nameof(ActivationCache), ActivationCache.ToString());
        yield return (nameof(PositiveWeight), PositiveWeight.ToString("R", c));
        yield return (nameof(NegativeWeight), NegativeWeight.ToString("R", c));
        yield return (nameof(Seed), Seed.ToString(c));
        yield return (nameof(EvalEverySteps), EvalEverySteps.ToString(c));
        yield return (nameof(Patience), Patience.ToString(c));
        yield return (nameof(RestoreBest), RestoreBest.ToString());
    }
}
