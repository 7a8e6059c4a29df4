// Every candidate backend (Backends.cs) against ReferenceBackend: the shared parity cases (tests/Shared/ParitySuite.cs, which
// the device check runs on CUDA too) and the contract's error cases.
using FastRec.Kernels;
using FastRec.Tests.Shared;

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

    // ================================================================ the shared cases (tests/Shared/ParitySuite.cs)
    private sealed class Asserting : IParityReport
    {
        public double ToleranceScale => 1;
        public void Fail(string message) => Assert.Fail(message);
    }

    private static IEnumerable<TestCaseData> SharedCases()
        => ParitySuite.Cases().Select(c => new TestCaseData(c).SetArgDisplayNames(c.Name));

    /// <summary>One case of the shared library (the device check runs the same list on CUDA).</summary>
    [TestCaseSource(nameof(SharedCases))]
    public void Op(ParitySuite.ParityCase c) => c.Run(new ParitySuite(_c, _r, new Asserting(), name));

    // ================================================================ contract errors (candidate only)
    [Test]
    public void EmbeddingIdOutOfRangeNamesIdPositionAndTableSize()
    {
        const int B = 2, T = 3, C = 4;
        var idsHost = new int[B * T];
        idsHost[1 * T + 2] = ParitySuite.Vocab; // (b=1, t=2) one past the end
        var ids = TestUtil.Upload(_c, idsHost);
        var w = TestUtil.Upload(_c, TestUtil.Random(ParitySuite.Vocab * C, 71)); var p = TestUtil.Upload(_c, TestUtil.Random(T * C, 72));
        var ty = TestUtil.Upload(_c, TestUtil.Random(ParitySuite.TypeVocab * C, 73)); var o = TestUtil.Poisoned(_c, B * T * C);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            _c.EmbeddingForward(o.All, ids.All, View<int>.None, w.All, p.All, ty.All, B, T, C));
        Assert.That(ex!.Message, Does.Contain($"id {ParitySuite.Vocab}").And.Contain("b=1").And.Contain("t=2").And.Contain($"{ParitySuite.Vocab} rows"));
        var types = TestUtil.Upload(_c, new int[B * T]);
        idsHost[1 * T + 2] = -1;
        var ids2 = TestUtil.Upload(_c, idsHost);
        ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            _c.EmbeddingBackward(o.All, View<float>.None, View<float>.None, o.All.Slice(0, B * T * C), ids2.All, types.All, B, T, C));
        Assert.That(ex!.Message, Does.Contain("id -1"));
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
