// TowerModel's training: batches of ratings with their sampled items, the forward and backward of towers and head,
// AdamW, and epoch selection on validation.
using System.Numerics.Tensors;
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Metrics;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;

namespace FastRec.Engine.Representations;

public sealed partial class TowerModel
{
    /// <summary>Host and device buffers of one batch of R rows.</summary>
    private sealed class Batch : IDisposable
    {
        public readonly int Capacity;
        public readonly float[] Rows, Dense, Targets, Weights, DRows, Probs, Dh, Dv, Hist;
        public readonly int[] Items, HistItems, HistCount, Source;
        public readonly float[] HistLabels;
        public readonly DeviceBuffer<float> X, Dn, Pre, Post, Logits, Wide, T, W, DLogits, DPost, DPre, DX, Loss, SoftLoss, Norm;

        public Batch(IBackend b, int cap, int In, int H, int O, int N, int d)
        {
            Capacity = cap;
            Rows = new float[(long)cap * In]; Dense = new float[cap * F]; Targets = new float[cap * O]; Weights = new float[cap * O];
            DRows = new float[(long)cap * In]; Probs = new float[(long)cap * N]; Dh = new float[(long)cap * N * d]; Dv = new float[cap * d];
            Hist = new float[(long)cap * N * d];
            Items = new int[cap]; HistItems = new int[cap * N]; HistCount = new int[cap]; Source = new int[cap]; HistLabels = new float[cap * N];
            X = b.Allocate<float>((long)cap * In); Dn = b.Allocate<float>(cap * F); Pre = b.Allocate<float>((long)cap * H);
            Post = b.Allocate<float>((long)cap * H); Logits = b.Allocate<float>(cap * O); Wide = b.Allocate<float>(cap * O);
            T = b.Allocate<float>(cap * O); W = b.Allocate<float>(cap * O); DLogits = b.Allocate<float>(cap * O);
            DPost = b.Allocate<float>((long)cap * H); DPre = b.Allocate<float>((long)cap * H); DX = b.Allocate<float>((long)cap * In);
            Loss = b.Allocate<float>(1); SoftLoss = b.Allocate<float>(1); Norm = b.Allocate<float>(1);
        }

        public void Dispose()
        {
            foreach (var x in new[] { X, Dn, Pre, Post, Logits, Wide, T, W, DLogits, DPost, DPre, DX, Loss, SoftLoss, Norm }) x.Dispose();
        }
    }

    /// <summary>Builds row q of a batch: user <paramref name="user"/> at time <paramref name="t"/> against <paramref name="item"/>.</summary>
    private void BuildRow(Batch bt, int q, int user, long t, int item)
    {
        var before = _window.Before(user, t);
        int n = Math.Min(N, before.Count), s = before.Count - n;
        var items = bt.HistItems.AsSpan(q * N, n); var labels = bt.HistLabels.AsSpan(q * N, n);
        before.Items.Slice(s, n).CopyTo(items);
        before.Labels.Slice(s, n).CopyTo(labels);
        bt.HistCount[q] = n; bt.Items[q] = item;
        var f = bt.Dense.AsSpan(q * F, F);
        Features(before, item, t, f);
        bool cold = f[3] == 0;   // ln(1 + 0): no interaction with the item before t
        for (int c = 0; c < F; c++) f[c] = (float)((f[c] - _mean[c]) / _std[c]);
        var h = bt.Hist.AsSpan(q * N * d, N * d);
        Span<float> um = stackalloc float[d];
        TowerMath.History(_vall, _host.AsSpan(_oE, 2 * d), d, items, labels, h, um);
        TowerMath.Row(h, n, um, _vall.AsSpan(item * d, d), cold, f, bt.Rows.AsSpan((int)((long)q * In), In), bt.Probs.AsSpan(q * N, N));
    }

