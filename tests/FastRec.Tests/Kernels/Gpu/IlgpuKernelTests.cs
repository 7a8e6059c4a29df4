// Every ILGPU kernel on ILGPU's CPU accelerator against the Reference backend, on tiny ragged shapes.
using FastRec.Kernels;
using FastRec.Kernels.Gpu;
using FastRec.Kernels.Reference;
using FastRec.Tests.Kernels;

namespace FastRec.Tests.Kernels.Gpu;

/// <summary>
/// The ILGPU backend (<see cref="IlgpuBackend.CreateCpuAccelerator"/>: the same kernels CUDA runs, each GPU thread a CPU
/// thread) against <see cref="ReferenceBackend"/> (double precision). Outputs are NaN-poisoned so an unwritten element
/// fails; parameter gradients start non-zero so += is checked. Shapes are tiny: barriers are slow on the CPU accelerator.
/// Tolerances: float sums of K terms of magnitude ≤ 1 get atol 2e-6·K, rtol 1e-5; pointwise transcendentals 2e-6.
/// </summary>
[NonParallelizable]
public sealed class IlgpuKernelTests
{
    private IlgpuBackend _g = null!;
    private ReferenceBackend _r = null!;

    [OneTimeSetUp]
    public void Create()
    {
        _g = IlgpuBackend.CreateCpuAccelerator();
        _r = new ReferenceBackend();
        GpuPaths();
    }

    /// <summary>The code paths a GPU takes: tiled GEMM at every size, warp-shuffle row reductions.</summary>
    private void GpuPaths()
    {
        _g.SmallGemmMaxOutputs = 0;
        _g.RowWidth = _g.Accelerator.WarpSize;
    }

    [TearDown]
    public void RestoreGpuPaths() => GpuPaths();

    [OneTimeTearDown]
    public void Dispose()
    {
        _g?.Dispose();
        _r?.Dispose();
    }

    // ---------------------------------------------------------------- helpers: the same tensor on both backends
    private sealed record Pair(DeviceBuffer<float> G, DeviceBuffer<float> R);

    private Pair Of(float[] data) => new(TestUtil.Upload(_g, data), TestUtil.Upload(_r, data));
    private Pair Rand(int n, ulong seed, float lo = -1f, float hi = 1f) => Of(TestUtil.Random(n, seed, lo, hi));
    private Pair NaNs(int n) => new(TestUtil.Poisoned(_g, n), TestUtil.Poisoned(_r, n));
    private static View<float> G(Pair? p) => p is null ? View<float>.None : p.G.All;
    private static View<float> R(Pair? p) => p is null ? View<float>.None : p.R.All;

    private void Close(Pair p, double atol, double rtol, string what)
    {
        var a = TestUtil.Download(_g, p.G.All);
        var e = TestUtil.Download(_r, p.R.All);
        TestUtil.AssertClose(a, e, (float)atol, (float)rtol, what);
    }

    // ---------------------------------------------------------------- GEMM
    [TestCase(false, false, 1, 1, 1, 1)]
    [TestCase(false, false, 33, 17, 9, 1)]
    [TestCase(true, false, 7, 65, 20, 2)]
    [TestCase(false, true, 70, 5, 33, 1)]
    [TestCase(true, true, 13, 66, 17, 3)]
    public void GemmMatchesReference(bool transA, bool transB, int M, int N, int K, int batch)
    {
        foreach (bool accumulate in new[] { false, true })
        {
            int lda = (transA ? M : K) + 2, ldb = (transB ? K : N) + 1, ldc = N + 3;
            long sA = (long)(transA ? K : M) * lda + 5, sB = (long)(transB ? N : K) * ldb, sC = (long)M * ldc + 1;
            var a = Rand((int)(sA * batch), 1);
            var b = Rand((int)(sB * batch), 2);
            var c = Rand((int)(sC * batch), 3);
            _g.Gemm(transA, transB, M, N, K, 0.75f, a.G.All, lda, b.G.All, ldb, accumulate, c.G.All, ldc, batch, sA, sB, sC);
            _r.Gemm(transA, transB, M, N, K, 0.75f, a.R.All, lda, b.R.All, ldb, accumulate, c.R.All, ldc, batch, sA, sB, sC);
            Close(c, 2e-6 * K, 1e-5, $"C (accumulate {accumulate})");
        }
    }

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void Gemm128TilesMatchReference(bool transA, bool transB)
    {
        _g.GemmTile = 128;
        try
        {
            GemmMatchesReference(transA, transB, 130, 129, 20, transA && transB ? 2 : 1);   // ragged: a second, 2-row / 1-column tile
        }
        finally
        {
            _g.GemmTile = 0;
        }
    }

