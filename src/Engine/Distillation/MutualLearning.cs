// Deep mutual learning: two models trained together, each on BCE plus the soft-label loss towards the other's predictions.
using FastRec.Engine.Model;
using FastRec.Engine.Training;
using FastRec.Kernels;
using FastRec.Kernels.Distributed;

namespace FastRec.Engine.Distillation;

/// <summary>The losses of one co-training step (weighted terms of each model).</summary>
public readonly record struct MutualLoss(float TotalA, float TotalB, float HardA, float SoftA, float HardB, float SoftB);

/// <summary>
/// Deep mutual learning (Zhang et al., 2018) for the one-logit recommendation head: models A and B see the same batch; each
/// minimises <c>(1−α)·BCE(y, z) + α·T²·BCE(σ(z_other/T), σ(z/T))</c> where z_other is the other model's logit from the same
/// step, treated as a constant (both forwards run before either update). <see cref="DistillOptions.Alpha"/>,
/// <see cref="DistillOptions.Temperature"/>, <see cref="DistillOptions.Optimizer"/> and <see cref="DistillOptions.Seed"/>
/// apply; hidden/attention weights are ignored. The models may differ in size and live on different backends.
/// <para>As an <see cref="ITrainingObjective"/> it plugs into <see cref="Trainer"/> training model A: model B is the objective's
/// own parameters, updated with the same AdamW options and scheduled rate right after A's step (its gradients all-reduced
/// over the ranks first), and kept / restored with A's best weights. Early stopping and the best weights follow A's
/// validation AUC. Dropout of micro-batch 0 on rank 0 is keyed by (Seed, step) and (Seed + 1, step) as in
/// <see cref="Step"/>, other micro-batches and ranks by a hash of (Seed, micro-batch, rank) (+ 1 for B).</para>
/// </summary>
public sealed class MutualLearning : IDisposable, ITrainingObjective
{
    private readonly RecModel _a, _bm;
    private readonly DistillOptions _o;
    private readonly DeviceBuffer<float> _lossA, _lossB;   // (2) each: hard, soft
    private DeviceBuffer<float>? _softA, _softB;           // (B) targets σ(z_other/T) on each model's backend
    private int _cap;
    private readonly float[] _scalars = new float[2];
    private bool _disposed;
    private readonly List<MutualLoss> _stepLosses = [];
    private float[]? _bestB;

    /// <summary>The losses of every optimizer step run through <see cref="Trainer"/> (summed over the step's micro-batches of
    /// this rank), in step order.</summary>
    public IReadOnlyList<MutualLoss> StepLosses => _stepLosses;
    /// <summary>Model B (the peer that <see cref="Trainer"/> does not own).</summary>
    public RecModel Peer => _bm;

    /// <summary>Models A and B (distinct instances) trained together with <paramref name="options"/>.</summary>
    public MutualLearning(RecModel a, RecModel b, DistillOptions options)
    {
        ArgumentNullException.ThrowIfNull(a); ArgumentNullException.ThrowIfNull(b); ArgumentNullException.ThrowIfNull(options);
        if (ReferenceEquals(a, b)) throw new ArgumentException("b: mutual learning needs two distinct models", nameof(b));
        if (a.Adapter.DenseFeatures != b.Adapter.DenseFeatures || a.Bert.VocabSize != b.Bert.VocabSize)
            throw new ArgumentException("b: both models must share the tokenizer (vocab_size) and the dense features", nameof(b));
        options.Validate();
        _a = a; _bm = b; _o = options;
        _lossA = a.Backend.Allocate<float>(2);
        _lossB = b.Backend.Allocate<float>(2);
    }

    /// <summary>One step on <paramref name="batch"/> (labels required): both forwards (training mode, dropout seeds Seed and
    /// Seed + 1), both losses and backwards, both AdamW steps number <paramref name="step"/> at <paramref name="learningRate"/>
    /// (null = the options').</summary>
    /// <exception cref="NonFiniteLossException">a loss is not finite.</exception>
    public MutualLoss Step(RecBatch batch, int step, float? learningRate = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _a.ZeroGrad(); _bm.ZeroGrad();
        var r = Accumulate(batch, step, _o.Seed, 1f);
        var opt = learningRate is { } lr ? _o.Optimizer with { Lr = lr } : _o.Optimizer;
        _a.Step(opt, step);
        _bm.Step(opt, step);
        return r;
    }

    // ------------------------------------------------------------------ as the Trainer's objective (it trains A)

    /// <inheritdoc/>
    RecModel ITrainingObjective.Model => _a;
    /// <inheritdoc/>
    bool ITrainingObjective.HasOwnParameters => true;

