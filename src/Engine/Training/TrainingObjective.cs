// What one optimizer step of the Trainer minimises: the pluggable per-micro-batch loss (supervised BCE by default).
using FastRec.Engine.Model;
using FastRec.Kernels.Distributed;

namespace FastRec.Engine.Training;

/// <summary>One micro-batch of an optimizer step, as <see cref="Trainer"/> hands it to an <see cref="ITrainingObjective"/>.</summary>
public readonly ref struct MicroBatch
{
    /// <summary>The packed examples (right-padded, labels and weights set).</summary>
    public required RecBatch Batch { get; init; }
    /// <summary>The training-set indices of the batch's rows (example ids, e.g. for a teacher-output cache).</summary>
    public required ReadOnlySpan<int> Rows { get; init; }
    /// <summary>The optimizer step (from 1).</summary>
    public required int Step { get; init; }
    /// <summary>Index of this micro-batch within the step on this rank (from 0).</summary>
    public required int Index { get; init; }
    /// <summary>This process's rank (0 without data parallelism).</summary>
    public required int Rank { get; init; }
    /// <summary>The trainer's dropout key of this micro-batch: a pure function of (seed, step, micro-batch, rank).</summary>
    public required ulong DropoutKey { get; init; }
    /// <summary>This micro-batch's share of the step's total example weight: the loss and every gradient are multiplied by it,
    /// so the micro-batches of a step (over all ranks) add up to one step on the whole effective batch.</summary>
    public required float LossScale { get; init; }
}

/// <summary>
/// What <see cref="Trainer"/> minimises. Per optimizer step the trainer calls <see cref="BeginStep"/>, zeroes the model's
/// gradients, calls <see cref="ForwardBackward"/> once per micro-batch (which ACCUMULATES the model's gradients, scaled by
/// <see cref="MicroBatch.LossScale"/>), all-reduces the model's gradients over the ranks, applies AdamW to the model and then
/// calls <see cref="EndStep"/> (where an objective updates parameters of its own: a projection, a peer model).
/// The default is <see cref="SupervisedObjective"/> (weighted BCE against the labels); distillation
/// (<c>Distiller</c>) and co-training (<c>MutualLearning</c>) implement it too.
/// </summary>
public interface ITrainingObjective
{
    /// <summary>The model whose gradients <see cref="ForwardBackward"/> fills: the trainer's model.</summary>
    RecModel Model { get; }

    /// <summary>True when the objective trains parameters of its own (stepped in <see cref="EndStep"/>). Such a run cannot
    /// write resumable checkpoints: they would hold the model's weights only.</summary>
    bool HasOwnParameters { get; }

    /// <summary>A step begins: zero the objective's own gradients.</summary>
    void BeginStep(int step);

    /// <summary>Forward and backward of one micro-batch: accumulates <see cref="Model"/>'s gradients (and the objective's own),
    /// scaled by <see cref="MicroBatch.LossScale"/>; returns the scaled loss.</summary>
    /// <exception cref="NonFiniteLossException">the loss is not finite.</exception>
    float ForwardBackward(in MicroBatch mb);

    /// <summary>After the model's AdamW step: all-reduce the objective's own gradients over <paramref name="comm"/> and update
    /// its own parameters with <paramref name="opt"/> (the step's scheduled rate).</summary>
    void EndStep(AdamWOptions opt, int step, ICollective comm);

    /// <summary>The trainer just kept the model's weights as the best so far: keep the objective's own (peer) weights too.</summary>
    void SnapshotBest() { }

    /// <summary>The trainer just restored the model's best weights: restore the objective's own from <see cref="SnapshotBest"/>.</summary>
    void RestoreBest() { }
}

/// <summary>The default objective: the weighted BCE of the model's logits against the labels
/// (<see cref="RecModel.ForwardBackward"/>), with the trainer's dropout key.</summary>
public sealed class SupervisedObjective(RecModel model) : ITrainingObjective
{
    /// <inheritdoc/>
    public RecModel Model { get; } = model ?? throw new ArgumentNullException(nameof(model));
    /// <inheritdoc/>
    public bool HasOwnParameters => false;
    /// <inheritdoc/>
    public void BeginStep(int step) { }
    /// <inheritdoc/>
    public float ForwardBackward(in MicroBatch mb) => Model.ForwardBackward(mb.Batch, mb.DropoutKey, mb.Step, lossScale: mb.LossScale);
    /// <inheritdoc/>
    public void EndStep(AdamWOptions opt, int step, ICollective comm) { }
}
