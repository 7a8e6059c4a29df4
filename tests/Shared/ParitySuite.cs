// The one library of op parity cases: every IBackend op on a candidate backend against a reference backend, on fresh
// random data, ragged sizes, NaN-poisoned outputs (an element the kernel forgets to write fails), pre-filled parameter
// gradients (+= semantics), optional arguments and the aliasing the contract allows. Compiled into the NUnit suite
// (tests/FastRec.Tests/Kernels/BackendParityTests.cs: every candidate of Backends.cs against the Reference backend) and
// into the device check (bench/FastRec.Bench/DeviceCheck.cs: CUDA against the CPU), so CUDA runs the cases CI runs.
// No NUnit here: a failure goes to an IParityReport (an assertion in NUnit, a FAIL line in the device check).
// Tolerances (float kernels vs a double or float reference): products summed over K terms of magnitude <= 1 get
// atol = 2e-6*K, rtol 1e-5; pointwise transcendental ops rtol 1e-6; each case states its own, and a report may scale
// them (TF32 tensor-core GEMMs on the device).
using FastRec.Kernels;

namespace FastRec.Tests.Shared;

/// <summary>Where a parity case reports a mismatch.</summary>
public interface IParityReport
{
    /// <summary>Multiplies every case's tolerances (1 for fp32 kernels).</summary>
    double ToleranceScale { get; }
    /// <summary>A comparison or a check failed: <paramref name="message"/> says which element and by how much.</summary>
    void Fail(string message);
    /// <summary>A yes/no property of the result (e.g. a frozen segment left untouched).</summary>
    void Check(bool ok, string message) { if (!ok) Fail(message); }
}

/// <summary>Seeded random data, poisoned buffers, uploads and downloads.</summary>
public static class ParityData
{
    /// <summary>Deterministic uniform data in [lo, hi) from the counter RNG.</summary>
    public static float[] Random(int n, ulong seed, float lo = -1f, float hi = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = lo + (hi - lo) * Rng.Uniform(seed, (ulong)i);
        return a;
    }

    /// <summary>A buffer on <paramref name="backend"/> holding <paramref name="data"/>.</summary>
    public static DeviceBuffer<T> Upload<T>(IBackend backend, T[] data) where T : unmanaged
    {
        var buf = backend.Allocate<T>(data.Length);
        if (data.Length > 0) backend.Upload(buf.All, data);
        return buf;
    }

    /// <summary>An output buffer pre-filled with NaN.</summary>
    public static DeviceBuffer<float> Poisoned(IBackend backend, int n)
    {
        var a = new float[n];
        Array.Fill(a, float.NaN);
        return Upload(backend, a);
    }

    /// <summary>The view's elements on the host.</summary>
    public static float[] Download(IBackend backend, View<float> v)
    {
        var a = new float[v.Length];
        backend.Download(v, a);
        return a;
    }
}

/// <summary>The parity cases of one (candidate, reference) pair of backends. <see cref="Cases"/> lists every case with
/// its parameters; each public method is one case.</summary>
public sealed class ParitySuite(IBackend candidate, IBackend reference, IParityReport report, string name)
{
    private readonly IBackend _c = candidate, _r = reference;
    private readonly IParityReport _report = report;
    private static readonly bool[] Bools = [false, true];

    /// <summary>A named case.</summary>
    public sealed record ParityCase(string Name, Action<ParitySuite> Run)
    {
        public override string ToString() => Name;
    }

    private static ParityCase Case(string caseName, Action<ParitySuite> run) => new(caseName, run);