    [Test]
    public void GemmPackedLeadingDimensionsAndPoisonedOutput()
    {
        const int M = 9, N = 70, K = 5;
        var a = Rand(M * K, 4);
        var b = Rand(K * N, 5);
        var c = NaNs(M * N);
        _g.Gemm(false, false, M, N, K, 1f, a.G.All, 0, b.G.All, 0, false, c.G.All, 0);
        _r.Gemm(false, false, M, N, K, 1f, a.R.All, 0, b.R.All, 0, false, c.R.All, 0);
        Close(c, 2e-6 * K, 1e-5, "C");
    }

    [Test]
    public void CpuAcceleratorFastPathsMatchReference()
    {
        // the one-thread-per-output GEMM and one-thread-per-row reductions the CPU accelerator (and small GPU GEMMs) use
        _g.SmallGemmMaxOutputs = long.MaxValue;
        _g.RowWidth = 1;
        GemmMatchesReference(true, true, 13, 66, 17, 3);
        GemmMatchesReference(false, false, 33, 17, 9, 1);
        AddLayerNormForwardAndBackward(9, 33, true);
        AddLayerNormForwardAndBackward(130, 7, false);   // three 64-row chunks in the parameter-gradient sums
        SoftmaxForwardAndBackward(3, 2, 7, true);
        AttentionForwardAndBackward(2, 9, 8, 2, 0.2f, true);
    }

    // ---------------------------------------------------------------- linear
    [TestCase(1, 1, 1)]
    [TestCase(7, 33, 5)]
    [TestCase(65, 9, 17)]
    public void LinearForwardAndBackward(int N, int IC, int OC)
    {
        var x = Rand(N * IC, 10);
        var w = Rand(OC * IC, 11);
        var bias = Rand(OC, 12);
        var y = NaNs(N * OC);
        _g.LinearForward(y.G.All, x.G.All, w.G.All, bias.G.All, N, IC, OC);
        _r.LinearForward(y.R.All, x.R.All, w.R.All, bias.R.All, N, IC, OC);
        Close(y, 2e-6 * IC, 1e-5, "out");

        var dy = Rand(N * OC, 13);
        var dx = NaNs(N * IC);
        var dw = Rand(OC * IC, 14);
        var db = Rand(OC, 15);
        _g.LinearBackward(dx.G.All, dw.G.All, db.G.All, dy.G.All, x.G.All, w.G.All, N, IC, OC);
        _r.LinearBackward(dx.R.All, dw.R.All, db.R.All, dy.R.All, x.R.All, w.R.All, N, IC, OC);
        Close(dx, 2e-6 * OC, 1e-5, "dInput");
        Close(dw, 2e-6 * N, 1e-5, "dWeight (+=)");
        Close(db, 2e-6 * N, 1e-5, "dBias (+=)");
    }

    [Test]
    public void LinearBackwardSkipsFrozenGradients()
    {
        const int N = 5, IC = 3, OC = 4;
        var x = Rand(N * IC, 16);
        var w = Rand(OC * IC, 17);
        var dy = Rand(N * OC, 18);
        var dw = Rand(OC * IC, 19);
        var before = TestUtil.Download(_g, dw.G.All);
        _g.LinearBackward(View<float>.None, View<float>.None, View<float>.None, dy.G.All, x.G.All, w.G.All, N, IC, OC);
        Assert.That(TestUtil.Download(_g, dw.G.All), Is.EqualTo(before));
        _g.LinearBackward(View<float>.None, dw.G.All, View<float>.None, dy.G.All, x.G.All, w.G.All, N, IC, OC);
        _r.LinearBackward(View<float>.None, dw.R.All, View<float>.None, dy.R.All, x.R.All, w.R.All, N, IC, OC);
        Close(dw, 2e-6 * N, 1e-5, "dWeight");
    }

