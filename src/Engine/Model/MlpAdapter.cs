// The recommendation head: [encoder vector | dense features] → (Linear, activation, dropout)* → Linear → logit.
using FastRec.Kernels;

namespace FastRec.Engine.Model;

/// <summary>
/// The MLP adapter over <see cref="ActivationTensors"/>: forward and backward through <see cref="IBackend"/>.
/// Dimension letters: B batch, C hidden, D dense features, H_j hidden widths; the input width is C + D.
/// </summary>
internal sealed class MlpAdapter
{
    private readonly IBackend _b;
    private readonly AdapterConfig _cfg;
    private readonly int C, D, InW;

    public MlpAdapter(IBackend backend, BertConfig bert, AdapterConfig config)
    {
        _b = backend;
        _cfg = config;
        C = bert.HiddenSize; D = config.DenseFeatures; InW = C + D;
    }

    private int Width(int j) => j < 0 ? InW : _cfg.HiddenSizes[j];
    private static View<float> LayerInput(ActivationTensors a, int j) => j == 0 ? a.HeadIn : a.HeadPost[j - 1];

    /// <summary>
    /// a.HeadIn (B, C + D) = [source row b (columns 0..C of a row of <paramref name="ldSource"/> floats) | a.Dense],
    /// then the hidden layers, then a.Logits (B).
    /// </summary>
    public void Forward(ParameterTensors p, ActivationTensors a, View<float> source, int ldSource, DropoutPlan drop)
    {
        int B = a.B;
        _b.Copy2D(a.HeadIn, InW, 0, source, ldSource, 0, B, C, accumulate: false);
        if (D > 0) _b.Copy2D(a.HeadIn, InW, C, a.Dense, D, 0, B, D, accumulate: false);
        HeadForward.Run(_b, _cfg, p, a.HeadIn, B, InW, new KeptViews(a), a.Logits, drop);
    }

    /// <summary>Training keeps every hidden layer's pre- and post-activation for the backward.</summary>
    private readonly struct KeptViews(ActivationTensors a) : IHeadViews
    {
        public View<float> Pre(int j) => a.HeadPre[j];
        public View<float> Post(int j) => a.HeadPost[j];
    }

    /// <summary>
    /// Backward from a.DLogits (B). Returns δHeadIn (B, C + D) (a slice of a.DHeadA) when <paramref name="needInput"/>,
    /// else None (the first Linear's input gradient is not formed).
    /// </summary>
    public View<float> Backward(ParameterTensors p, ParameterTensors g, ActivationTensors a, DropoutPlan drop, bool needInput)
    {
        int B = a.B, nh = _cfg.HiddenSizes.Length;
        // δ lives in DHeadA at the start of each hidden layer's backward; DHeadB is the scratch for δpre.
        View<float> A(int w) => a.DHeadA.Slice(0, B * w);
        View<float> Bv(int w) => a.DHeadB.Slice(0, B * w);

        int w = Width(nh - 1);
        bool dInOut = nh > 0 || needInput;
        Linear(dInOut ? A(w) : View<float>.None, g.OutW, g.OutB, a.DLogits, nh == 0 ? a.HeadIn : a.HeadPost[nh - 1], p.OutW, B, w, 1);
        for (int j = nh - 1; j >= 0; j--)
        {
            int h = Width(j), inW = Width(j - 1);
            var spec = drop.Head(j, _cfg.Dropout);
            if (spec.IsOn) _b.DropoutBackward(A(h), A(h), spec);
            _b.ActivationBackward(_cfg.Activation, Bv(h), A(h), a.HeadPre[j]);                    // δpre (B, H_j)
            bool dIn = j > 0 || needInput;
            Linear(dIn ? A(inW) : View<float>.None, g.HeadW[j], g.HeadB[j], Bv(h), LayerInput(a, j), p.HeadW[j], B, inW, h);
        }
        return needInput ? A(InW) : View<float>.None;
    }

    private void Linear(View<float> dIn, View<float> dW, View<float> dB, View<float> dOut, View<float> input, View<float> w, int N, int IC, int OC)
    {
        if (dIn.IsNone && dW.IsNone && dB.IsNone) return;
        _b.LinearBackward(dIn, dW, dB, dOut, input, w, N, IC, OC);
    }
}