    /// <summary>Every case with its parameters, in a fixed order (NUnit's test names and the device check's lines).</summary>
    public static IEnumerable<ParityCase> Cases()
    {
        (int M, int N, int K, int batch, int pad)[] gemm = [(1, 1, 1, 1, 0), (7, 33, 5, 1, 3), (33, 7, 127, 2, 0), (127, 33, 7, 3, 5)];
        foreach (var g in gemm)
            foreach (bool ta in Bools)
                foreach (bool tb in Bools)
                    foreach (bool acc in Bools)
                        yield return Case($"Gemm({ta}, {tb}, {g.M}, {g.N}, {g.K}, {g.batch}, {g.pad}, {acc})", s => s.Gemm(ta, tb, g.M, g.N, g.K, g.batch, g.pad, acc));
        yield return Case("GemmStrideZeroBroadcastsAnOperand", s => s.GemmStrideZeroBroadcastsAnOperand());
        foreach (int shape in Enumerable.Range(0, 4))
            foreach (bool bias in Bools)
                yield return Case($"LinearForward({shape}, {bias})", s => s.LinearForward(shape, bias));
        foreach (int shape in Enumerable.Range(0, 4))
            foreach (bool dInput in Bools)
                foreach (bool dWeight in Bools)
                    foreach (bool dBias in Bools)
                        yield return Case($"LinearBackward({shape}, {dInput}, {dWeight}, {dBias})", s => s.LinearBackward(shape, dInput, dWeight, dBias));
        foreach (Activation act in Enum.GetValues<Activation>())
            foreach (int n in new int[] { 1, 7, 33, 127, 1000 })
                yield return Case($"ActivationForward({act}, {n})", s => s.ActivationForward(act, n));
        foreach (Activation act in Enum.GetValues<Activation>())
            foreach (int n in new int[] { 1, 7, 33, 127, 1000 })
                yield return Case($"ActivationBackward({act}, {n})", s => s.ActivationBackward(act, n));
        foreach (int N in new int[] { 1, 7, 33, 130 })   // 130 rows: three 64-row chunks in the GPU parameter-gradient sums
            foreach (int C in new int[] { 1, 7, 33, 127 })
                foreach (bool withB in Bools)
                    foreach (float eps in new float[] { 1e-5f, 1e-12f })
                        yield return Case($"AddLayerNormForward({N}, {C}, {withB}, {eps})", s => s.AddLayerNormForward(N, C, withB, eps));
        yield return Case("AddLayerNormForwardSumMayAliasA", s => s.AddLayerNormForwardSumMayAliasA());
        foreach (int N in new int[] { 1, 7, 33, 130 })   // 130 rows: three 64-row chunks in the GPU parameter-gradient sums
            foreach (int C in new int[] { 1, 7, 33, 127 })
                foreach (bool dGamma in Bools)
                    foreach (bool dBeta in Bools)
                        yield return Case($"AddLayerNormBackward({N}, {C}, {dGamma}, {dBeta})", s => s.AddLayerNormBackward(N, C, dGamma, dBeta));
        foreach (int shape in Enumerable.Range(0, EmbShapes.Length))
            foreach (bool withTypes in Bools)
                yield return Case($"EmbeddingForward({shape}, {withTypes})", s => s.EmbeddingForward(shape, withTypes));
        foreach (int shape in Enumerable.Range(0, EmbShapes.Length))
            foreach (bool withTypes in Bools)
                foreach (bool dWord in Bools)
                    foreach (bool dPos in Bools)
                        foreach (bool dType in Bools)
                            yield return Case($"EmbeddingBackward({shape}, {withTypes}, {dWord}, {dPos}, {dType})", s => s.EmbeddingBackward(shape, withTypes, dWord, dPos, dType));
        foreach (int shape in Enumerable.Range(0, 3))
            foreach (bool masked in Bools)
                foreach (bool inPlace in Bools)
                    yield return Case($"SoftmaxForward({shape}, {masked}, {inPlace})", s => s.SoftmaxForward(shape, masked, inPlace));
        foreach (int shape in Enumerable.Range(0, 3))
            foreach (bool inPlace in Bools)
                yield return Case($"SoftmaxBackward({shape}, {inPlace})", s => s.SoftmaxBackward(shape, inPlace));
        foreach (int shape in Enumerable.Range(0, 3))
            foreach (bool masked in Bools)
                foreach (float p in new float[] { 0f, 0.2f })
                    yield return Case($"AttentionForwardBackward({shape}, {masked}, {p})", s => s.AttentionForwardBackward(shape, masked, p));
        foreach (int n in new int[] { 1, 33, 1000 })
            foreach (float p in new float[] { 0f, 0.1f, 0.5f })
                foreach (bool inPlace in Bools)
                    yield return Case($"Dropout({n}, {p}, {inPlace})", s => s.Dropout(n, p, inPlace));
        foreach (int rows in new int[] { 1, 7 })
            foreach (int cols in new int[] { 1, 33 })
                foreach (bool accumulate in Bools)
                    yield return Case($"Copy2D({rows}, {cols}, {accumulate})", s => s.Copy2D(rows, cols, accumulate));
        foreach (int shape in Enumerable.Range(0, 3))
            foreach (bool bias in Bools)
                yield return Case($"PoolerForward({shape}, {bias})", s => s.PoolerForward(shape, bias));
        foreach (int shape in Enumerable.Range(0, 3))
            foreach (bool dHidden in Bools)
                foreach (bool dWeight in Bools)
                    foreach (bool dBias in Bools)
                        yield return Case($"PoolerBackward({shape}, {dHidden}, {dWeight}, {dBias})", s => s.PoolerBackward(shape, dHidden, dWeight, dBias));
        foreach (int N in new int[] { 1, 7, 127 })
            foreach (bool weighted in Bools)
                foreach (float temperature in new float[] { 1f, 2.5f })
                    foreach (float scale in new float[] { 1f, 0.7f })
                        foreach (bool accumulate in Bools)
                            yield return Case($"BceForwardBackward({N}, {weighted}, {temperature}, {scale}, {accumulate})", s => s.BceForwardBackward(N, weighted, temperature, scale, accumulate));
        yield return Case("BceLossOnlyWhenGradientIsNone", s => s.BceLossOnlyWhenGradientIsNone());
        foreach (int n in new int[] { 1, 7, 33, 127, 100003 })
            yield return Case($"GlobalNorm({n})", s => s.GlobalNorm(n));
        foreach (float maxNorm in new float[] { 0f, 1f })
            foreach (int step in new int[] { 1, 7 })
                yield return Case($"AdamWWithFrozenSegment({maxNorm}, {step})", s => s.AdamWWithFrozenSegment(maxNorm, step));
    }

