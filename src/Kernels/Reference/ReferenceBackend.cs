// The Reference backend: validates every argument, widens float views to double, runs RefMath, narrows back.
namespace FastRec.Kernels.Reference;

/// <summary>
/// <see cref="IBackend"/> over managed memory whose every op is the plain double-precision loop of <see cref="RefMath"/>.
/// Slow by design and allocating per call: it is the specification and the oracle the other backends are tested against.
/// Inputs are read completely before any output is written, so every aliasing the contract allows is well defined.
/// </summary>
public sealed class ReferenceBackend : IBackend
{
    /// <inheritdoc/>
    public string Name => "reference";

    // ---------------------------------------------------------------- host views and float <-> double

    private Span<T> Host<T>(View<T> v, string name) where T : unmanaged
    {
        if (v.IsNone) return Span<T>.Empty;
        if (!ReferenceEquals(v.Buffer!.Owner, this))
            throw new ArgumentException($"{name}: the buffer belongs to another backend instance ('{v.Buffer.Owner.Name}'), not to this '{Name}' backend", name);
        return v.Span;
    }

    private double[] In(View<float> v, string name)
    {
        var s = Host(v, name);
        var d = new double[s.Length];
        for (int i = 0; i < s.Length; i++) d[i] = s[i];
        return d;
    }

    private void Out(double[] d, View<float> v, string name)
    {
        var s = Host(v, name);
        for (int i = 0; i < s.Length; i++) s[i] = (float)d[i];
    }

    // ---------------------------------------------------------------- memory

    /// <inheritdoc/>
    public DeviceBuffer<T> Allocate<T>(long length) where T : unmanaged
    {
        if (length < 0 || length > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"length: cannot allocate {length} elements");
        return new CpuBuffer<T>(this, length);
    }

    /// <inheritdoc/>
    public void Upload<T>(View<T> dst, ReadOnlySpan<T> src) where T : unmanaged
    {
        Check.Upload(dst, src.Length);
        src.CopyTo(Host(dst, nameof(dst)));
    }

    /// <inheritdoc/>
    public void Download<T>(View<T> src, Span<T> dst) where T : unmanaged
    {
        Check.Download(src, dst.Length);
        Host(src, nameof(src)).CopyTo(dst);
    }

    /// <inheritdoc/>
    public void Zero(View<float> dst)
    {
        Check.Zero(dst);
        Host(dst, nameof(dst)).Clear();
    }

    /// <inheritdoc/>
    public void Copy(View<float> dst, View<float> src)
    {
        Check.Copy(dst, src);
        var tmp = Host(src, nameof(src)).ToArray();
        tmp.CopyTo(Host(dst, nameof(dst)));
    }

    /// <inheritdoc/>
    public void Synchronize() { }

    /// <inheritdoc/>
    public void Dispose() { }

    // ---------------------------------------------------------------- GEMM

    /// <inheritdoc/>
    public void Gemm(bool transA, bool transB, int M, int N, int K, float alpha,
        View<float> a, int lda, View<float> b, int ldb, bool accumulate, View<float> c, int ldc,
        int batch = 1, long strideA = 0, long strideB = 0, long strideC = 0)
    {
        Check.Gemm(transA, transB, M, N, K, a, ref lda, b, ref ldb, c, ref ldc, batch, strideA, strideB, strideC);
        var ad = In(a, nameof(a)); var bd = In(b, nameof(b)); var cd = In(c, nameof(c));
        RefMath.Gemm(transA, transB, M, N, K, alpha, ad, lda, bd, ldb, accumulate, cd, ldc, batch, strideA, strideB, strideC);
        Out(cd, c, nameof(c));
    }

    // ---------------------------------------------------------------- linear

    /// <inheritdoc/>
    public void LinearForward(View<float> output, View<float> input, View<float> weight, View<float> bias, int N, int IC, int OC)
    {
        Check.LinearForward(output, input, weight, bias, N, IC, OC);
        var o = new double[output.Length];
        RefMath.LinearForward(o, In(input, nameof(input)), In(weight, nameof(weight)), In(bias, nameof(bias)), N, IC, OC);
        Out(o, output, nameof(output));
    }

