// Argument validation shared by every backend: one validator per IBackend op, called at the top of each entry point.
using System.Runtime.CompilerServices;

namespace FastRec.Kernels;

/// <summary>
/// Argument checks for every kernel entry point. Each <see cref="IBackend"/> op has one validator here, named after the
/// method and taking its parameters under the same names; every backend calls it first, so all backends refuse the same
/// arguments with the same message. A length message names the argument (its IBackend parameter name), the expected
/// shape with its element count, and the actual count: <c>weight: expected (OC, IC) = 20 elements, got 19</c>.
/// A dimension message names the op and its dimensions: <c>LinearForward (N, IC, OC): dimensions must be positive, got (0, 4, 2)</c>.
/// Shape labels are constant strings and messages are formatted only when a check fails: validating allocates nothing.
/// Checks that need the data (ids inside a table, AdamW segments) take host spans: <see cref="Ids"/>, <see cref="AdamSegments"/>.
/// </summary>
public static class Check
{
    // ================================================================ primitives

    /// <summary>Throws <see cref="ShapeException"/> unless <paramref name="view"/> holds exactly <paramref name="expected"/> elements.</summary>
    public static void Len<T>(View<T> view, long expected, string shape,
        [CallerArgumentExpression(nameof(view))] string name = "") where T : unmanaged
    {
        if (view.IsNone) throw new ShapeException($"{name}: required tensor is missing (expected {shape} = {expected} elements)");
        if (view.Length != expected)
            throw new ShapeException($"{name}: expected {shape} = {expected} elements, got {view.Length}");
    }

    /// <summary>As <see cref="Len{T}"/> but None is allowed.</summary>
    public static void LenOpt<T>(View<T> view, long expected, string shape,
        [CallerArgumentExpression(nameof(view))] string name = "") where T : unmanaged
    {
        if (!view.IsNone) Len(view, expected, shape, name);
    }

    /// <summary>At least <paramref name="expected"/> elements (workspaces, leading-dimension matrices).</summary>
    public static void MinLen<T>(View<T> view, long expected, string shape,
        [CallerArgumentExpression(nameof(view))] string name = "") where T : unmanaged
    {
        if (view.IsNone) throw new ShapeException($"{name}: required tensor is missing (expected at least {shape} = {expected} elements)");
        if (view.Length < expected)
            throw new ShapeException($"{name}: expected at least {shape} = {expected} elements, got {view.Length}");
    }

    /// <summary>Every dimension must be positive.</summary>
    public static void Dims(string what, params ReadOnlySpan<int> dims)
    {
        foreach (int d in dims)
            if (d <= 0) throw new ShapeException($"{what}: dimensions must be positive, got ({string.Join(", ", dims.ToArray())})");
    }

    /// <summary>A required, non-empty view whose length is the op's element count n; returns n.</summary>
    private static int Elements<T>(View<T> view, string what, [CallerArgumentExpression(nameof(view))] string name = "") where T : unmanaged
    {
        if (view.IsNone) throw new ShapeException($"{name}: required tensor is missing");
        Dims(what, view.Length);
        return view.Length;
    }

    private static void Dropout(DropoutSpec dropout)
    {
        if (!(dropout.P >= 0f && dropout.P < 1f))
            throw new ArgumentOutOfRangeException(nameof(dropout), dropout.P, $"dropout: probability must be in [0, 1), got {dropout.P}");
    }

    private static void Finite(float value, [CallerArgumentExpression(nameof(value))] string name = "")
    {
        if (!float.IsFinite(value)) throw new ArgumentOutOfRangeException(name, value, $"{name}: must be finite, got {value}");
    }

    // ================================================================ memory

    /// <summary><see cref="IBackend.Upload{T}"/>: dst exists and src has its length.</summary>
    public static void Upload<T>(View<T> dst, int srcLength) where T : unmanaged
    {
        if (dst.IsNone) throw new ShapeException("dst: required tensor is missing");
        if (srcLength != dst.Length) throw new ShapeException($"src: expected {dst.Length} elements (the length of dst), got {srcLength}");
    }

    /// <summary><see cref="IBackend.Download{T}"/>: src exists and dst has its length.</summary>
    public static void Download<T>(View<T> src, int dstLength) where T : unmanaged
    {
        if (src.IsNone) throw new ShapeException("src: required tensor is missing");
        if (dstLength != src.Length) throw new ShapeException($"dst: expected {src.Length} elements (the length of src), got {dstLength}");
    }

