// One test body per IBackend op, run on every candidate backend (Backends.cs) and compared against ReferenceBackend.
using FastRec.Kernels;

namespace FastRec.Tests.Kernels;

/// <summary>
/// Parity of each candidate backend with the Reference (double-precision) backend on fresh random data, ragged sizes,
/// NaN-poisoned outputs (an element the kernel forgets to write fails), pre-filled parameter gradients (+= semantics),
/// optional arguments, aliasing the contract allows, and bad inputs.
/// <para>Tolerances (float kernels vs the double reference): products summed over K terms of magnitude ≤ 1 get
/// atol = 2e-6·K (float accumulation error grows ~K·2⁻²⁴), rtol 1e-5; pointwise transcendental ops rtol 1e-6;
/// each test states its own.</para>
/// </summary>
[TestFixtureSource(typeof(Backends), nameof(Backends.Fixtures))]
public sealed class BackendParityTests(string name)
{
    private IBackend _c = null!; // the candidate
    private IBackend _r = null!; // the reference
    private static readonly int[] Ragged = [1, 7, 33, 127];

    [OneTimeSetUp]
    public void CreateBackends()
    {
        _r = Backends.CreateReference();
        try { _c = Backends.Create(name); }
        catch (Exception e) { Assert.Ignore($"backend '{name}' is not available here: {e.GetType().Name}: {e.Message}"); }
    }

