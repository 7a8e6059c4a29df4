// ReferenceBackend's float path vs RefMath on the widened inputs (bit-exact), and its argument validation.
using FastRec.Kernels;
using FastRec.Kernels.Reference;

namespace FastRec.Tests.Kernels;

/// <summary>The backend must be exactly "widen, RefMath, narrow": any argument mix-up or forgotten element shows as a mismatch.
/// Assigned outputs start as NaN; accumulated ones start random.</summary>
public class ReferenceBackendTests
{
    private ReferenceBackend _be = null!;

    [SetUp] public void SetUp() => _be = new ReferenceBackend();
    [TearDown] public void TearDown() => _be.Dispose();

    private DeviceBuffer<float> Up(float[] a) => TestUtil.Upload(_be, a);
    private DeviceBuffer<int> Up(int[] a) => TestUtil.Upload(_be, a);
    private DeviceBuffer<float> NaN(int n) => TestUtil.Poisoned(_be, n);
    private float[] Down(DeviceBuffer<float> b) => TestUtil.Download(_be, b.All);
    private static float[] R(int n, ulong seed, float lo = -1, float hi = 1) => TestUtil.Random(n, seed, lo, hi);
    private static double[] D(float[] a) => a.Select(x => (double)x).ToArray();
    private static float[] F(double[] a) => a.Select(x => (float)x).ToArray();
    private static void Same(float[] actual, double[] expected, string what) => Assert.That(actual, Is.EqualTo(F(expected)), what);

    [Test]
    public void NameAndMemory()
    {
        Assert.That(_be.Name, Is.EqualTo("reference"));
        var buf = _be.Allocate<float>(5);
        Assert.That(Down(buf), Is.All.EqualTo(0f), "allocation is zero-filled");
        _be.Upload(buf.All, [1f, 2f, 3f, 4f, 5f]);
        var other = _be.Allocate<float>(3);
        _be.Copy(other.All, buf.Slice(1, 3));
        Assert.That(Down(other), Is.EqualTo(new[] { 2f, 3f, 4f }));
        _be.Zero(buf.Slice(0, 2));
        Assert.That(Down(buf), Is.EqualTo(new[] { 0f, 0f, 3f, 4f, 5f }));
        _be.Synchronize();
    }

    [Test]
    public void Gemm()
    {
        const int M = 3, N = 5, K = 7, batch = 2, lda = 4, ldc = 6;   // transA: A stored [K, M] with lda 4
        long sA = K * lda, sB = N * K, sC = M * ldc + 1;
        var a = R((int)(sA * batch), 1); var b = R((int)(sB * batch), 2); var c0 = R((int)(sC * batch), 3);
        var c = Up(c0);
        _be.Gemm(true, true, M, N, K, 0.5f, Up(a).All, lda, Up(b).All, 0, true, c.All, ldc, batch, sA, sB, sC);
        var e = D(c0);
        RefMath.Gemm(true, true, M, N, K, 0.5f, D(a), lda, D(b), K, true, e, ldc, batch, sA, sB, sC);
        Same(Down(c), e, "C");
    }

    [Test]
    public void Linear()
    {
        const int N = 3, IC = 7, OC = 5;
        var inp = R(N * IC, 1); var w = R(OC * IC, 2); var bias = R(OC, 3); var dOut = R(N * OC, 4); var dW0 = R(OC * IC, 5); var dB0 = R(OC, 6);
        var o = NaN(N * OC);
        _be.LinearForward(o.All, Up(inp).All, Up(w).All, Up(bias).All, N, IC, OC);
        var eo = new double[N * OC];
        RefMath.LinearForward(eo, D(inp), D(w), D(bias), N, IC, OC);
        Same(Down(o), eo, "output");

        var dIn = NaN(N * IC); var dW = Up(dW0); var dB = Up(dB0);
        _be.LinearBackward(dIn.All, dW.All, dB.All, Up(dOut).All, Up(inp).All, Up(w).All, N, IC, OC);
        var edIn = new double[N * IC]; var edW = D(dW0); var edB = D(dB0);
        RefMath.LinearBackward(edIn, edW, edB, D(dOut), D(inp), D(w), N, IC, OC);
        Same(Down(dIn), edIn, "dInput"); Same(Down(dW), edW, "dWeight"); Same(Down(dB), edB, "dBias");
    }

