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

    private static void CheckDropout(DropoutSpec dropout)
    {
        if (!(dropout.P >= 0f && dropout.P < 1f))
            throw new ArgumentOutOfRangeException(nameof(dropout), dropout.P, $"dropout: probability must be in [0, 1), got {dropout.P}");
    }

    /// <summary>An embedding table (rows, C): non-empty, a whole number of rows, at least <paramref name="minRows"/>.</summary>
    private static int TableRows(View<float> table, int C, int minRows, string name)
    {
        if (table.IsNone) throw new ShapeException($"{name}: required table is missing (expected (rows, C={C}))");
        if (table.Length == 0 || table.Length % C != 0 || table.Length / C < minRows)
            throw new ShapeException($"{name}: expected (rows, C={C}) with rows >= {minRows}, i.e. a positive multiple of {C} elements, got {table.Length}");
        return table.Length / C;
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
        var d = Host(dst, nameof(dst));
        if (dst.IsNone) throw new ShapeException("dst: required view is missing");
        if (src.Length != d.Length) throw new ShapeException($"src: expected {d.Length} elements (the length of dst), got {src.Length}");
        src.CopyTo(d);
    }

    /// <inheritdoc/>
    public void Download<T>(View<T> src, Span<T> dst) where T : unmanaged
    {
        var s = Host(src, nameof(src));
        if (src.IsNone) throw new ShapeException("src: required view is missing");
        if (dst.Length != s.Length) throw new ShapeException($"dst: expected {s.Length} elements (the length of src), got {dst.Length}");
        s.CopyTo(dst);
    }

    /// <inheritdoc/>
    public void Zero(View<float> dst)
    {
        if (dst.IsNone) throw new ShapeException("dst: required view is missing");
        Host(dst, nameof(dst)).Clear();
    }

    /// <inheritdoc/>
    public void Copy(View<float> dst, View<float> src)
    {
        if (dst.IsNone) throw new ShapeException("dst: required view is missing");
        Check.Len(src, dst.Length, "dst.Length");
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
        Check.Dims($"{nameof(Gemm)} (M, N, K, batch)", M, N, K, batch);
        int la = Check.GemmOperand(a, lda, transA ? K : M, transA ? M : K, batch, strideA, "A", nameof(lda), nameof(strideA));
        int lb = Check.GemmOperand(b, ldb, transB ? N : K, transB ? K : N, batch, strideB, "B", nameof(ldb), nameof(strideB));
        int lc = Check.GemmOperand(c, ldc, M, N, batch, strideC, "C", nameof(ldc), nameof(strideC));
        if (batch > 1 && strideC < (long)(M - 1) * lc + N)
            throw new ShapeException($"strideC: {strideC} makes the {batch} output matrices C [{M},{N}] (ldc {lc}) overlap; need >= {(long)(M - 1) * lc + N}");
        var ad = In(a, nameof(a)); var bd = In(b, nameof(b)); var cd = In(c, nameof(c));
        RefMath.Gemm(transA, transB, M, N, K, alpha, ad, la, bd, lb, accumulate, cd, lc, batch, strideA, strideB, strideC);
        Out(cd, c, nameof(c));
    }

    // ---------------------------------------------------------------- linear

    /// <inheritdoc/>
    public void LinearForward(View<float> output, View<float> input, View<float> weight, View<float> bias, int N, int IC, int OC)
    {
        Check.Dims($"{nameof(LinearForward)} (N, IC, OC)", N, IC, OC);
        Check.Len(output, (long)N * OC, $"(N={N}, OC={OC})");
        Check.Len(input, (long)N * IC, $"(N={N}, IC={IC})");
        Check.Len(weight, (long)OC * IC, $"(OC={OC}, IC={IC})");
        Check.LenOpt(bias, OC, $"(OC={OC})");
        var o = new double[output.Length];
        RefMath.LinearForward(o, In(input, nameof(input)), In(weight, nameof(weight)), In(bias, nameof(bias)), N, IC, OC);
        Out(o, output, nameof(output));
    }

    /// <inheritdoc/>
    public void LinearBackward(View<float> dInput, View<float> dWeight, View<float> dBias,
        View<float> dOutput, View<float> input, View<float> weight, int N, int IC, int OC)
    {
        Check.Dims($"{nameof(LinearBackward)} (N, IC, OC)", N, IC, OC);
        Check.LenOpt(dInput, (long)N * IC, $"(N={N}, IC={IC})");
        Check.LenOpt(dWeight, (long)OC * IC, $"(OC={OC}, IC={IC})");
        Check.LenOpt(dBias, OC, $"(OC={OC})");
        Check.Len(dOutput, (long)N * OC, $"(N={N}, OC={OC})");
        Check.Len(input, (long)N * IC, $"(N={N}, IC={IC})");
        Check.Len(weight, (long)OC * IC, $"(OC={OC}, IC={IC})");
        var dOut = In(dOutput, nameof(dOutput)); var inp = In(input, nameof(input)); var w = In(weight, nameof(weight));
        var di = new double[dInput.Length]; var dw = In(dWeight, nameof(dWeight)); var db = In(dBias, nameof(dBias));
        RefMath.LinearBackward(di, dw, db, dOut, inp, w, N, IC, OC);
        Out(di, dInput, nameof(dInput)); Out(dw, dWeight, nameof(dWeight)); Out(db, dBias, nameof(dBias));
    }

    // ---------------------------------------------------------------- activations

    /// <inheritdoc/>
    public void ActivationForward(Activation act, View<float> output, View<float> input)
    {
        Check.Len(input, input.Length, "(n)");
        Check.Dims($"{nameof(ActivationForward)} (n = input.Length)", input.Length);
        Check.Len(output, input.Length, "(n) = input.Length");
        var o = new double[output.Length];
        RefMath.ActivationForward(act, o, In(input, nameof(input)));
        Out(o, output, nameof(output));
    }

    /// <inheritdoc/>
    public void ActivationBackward(Activation act, View<float> dInput, View<float> dOutput, View<float> input)
    {
        Check.Len(input, input.Length, "(n)");
        Check.Dims($"{nameof(ActivationBackward)} (n = input.Length)", input.Length);
        Check.Len(dInput, input.Length, "(n) = input.Length");
        Check.Len(dOutput, input.Length, "(n) = input.Length");
        var d = new double[dInput.Length];
        RefMath.ActivationBackward(act, d, In(dOutput, nameof(dOutput)), In(input, nameof(input)));
        Out(d, dInput, nameof(dInput));
    }

    // ---------------------------------------------------------------- residual + LayerNorm

    /// <inheritdoc/>
    public void AddLayerNormForward(View<float> output, View<float> sum, View<float> mean, View<float> rstd,
        View<float> a, View<float> b, View<float> gamma, View<float> beta, int N, int C, float eps)
    {
        Check.Dims($"{nameof(AddLayerNormForward)} (N, C)", N, C);
        string nc = $"(N={N}, C={C})";
        Check.Len(output, (long)N * C, nc); Check.Len(sum, (long)N * C, nc);
        Check.Len(mean, N, $"(N={N})"); Check.Len(rstd, N, $"(N={N})");
        Check.Len(a, (long)N * C, nc); Check.LenOpt(b, (long)N * C, nc);
        Check.Len(gamma, C, $"(C={C})"); Check.Len(beta, C, $"(C={C})");
        if (!(eps >= 0f) || float.IsInfinity(eps)) throw new ArgumentOutOfRangeException(nameof(eps), eps, $"eps: must be finite and >= 0, got {eps}");
        var ad = In(a, nameof(a)); var bd = In(b, nameof(b)); var g = In(gamma, nameof(gamma)); var be = In(beta, nameof(beta));
        var o = new double[output.Length]; var s = new double[sum.Length]; var m = new double[N]; var r = new double[N];
        RefMath.AddLayerNormForward(o, s, m, r, ad, bd, g, be, N, C, eps);
        Out(s, sum, nameof(sum)); Out(m, mean, nameof(mean)); Out(r, rstd, nameof(rstd)); Out(o, output, nameof(output));
    }

    /// <inheritdoc/>
    public void AddLayerNormBackward(View<float> dx, View<float> dGamma, View<float> dBeta,
        View<float> dOutput, View<float> sum, View<float> gamma, View<float> mean, View<float> rstd, int N, int C)
    {
        Check.Dims($"{nameof(AddLayerNormBackward)} (N, C)", N, C);
        string nc = $"(N={N}, C={C})";
        Check.Len(dx, (long)N * C, nc);
        Check.LenOpt(dGamma, C, $"(C={C})"); Check.LenOpt(dBeta, C, $"(C={C})");
        Check.Len(dOutput, (long)N * C, nc); Check.Len(sum, (long)N * C, nc);
        Check.Len(gamma, C, $"(C={C})"); Check.Len(mean, N, $"(N={N})"); Check.Len(rstd, N, $"(N={N})");
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
        Check.Dims($"{nameof(EmbeddingForward)} (B, T, C)", B, T, C);
        Check.Len(output, (long)B * T * C, $"(B={B}, T={T}, C={C})");
        Check.Len(ids, (long)B * T, $"(B={B}, T={T})");
        Check.LenOpt(typeIds, (long)B * T, $"(B={B}, T={T})");
        TableRows(wordEmb, C, 1, nameof(wordEmb));
        TableRows(posEmb, C, T, nameof(posEmb));
        TableRows(typeEmb, C, 1, nameof(typeEmb));
        var o = new double[output.Length];
        RefMath.EmbeddingForward(o, Host(ids, nameof(ids)), Host(typeIds, nameof(typeIds)),
            In(wordEmb, nameof(wordEmb)), In(posEmb, nameof(posEmb)), In(typeEmb, nameof(typeEmb)), B, T, C);
        Out(o, output, nameof(output));
    }

    /// <inheritdoc/>
    public void EmbeddingBackward(View<float> dWordEmb, View<float> dPosEmb, View<float> dTypeEmb,
        View<float> dOutput, View<int> ids, View<int> typeIds, int B, int T, int C)
    {
        Check.Dims($"{nameof(EmbeddingBackward)} (B, T, C)", B, T, C);
        if (!dWordEmb.IsNone) TableRows(dWordEmb, C, 1, nameof(dWordEmb));
        if (!dPosEmb.IsNone) TableRows(dPosEmb, C, T, nameof(dPosEmb));
        if (!dTypeEmb.IsNone) TableRows(dTypeEmb, C, 1, nameof(dTypeEmb));
        Check.Len(dOutput, (long)B * T * C, $"(B={B}, T={T}, C={C})");
        Check.Len(ids, (long)B * T, $"(B={B}, T={T})");
        Check.LenOpt(typeIds, (long)B * T, $"(B={B}, T={T})");
        var dw = In(dWordEmb, nameof(dWordEmb)); var dp = In(dPosEmb, nameof(dPosEmb)); var dt = In(dTypeEmb, nameof(dTypeEmb));
        RefMath.EmbeddingBackward(dw, dp, dt, In(dOutput, nameof(dOutput)), Host(ids, nameof(ids)), Host(typeIds, nameof(typeIds)), B, T, C);
        Out(dw, dWordEmb, nameof(dWordEmb)); Out(dp, dPosEmb, nameof(dPosEmb)); Out(dt, dTypeEmb, nameof(dTypeEmb));
    }

    // ---------------------------------------------------------------- masked softmax

    /// <inheritdoc/>
    public void SoftmaxForward(View<float> probs, View<float> scores, View<float> mask, int B, int NH, int T, float scale)
    {
        Check.Dims($"{nameof(SoftmaxForward)} (B, NH, T)", B, NH, T);
        string s4 = $"(B={B}, NH={NH}, T={T}, T={T})";
        Check.Len(probs, (long)B * NH * T * T, s4); Check.Len(scores, (long)B * NH * T * T, s4);
        Check.LenOpt(mask, (long)B * T, $"(B={B}, T={T})");
        if (!float.IsFinite(scale)) throw new ArgumentOutOfRangeException(nameof(scale), scale, $"scale: must be finite, got {scale}");
        var p = new double[probs.Length];
        RefMath.SoftmaxForward(p, In(scores, nameof(scores)), In(mask, nameof(mask)), B, NH, T, scale);
        Out(p, probs, nameof(probs));
    }

    /// <inheritdoc/>
    public void SoftmaxBackward(View<float> dScores, View<float> dProbs, View<float> probs, int B, int NH, int T, float scale)
    {
        Check.Dims($"{nameof(SoftmaxBackward)} (B, NH, T)", B, NH, T);
        string s4 = $"(B={B}, NH={NH}, T={T}, T={T})";
        Check.Len(dScores, (long)B * NH * T * T, s4); Check.Len(dProbs, (long)B * NH * T * T, s4); Check.Len(probs, (long)B * NH * T * T, s4);
        var d = new double[dScores.Length];
        RefMath.SoftmaxBackward(d, In(dProbs, nameof(dProbs)), In(probs, nameof(probs)), B, NH, T, scale);
        Out(d, dScores, nameof(dScores));
    }

    // ---------------------------------------------------------------- attention

    private static void CheckAttentionDims(string op, int B, int T, int C, int NH)
    {
        Check.Dims($"{op} (B, T, C, NH)", B, T, C, NH);
        if (C % NH != 0) throw new ShapeException($"{op}: C = {C} is not divisible by NH = {NH} heads");
    }

    /// <inheritdoc/>
    public void AttentionForward(View<float> output, View<float> qkvPerm, View<float> probs, View<float> workspace,
        View<float> qkv, View<float> mask, int B, int T, int C, int NH, DropoutSpec dropout)
    {
        CheckAttentionDims(nameof(AttentionForward), B, T, C, NH);
        Check.Len(output, (long)B * T * C, $"(B={B}, T={T}, C={C})");
        Check.Len(qkvPerm, 3L * B * T * C, $"(3, B={B}, NH={NH}, T={T}, HS={C / NH})");
        Check.Len(probs, (long)B * NH * T * T, $"(B={B}, NH={NH}, T={T}, T={T})");
        Check.MinLen(workspace, Check.AttentionWorkspace(B, T, C, NH), "2·B·NH·T² + 4·B·T·C");
        Check.Len(qkv, 3L * B * T * C, $"(B={B}, T={T}, 3C={3 * C})");
        Check.LenOpt(mask, (long)B * T, $"(B={B}, T={T})");
        CheckDropout(dropout);
        var o = new double[output.Length]; var perm = new double[qkvPerm.Length]; var p = new double[probs.Length];
        RefMath.AttentionForward(o, perm, p, In(qkv, nameof(qkv)), In(mask, nameof(mask)), B, T, C, NH, dropout);
        Out(perm, qkvPerm, nameof(qkvPerm)); Out(p, probs, nameof(probs)); Out(o, output, nameof(output));
    }

    /// <inheritdoc/>
    public void AttentionBackward(View<float> dQkv, View<float> dOutput, View<float> qkvPerm, View<float> probs, View<float> workspace,
        View<float> mask, int B, int T, int C, int NH, DropoutSpec dropout)
    {
        CheckAttentionDims(nameof(AttentionBackward), B, T, C, NH);
        Check.Len(dQkv, 3L * B * T * C, $"(B={B}, T={T}, 3C={3 * C})");
        Check.Len(dOutput, (long)B * T * C, $"(B={B}, T={T}, C={C})");
        Check.Len(qkvPerm, 3L * B * T * C, $"(3, B={B}, NH={NH}, T={T}, HS={C / NH})");
        Check.Len(probs, (long)B * NH * T * T, $"(B={B}, NH={NH}, T={T}, T={T})");
        Check.MinLen(workspace, Check.AttentionWorkspace(B, T, C, NH), "2·B·NH·T² + 4·B·T·C");
        Check.LenOpt(mask, (long)B * T, $"(B={B}, T={T})");
        CheckDropout(dropout);
        var d = new double[dQkv.Length];
        RefMath.AttentionBackward(d, In(dOutput, nameof(dOutput)), In(qkvPerm, nameof(qkvPerm)), In(probs, nameof(probs)), B, T, C, NH, dropout);
        Out(d, dQkv, nameof(dQkv));
    }

    // ---------------------------------------------------------------- dropout

    /// <inheritdoc/>
    public void DropoutForward(View<float> output, View<float> input, DropoutSpec dropout)
    {
        Check.Len(input, input.Length, "(n)");
        Check.Dims($"{nameof(DropoutForward)} (n = input.Length)", input.Length);
        Check.Len(output, input.Length, "(n) = input.Length");
        CheckDropout(dropout);
        var o = new double[output.Length];
        RefMath.DropoutForward(o, In(input, nameof(input)), dropout);
        Out(o, output, nameof(output));
    }

    /// <inheritdoc/>
    public void DropoutBackward(View<float> dInput, View<float> dOutput, DropoutSpec dropout)
    {
        Check.Len(dOutput, dOutput.Length, "(n)");
        Check.Dims($"{nameof(DropoutBackward)} (n = dOutput.Length)", dOutput.Length);
        Check.Len(dInput, dOutput.Length, "(n) = dOutput.Length");
        CheckDropout(dropout);
        var d = new double[dInput.Length];
        RefMath.DropoutBackward(d, In(dOutput, nameof(dOutput)), dropout);
        Out(d, dInput, nameof(dInput));
    }

    // ---------------------------------------------------------------- strided row copy

    /// <inheritdoc/>
    public void Copy2D(View<float> dst, int ldDst, int dstCol, View<float> src, int ldSrc, int srcCol, int rows, int cols, bool accumulate)
    {
        Check.Dims($"{nameof(Copy2D)} (rows, cols)", rows, cols);
        if (dstCol < 0 || ldDst <= 0 || dstCol + cols > ldDst)
            throw new ShapeException($"dstCol: columns [{dstCol}, {dstCol + cols}) do not fit rows of ldDst = {ldDst}");
        if (srcCol < 0 || ldSrc <= 0 || srcCol + cols > ldSrc)
            throw new ShapeException($"srcCol: columns [{srcCol}, {srcCol + cols}) do not fit rows of ldSrc = {ldSrc}");
        Check.MinLen(dst, (long)(rows - 1) * ldDst + dstCol + cols, $"(rows-1)·ldDst + dstCol + cols");
        Check.MinLen(src, (long)(rows - 1) * ldSrc + srcCol + cols, $"(rows-1)·ldSrc + srcCol + cols");
        var s = In(src, nameof(src)); var d = In(dst, nameof(dst));
        RefMath.Copy2D(d, ldDst, dstCol, s, ldSrc, srcCol, rows, cols, accumulate);
        Out(d, dst, nameof(dst));
    }

    // ---------------------------------------------------------------- pooler

    /// <inheritdoc/>
    public void PoolerForward(View<float> pooled, View<float> hidden, View<float> weight, View<float> bias, int B, int T, int C)
    {
        Check.Dims($"{nameof(PoolerForward)} (B, T, C)", B, T, C);
        Check.Len(pooled, (long)B * C, $"(B={B}, C={C})");
        Check.Len(hidden, (long)B * T * C, $"(B={B}, T={T}, C={C})");
        Check.Len(weight, (long)C * C, $"(C={C}, C={C})");
        Check.LenOpt(bias, C, $"(C={C})");
        var p = new double[pooled.Length];
        RefMath.PoolerForward(p, In(hidden, nameof(hidden)), In(weight, nameof(weight)), In(bias, nameof(bias)), B, T, C);
        Out(p, pooled, nameof(pooled));
    }

    /// <inheritdoc/>
    public void PoolerBackward(View<float> dHidden, View<float> dWeight, View<float> dBias, View<float> dPooled,
        View<float> pooled, View<float> hidden, View<float> weight, View<float> workspace, int B, int T, int C)
    {
        Check.Dims($"{nameof(PoolerBackward)} (B, T, C)", B, T, C);
        Check.LenOpt(dHidden, (long)B * T * C, $"(B={B}, T={T}, C={C})");
        Check.LenOpt(dWeight, (long)C * C, $"(C={C}, C={C})");
        Check.LenOpt(dBias, C, $"(C={C})");
        Check.Len(dPooled, (long)B * C, $"(B={B}, C={C})");
        Check.Len(pooled, (long)B * C, $"(B={B}, C={C})");
        Check.Len(hidden, (long)B * T * C, $"(B={B}, T={T}, C={C})");
        Check.Len(weight, (long)C * C, $"(C={C}, C={C})");
        Check.MinLen(workspace, (long)B * C, $"(B={B}, C={C})");
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
        Check.Dims($"{nameof(BceForwardBackward)} (N)", N);
        Check.Len(loss, 1, "(1)");
        Check.LenOpt(dLogits, N, $"(N={N})");
        Check.Len(logits, N, $"(N={N})");
        Check.Len(targets, N, $"(N={N})");
        Check.LenOpt(weights, N, $"(N={N})");
        if (!(temperature > 0f) || float.IsInfinity(temperature))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, $"temperature: must be finite and > 0, got {temperature}");
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
        Check.Dims($"{nameof(MseForwardBackward)} (N)", N);
        Check.Len(loss, 1, "(1)");
        Check.LenOpt(dPred, N, $"(N={N})");
        Check.Len(pred, N, $"(N={N})");
        Check.Len(target, N, $"(N={N})");
        if (!float.IsFinite(scale)) throw new ArgumentOutOfRangeException(nameof(scale), scale, $"scale: must be finite, got {scale}");
        var p = In(pred, nameof(pred)); var t = In(target, nameof(target)); var d = In(dPred, nameof(dPred));
        double l = RefMath.MseForwardBackward(d, p, t, N, scale, accumulate);
        Out(d, dPred, nameof(dPred));
        Out([l], loss, nameof(loss));
    }

    // ---------------------------------------------------------------- optimiser

    /// <inheritdoc/>
    public void GlobalNorm(View<float> norm, View<float> grads)
    {
        Check.Len(norm, 1, "(1)");
        Check.Len(grads, grads.Length, "(n)");
        Check.Dims($"{nameof(GlobalNorm)} (n = grads.Length)", grads.Length);
        Out([RefMath.GlobalNorm(In(grads, nameof(grads)))], norm, nameof(norm));
    }

    /// <inheritdoc/>
    public void AdamW(View<float> param, View<float> grad, View<float> m, View<float> v, View<AdamSegment> segments,
        View<float> norm, float maxNorm, float lr, float beta1, float beta2, float eps, int step)
    {
        Check.AdamWArgs(param, grad, m, v, norm, maxNorm, beta1, beta2, step);
        int n = param.Length;
        var segs = Host(segments, nameof(segments)).ToArray();
        var order = new int[segs.Length];
        for (int i = 0; i < segs.Length; i++)
        {
            order[i] = i;
            var s = segs[i];
            if (s.Offset < 0 || s.Length < 0 || (long)s.Offset + s.Length > n)
                throw new ArgumentOutOfRangeException(nameof(segments), $"segments[{i}]: range [{s.Offset}, {(long)s.Offset + s.Length}) is outside param of {n} elements");
        }
        Array.Sort(order, (x, y) => segs[x].Offset.CompareTo(segs[y].Offset));
        for (int k = 1; k < order.Length; k++)
        {
            var prev = segs[order[k - 1]]; var cur = segs[order[k]];
            if (prev.Offset + prev.Length > cur.Offset)
                throw new ArgumentException($"segments[{order[k - 1]}] and segments[{order[k]}] overlap at element {cur.Offset}", nameof(segments));
        }
        double nrm = maxNorm > 0f ? Host(norm, nameof(norm))[0] : 0.0;
        var p = In(param, nameof(param)); var g = In(grad, nameof(grad)); var md = In(m, nameof(m)); var vd = In(v, nameof(v));
        RefMath.AdamW(p, g, md, vd, segs, nrm, maxNorm, lr, beta1, beta2, eps, step);
        Out(p, param, nameof(param)); Out(md, m, nameof(m)); Out(vd, v, nameof(v));
    }
}
