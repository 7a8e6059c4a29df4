// The serving API: thread-safe, allocation-free scoring of (context, candidate) pairs on pre-packed CPU weights.
using FastRec.Engine.Model;
using FastRec.Engine.Text;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;

namespace FastRec.Engine.Serving;

/// <summary>The arithmetic of a <see cref="Predictor"/>'s encoder Linears (embeddings, attention, LayerNorm and the head are
/// fp32 either way).</summary>
public enum ServingPrecision
{
    /// <summary>fp32 weights and FMA (<see cref="PackedLinear"/>): the model's own numbers, the default.</summary>
    Float32,
    /// <summary>Symmetric int16 weights (per output column) and inputs (per row) multiplied exactly in int32
    /// (<see cref="QuantizedLinear"/>): half the weight bytes and ≈1.5x the multiply-adds per cycle on AVX-512BW; scores move
    /// by about 1e-3 (measured in docs/PERF.md). Opt-in.</summary>
    Int16,
}

/// <summary>How a <see cref="Predictor"/> builds and runs its inputs.</summary>
public sealed record PredictorOptions
{
    /// <summary>Arithmetic of the encoder's Linears: <see cref="ServingPrecision.Float32"/> (default) or the reduced-precision
    /// <see cref="ServingPrecision.Int16"/>.</summary>
    public ServingPrecision Precision { get; init; } = ServingPrecision.Float32;
    /// <summary>Longest sequence in tokens, special tokens included ([CLS] context [SEP] candidate [SEP]); in
    /// [3, max_position_embeddings]. Longer pairs are truncated longest-first, as in training. Default 64.</summary>
    public int MaxLength { get; init; } = 64;
    /// <summary>Candidates scored in one forward pass, in [1, 4096]; more are scored in chunks. Default 32.</summary>
    public int MaxBatch { get; init; } = 32;
    /// <summary>Threads one call may use for its GEMMs (0 = <see cref="CpuParallel.Threads"/>). Concurrent calls never
    /// oversubscribe: a call that finds the pool busy runs on its own thread.</summary>
    public int ThreadsPerCall { get; init; }
    /// <summary>Per-call workspaces kept for reuse (one per concurrently scoring thread); more concurrent calls than this
    /// allocate a workspace each. Default 2·processors, at least 8.</summary>
    public int Workspaces { get; init; } = Math.Max(8, 2 * Environment.ProcessorCount);
    /// <summary>[CLS] id (BERT uncased vocabulary: 101).</summary>
    public int ClsId { get; init; } = 101;
    /// <summary>[SEP] id (BERT uncased vocabulary: 102).</summary>
    public int SepId { get; init; } = 102;
    /// <summary>Dense-feature standardisation (x − mean)/std applied to raw features; null = features are used as given.</summary>
    public float[]? DenseMean { get; init; }
    /// <summary>See <see cref="DenseMean"/>.</summary>
    public float[]? DenseStd { get; init; }
}