    /// <summary>Rows of a training batch: ratings order[s..s+B), each followed by its K sampled items.</summary>
    private readonly struct TrainRowsJob(TowerModel m, Batch bt, ExampleSet set, int[] order, int s, int epoch) : IParallelRangeJob
    {
        public void Execute(int start, int end, int part)
        {
            int K = m.Options.Negatives, O = m.O;
            for (int q = start; q < end; q++)
            {
                int k = order[s + q / (1 + K)], j = q % (1 + K);
                int item = j == 0 ? set.Items[k] : m.SampledItem(set.Items[k], k, j, epoch);
                m.BuildRow(bt, q, set.Users[k], set.Timestamps[k], item);
                bt.Source[q] = k;
                float w = set.Weights[k], alpha = m.Options.ExposureWeight;
                bt.Targets[q * O] = j == 0 ? set.Labels[k] : 0;
                bt.Weights[q * O] = j == 0 ? w : 0;
                if (O == 2) { bt.Targets[q * O + 1] = j == 0 ? 1 : 0; bt.Weights[q * O + 1] = alpha; }
            }
        }
    }

    /// <summary>Rows of ratings rows[s..s+n) of a set, no sampled items (evaluation).</summary>
    private readonly struct EvalRowsJob(TowerModel m, Batch bt, ExampleSet set, int[] rows, int s) : IParallelRangeJob
    {
        public void Execute(int start, int end, int part)
        {
            for (int q = start; q < end; q++)
            {
                int k = rows[s + q];
                m.BuildRow(bt, q, set.Users[k], set.Timestamps[k], set.Items[k]);
            }
        }
    }

    /// <summary>Backward through the towers of rows [start, end): δh and δv per row (scattered afterwards, in row order).</summary>
    private readonly struct TowerBackwardJob(TowerModel m, Batch bt) : IParallelRangeJob
    {
        public void Execute(int start, int end, int part)
        {
            int d = m.d, N = m.N, In = m.In;
            Span<float> scratch = stackalloc float[3 * d];
            for (int q = start; q < end; q++)
                TowerMath.RowBackward(bt.DRows.AsSpan((int)((long)q * In), In), bt.Rows.AsSpan((int)((long)q * In), In),
                    bt.Hist.AsSpan((int)((long)q * N * d), N * d), bt.HistCount[q], bt.Probs.AsSpan(q * N, N),
                    bt.Dh.AsSpan((int)((long)q * N * d), N * d), bt.Dv.AsSpan(q * d, d), scratch);
        }
    }

    /// <summary>Logits (R, O) of the rows in bt.X / bt.Dn.</summary>
    private void HeadForward(Batch bt, int R)
    {
        _b.LinearForward(bt.Pre.Slice(0, R * H), bt.X.Slice(0, R * In), P(_oW1, H * In), P(_oB1, H), R, In, H);       // (R, H)
        _b.ActivationForward(Activation.Relu, bt.Post.Slice(0, R * H), bt.Pre.Slice(0, R * H));
        _b.LinearForward(bt.Logits.Slice(0, R * O), bt.Post.Slice(0, R * H), P(_oW2, O * H), P(_oB2, O), R, H, O);    // (R, O)
        _b.LinearForward(bt.Wide.Slice(0, R * O), bt.Dn.Slice(0, R * F), P(_oWw, O * F), P(_oBw, O), R, F, O);       // (R, O)
        _b.Copy2D(bt.Logits.Slice(0, R * O), O, 0, bt.Wide.Slice(0, R * O), O, 0, R, O, accumulate: true);
    }