    [OneTimeTearDown]
    public void DisposeBackends()
    {
        _c?.Dispose();
        _r?.Dispose();
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

    private Pair<T> Of<T>(T[] data) where T : unmanaged => new(TestUtil.Upload(_c, data), TestUtil.Upload(_r, data));
    private Pair<float> Rand(int n, ulong seed, float lo = -1f, float hi = 1f) => Of(TestUtil.Random(n, seed, lo, hi));
    private Pair<float> NaNs(int n) => new(TestUtil.Poisoned(_c, n), TestUtil.Poisoned(_r, n));

    /// <summary>|cand − ref| ≤ atol + rtol·|ref| elementwise; NaN on both sides (poison both left untouched) counts as equal.</summary>
    private void Close(Pair<float> p, double atol, double rtol, string what)
    {
        float[] a = TestUtil.Download(_c, p.C.All), e = TestUtil.Download(_r, p.R.All);
        int worst = -1; double worstExcess = 0;
        for (int i = 0; i < a.Length; i++)
        {
            if (float.IsNaN(a[i]) && float.IsNaN(e[i])) continue;
            double diff = Math.Abs((double)a[i] - e[i]);
            double excess = double.IsNaN(diff) ? double.PositiveInfinity : diff - (atol + rtol * Math.Abs((double)e[i]));
            if (excess > 0 && (worst < 0 || excess > worstExcess)) { worst = i; worstExcess = excess; }
        }
        if (worst >= 0)
            Assert.Fail($"{what}: element {worst} of {a.Length}: {name} gave {a[worst]:R}, reference {e[worst]:R} (atol {atol}, rtol {rtol})");
    }

    private float[] Host(DeviceBuffer<float> b) => TestUtil.Download(b.Owner, b.All);

    // ================================================================ GEMM
    private static IEnumerable<TestCaseData> GemmCases()
    {
        (int M, int N, int K, int batch, int pad)[] shapes = [(1, 1, 1, 1, 0), (7, 33, 5, 1, 3), (33, 7, 127, 2, 0), (127, 33, 7, 3, 5)];
        foreach (var s in shapes)
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    foreach (bool acc in new[] { false, true })
                        yield return new TestCaseData(ta, tb, s.M, s.N, s.K, s.batch, s.pad, acc);
    }

    [TestCaseSource(nameof(GemmCases))]
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

    [Test]
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

    [Test]
    public void LinearForward([Range(0, 3)] int shape, [Values] bool bias)
    {
        var (N, IC, OC) = LinearShapes[shape];
        var x = Rand(N * IC, 10); var w = Rand(OC * IC, 11); var bb = Rand(OC, 12); var o = NaNs(N * OC);
        Both((be, s) => be.LinearForward(s.V(o), s.V(x), s.V(w), bias ? s.V(bb) : View<float>.None, N, IC, OC));
        Close(o, 2e-6 * IC, 1e-5, "output");
    }

    [Test]
    public void LinearBackward([Range(0, 3)] int shape, [Values] bool dInput, [Values] bool dWeight, [Values] bool dBias)
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
    [Test]
    public void ActivationForward([Values] Activation act, [Values(1, 7, 33, 127, 1000)] int n)
    {
        var x = Rand(n, 30, -6f, 6f); var y = NaNs(n);
        Both((be, s) => be.ActivationForward(act, s.V(y), s.V(x)));
        Close(y, 5e-7, 1e-6, $"{act} output");
    }

    [Test]
    public void ActivationBackward([Values] Activation act, [Values(1, 7, 33, 127, 1000)] int n)
    {
        var x = Rand(n, 31, -6f, 6f); var dy = Rand(n, 32); var dx = NaNs(n);
        Both((be, s) => be.ActivationBackward(act, s.V(dx), s.V(dy), s.V(x)));
        Close(dx, 5e-7, 1e-6, $"{act} dInput");
    }

    // ================================================================ residual + LayerNorm
    [Test]
    public void AddLayerNormForward([Values(1, 7, 33)] int N, [Values(1, 7, 33, 127)] int C, [Values] bool withB,
        [Values(1e-5f, 1e-12f)] float eps)
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

    [Test]
    public void AddLayerNormForwardSumMayAliasA()
    {
        const int N = 7, C = 33;
        var a = Rand(N * C, 44); var b = Rand(N * C, 45); var g = Rand(C, 46); var be0 = Rand(C, 47);
        var o = NaNs(N * C); var mu = NaNs(N); var rs = NaNs(N);
        Both((be, s) => be.AddLayerNormForward(s.V(o), s.V(a), s.V(mu), s.V(rs), s.V(a), s.V(b), s.V(g), s.V(be0), N, C, 1e-12f));
        Close(a, 0, 1e-7, "sum (in a)");
        Close(o, 1e-5, 1e-5, "output");
    }

    [Test]
    public void AddLayerNormBackward([Values(1, 7, 33)] int N, [Values(1, 7, 33, 127)] int C, [Values] bool dGamma, [Values] bool dBeta)
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
    private static readonly (int B, int T, int C)[] EmbShapes = [(1, 1, 1), (2, 7, 33), (3, 5, 8)];
    private const int Vocab = 11, TypeVocab = 2;

    private Pair<int> Ids(int n, int rows, ulong seed)
    {
        var ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = (int)(Rng.Hash(seed, (ulong)i) % (ulong)rows);
        return Of(ids);
    }

    [Test]
    public void EmbeddingForward([Range(0, 2)] int shape, [Values] bool withTypes)
    {
        var (B, T, C) = EmbShapes[shape];
        var ids = Ids(B * T, Vocab, 60); var types = Ids(B * T, TypeVocab, 61);
        var w = Rand(Vocab * C, 62); var p = Rand((T + 2) * C, 63); var ty = Rand(TypeVocab * C, 64); var o = NaNs(B * T * C);
        Both((be, s) => be.EmbeddingForward(s.V(o), s.V(ids), withTypes ? s.V(types) : View<int>.None, s.V(w), s.V(p), s.V(ty), B, T, C));
        Close(o, 1e-7, 1e-7, "output");
    }

    [Test]
    public void EmbeddingBackward([Range(0, 2)] int shape, [Values] bool withTypes, [Values] bool dWord, [Values] bool dPos, [Values] bool dType)
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

    [Test]
    public void EmbeddingIdOutOfRangeNamesIdPositionAndTableSize()
    {
        const int B = 2, T = 3, C = 4;
        var idsHost = new int[B * T];
        idsHost[1 * T + 2] = Vocab; // (b=1, t=2) one past the end
        var ids = TestUtil.Upload(_c, idsHost);
        var w = TestUtil.Upload(_c, TestUtil.Random(Vocab * C, 71)); var p = TestUtil.Upload(_c, TestUtil.Random(T * C, 72));
        var ty = TestUtil.Upload(_c, TestUtil.Random(TypeVocab * C, 73)); var o = TestUtil.Poisoned(_c, B * T * C);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            _c.EmbeddingForward(o.All, ids.All, View<int>.None, w.All, p.All, ty.All, B, T, C));
        Assert.That(ex!.Message, Does.Contain($"id {Vocab}").And.Contain("b=1").And.Contain("t=2").And.Contain($"{Vocab} rows"));
        var types = TestUtil.Upload(_c, new int[B * T]);
        idsHost[1 * T + 2] = -1;
        var ids2 = TestUtil.Upload(_c, idsHost);
        ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            _c.EmbeddingBackward(o.All, View<float>.None, View<float>.None, o.All.Slice(0, B * T * C), ids2.All, types.All, B, T, C));
        Assert.That(ex!.Message, Does.Contain("id -1"));
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