    /// <inheritdoc/>
    void ITrainingObjective.BeginStep(int step)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _bm.ZeroGrad();
        _stepLosses.Add(default);
    }

    /// <inheritdoc/>
    float ITrainingObjective.ForwardBackward(in MicroBatch mb)
    {
        ulong seed = mb.Index == 0 && mb.Rank == 0 ? _o.Seed : Rng.Hash(Rng.Hash(_o.Seed, (ulong)mb.Index), (ulong)mb.Rank);
        var r = Accumulate(mb.Batch, mb.Step, seed, mb.LossScale);
        var s = _stepLosses[^1];
        _stepLosses[^1] = new MutualLoss(s.TotalA + r.TotalA, s.TotalB + r.TotalB, s.HardA + r.HardA, s.SoftA + r.SoftA, s.HardB + r.HardB, s.SoftB + r.SoftB);
        return r.TotalA;
    }

    /// <inheritdoc/>
    void ITrainingObjective.EndStep(AdamWOptions opt, int step, ICollective comm)
    {
        if (comm.Size > 1) comm.AllReduceSum(_bm.Grads.All);
        _bm.Step(opt, step);
    }

    /// <inheritdoc/>
    void ITrainingObjective.SnapshotBest()
    {
        _bestB ??= new float[_bm.Layout.TotalSize];
        _bm.Backend.Download(_bm.Params.All, _bestB);
    }

    /// <inheritdoc/>
    void ITrainingObjective.RestoreBest()
    {
        if (_bestB is not null) _bm.Backend.Upload(_bm.Params.All, _bestB);
    }

    /// <summary>Both forwards (dropout seeds <paramref name="seed"/> and <paramref name="seed"/> + 1), both losses scaled by
    /// <paramref name="scale"/> and both backwards, ACCUMULATING each model's gradients; no update.</summary>
    private MutualLoss Accumulate(RecBatch batch, int step, ulong seed, float scale)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Labels is not { Length: > 0 }) throw new ArgumentException("batch: co-training needs labels", nameof(batch));
        int B = batch.B;
        if (B > _cap)
        {
            _softA?.Dispose(); _softB?.Dispose();
            _softA = _a.Backend.Allocate<float>(B);
            _softB = _bm.Backend.Allocate<float>(B);
            _cap = B;
        }
        _a.ForwardTaps(batch, training: true, seed, step);
        var za = new float[B];
        _a.Backend.Download(_a.TapLogits, za);
        // B's forward overwrites nothing of A's (separate models), so both sets of activations stay valid.
        _bm.ForwardTaps(batch, training: true, seed + 1, step);
        var zb = new float[B];
        _bm.Backend.Download(_bm.TapLogits, zb);

        var (hardA, softA) = Side(_a, _lossA, _softA!, zb, B, scale);
        var (hardB, softB) = Side(_bm, _lossB, _softB!, za, B, scale);
        float ta = hardA + softA, tb = hardB + softB;
        if (!float.IsFinite(ta)) throw new NonFiniteLossException(step, ta, "co-training loss of model A");
        if (!float.IsFinite(tb)) throw new NonFiniteLossException(step, tb, "co-training loss of model B");
        return new MutualLoss(ta, tb, hardA, softA, hardB, softB);
    }

    /// <summary>Loss gradients of one model towards the labels and the other's logits, then its backward.</summary>
    private (float Hard, float Soft) Side(RecModel m, DeviceBuffer<float> loss, DeviceBuffer<float> soft, float[] other, int B, float scale)
    {
        var be = m.Backend;
        float a = _o.Alpha, t = _o.Temperature;
        var targets = new float[B];
        for (int b = 0; b < B; b++) targets[b] = (float)(1.0 / (1.0 + Math.Exp(-(double)other[b] / t)));
        be.Upload(soft.Slice(0, B), targets);
        be.BceForwardBackward(loss.Slice(0, 1), m.TapLogitsGrad, m.TapLogits, m.TapLabels, m.TapWeights, B, 1f, (1f - a) * scale, accumulate: false);
        be.BceForwardBackward(loss.Slice(1, 1), m.TapLogitsGrad, m.TapLogits, soft.Slice(0, B), m.TapWeights, B, t, a * t * t * scale, accumulate: true);
        m.BackwardTaps();
        be.Download(loss.All, _scalars);
        return (_scalars[0], _scalars[1]);
    }

    /// <summary>Frees the loss buffers (not the models).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _lossA.Dispose(); _lossB.Dispose(); _softA?.Dispose(); _softB?.Dispose();
    }
}
