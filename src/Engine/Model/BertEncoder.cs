// The BERT encoder (embeddings, post-LN transformer layers, pooler): forward and backward through IBackend.
using FastRec.Kernels;

namespace FastRec.Engine.Model;

/// <summary>
/// Hugging Face <c>BertModel</c> over the views of <see cref="ParameterTensors"/> and <see cref="ActivationTensors"/>.
/// Each part is a forward/backward pair; the backward runs in exact reverse order of the forward.
/// Dimension letters: B batch, T sequence, C hidden, NH heads, F feed-forward.
/// Reference: transformers/models/bert/modeling_bert.py (BertEmbeddings, BertSelfAttention, BertSelfOutput,
/// BertIntermediate, BertOutput, BertPooler).
/// </summary>
internal sealed class BertEncoder
{
    private readonly IBackend _b;
    private readonly BertConfig _cfg;
    private readonly int C, NH, F, L;
    private readonly float _eps;
    private readonly Activation _act;

    public BertEncoder(IBackend backend, BertConfig config)
    {
        _b = backend;
        _cfg = config;
        C = config.HiddenSize; NH = config.NumAttentionHeads; F = config.IntermediateSize; L = config.NumHiddenLayers;
        _eps = (float)config.LayerNormEps;
        _act = config.FeedForwardActivation;
    }

    /// <summary>The output of the last layer (B, T, C).</summary>
    public static View<float> LastHidden(ActivationTensors a) => a.Layers[^1].H2;

    /// <summary>Input of layer <paramref name="l"/> (B, T, C); l = L is the last layer's output.</summary>
    public static View<float> LayerInput(ActivationTensors a, int l) => l == 0 ? a.Emb : a.Layers[l - 1].H2;

    // ------------------------------------------------------------------ forward

    /// <summary>Embeddings and every layer; <paramref name="typeIds"/> None means all zeros. With <paramref name="from"/> &gt; 0
    /// the embeddings and layers below <paramref name="from"/> are skipped: <see cref="LayerInput"/>(a, from) must already
    /// hold their output (the frozen-layer activation cache). <paramref name="to"/> stops before layer <paramref name="to"/>.</summary>
    public void Forward(ParameterTensors p, ActivationTensors a, View<int> typeIds, DropoutPlan drop, int from = 0, int to = int.MaxValue)
    {
        if (from == 0) EmbeddingsForward(p, a, typeIds, drop.Embeddings(_cfg.HiddenDropoutProb));
        for (int l = from; l < Math.Min(L, to); l++)
            LayerForward(p.Layers[l], a, l,
                drop.AttentionProbs(l, _cfg.AttentionProbsDropoutProb),
                drop.AttentionOutput(l, _cfg.HiddenDropoutProb),
                drop.FeedForwardOutput(l, _cfg.HiddenDropoutProb));
    }

    private void EmbeddingsForward(ParameterTensors p, ActivationTensors a, View<int> typeIds, DropoutSpec drop)
    {
        int B = a.B, T = a.T, N = B * T;
        _b.EmbeddingForward(a.EmbSum, a.Ids, typeIds, p.WordEmb, p.PosEmb, p.TypeEmb, B, T, C);          // (B, T, C)
        _b.AddLayerNormForward(a.Emb, a.EmbSum, a.EmbMean, a.EmbRstd, a.EmbSum, View<float>.None, p.EmbLnW, p.EmbLnB, N, C, _eps);
        if (drop.IsOn) _b.DropoutForward(a.Emb, a.Emb, drop);
    }

    private void LayerForward(LayerTensors p, ActivationTensors acts, int l, DropoutSpec dAttn, DropoutSpec dHid1, DropoutSpec dHid2)
    {
        var a = acts.Layers[l];
        var x = LayerInput(acts, l);                                                                       // (B, T, C)
        var views = new LayerViews
        {
            X = x, QkvIn = x, Qkv = a.Qkv, Atty = a.Atty, AttnOut = a.AttnOut, Sum1 = a.Sum1, Mean1 = a.Mean1, Rstd1 = a.Rstd1, H1 = a.H1,
            Inter = a.Inter, InterAct = a.InterAct, Out = a.Out, Sum2 = a.Sum2, Mean2 = a.Mean2, Rstd2 = a.Rstd2, H2 = a.H2,
        };
        var k = new TrainingKernels(_b, p, a, acts, C, NH, F, dAttn);
        BertLayer.Forward(ref k, _b, p, views, acts.B, acts.T, acts.T, C, _eps, _act, dHid1, dHid2);
    }

