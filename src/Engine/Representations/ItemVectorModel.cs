// A recommender over fixed item vectors: the user's liked and disliked history profiles against the candidate, through a
// wide & deep head trained with the backend's Linear, ReLU, fused BCE and AdamW kernels. The "same head" of the transfer study.
using System.Numerics.Tensors;
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Metrics;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;

namespace FastRec.Engine.Representations;

/// <summary>Options of <see cref="ItemVectorModel"/>.</summary>
public sealed record ItemVectorModelOptions
{
    /// <summary>N: the profiles average the user's last N liked and last N disliked items before the example.</summary>
    public int HistoryLength { get; init; } = 50;
    /// <summary>H, the width of the hidden layer.</summary>
    public int Hidden { get; init; } = 64;
    /// <summary>Most epochs; early stopping on validation AUC usually ends sooner.</summary>
    public int Epochs { get; init; } = 12;
    /// <summary>Examples per step.</summary>
    public int BatchSize { get; init; } = 256;
    /// <summary>AdamW learning rate (constant).</summary>
    public float LearningRate { get; init; } = 2e-3f;
    /// <summary>Decoupled weight decay on the two deep weight matrices (not on biases or the wide path).</summary>
    public float WeightDecay { get; init; } = 1e-2f;
    /// <summary>Global gradient-norm clip (0 = off).</summary>
    public float MaxGradNorm { get; init; } = 1f;
    /// <summary>Epochs without a better validation AUC before stopping; the best epoch's weights are kept.</summary>
    public int Patience { get; init; } = 2;
    /// <summary>Seed of the initialisation and the example order.</summary>
    public ulong Seed { get; init; } = 42;
}

/// <summary>
/// p(like | user, item, t) from fixed item vectors x (V, D), L2-normalised here, and F dense features.
/// <para>Input row of an example (user u, candidate i, time t), In = 3D + 4 + F (or F when there are no vectors):
/// [p̂⁺ ⊙ x_i, p̂⁻ ⊙ x_i, x_i, x_i·p̂⁺, x_i·p̂⁻, has⁺, has⁻, standardised dense], where p̂⁺ (p̂⁻) is the L2-normalised mean
/// of the vectors of the user's last N liked (disliked) items strictly before t, 0 when there are none.</para>
/// <para>Head: logit = W₂·ReLU(W₁·row + b₁) + b₂ + (w_wide·dense + b_wide). The wide path starts at the history-feature
/// logistic regression fitted on the same training rows and W₂ starts at 0, so training starts from the logistic
/// baseline's predictions and the deep part adds to it (wide &amp; deep). Trained with weighted BCE and AdamW through
/// <see cref="IBackend"/>, early stopping on validation AUC.</para>
/// <para>Full ranking (<see cref="IItemScorer"/>): history = every interaction before the test window; the first layer
/// is linear in x_i, so for a user it is one GEMM X·G_u over the catalogue. Needs the dense features to be exactly
/// <see cref="HistoryFeatures.Names"/> (or none), which are then taken at the start of the test window.</para>
/// </summary>
public sealed class ItemVectorModel : IBaseline, IItemScorer, IDisposable
{
    private readonly IBackend _b;
    private readonly EvalWindow _window;
    private readonly float[] _x;       // (V, D) L2-normalised rows, or empty
    private readonly int D, F, In, H, N;
    private readonly double[] _mean, _std;   // (F) dense standardisation
    private readonly DeviceBuffer<float> _p, _g, _m, _v;
    private readonly DeviceBuffer<AdamSegment> _segments;
    private readonly int _oW1, _oB1, _oW2, _oB2, _oWw, _oBw, _count;
    private int _step;