    [TestCase(Activation.Gelu)]
    [TestCase(Activation.Relu)]
    [TestCase(Activation.Tanh)]
    [TestCase(Activation.Identity)]
    public void Activations(Activation act)
    {
        var x = R(33, 1, -4, 4); var dOut = R(33, 2);
        var o = NaN(33);
        _be.ActivationForward(act, o.All, Up(x).All);
        var eo = new double[33];
        RefMath.ActivationForward(act, eo, D(x));
        Same(Down(o), eo, "output");
        var dx = NaN(33);
        _be.ActivationBackward(act, dx.All, Up(dOut).All, Up(x).All);
        var edx = new double[33];
        RefMath.ActivationBackward(act, edx, D(dOut), D(x));
        Same(Down(dx), edx, "dInput");
    }

    [Test]
    public void AddLayerNorm()
    {
        const int N = 3, C = 7;
        var a = R(N * C, 1, -2, 2); var b = R(N * C, 2); var g = R(C, 3, 0.5f, 1.5f); var be = R(C, 4); var dOut = R(N * C, 5);
        var dG0 = R(C, 6); var dB0 = R(C, 7);
        var o = NaN(N * C); var sum = NaN(N * C); var mean = NaN(N); var rstd = NaN(N);
        _be.AddLayerNormForward(o.All, sum.All, mean.All, rstd.All, Up(a).All, Up(b).All, Up(g).All, Up(be).All, N, C, 1e-12f);
        double[] eo = new double[N * C], es = new double[N * C], em = new double[N], er = new double[N];
        RefMath.AddLayerNormForward(eo, es, em, er, D(a), D(b), D(g), D(be), N, C, 1e-12f);
        Same(Down(o), eo, "output"); Same(Down(sum), es, "sum"); Same(Down(mean), em, "mean"); Same(Down(rstd), er, "rstd");

        var dx = NaN(N * C); var dG = Up(dG0); var dB = Up(dB0);
        _be.AddLayerNormBackward(dx.All, dG.All, dB.All, Up(dOut).All, sum.All, Up(g).All, mean.All, rstd.All, N, C);
        var edx = new double[N * C]; var edG = D(dG0); var edB = D(dB0);
        RefMath.AddLayerNormBackward(edx, edG, edB, D(dOut), D(Down(sum)), D(g), D(Down(mean)), D(Down(rstd)), N, C);
        Same(Down(dx), edx, "dx"); Same(Down(dG), edG, "dGamma"); Same(Down(dB), edB, "dBeta");
    }

    [Test]
    public void SumMayAliasA()
    {
        const int N = 2, C = 5;
        var a = R(N * C, 1); var b = R(N * C, 2); var g = R(C, 3); var be = R(C, 4);
        var aBuf = Up(a); var o = NaN(N * C);
        _be.AddLayerNormForward(o.All, aBuf.All, NaN(N).All, NaN(N).All, aBuf.All, Up(b).All, Up(g).All, Up(be).All, N, C, 1e-5f);
        Same(Down(aBuf), a.Zip(b, (x, y) => (double)x + y).ToArray(), "sum written over a");
    }

    [Test]
    public void Embedding()
    {
        const int B = 2, T = 3, C = 4, V = 5, P = 4, TV = 2;
        int[] ids = [0, 4, 2, 4, 4, 1], types = [0, 1, 1, 0, 1, 0];
        var word = R(V * C, 1); var pos = R(P * C, 2); var type = R(TV * C, 3); var dOut = R(B * T * C, 4);
        var o = NaN(B * T * C);
        _be.EmbeddingForward(o.All, Up(ids).All, Up(types).All, Up(word).All, Up(pos).All, Up(type).All, B, T, C);
        var eo = new double[B * T * C];
        RefMath.EmbeddingForward(eo, ids, types, D(word), D(pos), D(type), B, T, C);
        Same(Down(o), eo, "output");

        var dW0 = R(V * C, 5); var dP0 = R(P * C, 6); var dT0 = R(TV * C, 7);
        var dW = Up(dW0); var dP = Up(dP0); var dT = Up(dT0);
        _be.EmbeddingBackward(dW.All, dP.All, dT.All, Up(dOut).All, Up(ids).All, Up(types).All, B, T, C);
        var edW = D(dW0); var edP = D(dP0); var edT = D(dT0);
        RefMath.EmbeddingBackward(edW, edP, edT, D(dOut), ids, types, B, T, C);
        Same(Down(dW), edW, "dWordEmb"); Same(Down(dP), edP, "dPosEmb"); Same(Down(dT), edT, "dTypeEmb");
    }