    // ================================================================ helpers
    /// <summary>The same tensor on the candidate (C) and the reference (R).</summary>
    private sealed class Pair<T>(DeviceBuffer<T> c, DeviceBuffer<T> r) where T : unmanaged
    {
        public DeviceBuffer<T> C { get; } = c;
        public DeviceBuffer<T> R { get; } = r;
    }

    /// <summary>Which side a lambda runs on; <see cref="V{T}"/> picks that side's view.</summary>
    private sealed class Side(bool isRef)
    {
        public View<T> V<T>(Pair<T>? p) where T : unmanaged => p is null ? View<T>.None : isRef ? p.R.All : p.C.All;
    }

    private static readonly Side CSide = new(false), RSide = new(true);

    /// <summary>Runs <paramref name="op"/> on the candidate, then on the reference.</summary>
    private void Both(Action<IBackend, Side> op)
    {
        op(_c, CSide);
        op(_r, RSide);
    }

    private Pair<T> Of<T>(T[] data) where T : unmanaged => new(ParityData.Upload(_c, data), ParityData.Upload(_r, data));
    private Pair<float> Rand(int n, ulong seed, float lo = -1f, float hi = 1f) => Of(ParityData.Random(n, seed, lo, hi));
    private Pair<float> NaNs(int n) => new(ParityData.Poisoned(_c, n), ParityData.Poisoned(_r, n));

    /// <summary>|cand − ref| ≤ s·(atol + rtol·|ref|) elementwise (s = the report's tolerance scale); NaN on both sides
    /// (poison both left untouched) counts as equal.</summary>
    private void Close(Pair<float> p, double atol, double rtol, string what)
    {
        double s = _report.ToleranceScale;
        atol *= s; rtol *= s;
        float[] a = ParityData.Download(_c, p.C.All), e = ParityData.Download(_r, p.R.All);
        int worst = -1; double worstExcess = 0;
        for (int i = 0; i < a.Length; i++)
        {
            if (float.IsNaN(a[i]) && float.IsNaN(e[i])) continue;
            double diff = Math.Abs((double)a[i] - e[i]);
            double excess = double.IsNaN(diff) ? double.PositiveInfinity : diff - (atol + rtol * Math.Abs((double)e[i]));
            if (excess > 0 && (worst < 0 || excess > worstExcess)) { worst = i; worstExcess = excess; }
        }
        if (worst >= 0)
            _report.Fail($"{what}: element {worst} of {a.Length}: {name} gave {a[worst]:R}, reference {e[worst]:R} (atol {atol}, rtol {rtol})");
    }