    /// <inheritdoc/>
    public string Name { get; }
    /// <summary>The options used.</summary>
    public ItemVectorModelOptions Options { get; }
    /// <summary>Per epoch: mean training loss and validation AUC.</summary>
    public List<(double Loss, double ValidationAuc)> History { get; } = [];
    /// <summary>The epoch whose weights were kept (1-based) and its validation AUC.</summary>
    public (int Epoch, double ValidationAuc) Best { get; private set; }
    /// <summary>Parameters trained.</summary>
    public int ParameterCount => _count;

    private ItemVectorModel(string name, IBackend backend, EvalWindow window, ItemVectors? vectors, int dense, ItemVectorModelOptions o, double[] mean, double[] std)
    {
        Name = name; _b = backend; _window = window; Options = o; _mean = mean; _std = std;
        D = vectors?.Dim ?? 0; F = dense; H = o.Hidden; N = o.HistoryLength;
        In = (D > 0 ? 3 * D + 4 : 0) + F;
        if (In == 0) throw new ArgumentException("the model has neither item vectors nor dense features: nothing to learn from");
        _x = new float[D == 0 ? 0 : (long)vectors!.Count * D];
        if (D > 0)
            for (int i = 0; i < vectors!.Count; i++)
            {
                var src = vectors.Row(i); var dst = _x.AsSpan(i * D, D);
                float norm = TensorPrimitives.Norm(src);
                if (norm > 0) TensorPrimitives.Divide(src, norm, dst);
            }
        _oW1 = 0; _oB1 = H * In; _oW2 = _oB1 + H; _oB2 = _oW2 + H; _oWw = _oB2 + 1; _oBw = _oWw + F; _count = _oBw + 1;
        _p = backend.Allocate<float>(_count); _g = backend.Allocate<float>(_count);
        _m = backend.Allocate<float>(_count); _v = backend.Allocate<float>(_count);
        var seg = new[]
        {
            new AdamSegment(_oW1, H * In, 1, o.WeightDecay), new AdamSegment(_oB1, H, 1, 0),
            new AdamSegment(_oW2, H, 1, o.WeightDecay), new AdamSegment(_oB2, 1, 1, 0),
            new AdamSegment(_oWw, F + 1, F > 0 ? 1 : 0, 0),
        };
        _segments = backend.Allocate<AdamSegment>(seg.Length);
        backend.Upload(_segments.All, seg);
    }

