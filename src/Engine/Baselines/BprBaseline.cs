// Matrix factorisation with the BPR loss, trained by our own AdamW on an IBackend; full ranking by one GEMM per batch.
using System.Numerics.Tensors;
using FastRec.Engine.Evaluation;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;

namespace FastRec.Engine.Baselines;

/// <summary>Hyper-parameters of <see cref="BprBaseline"/>.</summary>
public sealed record BprOptions
{
    /// <summary>d, the width of the user and item embeddings.</summary>
    public int Dim { get; init; } = 64;
    /// <summary>Passes over the training likes.</summary>
    public int Epochs { get; init; } = 25;
    /// <summary>(user, liked item, sampled item) triples per AdamW step.</summary>
    public int BatchSize { get; init; } = 1024;
    /// <summary>AdamW learning rate (constant).</summary>
    public float LearningRate { get; init; } = 0.001f;
    /// <summary>λ, the L2 penalty (λ/2)·(‖p_u‖² + ‖q_i‖² + ‖q_j‖²) on the embeddings of each triple.</summary>
    public float L2 { get; init; } = 0.1f;
    /// <summary>Standard deviation of the normal initialisation of the embeddings.</summary>
    public float InitStd { get; init; } = 0.1f;
    /// <summary>Seed of the initialisation, the shuffles and the negative sampling.</summary>
    public ulong Seed { get; init; } = 42;
    /// <summary>The latest fraction of the training rows the score calibration is fitted on, scored by a model trained on
    /// the earlier rows only (then the model is trained again on every row); 0 = calibrate in-sample on every training row.</summary>
    public double CalibrationFraction { get; init; } = 0.1;
}

/// <summary>
/// Matrix factorisation trained with BPR: x(u, i) = p_u·q_i + b_i with user and item embeddings of width d and an item
/// bias. Each epoch visits every distinct (user, item) training-window like (label &gt;= 0.5) once in a seeded shuffle,
/// pairs it with an item j drawn uniformly (<see cref="Rng"/>) from the catalogue items the user did not interact with in
/// training, and minimises the batch mean of softplus(−(x(u,i) − x(u,j))) + (λ/2)(‖p_u‖² + ‖q_i‖² + ‖q_j‖²).
/// Parameters, gradients and moments live in <see cref="IBackend"/> buffers (one flat buffer [P (U,d) | Q (V,d) | b (V)],
/// one <see cref="AdamSegment"/> per tensor, no weight decay) and each step is <see cref="IBackend.AdamW"/>; the batch
/// gradient is accumulated on the host (directly into the buffer on CPU backends). Deterministic for a seed.
/// <para>An ID model is blind to what it did not train on: a user with no training like has no embedding (p_u = 0, so
/// the score is the item bias alone, a popularity ranking) and an item never liked in training has only been pushed
/// down as a sampled negative. The user's history after training is not used (no fold-in).</para>
/// <para>As an <see cref="IBaseline"/> the score is calibrated with a 1-D logistic regression on the training window,
/// cross-fitted: a first model is trained on the training rows before the last <see cref="BprOptions.CalibrationFraction"/>
/// of them (by time), the calibration is fitted on its scores of those last rows (which it did not train on; users first
/// seen there get the bias alone, as new users at test time), then the model is trained on every training row and keeps
/// that calibration. In-sample scores would not do: the embeddings memorise the training likes, and a calibration
/// fitted on them is over-confident (test log loss 2.3 instead of 0.69 on MovieTweetings). Costs a second training.</para>
/// </summary>
public sealed class BprBaseline : CalibratedBaseline
{
    private readonly float[] _p, _q, _b;   // (U, d), (V, d), (V)
    private float[] _gather = [];           // (users, d) scratch of ScoreItems

    /// <inheritdoc/>
    public override string Name => "BPR-MF";
    /// <summary>The options trained with.</summary>
    public BprOptions Options { get; }
    /// <summary>Mean BPR loss (without the penalty) of each epoch.</summary>
    public IReadOnlyList<double> EpochLosses { get; }

    private BprBaseline(EvalWindow window, BprOptions options, float[] p, float[] q, float[] b, double[] losses) : base(window)
    {
        Options = options; _p = p; _q = q; _b = b; EpochLosses = losses;
    }