    /// <summary>The training strategy: IBackend's Linear (pre-activation kept for the backward) and its attention, which
    /// saves the permuted Q, K, V and the probabilities.</summary>
    private readonly struct TrainingKernels(IBackend b, LayerTensors p, LayerActivations a, ActivationTensors acts, int C, int NH, int F,
        DropoutSpec attentionDropout) : ILayerKernels
    {
        public void Linear(LayerLinear which, View<float> y, View<float> x, int rows)
        {
            switch (which)
            {
                case LayerLinear.Qkv: b.LinearForward(y, x, p.Wqkv, p.Bqkv, rows, C, 3 * C); break;
                case LayerLinear.AttentionOutput: b.LinearForward(y, x, p.WAttnOut, p.BAttnOut, rows, C, C); break;
                case LayerLinear.Intermediate: b.LinearForward(y, x, p.WInter, p.BInter, rows, C, F); break;
                default: b.LinearForward(y, x, p.WOut, p.BOut, rows, F, C); break;
            }
        }

        public void LinearActivation(LayerLinear which, View<float> pre, View<float> post, View<float> x, int rows, Activation act)
        {
            Linear(which, pre, x, rows);
            b.ActivationForward(act, post, pre);
        }

        public void Attention(View<float> atty, View<float> qkv, int B, int T, int queries)
        {
            if (queries != T) throw new ArgumentOutOfRangeException(nameof(queries), queries, "training attends from every token");
            b.AttentionForward(atty, a.QkvPerm, a.Probs, acts.AttnWorkspace, qkv, acts.Mask, B, T, C, NH, attentionDropout);
        }
    }

    /// <summary>pooled(B, C) = tanh(h[:, 0]·Wᵀ + b) on the last layer's output.</summary>
    public void PoolerForward(ParameterTensors p, ActivationTensors a)
        => _b.PoolerForward(a.Pooled, LastHidden(a), p.PoolW, p.PoolB, a.B, a.T, C);

    // ------------------------------------------------------------------ backward

    /// <summary>
    /// Pooler backward: δW, δb (None when frozen) and, when <paramref name="toHidden"/>, δh[:, 0] into a.DRes
    /// (which is zeroed first: the pooler is the only consumer of the last hidden state).
    /// </summary>
    public void PoolerBackward(ParameterTensors p, ParameterTensors g, ActivationTensors a, View<float> dPooled, bool toHidden)
    {
        if (toHidden) _b.Zero(a.DRes);
        if (!toHidden && g.PoolW.IsNone && g.PoolB.IsNone) return;
        _b.PoolerBackward(toHidden ? a.DRes : View<float>.None, g.PoolW, g.PoolB, dPooled, a.Pooled, LastHidden(a), p.PoolW,
                          a.PoolWorkspace, a.B, a.T, C);
    }

