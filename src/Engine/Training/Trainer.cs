// Fine-tunes a Recommender: AdamW with warmup/decay, accumulation, freezing + activation cache, early stopping, resume.
using System.Diagnostics;
using FastRec.Engine.Data;
using FastRec.Engine.Metrics;
using FastRec.Engine.Model;
using FastRec.Kernels;
using FastRec.Kernels.Distributed;

namespace FastRec.Engine.Training;

/// <summary>
/// The training loop. One optimizer step = <see cref="TrainerOptions.GradientAccumulation"/> micro-batches of
/// <see cref="TrainerOptions.BatchSize"/> examples taken in the epoch's order, each weighted by its share of the step's
/// total example weight, so the update equals one on the whole effective batch; then global-norm clipping and AdamW at
/// the scheduled rate (<see cref="LrSchedule"/>). Frozen tensors get no gradient and no update; with
/// <see cref="TrainerOptions.ActivationCache"/> the frozen layers run once per example (<see cref="ActivationCache"/>).
/// <para>Determinism: the example order of epoch e is a Fisher–Yates shuffle keyed by (seed, e), dropout of micro-batch m
/// of step s by (seed, s, m), the head's initialisation by the seed; so the same seed, backend and thread count give the
/// same losses, and a run resumed from a checkpoint ends with the same weights as an uninterrupted one.</para>
/// <para>Data parallelism (<see cref="TrainerOptions.Collective"/> with N ranks): every rank runs this loop on the same data;
/// a step's N·BatchSize·GradientAccumulation examples are split by <see cref="ShardOf"/>, each rank back-propagates its
/// shard weighted by the whole step's example weight, the gradients (the trainable span of the one flat buffer) are summed
/// by one all-reduce, and every rank applies the same AdamW step. Validation is sharded the same way and its logits summed
/// (all-gathered) so every rank takes the same early-stopping decisions. Rank 0 alone writes checkpoints and reports
/// progress. Dropout of rank r ≥ 1 is keyed by r too.</para>
/// <para>The loss is pluggable (<see cref="ITrainingObjective"/>): by default the supervised BCE
/// (<see cref="SupervisedObjective"/>); distillation and co-training plug in theirs and so get the same accumulation, early
/// stopping, progress reporting and data parallelism. A custom objective runs without the activation cache, and one with
/// parameters of its own (a projection, a peer model) without checkpoints.</para>
/// </summary>
public sealed class Trainer
{
    private readonly Recommender _rec;
    private readonly RecModel _model;
    private TrainingState _state;
    private bool _resumed;
    private readonly ICollective _comm;
    private readonly ITrainingObjective _objective;
    private readonly float[] _one = new float[1];
    private float[] _hostParams = [];

    /// <summary>The options.</summary>
    public TrainerOptions Options { get; }
    /// <summary>The run's state (history included); live during <see cref="Fit"/>.</summary>
    public TrainingState State => _state;
    /// <summary>The recommender being trained.</summary>
    public Recommender Recommender => _rec;
    /// <summary>What each step minimises (<see cref="SupervisedObjective"/> unless one was given).</summary>
    public ITrainingObjective Objective => _objective;