    /// <summary>Loss of the R rows in the batch and the gradient of every parameter, assigned to the gradient buffer.</summary>
    private float ForwardBackward(Batch bt, int R, SoftTargets? soft = null)
    {
        _b.Upload(bt.X.Slice(0, R * In), bt.Rows.AsSpan(0, R * In)); _b.Upload(bt.Dn.Slice(0, R * F), bt.Dense.AsSpan(0, R * F));
        _b.Upload(bt.T.Slice(0, R * O), bt.Targets.AsSpan(0, R * O)); _b.Upload(bt.W.Slice(0, R * O), bt.Weights.AsSpan(0, R * O));
        HeadForward(bt, R);
        _b.BceForwardBackward(bt.Loss.Slice(0, 1), bt.DLogits.Slice(0, R * O), bt.Logits.Slice(0, R * O), bt.T.Slice(0, R * O), bt.W.Slice(0, R * O), R * O);
        if (soft is not null)
        {
            // Deep mutual learning: also fit the peer's softened probabilities σ(z_peer/T) on the same rows and weights,
            // loss scaled by α·T² (Hinton's convention, so the gradient's size does not depend on T).
            _b.Upload(bt.T.Slice(0, R * O), soft.Probabilities.AsSpan(0, R * O));
            _b.BceForwardBackward(bt.SoftLoss.Slice(0, 1), bt.DLogits.Slice(0, R * O), bt.Logits.Slice(0, R * O), bt.T.Slice(0, R * O), bt.W.Slice(0, R * O), R * O,
                soft.Temperature, soft.Weight * soft.Temperature * soft.Temperature, accumulate: true);
        }
        _b.Zero(_g.All);
        _b.LinearBackward(bt.DPost.Slice(0, R * H), G(_oW2, O * H), G(_oB2, O), bt.DLogits.Slice(0, R * O), bt.Post.Slice(0, R * H), P(_oW2, O * H), R, H, O);
        _b.ActivationBackward(Activation.Relu, bt.DPre.Slice(0, R * H), bt.DPost.Slice(0, R * H), bt.Pre.Slice(0, R * H));
        _b.LinearBackward(bt.DX.Slice(0, R * In), G(_oW1, H * In), G(_oB1, H), bt.DPre.Slice(0, R * H), bt.X.Slice(0, R * In), P(_oW1, H * In), R, In, H);
        _b.LinearBackward(View<float>.None, G(_oWw, O * F), G(_oBw, O), bt.DLogits.Slice(0, R * O), bt.Dn.Slice(0, R * F), P(_oWw, O * F), R, F, O);
        _b.Download(bt.DX.Slice(0, R * In), bt.DRows.AsSpan(0, R * In));
        // Towers on the host, then δ of every item vector scattered in row order (deterministic).
        var job = new TowerBackwardJob(this, bt);
        CpuParallel.ForRange(R, ref job);
        var dVall = _dVallHost;
        Array.Clear(dVall);
        var dE = new float[2 * d];
        for (int q = 0; q < R; q++)
        {
            int item = bt.Items[q];
            TensorPrimitives.Add(dVall.AsSpan(item * d, d), bt.Dv.AsSpan(q * d, d), dVall.AsSpan(item * d, d));
            for (int j = 0; j < bt.HistCount[q]; j++)
            {
                var dh = bt.Dh.AsSpan((int)(((long)q * N + j) * d), d);
                int hi = bt.HistItems[q * N + j];
                TensorPrimitives.Add(dVall.AsSpan(hi * d, d), dh, dVall.AsSpan(hi * d, d));
                var de = dE.AsSpan(bt.HistLabels[q * N + j] >= 0.5f ? d : 0, d);
                TensorPrimitives.Add(de, dh, de);
            }
        }
        _b.Upload(G(_oE, 2 * d), dE);
        if (Vw > 0)
        {
            var dR = _dResidualHost;
            for (int i = 0; i < V; i++)
                if (_residualRow[i] is var r and >= 0) dVall.AsSpan(i * d, d).CopyTo(dR.AsSpan(r * d, d));
            _b.Upload(G(_oR, Vw * d), dR);
        }
        _b.Upload(_dVallDev.All, dVall);
        _b.LinearBackward(View<float>.None, G(_oP, d * D), G(_oPb, d), _dVallDev.All, _xDev.All, P(_oP, d * D), V, D, d);
        Span<float> loss = stackalloc float[1];
        _b.Download(bt.Loss.Slice(0, 1), loss);
        return loss[0];
    }