    /// <summary>
    /// Backward from δ(last hidden state) in a.DRes down to layer <paramref name="lowest"/>
    /// (<see cref="ParameterLayout.EmbeddingsLayer"/> = through the embeddings). Nothing below <paramref name="lowest"/>
    /// is computed: its input gradient is not formed.
    /// </summary>
    /// <remarks>Distillation taps: <paramref name="dHidden"/>[i] (B, T, C), when given and not None, is added to the gradient of
    /// hidden state i (0 = the embeddings' output, i = layer i−1's output, as HF's hidden_states) where the backward passes it;
    /// <paramref name="dProbs"/>[l] (B, NH, T, T) is an extra gradient of layer l's pre-dropout attention probabilities.</remarks>
    public void Backward(ParameterTensors p, ParameterTensors g, ActivationTensors a, View<int> typeIds, DropoutPlan drop, int lowest,
                         ReadOnlySpan<View<float>> dHidden = default, ReadOnlySpan<View<float>> dProbs = default)
    {
        for (int l = L - 1; l >= Math.Max(lowest, 0); l--)
        {
            AddTap(a, dHidden, l + 1);
            LayerBackward(p.Layers[l], g.Layers[l], a, l, needInput: lowest < l,
                drop.AttentionProbs(l, _cfg.AttentionProbsDropoutProb),
                drop.AttentionOutput(l, _cfg.HiddenDropoutProb),
                drop.FeedForwardOutput(l, _cfg.HiddenDropoutProb),
                l < dProbs.Length ? dProbs[l] : View<float>.None);
        }
        if (lowest <= ParameterLayout.EmbeddingsLayer)
        {
            AddTap(a, dHidden, 0);
            EmbeddingsBackward(p, g, a, typeIds, drop.Embeddings(_cfg.HiddenDropoutProb));
        }
    }

    /// <summary>a.DRes (B, T, C) += dHidden[i] when that tap is given.</summary>
    private void AddTap(ActivationTensors a, ReadOnlySpan<View<float>> dHidden, int i)
    {
        if (i >= dHidden.Length || dHidden[i].IsNone) return;
        _b.Copy2D(a.DRes, C, 0, dHidden[i], C, 0, a.B * a.T, C, accumulate: true);
    }

    /// <summary>
    /// δqkv (B, T, 3C) += the path of an extra δprobs (B, NH, T, T) through probs = softmax(scale·Q·Kᵀ, mask):
    /// δS = SoftmaxBackward(δprobs) (into the attention workspace, free after AttentionBackward), δQ = δS·K, δK = δSᵀ·Q,
    /// accumulated straight into δqkv's Q and K column blocks (row stride 3C).
    /// </summary>
    private void AttentionProbsBackward(ActivationTensors acts, LayerActivations a, View<float> dProbs)
    {
        int B = acts.B, T = acts.T, HS = C / NH, C3 = 3 * C;
        long tt = (long)T * T, head = (long)T * HS;
        var dS = acts.AttnWorkspace.Slice(0, (int)(B * NH * tt));                                            // (B, NH, T, T)
        _b.SoftmaxBackward(dS, dProbs, a.Probs, B, NH, T, 1f / MathF.Sqrt(HS));
        int span = (T - 1) * C3 + HS;
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
            {
                long bh = (long)b * NH + h;
                var dSbh = dS.Slice(bh * tt, (int)tt);                                                           // (T, T)
                var q = a.QkvPerm.Slice(bh * head, (int)head);                                                   // (T, HS)
                var k = a.QkvPerm.Slice(((long)B * NH + bh) * head, (int)head);                                  // (T, HS)
                _b.Gemm(false, false, T, HS, T, 1f, dSbh, T, k, HS, true, acts.DQkv.Slice((long)b * T * C3 + h * HS, span), C3);
                _b.Gemm(true, false, T, HS, T, 1f, dSbh, T, q, HS, true, acts.DQkv.Slice((long)b * T * C3 + C + h * HS, span), C3);
            }
    }

