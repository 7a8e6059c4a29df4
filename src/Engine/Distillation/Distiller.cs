// Knowledge distillation step: teacher outputs (cached), soft-label BCE, hidden-state and attention MSE, student update.
using FastRec.Engine.Model;
using FastRec.Engine.Training;
using FastRec.Kernels;
using FastRec.Kernels.Distributed;

namespace FastRec.Engine.Distillation;

/// <summary>The loss terms of one distillation step (each already multiplied by its weight); <see cref="Total"/> is their sum.</summary>
public readonly record struct DistillLoss(float Total, float Hard, float Soft, float Hidden, float Attention, bool TeacherRan);

/// <summary>
/// Trains a student against one teacher (or the average logits of an ensemble) batch by batch; see <see cref="DistillOptions"/>
/// for the loss. Teacher outputs (logit, and the hidden states / attention of the mapped layers when those terms are on) are
/// computed in evaluation mode once per example and kept in a <see cref="TeacherCache"/>; a batch whose examples are all
/// cached does not run the teacher. The student runs in training mode (dropout keyed by (Seed, step)), gradients flow through
/// <see cref="RecModel.BackwardTaps"/>, and each step ends with the student's AdamW step (and the projection's).
/// Batches must be right-padded (mask 1…1 0…0 per row), as the batch packer makes them.
/// <para>As an <see cref="ITrainingObjective"/> it plugs into <see cref="Trainer"/> (which then owns the schedule, gradient
/// accumulation, early stopping and progress): each micro-batch's terms are scaled by its share of the step's example weight,
/// the projection (if any) is stepped after the student. With accumulation the hidden/attention MSEs are means over each
/// micro-batch's valid positions (weighted by the micro-batch's example share), not over the whole step's; the BCE terms
/// equal the whole batch's exactly. Dropout of micro-batch 0 on rank 0 is keyed by (Seed, step) as in <see cref="Step"/>,
/// other micro-batches and ranks by a hash of (Seed, micro-batch, rank).</para>
/// Dimension letters: B batch, T sequence, C_s / C_t student / teacher hidden width, NH heads.
/// </summary>
public sealed class Distiller : IDisposable, ITrainingObjective
{
    private readonly RecModel _s;
    private readonly RecModel[] _teachers;
    private readonly DistillOptions _o;
    private readonly IBackend _b;
    private readonly (int S, int T)[] _hidden;   // (student hidden index, teacher hidden index)
    private readonly (int S, int T)[] _attn;     // (student layer, teacher layer)
    private readonly int Cs, Ct, NH, Ls;
    private readonly bool _project;
    private readonly DeviceBuffer<float>? _pw, _pg, _pm, _pv;    // projection (C_t·C_s + C_t): W (C_t, C_s) then b (C_t)
    private readonly DeviceBuffer<AdamSegment>? _pseg;
    private readonly DeviceBuffer<float> _pnorm;                 // (1)
    private int _cap = -1, _capT = -1;                           // (B, T) the step buffers are sized for
    private DeviceBuffer<float>? _soft, _losses, _projOut, _dProj;
    private DeviceBuffer<float>[] _hTarget = [], _dHidden = [], _pTarget = [], _dProbs = [];
    private float[] _hostLogits = [], _hostLoss = [];
    private float[][] _hostHidden = [], _hostProbs = [];
    private readonly View<float>[] _dHiddenViews, _dProbsViews;
    private int _projStep, _lastSlots;
    private bool _disposed;
    private readonly List<DistillLoss> _stepLosses = [];

    /// <summary>The teacher-output cache (null when <see cref="DistillOptions.UseCache"/> is off).</summary>
    public TeacherCache? Cache { get; }
    /// <summary>(student hidden index, teacher hidden index) pairs of the hidden-state loss.</summary>
    public IReadOnlyList<(int Student, int Teacher)> HiddenPairs => _hidden;
    /// <summary>(student layer, teacher layer) pairs of the attention loss.</summary>
    public IReadOnlyList<(int Student, int Teacher)> AttentionPairs => _attn;
    /// <summary>Whether hidden states go through a learned projection.</summary>
    public bool Projects => _project;
    /// <summary>The loss terms of every optimizer step run through <see cref="Trainer"/> (summed over the step's micro-batches
    /// of this rank), in step order.</summary>
    public IReadOnlyList<DistillLoss> StepLosses => _stepLosses;