    private float[] Host(DeviceBuffer<float> b) => ParityData.Download(b.Owner, b.All);

    // ================================================================ GEMM

    public void Gemm(bool transA, bool transB, int M, int N, int K, int batch, int pad, bool accumulate)
    {
        int rowsA = transA ? K : M, colsA = transA ? M : K, rowsB = transB ? N : K, colsB = transB ? K : N;
        int lda = pad == 0 ? 0 : colsA + pad, ldb = pad == 0 ? 0 : colsB + pad + 1, ldc = pad == 0 ? 0 : N + pad;
        int la = lda == 0 ? colsA : lda, lb = ldb == 0 ? colsB : ldb, lc = ldc == 0 ? N : ldc;
        long sA = (long)rowsA * la + pad, sB = (long)rowsB * lb + 2 * pad, sC = (long)M * lc + pad;
        var a = Rand((int)((batch - 1) * sA + (rowsA - 1) * la + colsA), 1);
        var b = Rand((int)((batch - 1) * sB + (rowsB - 1) * lb + colsB), 2);
        int nc = (int)((batch - 1) * sC + (M - 1) * lc + N);
        var c = accumulate ? Rand(nc, 3) : NaNs(nc);
        Both((be, s) => be.Gemm(transA, transB, M, N, K, 0.75f, s.V(a), lda, s.V(b), ldb, accumulate, s.V(c), ldc,
            batch, batch > 1 ? sA : 0, batch > 1 ? sB : 0, batch > 1 ? sC : 0));
        Close(c, 2e-6 * K, 1e-5, "C");
    }

    public void GemmStrideZeroBroadcastsAnOperand()
    {
        // strideB = 0: every batch multiplies by the same B.
        const int M = 5, N = 6, K = 7, batch = 3;
        var a = Rand(batch * M * K, 4); var b = Rand(K * N, 5); var c = NaNs(batch * M * N);
        Both((be, s) => be.Gemm(false, false, M, N, K, 1f, s.V(a), 0, s.V(b), 0, false, s.V(c), 0, batch, M * K, 0, M * N));
        Close(c, 2e-6 * K, 1e-5, "C");
    }

    // ================================================================ linear
    private static readonly (int N, int IC, int OC)[] LinearShapes = [(1, 1, 1), (7, 33, 5), (33, 7, 127), (127, 20, 9)];

    public void LinearForward(int shape, bool bias)
    {
        var (N, IC, OC) = LinearShapes[shape];
        var x = Rand(N * IC, 10); var w = Rand(OC * IC, 11); var bb = Rand(OC, 12); var o = NaNs(N * OC);
        Both((be, s) => be.LinearForward(s.V(o), s.V(x), s.V(w), bias ? s.V(bb) : View<float>.None, N, IC, OC));
        Close(o, 2e-6 * IC, 1e-5, "output");
    }

    public void LinearBackward(int shape, bool dInput, bool dWeight, bool dBias)
    {
        var (N, IC, OC) = LinearShapes[shape];
        var x = Rand(N * IC, 20); var w = Rand(OC * IC, 21); var dy = Rand(N * OC, 22);
        var dx = dInput ? NaNs(N * IC) : null;
        var dw = dWeight ? Rand(OC * IC, 23) : null; // pre-filled: must be added to
        var db = dBias ? Rand(OC, 24) : null;
        Both((be, s) => be.LinearBackward(s.V(dx), s.V(dw), s.V(db), s.V(dy), s.V(x), s.V(w), N, IC, OC));
        if (dx is not null) Close(dx, 2e-6 * OC, 1e-5, "dInput");
        if (dw is not null) Close(dw, 2e-6 * N, 1e-5, "dWeight (+=)");
        if (db is not null) Close(db, 2e-6 * N, 1e-5, "dBias (+=)");
    }

