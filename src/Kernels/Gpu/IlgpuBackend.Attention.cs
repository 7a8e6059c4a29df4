// ILGPU backend masked softmax and multi-head self-attention (permute, QKᵀ, softmax, dropout, PV).
using FastRec.Kernels.Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu;

public sealed partial class IlgpuBackend
{
    // ---------------------------------------------------------------- softmax

    /// <inheritdoc/>
    public void SoftmaxForward(View<float> probs, View<float> scores, View<float> mask, int B, int NH, int T, float scale)
    {
        Check.SoftmaxForward(probs, scores, mask, B, NH, T, scale);
        SoftmaxForwardCore(Arr(probs), Arr(scores), mask.IsNone ? null : Arr(mask), B, NH, T, scale);
    }

    private void SoftmaxForwardCore(ArrayView<float> probs, ArrayView<float> scores, ArrayView<float>? mask, int B, int NH, int T, float scale)
    {
        var p = new SoftmaxArgs { Width = RowWidth, Rows = B * NH * T, T = T, RowsPerBatch = NH * T, HasMask = mask is null ? 0 : 1, Scale = scale };
        Run(SoftmaxRows)(_stream, RowsConfig(p.Rows), probs, scores, mask ?? _dummyF.ViewOf(0, 1), p);
    }

    /// <inheritdoc/>
    public void SoftmaxBackward(View<float> dScores, View<float> dProbs, View<float> probs, int B, int NH, int T, float scale)
    {
        Check.SoftmaxBackward(dScores, dProbs, probs, B, NH, T, scale);
        SoftmaxBackwardCore(Arr(dScores), Arr(dProbs), Arr(probs), B, NH, T, scale);
    }

    private void SoftmaxBackwardCore(ArrayView<float> dScores, ArrayView<float> dProbs, ArrayView<float> probs, int B, int NH, int T, float scale)
    {
        var p = new SoftmaxArgs { Width = RowWidth, Rows = B * NH * T, T = T, RowsPerBatch = NH * T, Scale = scale };
        Run(SoftmaxRowsBackward)(_stream, RowsConfig(p.Rows), dScores, dProbs, probs, p);
    }

    // ---------------------------------------------------------------- attention

    /// <inheritdoc/>
    public void AttentionForward(View<float> output, View<float> qkvPerm, View<float> probs, View<float> workspace,
                                 View<float> qkv, View<float> mask, int B, int T, int C, int NH, DropoutSpec dropout)
    {
        Check.AttentionForward(output, qkvPerm, probs, workspace, qkv, mask, B, T, C, NH, dropout);
        int btc = B * T * C, hs = C / NH, bh = B * NH, tt = T * T;
        var perm = Arr(qkvPerm);
        var pr = Arr(probs);
        var ws = Arr(workspace);
        var dropped = ws.SubView(0, (long)bh * tt);                 // (B,NH,T,T) probabilities after dropout
        var outHeads = ws.SubView(2L * bh * tt, btc);               // (B,NH,T,HS)
        var q = perm.SubView(0, btc);
        var k = perm.SubView(btc, btc);
        var v = perm.SubView(2L * btc, btc);

        Run(HeadsPermute)(_stream, Flat(3 * btc), perm, Arr(qkv), new PermuteArgs { B = B, T = T, C = C, NH = NH, G = 3, ToHeads = 1 }, 3 * btc);
        // scores(B·NH, T, T) = Q · Kᵀ, scaled inside the softmax
        GemmCore(false, true, T, T, hs, 1f, q, hs, k, hs, false, pr, T, bh, T * hs, T * hs, tt, _dummyF.ViewOf(0, 1), false, ActCode.None);
        SoftmaxForwardCore(pr, pr, mask.IsNone ? null : Arr(mask), B, NH, T, 1f / MathF.Sqrt(hs));
        var p = pr;
        if (dropout.IsOn)
        {
            Run(Dropout)(_stream, Flat(bh * tt), dropped, pr, dropout, 1f / (1f - dropout.P), bh * tt);
            p = dropped;
        }
        // out(B·NH, T, HS) = P · V
        GemmCore(false, false, T, hs, T, 1f, p, T, v, hs, false, outHeads, hs, bh, tt, T * hs, T * hs, _dummyF.ViewOf(0, 1), false, ActCode.None);
        Run(HeadsPermute)(_stream, Flat(btc), Arr(output), outHeads, new PermuteArgs { B = B, T = T, C = C, NH = NH, G = 1, ToHeads = 0 }, btc);
    }

