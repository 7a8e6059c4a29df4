// A trained TowerModel frozen for scoring the whole catalogue for one user: immutable, thread-safe, allocation-free per
// call with a workspace. Used by full-ranking evaluation and by the serving CatalogRecommender.
using System.Numerics.Tensors;
using FastRec.Engine.Data;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;

namespace FastRec.Engine.Representations;

/// <summary>Per-caller scratch of <see cref="TowerScorer.Score"/>: one per concurrent caller (not thread-safe itself).</summary>
public sealed class TowerWorkspace
{
    internal readonly int Parts, Chunk;
    internal readonly float[] Rows, Pre, Probs, Hist, Um;   // (parts, C, In), (parts, C, H), (parts, N), (N, d), (d)
    internal readonly int[] Items;
    internal readonly float[] Labels;

    internal TowerWorkspace(TowerScorer s)
    {
        Parts = Math.Max(CpuParallel.Threads, 1); Chunk = TowerScorer.ChunkItems;
        Rows = new float[(long)Parts * Chunk * s.InputWidth]; Pre = new float[(long)Parts * Chunk * s.Hidden];
        Probs = new float[Parts * s.HistoryLength]; Hist = new float[s.HistoryLength * s.Dim]; Um = new float[s.Dim];
        Items = new int[s.HistoryLength]; Labels = new float[s.HistoryLength];
    }
}

/// <summary>
/// The scoring half of <see cref="TowerModel"/> with its item table at a point in time: item vectors (V, d), each item's
/// features (rate and log-counts over the interactions the table was taken from) and the global prior. Scores of a user
/// = z_rated + log σ(z_like) for every item: log p(rated) up to a constant (z_rated is the log-odds of a rating against
/// items sampled uniformly; p(rated) is tiny, so log p ≈ z_rated + const) plus log p(like | rated). Measured on the
/// validation window: log σ(z_rated) in place of z_rated saturates on every popular item and lets the "like" output
/// rank old classics first (NDCG@10 0.05 against 0.12). A model without the "rated" output ranks by log σ(z_like).
/// Immutable: <see cref="WithItems"/> returns a new scorer that shares the weights.
/// </summary>
public sealed partial class TowerScorer
{
    internal const int ChunkItems = 512;
    private const int F = TowerModel.DenseCount, ItemF = F - 2;
    private readonly float[] _vall;        // (V, d)
    private readonly float[] _itemFeat;    // (V, F − 2) raw item features (TowerModel.ItemFeatures)
    private readonly Shared _w;

    /// <summary>The weights every scorer derived from one model shares.</summary>
    internal sealed class Shared(int d, int D, int H, int O, int N, float[] proj, float[] projBias, float[] e, float[] w1, float[] b1,
        float[] w2, float[] b2, float[] ww, float[] bw, double[] mean, double[] std, double prior)
    {
        public readonly int d = d, D = D, H = H, O = O, N = N, In = TowerMath.InputWidth(d);
        public readonly float[] Proj = proj, ProjBias = projBias, E = e, W1 = w1, B1 = b1, W2 = w2, B2 = b2, Ww = ww, Bw = bw;
        public readonly double[] Mean = mean, Std = std;
        public readonly double Prior = prior;
    }

    internal TowerScorer(Shared w, float[] vall, float[] itemFeat)
    {
        _w = w; _vall = vall; _itemFeat = itemFeat;
        ItemCount = itemFeat.Length / ItemF;
    }

    /// <summary>V, the items scored.</summary>
    public int ItemCount { get; }
    /// <summary>d, the tower width.</summary>
    public int Dim => _w.d;
    /// <summary>D, the width of an item encoding (<see cref="WithItems"/>).</summary>
    public int EncodingDim => _w.D;
    /// <summary>N, the most history items read.</summary>
    public int HistoryLength => _w.N;
    internal int InputWidth => _w.In;
    internal int Hidden => _w.H;

    /// <summary>A workspace for one caller of <see cref="Score"/>.</summary>
    public TowerWorkspace CreateWorkspace() => new(this);

    /// <summary>Item <paramref name="item"/>'s tower vector (d).</summary>
    public ReadOnlySpan<float> ItemVector(int item) => _vall.AsSpan(item * _w.d, _w.d);

    /// <summary>
    /// A scorer with <paramref name="encodings"/> ((m, D), one encoder vector per new item, as the model's item vectors
    /// were made) appended as items V..V+m−1: projected without a residual, never interacted with (cold).
    /// </summary>
    public TowerScorer WithItems(ReadOnlySpan<float> encodings)
    {
        int D = _w.D, d = _w.d;
        if (encodings.Length % D != 0) throw new ArgumentException($"encodings: {encodings.Length} floats is not a whole number of {D}-wide vectors");
        int m = encodings.Length / D;
        var vall = new float[_vall.LongLength + (long)m * d];
        _vall.CopyTo(vall, 0);
        var x = new float[D];
        for (int k = 0; k < m; k++)
        {
            var src = encodings.Slice(k * D, D);
            for (int c = 0; c < D; c++)
                if (!float.IsFinite(src[c])) throw new ArgumentException($"encodings: new item {k}, column {c} is {src[c]}");
            float norm = TensorPrimitives.Norm(src);
            if (norm > 0) TensorPrimitives.Divide(src, norm, x); else Array.Clear(x);
            var v = vall.AsSpan((ItemCount + k) * d, d);
            for (int o = 0; o < d; o++) v[o] = TensorPrimitives.Dot(_w.Proj.AsSpan(o * D, D), x) + _w.ProjBias[o];
        }
        var feat = new float[_itemFeat.Length + ItemF * m];
        _itemFeat.CopyTo(feat, 0);
        float rate = (float)HistoryFeatures.Rate(0, 0, _w.Prior, HistoryFeatures.DefaultAlpha);
        for (int k = 0; k < m; k++) feat[(ItemCount + k) * ItemF] = rate;
        return new TowerScorer(_w, vall, feat);
    }