    // ================================================================ activations
    // GELU: 1 + erf(x/√2) cancels for x ≪ 0, so the float kernels get an absolute 5e-7 on |x| ≤ 6 (relative 1e-6 elsewhere).
    public void ActivationForward(Activation act, int n)
    {
        var x = Rand(n, 30, -6f, 6f); var y = NaNs(n);
        Both((be, s) => be.ActivationForward(act, s.V(y), s.V(x)));
        Close(y, 5e-7, 1e-6, $"{act} output");
    }

    public void ActivationBackward(Activation act, int n)
    {
        var x = Rand(n, 31, -6f, 6f); var dy = Rand(n, 32); var dx = NaNs(n);
        Both((be, s) => be.ActivationBackward(act, s.V(dx), s.V(dy), s.V(x)));
        Close(dx, 5e-7, 1e-6, $"{act} dInput");
    }

    // ================================================================ residual + LayerNorm
    public void AddLayerNormForward(int N, int C, bool withB, float eps)
    {
        var a = Rand(N * C, 40, -2f, 2f); var b = Rand(N * C, 41); var g = Rand(C, 42, 0.5f, 1.5f); var be0 = Rand(C, 43);
        var o = NaNs(N * C); var sum = NaNs(N * C); var mu = NaNs(N); var rs = NaNs(N);
        Both((be, s) => be.AddLayerNormForward(s.V(o), s.V(sum), s.V(mu), s.V(rs), s.V(a), withB ? s.V(b) : View<float>.None,
            s.V(g), s.V(be0), N, C, eps));
        Close(sum, 0, 1e-7, "sum");
        Close(mu, 1e-6, 1e-5, "mean");
        Close(rs, 1e-6, 1e-5, "rstd");
        Close(o, 1e-5, 1e-5, "output");
    }

    public void AddLayerNormForwardSumMayAliasA()
    {
        const int N = 7, C = 33;
        var a = Rand(N * C, 44); var b = Rand(N * C, 45); var g = Rand(C, 46); var be0 = Rand(C, 47);
        var o = NaNs(N * C); var mu = NaNs(N); var rs = NaNs(N);
        Both((be, s) => be.AddLayerNormForward(s.V(o), s.V(a), s.V(mu), s.V(rs), s.V(a), s.V(b), s.V(g), s.V(be0), N, C, 1e-12f));
        Close(a, 0, 1e-7, "sum (in a)");
        Close(o, 1e-5, 1e-5, "output");
    }

    public void AddLayerNormBackward(int N, int C, bool dGamma, bool dBeta)
    {
        // Forward on the reference to get a consistent (sum, mean, rstd), then upload the same to both sides.
        var a = Rand(N * C, 50, -2f, 2f); var g = Rand(C, 51, 0.5f, 1.5f); var be0 = Rand(C, 52);
        var o = NaNs(N * C); var sum = NaNs(N * C); var mu = NaNs(N); var rs = NaNs(N);
        _r.AddLayerNormForward(o.R.All, sum.R.All, mu.R.All, rs.R.All, a.R.All, View<float>.None, g.R.All, be0.R.All, N, C, 1e-5f);
        var sumP = Of(Host(sum.R)); var muP = Of(Host(mu.R)); var rsP = Of(Host(rs.R));
        var dy = Rand(N * C, 53); var dx = NaNs(N * C);
        var dg = dGamma ? Rand(C, 54) : null; var db = dBeta ? Rand(C, 55) : null;
        Both((be, s) => be.AddLayerNormBackward(s.V(dx), s.V(dg), s.V(db), s.V(dy), s.V(sumP), s.V(g), s.V(muP), s.V(rsP), N, C));
        Close(dx, 1e-5, 1e-4, "dx");
        if (dg is not null) Close(dg, 2e-6 * N, 1e-5, "dGamma (+=)");
        if (db is not null) Close(db, 2e-6 * N, 1e-5, "dBeta (+=)");
    }

    // ================================================================ embeddings
    private static readonly (int B, int T, int C)[] EmbShapes = [(1, 1, 1), (2, 7, 33), (3, 5, 8), (3, 50, 4)];   // 150 tokens: several 64-token chunks of the GPU scatter-add
    /// <summary>Rows of the word and token-type tables of the embedding cases.</summary>
    public const int Vocab = 11, TypeVocab = 2;