    /// <inheritdoc/>
    public void AttentionBackward(View<float> dQkv, View<float> dOutput, View<float> qkvPerm, View<float> probs, View<float> workspace,
                                  View<float> mask, int B, int T, int C, int NH, DropoutSpec dropout)
    {
        Check.AttentionBackward(dQkv, dOutput, qkvPerm, probs, workspace, mask, B, T, C, NH, dropout);
        int btc = B * T * C, hs = C / NH, bh = B * NH, tt = T * T;
        var perm = Arr(qkvPerm);
        var pr = Arr(probs);
        var ws = Arr(workspace);
        var s1 = ws.SubView(0, (long)bh * tt);                      // dropped probabilities
        var s2 = ws.SubView((long)bh * tt, (long)bh * tt);          // δP, then δscores
        var dOutHeads = ws.SubView(2L * bh * tt, btc);              // (B,NH,T,HS)
        var dPerm = ws.SubView(2L * bh * tt + btc, 3L * btc);       // (3,B,NH,T,HS)
        var q = perm.SubView(0, btc);
        var k = perm.SubView(btc, btc);
        var v = perm.SubView(2L * btc, btc);
        var dq = dPerm.SubView(0, btc);
        var dk = dPerm.SubView(btc, btc);
        var dv = dPerm.SubView(2L * btc, btc);
        var none = _dummyF.ViewOf(0, 1);

        Run(HeadsPermute)(_stream, Flat(btc), dOutHeads, Arr(dOutput), new PermuteArgs { B = B, T = T, C = C, NH = NH, G = 1, ToHeads = 1 }, btc);
        var p = pr;
        float keepScale = dropout.IsOn ? 1f / (1f - dropout.P) : 1f;
        if (dropout.IsOn)
        {
            Run(Dropout)(_stream, Flat(bh * tt), s1, pr, dropout, keepScale, bh * tt);
            p = s1;
        }
        // δV = Pᵀ · δO ; δP = δO · Vᵀ
        GemmCore(true, false, T, hs, T, 1f, p, T, dOutHeads, hs, false, dv, hs, bh, tt, T * hs, T * hs, none, false, ActCode.None);
        GemmCore(false, true, T, T, hs, 1f, dOutHeads, hs, v, hs, false, s2, T, bh, T * hs, T * hs, tt, none, false, ActCode.None);
        if (dropout.IsOn) Run(Dropout)(_stream, Flat(bh * tt), s2, s2, dropout, keepScale, bh * tt);
        SoftmaxBackwardCore(s2, s2, pr, B, NH, T, 1f / MathF.Sqrt(hs));
        // δQ = δS · K ; δK = δSᵀ · Q
        GemmCore(false, false, T, hs, T, 1f, s2, T, k, hs, false, dq, hs, bh, tt, T * hs, T * hs, none, false, ActCode.None);
        GemmCore(true, false, T, hs, T, 1f, s2, T, q, hs, false, dk, hs, bh, tt, T * hs, T * hs, none, false, ActCode.None);
        Run(HeadsPermute)(_stream, Flat(3 * btc), Arr(dQkv), dPerm, new PermuteArgs { B = B, T = T, C = C, NH = NH, G = 3, ToHeads = 0 }, 3 * btc);
    }
}