/// <summary>
/// Scores (user context, candidate) pairs with a fine-tuned model, from many threads at once, with low and predictable latency.
/// <para>The weights are copied out of the model once and the four big Linear weights of every encoder layer are pre-packed
/// (<see cref="PackedWeight"/>, used by <see cref="PackedLinear"/> with bias and GELU fused); the model may be disposed
/// afterwards. Attention runs straight from the (B, T, 3C) projections (<see cref="CpuSimdBackend.AttentionInference"/>),
/// and when the head reads only [CLS] (<see cref="AdapterInput.Pooler"/>, <see cref="AdapterInput.Cls"/>), the last layer
/// computes keys and values for every token but its query, attention output and feed-forward for the [CLS] rows alone
/// (<see cref="AdapterInput.Mean"/> runs it on every token). Each call rents a workspace (activations sized for
/// <see cref="PredictorOptions.MaxBatch"/> × <see cref="PredictorOptions.MaxLength"/>) from a lock-free pool, so after
/// warm-up a call allocates nothing on the managed heap and calls on different threads never share mutable state.
/// Results are deterministic: the same request gives bit-identical scores whatever the thread or the load.</para>
/// <para>Inputs are WordPiece ids (the context segment: the context items' tokens, most recent first, joined by the
/// separator's tokens, as in training; and the candidate's tokens). The cross-encoder reads context and candidate in one
/// sequence, so the context cannot be encoded once for N candidates; <see cref="ScoreCandidates(ReadOnlySpan{int}, ReadOnlySpan{int}, ReadOnlySpan{int}, Span{float}, ReadOnlySpan{float})"/> batches them instead.</para>
/// Dimension letters: B candidates in a pass, T tokens, C hidden, NH heads, F feed-forward, D dense features.
/// </summary>
public sealed partial class Predictor : IDisposable
{
    private readonly CpuSimdBackend _b = new();
    private readonly DeviceBuffer<float> _params;      // (TotalSize) a copy of the model's parameters
    private readonly ParameterTensors _p;
    private readonly ServingLinear[] _wqkv, _wo, _wi, _wout;   // (L) per layer: (3C, C), (C, C), (F, C), (C, F)
    private readonly Workspace?[] _pool;
    private readonly int C, NH, F, L, D, InW;
    private readonly float _eps;
    private readonly Activation _act;
    private int _inFlight;
    private volatile bool _disposed;

    /// <summary>The encoder's configuration.</summary>
    public BertConfig Bert { get; }
    /// <summary>The head's configuration.</summary>
    public AdapterConfig Adapter { get; }
    /// <summary>The options in force.</summary>
    public PredictorOptions Options { get; }
    /// <summary>Bytes of pre-packed weights.</summary>
    public long PackedBytes { get; }

    /// <summary>
    /// A predictor over a copy of <paramref name="model"/>'s current parameters (any backend; they are downloaded once).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">an option is out of range (the message names it).</exception>
    public Predictor(RecModel model, PredictorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        Options = options ?? new PredictorOptions();
        Bert = model.Bert;
        Adapter = model.Adapter;
        C = Bert.HiddenSize; NH = Bert.NumAttentionHeads; F = Bert.IntermediateSize; L = Bert.NumHiddenLayers;
        D = Adapter.DenseFeatures; InW = C + D;
        _eps = (float)Bert.LayerNormEps;
        _act = Bert.FeedForwardActivation;
        ValidateOptions();

        var host = new float[model.Layout.TotalSize];
        model.Backend.Download(model.Params.All, host);
        _params = _b.Allocate<float>(host.Length);
        _b.Upload(_params.All, host);
        _p = ParameterTensors.Create(model.Layout, _params, Adapter.HiddenSizes.Length, _ => true);

        _wqkv = new ServingLinear[L]; _wo = new ServingLinear[L]; _wi = new ServingLinear[L]; _wout = new ServingLinear[L];
        long bytes = 0;
        var precision = Options.Precision;
        try
        {
            for (int l = 0; l < L; l++)
            {
                var t = _p.Layers[l];
                var s = BertSchema.Layer(l);
                _wqkv[l] = new ServingLinear($"{s.Query.Weight} | {s.Key.Weight} | {s.Value.Weight}", t.Wqkv.Span, t.Bqkv.Span, 3 * C, C, precision);
                _wo[l] = new ServingLinear(s.AttentionOutput.Weight, t.WAttnOut.Span, t.BAttnOut.Span, C, C, precision);
                _wi[l] = new ServingLinear(s.Intermediate.Weight, t.WInter.Span, t.BInter.Span, F, C, precision);
                _wout[l] = new ServingLinear(s.Output.Weight, t.WOut.Span, t.BOut.Span, C, F, precision);
                bytes += _wqkv[l].Bytes + _wo[l].Bytes + _wi[l].Bytes + _wout[l].Bytes;
            }
        }
        catch
        {
            foreach (var a in new[] { _wqkv, _wo, _wi, _wout })
                foreach (var x in a) x?.Dispose();
            _params.Dispose();
            _b.Dispose();
            throw;
        }
        PackedBytes = bytes;
        _pool = new Workspace?[Options.Workspaces];
    }