    [Test]
    public void SoftmaxForward([Range(0, 2)] int shape, [Values] bool masked, [Values] bool inPlace)
    {
        var (B, NH, T) = SoftmaxShapes[shape];
        int n = B * NH * T * T;
        var sc = Rand(n, 80, -5f, 5f); var mask = Of(PaddingMask(B, T));
        var p = inPlace ? sc : NaNs(n);
        Both((be, s) => be.SoftmaxForward(s.V(p), s.V(sc), masked ? s.V(mask) : View<float>.None, B, NH, T, 0.3f));
        Close(p, 1e-7, 1e-5, "probs");
    }

    [Test]
    public void SoftmaxBackward([Range(0, 2)] int shape, [Values] bool inPlace)
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

    [Test]
    public void AttentionForwardBackward([Range(0, 2)] int shape, [Values] bool masked, [Values(0f, 0.2f)] float p)
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
    [Test]
    public void Dropout([Values(1, 33, 1000)] int n, [Values(0f, 0.1f, 0.5f)] float p, [Values] bool inPlace)
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
    [Test]
    public void Copy2D([Values(1, 7)] int rows, [Values(1, 33)] int cols, [Values] bool accumulate)
    {
        int ldD = cols + 5, ldS = cols + 3;
        var dst = Rand((rows - 1) * ldD + 2 + cols + 4, 110); var src = Rand((rows - 1) * ldS + 1 + cols, 111);
        Both((be, s) => be.Copy2D(s.V(dst), ldD, 2, s.V(src), ldS, 1, rows, cols, accumulate));
        Close(dst, 0, 1e-7, "dst (untouched elements compared too)");
    }

    // ================================================================ pooler
    private static readonly (int B, int T, int C)[] PoolerShapes = [(1, 1, 1), (3, 5, 7), (2, 4, 33)];

    [Test]
    public void PoolerForward([Range(0, 2)] int shape, [Values] bool bias)
    {
        var (B, T, C) = PoolerShapes[shape];
        var h = Rand(B * T * C, 120); var w = Rand(C * C, 121); var bb = Rand(C, 122); var o = NaNs(B * C);
        Both((be, s) => be.PoolerForward(s.V(o), s.V(h), s.V(w), bias ? s.V(bb) : View<float>.None, B, T, C));
        Close(o, 2e-6 * C, 1e-5, "pooled");
    }

    [Test]
    public void PoolerBackward([Range(0, 2)] int shape, [Values] bool dHidden, [Values] bool dWeight, [Values] bool dBias)
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
    [Test]
    public void BceForwardBackward([Values(1, 7, 127)] int N, [Values] bool weighted, [Values(1f, 2.5f)] float temperature,
        [Values(1f, 0.7f)] float scale, [Values] bool accumulate)
    {
        float[] z = TestUtil.Random(N, 140, -3f, 3f);
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
        Assert.That(float.IsFinite(Host(loss.C)[0]), Is.True, "loss finite at |z| = 100");
    }

    [Test]
    public void BceLossOnlyWhenGradientIsNone()
    {
        const int N = 33;
        var logits = Rand(N, 144, -4f, 4f); var targets = Rand(N, 145, 0f, 1f); var loss = NaNs(1);
        Both((be, s) => be.BceForwardBackward(s.V(loss), View<float>.None, s.V(logits), s.V(targets), View<float>.None, N));
        Close(loss, 1e-7, 1e-6, "loss");
    }