    // ---------------------------------------------------------------- activations
    [Test]
    public void Activations([Values] Activation act)
    {
        const int n = 300;
        var x = Rand(n, 20, -6f, 6f);
        var y = NaNs(n);
        _g.ActivationForward(act, y.G.All, x.G.All);
        _r.ActivationForward(act, y.R.All, x.R.All);
        Close(y, 2e-6, 2e-6, $"{act} forward");
        var dy = Rand(n, 21);
        var dx = NaNs(n);
        _g.ActivationBackward(act, dx.G.All, dy.G.All, x.G.All);
        _r.ActivationBackward(act, dx.R.All, dy.R.All, x.R.All);
        Close(dx, 2e-6, 2e-6, $"{act} backward");
    }

    [Test]
    public void GeluKeepsRelativeAccuracyInTheLeftTail()
    {
        // x·Φ(x) from erfc: no 1 + erf cancellation, so tiny negative outputs keep their digits
        const int n = 64;
        var x = Rand(n, 23, -9f, -3f);
        var y = NaNs(n);
        _g.ActivationForward(Activation.Gelu, y.G.All, x.G.All);
        _r.ActivationForward(Activation.Gelu, y.R.All, x.R.All);
        Close(y, 0, 1e-5, "GELU(x < -3)");
        var dy = Rand(n, 24);
        var dx = NaNs(n);
        _g.ActivationBackward(Activation.Gelu, dx.G.All, dy.G.All, x.G.All);
        _r.ActivationBackward(Activation.Gelu, dx.R.All, dy.R.All, x.R.All);
        Close(dx, 0, 1e-5, "GELU'(x < -3)");
    }

    [Test]
    public void TanhSaturatesWithoutNaN()
    {
        var x = Of([-1000f, -50f, -20f, 0f, 1e-8f, 20f, 50f, 1000f]);
        var y = NaNs(8);
        _g.ActivationForward(Activation.Tanh, y.G.All, x.G.All);
        var got = TestUtil.Download(_g, y.G.All);
        Assert.That(got, Is.EqualTo(new[] { -1f, -1f, -1f, 0f, 1e-8f, 1f, 1f, 1f }).Within(1e-7f));
    }

    // ---------------------------------------------------------------- LayerNorm
    [TestCase(1, 1, true)]
    [TestCase(9, 33, true)]
    [TestCase(40, 7, false)]
    [TestCase(3, 100, true)]
    public void AddLayerNormForwardAndBackward(int N, int C, bool withB)
    {
        var a = Rand(N * C, 30, -2f, 2f);
        var b = withB ? Rand(N * C, 31) : null;
        var gamma = Rand(C, 32, 0.5f, 1.5f);
        var beta = Rand(C, 33);
        Pair y = NaNs(N * C), sum = NaNs(N * C), mean = NaNs(N), rstd = NaNs(N);
        _g.AddLayerNormForward(y.G.All, sum.G.All, mean.G.All, rstd.G.All, a.G.All, G(b), gamma.G.All, beta.G.All, N, C, 1e-5f);
        _r.AddLayerNormForward(y.R.All, sum.R.All, mean.R.All, rstd.R.All, a.R.All, R(b), gamma.R.All, beta.R.All, N, C, 1e-5f);
        Close(sum, 1e-6, 1e-6, "sum");
        Close(mean, 2e-6, 1e-5, "mean");
        Close(rstd, 1e-5, 1e-4, "rstd");
        Close(y, 1e-5, 1e-4, "out");

        var dy = Rand(N * C, 34);
        var dx = NaNs(N * C);
        var dg = Rand(C, 35);
        var dbeta = Rand(C, 36);
        _g.AddLayerNormBackward(dx.G.All, dg.G.All, dbeta.G.All, dy.G.All, sum.G.All, gamma.G.All, mean.G.All, rstd.G.All, N, C);
        _r.AddLayerNormBackward(dx.R.All, dg.R.All, dbeta.R.All, dy.R.All, sum.R.All, gamma.R.All, mean.R.All, rstd.R.All, N, C);
        Close(dx, 2e-5 * Math.Max(1, Math.Sqrt(C)), 1e-4, "dx");
        Close(dg, 4e-6 * N, 1e-4, "dGamma (+=)");
        Close(dbeta, 2e-6 * N, 1e-5, "dBeta (+=)");
    }

