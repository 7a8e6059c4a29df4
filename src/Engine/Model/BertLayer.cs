// One encoder layer's forward and the head's forward, written once for training (BertEncoder, MlpAdapter) and for
// serving (Predictor), as llm.c keeps one forward for both. The sequence of ops is here; how a Linear and the attention
// are computed (training kernels through IBackend, or packed fp32 / int16 Linears and the inference attention) is the
// caller's strategy, a struct so the generic call is specialised and nothing is boxed or allocated per call.
using FastRec.Kernels;

namespace FastRec.Engine.Model;

/// <summary>The four Linears of an encoder layer.</summary>
internal enum LayerLinear { Qkv, AttentionOutput, Intermediate, Output }

/// <summary>How one encoder layer computes its Linears and its attention.</summary>
internal interface ILayerKernels
{
    /// <summary>y (rows, out) = x (rows, in)·Wᵀ + b of the layer's Linear <paramref name="which"/>.</summary>
    void Linear(LayerLinear which, View<float> y, View<float> x, int rows);

    /// <summary>post (rows, out) = act(x·Wᵀ + b); a strategy that keeps the pre-activation (training) writes it into
    /// <paramref name="pre"/>, one that fuses the activation (serving) may ignore <paramref name="pre"/>.</summary>
    void LinearActivation(LayerLinear which, View<float> pre, View<float> post, View<float> x, int rows, Activation act);

    /// <summary>atty (B·queries, C): attention over qkv (B, T, 3C) for the first <paramref name="queries"/> tokens of each
    /// sequence (T = every token; 1 = the [CLS] row alone, keys and values of every token).</summary>
    void Attention(View<float> atty, View<float> qkv, int B, int T, int queries);
}

/// <summary>The views one layer reads and writes. Serving aliases several of them (one scratch for AttnOut and Out,
/// Inter = InterAct with the activation fused, H2 = X in place); training keeps each for the backward.</summary>
internal struct LayerViews
{
    public View<float> X;         // (rows, C)      residual input of the layer
    public View<float> QkvIn;     // (B·T, C)       input of the QKV Linear (= X unless only the [CLS] rows go on)
    public View<float> Qkv;       // (B, T, 3C)
    public View<float> Atty;      // (rows, C)      attention output, heads merged
    public View<float> AttnOut;   // (rows, C)      attention output dense (then dropout in place)
    public View<float> Sum1, Mean1, Rstd1, H1;   // x + attnOut, its LayerNorm statistics, LayerNorm(x + attnOut)
    public View<float> Inter;     // (rows, F)      intermediate dense before the activation
    public View<float> InterAct;  // (rows, F)      after the activation
    public View<float> Out;       // (rows, C)      output dense (then dropout in place)
    public View<float> Sum2, Mean2, Rstd2, H2;   // h1 + out, statistics, the layer's output
}

/// <summary>The Hugging Face BertLayer (BertSelfAttention, BertSelfOutput, BertIntermediate, BertOutput) forward.</summary>
internal static class BertLayer
{
    /// <summary>
    /// One post-LN transformer layer: qkv = x·Wqkvᵀ; atty = attention(qkv); h1 = LN(x + dropout(atty·Woᵀ));
    /// h2 = LN(h1 + dropout(act(h1·Wiᵀ)·Woutᵀ)). rows = B·<paramref name="queries"/>.
    /// </summary>
    public static void Forward<TK>(ref TK k, IBackend b, LayerTensors p, in LayerViews v, int B, int T, int queries, int C, float eps,
        Activation act, DropoutSpec attentionOutputDropout = default, DropoutSpec feedForwardDropout = default) where TK : struct, ILayerKernels
    {
        int rows = B * queries;
        k.Linear(LayerLinear.Qkv, v.Qkv, v.QkvIn, B * T);                                                    // (B, T, 3C)
        k.Attention(v.Atty, v.Qkv, B, T, queries);                                                           // (rows, C)
        k.Linear(LayerLinear.AttentionOutput, v.AttnOut, v.Atty, rows);                                      // (rows, C)
        if (attentionOutputDropout.IsOn) b.DropoutForward(v.AttnOut, v.AttnOut, attentionOutputDropout);
        b.AddLayerNormForward(v.H1, v.Sum1, v.Mean1, v.Rstd1, v.X, v.AttnOut, p.Ln1W, p.Ln1B, rows, C, eps);  // (rows, C)
        k.LinearActivation(LayerLinear.Intermediate, v.Inter, v.InterAct, v.H1, rows, act);                  // (rows, F)
        k.Linear(LayerLinear.Output, v.Out, v.InterAct, rows);                                               // (rows, C)
        if (feedForwardDropout.IsOn) b.DropoutForward(v.Out, v.Out, feedForwardDropout);
        b.AddLayerNormForward(v.H2, v.Sum2, v.Mean2, v.Rstd2, v.H1, v.Out, p.Ln2W, p.Ln2B, rows, C, eps);     // (rows, C)
    }
}

/// <summary>Where the head's hidden layers write: pre- and post-activation views of hidden layer j at batch B.</summary>
internal interface IHeadViews
{
    View<float> Pre(int j);
    View<float> Post(int j);
}

/// <summary>The head's forward, shared by <see cref="MlpAdapter"/> and the Predictor.</summary>
internal static class HeadForward
{
    /// <summary>(Linear, activation, dropout)* then the output Linear: <paramref name="logits"/> (B) from
    /// <paramref name="input"/> (B, inW). The activation runs from Pre(j) into Post(j) (they may be the same view).</summary>
    public static void Run<TV>(IBackend b, AdapterConfig cfg, ParameterTensors p, View<float> input, int B, int inW, in TV views,
        View<float> logits, DropoutPlan drop) where TV : struct, IHeadViews
    {
        var x = input;
        int width = inW;
        for (int j = 0; j < cfg.HiddenSizes.Length; j++)
        {
            int h = cfg.HiddenSizes[j];
            var pre = views.Pre(j); var post = views.Post(j);
            b.LinearForward(pre, x, p.HeadW[j], p.HeadB[j], B, width, h);                                     // (B, H_j)
            b.ActivationForward(cfg.Activation, post, pre);
            var spec = drop.Head(j, cfg.Dropout);
            if (spec.IsOn) b.DropoutForward(post, post, spec);
            x = post; width = h;
        }
        b.LinearForward(logits, x, p.OutW, p.OutB, B, width, 1);                                              // (B)
    }
}