    private void ValidateOptions()
    {
        var o = Options;
        if (o.MaxLength < 3 || o.MaxLength > Bert.MaxPositionEmbeddings)
            throw new ArgumentOutOfRangeException(nameof(PredictorOptions.MaxLength), o.MaxLength,
                $"PredictorOptions.MaxLength must be in [3, max_position_embeddings = {Bert.MaxPositionEmbeddings}], got {o.MaxLength}");
        if (o.MaxBatch < 1 || o.MaxBatch > 4096)
            throw new ArgumentOutOfRangeException(nameof(PredictorOptions.MaxBatch), o.MaxBatch, $"PredictorOptions.MaxBatch must be in [1, 4096], got {o.MaxBatch}");
        if (o.ThreadsPerCall < 0)
            throw new ArgumentOutOfRangeException(nameof(PredictorOptions.ThreadsPerCall), o.ThreadsPerCall, $"PredictorOptions.ThreadsPerCall must be >= 0, got {o.ThreadsPerCall}");
        if (!Enum.IsDefined(o.Precision))
            throw new ArgumentOutOfRangeException(nameof(PredictorOptions.Precision), o.Precision, $"PredictorOptions.Precision must be Float32 or Int16, got {o.Precision}");
        if (o.Workspaces < 1)
            throw new ArgumentOutOfRangeException(nameof(PredictorOptions.Workspaces), o.Workspaces, $"PredictorOptions.Workspaces must be at least 1, got {o.Workspaces}");
        foreach (var (name, id) in new[] { ("ClsId", o.ClsId), ("SepId", o.SepId) })
            if ((uint)id >= (uint)Bert.VocabSize)
                throw new ArgumentOutOfRangeException(name, id, $"PredictorOptions.{name} = {id} is outside [0, vocab_size = {Bert.VocabSize})");
        if ((o.DenseMean is null) != (o.DenseStd is null))
            throw new ArgumentException("PredictorOptions.DenseMean and DenseStd must be given together");
        if (o.DenseMean is not null && (o.DenseMean.Length != D || o.DenseStd!.Length != D))
            throw new ArgumentException($"PredictorOptions.DenseMean/DenseStd: the adapter takes D = {D} dense features, got {o.DenseMean.Length} means and {o.DenseStd!.Length} stds");
    }

    // ------------------------------------------------------------------ public scoring API

    /// <summary>
    /// The probability σ(logit) that the user with context tokens <paramref name="context"/> engages with the candidate
    /// <paramref name="candidate"/>. <paramref name="dense"/>: the D raw dense features of the pair (empty when D = 0).
    /// Allocation-free after warm-up.
    /// </summary>
    /// <exception cref="ObjectDisposedException">the predictor was disposed.</exception>
    /// <exception cref="ArgumentException">a token id is outside the vocabulary or <paramref name="dense"/> does not hold D values.</exception>
    public float Score(ReadOnlySpan<int> context, ReadOnlySpan<int> candidate, ReadOnlySpan<float> dense = default)
    {
        Span<int> offsets = [0, candidate.Length];
        Span<float> score = stackalloc float[1];
        ScoreCandidates(context, candidate, offsets, score, dense);
        return score[0];
    }

    /// <summary>
    /// Scores one context against N candidates given in CSR form: candidate i is
    /// <paramref name="candidates"/>[<paramref name="offsets"/>[i] .. <paramref name="offsets"/>[i+1]] (offsets: N + 1 values).
    /// Candidates are batched <see cref="PredictorOptions.MaxBatch"/> at a time. <paramref name="dense"/> (N, D) raw features,
    /// empty when D = 0. Writes N probabilities into <paramref name="scores"/>. Allocation-free after warm-up.
    /// </summary>
    /// <exception cref="ObjectDisposedException">the predictor was disposed.</exception>
    /// <exception cref="ArgumentException">bad offsets, a token id outside the vocabulary, or a length mismatch (named).</exception>
    public void ScoreCandidates(ReadOnlySpan<int> context, ReadOnlySpan<int> candidates, ReadOnlySpan<int> offsets, Span<float> scores,
        ReadOnlySpan<float> dense = default) => Run(context, candidates, offsets, scores, dense, probabilities: true);