    /// <summary>User <paramref name="user"/>'s embedding (zeros without a training like). (d)</summary>
    public ReadOnlySpan<float> UserVector(int user) => _p.AsSpan(user * Options.Dim, Options.Dim);
    /// <summary>Item <paramref name="item"/>'s embedding. (d)</summary>
    public ReadOnlySpan<float> ItemVector(int item) => _q.AsSpan(item * Options.Dim, Options.Dim);
    /// <summary>The item biases. (V)</summary>
    public ReadOnlySpan<float> ItemBias => _b;

    /// <summary>Trains on <paramref name="window"/>'s training likes with <paramref name="backend"/>'s AdamW, then calibrates.</summary>
    public static BprBaseline Fit(EvalWindow window, IBackend backend, BprOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(window); ArgumentNullException.ThrowIfNull(backend);
        var o = options ?? new BprOptions();
        if (o.Dim < 1) throw new ArgumentOutOfRangeException(nameof(options), o.Dim, $"Dim must be >= 1, got {o.Dim}");
        if (o.Epochs < 1) throw new ArgumentOutOfRangeException(nameof(options), o.Epochs, $"Epochs must be >= 1, got {o.Epochs}");
        if (o.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), o.BatchSize, $"BatchSize must be >= 1, got {o.BatchSize}");
        if (!(o.LearningRate > 0 && float.IsFinite(o.LearningRate))) throw new ArgumentOutOfRangeException(nameof(options), o.LearningRate, $"LearningRate must be finite and > 0, got {o.LearningRate}");
        if (!(o.L2 >= 0 && float.IsFinite(o.L2))) throw new ArgumentOutOfRangeException(nameof(options), o.L2, $"L2 must be finite and >= 0, got {o.L2}");
        if (!(o.InitStd >= 0 && float.IsFinite(o.InitStd))) throw new ArgumentOutOfRangeException(nameof(options), o.InitStd, $"InitStd must be finite and >= 0, got {o.InitStd}");
        if (!(o.CalibrationFraction >= 0 && o.CalibrationFraction < 1)) throw new ArgumentOutOfRangeException(nameof(options), o.CalibrationFraction, $"CalibrationFraction must be in [0, 1), got {o.CalibrationFraction}");
        long total = (long)(window.UserCount + window.ItemCount) * o.Dim + window.ItemCount;
        if (total > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(options), o.Dim, $"Dim {o.Dim}: {window.UserCount} users + {window.ItemCount} items need {total} parameters, more than one buffer holds");
        float[] raw = [], labels = [];
        if (o.CalibrationFraction > 0)
        {
            long cutoff = Cutoff(window, o.CalibrationFraction);
            var (early, _) = Train(window, backend, o, cutoff);
            (raw, labels) = TailScores(window, o.Dim, early, cutoff);
        }
        var (all, losses) = Train(window, backend, o, long.MaxValue);
        int qOff = window.UserCount * o.Dim, bOff = qOff + window.ItemCount * o.Dim;
        var model = new BprBaseline(window, o, all[..qOff], all[qOff..bOff], all[bOff..], losses);
        if (o.CalibrationFraction > 0) model.Calibrate(raw, labels);
        else model.Calibrate();
        return model;
    }

    /// <summary>The timestamp from which the last <paramref name="fraction"/> of the training rows start.</summary>
    private static long Cutoff(EvalWindow window, double fraction)
    {
        var ts = new List<long>();
        for (int u = 0; u < window.UserCount; u++) foreach (long t in window.TrainRows(u).Timestamps) ts.Add(t);
        if (ts.Count == 0) throw new ArgumentException("window: the training window is empty", nameof(window));
        ts.Sort();
        long cutoff = ts[(int)Math.Min(ts.Count - 1, Math.Floor((1 - fraction) * ts.Count))];
        if (cutoff == ts[0])
            throw new ArgumentException($"window: no training row is earlier than the last {fraction:P0} of them (timestamp {cutoff}) to cross-fit the calibration; use CalibrationFraction 0", nameof(window));
        return cutoff;
    }

    /// <summary>Raw scores and labels of the training rows at or after <paramref name="cutoff"/> under parameters <paramref name="w"/>.</summary>
    private static (float[] Raw, float[] Labels) TailScores(EvalWindow window, int d, float[] w, long cutoff)
    {
        int qOff = window.UserCount * d, bOff = qOff + window.ItemCount * d;
        var raw = new List<float>(); var labels = new List<float>();
        for (int u = 0; u < window.UserCount; u++)
        {
            var rows = window.TrainRows(u);
            for (int r = 0; r < rows.Count; r++)
            {
                if (rows.Timestamps[r] < cutoff) continue;
                int i = rows.Items[r];
                raw.Add(TensorPrimitives.Dot(w.AsSpan(u * d, d), w.AsSpan(qOff + i * d, d)) + w[bOff + i]);
                labels.Add(rows.Labels[r]);
            }
        }
        return (raw.ToArray(), labels.ToArray());
    }

    /// <summary>Trains on the training rows before <paramref name="cutoff"/>; returns the flat parameters [P | Q | b] and the epoch losses.</summary>
    private static (float[] Params, double[] Losses) Train(EvalWindow window, IBackend backend, BprOptions o, long cutoff)
    {
        int U = window.UserCount, V = window.ItemCount, d = o.Dim;
        int n = (U + V) * d + V, qOff = U * d, bOff = (U + V) * d;

        // Distinct likes (u, i), and each user's distinct training items, sorted (the items negatives avoid).
        var likes = new List<(int User, int Item)>();
        var seen = new int[U][];
        var liked = new LikedHistory(V);
        var hasLike = new bool[U];
        for (int u = 0; u < U; u++)
        {
            var train = window.TrainRows(u);
            int end = 0;
            while (end < train.Count && train.Timestamps[end] < cutoff) end++;
            var rows = new UserRows(u, train.Items[..end], train.Labels[..end], train.Timestamps[..end], train.Parts[..end]);
            liked.Advance(rows);
            foreach (int i in liked.Items) likes.Add((u, i));
            hasLike[u] = liked.Items.Count > 0;
            var items = rows.Items.ToArray();
            Array.Sort(items);
            seen[u] = items.Distinct().ToArray();
        }
        if (likes.Count == 0) throw new ArgumentException("window: the training window has no positive (label >= 0.5) to train BPR on", nameof(window));

        ulong initSeed = Rng.Hash(o.Seed, 1), shuffleSeed = Rng.Hash(o.Seed, 2), negSeed = Rng.Hash(o.Seed, 3);
        var init = new float[n];
        for (int u = 0; u < U; u++)
            if (hasLike[u]) for (int c = 0; c < d; c++) init[u * d + c] = o.InitStd * Rng.Normal(initSeed, (ulong)(u * d + c));
        for (int k = qOff; k < bOff; k++) init[k] = o.InitStd * Rng.Normal(initSeed, (ulong)k);

        using var param = backend.Allocate<float>(n);
        using var grad = backend.Allocate<float>(n);
        using var m1 = backend.Allocate<float>(n);
        using var m2 = backend.Allocate<float>(n);
        using var norm = backend.Allocate<float>(1);
        using var segments = backend.Allocate<AdamSegment>(3);
        backend.Upload(param.All, init);
        backend.Upload(segments.All, [new AdamSegment(0, qOff, 1f, 0f), new AdamSegment(qOff, V * d, 1f, 0f), new AdamSegment(bOff, V, 1f, 0f)]);
        // CPU backends: read the parameters and write the gradient in place; otherwise through host copies.
        bool onHost = param is CpuBuffer<float>;
        float[] hostP = onHost ? [] : init, hostG = onHost ? [] : new float[n];

        int N = likes.Count, step = 0;
        var order = new int[N];
        var losses = new double[o.Epochs];
        ulong negCounter = 0;
        var diff = new float[d];
        for (int epoch = 0; epoch < o.Epochs; epoch++)
        {
            for (int k = 0; k < N; k++) order[k] = k;
            for (int k = N - 1; k > 0; k--)
            {
                int r = (int)(Rng.Hash(shuffleSeed, (ulong)epoch * (ulong)N + (ulong)k) % (ulong)(k + 1));
                (order[k], order[r]) = (order[r], order[k]);
            }
            double lossSum = 0;
            for (int s = 0; s < N; s += o.BatchSize)
            {
                int B = Math.Min(o.BatchSize, N - s);
                Span<float> P, G;
                if (onHost) { backend.Zero(grad.All); P = param.All.Span; G = grad.All.Span; }
                else { backend.Download(param.All, hostP); Array.Clear(hostG); P = hostP; G = hostG; }
                float inv = 1f / B, reg = o.L2 / B;
                for (int t = s; t < s + B; t++)
                {
                    var (u, i) = likes[order[t]];
                    int j = Negative(seen[u], V, negSeed, ref negCounter);
                    if (j < 0) continue;   // the user interacted with every item: no negative exists
                    var pu = P.Slice(u * d, d); var qi = P.Slice(qOff + i * d, d); var qj = P.Slice(qOff + j * d, d);
                    TensorPrimitives.Subtract(qi, qj, diff);
                    double x = TensorPrimitives.Dot(pu, (ReadOnlySpan<float>)diff) + P[bOff + i] - P[bOff + j];
                    // softplus(−x) and its derivative −σ(−x), stable for any x.
                    lossSum += Math.Max(-x, 0) + Math.Log(1 + Math.Exp(-Math.Abs(x)));
                    float g = (float)(-1 / (1 + Math.Exp(x))) * inv;
                    var gu = G.Slice(u * d, d); var gi = G.Slice(qOff + i * d, d); var gj = G.Slice(qOff + j * d, d);
                    for (int c = 0; c < d; c++)
                    {
                        float puc = pu[c];
                        gu[c] += g * diff[c] + reg * puc;
                        gi[c] += g * puc + reg * qi[c];
                        gj[c] += -g * puc + reg * qj[c];
                    }
                    G[bOff + i] += g; G[bOff + j] -= g;
                }
                if (!onHost) backend.Upload(grad.All, hostG);
                backend.AdamW(param.All, grad.All, m1.All, m2.All, segments.All, norm.All, 0f, o.LearningRate, 0.9f, 0.999f, 1e-8f, ++step);
            }
            losses[epoch] = lossSum / N;
            if (!double.IsFinite(losses[epoch])) throw new InvalidOperationException($"BPR: the mean loss of epoch {epoch + 1} is {losses[epoch]}");
        }
        var trained = new float[n];
        backend.Download(param.All, trained);
        return (trained, losses);
    }

    /// <summary>A uniform item not in <paramref name="seen"/> (sorted), or −1 when the user has seen every item.</summary>
    private static int Negative(int[] seen, int V, ulong seed, ref ulong counter)
    {
        if (seen.Length >= V) return -1;
        while (true)
        {
            int j = (int)(Rng.Hash(seed, counter++) % (ulong)V);
            if (Array.BinarySearch(seen, j) < 0) return j;
        }
    }

    /// <inheritdoc/>
    protected internal override double RawScore(int user, int item, UserRows history, bool leaveOut)
        => TensorPrimitives.Dot(UserVector(user), ItemVector(item)) + _b[item];

    /// <summary>Writes p_u·q_i + b_i for every item: (users, d)·(V, d)ᵀ by one GEMM, plus the biases. (users.Length, V)</summary>
    public override void ScoreItems(EvalWindow window, ReadOnlySpan<int> users, Span<float> scores)
    {
        int V = _b.Length, d = Options.Dim;
        ScorerArgs.Check(window, users, scores, V);
        if (!ReferenceEquals(window.UserIds, Window.UserIds))
            throw new ArgumentException("window: its users are not the ones the embeddings were trained for (use the fitted window)", nameof(window));
        if (users.Length == 0) return;
        if (_gather.Length < users.Length * d) _gather = new float[users.Length * d];
        for (int b = 0; b < users.Length; b++) UserVector(users[b]).CopyTo(_gather.AsSpan(b * d, d));
        CpuGemm.Sgemm(false, true, users.Length, V, d, 1f, _gather, d, _q, d, false, scores, V);
        for (int b = 0; b < users.Length; b++) TensorPrimitives.Add(scores.Slice(b * V, V), _b, scores.Slice(b * V, V));
    }
}