    // ================================================================ optimiser
    [Test]
    public void GlobalNorm([Values(1, 7, 33, 127, 100003)] int n)
    {
        var g = Rand(n, 150); var norm = NaNs(1);
        Both((be, s) => be.GlobalNorm(s.V(norm), s.V(g)));
        Close(norm, 0, 1e-6, "norm");
    }

    [Test]
    public void AdamWWithFrozenSegment([Values(0f, 1f)] float maxNorm, [Values(1, 7)] int step)
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
                Assert.That(BitConverter.SingleToInt32Bits(p1[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(p0[i])), $"param[{i}] untouched");
                Assert.That(BitConverter.SingleToInt32Bits(m1[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(m0[i])), $"m[{i}] untouched");
                Assert.That(BitConverter.SingleToInt32Bits(v1[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(v0[i])), $"v[{i}] untouched");
            }
        Assert.That(p1[0], Is.Not.EqualTo(p0[0]), "a live segment moved");
    }

    // ================================================================ bad inputs (candidate only; the message names the argument)
    private static void ThrowsShape(TestDelegate call, string argument)
    {
        var ex = Assert.Throws<ShapeException>(call);
        Assert.That(ex!.Message, Does.StartWith(argument + ":"), "the message names the argument");
    }

    private View<float> F(int n) => _c.Allocate<float>(n).All;

    [Test]
    public void BadInputsGemmAndLinear()
    {
        ThrowsShape(() => _c.Gemm(false, false, 3, 4, 5, 1f, F(15), 0, F(20), 0, false, F(11), 0), "c");
        ThrowsShape(() => _c.Gemm(false, false, 3, 4, 5, 1f, F(15), 4, F(20), 0, false, F(12), 0), "lda");
        ThrowsShape(() => _c.Gemm(false, true, 3, 4, 5, 1f, F(15), 0, F(19), 0, false, F(12), 0), "b");
        Assert.That(() => _c.Gemm(false, false, 0, 4, 5, 1f, F(15), 0, F(20), 0, false, F(12), 0),
            Throws.TypeOf<ShapeException>().With.Message.Contains("positive"));
        ThrowsShape(() => _c.LinearForward(F(4), F(6), F(5), View<float>.None, 2, 3, 2), "weight");
        ThrowsShape(() => _c.LinearForward(F(4), F(6), F(6), F(3), 2, 3, 2), "bias");
        ThrowsShape(() => _c.LinearBackward(F(6), F(6), F(3), F(4), F(6), F(6), 2, 3, 2), "dBias");
        ThrowsShape(() => _c.LinearBackward(F(6), F(6), F(2), F(5), F(6), F(6), 2, 3, 2), "dOutput");
    }

    [Test]
    public void BadInputsElementwise()
    {
        ThrowsShape(() => _c.ActivationForward(Activation.Gelu, F(6), F(7)), "output");
        ThrowsShape(() => _c.ActivationBackward(Activation.Relu, F(7), F(6), F(7)), "dOutput");
        ThrowsShape(() => _c.DropoutForward(F(6), F(7), new DropoutSpec(0.1f, 1, 0)), "output");
        ThrowsShape(() => _c.DropoutBackward(F(6), F(7), new DropoutSpec(0.1f, 1, 0)), "dInput");
        Assert.That(() => _c.DropoutForward(F(7), F(7), new DropoutSpec(1f, 1, 0)),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("dropout"));
        ThrowsShape(() => _c.Copy2D(F(20), 5, 3, F(20), 5, 0, 2, 3, false), "dstCol");
        ThrowsShape(() => _c.Copy2D(F(20), 5, 0, F(7), 5, 0, 2, 3, false), "src");
    }

    [Test]
    public void BadInputsLayerNormEmbeddingSoftmaxAttention()
    {
        ThrowsShape(() => _c.AddLayerNormForward(F(6), F(6), F(2), F(2), F(6), View<float>.None, F(4), F(3), 2, 3, 1e-5f), "gamma");
        ThrowsShape(() => _c.AddLayerNormForward(F(6), F(6), F(3), F(2), F(6), View<float>.None, F(3), F(3), 2, 3, 1e-5f), "mean");
        ThrowsShape(() => _c.AddLayerNormBackward(F(6), F(3), F(3), F(6), F(5), F(3), F(2), F(2), 2, 3), "sum");
        var ids = _c.Allocate<int>(6).All;
        ThrowsShape(() => _c.EmbeddingForward(F(24), _c.Allocate<int>(5).All, View<int>.None, F(40), F(12), F(8), 2, 3, 4), "ids");
        ThrowsShape(() => _c.EmbeddingForward(F(24), ids, View<int>.None, F(41), F(12), F(8), 2, 3, 4), "wordEmb");
        ThrowsShape(() => _c.EmbeddingForward(F(24), ids, View<int>.None, F(40), F(8), F(8), 2, 3, 4), "posEmb");
        ThrowsShape(() => _c.EmbeddingBackward(F(40), View<float>.None, View<float>.None, F(23), ids, View<int>.None, 2, 3, 4), "dOutput");
        ThrowsShape(() => _c.SoftmaxForward(F(18), F(18), F(5), 2, 1, 3, 1f), "mask");
        ThrowsShape(() => _c.SoftmaxBackward(F(18), F(17), F(18), 2, 1, 3, 1f), "dProbs");
        const int B = 2, T = 3, C = 4, NH = 2;
        int ws = (int)Check.AttentionWorkspace(B, T, C, NH);
        ThrowsShape(() => _c.AttentionForward(F(B * T * C), F(3 * B * T * C), F(B * NH * T * T), F(ws - 1), F(3 * B * T * C),
            View<float>.None, B, T, C, NH, DropoutSpec.Off), "workspace");
        ThrowsShape(() => _c.AttentionBackward(F(3 * B * T * C), F(B * T * C), F(3 * B * T * C), F(B * NH * T * T - 1), F(ws),
            View<float>.None, B, T, C, NH, DropoutSpec.Off), "probs");
        Assert.That(() => _c.AttentionForward(F(B * T * 5), F(3 * B * T * 5), F(B * NH * T * T), F(ws * 2), F(3 * B * T * 5),
            View<float>.None, B, T, 5, NH, DropoutSpec.Off), Throws.TypeOf<ShapeException>().With.Message.Contains("NH"));
    }

    [Test]
    public void BadInputsPoolerLossOptimiser()
    {
        ThrowsShape(() => _c.PoolerForward(F(8), F(24), F(15), View<float>.None, 2, 3, 4), "weight");
        ThrowsShape(() => _c.PoolerBackward(F(24), F(16), F(4), F(8), F(8), F(24), F(16), F(7), 2, 3, 4), "workspace");
        ThrowsShape(() => _c.BceForwardBackward(F(1), F(5), F(5), F(4), View<float>.None, 5), "targets");
        ThrowsShape(() => _c.BceForwardBackward(F(2), F(5), F(5), F(5), View<float>.None, 5), "loss");
        ThrowsShape(() => _c.GlobalNorm(F(2), F(5)), "norm");
        var segs = _c.Allocate<AdamSegment>(2);
        _c.Upload(segs.All, [new AdamSegment(0, 5, 1f, 0f), new AdamSegment(5, 6, 1f, 0f)]);
        ThrowsShape(() => _c.AdamW(F(10), F(10), F(9), F(10), segs.All, F(1), 1f, 1e-3f, 0.9f, 0.999f, 1e-8f, 1), "m");
        Assert.That(() => _c.AdamW(F(10), F(10), F(10), F(10), segs.All, F(1), 1f, 1e-3f, 0.9f, 0.999f, 1e-8f, 1),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("segments[1]"));
        Assert.That(() => _c.AdamW(F(11), F(11), F(11), F(11), segs.All, F(1), 1f, 1e-3f, 0.9f, 0.999f, 1e-8f, 0),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("step"));
    }

    [Test]
    public void ForeignBufferIsRefusedNamingTheArgument()
    {
        var mine = _c.Allocate<float>(4);
        var foreign = _r.Allocate<float>(4);
        var ex = Assert.Throws<ArgumentException>(() => _c.ActivationForward(Activation.Relu, mine.All, foreign.All));
        Assert.That(ex!.Message, Does.Contain("input"), "the message names the argument");
    }
}