    [Test]
    public void Softmax()
    {
        const int B = 2, NH = 3, T = 5;
        var mask = F(ReferenceGradTests.PaddingMask(B, T));
        var s = R(B * NH * T * T, 1, -3, 3); var dP = R(s.Length, 2);
        var p = NaN(s.Length);
        _be.SoftmaxForward(p.All, Up(s).All, Up(mask).All, B, NH, T, 0.5f);
        var ep = new double[s.Length];
        RefMath.SoftmaxForward(ep, D(s), D(mask), B, NH, T, 0.5f);
        Same(Down(p), ep, "probs");
        var dS = NaN(s.Length);
        _be.SoftmaxBackward(dS.All, Up(dP).All, p.All, B, NH, T, 0.5f);
        var edS = new double[s.Length];
        RefMath.SoftmaxBackward(edS, D(dP), D(Down(p)), B, NH, T, 0.5f);
        Same(Down(dS), edS, "dScores");

        // probs may alias scores, dScores may alias dProbs
        var inPlace = Up(s);
        _be.SoftmaxForward(inPlace.All, inPlace.All, Up(mask).All, B, NH, T, 0.5f);
        Assert.That(Down(inPlace), Is.EqualTo(Down(p)), "in-place forward");
        var dInPlace = Up(dP);
        _be.SoftmaxBackward(dInPlace.All, dInPlace.All, p.All, B, NH, T, 0.5f);
        Assert.That(Down(dInPlace), Is.EqualTo(Down(dS)), "in-place backward");
    }

    [Test]
    public void Attention()
    {
        const int B = 2, T = 5, C = 6, NH = 3;
        var mask = F(ReferenceGradTests.PaddingMask(B, T));
        var drop = new DropoutSpec(0.2f, 7, 3);
        var qkv = R(B * T * 3 * C, 1, -1.5f, 1.5f); var dOut = R(B * T * C, 2);
        var ws = NaN((int)Check.AttentionWorkspace(B, T, C, NH));
        var o = NaN(B * T * C); var perm = NaN(3 * B * T * C); var p = NaN(B * NH * T * T);
        _be.AttentionForward(o.All, perm.All, p.All, ws.All, Up(qkv).All, Up(mask).All, B, T, C, NH, drop);
        double[] eo = new double[B * T * C], ePerm = new double[3 * B * T * C], ep = new double[B * NH * T * T];
        RefMath.AttentionForward(eo, ePerm, ep, D(qkv), D(mask), B, T, C, NH, drop);
        Same(Down(o), eo, "output"); Same(Down(perm), ePerm, "qkvPerm"); Same(Down(p), ep, "probs");

        var dQkv = NaN(qkv.Length);
        _be.AttentionBackward(dQkv.All, Up(dOut).All, perm.All, p.All, ws.All, Up(mask).All, B, T, C, NH, drop);
        var edQkv = new double[qkv.Length];
        RefMath.AttentionBackward(edQkv, D(dOut), D(Down(perm)), D(Down(p)), B, T, C, NH, drop);
        Same(Down(dQkv), edQkv, "dQkv");
    }

    [Test]
    public void Dropout()
    {
        var d = new DropoutSpec(0.3f, 11, 100);
        var x = R(33, 1); var dOut = R(33, 2);
        var o = NaN(33);
        _be.DropoutForward(o.All, Up(x).All, d);
        var eo = new double[33];
        RefMath.DropoutForward(eo, D(x), d);
        Same(Down(o), eo, "output");
        var dx = Up(dOut);   // in place
        _be.DropoutBackward(dx.All, dx.All, d);
        var edx = new double[33];
        RefMath.DropoutBackward(edx, D(dOut), d);
        Same(Down(dx), edx, "dInput");
    }

    [Test]
    public void Copy2D()
    {
        var src = R(3 * 5, 1); var dst0 = R(3 * 4, 2);
        var dst = Up(dst0);
        _be.Copy2D(dst.All, 4, 1, Up(src).All, 5, 2, 3, 3, true);
        var e = D(dst0);
        RefMath.Copy2D(e, 4, 1, D(src), 5, 2, 3, 3, true);
        Same(Down(dst), e, "dst");
    }