    /// <summary><see cref="IBackend.Zero"/>: dst exists.</summary>
    public static void Zero(View<float> dst)
    {
        if (dst.IsNone) throw new ShapeException("dst: required tensor is missing");
    }

    /// <summary><see cref="IBackend.Copy"/>: dst exists and src has its length.</summary>
    public static void Copy(View<float> dst, View<float> src)
    {
        Zero(dst);
        Len(src, dst.Length, "dst.Length");
    }

    // ================================================================ GEMM

    /// <summary><see cref="IBackend.Gemm"/>: positive dimensions, each operand's leading dimension and extent, and output
    /// matrices that do not overlap. Replaces lda, ldb, ldc of 0 ("packed") by the effective leading dimension.</summary>
    public static void Gemm(bool transA, bool transB, int M, int N, int K,
        View<float> a, ref int lda, View<float> b, ref int ldb, View<float> c, ref int ldc, int batch, long strideA, long strideB, long strideC)
    {
        Dims("Gemm (M, N, K, batch)", M, N, K, batch);
        lda = GemmOperand(a, lda, transA ? K : M, transA ? M : K, batch, strideA, transA ? "A stored (K, M)" : "A (M, K)", "lda", "strideA");
        ldb = GemmOperand(b, ldb, transB ? N : K, transB ? K : N, batch, strideB, transB ? "B stored (N, K)" : "B (K, N)", "ldb", "strideB");
        ldc = GemmOperand(c, ldc, M, N, batch, strideC, "C (M, N)", "ldc", "strideC");
        if (batch > 1 && strideC < (long)(M - 1) * ldc + N)
            throw new ShapeException($"strideC: {strideC} makes the {batch} output matrices C [{M},{N}] (ldc {ldc}) overlap; need >= {(long)(M - 1) * ldc + N}");
    }

    /// <summary>One GEMM operand stored [rows, cols] with leading dimension ld (0 = packed); returns the effective ld.</summary>
    private static int GemmOperand(View<float> m, int ld, int rows, int cols, int batch, long stride, string what,
        string ldName, string strideName, [CallerArgumentExpression(nameof(m))] string name = "")
    {
        if (ld < 0) throw new ShapeException($"{ldName}: leading dimension must be >= 0 (0 = packed), got {ld}");
        int eff = ld == 0 ? cols : ld;
        if (eff < cols) throw new ShapeException($"{ldName}: leading dimension {ld} is smaller than the row length {cols} of {what} = [{rows},{cols}]");
        if (stride < 0) throw new ShapeException($"{strideName}: batch stride must be >= 0, got {stride}");
        long need = (batch - 1) * stride + (long)(rows - 1) * eff + cols;
        if (m.IsNone || m.Length < need)
            throw new ShapeException($"{name}: expected at least {batch} batch(es) of {what} = [{rows},{cols}] ({ldName} {eff}, {strideName} {stride}) = {need} elements, " +
                                     (m.IsNone ? "but the required tensor is missing" : $"got {m.Length}"));
        return eff;
    }

    // ================================================================ linear

    /// <summary><see cref="IBackend.LinearForward"/>.</summary>
    public static void LinearForward(View<float> output, View<float> input, View<float> weight, View<float> bias, int N, int IC, int OC)
    {
        Dims("LinearForward (N, IC, OC)", N, IC, OC);
        Len(output, (long)N * OC, "(N, OC)");
        Len(input, (long)N * IC, "(N, IC)");
        Len(weight, (long)OC * IC, "(OC, IC)");
        LenOpt(bias, OC, "(OC)");
    }

    /// <summary><see cref="IBackend.LinearBackward"/>.</summary>
    public static void LinearBackward(View<float> dInput, View<float> dWeight, View<float> dBias,
        View<float> dOutput, View<float> input, View<float> weight, int N, int IC, int OC)
    {
        Dims("LinearBackward (N, IC, OC)", N, IC, OC);
        LenOpt(dInput, (long)N * IC, "(N, IC)");
        LenOpt(dWeight, (long)OC * IC, "(OC, IC)");
        LenOpt(dBias, OC, "(OC)");
        Len(dOutput, (long)N * OC, "(N, OC)");
        Len(input, (long)N * IC, "(N, IC)");
        Len(weight, (long)OC * IC, "(OC, IC)");
    }