    private void Train(ExampleSet train, int[] rated, ExampleSet validation, int[] ratedValidation, Action<string>? log, CancellationToken ct)
    {
        using var run = new Run(this, train, rated, validation, ratedValidation, log);
        string? path = Options.CheckpointPath;
        byte[] fingerprint = path is null ? [] : Fingerprint(train, validation);
        int first = path is not null && File.Exists(path) ? run.Resume(path, fingerprint) + 1 : 1;
        for (int epoch = first; epoch <= Options.Epochs && !run.Stopped; epoch++)
        {
            run.Shuffle(epoch);
            for (int s = 0; s < run.Steps; s++)
            {
                ct.ThrowIfCancellationRequested();
                run.Rows(s, epoch);
                run.Step(run.ForwardBackward(null), epoch);
            }
            run.EndEpoch(epoch);
            if (path is not null) run.Save(path, epoch, fingerprint);
        }
        run.Finish();
    }

    /// <summary>The state of one training run, step by step: <see cref="Train"/> and <see cref="FitMutual"/> drive it.</summary>
    private sealed partial class Run : IDisposable
    {
        private readonly TowerModel _m;
        private readonly ExampleSet _train, _validation;
        private readonly int[] _order, _ratedValidation, _rankUsers;
        private readonly float[] _bestParams;
        private readonly Action<string>? _log;
        private readonly int _n, _B;
        private int _since, _batches;
        private double _lossSum;
        public readonly Batch Bt;
        public readonly int R;
        /// <summary>Full batches per epoch (the last partial batch is dropped: it changes each epoch).</summary>
        public int Steps => _n / _B;
        /// <summary>Early stopping has ended the run.</summary>
        public bool Stopped { get; private set; }

        public Run(TowerModel m, ExampleSet train, int[] rated, ExampleSet validation, int[] ratedValidation, Action<string>? log)
        {
            _m = m; _train = train; _validation = validation; _ratedValidation = ratedValidation; _log = log;
            m.Initialise(train, rated);
            _n = rated.Length; _B = Math.Min(m.Options.BatchSize, _n); R = _B * (1 + m.Options.Negatives);
            Bt = new Batch(m._b, Math.Max(R, 1024), m.In, m.H, m.O, m.N, m.d);
            var users = new HashSet<int>();
            foreach (int k in rated) users.Add(train.Users[k]);
            m.Trained = (_n, users.Count);
            _rankUsers = m.RankingUsers(train, validation);
            var (auc, ndcg) = m.Validate(validation, ratedValidation, Bt, _rankUsers);
            m.Best = (0, auc, ndcg);
            _bestParams = new float[m._count];
            m._b.Download(m._p.All, _bestParams);
            _order = (int[])rated.Clone();
            log?.Invoke($"{m.Name}: {_n:N0} training ratings of {users.Count:N0} users (+{m.Options.Negatives} sampled items each), {m.In} head inputs, {m._count:N0} parameters; " +
                        $"at start (the history-feature logistic): validation AUC {auc:0.0000}" + (double.IsNaN(ndcg) ? "" : $", NDCG@10 {ndcg:0.0000}"));
        }

        public void Shuffle(int epoch)
        {
            for (int i = _n - 1; i > 0; i--)
            {
                int j = (int)(Rng.Hash(_m.Options.Seed ^ 0x5EED_70E7UL, (ulong)epoch << 32 | (uint)i) % (ulong)(i + 1));
                (_order[i], _order[j]) = (_order[j], _order[i]);
            }
            _lossSum = 0; _batches = 0;
        }

        /// <summary>Projects the items with the current parameters and builds the rows of step <paramref name="s"/>.</summary>
        public void Rows(int s, int epoch)
        {
            _m.ProjectItems();
            var job = new TrainRowsJob(_m, Bt, _train, _order, s * _B, epoch);
            CpuParallel.ForRange(R, ref job);
        }