    /// <summary>
    /// Writes the score of every item (V) for a user whose rated history is <paramref name="items"/> with
    /// <paramref name="labels"/> (in time order, oldest first; the last <see cref="HistoryLength"/> are read; labels in
    /// [0, 1], liked = ≥ 0.5). An empty history is a new user. Allocates nothing; thread-safe with one workspace per caller.
    /// </summary>
    public void Score(ReadOnlySpan<int> items, ReadOnlySpan<float> labels, Span<float> scores, TowerWorkspace ws)
    {
        ArgumentNullException.ThrowIfNull(ws);
        if (items.Length != labels.Length) throw new ArgumentException($"history: {items.Length} items but {labels.Length} labels");
        if (scores.Length != ItemCount) throw new ArgumentException($"scores: expected {ItemCount} floats (one per item), got {scores.Length}");
        if (ws.Parts < CpuParallel.Threads || ws.Rows.Length != (long)ws.Parts * ws.Chunk * _w.In || ws.Hist.Length != _w.N * _w.d)
            throw new ArgumentException("the workspace was made for another scorer or fewer threads; create one with CreateWorkspace()");
        int d = _w.d, n = Math.Min(items.Length, _w.N), s = items.Length - n;
        double uN = items.Length, uP = 0;
        for (int j = 0; j < items.Length; j++)
        {
            if ((uint)items[j] >= (uint)ItemCount) throw new ArgumentOutOfRangeException(nameof(items), items[j], $"history item {j} is outside the {ItemCount} items");
            if (!(labels[j] >= 0 && labels[j] <= 1)) throw new ArgumentOutOfRangeException(nameof(labels), labels[j], $"history label {j} must be in [0, 1]");
            uP += labels[j];
        }
        items.Slice(s, n).CopyTo(ws.Items); labels.Slice(s, n).CopyTo(ws.Labels);
        TowerMath.History(_vall, _w.E, d, ws.Items.AsSpan(0, n), ws.Labels.AsSpan(0, n), ws.Hist, ws.Um);
        Span<float> uf = stackalloc float[2];
        TowerModel.UserFeatures(uN, uP, _w.Prior, uf);
        float f0 = (float)((uf[0] - _w.Mean[0]) / _w.Std[0]), f1 = (float)((uf[1] - _w.Mean[1]) / _w.Std[1]);
        unsafe
        {
            fixed (float* pScores = scores)
            {
                var job = new ScoreJob(this, ws, n, f0, f1, pScores);
                CpuParallel.ForRange((ItemCount + ws.Chunk - 1) / ws.Chunk, ref job);
            }
        }
    }

    private readonly unsafe struct ScoreJob(TowerScorer s, TowerWorkspace ws, int n, float f0, float f1, float* scores) : IParallelRangeJob
    {
        public void Execute(int start, int end, int part)
        {
            var w = s._w;
            int d = w.d, In = w.In, H = w.H, C = ws.Chunk;
            var rows = ws.Rows.AsSpan((int)((long)part * C * In), C * In);
            var pre = ws.Pre.AsSpan(part * C * H, C * H);
            var probs = ws.Probs.AsSpan(part * w.N, w.N);
            Span<float> f = stackalloc float[F];
            f[0] = f0; f[1] = f1;
            for (int c = start; c < end; c++)
            {
                int i0 = c * C, m = Math.Min(C, s.ItemCount - i0);
                for (int q = 0; q < m; q++)
                {
                    int i = i0 + q;
                    var raw = s._itemFeat.AsSpan(i * ItemF, ItemF);
                    for (int e = 0; e < ItemF; e++) f[2 + e] = (float)((raw[e] - w.Mean[2 + e]) / w.Std[2 + e]);
                    float logCount = raw[1];
                    TowerMath.Row(ws.Hist, n, ws.Um, s._vall.AsSpan(i * d, d), logCount == 0, f, rows.Slice(q * In, In), probs);
                }
                CpuGemm.Sgemm(false, true, m, H, In, 1f, rows[..(m * In)], In, w.W1, In, false, pre[..(m * H)], H);   // (m, H)
                for (int q = 0; q < m; q++)
                {
                    var hq = pre.Slice(q * H, H);
                    TensorPrimitives.Add(hq, w.B1, hq);
                    TensorPrimitives.Max(hq, 0f, hq);
                    var fr = rows.Slice(q * In + 5 * d + 2, F);
                    float like = TensorPrimitives.Dot(hq, w.W2.AsSpan(0, H)) + w.B2[0] + TensorPrimitives.Dot(fr, w.Ww.AsSpan(0, F)) + w.Bw[0];
                    float score = LogSigmoid(like);
                    if (w.O == 2)
                    {
                        float zr = TensorPrimitives.Dot(hq, w.W2.AsSpan(H, H)) + w.B2[1] + TensorPrimitives.Dot(fr, w.Ww.AsSpan(F, F)) + w.Bw[1];
                        score += zr;
                    }
                    scores[i0 + q] = score;
                }
            }
        }
    }

    /// <summary>log σ(z) = −softplus(−z), stable for large |z|.</summary>
    internal static float LogSigmoid(float z) => -(MathF.Max(-z, 0) + MathF.Log(1 + MathF.Exp(-MathF.Abs(z))));
}