    private Pair<int> Ids(int n, int rows, ulong seed)
    {
        var ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = (int)(Rng.Hash(seed, (ulong)i) % (ulong)rows);
        return Of(ids);
    }

    public void EmbeddingForward(int shape, bool withTypes)
    {
        var (B, T, C) = EmbShapes[shape];
        var ids = Ids(B * T, Vocab, 60); var types = Ids(B * T, TypeVocab, 61);
        var w = Rand(Vocab * C, 62); var p = Rand((T + 2) * C, 63); var ty = Rand(TypeVocab * C, 64); var o = NaNs(B * T * C);
        Both((be, s) => be.EmbeddingForward(s.V(o), s.V(ids), withTypes ? s.V(types) : View<int>.None, s.V(w), s.V(p), s.V(ty), B, T, C));
        Close(o, 1e-7, 1e-7, "output");
    }

    public void EmbeddingBackward(int shape, bool withTypes, bool dWord, bool dPos, bool dType)
    {
        var (B, T, C) = EmbShapes[shape];
        var ids = Ids(B * T, 3, 65); // few distinct ids: repeated rows exercise the scatter-add
        var types = Ids(B * T, TypeVocab, 66);
        var dy = Rand(B * T * C, 67);
        var dw = dWord ? Rand(Vocab * C, 68) : null; var dp = dPos ? Rand((T + 2) * C, 69) : null; var dt = dType ? Rand(TypeVocab * C, 70) : null;
        Both((be, s) => be.EmbeddingBackward(s.V(dw), s.V(dp), s.V(dt), s.V(dy), s.V(ids), withTypes ? s.V(types) : View<int>.None, B, T, C));
        if (dw is not null) Close(dw, 2e-6 * B * T, 1e-5, "dWordEmb (+=)");
        if (dp is not null) Close(dp, 2e-6 * B, 1e-5, "dPosEmb (+=)");
        if (dt is not null) Close(dt, 2e-6 * B * T, 1e-5, "dTypeEmb (+=)");
    }



    // ================================================================ masked softmax
    private static readonly (int B, int NH, int T)[] SoftmaxShapes = [(1, 1, 1), (2, 3, 7), (3, 2, 33)];

    /// <summary>mask(B,T): batch 0 keeps all, batch 1 pads its last third, batch 2 is fully padded.</summary>
    private static float[] PaddingMask(int B, int T)
    {
        var m = new float[B * T];
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                m[b * T + t] = b == 0 ? 1f : b == 1 ? (t < T - T / 3 ? 1f : 0f) : 0f;
        return m;
    }

    public void SoftmaxForward(int shape, bool masked, bool inPlace)
    {
        var (B, NH, T) = SoftmaxShapes[shape];
        int n = B * NH * T * T;
        var sc = Rand(n, 80, -5f, 5f); var mask = Of(PaddingMask(B, T));
        var p = inPlace ? sc : NaNs(n);
        Both((be, s) => be.SoftmaxForward(s.V(p), s.V(sc), masked ? s.V(mask) : View<float>.None, B, NH, T, 0.3f));
        Close(p, 1e-7, 1e-5, "probs");
    }

    public void SoftmaxBackward(int shape, bool inPlace)
    {
        var (B, NH, T) = SoftmaxShapes[shape];
        int n = B * NH * T * T;
        var sc = Rand(n, 81, -5f, 5f); var mask = Of(PaddingMask(B, T)); var p0 = NaNs(n);
        _r.SoftmaxForward(p0.R.All, sc.R.All, mask.R.All, B, NH, T, 0.3f);
        var p = Of(Host(p0.R));
        var dp = Rand(n, 82);
        var ds = inPlace ? dp : NaNs(n);
        Both((be, s) => be.SoftmaxBackward(s.V(ds), s.V(dp), s.V(p), B, NH, T, 0.3f));
        Close(ds, 1e-6, 1e-5, "dScores");
    }

    // ================================================================ attention
    private static readonly (int B, int T, int C, int NH)[] AttnShapes = [(1, 1, 4, 1), (2, 7, 12, 3), (2, 33, 16, 2)];