    [Test]
    public void AddLayerNormSumMayAliasA()
    {
        const int N = 3, C = 40;
        var a = Rand(N * C, 37);
        var b = Rand(N * C, 38);
        var gamma = Rand(C, 39);
        var beta = Rand(C, 40);
        Pair y = NaNs(N * C), mean = NaNs(N), rstd = NaNs(N);
        _g.AddLayerNormForward(y.G.All, a.G.All, mean.G.All, rstd.G.All, a.G.All, b.G.All, gamma.G.All, beta.G.All, N, C, 1e-12f);
        _r.AddLayerNormForward(y.R.All, a.R.All, mean.R.All, rstd.R.All, a.R.All, b.R.All, gamma.R.All, beta.R.All, N, C, 1e-12f);
        Close(a, 1e-6, 1e-6, "sum (aliasing a)");
        Close(y, 1e-5, 1e-4, "out");
    }

    // ---------------------------------------------------------------- embeddings
    [TestCase(1, 1, 1, true)]
    [TestCase(2, 5, 3, false)]
    [TestCase(3, 50, 4, true)]   // 150 tokens: several 64-token chunks, repeated ids across chunks
    public void EmbeddingForwardAndBackward(int B, int T, int C, bool withTypes)
    {
        const int V = 11, TV = 2, P = 64;
        var ids = new int[B * T];
        var types = new int[B * T];
        for (int i = 0; i < ids.Length; i++) { ids[i] = (int)(Rng.Hash(50, (ulong)i) % 4) == 0 ? 0 : (int)(Rng.Hash(51, (ulong)i) % V); types[i] = i % 3 == 0 ? 1 : 0; }
        var idG = TestUtil.Upload(_g, ids); var idR = TestUtil.Upload(_r, ids);
        var tyG = TestUtil.Upload(_g, types); var tyR = TestUtil.Upload(_r, types);
        View<int> tg = withTypes ? tyG.All : View<int>.None, tr = withTypes ? tyR.All : View<int>.None;
        var word = Rand(V * C, 52);
        var pos = Rand(P * C, 53);
        var type = Rand(TV * C, 54);
        var y = NaNs(B * T * C);
        _g.EmbeddingForward(y.G.All, idG.All, tg, word.G.All, pos.G.All, type.G.All, B, T, C);
        _r.EmbeddingForward(y.R.All, idR.All, tr, word.R.All, pos.R.All, type.R.All, B, T, C);
        Close(y, 1e-6, 1e-6, "out");

        var dy = Rand(B * T * C, 55);
        var dw = Rand(V * C, 56);
        var dp = Rand(P * C, 57);
        var dt = Rand(TV * C, 58);
        _g.EmbeddingBackward(dw.G.All, dp.G.All, dt.G.All, dy.G.All, idG.All, tg, B, T, C);
        _r.EmbeddingBackward(dw.R.All, dp.R.All, dt.R.All, dy.R.All, idR.All, tr, B, T, C);
        Close(dw, 2e-6 * B * T, 1e-5, "dWordEmb (+=)");
        Close(dp, 2e-6 * B, 1e-5, "dPosEmb (+=)");
        Close(dt, 2e-6 * B * T, 1e-5, "dTypeEmb (+=)");
    }

    [Test]
    public void EmbeddingBackwardIsBitwiseDeterministic()
    {
        const int B = 2, T = 70, C = 3, V = 5;
        var ids = new int[B * T];
        for (int i = 0; i < ids.Length; i++) ids[i] = (int)(Rng.Hash(60, (ulong)i) % V);
        var idG = TestUtil.Upload(_g, ids);
        var dy = TestUtil.Upload(_g, TestUtil.Random(B * T * C, 61));
        float[] Run()
        {
            using var dw = _g.Allocate<float>(V * C);
            _g.EmbeddingBackward(dw.All, View<float>.None, View<float>.None, dy.All, idG.All, View<int>.None, B, T, C);
            return TestUtil.Download(_g, dw.All);
        }
        Assert.That(Run(), Is.EqualTo(Run()));
    }