        /// <summary>The logits (R, O) of the rows built, without a gradient.</summary>
        public float[] Logits()
        {
            var z = new float[R * _m.O];
            _m._b.Upload(Bt.X.Slice(0, R * _m.In), Bt.Rows.AsSpan(0, R * _m.In)); _m._b.Upload(Bt.Dn.Slice(0, R * F), Bt.Dense.AsSpan(0, R * F));
            _m.HeadForward(Bt, R);
            _m._b.Download(Bt.Logits.Slice(0, R * _m.O), z);
            return z;
        }

        /// <summary>The loss of the rows built (plus, with <paramref name="soft"/>, the mutual-learning term) and every gradient.</summary>
        public float ForwardBackward(SoftTargets? soft) => _m.ForwardBackward(Bt, R, soft);

        public void Step(float loss, int epoch)
        {
            if (!float.IsFinite(loss)) throw new InvalidOperationException($"{_m.Name}: the training loss became {loss} at epoch {epoch}; lower the learning rate");
            var b = _m._b;
            b.GlobalNorm(Bt.Norm.Slice(0, 1), _m._g.All);
            b.AdamW(_m._p.All, _m._g.All, _m._m.All, _m._v.All, _m._segments.All, Bt.Norm.Slice(0, 1), _m.Options.MaxGradNorm, _m.Options.LearningRate, 0.9f, 0.999f, 1e-8f, ++_m._step);
            _lossSum += loss; _batches++;
        }

        public void EndEpoch(int epoch)
        {
            var (auc, ndcg) = _m.Validate(_validation, _ratedValidation, Bt, _rankUsers);
            double loss = _lossSum / Math.Max(_batches, 1);
            _m.History.Add((loss, auc, ndcg));
            _log?.Invoke($"{_m.Name}: epoch {epoch}: loss {loss:0.0000}, validation AUC {auc:0.0000}" + (double.IsNaN(ndcg) ? "" : $", NDCG@10 {ndcg:0.0000}"));
            if (_m.Better(auc, ndcg)) { _m.Best = (epoch, auc, ndcg); _m._b.Download(_m._p.All, _bestParams); _since = 0; }
            else if (++_since > _m.Options.Patience) Stopped = true;
        }

        /// <summary>Restores the best epoch's parameters.</summary>
        public void Finish()
        {
            _m._b.Upload(_m._p.All, _bestParams);
            _m.ProjectItems();
            _m._scorer = null;
        }

        public void Dispose() => Bt.Dispose();
    }

    /// <summary>The selection rule: the sum of the relative changes of validation AUC − 0.5 and NDCG@10 over the best so far
    /// (AUC alone when ranking is not measured) must be positive.</summary>
    private bool Better(double auc, double ndcg)
    {
        double gain = (auc - Best.ValidationAuc) / Math.Max(Best.ValidationAuc - 0.5, 1e-6);
        if (!double.IsNaN(ndcg) && !double.IsNaN(Best.ValidationNdcg)) gain += (ndcg - Best.ValidationNdcg) / Math.Max(Best.ValidationNdcg, 1e-6);
        return gain > 0;
    }

    private EvalWindow? _validationWindow;

    private int[] RankingUsers(ExampleSet train, ExampleSet validation)
    {
        if (Options.ValidationRankingUsers == 0) return [];
        _validationWindow = EvalWindow.ForValidation(_window.Catalog, train, validation);
        return TransferStudy.RankingSample(_validationWindow, Options.ValidationRankingUsers);
    }