    /// <summary>Validates the options and applies the freezing and layer-wise LR decay to the model. <paramref name="objective"/>
    /// (null = <see cref="SupervisedObjective"/>) must train <paramref name="recommender"/>'s model.</summary>
    public Trainer(Recommender recommender, TrainerOptions options, ITrainingObjective? objective = null)
    {
        ArgumentNullException.ThrowIfNull(recommender); ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (objective is not null && !ReferenceEquals(objective.Model, recommender.Model))
            throw new ArgumentException("objective: it trains another model than the recommender's", nameof(objective));
        if (objective is { HasOwnParameters: true } && options.CheckpointDir is not null)
            throw new NotSupportedException($"checkpoints (CheckpointDir) of a run whose objective ({objective.GetType().Name}) trains parameters of its own are not supported: they would hold the model's weights only");
        int L = recommender.Model.Layout.NumLayers;
        if (options.Freeze == Freeze.TopK && options.TopK > L)
            throw new ArgumentOutOfRangeException(nameof(options), options.TopK, $"TopK must be in [0, num_hidden_layers = {L}], got {options.TopK}");
        _rec = recommender;
        _model = recommender.Model;
        Options = options;
        _comm = options.Collective ?? new LocalCollective();
        _objective = objective ?? new SupervisedObjective(recommender.Model);
        _model.SetTrainable(options.Freeze, options.TopK);
        _model.SetLrScale(options.LayerLrDecay == 1f ? null : t => options.LrScale(t, L));
        _state = new TrainingState { Seed = options.Seed, Options = options.Fingerprint().ToDictionary(p => p.Name, p => p.Value) };
    }