    /// <inheritdoc/>
    public void LinearBackward(View<float> dInput, View<float> dWeight, View<float> dBias,
        View<float> dOutput, View<float> input, View<float> weight, int N, int IC, int OC)
    {
        Check.LinearBackward(dInput, dWeight, dBias, dOutput, input, weight, N, IC, OC);
        var dOut = In(dOutput, nameof(dOutput)); var inp = In(input, nameof(input)); var w = In(weight, nameof(weight));
        var di = new double[dInput.Length]; var dw = In(dWeight, nameof(dWeight)); var db = In(dBias, nameof(dBias));
        RefMath.LinearBackward(di, dw, db, dOut, inp, w, N, IC, OC);
        Out(di, dInput, nameof(dInput)); Out(dw, dWeight, nameof(dWeight)); Out(db, dBias, nameof(dBias));
    }

    // ---------------------------------------------------------------- activations

    /// <inheritdoc/>
    public void ActivationForward(Activation act, View<float> output, View<float> input)
    {
        Check.ActivationForward(act, output, input);
        var o = new double[output.Length];
        RefMath.ActivationForward(act, o, In(input, nameof(input)));
        Out(o, output, nameof(output));
    }

    /// <inheritdoc/>
    public void ActivationBackward(Activation act, View<float> dInput, View<float> dOutput, View<float> input)
    {
        Check.ActivationBackward(act, dInput, dOutput, input);
        var d = new double[dInput.Length];
        RefMath.ActivationBackward(act, d, In(dOutput, nameof(dOutput)), In(input, nameof(input)));
        Out(d, dInput, nameof(dInput));
    }

    // ---------------------------------------------------------------- residual + LayerNorm

    /// <inheritdoc/>
    public void AddLayerNormForward(View<float> output, View<float> sum, View<float> mean, View<float> rstd,
        View<float> a, View<float> b, View<float> gamma, View<float> beta, int N, int C, float eps)
    {
        Check.AddLayerNormForward(output, sum, mean, rstd, a, b, gamma, beta, N, C, eps);
        var ad = In(a, nameof(a)); var bd = In(b, nameof(b)); var g = In(gamma, nameof(gamma)); var be = In(beta, nameof(beta));
        var o = new double[output.Length]; var s = new double[sum.Length]; var m = new double[N]; var r = new double[N];
        RefMath.AddLayerNormForward(o, s, m, r, ad, bd, g, be, N, C, eps);
        Out(s, sum, nameof(sum)); Out(m, mean, nameof(mean)); Out(r, rstd, nameof(rstd)); Out(o, output, nameof(output));
    }

    /// <inheritdoc/>
    public void AddLayerNormBackward(View<float> dx, View<float> dGamma, View<float> dBeta,
        View<float> dOutput, View<float> sum, View<float> gamma, View<float> mean, View<float> rstd, int N, int C)
    {
        Check.AddLayerNormBackward(dx, dGamma, dBeta, dOutput, sum, gamma, mean, rstd, N, C);
        var dOut = In(dOutput, nameof(dOutput)); var s = In(sum, nameof(sum)); var g = In(gamma, nameof(gamma));
        var m = In(mean, nameof(mean)); var r = In(rstd, nameof(rstd));
        var d = new double[dx.Length]; var dg = In(dGamma, nameof(dGamma)); var db = In(dBeta, nameof(dBeta));
        RefMath.AddLayerNormBackward(d, dg, db, dOut, s, g, m, r, N, C);
        Out(d, dx, nameof(dx)); Out(dg, dGamma, nameof(dGamma)); Out(db, dBeta, nameof(dBeta));
    }

    // ---------------------------------------------------------------- embeddings

    /// <inheritdoc/>
    public void EmbeddingForward(View<float> output, View<int> ids, View<int> typeIds,
        View<float> wordEmb, View<float> posEmb, View<float> typeEmb, int B, int T, int C)
    {
        Check.EmbeddingForward(output, ids, typeIds, wordEmb, posEmb, typeEmb, B, T, C);
        var o = new double[output.Length];
        RefMath.EmbeddingForward(o, Host(ids, nameof(ids)), Host(typeIds, nameof(typeIds)),
            In(wordEmb, nameof(wordEmb)), In(posEmb, nameof(posEmb)), In(typeEmb, nameof(typeEmb)), B, T, C);
        Out(o, output, nameof(output));
    }