    /// <summary>Validation AUC of output 0 and NDCG@10 of the ranking over the validation window (NaN when not measured).</summary>
    private (double Auc, double Ndcg) Validate(ExampleSet validation, int[] rows, Batch bt, int[] rankUsers)
    {
        ProjectItems();
        _scorer = null;
        var z = LikeLogits(validation, rows, bt);
        var labels = new float[rows.Length];
        for (int k = 0; k < rows.Length; k++) labels[k] = validation.Labels[rows[k]];
        double auc = RocAuc.Compute(labels, z);
        if (rankUsers.Length == 0) return (auc, double.NaN);
        var ranking = FullRanking.Evaluate(_validationWindow!, this, new FullRankingOptions { Users = rankUsers, Ks = [10], SampledNegatives = 0 });
        return (auc, ranking.Overall.NdcgAt(10));
    }

    /// <summary>Output 0 of the ratings <paramref name="rows"/> of <paramref name="set"/>; the item vectors must be current.</summary>
    private float[] LikeLogits(ExampleSet set, int[] rows, Batch bt)
    {
        var z = new float[rows.Length];
        var logits = new float[bt.Capacity * O];
        for (int s = 0; s < rows.Length; s += bt.Capacity)
        {
            int R = Math.Min(bt.Capacity, rows.Length - s);
            var job = new EvalRowsJob(this, bt, set, rows, s);
            CpuParallel.ForRange(R, ref job);
            _b.Upload(bt.X.Slice(0, R * In), bt.Rows.AsSpan(0, R * In)); _b.Upload(bt.Dn.Slice(0, R * F), bt.Dense.AsSpan(0, R * F));
            HeadForward(bt, R);
            _b.Download(bt.Logits.Slice(0, R * O), logits.AsSpan(0, R * O));
            for (int q = 0; q < R; q++) z[s + q] = logits[q * O];
        }
        return z;
    }

    /// <summary>Logits of output 0 ("like given rated") of every example of <paramref name="set"/> (history = the user's
    /// interactions strictly before each example, features at its time).</summary>
    public float[] PredictLogits(ExampleSet set)
    {
        ArgumentNullException.ThrowIfNull(set);
        if (set.Count == 0) return [];
        if (!ReferenceEquals(set.Catalog, _window.Catalog) && set.Catalog.Count != V)
            throw new ArgumentException($"the '{set.Name}' examples use a catalogue of {set.Catalog.Count} items, the model {V}");
        var rows = Enumerable.Range(0, set.Count).ToArray();
        using var bt = new Batch(_b, Math.Min(set.Count, 4096), In, H, O, N, d);
        return LikeLogits(set, rows, bt);
    }

    /// <inheritdoc/>
    public float[] Predict(ExampleSet set)
    {
        var z = PredictLogits(set);
        for (int i = 0; i < z.Length; i++) z[i] = 1f / (1f + MathF.Exp(-z[i]));
        return z;
    }

    /// <summary>Test hook: the loss of one training batch (the ratings <paramref name="rows"/> of <paramref name="set"/>, each with
    /// its sampled items of epoch 1) with every gradient left in <see cref="GradientView"/> (no optimiser step).</summary>
    internal float LossAndGradient(ExampleSet set, int[] rows)
    {
        int R = rows.Length * (1 + Options.Negatives);
        using var bt = new Batch(_b, R, In, H, O, N, d);
        ProjectItems();
        var job = new TrainRowsJob(this, bt, set, rows, 0, 1);
        CpuParallel.ForRange(R, ref job);
        return ForwardBackward(bt, R);
    }

    /// <summary>Test hook: the flat parameter buffer ([P | p_b | R | E | W1 | b1 | W2 | b2 | W_w | b_w]).</summary>
    internal View<float> ParameterView => _p.All;
    /// <summary>Test hook: the gradient buffer, same layout.</summary>
    internal View<float> GradientView => _g.All;
    /// <summary>Test hook: offsets of P, R, E, W1 and W2 in the parameter buffer.</summary>
    internal (int P, int R, int E, int W1, int W2, int Count) Layout => (_oP, _oR, _oE, _oW1, _oW2, _count);
}