    /// <summary>
    /// Continues the interrupted run <paramref name="state"/> (from <see cref="Checkpoint.Load"/>, whose weights and Adam
    /// moments are already in the model). Refuses a finished run and options that differ from the run's, naming them.
    /// </summary>
    public void Resume(TrainingState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Finished) throw new InvalidOperationException($"the checkpoint's run finished at step {state.Step}; nothing to resume (use it with --init-from to train further)");
        foreach (var (name, value) in Options.Fingerprint())
        {
            if (name is nameof(TrainerOptions.BatchSize) or nameof(TrainerOptions.GradientAccumulation)) continue;   // their product × ranks, below
            if (state.Options.TryGetValue(name, out var was) && was != value)
                throw new ArgumentException($"cannot resume: option {name} was {was} in the interrupted run but is {value} now");
        }
        int before = state.ExamplesPerStep > 0 ? state.ExamplesPerStep : PerStepOf(state.Options);
        if (before > 0 && before != PerStep)
            throw new ArgumentException(
                $"cannot resume: the interrupted run took {before} examples per optimizer step but this one would take {PerStep} " +
                $"(BatchSize {Options.BatchSize} x GradientAccumulation {Options.GradientAccumulation} x {_comm.Size} rank(s)); " +
                "keep BatchSize x GradientAccumulation x ranks the same");
        _state = state;
        _resumed = true;
    }

    /// <summary>Examples per optimizer step over all ranks.</summary>
    private int PerStep => checked(Options.BatchSize * Options.GradientAccumulation * _comm.Size);

    /// <summary>BatchSize × GradientAccumulation of an interrupted run's fingerprint (one rank), 0 when not recorded.</summary>
    private static int PerStepOf(Dictionary<string, string> fingerprint)
    {
        var c = System.Globalization.CultureInfo.InvariantCulture;
        return fingerprint.TryGetValue(nameof(TrainerOptions.BatchSize), out var b) && int.TryParse(b, c, out int bi) &&
               fingerprint.TryGetValue(nameof(TrainerOptions.GradientAccumulation), out var a) && int.TryParse(a, c, out int ai) ? bi * ai : 0;
    }

    private int StepsPerEpoch(int n) => (n + PerStep - 1) / PerStep;

    /// <summary>
    /// Rank <paramref name="rank"/>'s part of <paramref name="length"/> examples shared by <paramref name="size"/> ranks: the
    /// contiguous range [⌊length·rank/size⌋, ⌊length·(rank+1)/size⌋) (sizes differ by at most one; ranks past a short
    /// step's end get nothing). Applied to a step's examples, which are a pure function of (seed, epoch, step), it makes
    /// each rank's shard a pure function of (seed, epoch, step, rank, size).
    /// </summary>
    public static (int Start, int Count) ShardOf(int length, int rank, int size)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), size, $"size must be >= 1, got {size}");
        if (rank < 0 || rank >= size) throw new ArgumentOutOfRangeException(nameof(rank), rank, $"rank must be in [0, {size}), got {rank}");
        if (length < 0) throw new ArgumentOutOfRangeException(nameof(length), length, $"length must be >= 0, got {length}");
        int start = (int)((long)length * rank / size), end = (int)((long)length * (rank + 1) / size);
        return (start, end - start);
    }

    /// <summary>The example order of epoch <paramref name="epoch"/>: a Fisher–Yates shuffle keyed by (seed, epoch).</summary>
    public static int[] EpochOrder(int n, ulong seed, int epoch)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        ulong key = Rng.Hash(seed ^ 0x0DE7_5EED_0000_0003UL, (ulong)epoch);
        for (int i = n - 1; i > 0; i--)
        {
            int j = (int)(Rng.Hash(key, (ulong)i) % (ulong)(i + 1));
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }

    /// <summary>
    /// Trains on <paramref name="train"/>, evaluating on <paramref name="validation"/> (AUC; early stopping and best
    /// weights need it). Returns the state and timings; the model holds the final (or best) weights.
    /// </summary>
    /// <exception cref="NonFiniteLossException">a loss or gradient norm is not finite (the message names the step).</exception>
    public TrainResult Fit(ExampleSet train, ExampleSet? validation, IProgress<TrainProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (train.Count == 0) throw new ArgumentException("the training set is empty");
        if (Options.Patience > 0 && validation is null) throw new ArgumentException("early stopping (Patience > 0) needs a validation set");
        if (validation is not null && validation.Count == 0) throw new ArgumentException("the validation set is empty");
        if (!_rec.Scaler.Fitted)
            _rec.Scaler = FeatureScaler.Fit(train);
        if (_rec.Scaler.Names.Length != _model.Adapter.DenseFeatures)
            throw new InvalidDataException($"the adapter takes {_model.Adapter.DenseFeatures} dense features but the data has {_rec.Scaler.Names.Length} ([{string.Join(", ", _rec.Scaler.Names)}])");
        _rec.Scaler.Check(train);
        if (validation is not null) _rec.Scaler.Check(validation);
        if (_comm.Rank != 0) progress = null;   // rank 0 reports

        int N = train.Count, spe = StepsPerEpoch(N), total = checked(spe * Options.Epochs);
        if (_resumed)
        {
            if (_state.TrainExamples != N)
                throw new ArgumentException($"cannot resume: the interrupted run had {_state.TrainExamples} training examples, this one has {N}");
            if (_state.TotalSteps != total)
                throw new ArgumentException($"cannot resume: the interrupted run had {_state.TotalSteps} steps in all, this one would have {total}");
        }
        else
        {
            _state.TotalSteps = total;
            _state.TrainExamples = N;
        }
        _state.ExamplesPerStep = PerStep;
        _state.Ranks = _comm.Size;
        var (gradOffset, gradLength) = TrainableSpan();
        var schedule = new LrSchedule(Options.LearningRate, total, LrSchedule.WarmupFor(Options.WarmupFraction, total));

        // Tokenise once.
        progress?.Report(new TrainProgress { Phase = TrainPhase.Encoding, Done = 0, Total = N + (validation?.Count ?? 0) });
        var encoder = _rec.EncoderFor(train.Catalog);
        var trainEnc = encoder.Encode(train);
        var valEnc = validation is null ? null : ReferenceEquals(validation.Catalog, train.Catalog) ? encoder.Encode(validation) : _rec.EncoderFor(validation.Catalog).Encode(validation);
        if (trainEnc.Truncated > 0)
            Message(progress, $"{trainEnc.Truncated} of {N} training sequences truncated to {_rec.Text.MaxLength} tokens");

        // Frozen-layer activation cache.
        ActivationCache? trainCache = null, valCache = null;
        double cacheSeconds = 0;
        int layer = Options.ActivationCache && _objective is SupervisedObjective ? ActivationCache.CacheableLayer(_model) : -1;
        if (layer >= 0)
        {
            int L = _model.Layout.NumLayers, C = _model.Bert.HiddenSize;
            var input = _model.Adapter.Input;
            long bytes = ActivationCache.BytesFor(trainEnc, layer, L, C, input) + (valEnc is null ? 0 : ActivationCache.BytesFor(valEnc, layer, L, C, input));
            if (bytes > Options.CacheMaxBytes)
            {
                Message(progress, $"activation cache needs {bytes / (1 << 20)} MiB, above the {Options.CacheMaxBytes / (1 << 20)} MiB limit: training without it");
                layer = -1;
            }
            else
            {
                var sw = Stopwatch.StartNew();
                long all = N + (valEnc?.Count ?? 0), done = 0;
                void Tick(int k)
                {
                    done += k;
                    double rate = done / Math.Max(1e-9, sw.Elapsed.TotalSeconds);
                    progress?.Report(new TrainProgress
                    {
                        Phase = TrainPhase.Caching, Done = done, Total = all, ExamplesPerSecond = rate,
                        Eta = TimeSpan.FromSeconds((all - done) / Math.Max(rate, 1e-9)),
                    });
                }
                trainCache = ActivationCache.Build(_model, train, trainEnc, layer, Options.EvalBatchSize, _rec.PadId, _rec.Scaler, Tick, ct);
                if (validation is not null)
                    valCache = ActivationCache.Build(_model, validation, valEnc!, layer, Options.EvalBatchSize, _rec.PadId, _rec.Scaler, Tick, ct);
                cacheSeconds = sw.Elapsed.TotalSeconds;
            }
        }

        var opt = new AdamWOptions
        {
            Beta1 = Options.Beta1, Beta2 = Options.Beta2, Eps = Options.Eps, WeightDecay = Options.WeightDecay, MaxGradNorm = Options.MaxGradNorm,
        };
        ulong dropSeed = Rng.Hash(Options.Seed, 0xD80_0000UL);
        int perStep = PerStep;
        var timer = Stopwatch.StartNew();
        long examplesDone = 0;
        bool interrupted = false;
        int[] order = EpochOrder(N, Options.Seed, _state.Epoch);
        int orderEpoch = _state.Epoch;

        while (_state.Step < total && !_state.Finished)
        {
            ct.ThrowIfCancellationRequested();
            if (orderEpoch != _state.Epoch) { order = EpochOrder(N, Options.Seed, _state.Epoch); orderEpoch = _state.Epoch; }
            int step = _state.Step + 1;
            var chunk = order.AsSpan(_state.Cursor, Math.Min(perStep, N - _state.Cursor));
            double totalW = 0;
            foreach (int r in chunk) totalW += ExampleWeight(train, r);
            var (shardStart, shardCount) = ShardOf(chunk.Length, _comm.Rank, _comm.Size);
            var shard = chunk.Slice(shardStart, shardCount);
            _objective.BeginStep(step);
            _model.ZeroGrad();
            double stepLoss = 0;
            if (totalW > 0)
            {
                for (int m = 0, s = 0; s < shard.Length; m++, s += Options.BatchSize)
                {
                    var rows = shard.Slice(s, Math.Min(Options.BatchSize, shard.Length - s));
                    double w = 0;
                    foreach (int r in rows) w += ExampleWeight(train, r);
                    if (w == 0) continue;
                    var batch = BatchPacker.Pack(train, trainEnc, rows, _rec.PadId, _rec.Scaler, Options.PositiveWeight, Options.NegativeWeight);
                    trainCache?.Attach(batch, rows, _model.Layout.NumLayers);
                    float share = (float)(w / totalW);
                    ulong dropKey = Rng.Hash(dropSeed, (ulong)step * 4096 + (ulong)m);
                    if (_comm.Rank > 0) dropKey = Rng.Hash(dropKey, (ulong)_comm.Rank);
                    stepLoss += _objective.ForwardBackward(new MicroBatch
                    {
                        Batch = batch, Rows = rows, Step = step, Index = m, Rank = _comm.Rank, DropoutKey = dropKey, LossScale = share,
                    });
                }
                if (_comm.Size > 1)
                {
                    // Each shard was weighted by the whole step's weight: the sum over ranks is the step's gradient and loss.
                    _comm.AllReduceSum(_model.Grads.Slice(gradOffset, gradLength));
                    _one[0] = (float)stepLoss;
                    _comm.AllReduceSum(_one);
                    stepLoss = _one[0];
                }
                float lr = schedule.At(step);
                _model.Step(opt with { Lr = lr }, step);
                _objective.EndStep(opt with { Lr = lr }, step, _comm);
                if (Options.VerifyRanks && _comm.Size > 1) VerifyRanksAgree(step);
            }
            _state.Step = step;
            _state.Cursor += chunk.Length;
            _state.StepLosses.Add((float)stepLoss);
            examplesDone += chunk.Length;
            bool epochEnd = _state.Cursor >= N;
            if (epochEnd) { _state.Epoch++; _state.Cursor = 0; }

            double secs = timer.Elapsed.TotalSeconds;
            progress?.Report(new TrainProgress
            {
                Phase = TrainPhase.Training, Done = step, Total = total, Loss = MeanLoss(Math.Max(0, step - 20), step),
                StepLoss = stepLoss, Epoch = (double)step / spe,
                ExamplesPerSecond = examplesDone / Math.Max(secs, 1e-9), LearningRate = schedule.At(step),
                Eta = TimeSpan.FromSeconds(EtaSeconds(secs, examplesDone, total - step, perStep)),
            });

            bool evalNow = validation is not null &&
                ((Options.EvalEverySteps > 0 && step % Options.EvalEverySteps == 0) || (Options.EvalEverySteps == 0 && epochEnd) || step == total);
            if (evalNow)
            {
                var (vLoss, vAuc) = Evaluate(validation!, valEnc!, valCache, ct);
                int since = _state.Evaluations.Count == 0 ? 0 : _state.Evaluations[^1].Step;
                var point = new EvalPoint(step, (double)step / spe, MeanLoss(since, step), vLoss, vAuc, schedule.At(step), timer.Elapsed.TotalSeconds);
                _state.Evaluations.Add(point);
                if (double.IsNaN(_state.BestAuc) || vAuc > _state.BestAuc)
                {
                    _state.BestAuc = vAuc;
                    _state.BestStep = step;
                    _state.BadEvaluations = 0;
                    if (Options.RestoreBest) { _state.BestWeights = SnapshotTrainable(); _objective.SnapshotBest(); }
                }
                else if (++_state.BadEvaluations >= Options.Patience && Options.Patience > 0)
                {
                    _state.EarlyStopped = true;
                    _state.Finished = true;
                }
                progress?.Report(new TrainProgress { Phase = TrainPhase.Evaluated, Done = step, Total = total, Evaluation = point });
            }
            if (step == total) _state.Finished = true;

            bool stopHere = Options.StopAfterStep == step && !_state.Finished;
            if (Options.CheckpointDir is { } dir && !_state.Finished && _comm.Rank == 0 &&
                (stopHere || (Options.CheckpointEverySteps > 0 && step % Options.CheckpointEverySteps == 0)))
                Checkpoint.Save(_rec, dir, _state, Options);
            if (stopHere) { interrupted = true; break; }
        }

        if (_state.Finished && Options.RestoreBest && _state.BestWeights.Count > 0 && _state.BestStep != _state.Step)
        {
            foreach (var (name, values) in _state.BestWeights) _model.SetParameter(name, values);
            _objective.RestoreBest();
            Message(progress, $"restored the weights of step {_state.BestStep} (best validation AUC {_state.BestAuc:0.0000})");
        }
        return new TrainResult
        {
            State = _state, Interrupted = interrupted, CacheSeconds = cacheSeconds, TrainSeconds = timer.Elapsed.TotalSeconds,
            CachedLayer = trainCache is null ? -1 : layer,
        };
    }

    /// <summary>Mean of the losses of steps (from, to].</summary>
    private double MeanLoss(int from, int to)
    {
        double sum = 0;
        for (int i = from; i < to; i++) sum += _state.StepLosses[i];
        return to > from ? sum / (to - from) : double.NaN;
    }

    private static double EtaSeconds(double secs, long examplesDone, int stepsLeft, int perStep)
        => examplesDone == 0 ? 0 : secs / examplesDone * (long)stepsLeft * perStep;

    private float ExampleWeight(ExampleSet set, int r)
        => set.Weights[r] * (set.Labels[r] >= 0.5f ? Options.PositiveWeight : Options.NegativeWeight);

    /// <summary>The smallest range of the flat gradient buffer that holds every trainable tensor (frozen tensors have no
    /// gradient to sum): (offset, length).</summary>
    private (int Offset, int Length) TrainableSpan()
    {
        int lo = int.MaxValue, hi = 0;
        foreach (var t in _model.Layout.Tensors)
            if (_model.IsTrainable(t.Name)) { lo = Math.Min(lo, t.Offset); hi = Math.Max(hi, t.Offset + t.Length); }
        return lo == int.MaxValue ? (0, 0) : (lo, hi - lo);
    }

    /// <summary>Every rank compares a hash of its parameters with rank 0's; all stop together if any differs.</summary>
    private void VerifyRanksAgree(int step)
    {
        if (_hostParams.Length != _model.Layout.TotalSize) _hostParams = new float[_model.Layout.TotalSize];
        _model.Backend.Download(_model.Params.All, _hostParams);
        ulong hash = 14695981039346656037UL;   // FNV-1a over the bits
        foreach (byte b in System.Runtime.InteropServices.MemoryMarshal.AsBytes(_hostParams.AsSpan())) hash = (hash ^ b) * 1099511628211UL;
        Span<byte> root = stackalloc byte[8];
        BitConverter.TryWriteBytes(root, hash);
        _comm.Broadcast(root, 0);
        _one[0] = BitConverter.ToUInt64(root) == hash ? 0 : 1;
        _comm.AllReduceSum(_one);
        if (_one[0] > 0)
            throw new InvalidOperationException($"the ranks diverged at step {step}: {_one[0]:0} of {_comm.Size} rank(s) hold parameters that differ from rank 0's");
    }

    /// <summary>Validation loss (mean BCE over examples, unweighted) and AUC. With several ranks each scores its shard
    /// (<see cref="ShardOf"/>) and the logits are summed over the ranks (zeros elsewhere), so every rank gets them all: then
    /// it is a collective call, which every rank must make.</summary>
    public (double Loss, double Auc) Evaluate(ExampleSet set, EncodedExamples enc, ActivationCache? cache = null, CancellationToken ct = default)
    {
        float[] logits;
        if (_comm.Size == 1) logits = _rec.PredictLogits(set, enc, Options.EvalBatchSize, cache, ct: ct);
        else
        {
            var (start, count) = ShardOf(set.Count, _comm.Rank, _comm.Size);
            logits = _rec.PredictLogits(set, enc, start, count, Options.EvalBatchSize, cache, ct);
            _comm.AllReduceSum(logits);
        }
        var labels = set.Labels;
        double loss = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            double z = logits[i], y = labels[i];
            loss += Math.Max(z, 0) - z * y + Math.Log(1 + Math.Exp(-Math.Abs(z)));
        }
        var auc = RocAuc.Compute(labels, logits);
        return (loss / logits.Length, auc);
    }

    private Dictionary<string, float[]> SnapshotTrainable()
    {
        var d = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var t in _model.Layout.Tensors)
            if (_model.IsTrainable(t.Name)) d[t.Name] = _model.GetParameter(t.Name);
        return d;
    }

    private static void Message(IProgress<TrainProgress>? progress, string text)
        => progress?.Report(new TrainProgress { Phase = TrainPhase.Message, Message = text });
}