    [Test]
    public void Pooler()
    {
        const int B = 2, T = 3, C = 4;
        var h = R(B * T * C, 1); var w = R(C * C, 2); var bias = R(C, 3); var dP = R(B * C, 4);
        var p = NaN(B * C);
        _be.PoolerForward(p.All, Up(h).All, Up(w).All, Up(bias).All, B, T, C);
        var ep = new double[B * C];
        RefMath.PoolerForward(ep, D(h), D(w), D(bias), B, T, C);
        Same(Down(p), ep, "pooled");
        var dH0 = R(B * T * C, 5); var dW0 = R(C * C, 6); var dB0 = R(C, 7);
        var dH = Up(dH0); var dW = Up(dW0); var dB = Up(dB0);
        _be.PoolerBackward(dH.All, dW.All, dB.All, Up(dP).All, p.All, Up(h).All, Up(w).All, NaN(B * C).All, B, T, C);
        var edH = D(dH0); var edW = D(dW0); var edB = D(dB0);
        RefMath.PoolerBackward(edH, edW, edB, D(dP), D(Down(p)), D(h), D(w), B, T, C);
        Same(Down(dH), edH, "dHidden"); Same(Down(dW), edW, "dWeight"); Same(Down(dB), edB, "dBias");
    }

    [Test]
    public void Bce()
    {
        const int N = 7;
        var z = R(N, 1, -100, 100); var y = R(N, 2, 0, 1); var w = R(N, 3, 0.1f, 2); var d0 = R(N, 4);
        var loss = NaN(1); var d = Up(d0);
        _be.BceForwardBackward(loss.All, d.All, Up(z).All, Up(y).All, Up(w).All, N, 2f, 3f, accumulate: true);
        var ed = D(d0);
        double el = RefMath.BceForwardBackward(ed, D(z), D(y), D(w), N, 2f, 3f, true);
        Same(Down(loss), [el], "loss"); Same(Down(d), ed, "dLogits");
        Assert.That(float.IsFinite(Down(loss)[0]), "finite at |z| near 100");
    }

    [Test]
    public void GlobalNormAndAdamW()
    {
        const int n = 9;
        var g = R(n, 1, -3, 3); var p0 = R(n, 2); var m0 = R(n, 3); var v0 = R(n, 4, 0, 1);
        var norm = NaN(1);
        var gBuf = Up(g);
        _be.GlobalNorm(norm.All, gBuf.All);
        Same(Down(norm), [RefMath.GlobalNorm(D(g))], "norm");

        var segs = new[] { new AdamSegment(0, 4, 1f, 0.01f), new AdamSegment(4, 3, 0f, 0.01f), new AdamSegment(7, 2, 0.5f, 0f) };
        var sBuf = _be.Allocate<AdamSegment>(segs.Length);
        _be.Upload(sBuf.All, segs);
        var p = Up(p0); var m = Up(m0); var v = Up(v0);
        _be.AdamW(p.All, gBuf.All, m.All, v.All, sBuf.All, norm.All, 1f, 1e-3f, 0.9f, 0.999f, 1e-8f, 3);
        var ep = D(p0); var em = D(m0); var ev = D(v0);
        RefMath.AdamW(ep, D(g), em, ev, segs, Down(norm)[0], 1f, 1e-3f, 0.9f, 0.999f, 1e-8f, 3);
        Same(Down(p), ep, "param"); Same(Down(m), em, "m"); Same(Down(v), ev, "v");
        Assert.That(Down(p)[4..7], Is.EqualTo(p0[4..7]), "frozen segment untouched");
        Assert.That(Down(gBuf), Is.EqualTo(g), "the gradient is not modified by the clipping");
    }

    // ================================================================ bad inputs

    private static void AssertMessage(Exception ex, params string[] parts)
    {
        foreach (var part in parts) Assert.That(ex.Message, Does.Contain(part), $"message: {ex.Message}");
    }