    /// <summary>
    /// A distiller of <paramref name="student"/> from <paramref name="teachers"/> (one, or several whose logits are averaged:
    /// an ensemble distils logits only). <paramref name="exampleCount"/> bounds the example ids given to <see cref="Step"/>.
    /// </summary>
    /// <exception cref="ArgumentException">incompatible models or options; the message names the field.</exception>
    public Distiller(RecModel student, IReadOnlyList<RecModel> teachers, DistillOptions options, int exampleCount)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teachers);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (teachers.Count == 0) throw new ArgumentException("teachers: at least one teacher is needed", nameof(teachers));
        _s = student; _teachers = [.. teachers]; _o = options; _b = student.Backend;
        foreach (var t in _teachers)
        {
            if (t.Bert.VocabSize != student.Bert.VocabSize)
                throw new ArgumentException($"teacher vocab_size {t.Bert.VocabSize} differs from the student's {student.Bert.VocabSize}: they must share the tokenizer");
            if (t.Adapter.DenseFeatures != student.Adapter.DenseFeatures)
                throw new ArgumentException($"teacher takes {t.Adapter.DenseFeatures} dense features, the student {student.Adapter.DenseFeatures}: they must share the data schema");
        }
        var teacher = _teachers[0];
        Cs = student.Bert.HiddenSize; Ct = teacher.Bert.HiddenSize; NH = student.Bert.NumAttentionHeads; Ls = student.Bert.NumHiddenLayers;
        int Lt = teacher.Bert.NumHiddenLayers;
        bool taps = options.HiddenWeight > 0 || options.AttentionWeight > 0;
        if (taps && _teachers.Length > 1)
            throw new ArgumentException("DistillOptions: hidden-state and attention transfer need a single teacher; an ensemble distils its averaged logits only (set HiddenWeight and AttentionWeight to 0)");
        if (taps && Ls > Lt)
            throw new ArgumentException($"DistillOptions: the student has more layers ({Ls}) than the teacher ({Lt}); the uniform layer map needs L_s <= L_t");
        if (options.AttentionWeight > 0 && teacher.Bert.NumAttentionHeads != NH)
            throw new ArgumentException($"DistillOptions.AttentionWeight: attention transfer needs as many student heads as teacher heads ({NH} vs {teacher.Bert.NumAttentionHeads})");
        _hidden = options.HiddenWeight > 0
            ? Enumerable.Range(options.MatchEmbeddings ? 0 : 1, Ls + (options.MatchEmbeddings ? 1 : 0)).Select(m => (m, LayerMap.Hidden(m, Ls, Lt))).ToArray()
            : [];
        _attn = options.AttentionWeight > 0 ? Enumerable.Range(0, Ls).Select(l => (l, LayerMap.Attention(l, Ls, Lt))).ToArray() : [];
        _project = _hidden.Length > 0 && (Cs != Ct || options.Projection == HiddenProjection.Learned);
        _pnorm = _b.Allocate<float>(1);
        if (_project)
        {
            int n = Ct * Cs + Ct;
            _pw = _b.Allocate<float>(n); _pg = _b.Allocate<float>(n); _pm = _b.Allocate<float>(n); _pv = _b.Allocate<float>(n);
            var init = new float[n];
            for (int i = 0; i < Ct * Cs; i++) init[i] = 0.02f * Rng.Normal(options.Seed ^ 0x9E3779B97F4A7C15UL, (ulong)i);
            _b.Upload(_pw.All, init);
            _pseg = _b.Allocate<AdamSegment>(2);
            _b.Upload(_pseg.All, [new AdamSegment(0, Ct * Cs, 1f, options.Optimizer.WeightDecay), new AdamSegment(Ct * Cs, Ct, 1f, 0f)]);
        }
        _dHiddenViews = new View<float>[Ls + 1];
        _dProbsViews = new View<float>[Ls];
        if (options.UseCache) Cache = new TeacherCache(exampleCount, options.CacheBudgetBytes, options.SpillDirectory, options.Log);
    }

    /// <summary>A snapshot of the learned projection (W (C_t, C_s) then b (C_t)), or empty when there is none.</summary>
    public float[] ProjectionParameters()
    {
        if (_pw is null) return [];
        var a = new float[_pw.Length];
        _b.Download(_pw.All, a);
        return a;
    }

    /// <summary>Tests: the weighted loss terms of the last step, on the backend (hard, soft, then one per MSE call).</summary>
    internal View<float> LastLossSlots => _losses!.Slice(0, _lastSlots);
    /// <summary>Tests: the projection's parameters and the last step's gradient (W (C_t, C_s) then b (C_t)).</summary>
    internal (DeviceBuffer<float> Params, DeviceBuffer<float> Grads)? Projection => _pw is null ? null : (_pw, _pg!);

    // ------------------------------------------------------------------ one step

    /// <summary>
    /// One distillation step on <paramref name="batch"/> (labels required) whose rows are examples <paramref name="ids"/>
    /// (ids in [0, exampleCount); may be empty when the cache is off): teacher outputs from the cache or the teacher, the
    /// student's forward/backward on the combined loss, and its AdamW step number <paramref name="step"/> (from 1) at
    /// <paramref name="learningRate"/> (null = <see cref="DistillOptions.Optimizer"/>'s; a schedule passes its rate here).
    /// </summary>
    /// <exception cref="NonFiniteLossException">the loss is not finite.</exception>
    public DistillLoss Step(RecBatch batch, ReadOnlySpan<int> ids, int step, float? learningRate = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _s.ZeroGrad();
        if (_pg is not null) _b.Zero(_pg.All);
        var loss = Accumulate(batch, ids, step, _o.Seed, 1f);
        var opt = learningRate is { } lr ? _o.Optimizer with { Lr = lr } : _o.Optimizer;
        _s.Step(opt, step);
        if (_project) ProjectionStep(opt);
        return loss;
    }

    // ------------------------------------------------------------------ as the Trainer's objective

    /// <inheritdoc/>
    RecModel ITrainingObjective.Model => _s;
    /// <inheritdoc/>
    bool ITrainingObjective.HasOwnParameters => _project;

    /// <inheritdoc/>
    void ITrainingObjective.BeginStep(int step)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_pg is not null) _b.Zero(_pg.All);
        _stepLosses.Add(default);
    }

    /// <inheritdoc/>
    float ITrainingObjective.ForwardBackward(in MicroBatch mb)
    {
        ulong seed = mb.Index == 0 && mb.Rank == 0 ? _o.Seed : Rng.Hash(Rng.Hash(_o.Seed, (ulong)mb.Index), (ulong)mb.Rank);
        var r = Accumulate(mb.Batch, mb.Rows, mb.Step, seed, mb.LossScale);
        var s = _stepLosses[^1];
        _stepLosses[^1] = new DistillLoss(s.Total + r.Total, s.Hard + r.Hard, s.Soft + r.Soft, s.Hidden + r.Hidden, s.Attention + r.Attention,
                                          s.TeacherRan || r.TeacherRan);
        return r.Total;
    }

    /// <inheritdoc/>
    void ITrainingObjective.EndStep(AdamWOptions opt, int step, ICollective comm)
    {
        if (!_project) return;
        if (comm.Size > 1) comm.AllReduceSum(_pg!.All);
        ProjectionStep(opt);
    }

    /// <summary>The student's (and projection's) forward/backward on the combined loss scaled by <paramref name="scale"/>,
    /// ACCUMULATING gradients; no update.</summary>
    private DistillLoss Accumulate(RecBatch batch, ReadOnlySpan<int> ids, int step, ulong dropoutSeed, float scale)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(batch);
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, $"step counts from 1, got {step}");
        if (batch.Labels is not { Length: > 0 }) throw new ArgumentException("batch: distillation needs the labels of the hard (BCE) term", nameof(batch));
        int B = batch.B, T = batch.T;
        if (Cache is not null && ids.Length != B)
            throw new ArgumentException($"ids: expected one example id per batch row (B = {B}), got {ids.Length}", nameof(ids));
        Span<int> n = stackalloc int[B];
        ValidLengths(batch, n);
        Ensure(B, T);

        bool teacherRan = TeacherOutputs(batch, ids, n);

        // soft targets σ(t/T) (B)
        var soft = new float[B];
        for (int b = 0; b < B; b++) soft[b] = (float)(1.0 / (1.0 + Math.Exp(-(double)_hostLogits[b] / _o.Temperature)));
        _b.Upload(_soft!.Slice(0, B), soft);
        for (int k = 0; k < _hidden.Length; k++) _b.Upload(_hTarget[k].Slice(0, B * T * Ct), _hostHidden[k].AsSpan(0, B * T * Ct));
        for (int k = 0; k < _attn.Length; k++) _b.Upload(_pTarget[k].Slice(0, B * NH * T * T), _hostProbs[k].AsSpan(0, B * NH * T * T));

        // student forward (training mode) and the loss gradients
        _s.ForwardTaps(batch, training: true, dropoutSeed, step);
        var dLogits = _s.TapLogitsGrad;
        var logits = _s.TapLogits;
        float a = _o.Alpha, temp = _o.Temperature;
        _b.BceForwardBackward(_losses!.Slice(0, 1), dLogits, logits, _s.TapLabels, _s.TapWeights, B, 1f, (1f - a) * scale, accumulate: false);
        _b.BceForwardBackward(_losses.Slice(1, 1), dLogits, logits, _soft.Slice(0, B), _s.TapWeights, B, temp, a * temp * temp * scale, accumulate: true);
        int slot = 2;
        long validTokens = 0, validPairs = 0;
        for (int b = 0; b < B; b++) { validTokens += n[b]; validPairs += (long)n[b] * n[b]; }

        Array.Clear(_dHiddenViews);
        for (int k = 0; k < _hidden.Length; k++)
        {
            var (si, _) = _hidden[k];
            var hs = _s.TapHidden(si);                                                     // (B, T, C_s)
            var dHs = _dHidden[k].Slice(0, B * T * Cs);
            var target = _hTarget[k].Slice(0, B * T * Ct);
            View<float> pred = hs, dPred = dHs;
            if (_project)
            {
                pred = _projOut!.Slice(0, B * T * Ct);
                dPred = _dProj!.Slice(0, B * T * Ct);
                _b.LinearForward(pred, hs, _pw!.Slice(0, Ct * Cs), _pw.Slice(Ct * Cs, Ct), B * T, Cs, Ct);   // (B, T, C_t)
            }
            _b.Zero(dPred);   // padding rows get no gradient
            float w = _o.HiddenWeight / _hidden.Length;
            for (int b = 0; b < B; b++)
            {
                int len = n[b] * Ct;
                _b.MseForwardBackward(_losses.Slice(slot++, 1), dPred.Slice((long)b * T * Ct, len), pred.Slice((long)b * T * Ct, len),
                    target.Slice((long)b * T * Ct, len), len, w * n[b] / validTokens * scale, accumulate: false);
            }
            if (_project)   // δh_s (assigned) = δproj · W; δW += δprojᵀ · h_s; δb += Σ δproj
                _b.LinearBackward(dHs, _pg!.Slice(0, Ct * Cs), _pg.Slice(Ct * Cs, Ct), dPred, hs, _pw!.Slice(0, Ct * Cs), B * T, Cs, Ct);
            _dHiddenViews[si] = dHs;
        }

        Array.Clear(_dProbsViews);
        for (int k = 0; k < _attn.Length; k++)
        {
            var (sl, _) = _attn[k];
            var ps = _s.TapAttentionProbs(sl);                                             // (B, NH, T, T)
            var dPs = _dProbs[k].Slice(0, B * NH * T * T);
            var target = _pTarget[k].Slice(0, B * NH * T * T);
            _b.Zero(dPs);
            float w = _o.AttentionWeight / _attn.Length;
            for (int b = 0; b < B; b++)
                for (int h = 0; h < NH; h++)
                {
                    long off = ((long)b * NH + h) * T * T;
                    int len = n[b] * T;   // query rows i < n; keys j >= n are 0 on both sides
                    _b.MseForwardBackward(_losses.Slice(slot++, 1), dPs.Slice(off, len), ps.Slice(off, len), target.Slice(off, len), len,
                        w * len / ((float)NH * validPairs) * scale, accumulate: false);
                }
            _dProbsViews[sl] = dPs;
        }

        _s.BackwardTaps(_dHiddenViews, _dProbsViews);

        // losses (one download), then the updates
        _lastSlots = slot;
        _b.Download(_losses.Slice(0, slot), _hostLoss.AsSpan(0, slot));
        float hard = _hostLoss[0], softL = _hostLoss[1], hid = 0, att = 0;
        int at = 2;
        for (int k = 0; k < _hidden.Length * B; k++) hid += _hostLoss[at++];
        for (int k = 0; k < _attn.Length * B * NH; k++) att += _hostLoss[at++];
        float total = hard + softL + hid + att;
        if (!float.IsFinite(total)) throw new NonFiniteLossException(step, total, "distillation loss");
        return new DistillLoss(total, hard, softL, hid, att, teacherRan);
    }

    private void ProjectionStep(AdamWOptions opt)
    {
        _b.GlobalNorm(_pnorm.All, _pg!.All);
        _b.AdamW(_pw!.All, _pg.All, _pm!.All, _pv!.All, _pseg!.All, _pnorm.All, opt.MaxGradNorm, opt.Lr, opt.Beta1, opt.Beta2, opt.Eps, ++_projStep);
    }

    /// <summary>Valid (unpadded) length of each row; refuses a mask that is not 1…1 0…0.</summary>
    private static void ValidLengths(RecBatch batch, Span<int> n)
    {
        int T = batch.T;
        var m = batch.AttentionMask;
        for (int b = 0; b < batch.B; b++)
        {
            int len = 0;
            while (len < T && m[b * T + len] != 0f) len++;
            for (int t = len; t < T; t++)
                if (m[b * T + t] != 0f)
                    throw new ArgumentException($"batch: distillation needs right-padded rows (mask 1…1 0…0), but row {b} has a real token at t = {t} after padding at t = {len}", nameof(batch));
            if (len == 0) throw new ArgumentException($"batch: row {b} has no real token", nameof(batch));
            n[b] = len;
        }
    }

    // ------------------------------------------------------------------ teacher outputs

    /// <summary>Fills _hostLogits (B) and the host targets for the mapped layers; returns whether the teacher ran.</summary>
    private bool TeacherOutputs(RecBatch batch, ReadOnlySpan<int> ids, ReadOnlySpan<int> n)
    {
        int B = batch.B, T = batch.T;
        bool allCached = Cache is not null;
        if (allCached)
            for (int b = 0; b < B; b++)
                if (!Cache!.Contains(ids[b])) { allCached = false; break; }
        if (allCached)
        {
            foreach (var h in _hostHidden) Array.Clear(h, 0, B * T * Ct);
            foreach (var p in _hostProbs) Array.Clear(p, 0, B * NH * T * T);
            for (int b = 0; b < B; b++)
            {
                var rec = new float[RecordLength(n[b])];
                int len = Cache!.Length(ids[b]);
                if (len != rec.Length)
                    throw new InvalidDataException($"teacher cache: example {ids[b]} was cached with a record of {len} floats but now needs {rec.Length} (its length changed from one epoch to the next)");
                Cache.Read(ids[b], rec);
                Unpack(rec, b, n[b], T);
            }
            return false;
        }

        // run the teacher(s) in evaluation mode
        Array.Clear(_hostLogits, 0, B);
        var z = new float[B];
        for (int i = 0; i < _teachers.Length; i++)
        {
            var t = _teachers[i];
            if (i == 0 && (_hidden.Length > 0 || _attn.Length > 0))
            {
                t.ForwardTaps(batch, training: false);
                t.Backend.Download(t.TapLogits, z);
                for (int k = 0; k < _hidden.Length; k++) t.Backend.Download(t.TapHidden(_hidden[k].T), _hostHidden[k].AsSpan(0, B * T * Ct));
                for (int k = 0; k < _attn.Length; k++) t.Backend.Download(t.TapAttentionProbs(_attn[k].T), _hostProbs[k].AsSpan(0, B * NH * T * T));
            }
            else z = t.Forward(batch);
            for (int b = 0; b < B; b++) _hostLogits[b] += z[b];
        }
        if (_teachers.Length > 1)
            for (int b = 0; b < B; b++) _hostLogits[b] /= _teachers.Length;
        if (Cache is not null)
            for (int b = 0; b < B; b++)
            {
                if (Cache.Contains(ids[b])) continue;
                var rec = new float[RecordLength(n[b])];
                Pack(rec, b, n[b], T);
                Cache.Store(ids[b], rec);
            }
        return true;
    }

    /// <summary>Floats of one example's record: logit, n·C_t per hidden pair, NH·n·n per attention pair.</summary>
    private int RecordLength(int n) => 1 + _hidden.Length * n * Ct + _attn.Length * NH * n * n;

    private void Pack(Span<float> rec, int b, int n, int T)
    {
        rec[0] = _hostLogits[b];
        int o = 1;
        foreach (var h in _hostHidden)
        {
            h.AsSpan(b * T * Ct, n * Ct).CopyTo(rec[o..]);
            o += n * Ct;
        }
        foreach (var p in _hostProbs)
            for (int head = 0; head < NH; head++)
                for (int i = 0; i < n; i++)
                {
                    p.AsSpan(((b * NH + head) * T + i) * T, n).CopyTo(rec[o..]);
                    o += n;
                }
    }

    private void Unpack(ReadOnlySpan<float> rec, int b, int n, int T)
    {
        _hostLogits[b] = rec[0];
        int o = 1;
        foreach (var h in _hostHidden)
        {
            rec.Slice(o, n * Ct).CopyTo(h.AsSpan(b * T * Ct));
            o += n * Ct;
        }
        foreach (var p in _hostProbs)
            for (int head = 0; head < NH; head++)
                for (int i = 0; i < n; i++)
                {
                    rec.Slice(o, n).CopyTo(p.AsSpan(((b * NH + head) * T + i) * T));
                    o += n;
                }
    }

    // ------------------------------------------------------------------ buffers

    /// <summary>Sizes the step buffers for (B, T); grown only when a larger shape arrives.</summary>
    private void Ensure(int B, int T)
    {
        if (B <= _cap && T <= _capT) return;
        int nb = Math.Max(B, _cap), nt = Math.Max(T, _capT);
        FreeStepBuffers();
        _cap = nb; _capT = nt;
        long bt = (long)nb * nt;
        _soft = _b.Allocate<float>(nb);
        int slots = 2 + _hidden.Length * nb + _attn.Length * nb * NH;
        _losses = _b.Allocate<float>(slots);
        _hostLoss = new float[slots];
        _hostLogits = new float[nb];
        _hTarget = _hidden.Select(_ => _b.Allocate<float>(bt * Ct)).ToArray();
        _dHidden = _hidden.Select(_ => _b.Allocate<float>(bt * Cs)).ToArray();
        _hostHidden = _hidden.Select(_ => new float[bt * Ct]).ToArray();
        long pp = (long)nb * NH * nt * nt;
        _pTarget = _attn.Select(_ => _b.Allocate<float>(pp)).ToArray();
        _dProbs = _attn.Select(_ => _b.Allocate<float>(pp)).ToArray();
        _hostProbs = _attn.Select(_ => new float[pp]).ToArray();
        if (_project)
        {
            _projOut = _b.Allocate<float>(bt * Ct);
            _dProj = _b.Allocate<float>(bt * Ct);
        }
    }

    private void FreeStepBuffers()
    {
        _soft?.Dispose(); _losses?.Dispose(); _projOut?.Dispose(); _dProj?.Dispose();
        foreach (var d in _hTarget.Concat(_dHidden).Concat(_pTarget).Concat(_dProbs)) d.Dispose();
    }

    /// <summary>Frees the step buffers, the projection and the cache (not the models).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        FreeStepBuffers();
        _pw?.Dispose(); _pg?.Dispose(); _pm?.Dispose(); _pv?.Dispose(); _pseg?.Dispose(); _pnorm.Dispose();
        Cache?.Dispose();
    }
}