    /// <summary>
    /// As <see cref="ScoreCandidates(ReadOnlySpan{int}, ReadOnlySpan{int}, ReadOnlySpan{int}, Span{float}, ReadOnlySpan{float})"/>, but writes the N logits z (the head's output before σ): for ranking, calibration or
    /// comparing two precisions without the squashing of σ. Allocation-free after warm-up.
    /// </summary>
    /// <exception cref="ObjectDisposedException">the predictor was disposed.</exception>
    /// <exception cref="ArgumentException">bad offsets, a token id outside the vocabulary, or a length mismatch (named).</exception>
    public void ScoreLogits(ReadOnlySpan<int> context, ReadOnlySpan<int> candidates, ReadOnlySpan<int> offsets, Span<float> logits,
        ReadOnlySpan<float> dense = default) => Run(context, candidates, offsets, logits, dense, probabilities: false);

    private void Run(ReadOnlySpan<int> context, ReadOnlySpan<int> candidates, ReadOnlySpan<int> offsets, Span<float> scores,
        ReadOnlySpan<float> dense, bool probabilities)
    {
        Enter();
        try
        {
            string outName = probabilities ? "scores" : "logits";
            int n = CheckCsr(candidates, nameof(candidates), offsets, minItems: 1);
            if (scores.Length != n) throw new ArgumentException($"{outName}: expected N = {n} elements, got {scores.Length}", outName);
            if (dense.Length != (long)n * D)
                throw new ArgumentException($"dense: expected (N={n}, D={D}) = {(long)n * D} raw features, got {dense.Length}", nameof(dense));
            CheckIds(context, nameof(context));

            var w = Rent();
            try
            {
                for (int s = 0; s < n; s += Options.MaxBatch)
                {
                    int B = Math.Min(Options.MaxBatch, n - s);
                    int T = Pack(w, context, candidates, offsets.Slice(s, B + 1), dense.Slice(s * D, B * D), B);
                    var v = w.Carve(this, B, T);
                    Forward(w, v, B, T);
                    ReadOnlySpan<float> z = v.Logits.Span;
                    for (int b = 0; b < B; b++) scores[s + b] = probabilities ? (float)(1.0 / (1.0 + Math.Exp(-(double)z[b]))) : z[b];
                }
            }
            finally { Return(w); }
        }
        finally { Exit(); }
    }

    /// <summary>Checks N token sequences in CSR form (<paramref name="offsets"/>: N + 1 non-decreasing values from 0 to
    /// <paramref name="items"/>.Length, N at least <paramref name="minItems"/>) and their token ids; returns N.</summary>
    private int CheckCsr(ReadOnlySpan<int> items, string itemsName, ReadOnlySpan<int> offsets, int minItems)
    {
        int n = offsets.Length - 1;
        if (n < minItems)
            throw new ArgumentException($"offsets: expected N + 1 >= {minItems + 1} values (CSR offsets of N {itemsName}), got {offsets.Length}", nameof(offsets));
        if (offsets[0] != 0 || offsets[n] != items.Length)
            throw new ArgumentException($"offsets: must run from 0 to {itemsName}.Length = {items.Length}, got {offsets[0]} .. {offsets[n]}", nameof(offsets));
        for (int i = 0; i < n; i++)
            if (offsets[i + 1] < offsets[i])
                throw new ArgumentException($"offsets: must not decrease, but offsets[{i + 1}] = {offsets[i + 1]} < offsets[{i}] = {offsets[i]}", nameof(offsets));
        CheckIds(items, itemsName);
        return n;
    }