    [Test]
    public void EmbeddingIdOutOfRangeNamesIdPositionAndTableSize()
    {
        const int B = 2, T = 3, C = 4, V = 5;
        var idsHost = new int[B * T];
        idsHost[1 * T + 2] = V;
        var ids = TestUtil.Upload(_g, idsHost);
        var w = TestUtil.Upload(_g, TestUtil.Random(V * C, 71));
        var p = TestUtil.Upload(_g, TestUtil.Random(T * C, 72));
        var ty = TestUtil.Upload(_g, TestUtil.Random(2 * C, 73));
        var o = TestUtil.Poisoned(_g, B * T * C);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            _g.EmbeddingForward(o.All, ids.All, View<int>.None, w.All, p.All, ty.All, B, T, C));
        Assert.That(ex!.Message, Does.Contain($"id {V}").And.Contain("b=1").And.Contain("t=2").And.Contain($"{V} rows"));
    }

    // ---------------------------------------------------------------- softmax
    private static float[] PaddingMask(int B, int T)
    {
        var m = new float[B * T];
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                m[b * T + t] = b == 0 ? 1f : b == 1 ? (t < T - T / 3 ? 1f : 0f) : 0f;
        return m;
    }

    [TestCase(1, 1, 1, false)]
    [TestCase(3, 2, 7, true)]
    [TestCase(2, 1, 33, true)]
    public void SoftmaxForwardAndBackward(int B, int NH, int T, bool masked)
    {
        int n = B * NH * T * T;
        var s = Rand(n, 80, -4f, 4f);
        var mask = masked ? Of(PaddingMask(B, T)) : null;
        var p = NaNs(n);
        _g.SoftmaxForward(p.G.All, s.G.All, G(mask), B, NH, T, 0.7f);
        _r.SoftmaxForward(p.R.All, s.R.All, R(mask), B, NH, T, 0.7f);
        Close(p, 1e-6, 1e-5, "probs");
        // in place (probs aliases scores)
        _g.SoftmaxForward(s.G.All, s.G.All, G(mask), B, NH, T, 0.7f);
        _r.SoftmaxForward(s.R.All, s.R.All, R(mask), B, NH, T, 0.7f);
        Close(s, 1e-6, 1e-5, "probs in place");

        var dp = Rand(n, 81);
        var ds = NaNs(n);
        _g.SoftmaxBackward(ds.G.All, dp.G.All, p.G.All, B, NH, T, 0.7f);
        _r.SoftmaxBackward(ds.R.All, dp.R.All, p.R.All, B, NH, T, 0.7f);
        Close(ds, 2e-6, 1e-5, "dScores");
        _g.SoftmaxBackward(dp.G.All, dp.G.All, p.G.All, B, NH, T, 0.7f);
        _r.SoftmaxBackward(dp.R.All, dp.R.All, p.R.All, B, NH, T, 0.7f);
        Close(dp, 2e-6, 1e-5, "dScores in place");
    }

    // ---------------------------------------------------------------- attention
    [TestCase(1, 1, 4, 1, 0f, false)]
    [TestCase(2, 5, 6, 2, 0f, true)]
    [TestCase(2, 9, 8, 2, 0.2f, true)]
    public void AttentionForwardAndBackward(int B, int T, int C, int NH, float p, bool masked)
    {
        var qkv = Rand(B * T * 3 * C, 90);
        var mask = masked ? Of(PaddingMask(B, T)) : null;
        var drop = p > 0 ? new DropoutSpec(p, 1234, 77) : DropoutSpec.Off;
        int ws = (int)Check.AttentionWorkspace(B, T, C, NH);
        Pair y = NaNs(B * T * C), perm = NaNs(3 * B * T * C), probs = NaNs(B * NH * T * T), work = NaNs(ws);
        _g.AttentionForward(y.G.All, perm.G.All, probs.G.All, work.G.All, qkv.G.All, G(mask), B, T, C, NH, drop);
        _r.AttentionForward(y.R.All, perm.R.All, probs.R.All, work.R.All, qkv.R.All, R(mask), B, T, C, NH, drop);
        Close(perm, 0, 0, "qkvPerm");
        Close(probs, 2e-6, 1e-5, "probs");
        Close(y, 2e-5, 1e-4, "out");

        var dy = Rand(B * T * C, 91);
        var dqkv = NaNs(B * T * 3 * C);
        _g.AttentionBackward(dqkv.G.All, dy.G.All, perm.G.All, probs.G.All, work.G.All, G(mask), B, T, C, NH, drop);
        _r.AttentionBackward(dqkv.R.All, dy.R.All, perm.R.All, probs.R.All, work.R.All, R(mask), B, T, C, NH, drop);
        Close(dqkv, 5e-5, 1e-4, "dQkv");
    }

    // ---------------------------------------------------------------- dropout
    [Test]
    public void DropoutUsesTheSharedCounterRng([Values(0f, 0.1f, 0.5f)] float p, [Values] bool inPlace)
    {
        const int n = 333;
        var x = Rand(n, 100);
        var y = inPlace ? x : NaNs(n);
        var d = new DropoutSpec(p, 99, 1000);
        _g.DropoutForward(y.G.All, x.G.All, d);
        _r.DropoutForward(y.R.All, x.R.All, d);
        Close(y, 0, 1e-6, "out");
        var dx = NaNs(n);
        _g.DropoutBackward(dx.G.All, y.G.All, d);
        _r.DropoutBackward(dx.R.All, y.R.All, d);
        Close(dx, 0, 1e-6, "dInput");
    }

    // ---------------------------------------------------------------- Copy2D
    [Test]
    public void Copy2DStridedColumns([Values] bool accumulate)
    {
        const int rows = 7, cols = 5, ldDst = 9, ldSrc = 12;
        var src = Rand(rows * ldSrc, 110);
        var dst = Rand(rows * ldDst, 111);
        _g.Copy2D(dst.G.All, ldDst, 3, src.G.All, ldSrc, 6, rows, cols, accumulate);
        _r.Copy2D(dst.R.All, ldDst, 3, src.R.All, ldSrc, 6, rows, cols, accumulate);
        Close(dst, 1e-7, 1e-7, "dst");
    }

    // ---------------------------------------------------------------- pooler
    [TestCase(1, 1, 1)]
    [TestCase(3, 4, 7)]
    [TestCase(2, 3, 70)]
    public void PoolerForwardAndBackward(int B, int T, int C)
    {
        var h = Rand(B * T * C, 120);
        var w = Rand(C * C, 121, -0.3f, 0.3f);
        var bias = Rand(C, 122);
        var pooled = NaNs(B * C);
        _g.PoolerForward(pooled.G.All, h.G.All, w.G.All, bias.G.All, B, T, C);
        _r.PoolerForward(pooled.R.All, h.R.All, w.R.All, bias.R.All, B, T, C);
        Close(pooled, 2e-6 * C, 1e-5, "pooled");

        var dpool = Rand(B * C, 123);
        var dh = Rand(B * T * C, 124);
        var dw = Rand(C * C, 125);
        var db = Rand(C, 126);
        var ws = NaNs(B * C);
        _g.PoolerBackward(dh.G.All, dw.G.All, db.G.All, dpool.G.All, pooled.G.All, h.G.All, w.G.All, ws.G.All, B, T, C);
        _r.PoolerBackward(dh.R.All, dw.R.All, db.R.All, dpool.R.All, pooled.R.All, h.R.All, w.R.All, ws.R.All, B, T, C);
        Close(dh, 2e-6 * C, 1e-5, "dHidden (+= on CLS rows)");
        Close(dw, 2e-6 * B, 1e-5, "dWeight (+=)");
        Close(db, 2e-6 * B, 1e-5, "dBias (+=)");
    }

    // ---------------------------------------------------------------- BCE
    [TestCase(1, false, 1f, 1f, false)]
    [TestCase(7, true, 2.5f, 0.5f, true)]
    [TestCase(300, true, 1f, 1f, false)]
    public void BceForwardBackward(int N, bool weighted, float temperature, float scale, bool accumulate)
    {
        var z = TestUtil.Random(N, 130, -3f, 3f);
        if (N > 2) { z[0] = 120f; z[1] = -150f; }   // stable far out
        var logits = Of(z);
        var y = Rand(N, 131, 0f, 1f);
        var w = weighted ? Rand(N, 132, 0.1f, 2f) : null;
        var loss = NaNs(1);
        var d = accumulate ? Rand(N, 133) : NaNs(N);
        _g.BceForwardBackward(loss.G.All, d.G.All, logits.G.All, y.G.All, G(w), N, temperature, scale, accumulate);
        _r.BceForwardBackward(loss.R.All, d.R.All, logits.R.All, y.R.All, R(w), N, temperature, scale, accumulate);
        Close(loss, 1e-5, 1e-5, "loss");
        Close(d, 1e-6, 1e-5, "dLogits");
    }

    // ---------------------------------------------------------------- optimiser
    [TestCase(1)]
    [TestCase(1000)]
    [TestCase(5000)]    // two partial sums
    public void GlobalNorm(int n)
    {
        var g = Rand(n, 140);
        var norm = NaNs(1);
        _g.GlobalNorm(norm.G.All, g.G.All);
        _r.GlobalNorm(norm.R.All, g.R.All);
        Close(norm, 0, 1e-5, "norm");
    }

    [Test]
    public void AdamWOverSegmentsWithClipping([Values(0f, 0.5f)] float maxNorm, [Values(1, 3)] int step)
    {
        const int n = 700;
        var p = Rand(n, 150);
        var g = Rand(n, 151);
        var m = Rand(n, 152, -0.1f, 0.1f);
        var v = Rand(n, 153, 0f, 0.1f);
        AdamSegment[] segs = [new(0, 300, 1f, 0.01f), new(300, 100, 0f, 0.01f), new(400, 250, 0.5f, 0f)];   // 650..700 untouched
        var sG = TestUtil.Upload(_g, segs);
        var sR = TestUtil.Upload(_r, segs);
        var norm = NaNs(1);
        _g.GlobalNorm(norm.G.All, g.G.All);
        _r.GlobalNorm(norm.R.All, g.R.All);
        _g.AdamW(p.G.All, g.G.All, m.G.All, v.G.All, sG.All, norm.G.All, maxNorm, 1e-3f, 0.9f, 0.999f, 1e-8f, step);
        _r.AdamW(p.R.All, g.R.All, m.R.All, v.R.All, sR.All, norm.R.All, maxNorm, 1e-3f, 0.9f, 0.999f, 1e-8f, step);
        Close(p, 1e-6, 1e-5, "param");
        Close(m, 1e-7, 1e-5, "m");
        Close(v, 1e-8, 1e-5, "v");
    }

    [Test]
    public void AdamWRejectsSegmentsOutsideTheParameters()
    {
        var p = TestUtil.Upload(_g, new float[10]);
        var segs = TestUtil.Upload(_g, new[] { new AdamSegment(5, 6, 1f, 0f) });
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            _g.AdamW(p.All, p.All, p.All, p.All, segs.All, View<float>.None, 0f, 1e-3f, 0.9f, 0.999f, 1e-8f, 1));
        Assert.That(ex!.Message, Does.Contain("segments[0]").And.Contain("[5, 11)").And.Contain("10 elements"));
    }

    // ---------------------------------------------------------------- memory and bad inputs
    [Test]
    public void UploadDownloadZeroCopyRoundTrip()
    {
        var data = TestUtil.Random(50, 160);
        using var a = TestUtil.Upload(_g, data);
        using var b = _g.Allocate<float>(50);
        _g.Copy(b.Slice(10, 20), a.Slice(0, 20));
        var got = TestUtil.Download(_g, b.All);
        Assert.That(got.AsSpan(10, 20).ToArray(), Is.EqualTo(data.AsSpan(0, 20).ToArray()));
        Assert.That(got[9], Is.Zero);
        _g.Zero(a.Slice(5, 5));
        got = TestUtil.Download(_g, a.All);
        Assert.That(got.AsSpan(5, 5).ToArray(), Is.All.Zero);
        Assert.That(got[10], Is.EqualTo(data[10]));
    }

    [Test]
    public void ForeignBufferIsRefusedByName()
    {
        using var mine = _g.Allocate<float>(4);
        using var theirs = _r.Allocate<float>(4);
        var ex = Assert.Throws<ArgumentException>(() => _g.ActivationForward(Activation.Relu, mine.All, theirs.All));
        Assert.That(ex!.Message, Does.Contain("input").And.Contain("reference"));
    }

    [Test]
    public void WrongLengthNamesTheArgument()
    {
        using var x = _g.Allocate<float>(6);
        using var w = _g.Allocate<float>(5);
        using var y = _g.Allocate<float>(4);
        var ex = Assert.Throws<ShapeException>(() => _g.LinearForward(y.All, x.All, w.All, View<float>.None, 2, 3, 2));
        Assert.That(ex!.Message, Does.Contain("weight").And.Contain("6").And.Contain("got 5"));
    }
}