    /// <summary>
    /// Fits on <paramref name="train"/> (rows of <paramref name="window"/>'s training window), early stopping on
    /// <paramref name="validation"/>. <paramref name="vectors"/> null = dense features only (the "history only" variant).
    /// Both sets must come from the dataset <paramref name="window"/> was built from.
    /// </summary>
    public static ItemVectorModel Fit(string name, EvalWindow window, ExampleSet train, ExampleSet validation, ItemVectors? vectors,
        IBackend backend, ItemVectorModelOptions? options = null, Action<string>? log = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(window); ArgumentNullException.ThrowIfNull(train); ArgumentNullException.ThrowIfNull(validation);
        ArgumentNullException.ThrowIfNull(backend);
        var o = options ?? new ItemVectorModelOptions();
        Validate(o);
        if (train.Count == 0) throw new ArgumentException("the training set is empty");
        if (validation.Count == 0) throw new ArgumentException("the validation set is empty");
        if (vectors is not null && vectors.Count != window.ItemCount)
            throw new ArgumentException($"the item vectors cover {vectors.Count} items but the catalogue has {window.ItemCount}");
        if (train.DenseCount != validation.DenseCount) throw new ArgumentException($"train has {train.DenseCount} dense features, validation {validation.DenseCount}");
        int F = train.DenseCount;
        double[] mean = new double[F], std = new double[F];
        DenseLogisticBaseline? wide = F > 0 ? DenseLogisticBaseline.Fit(train) : null;
        if (wide is not null) { wide.FeatureMean.CopyTo(mean); wide.FeatureStd.CopyTo(std); }
        var model = new ItemVectorModel(name, backend, window, vectors, F, o, mean, std);
        try
        {
            model.Initialise(wide, train);
            model.Train(train, validation, log, ct);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static void Validate(ItemVectorModelOptions o)
    {
        if (o.HistoryLength < 1 || o.HistoryLength > 1000) throw new ArgumentOutOfRangeException(nameof(o.HistoryLength), o.HistoryLength, "history length must be in [1, 1000]");
        if (o.Hidden < 1 || o.Hidden > 4096) throw new ArgumentOutOfRangeException(nameof(o.Hidden), o.Hidden, "hidden width must be in [1, 4096]");
        if (o.Epochs < 1) throw new ArgumentOutOfRangeException(nameof(o.Epochs), o.Epochs, "epochs must be >= 1");
        if (o.BatchSize < 1 || o.BatchSize > 65536) throw new ArgumentOutOfRangeException(nameof(o.BatchSize), o.BatchSize, "batch size must be in [1, 65536]");
        if (!(o.LearningRate > 0 && float.IsFinite(o.LearningRate))) throw new ArgumentOutOfRangeException(nameof(o.LearningRate), o.LearningRate, "learning rate must be finite and > 0");
        if (!(o.WeightDecay >= 0 && float.IsFinite(o.WeightDecay))) throw new ArgumentOutOfRangeException(nameof(o.WeightDecay), o.WeightDecay, "weight decay must be finite and >= 0");
        if (o.Patience < 0) throw new ArgumentOutOfRangeException(nameof(o.Patience), o.Patience, "patience must be >= 0");
    }

    private void Initialise(DenseLogisticBaseline? wide, ExampleSet train)
    {
        var p = new float[_count];
        float bound = 1f / MathF.Sqrt(In);   // torch.nn.Linear's default bound
        for (int k = 0; k < H * In; k++) p[_oW1 + k] = (2 * Rng.Uniform(Options.Seed ^ 0x17EF_0001UL, (ulong)k) - 1) * bound;
        // W2 = 0 and b2 = 0: the deep part starts silent, the wide part carries the logistic baseline.
        if (wide is not null)
        {
            for (int f = 0; f < F; f++) p[_oWw + f] = (float)wide.Coefficients[f];
            p[_oBw] = (float)wide.Coefficients[F];
        }
        else
        {
            double sw = 0, swy = 0;
            for (int k = 0; k < train.Count; k++) { sw += train.Weights[k]; swy += train.Weights[k] * train.Labels[k]; }
            double prior = Math.Clamp(swy / Math.Max(sw, 1e-12), 1e-6, 1 - 1e-6);
            p[_oB2] = (float)Math.Log(prior / (1 - prior));   // no dense features: no wide path, b2 starts at the prior
        }
        _b.Upload(_p.All, p);
    }

    // ------------------------------------------------------------------ input rows

    /// <summary>Fills row (In) and dense (F, standardised) of one example; history = the user's rows strictly before t.</summary>
    private void BuildRow(UserRows history, int item, ReadOnlySpan<float> denseRaw, Span<float> row, Span<float> dense, Span<float> scratch)
    {
        for (int f = 0; f < F; f++) dense[f] = (float)((denseRaw[f] - _mean[f]) / _std[f]);
        if (D > 0)
        {
            Span<float> pos = scratch[..D], neg = scratch.Slice(D, D);
            var (hasPos, hasNeg) = Profiles(history, pos, neg);
            var x = _x.AsSpan(item * D, D);
            TensorPrimitives.Multiply(pos, x, row[..D]);
            TensorPrimitives.Multiply(neg, x, row.Slice(D, D));
            x.CopyTo(row.Slice(2 * D, D));
            row[3 * D] = TensorPrimitives.Dot(pos, x);
            row[3 * D + 1] = TensorPrimitives.Dot(neg, x);
            row[3 * D + 2] = hasPos ? 1 : 0;
            row[3 * D + 3] = hasNeg ? 1 : 0;
        }
        dense.CopyTo(row[(In - F)..]);
    }

    /// <summary>pos/neg (D) = L2-normalised means of the last N liked / disliked items of <paramref name="history"/>.</summary>
    private (bool, bool) Profiles(UserRows history, Span<float> pos, Span<float> neg)
    {
        pos.Clear(); neg.Clear();
        int np = 0, nn = 0, scanned = 0;
        for (int r = history.Count - 1; r >= 0 && (np < N || nn < N) && scanned < 20 * N; r--, scanned++)
        {
            bool liked = history.Labels[r] >= 0.5f;
            if (liked ? np >= N : nn >= N) continue;
            var x = _x.AsSpan(history.Items[r] * D, D);
            if (liked) { TensorPrimitives.Add(pos, x, pos); np++; } else { TensorPrimitives.Add(neg, x, neg); nn++; }
        }
        float a = TensorPrimitives.Norm(pos), b = TensorPrimitives.Norm(neg);
        if (a > 0) TensorPrimitives.Divide(pos, a, pos);
        if (b > 0) TensorPrimitives.Divide(neg, b, neg);
        return (np > 0, nn > 0);
    }

    /// <summary>Rows (n, In) and standardised dense (n, F) of every example of <paramref name="set"/>, built in parallel.</summary>
    private (float[] Rows, float[] Dense) BuildRows(ExampleSet set)
    {
        int n = set.Count;
        var rows = new float[(long)n * In]; var dense = new float[(long)n * Math.Max(F, 1)];
        var job = new RowsJob(this, set, rows, dense);
        CpuParallel.ForRange(n, ref job);
        return (rows, dense);
    }

    /// <summary>Builds rows [start, end) of a set: one scratch per part, rows written only by their own part.</summary>
    private readonly struct RowsJob(ItemVectorModel m, ExampleSet set, float[] rows, float[] dense) : IParallelRangeJob
    {
        public void Execute(int start, int end, int part)
        {
            var scratch = new float[2 * Math.Max(m.D, 1)];
            for (int k = start; k < end; k++)
                m.BuildRow(m._window.Before(set.Users[k], set.Timestamps[k]), set.Items[k], set.DenseRow(k),
                           rows.AsSpan((int)((long)k * m.In), m.In), dense.AsSpan(k * m.F, m.F), scratch);
        }
    }

    /// <summary>The second half of the head for items [start, end) and the chunk's users: out(j, i) = w₂·ReLU(pre(i, j) +
    /// item part(i) + user part(j)) + b₂ + wide(i) + wide(j).</summary>
    private readonly struct HeadJob(float[] pre, float[] itemPart, float[] itemWide, float[] w2, float b2, float[] userPart, float[] userWide,
        float[] output, int users, int stride, int H, int V, bool vectors) : IParallelRangeJob
    {
        public void Execute(int start, int end, int part)
        {
            Span<float> z = stackalloc float[H];
            for (int i = start; i < end; i++)
            {
                var ip = itemPart.AsSpan(i * H, H);
                for (int j = 0; j < users; j++)
                {
                    if (vectors) TensorPrimitives.Add(pre.AsSpan((int)((long)i * stride + j * H), H), ip, z);
                    else ip.CopyTo(z);
                    TensorPrimitives.Add(z, userPart.AsSpan(j * H, H), z);
                    TensorPrimitives.Max(z, 0f, z);
                    output[(long)j * V + i] = TensorPrimitives.Dot(z, w2) + b2 + itemWide[i] + userWide[j];
                }
            }
        }
    }

    // ------------------------------------------------------------------ forward / backward

    private sealed class Batch : IDisposable
    {
        public readonly DeviceBuffer<float> X, Dn, Pre, Post, Out, Wide, Logits, Targets, Weights, DLogits, DPost, DPre, Loss, Norm;
        public readonly int Capacity;
        public Batch(IBackend b, int cap, int In, int F, int H)
        {
            Capacity = cap;
            X = b.Allocate<float>((long)cap * In); Dn = b.Allocate<float>((long)cap * Math.Max(F, 1));
            Pre = b.Allocate<float>((long)cap * H); Post = b.Allocate<float>((long)cap * H); Out = b.Allocate<float>(cap);
            Wide = b.Allocate<float>(cap); Logits = b.Allocate<float>(cap); Targets = b.Allocate<float>(cap); Weights = b.Allocate<float>(cap);
            DLogits = b.Allocate<float>(cap); DPost = b.Allocate<float>((long)cap * H); DPre = b.Allocate<float>((long)cap * H);
            Loss = b.Allocate<float>(1); Norm = b.Allocate<float>(1);
        }
        public void Dispose()
        {
            foreach (var d in new[] { X, Dn, Pre, Post, Out, Wide, Logits, Targets, Weights, DLogits, DPost, DPre, Loss, Norm }) d.Dispose();
        }
    }

    private View<float> P(int offset, int length) => _p.Slice(offset, length);
    private View<float> G(int offset, int length) => _g.Slice(offset, length);

    /// <summary>Logits (B) of the rows already in bt.X / bt.Dn.</summary>
    private void Forward(Batch bt, int B)
    {
        _b.LinearForward(bt.Pre.Slice(0, B * H), bt.X.Slice(0, B * In), P(_oW1, H * In), P(_oB1, H), B, In, H);     // (B, H)
        _b.ActivationForward(Activation.Relu, bt.Post.Slice(0, B * H), bt.Pre.Slice(0, B * H));
        _b.LinearForward(bt.Logits.Slice(0, B), bt.Post.Slice(0, B * H), P(_oW2, H), P(_oB2, 1), B, H, 1);             // (B)
        if (F > 0)
        {
            _b.LinearForward(bt.Wide.Slice(0, B), bt.Dn.Slice(0, B * F), P(_oWw, F), P(_oBw, 1), B, F, 1);              // (B)
            _b.Copy2D(bt.Logits.Slice(0, B), 1, 0, bt.Wide.Slice(0, B), 1, 0, B, 1, accumulate: true);
        }
    }

    /// <summary>Loss of the batch in bt and its gradient, assigned to the gradient buffer.</summary>
    private void ForwardBackward(Batch bt, int B)
    {
        Forward(bt, B);
        _b.BceForwardBackward(bt.Loss.Slice(0, 1), bt.DLogits.Slice(0, B), bt.Logits.Slice(0, B), bt.Targets.Slice(0, B), bt.Weights.Slice(0, B), B);
        _b.Zero(_g.All);
        _b.LinearBackward(bt.DPost.Slice(0, B * H), G(_oW2, H), G(_oB2, 1), bt.DLogits.Slice(0, B), bt.Post.Slice(0, B * H), P(_oW2, H), B, H, 1);
        _b.ActivationBackward(Activation.Relu, bt.DPre.Slice(0, B * H), bt.DPost.Slice(0, B * H), bt.Pre.Slice(0, B * H));
        _b.LinearBackward(View<float>.None, G(_oW1, H * In), G(_oB1, H), bt.DPre.Slice(0, B * H), bt.X.Slice(0, B * In), P(_oW1, H * In), B, In, H);
        if (F > 0) _b.LinearBackward(View<float>.None, G(_oWw, F), G(_oBw, 1), bt.DLogits.Slice(0, B), bt.Dn.Slice(0, B * F), P(_oWw, F), B, F, 1);
    }

    private double Step(Batch bt, int B)
    {
        ForwardBackward(bt, B);
        _b.GlobalNorm(bt.Norm.Slice(0, 1), _g.All);
        _b.AdamW(_p.All, _g.All, _m.All, _v.All, _segments.All, bt.Norm.Slice(0, 1), Options.MaxGradNorm, Options.LearningRate, 0.9f, 0.999f, 1e-8f, ++_step);
        Span<float> loss = stackalloc float[1];
        _b.Download(bt.Loss.Slice(0, 1), loss);
        return loss[0];
    }

    /// <summary>Test hook: the weighted BCE of all of <paramref name="set"/> as one batch, with its gradient left in
    /// <see cref="GradientView"/> (no optimiser step).</summary>
    internal float LossAndGradient(ExampleSet set)
    {
        var (rows, dense) = BuildRows(set);
        int B = set.Count;
        using var bt = new Batch(_b, B, In, F, H);
        _b.Upload(bt.X.Slice(0, B * In), rows);
        if (F > 0) _b.Upload(bt.Dn.Slice(0, B * F), dense);
        _b.Upload(bt.Targets.Slice(0, B), set.Labels); _b.Upload(bt.Weights.Slice(0, B), set.Weights);
        ForwardBackward(bt, B);
        Span<float> loss = stackalloc float[1];
        _b.Download(bt.Loss.Slice(0, 1), loss);
        return loss[0];
    }

    /// <summary>Test hook: the flat parameter buffer ([W1 | b1 | W2 | b2 | w_wide | b_wide]).</summary>
    internal View<float> ParameterView => _p.All;
    /// <summary>Test hook: the gradient buffer, same layout.</summary>
    internal View<float> GradientView => _g.All;

    private void Train(ExampleSet train, ExampleSet validation, Action<string>? log, CancellationToken ct)
    {
        var (rows, dense) = BuildRows(train);
        var (vRows, vDense) = BuildRows(validation);
        int n = train.Count, B = Math.Min(Options.BatchSize, n);
        using var bt = new Batch(_b, Math.Max(B, 1024), In, F, H);
        var xs = new float[(long)B * In]; var ds = new float[(long)B * Math.Max(F, 1)]; var ys = new float[B]; var ws = new float[B];
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        double bestAuc = Auc(validation, vRows, vDense, bt);
        Best = (0, bestAuc);
        var bestParams = new float[_count];
        _b.Download(_p.All, bestParams);
        log?.Invoke($"{Name}: {n:N0} training rows, {In} inputs, {_count:N0} parameters; validation AUC at start (the logistic baseline) {bestAuc:0.0000}");
        int since = 0;
        for (int epoch = 1; epoch <= Options.Epochs; epoch++)
        {
            for (int i = n - 1; i > 0; i--)
            {
                int j = (int)(Rng.Hash(Options.Seed ^ 0x5EED_0B0EUL, (ulong)epoch << 32 | (uint)i) % (ulong)(i + 1));
                (order[i], order[j]) = (order[j], order[i]);
            }
            double lossSum = 0; int batches = 0;
            for (int s = 0; s + B <= n; s += B)   // the last partial batch is dropped (it changes each epoch)
            {
                ct.ThrowIfCancellationRequested();
                for (int q = 0; q < B; q++)
                {
                    int k = order[s + q];
                    rows.AsSpan((int)((long)k * In), In).CopyTo(xs.AsSpan(q * In, In));
                    if (F > 0) dense.AsSpan(k * F, F).CopyTo(ds.AsSpan(q * F, F));
                    ys[q] = train.Labels[k]; ws[q] = train.Weights[k];
                }
                _b.Upload(bt.X.Slice(0, B * In), xs); _b.Upload(bt.Dn.Slice(0, ds.Length), ds);
                _b.Upload(bt.Targets.Slice(0, B), ys); _b.Upload(bt.Weights.Slice(0, B), ws);
                double loss = Step(bt, B);
                if (!double.IsFinite(loss)) throw new InvalidOperationException($"{Name}: the training loss became {loss} at epoch {epoch}; lower the learning rate");
                lossSum += loss; batches++;
            }
            double auc = Auc(validation, vRows, vDense, bt);
            History.Add((lossSum / Math.Max(batches, 1), auc));
            log?.Invoke($"{Name}: epoch {epoch}: loss {lossSum / Math.Max(batches, 1):0.0000}, validation AUC {auc:0.0000}");
            if (auc > Best.ValidationAuc) { Best = (epoch, auc); _b.Download(_p.All, bestParams); since = 0; }
            else if (++since > Options.Patience) break;
        }
        _b.Upload(_p.All, bestParams);
    }

    private double Auc(ExampleSet set, float[] rows, float[] dense, Batch bt)
        => RocAuc.Compute(set.Labels, Logits(rows, dense, set.Count, bt));

    private float[] Logits(float[] rows, float[] dense, int n, Batch bt)
    {
        var z = new float[n];
        for (int s = 0; s < n; s += bt.Capacity)
        {
            int B = Math.Min(bt.Capacity, n - s);
            _b.Upload(bt.X.Slice(0, B * In), rows.AsSpan((int)((long)s * In), B * In));
            if (F > 0) _b.Upload(bt.Dn.Slice(0, B * F), dense.AsSpan(s * F, B * F));
            Forward(bt, B);
            _b.Download(bt.Logits.Slice(0, B), z.AsSpan(s, B));
        }
        return z;
    }

    /// <summary>Logits of every example of <paramref name="set"/> (history = the user's interactions strictly before each example).</summary>
    public float[] PredictLogits(ExampleSet set)
    {
        ArgumentNullException.ThrowIfNull(set);
        if (set.DenseCount != F) throw new ArgumentException($"the '{set.Name}' examples have {set.DenseCount} dense features, the model {F}");
        if (set.Count == 0) return [];
        var (rows, dense) = BuildRows(set);
        using var bt = new Batch(_b, Math.Min(set.Count, 4096), In, F, H);
        return Logits(rows, dense, set.Count, bt);
    }

    /// <inheritdoc/>
    public float[] Predict(ExampleSet set)
    {
        var z = PredictLogits(set);
        for (int i = 0; i < z.Length; i++) z[i] = 1f / (1f + MathF.Exp(-z[i]));
        return z;
    }

    // ------------------------------------------------------------------ full ranking

    private float[]? _itemPart;   // (V, H) first-layer contribution of the item's dense features, at the test start
    private float[]? _itemWide;   // (V) wide contribution of the item's dense features
    private float[]? _userDense;  // (U, 2) standardised user features at the test start
    private float[] _w1 = [], _b1 = [], _w2 = [], _ww = [];
    private float _b2, _bw;

    private void PrepareRanking()
    {
        if (_itemPart is not null) return;
        if (F != 0 && F != HistoryFeatures.Names.Length)
            throw new NotSupportedException($"{Name}: full ranking needs the dense features to be the {HistoryFeatures.Names.Length} history features (or none); the model has {F}");
        var p = new float[_count];
        _b.Download(_p.All, p);
        _w1 = p[_oW1..(_oW1 + H * In)]; _b1 = p[_oB1..(_oB1 + H)]; _w2 = p[_oW2..(_oW2 + H)]; _b2 = p[_oB2];
        _ww = p[_oWw..(_oWw + F)]; _bw = p[_oBw];
        int V = _window.ItemCount, U = _window.UserCount, off = In - F;
        var itemPart = new float[(long)V * H]; var itemWide = new float[V]; var userDense = new float[U * 2];
        if (F > 0)
        {
            var (user, item) = _window.HistoryFeaturesAtTestStart();
            for (int u = 0; u < U; u++)
                for (int f = 0; f < 2; f++) userDense[u * 2 + f] = (float)((user[u * 2 + f] - _mean[f]) / _std[f]);
            for (int i = 0; i < V; i++)
            {
                float a = (float)((item[i * 2] - _mean[2]) / _std[2]), c = (float)((item[i * 2 + 1] - _mean[3]) / _std[3]);
                for (int h = 0; h < H; h++) itemPart[(long)i * H + h] = _w1[h * In + off + 2] * a + _w1[h * In + off + 3] * c;
                itemWide[i] = _ww[2] * a + _ww[3] * c;
            }
        }
        _itemWide = itemWide; _userDense = userDense; _itemPart = itemPart;
    }

    /// <inheritdoc/>
    public void ScoreItems(EvalWindow window, ReadOnlySpan<int> users, Span<float> scores)
    {
        ArgumentNullException.ThrowIfNull(window);
        if (!ReferenceEquals(window, _window)) throw new ArgumentException($"{Name} was fitted on another EvalWindow; score with the window it was fitted on");
        int V = window.ItemCount, nU = users.Length, off = In - F;
        if (scores.Length != (long)nU * V) throw new ArgumentException($"scores: expected {nU} users x {V} items = {(long)nU * V} floats, got {scores.Length}");
        PrepareRanking();
        const int Chunk = 16;
        var cu = new float[Chunk * H];                 // (users, H) per-user constant of the first layer
        var wideU = new float[Chunk];
        var gmat = D > 0 ? new float[(long)D * Chunk * H] : [];   // (D, users·H)
        var pre = D > 0 ? new float[(long)V * Chunk * H] : [];    // (V, users·H)
        var pos = new float[Math.Max(D, 1)]; var neg = new float[Math.Max(D, 1)];
        var outArr = new float[(long)Chunk * V];                 // (users, V) scores of one chunk
        DeviceBuffer<float>? xb = null, gb = null, ob = null;
        try
        {
            if (D > 0)
            {
                xb = _b.Allocate<float>((long)V * D); _b.Upload(xb.All, _x);
                gb = _b.Allocate<float>(gmat.LongLength); ob = _b.Allocate<float>(pre.LongLength);
            }
            for (int s = 0; s < nU; s += Chunk)
            {
                int n = Math.Min(Chunk, nU - s);
                for (int j = 0; j < n; j++)
                {
                    int u = users[s + j];
                    float ud0 = F > 0 ? _userDense![u * 2] : 0, ud1 = F > 0 ? _userDense![u * 2 + 1] : 0;
                    bool hp = false, hn = false;
                    if (D > 0) (hp, hn) = Profiles(window.HistoryBeforeTest(u), pos, neg);
                    for (int h = 0; h < H; h++)
                    {
                        var w = _w1.AsSpan(h * In, In);
                        float c = _b1[h];
                        if (D > 0)
                        {
                            c += w[3 * D + 2] * (hp ? 1 : 0) + w[3 * D + 3] * (hn ? 1 : 0);
                            for (int d = 0; d < D; d++)
                                gmat[(long)d * Chunk * H + j * H + h] = w[d] * pos[d] + w[D + d] * neg[d] + w[2 * D + d] + w[3 * D] * pos[d] + w[3 * D + 1] * neg[d];
                        }
                        if (F > 0) c += w[off] * ud0 + w[off + 1] * ud1;
                        cu[j * H + h] = c;
                    }
                    wideU[j] = _bw + (F > 0 ? _ww[0] * ud0 + _ww[1] * ud1 : 0);
                }
                if (D > 0)
                {
                    _b.Upload(gb!.All, gmat);
                    _b.Gemm(false, false, V, Chunk * H, D, 1f, xb!.All, D, gb.All, Chunk * H, false, ob!.All, Chunk * H);   // (V, users·H)
                    _b.Download(ob.All, pre);
                }
                var head = new HeadJob(pre, _itemPart!, _itemWide!, _w2, _b2, cu, wideU, outArr, n, Chunk * H, H, V, D > 0);
                CpuParallel.ForRange(V, ref head);
                outArr.AsSpan(0, n * V).CopyTo(scores.Slice(s * V, n * V));
            }
        }
        finally { xb?.Dispose(); gb?.Dispose(); ob?.Dispose(); }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _p.Dispose(); _g.Dispose(); _m.Dispose(); _v.Dispose(); _segments.Dispose();
    }
}