    private void CheckIds(ReadOnlySpan<int> ids, string name)
    {
        int V = Bert.VocabSize;
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)V)
                throw new ArgumentException($"{name}[{i}] = {ids[i]} is not a token id of this model's vocabulary [0, {V})", name);
    }

    // ------------------------------------------------------------------ input assembly

    /// <summary>Writes ids, token types, mask and standardised dense features of B pairs into the workspace; returns T.</summary>
    private int Pack(Workspace w, ReadOnlySpan<int> context, ReadOnlySpan<int> candidates, ReadOnlySpan<int> offsets,
        ReadOnlySpan<float> dense, int B)
    {
        int budget = Options.MaxLength - 3, T = 0;
        Span<int> na = stackalloc int[B], nb = stackalloc int[B];
        for (int b = 0; b < B; b++)
        {
            (na[b], nb[b]) = BertTextTokenizer.TruncatePair(context.Length, offsets[b + 1] - offsets[b], budget);   // as training does
            T = Math.Max(T, na[b] + nb[b] + 3);
        }
        Span<int> ids = w.Ids.All.Span[..(B * T)], types = w.Types.All.Span[..(B * T)];
        Span<float> mask = w.Mask.All.Span[..(B * T)];
        int pad = Bert.PadTokenId;
        for (int b = 0; b < B; b++)
        {
            Span<int> row = ids.Slice(b * T, T), trow = types.Slice(b * T, T);
            Span<float> mrow = mask.Slice(b * T, T);
            int a = na[b], c = nb[b], len = a + c + 3;
            row[0] = Options.ClsId;
            context[..a].CopyTo(row[1..]);
            row[a + 1] = Options.SepId;
            candidates.Slice(offsets[b], c).CopyTo(row[(a + 2)..]);
            row[len - 1] = Options.SepId;
            row[len..].Fill(pad);
            trow[..(a + 2)].Clear();
            trow[(a + 2)..len].Fill(1);
            trow[len..].Clear();
            mrow[..len].Fill(1f);
            mrow[len..].Clear();
        }
        if (D > 0)
        {
            Span<float> dst = w.Dense.All.Span[..(B * D)];
            float[]? mean = Options.DenseMean, std = Options.DenseStd;
            for (int i = 0; i < B * D; i++)
            {
                int f = i % D;
                dst[i] = mean is null ? dense[i] : (dense[i] - mean[f]) / std![f];
            }
        }
        return T;
    }

    // ------------------------------------------------------------------ the inference forward

    /// <summary>The encoder (and head) of one packed batch. With <paramref name="allTokens"/> every layer runs on every token and
    /// the pass stops there: v.H holds the last hidden state (B, T, C) and the head is not run. The head input
    /// <see cref="AdapterInput.Mean"/> also runs the last layer on every token (it averages them all); Pooler and Cls run
    /// it on the [CLS] rows alone.</summary>
    private void Forward(Workspace w, in Views v, int B, int T, bool allTokens = false)
    {
        bool mean = Adapter.Input == AdapterInput.Mean;
        int N = B * T, threads = Options.ThreadsPerCall;
        var p = _p;
        var typeIds = w.Types.Slice(0, N);
        _b.EmbeddingForward(v.Sum, w.Ids.Slice(0, N), typeIds, p.WordEmb, p.PosEmb, p.TypeEmb, B, T, C);       // (B, T, C)
        _b.AddLayerNormForward(v.H, v.Sum, v.Mean, v.Rstd, v.Sum, View<float>.None, p.EmbLnW, p.EmbLnB, N, C, _eps);
        var mask = w.Mask.Slice(0, N);
        // Every token through the layers (all of them for Mean and allTokens, all but the last for Pooler and Cls), in place
        // in v.H; the attention output and the feed-forward output share one scratch, the activation is fused.
        var all = new LayerViews
        {
            X = v.H, QkvIn = v.H, Qkv = v.Qkv, Atty = v.Atty, AttnOut = v.Ao, Sum1 = v.Sum, Mean1 = v.Mean, Rstd1 = v.Rstd, H1 = v.H1,
            Inter = v.Inter, InterAct = v.Inter, Out = v.Ao, Sum2 = v.Sum, Mean2 = v.Mean, Rstd2 = v.Rstd, H2 = v.H,
        };
        for (int l = 0; l < (allTokens || mean ? L : L - 1); l++)
        {
            var k = new ServingKernels(this, w, l, mask, threads);
            BertLayer.Forward(ref k, _b, p.Layers[l], all, B, T, T, C, _eps, _act);
        }
        if (allTokens) return;
        // The last layer (Pooler, Cls): keys and values of every token, but the head reads only [CLS], so the query, the
        // attention output and the feed-forward run on the B [CLS] rows alone (rows B·C of the scratch views; the residual
        // input h[:, 0] is gathered into the Ao scratch, which the layer does not write).
        if (!mean)
        {
            int BC = B * C;
            var x0 = v.Ao.Slice(0, BC);                                                                           // (B, C) h[:, 0]
            _b.Copy2D(x0, C, 0, v.H, T * C, 0, B, C, accumulate: false);
            var o = v.Qkv.Slice(0, BC);                                                                           // written after the attention read qkv
            var last = new LayerViews
            {
                X = x0, QkvIn = v.H, Qkv = v.Qkv, Atty = v.Atty.Slice(0, BC), AttnOut = o,
                Sum1 = v.Sum.Slice(0, BC), Mean1 = v.Mean.Slice(0, B), Rstd1 = v.Rstd.Slice(0, B), H1 = v.H1.Slice(0, BC),
                Inter = v.Inter.Slice(0, B * F), InterAct = v.Inter.Slice(0, B * F), Out = o,
                Sum2 = v.Sum.Slice(0, BC), Mean2 = v.Mean.Slice(0, B), Rstd2 = v.Rstd.Slice(0, B), H2 = v.H.Slice(0, BC),
            };
            var k = new ServingKernels(this, w, L - 1, mask, threads);
            BertLayer.Forward(ref k, _b, p.Layers[L - 1], last, B, T, 1, C, _eps, _act);
        }
        var cls = v.H.Slice(0, B * C);                                                                            // (B, 1, C)
        // head input (B, C + D) = [pooler(h[:, 0]), h[:, 0] or the masked mean of h | dense]
        if (Adapter.Input == AdapterInput.Pooler)
        {
            _b.PoolerForward(v.Pooled, cls, p.PoolW, p.PoolB, B, 1, C);
            _b.Copy2D(v.HeadIn, InW, 0, v.Pooled, C, 0, B, C, accumulate: false);
        }
        else if (mean)
        {
            MeanPooling.Weights(mask.Span, B, T, v.MeanW.Span);                                                  // (B, T)
            MeanPooling.Forward(_b, v.Pooled, v.MeanW, v.H, B, T, C);                                              // (B, C)
            _b.Copy2D(v.HeadIn, InW, 0, v.Pooled, C, 0, B, C, accumulate: false);
        }
        else _b.Copy2D(v.HeadIn, InW, 0, cls, C, 0, B, C, accumulate: false);
        if (D > 0) _b.Copy2D(v.HeadIn, InW, C, w.Dense.Slice(0, B * D), D, 0, B, D, accumulate: false);
        HeadForward.Run(_b, Adapter, p, v.HeadIn, B, InW, new PingPong(v, B, Adapter.HiddenSizes), v.Logits, DropoutPlan.Eval);
    }

    /// <summary>Serving keeps no activations: hidden layer j writes into one of two scratch views, the activation in place.</summary>
    private readonly struct PingPong(in Views v, int B, int[] hidden) : IHeadViews
    {
        private readonly View<float> _a = v.HeadA, _b = v.HeadB;
        public View<float> Pre(int j) => ((j & 1) == 0 ? _a : _b).Slice(0, B * hidden[j]);
        public View<float> Post(int j) => Pre(j);
    }

    /// <summary>The serving strategy of a layer: packed fp32 or int16 Linears (activation fused) and the inference
    /// attention, which keeps no probabilities and can attend from the [CLS] row alone.</summary>
    private readonly struct ServingKernels(Predictor m, Workspace w, int layer, View<float> mask, int threads) : ILayerKernels
    {
        private ServingLinear Of(LayerLinear which) => which switch
        {
            LayerLinear.Qkv => m._wqkv[layer],
            LayerLinear.AttentionOutput => m._wo[layer],
            LayerLinear.Intermediate => m._wi[layer],
            _ => m._wout[layer],
        };

        public void Linear(LayerLinear which, View<float> y, View<float> x, int rows)
            => Of(which).Forward(w.Quantized, w.RowScale, x.Span, rows, y.Span, Activation.Identity, threads);

        public void LinearActivation(LayerLinear which, View<float> pre, View<float> post, View<float> x, int rows, Activation act)
            => Of(which).Forward(w.Quantized, w.RowScale, x.Span, rows, post.Span, act, threads);

        public void Attention(View<float> atty, View<float> qkv, int B, int T, int queries)
            => CpuSimdBackend.AttentionInference(qkv.Span, mask.Span, atty.Span, B, T, m.C, m.NH, queries, threads);
    }

    // ------------------------------------------------------------------ workspaces

    /// <summary>The activation views of one pass at (B, T), carved from a workspace's float buffer.</summary>
    private readonly struct Views
    {
        public readonly View<float> H, Sum, Mean, Rstd, Qkv, Atty, Ao, H1, Inter, Pooled, MeanW, HeadIn, HeadA, HeadB, Logits;

        public Views(DeviceBuffer<float> buf, int B, int T, int C, int NH, int F, int inW, int maxW)
        {
            long o = 0;
            View<float> Fl(long n) { var v = buf.Slice(o, (int)n); o += n; return v; }
            long N = (long)B * T;
            H = Fl(N * C);            // (B, T, C) residual stream
            Sum = Fl(N * C);          // (B, T, C) LayerNorm input
            Mean = Fl(N); Rstd = Fl(N);
            Qkv = Fl(3 * N * C);      // (B, T, 3C)
            Atty = Fl(N * C);         // (B, T, C)
            Ao = Fl(N * C);           // (B, T, C) attention output / FFN output
            H1 = Fl(N * C);           // (B, T, C)
            Inter = Fl(N * F);        // (B, T, F)
            Pooled = Fl((long)B * C);  // (B, C) pooler output or masked mean
            MeanW = Fl(N);            // (B, T) mean-pooling weights (AdapterInput.Mean)
            HeadIn = Fl((long)B * inW);
            HeadA = Fl((long)B * maxW);
            HeadB = Fl((long)B * maxW);
            Logits = Fl(B);
        }

        public static long Size(int B, int T, int C, int NH, int F, int inW, int maxW)
        {
            long N = (long)B * T;
            return N * C * 2 + 2 * N + 3 * N * C + 3 * N * C + N * F + (long)B * C + N + (long)B * inW + 2L * B * maxW + B;
        }
    }

    /// <summary>One caller's buffers, sized for (MaxBatch, MaxLength).</summary>
    private sealed class Workspace
    {
        public readonly DeviceBuffer<float> Floats;
        public readonly DeviceBuffer<int> Ids, Types;   // (B, T)
        public readonly DeviceBuffer<float> Mask;       // (B, T)
        public readonly DeviceBuffer<float> Dense;      // (B, D)
        public readonly short[] Quantized;              // (B·T, 2·⌈max(C, F)/2⌉) int16 inputs of a Linear (Int16 only)
        public readonly float[] RowScale;               // (B·T) their scales (Int16 only)

        public Workspace(Predictor p)
        {
            int B = p.Options.MaxBatch, T = p.Options.MaxLength;
            long size = Views.Size(B, T, p.C, p.NH, p.F, p.InW, p.MaxHeadWidth);
            if (size > Array.MaxLength)
                throw new ArgumentOutOfRangeException(nameof(PredictorOptions.MaxBatch), B,
                    $"PredictorOptions: a workspace for MaxBatch = {B} × MaxLength = {T} needs {size} floats, more than one buffer holds; lower MaxBatch");
            Floats = p._b.Allocate<float>(size);
            Ids = p._b.Allocate<int>(B * T);
            Types = p._b.Allocate<int>(B * T);
            Mask = p._b.Allocate<float>(B * T);
            Dense = p._b.Allocate<float>(Math.Max(1, B * p.D));
            bool q = p.Options.Precision == ServingPrecision.Int16;
            // ≤ (B·T + 5)·(max(C, F) + 1) int16: within one array whenever the float buffer checked above (B·T·(F + 8C) and more) is.
            Quantized = q ? new short[QuantizedLinear.ScratchLength(B * T, Math.Max(p.C, p.F))] : [];
            RowScale = q ? new float[B * T] : [];
        }

        public Views Carve(Predictor p, int B, int T) => new(Floats, B, T, p.C, p.NH, p.F, p.InW, p.MaxHeadWidth);
    }

    private int MaxHeadWidth => Adapter.HiddenSizes.Length == 0 ? 1 : Math.Max(1, Adapter.HiddenSizes.Max());

    private Workspace Rent()
    {
        var pool = _pool;
        for (int i = 0; i < pool.Length; i++)
        {
            var w = Interlocked.Exchange(ref pool[i], null);
            if (w is not null) return w;
        }
        return new Workspace(this);
    }

    private void Return(Workspace w)
    {
        var pool = _pool;
        for (int i = 0; i < pool.Length; i++)
            if (Interlocked.CompareExchange(ref pool[i], w, null) is null) return;
        // pool full: this workspace is dropped for the GC
    }

    // ------------------------------------------------------------------ lifetime

    private void Enter()
    {
        Interlocked.Increment(ref _inFlight);
        if (_disposed)
        {
            Interlocked.Decrement(ref _inFlight);
            throw new ObjectDisposedException(nameof(Predictor), "this Predictor was disposed: create a new one to score again");
        }
    }

    private void Exit() => Interlocked.Decrement(ref _inFlight);

    /// <summary>Frees the packed weights and workspaces. Calls already running finish first; later calls throw
    /// <see cref="ObjectDisposedException"/>. Idempotent.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        var spin = new SpinWait();
        while (Volatile.Read(ref _inFlight) != 0) spin.SpinOnce();
        foreach (var a in new[] { _wqkv, _wo, _wi, _wout })
            foreach (var w in a) w?.Dispose();
        Array.Clear(_pool);
        _params.Dispose();
        _b.Dispose();
    }
}