    // ================================================================ activations

    private static void KnownActivation(Activation act)
    {
        if (act is < Activation.Gelu or > Activation.Identity)
            throw new ArgumentOutOfRangeException(nameof(act), act, "act: unknown activation");
    }

    /// <summary><see cref="IBackend.ActivationForward"/>: n = input.Length.</summary>
    public static void ActivationForward(Activation act, View<float> output, View<float> input)
    {
        int n = Elements(input, "ActivationForward (n = input.Length)");
        Len(output, n, "(n) = input.Length");
        KnownActivation(act);
    }

    /// <summary><see cref="IBackend.ActivationBackward"/>: n = input.Length.</summary>
    public static void ActivationBackward(Activation act, View<float> dInput, View<float> dOutput, View<float> input)
    {
        int n = Elements(input, "ActivationBackward (n = input.Length)");
        Len(dInput, n, "(n) = input.Length");
        Len(dOutput, n, "(n) = input.Length");
        KnownActivation(act);
    }

    // ================================================================ residual + LayerNorm

    /// <summary><see cref="IBackend.AddLayerNormForward"/>.</summary>
    public static void AddLayerNormForward(View<float> output, View<float> sum, View<float> mean, View<float> rstd,
        View<float> a, View<float> b, View<float> gamma, View<float> beta, int N, int C, float eps)
    {
        Dims("AddLayerNormForward (N, C)", N, C);
        long nc = (long)N * C;
        Len(output, nc, "(N, C)");
        Len(sum, nc, "(N, C)");
        Len(mean, N, "(N)");
        Len(rstd, N, "(N)");
        Len(a, nc, "(N, C)");
        LenOpt(b, nc, "(N, C)");
        Len(gamma, C, "(C)");
        Len(beta, C, "(C)");
        if (!(eps >= 0f) || float.IsInfinity(eps)) throw new ArgumentOutOfRangeException(nameof(eps), eps, $"eps: must be finite and >= 0, got {eps}");
    }

    /// <summary><see cref="IBackend.AddLayerNormBackward"/>.</summary>
    public static void AddLayerNormBackward(View<float> dx, View<float> dGamma, View<float> dBeta,
        View<float> dOutput, View<float> sum, View<float> gamma, View<float> mean, View<float> rstd, int N, int C)
    {
        Dims("AddLayerNormBackward (N, C)", N, C);
        long nc = (long)N * C;
        Len(dx, nc, "(N, C)");
        LenOpt(dGamma, C, "(C)");
        LenOpt(dBeta, C, "(C)");
        Len(dOutput, nc, "(N, C)");
        Len(sum, nc, "(N, C)");
        Len(gamma, C, "(C)");
        Len(mean, N, "(N)");
        Len(rstd, N, "(N)");
    }

    // ================================================================ embeddings

    /// <summary><see cref="IBackend.EmbeddingForward"/>; returns the rows of the word and type tables (ids are checked
    /// against them by <see cref="Ids"/>, which needs the ids on the host).</summary>
    public static (int WordRows, int TypeRows) EmbeddingForward(View<float> output, View<int> ids, View<int> typeIds,
        View<float> wordEmb, View<float> posEmb, View<float> typeEmb, int B, int T, int C)
    {
        Dims("EmbeddingForward (B, T, C)", B, T, C);
        Len(output, (long)B * T * C, "(B, T, C)");
        Len(ids, (long)B * T, "(B, T)");
        LenOpt(typeIds, (long)B * T, "(B, T)");
        int v = TableRows(wordEmb, C, 1);
        TableRows(posEmb, C, T);
        int tv = TableRows(typeEmb, C, 1);
        return (v, tv);
    }

    /// <summary><see cref="IBackend.EmbeddingBackward"/>; returns the rows of the word and type gradient tables (0 when None).</summary>
    public static (int WordRows, int TypeRows) EmbeddingBackward(View<float> dWordEmb, View<float> dPosEmb, View<float> dTypeEmb,
        View<float> dOutput, View<int> ids, View<int> typeIds, int B, int T, int C)
    {
        Dims("EmbeddingBackward (B, T, C)", B, T, C);
        int v = dWordEmb.IsNone ? 0 : TableRows(dWordEmb, C, 1);
        if (!dPosEmb.IsNone) TableRows(dPosEmb, C, T);
        int tv = dTypeEmb.IsNone ? 0 : TableRows(dTypeEmb, C, 1);
        Len(dOutput, (long)B * T * C, "(B, T, C)");
        Len(ids, (long)B * T, "(B, T)");
        LenOpt(typeIds, (long)B * T, "(B, T)");
        return (v, tv);
    }