    [Test]
    public void WrongLengthNamesTheArgumentAndBothSizes()
    {
        const int N = 3, IC = 5, OC = 4;
        var ex = Assert.Throws<ShapeException>(() =>
            _be.LinearForward(NaN(N * OC).All, Up(R(N * IC, 1)).All, Up(R(OC * IC - 1, 2)).All, View<float>.None, N, IC, OC))!;
        AssertMessage(ex, "weight", "20", "19");

        ex = Assert.Throws<ShapeException>(() =>
            _be.LinearBackward(NaN(N * IC).All, NaN(OC * IC).All, NaN(OC + 1).All, Up(R(N * OC, 1)).All, Up(R(N * IC, 2)).All,
                Up(R(OC * IC, 3)).All, N, IC, OC))!;
        AssertMessage(ex, "dBias", "4", "5");

        ex = Assert.Throws<ShapeException>(() =>
            _be.AddLayerNormForward(NaN(6).All, NaN(6).All, NaN(2).All, NaN(2).All, Up(R(6, 1)).All, View<float>.None,
                Up(R(4, 2)).All, Up(R(3, 3)).All, 2, 3, 1e-5f))!;
        AssertMessage(ex, "gamma", "3", "4");

        ex = Assert.Throws<ShapeException>(() =>
            _be.SoftmaxForward(NaN(8).All, Up(R(8, 1)).All, Up(R(3, 2)).All, 2, 1, 2, 1f))!;
        AssertMessage(ex, "mask", "4", "3");

        ex = Assert.Throws<ShapeException>(() => _be.Upload(_be.Allocate<float>(3).All, new float[4]))!;
        AssertMessage(ex, "src", "3", "4");

        ex = Assert.Throws<ShapeException>(() =>
            _be.BceForwardBackward(NaN(1).All, View<float>.None, Up(R(5, 1)).All, Up(R(4, 2)).All, View<float>.None, 5))!;
        AssertMessage(ex, "targets", "5", "4");
    }

    [Test]
    public void MissingRequiredTensorIsNamed()
    {
        var ex = Assert.Throws<ShapeException>(() =>
            _be.LinearForward(NaN(4).All, View<float>.None, Up(R(4, 2)).All, View<float>.None, 2, 2, 2))!;
        AssertMessage(ex, "input", "missing");
    }

    [Test]
    public void ZeroDimensionsAreRefused()
    {
        var ex = Assert.Throws<ShapeException>(() =>
            _be.LinearForward(Up(new float[1]).All, Up(new float[1]).All, Up(new float[1]).All, View<float>.None, 0, 1, 1))!;
        AssertMessage(ex, "LinearForward", "positive");
        ex = Assert.Throws<ShapeException>(() =>
            _be.Gemm(false, false, 2, 0, 2, 1f, Up(new float[4]).All, 0, Up(new float[4]).All, 0, false, Up(new float[4]).All, 0))!;
        AssertMessage(ex, "Gemm", "positive");
        ex = Assert.Throws<ShapeException>(() => _be.ActivationForward(Activation.Gelu, _be.Allocate<float>(0).All, _be.Allocate<float>(0).All))!;
        AssertMessage(ex, "ActivationForward", "positive");
        ex = Assert.Throws<ShapeException>(() =>
            _be.AttentionForward(NaN(1).All, NaN(1).All, NaN(1).All, NaN(1).All, NaN(1).All, View<float>.None, 1, 0, 2, 1, DropoutSpec.Off))!;
        AssertMessage(ex, "AttentionForward", "positive");
    }

    [Test]
    public void GemmChecksLeadingDimensionsAndOperandSizes()
    {
        var ex = Assert.Throws<ShapeException>(() =>
            _be.Gemm(false, false, 2, 3, 4, 1f, Up(new float[8]).All, 3, Up(new float[12]).All, 0, false, NaN(6).All, 0))!;
        AssertMessage(ex, "lda", "3", "4");
        ex = Assert.Throws<ShapeException>(() =>
            _be.Gemm(false, true, 2, 3, 4, 1f, Up(new float[8]).All, 0, Up(new float[11]).All, 0, false, NaN(6).All, 0))!;
        AssertMessage(ex, "b", "12", "11");
        ex = Assert.Throws<ShapeException>(() =>
            _be.Gemm(false, false, 2, 3, 4, 1f, Up(new float[8]).All, 0, Up(new float[12]).All, 0, false, NaN(12).All, 0, 2, 0, 0, 5))!;
        AssertMessage(ex, "strideC", "overlap");
    }

    [Test]
    public void IdsOutsideTheTableNameIdPositionAndSize()
    {
        const int B = 2, T = 3, C = 2;
        int[] ids = [0, 1, 2, 3, 9, 1];
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            _be.EmbeddingForward(NaN(B * T * C).All, Up(ids).All, View<int>.None, Up(R(5 * C, 1)).All, Up(R(T * C, 2)).All,
                Up(R(2 * C, 3)).All, B, T, C))!;
        AssertMessage(ex, "ids", "id 9", "b=1, t=1", "5 rows");