    public void AttentionForwardBackward(int shape, bool masked, float p)
    {
        var (B, T, C, NH) = AttnShapes[shape];
        var dropout = new DropoutSpec(p, 1234, 99);
        var qkv = Rand(B * T * 3 * C, 90, -2f, 2f); var mask = Of(PaddingMask(B, T));
        var o = NaNs(B * T * C); var perm = NaNs(3 * B * T * C); var probs = NaNs(B * NH * T * T);
        int wsLen = (int)Check.AttentionWorkspace(B, T, C, NH);
        var ws = NaNs(wsLen);
        Pair<float>? m = masked ? mask : null;
        Both((be, s) => be.AttentionForward(s.V(o), s.V(perm), s.V(probs), s.V(ws), s.V(qkv), s.V(m), B, T, C, NH, dropout));
        Close(perm, 0, 0, "qkvPerm");
        Close(probs, 1e-6, 1e-5, "probs");
        Close(o, 2e-5, 1e-4, "output");

        // Backward from the reference's saved tensors (uploaded to both), so only the backward is compared.
        var permP = Of(Host(perm.R)); var probsP = Of(Host(probs.R));
        var dy = Rand(B * T * C, 91); var dqkv = NaNs(B * T * 3 * C); var ws2 = NaNs(wsLen);
        Both((be, s) => be.AttentionBackward(s.V(dqkv), s.V(dy), s.V(permP), s.V(probsP), s.V(ws2), s.V(m), B, T, C, NH, dropout));
        Close(dqkv, 2e-5, 1e-4, "dQkv");
    }

    // ================================================================ dropout
    public void Dropout(int n, float p, bool inPlace)
    {
        var d = new DropoutSpec(p, 77, 5);
        var x = Rand(n, 100); var y = inPlace ? x : NaNs(n);
        Both((be, s) => be.DropoutForward(s.V(y), s.V(x), d));
        // atol 0: a dropped element must be exactly 0 on both; rtol 2.5e-7 (2 ulp): x·(float)(1/(1−p)) rounds twice.
        Close(y, 0, 2.5e-7, "output");
        var dy = Rand(n, 101); var dx = inPlace ? dy : NaNs(n);
        Both((be, s) => be.DropoutBackward(s.V(dx), s.V(dy), d));
        Close(dx, 0, 2.5e-7, "dInput");
    }

    // ================================================================ strided copy
    public void Copy2D(int rows, int cols, bool accumulate)
    {
        int ldD = cols + 5, ldS = cols + 3;
        var dst = Rand((rows - 1) * ldD + 2 + cols + 4, 110); var src = Rand((rows - 1) * ldS + 1 + cols, 111);
        Both((be, s) => be.Copy2D(s.V(dst), ldD, 2, s.V(src), ldS, 1, rows, cols, accumulate));
        Close(dst, 0, 1e-7, "dst (untouched elements compared too)");
    }

    // ================================================================ pooler
    private static readonly (int B, int T, int C)[] PoolerShapes = [(1, 1, 1), (3, 5, 7), (2, 4, 33)];

    public void PoolerForward(int shape, bool bias)
    {
        var (B, T, C) = PoolerShapes[shape];
        var h = Rand(B * T * C, 120); var w = Rand(C * C, 121); var bb = Rand(C, 122); var o = NaNs(B * C);
        Both((be, s) => be.PoolerForward(s.V(o), s.V(h), s.V(w), bias ? s.V(bb) : View<float>.None, B, T, C));
        Close(o, 2e-6 * C, 1e-5, "pooled");
    }

    public void PoolerBackward(int shape, bool dHidden, bool dWeight, bool dBias)
    {
        var (B, T, C) = PoolerShapes[shape];
        var h = Rand(B * T * C, 130); var w = Rand(C * C, 131); var pooled = Rand(B * C, 132, -0.99f, 0.99f); var dp = Rand(B * C, 133);
        var dh = dHidden ? Rand(B * T * C, 134) : null; // rows t > 0 must stay as they were
        var dw = dWeight ? Rand(C * C, 135) : null; var db = dBias ? Rand(C, 136) : null;
        var ws = NaNs(B * C);
        Both((be, s) => be.PoolerBackward(s.V(dh), s.V(dw), s.V(db), s.V(dp), s.V(pooled), s.V(h), s.V(w), s.V(ws), B, T, C));
        if (dh is not null) Close(dh, 2e-6 * C, 1e-5, "dHidden (+= on t = 0)");
        if (dw is not null) Close(dw, 2e-6 * B, 1e-5, "dWeight (+=)");
        if (db is not null) Close(db, 2e-6 * B, 1e-5, "dBias (+=)");
    }