    /// <inheritdoc/>
    public void EmbeddingBackward(View<float> dWordEmb, View<float> dPosEmb, View<float> dTypeEmb,
        View<float> dOutput, View<int> ids, View<int> typeIds, int B, int T, int C)
    {
        Check.EmbeddingBackward(dWordEmb, dPosEmb, dTypeEmb, dOutput, ids, typeIds, B, T, C);
        var dw = In(dWordEmb, nameof(dWordEmb)); var dp = In(dPosEmb, nameof(dPosEmb)); var dt = In(dTypeEmb, nameof(dTypeEmb));
        RefMath.EmbeddingBackward(dw, dp, dt, In(dOutput, nameof(dOutput)), Host(ids, nameof(ids)), Host(typeIds, nameof(typeIds)), B, T, C);
        Out(dw, dWordEmb, nameof(dWordEmb)); Out(dp, dPosEmb, nameof(dPosEmb)); Out(dt, dTypeEmb, nameof(dTypeEmb));
    }

    // ---------------------------------------------------------------- masked softmax

    /// <inheritdoc/>
    public void SoftmaxForward(View<float> probs, View<float> scores, View<float> mask, int B, int NH, int T, float scale)
    {
        Check.SoftmaxForward(probs, scores, mask, B, NH, T, scale);
        var p = new double[probs.Length];
        RefMath.SoftmaxForward(p, In(scores, nameof(scores)), In(mask, nameof(mask)), B, NH, T, scale);
        Out(p, probs, nameof(probs));
    }

    /// <inheritdoc/>
    public void SoftmaxBackward(View<float> dScores, View<float> dProbs, View<float> probs, int B, int NH, int T, float scale)
    {
        Check.SoftmaxBackward(dScores, dProbs, probs, B, NH, T, scale);
        var d = new double[dScores.Length];
        RefMath.SoftmaxBackward(d, In(dProbs, nameof(dProbs)), In(probs, nameof(probs)), B, NH, T, scale);
        Out(d, dScores, nameof(dScores));
    }

    // ---------------------------------------------------------------- attention

    /// <inheritdoc/>
    public void AttentionForward(View<float> output, View<float> qkvPerm, View<float> probs, View<float> workspace,
        View<float> qkv, View<float> mask, int B, int T, int C, int NH, DropoutSpec dropout)
    {
        Check.AttentionForward(output, qkvPerm, probs, workspace, qkv, mask, B, T, C, NH, dropout);
        var o = new double[output.Length]; var perm = new double[qkvPerm.Length]; var p = new double[probs.Length];
        RefMath.AttentionForward(o, perm, p, In(qkv, nameof(qkv)), In(mask, nameof(mask)), B, T, C, NH, dropout);
        Out(perm, qkvPerm, nameof(qkvPerm)); Out(p, probs, nameof(probs)); Out(o, output, nameof(output));
    }

    /// <inheritdoc/>
    public void AttentionBackward(View<float> dQkv, View<float> dOutput, View<float> qkvPerm, View<float> probs, View<float> workspace,
        View<float> mask, int B, int T, int C, int NH, DropoutSpec dropout)
    {
        Check.AttentionBackward(dQkv, dOutput, qkvPerm, probs, workspace, mask, B, T, C, NH, dropout);
        var d = new double[dQkv.Length];
        RefMath.AttentionBackward(d, In(dOutput, nameof(dOutput)), In(qkvPerm, nameof(qkvPerm)), In(probs, nameof(probs)), B, T, C, NH, dropout);
        Out(d, dQkv, nameof(dQkv));
    }

    // ---------------------------------------------------------------- dropout

    /// <inheritdoc/>
    public void DropoutForward(View<float> output, View<float> input, DropoutSpec dropout)
    {
        Check.DropoutForward(output, input, dropout);
        var o = new double[output.Length];
        RefMath.DropoutForward(o, In(input, nameof(input)), dropout);
        Out(o, output, nameof(output));
    }

    /// <inheritdoc/>
    public void DropoutBackward(View<float> dInput, View<float> dOutput, DropoutSpec dropout)
    {
        Check.DropoutBackward(dInput, dOutput, dropout);
        var d = new double[dInput.Length];
        RefMath.DropoutBackward(d, In(dOutput, nameof(dOutput)), dropout);
        Out(d, dInput, nameof(dInput));
    }

    // ---------------------------------------------------------------- strided row copy

    /// <inheritdoc/>
    public void Copy2D(View<float> dst, int ldDst, int dstCol, View<float> src, int ldSrc, int srcCol, int rows, int cols, bool accumulate)
    {
        Check.Copy2D(dst, ldDst, dstCol, src, ldSrc, srcCol, rows, cols);
        var s = In(src, nameof(src)); var d = In(dst, nameof(dst));
        RefMath.Copy2D(d, ldDst, dstCol, s, ldSrc, srcCol, rows, cols, accumulate);
        Out(d, dst, nameof(dst));
    }