    /// <summary>An embedding table (rows, C): a whole number of at least <paramref name="minRows"/> rows; returns rows.</summary>
    private static int TableRows(View<float> table, int C, int minRows, [CallerArgumentExpression(nameof(table))] string name = "")
    {
        if (table.IsNone) throw new ShapeException($"{name}: required tensor is missing (expected (rows, C={C}))");
        if (table.Length == 0 || table.Length % C != 0 || table.Length / C < minRows)
            throw new ShapeException($"{name}: expected (rows, C={C}) with rows >= {minRows}, i.e. a positive multiple of {C} elements, got {table.Length}");
        return table.Length / C;
    }

    /// <summary>Every id of a (B, T) id tensor in [0, rows), else <see cref="ArgumentOutOfRangeException"/> naming the id,
    /// its (b, t) position and the table size.</summary>
    public static void Ids(ReadOnlySpan<int> ids, int rows, int T, string name, string table)
    {
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)rows)
                throw new ArgumentOutOfRangeException(name,
                    $"{name}: id {ids[i]} at position (b={i / T}, t={i % T}) is outside the table {table} of {rows} rows");
    }

    // ================================================================ masked softmax

    /// <summary><see cref="IBackend.SoftmaxForward"/>.</summary>
    public static void SoftmaxForward(View<float> probs, View<float> scores, View<float> mask, int B, int NH, int T, float scale)
    {
        Dims("SoftmaxForward (B, NH, T)", B, NH, T);
        long n = (long)B * NH * T * T;
        Len(probs, n, "(B, NH, T, T)");
        Len(scores, n, "(B, NH, T, T)");
        LenOpt(mask, (long)B * T, "(B, T)");
        Finite(scale);
    }

    /// <summary><see cref="IBackend.SoftmaxBackward"/>.</summary>
    public static void SoftmaxBackward(View<float> dScores, View<float> dProbs, View<float> probs, int B, int NH, int T, float scale)
    {
        Dims("SoftmaxBackward (B, NH, T)", B, NH, T);
        long n = (long)B * NH * T * T;
        Len(dScores, n, "(B, NH, T, T)");
        Len(dProbs, n, "(B, NH, T, T)");
        Len(probs, n, "(B, NH, T, T)");
        Finite(scale);
    }

    // ================================================================ attention

    /// <summary>Workspace floats needed by AttentionForward/Backward: 2·B·NH·T² + 4·B·T·C.</summary>
    public static long AttentionWorkspace(int B, int T, int C, int NH) => 2L * B * NH * T * T + 4L * B * T * C;

    /// <summary>The head size C / NH; throws unless NH divides C.</summary>
    public static int HeadSize(int C, int NH, string what)
    {
        if (C % NH != 0) throw new ShapeException($"{what}: C = {C} is not divisible by NH = {NH} heads");
        return C / NH;
    }

    private static void AttentionDims(string what, int B, int T, int C, int NH)
    {
        Dims(what, B, T, C, NH);
        HeadSize(C, NH, what);
    }

    /// <summary><see cref="IBackend.AttentionForward"/>.</summary>
    public static void AttentionForward(View<float> output, View<float> qkvPerm, View<float> probs, View<float> workspace,
        View<float> qkv, View<float> mask, int B, int T, int C, int NH, DropoutSpec dropout)
    {
        AttentionDims("AttentionForward (B, T, C, NH)", B, T, C, NH);
        long btc = (long)B * T * C;
        Len(output, btc, "(B, T, C)");
        Len(qkvPerm, 3 * btc, "(3, B, NH, T, HS)");
        Len(probs, (long)B * NH * T * T, "(B, NH, T, T)");
        MinLen(workspace, AttentionWorkspace(B, T, C, NH), "2·B·NH·T² + 4·B·T·C");
        Len(qkv, 3 * btc, "(B, T, 3C)");
        LenOpt(mask, (long)B * T, "(B, T)");
        Dropout(dropout);
    }

    /// <summary><see cref="IBackend.AttentionBackward"/>.</summary>
    public static void AttentionBackward(View<float> dQkv, View<float> dOutput, View<float> qkvPerm, View<float> probs, View<float> workspace,
        View<float> mask, int B, int T, int C, int NH, DropoutSpec dropout)
    {
        AttentionDims("AttentionBackward (B, T, C, NH)", B, T, C, NH);
        long btc = (long)B * T * C;
        Len(dQkv, 3 * btc, "(B, T, 3C)");
        Len(dOutput, btc, "(B, T, C)");
        Len(qkvPerm, 3 * btc, "(3, B, NH, T, HS)");
        Len(probs, (long)B * NH * T * T, "(B, NH, T, T)");
        MinLen(workspace, AttentionWorkspace(B, T, C, NH), "2·B·NH·T² + 4·B·T·C");
        LenOpt(mask, (long)B * T, "(B, T)");
        Dropout(dropout);
    }

    // ================================================================ dropout

    /// <summary><see cref="IBackend.DropoutForward"/>: n = input.Length.</summary>
    public static void DropoutForward(View<float> output, View<float> input, DropoutSpec dropout)
    {
        int n = Elements(input, "DropoutForward (n = input.Length)");
        Len(output, n, "(n) = input.Length");
        Dropout(dropout);
    }

    /// <summary><see cref="IBackend.DropoutBackward"/>: n = dOutput.Length.</summary>
    public static void DropoutBackward(View<float> dInput, View<float> dOutput, DropoutSpec dropout)
    {
        int n = Elements(dOutput, "DropoutBackward (n = dOutput.Length)");
        Len(dInput, n, "(n) = dOutput.Length");
        Dropout(dropout);
    }

    // ================================================================ strided row copy

    /// <summary><see cref="IBackend.Copy2D"/>: the column ranges fit their rows and both views cover the rows.</summary>
    public static void Copy2D(View<float> dst, int ldDst, int dstCol, View<float> src, int ldSrc, int srcCol, int rows, int cols)
    {
        Dims("Copy2D (rows, cols)", rows, cols);
        if (dstCol < 0 || ldDst <= 0 || dstCol + cols > ldDst)
            throw new ShapeException($"dstCol: columns [{dstCol}, {dstCol + cols}) do not fit rows of ldDst = {ldDst}");
        if (srcCol < 0 || ldSrc <= 0 || srcCol + cols > ldSrc)
            throw new ShapeException($"srcCol: columns [{srcCol}, {srcCol + cols}) do not fit rows of ldSrc = {ldSrc}");
        MinLen(dst, (long)(rows - 1) * ldDst + dstCol + cols, "(rows-1)·ldDst + dstCol + cols");
        MinLen(src, (long)(rows - 1) * ldSrc + srcCol + cols, "(rows-1)·ldSrc + srcCol + cols");
    }

    // ================================================================ pooler

    /// <summary><see cref="IBackend.PoolerForward"/>.</summary>
    public static void PoolerForward(View<float> pooled, View<float> hidden, View<float> weight, View<float> bias, int B, int T, int C)
    {
        Dims("PoolerForward (B, T, C)", B, T, C);
        Len(pooled, (long)B * C, "(B, C)");
        Len(hidden, (long)B * T * C, "(B, T, C)");
        Len(weight, (long)C * C, "(C, C)");
        LenOpt(bias, C, "(C)");
    }

    /// <summary><see cref="IBackend.PoolerBackward"/>.</summary>
    public static void PoolerBackward(View<float> dHidden, View<float> dWeight, View<float> dBias, View<float> dPooled,
        View<float> pooled, View<float> hidden, View<float> weight, View<float> workspace, int B, int T, int C)
    {
        Dims("PoolerBackward (B, T, C)", B, T, C);
        LenOpt(dHidden, (long)B * T * C, "(B, T, C)");
        LenOpt(dWeight, (long)C * C, "(C, C)");
        LenOpt(dBias, C, "(C)");
        Len(dPooled, (long)B * C, "(B, C)");
        Len(pooled, (long)B * C, "(B, C)");
        Len(hidden, (long)B * T * C, "(B, T, C)");
        Len(weight, (long)C * C, "(C, C)");
        MinLen(workspace, (long)B * C, "(B, C)");
    }

    // ================================================================ losses

    /// <summary><see cref="IBackend.BceForwardBackward"/>.</summary>
    public static void BceForwardBackward(View<float> loss, View<float> dLogits, View<float> logits, View<float> targets, View<float> weights,
        int N, float temperature)
    {
        Dims("BceForwardBackward (N)", N);
        Len(loss, 1, "(1)");
        LenOpt(dLogits, N, "(N)");
        Len(logits, N, "(N)");
        Len(targets, N, "(N)");
        LenOpt(weights, N, "(N)");
        if (!(temperature > 0f) || float.IsInfinity(temperature))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, $"temperature: must be finite and > 0, got {temperature}");
    }

    /// <summary><see cref="IBackend.MseForwardBackward"/>.</summary>
    public static void MseForwardBackward(View<float> loss, View<float> dPred, View<float> pred, View<float> target, int N, float scale)
    {
        Dims("MseForwardBackward (N)", N);
        Len(loss, 1, "(1)");
        LenOpt(dPred, N, "(N)");
        Len(pred, N, "(N)");
        Len(target, N, "(N)");
        Finite(scale);
    }

    // ================================================================ optimiser

    /// <summary><see cref="IBackend.GlobalNorm"/>.</summary>
    public static void GlobalNorm(View<float> norm, View<float> grads)
    {
        Len(norm, 1, "(1)");
        Elements(grads, "GlobalNorm (n = grads.Length)");
    }

    /// <summary><see cref="IBackend.AdamW"/>: lengths, the norm scalar, step and betas. The segments themselves are
    /// checked by <see cref="AdamSegments"/> on the host.</summary>
    public static void AdamW(View<float> param, View<float> grad, View<float> m, View<float> v, View<AdamSegment> segments,
        View<float> norm, float maxNorm, float beta1, float beta2, int step)
    {
        int n = Elements(param, "AdamW (n = param.Length)");
        Len(grad, n, "(n) = param.Length");
        Len(m, n, "(n) = param.Length");
        Len(v, n, "(n) = param.Length");
        if (segments.IsNone) throw new ShapeException("segments: required tensor is missing");
        if (maxNorm > 0f) Len(norm, 1, "(1)"); else LenOpt(norm, 1, "(1)");
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, $"step: counts from 1, got {step}");
        if (!(beta1 >= 0f && beta1 < 1f)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, $"beta1: must be in [0, 1), got {beta1}");
        if (!(beta2 >= 0f && beta2 < 1f)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, $"beta2: must be in [0, 1), got {beta2}");
    }

    /// <summary>Each AdamW segment inside param of <paramref name="n"/> elements and no two non-empty segments overlapping
    /// (sorted input, the usual case: one pass; otherwise every pair). Allocates nothing. Returns the longest segment.</summary>
    public static int AdamSegments(ReadOnlySpan<AdamSegment> segs, int n)
    {
        bool sorted = true;
        int maxLength = 0;
        for (int s = 0; s < segs.Length; s++)
        {
            AdamSegment sg = segs[s];
            if (sg.Offset < 0 || sg.Length < 0 || (long)sg.Offset + sg.Length > n)
                throw new ArgumentOutOfRangeException("segments",
                    $"segments[{s}]: range [{sg.Offset}, {(long)sg.Offset + sg.Length}) is outside param of {n} elements");
            if (s > 0 && segs[s - 1].Offset > sg.Offset) sorted = false;
            maxLength = Math.Max(maxLength, sg.Length);
        }
        if (sorted)
        {
            long end = long.MinValue; int last = -1;
            for (int s = 0; s < segs.Length; s++)
            {
                if (segs[s].Length == 0) continue;
                if (segs[s].Offset < end)
                    throw new ArgumentException($"segments[{last}] and segments[{s}] overlap at element {segs[s].Offset}", "segments");
                end = (long)segs[s].Offset + segs[s].Length; last = s;
            }
            return maxLength;
        }
        for (int s = 0; s < segs.Length; s++)
            for (int t = s + 1; t < segs.Length; t++)
            {
                AdamSegment a = segs[s], b = segs[t];
                if (a.Length > 0 && b.Length > 0 && a.Offset < b.Offset + b.Length && b.Offset < a.Offset + a.Length)
                    throw new ArgumentException($"segments[{s}] and segments[{t}] overlap at element {Math.Max(a.Offset, b.Offset)}", "segments");
            }
        return maxLength;
    }
}