/// <summary>One encoder Linear of a <see cref="Predictor"/>: its weight pre-packed (fp32) or quantised (int16) and its bias as
/// a host array for the fused epilogue. Immutable; shared by all calls.</summary>
internal sealed class ServingLinear : IDisposable
{
    private readonly PackedWeight? _f32;
    private readonly Int16Weight? _i16;
    private readonly float[] _bias;

    public ServingLinear(string name, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int outFeatures, int inFeatures, ServingPrecision precision)
    {
        if (precision == ServingPrecision.Int16)
        {
            try { _i16 = new Int16Weight(weight, outFeatures, inFeatures); }
            catch (ArgumentException e) { throw new ArgumentException($"{name}: {e.Message} (Precision = Int16 needs finite weights)", e); }
        }
        else _f32 = new PackedWeight(weight, outFeatures, inFeatures);
        _bias = bias.ToArray();
    }

    public long Bytes => _f32?.Bytes ?? _i16!.Bytes;

    /// <summary>y(M, OC) = act(x(M, IC)·Wᵀ + b) in this Linear's precision; the int16 path uses the workspace's scratch.</summary>
    public void Forward(Span<short> quantized, Span<float> rowScale, ReadOnlySpan<float> x, int M, Span<float> y, Activation act, int threads)
    {
        if (_f32 is not null) PackedLinear.Forward(x, M, _f32, _bias, y, act, threads);
        else QuantizedLinear.Forward(x, M, _i16!, _bias, y, quantized, rowScale, act, threads);
    }

    public void Dispose() { _f32?.Dispose(); _i16?.Dispose(); }
}