    // ================================================================ BCE
    public void BceForwardBackward(int N, bool weighted, float temperature, float scale, bool accumulate)
    {
        float[] z = ParityData.Random(N, 140, -3f, 3f);
        z[0] = 100f;                 // |z| = 100: must stay finite
        if (N > 1) z[N - 1] = -100f;
        var logits = Of(z);
        var targets = Rand(N, 141, 0f, 1f); // soft targets
        var w = weighted ? Rand(N, 142, 0.1f, 2f) : null;
        var loss = NaNs(1);
        var g = accumulate ? Rand(N, 143) : NaNs(N);
        Both((be, s) => be.BceForwardBackward(s.V(loss), s.V(g), s.V(logits), s.V(targets), s.V(w), N, temperature, scale, accumulate));
        Close(loss, 1e-7, 1e-6, "loss");
        Close(g, 1e-8, 1e-5, "dLogits");
        _report.Check(float.IsFinite(Host(loss.C)[0]), "loss finite at |z| = 100");
    }

    public void BceLossOnlyWhenGradientIsNone()
    {
        const int N = 33;
        var logits = Rand(N, 144, -4f, 4f); var targets = Rand(N, 145, 0f, 1f); var loss = NaNs(1);
        Both((be, s) => be.BceForwardBackward(s.V(loss), View<float>.None, s.V(logits), s.V(targets), View<float>.None, N));
        Close(loss, 1e-7, 1e-6, "loss");
    }

    // ================================================================ optimiser
    public void GlobalNorm(int n)
    {
        var g = Rand(n, 150); var norm = NaNs(1);
        Both((be, s) => be.GlobalNorm(s.V(norm), s.V(g)));
        Close(norm, 0, 1e-6, "norm");
    }

    public void AdamWWithFrozenSegment(float maxNorm, int step)
    {
        const int n = 200;
        AdamSegment[] segs =
        [
            new(0, 50, 1f, 0.01f),
            new(50, 40, 0f, 0.01f),   // frozen: param, m and v must be bit-identical after the step
            new(90, 37, 0.5f, 0f),
            new(127, 63, 1f, 0.1f),   // [190, 200) belongs to no segment: untouched too
        ];
        var segP = Of(segs);
        var param = Rand(n, 160); var grad = Rand(n, 161); var m = Rand(n, 162, -0.1f, 0.1f); var v = Rand(n, 163, 0f, 0.01f);
        var norm = Of(new[] { 3.7f });
        float[] p0 = Host(param.C), m0 = Host(m.C), v0 = Host(v.C);
        Both((be, s) => be.AdamW(s.V(param), s.V(grad), s.V(m), s.V(v), s.V(segP), s.V(norm), maxNorm, 1e-3f, 0.9f, 0.999f, 1e-8f, step));
        Close(param, 1e-7, 1e-5, "param");
        Close(m, 1e-8, 1e-5, "m");
        Close(v, 1e-9, 1e-5, "v");
        float[] p1 = Host(param.C), m1 = Host(m.C), v1 = Host(v.C);
        foreach (var (lo, hi) in new[] { (50, 90), (190, 200) })
            for (int i = lo; i < hi; i++)
            {
                _report.Check(BitConverter.SingleToInt32Bits(p1[i]) == BitConverter.SingleToInt32Bits(p0[i]), $"param[{i}] untouched");
                _report.Check(BitConverter.SingleToInt32Bits(m1[i]) == BitConverter.SingleToInt32Bits(m0[i]), $"m[{i}] untouched");
                _report.Check(BitConverter.SingleToInt32Bits(v1[i]) == BitConverter.SingleToInt32Bits(v0[i]), $"v[{i}] untouched");
            }
        _report.Check(p1[0] != p0[0], "a live segment moved");
    }
}