    /// <summary>Layer l backward. On entry a.DRes = δh2 (B, T, C); on exit, when <paramref name="needInput"/>, a.DRes = δx.</summary>
    private void LayerBackward(LayerTensors p, LayerTensors g, ActivationTensors acts, int l, bool needInput,
                               DropoutSpec dAttn, DropoutSpec dHid1, DropoutSpec dHid2, View<float> dProbs)
    {
        int B = acts.B, T = acts.T, N = B * T;
        var a = acts.Layers[l];
        var x = LayerInput(acts, l);
        // h2 = LN(h1 + out): δsum2 (B, T, C) flows to both h1 (residual) and out.
        _b.AddLayerNormBackward(acts.DSum, g.Ln2W, g.Ln2B, acts.DRes, a.Sum2, p.Ln2W, a.Mean2, a.Rstd2, N, C);
        var dOut = acts.DSum;
        if (dHid2.IsOn) { _b.DropoutBackward(acts.DTmp, acts.DSum, dHid2); dOut = acts.DTmp; }
        // out = interAct·Woutᵀ + b
        _b.LinearBackward(acts.DInterAct, g.WOut, g.BOut, dOut, a.InterAct, p.WOut, N, F, C);            // δinterAct (B, T, F)
        _b.ActivationBackward(_act, acts.DInter, acts.DInterAct, a.Inter);                                 // δinter (B, T, F)
        // inter = h1·Winterᵀ + b: δh1 = δsum2 (residual, already in DSum) + δinter·Winter
        _b.Gemm(false, false, N, C, F, 1f, acts.DInter, F, p.WInter, C, accumulate: true, acts.DSum, C);
        ParamGrads(g.WInter, g.BInter, acts.DInter, a.H1, p.WInter, N, C, F);
        // h1 = LN(x + attnOut): δsum1 (B, T, C) flows to both x (residual) and attnOut.
        _b.AddLayerNormBackward(acts.DRes, g.Ln1W, g.Ln1B, acts.DSum, a.Sum1, p.Ln1W, a.Mean1, a.Rstd1, N, C);
        var dAttnOut = acts.DRes;
        if (dHid1.IsOn) { _b.DropoutBackward(acts.DTmp, acts.DRes, dHid1); dAttnOut = acts.DTmp; }
        bool needQkv = needInput || !g.Wqkv.IsNone || !g.Bqkv.IsNone;
        // attnOut = atty·Woᵀ + b: δatty into DSum (δh1 is consumed)
        _b.LinearBackward(needQkv ? acts.DSum : View<float>.None, g.WAttnOut, g.BAttnOut, dAttnOut, a.Atty, p.WAttnOut, N, C, C);
        if (!needQkv) return;
        _b.AttentionBackward(acts.DQkv, acts.DSum, a.QkvPerm, a.Probs, acts.AttnWorkspace, acts.Mask, B, T, C, NH, dAttn); // (B, T, 3C)
        if (!dProbs.IsNone) AttentionProbsBackward(acts, a, dProbs);
        // qkv = x·Wqkvᵀ + b: δx = δsum1 (residual, in DRes) + δqkv·Wqkv
        if (needInput) _b.Gemm(false, false, N, C, 3 * C, 1f, acts.DQkv, 3 * C, p.Wqkv, C, accumulate: true, acts.DRes, C);
        ParamGrads(g.Wqkv, g.Bqkv, acts.DQkv, x, p.Wqkv, N, C, 3 * C);
    }

    /// <summary>a.DRes = δ(embedding output after dropout) → δ tables.</summary>
    private void EmbeddingsBackward(ParameterTensors p, ParameterTensors g, ActivationTensors a, View<int> typeIds, DropoutSpec drop)
    {
        int B = a.B, T = a.T, N = B * T;
        var dLn = a.DRes;
        if (drop.IsOn) { _b.DropoutBackward(a.DTmp, a.DRes, drop); dLn = a.DTmp; }
        _b.AddLayerNormBackward(a.DSum, g.EmbLnW, g.EmbLnB, dLn, a.EmbSum, p.EmbLnW, a.EmbMean, a.EmbRstd, N, C);
        if (g.WordEmb.IsNone && g.PosEmb.IsNone && g.TypeEmb.IsNone) return;
        _b.EmbeddingBackward(g.WordEmb, g.PosEmb, g.TypeEmb, a.DSum, a.Ids, typeIds, B, T, C);
        // nn.Embedding(padding_idx = pad_token_id): the padding row never receives gradient (HF BertEmbeddings).
        if (!g.WordEmb.IsNone) _b.Zero(g.WordEmb.Slice((long)_cfg.PadTokenId * C, C));
    }

    /// <summary>δW += δoutᵀ·inp, δb += Σ δout, skipped entirely when both are frozen.</summary>
    private void ParamGrads(View<float> dW, View<float> dB, View<float> dOut, View<float> input, View<float> w, int N, int IC, int OC)
    {
        if (dW.IsNone && dB.IsNone) return;
        _b.LinearBackward(View<float>.None, dW, dB, dOut, input, w, N, IC, OC);
    }
}