        int[] types = [0, 0, 0, 0, 0, -1];
        ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            _be.EmbeddingBackward(View<float>.None, View<float>.None, NaN(2 * C).All, Up(R(B * T * C, 4)).All, Up([0, 0, 0, 0, 0, 0]).All,
                Up(types).All, B, T, C))!;
        AssertMessage(ex, "typeIds", "id -1", "b=1, t=2", "2 rows");
    }

    [Test]
    public void PositionTableMustCoverTheSequence()
    {
        var ex = Assert.Throws<ShapeException>(() =>
            _be.EmbeddingForward(NaN(8).All, Up(new int[4]).All, View<int>.None, Up(R(6, 1)).All, Up(R(6, 2)).All, Up(R(2, 3)).All, 1, 4, 2))!;
        AssertMessage(ex, "posEmb", "rows >= 4", "6");
    }

    [Test]
    public void AttentionRefusesHeadsThatDoNotDivideC()
    {
        var ex = Assert.Throws<ShapeException>(() =>
            _be.AttentionForward(NaN(5).All, NaN(15).All, NaN(3).All, NaN(100).All, NaN(15).All, View<float>.None, 1, 1, 5, 3, DropoutSpec.Off))!;
        AssertMessage(ex, "C = 5", "NH = 3");
    }

    [Test]
    public void BadScalarsAreRefused()
    {
        var ex1 = Assert.Throws<ArgumentOutOfRangeException>(() => _be.DropoutForward(NaN(3).All, NaN(3).All, new DropoutSpec(1f, 0, 0)))!;
        AssertMessage(ex1, "dropout", "[0, 1)");
        var ex2 = Assert.Throws<ArgumentOutOfRangeException>(() =>
            _be.BceForwardBackward(NaN(1).All, View<float>.None, NaN(2).All, NaN(2).All, View<float>.None, 2, temperature: 0f))!;
        AssertMessage(ex2, "temperature");
    }

    [Test]
    public void AdamWValidatesStepAndSegments()
    {
        var p = NaN(4); var g = NaN(4); var m = NaN(4); var v = NaN(4); var norm = NaN(1);
        DeviceBuffer<AdamSegment> Segs(params AdamSegment[] s) { var b = _be.Allocate<AdamSegment>(s.Length); _be.Upload(b.All, s); return b; }
        var ok = Segs(new AdamSegment(0, 4, 1f, 0f));
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => _be.AdamW(p.All, g.All, m.All, v.All, ok.All, norm.All, 1f, 1e-3f, 0.9f, 0.999f, 1e-8f, 0))!;
        AssertMessage(ex, "step", "0");
        var outside = Segs(new AdamSegment(2, 3, 1f, 0f));
        ex = Assert.Throws<ArgumentOutOfRangeException>(() => _be.AdamW(p.All, g.All, m.All, v.All, outside.All, norm.All, 1f, 1e-3f, 0.9f, 0.999f, 1e-8f, 1))!;
        AssertMessage(ex, "segments[0]", "[2, 5)", "4 elements");
        var overlap = Segs(new AdamSegment(2, 2, 1f, 0f), new AdamSegment(0, 3, 1f, 0f));
        var ex2 = Assert.Throws<ArgumentException>(() => _be.AdamW(p.All, g.All, m.All, v.All, overlap.All, norm.All, 1f, 1e-3f, 0.9f, 0.999f, 1e-8f, 1))!;
        AssertMessage(ex2, "segments[1]", "segments[0]", "overlap");
        var ex3 = Assert.Throws<ShapeException>(() => _be.AdamW(p.All, g.All, m.All, v.All, ok.All, View<float>.None, 1f, 1e-3f, 0.9f, 0.999f, 1e-8f, 1))!;
        AssertMessage(ex3, "norm", "missing");
    }

    [Test]
    public void BuffersOfAnotherBackendAreRefused()
    {
        using var other = new ReferenceBackend();
        var foreign = TestUtil.Upload(other, R(4, 1));
        var ex = Assert.Throws<ArgumentException>(() => _be.ActivationForward(Activation.Relu, NaN(4).All, foreign.All))!;
        AssertMessage(ex, "input", "another backend");
    }

    [Test]
    public void Copy2DRefusesColumnsOutsideTheRow()
    {
        var ex = Assert.Throws<ShapeException>(() => _be.Copy2D(NaN(8).All, 4, 3, NaN(8).All, 4, 0, 2, 2, false))!;
        AssertMessage(ex, "dstCol", "ldDst = 4");
    }
}