    // ---------------------------------------------------------------- pooler

    /// <inheritdoc/>
    public void PoolerForward(View<float> pooled, View<float> hidden, View<float> weight, View<float> bias, int B, int T, int C)
    {
        Check.PoolerForward(pooled, hidden, weight, bias, B, T, C);
        var p = new double[pooled.Length];
        RefMath.PoolerForward(p, In(hidden, nameof(hidden)), In(weight, nameof(weight)), In(bias, nameof(bias)), B, T, C);
        Out(p, pooled, nameof(pooled));
    }

    /// <inheritdoc/>
    public void PoolerBackward(View<float> dHidden, View<float> dWeight, View<float> dBias, View<float> dPooled,
        View<float> pooled, View<float> hidden, View<float> weight, View<float> workspace, int B, int T, int C)
    {
        Check.PoolerBackward(dHidden, dWeight, dBias, dPooled, pooled, hidden, weight, workspace, B, T, C);
        var dp = In(dPooled, nameof(dPooled)); var p = In(pooled, nameof(pooled)); var h = In(hidden, nameof(hidden)); var w = In(weight, nameof(weight));
        var dh = In(dHidden, nameof(dHidden)); var dw = In(dWeight, nameof(dWeight)); var db = In(dBias, nameof(dBias));
        RefMath.PoolerBackward(dh, dw, db, dp, p, h, w, B, T, C);
        Out(dh, dHidden, nameof(dHidden)); Out(dw, dWeight, nameof(dWeight)); Out(db, dBias, nameof(dBias));
    }

    // ---------------------------------------------------------------- sigmoid + BCE

    /// <inheritdoc/>
    public void BceForwardBackward(View<float> loss, View<float> dLogits, View<float> logits, View<float> targets, View<float> weights,
        int N, float temperature = 1f, float scale = 1f, bool accumulate = false)
    {
        Check.BceForwardBackward(loss, dLogits, logits, targets, weights, N, temperature);
        var z = In(logits, nameof(logits)); var y = In(targets, nameof(targets)); var w = In(weights, nameof(weights));
        var d = In(dLogits, nameof(dLogits));
        double l = RefMath.BceForwardBackward(d, z, y, w, N, temperature, scale, accumulate);
        Out(d, dLogits, nameof(dLogits));
        Out([l], loss, nameof(loss));
    }

    // ---------------------------------------------------------------- mean squared error

    /// <inheritdoc/>
    public void MseForwardBackward(View<float> loss, View<float> dPred, View<float> pred, View<float> target, int N,
        float scale = 1f, bool accumulate = false)
    {
        Check.MseForwardBackward(loss, dPred, pred, target, N, scale);
        var p = In(pred, nameof(pred)); var t = In(target, nameof(target)); var d = In(dPred, nameof(dPred));
        double l = RefMath.MseForwardBackward(d, p, t, N, scale, accumulate);
        Out(d, dPred, nameof(dPred));
        Out([l], loss, nameof(loss));
    }

    // ---------------------------------------------------------------- optimiser

    /// <inheritdoc/>
    public void GlobalNorm(View<float> norm, View<float> grads)
    {
        Check.GlobalNorm(norm, grads);
        Out([RefMath.GlobalNorm(In(grads, nameof(grads)))], norm, nameof(norm));
    }

    /// <inheritdoc/>
    public void AdamW(View<float> param, View<float> grad, View<float> m, View<float> v, View<AdamSegment> segments,
        View<float> norm, float maxNorm, float lr, float beta1, float beta2, float eps, int step)
    {
        Check.AdamW(param, grad, m, v, segments, norm, maxNorm, beta1, beta2, step);
        var segs = Host(segments, nameof(segments)).ToArray();
        Check.AdamSegments(segs, param.Length);
        double nrm = maxNorm > 0f ? Host(norm, nameof(norm))[0] : 0.0;
        var p = In(param, nameof(param)); var g = In(grad, nameof(grad)); var md = In(m, nameof(m)); var vd = In(v, nameof(v));
        RefMath.AdamW(p, g, md, vd, segs, nrm, maxNorm, lr, beta1, beta2, eps, step);
        Out(p, param, nameof(param)); Out(md, m, nameof(m)); Out(vd, v, nameof(v));
    }
}
