// The fused MSE kernel (distillation): RefMath values and finite differences, every backend vs Reference, bad inputs.
using FastRec.Kernels;
using FastRec.Kernels.Reference;
using static FastRec.Tests.Kernels.ReferenceFd;

namespace FastRec.Tests.Kernels;

/// <summary><see cref="RefMath.MseForwardBackward"/> against its definition and central finite differences in float64.</summary>
public class MseReferenceTests
{
    [Test]
    public void ValueIsTheScaledMeanOfSquares()
    {
        double[] p = [1, 2, 3, -1], t = [0, 2, 5, 1];
        // Σ d² = 1 + 0 + 4 + 4 = 9, N = 4
        Assert.That(RefMath.MseForwardBackward(Span<double>.Empty, p, t, 4, 1.0, false), Is.EqualTo(9.0 / 4).Within(1e-15));
        Assert.That(RefMath.MseForwardBackward(Span<double>.Empty, p, t, 4, 0.5, false), Is.EqualTo(0.5 * 9.0 / 4).Within(1e-15));
        var g = NaNs(4);
        RefMath.MseForwardBackward(g, p, t, 4, 0.5, false);
        Assert.That(g, Is.EqualTo(new[] { 0.25, 0.0, -0.5, -0.5 }).Within(1e-15), "0.5·2·d/4");
    }

    [TestCase(1, 1.0)]
    [TestCase(7, 0.3)]
    [TestCase(33, 2.0)]
    public void BackwardMatchesFiniteDifferences(int N, double scale)
    {
        var p = Rand(N, 200, -2, 2); var t = Rand(N, 201, -2, 2);
        double Loss() => RefMath.MseForwardBackward(Span<double>.Empty, p, t, N, scale, false);
        var dp = NaNs(N);
        double loss = RefMath.MseForwardBackward(dp, p, t, N, scale, false);
        Assert.That(loss, Is.EqualTo(Loss()), "the loss does not depend on whether the gradient is asked for");
        Check("dPred", p, dp, Loss);

        // the gradient wrt the target is the negative: the same loss checked from the other side
        var dtNeg = dp.Select(v => -v).ToArray();
        Check("dTarget = -dPred", t, dtNeg, Loss);

        var acc = Rand(N, 202);
        var expected = acc.Zip(dp, (a, g) => a + g).ToArray();
        RefMath.MseForwardBackward(acc, p, t, N, scale, true);
        Assert.That(acc, Is.EqualTo(expected).Within(1e-15), "accumulate adds onto what is there");
    }
}

/// <summary>Every candidate backend's <see cref="IBackend.MseForwardBackward"/> against <see cref="ReferenceBackend"/>
/// (the <see cref="BackendParityTests"/> pattern: ragged sizes, NaN-poisoned outputs, += semantics, aliasing, bad inputs).</summary>
[TestFixtureSource(typeof(Backends), nameof(Backends.Fixtures))]
public sealed class MseParityTests(string name)
{
    private IBackend _c = null!;
    private IBackend _r = null!;

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

    /// <summary>Runs the op on both backends from the same host data and compares loss and gradient.</summary>
    private void Compare(int N, float scale, bool accumulate, bool withGrad, bool alias, ulong seed)
    {
        float[] p = TestUtil.Random(N, seed, -3f, 3f), t = TestUtil.Random(N, seed + 1, -3f, 3f);
        float[] g0 = accumulate ? TestUtil.Random(N, seed + 2) : Enumerable.Repeat(float.NaN, N).ToArray();
        if (alias) g0 = (float[])p.Clone();
        float[] lossC = Run(_c, p, t, g0, N, scale, accumulate, withGrad, alias, out float[] gC);
        float[] lossR = Run(_r, p, t, g0, N, scale, accumulate, withGrad, alias, out float[] gR);
        // loss: a sum of N squares; blocks of float lanes summed in double on the CPU backend
        TestUtil.AssertClose(lossC, lossR, 1e-7f, 2e-6f, $"{name} loss (N={N})");
        if (withGrad) TestUtil.AssertClose(gC, gR, 1e-9f, 1e-6f, $"{name} dPred (N={N})");
    }

    private static float[] Run(IBackend be, float[] p, float[] t, float[] g0, int N, float scale, bool accumulate, bool withGrad,
        bool alias, out float[] grad)
    {
        using var pb = TestUtil.Upload(be, p);
        using var tb = TestUtil.Upload(be, t);
        using var gb = TestUtil.Upload(be, g0);
        using var lb = TestUtil.Poisoned(be, 1);
        var dPred = !withGrad ? View<float>.None : alias ? pb.All : gb.All;
        be.MseForwardBackward(lb.All, dPred, pb.All, tb.All, N, scale, accumulate);
        grad = withGrad ? TestUtil.Download(be, dPred) : [];
        return TestUtil.Download(be, lb.All);
    }

    [Test]
    public void MatchesReference([Values(1, 7, 33, 127, 1000, 4099)] int N, [Values(1f, 0.37f)] float scale, [Values] bool accumulate)
        => Compare(N, scale, accumulate, withGrad: true, alias: false, seed: 300);

    [Test]
    public void LossOnlyWhenGradientIsNone([Values(1, 33, 1000)] int N) => Compare(N, 1.5f, false, withGrad: false, alias: false, seed: 310);

    [Test]
    public void GradientMayAliasThePrediction([Values(7, 1000)] int N, [Values] bool accumulate)
        => Compare(N, 0.8f, accumulate, withGrad: true, alias: true, seed: 320);

    [Test]
    public void ZeroScaleGivesZeroLossAndGradient()
    {
        const int N = 40;
        float[] lossC = Run(_c, TestUtil.Random(N, 330), TestUtil.Random(N, 331), new float[N], N, 0f, false, true, false, out var g);
        Assert.That(lossC[0], Is.EqualTo(0f));
        Assert.That(g, Is.All.EqualTo(0f));
    }

    [Test]
    public void IdenticalInputsGiveZero()
    {
        const int N = 100;
        var p = TestUtil.Random(N, 340);
        float[] loss = Run(_c, p, p, new float[N], N, 1f, false, true, false, out var g);
        Assert.That(loss[0], Is.EqualTo(0f));
        Assert.That(g, Is.All.EqualTo(0f));
    }

    private View<float> F(int n) => _c.Allocate<float>(n).All;

    private static void ThrowsShape(TestDelegate d, string argument)
        => Assert.That(d, Throws.TypeOf<ShapeException>().With.Message.Contains(argument));

    [Test]
    public void BadInputs()
    {
        ThrowsShape(() => _c.MseForwardBackward(F(1), F(5), F(5), F(4), 5), "target");
        ThrowsShape(() => _c.MseForwardBackward(F(1), F(4), F(5), F(5), 5), "dPred");
        ThrowsShape(() => _c.MseForwardBackward(F(2), F(5), F(5), F(5), 5), "loss");
        ThrowsShape(() => _c.MseForwardBackward(F(1), F(5), F(6), F(5), 5), "pred");
        ThrowsShape(() => _c.MseForwardBackward(F(1), View<float>.None, View<float>.None, F(5), 5), "pred");
        ThrowsShape(() => _c.MseForwardBackward(F(1), F(1), F(1), F(1), 0), "N");
        Assert.That(() => _c.MseForwardBackward(F(1), F(5), F(5), F(5), 5, float.NaN),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("scale"));
        Assert.That(() => _c.MseForwardBackward(F(1), F(5), F(5), F(5), 5, float.PositiveInfinity),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("scale"));
    }

    [Test]
    public void ForeignBufferIsRefusedNamingTheArgument()
    {
        var foreign = _r.Allocate<float>(4);
        var ex = Assert.Throws<ArgumentException>(() => _c.MseForwardBackward(F(1), F(4), F(4), foreign.All, 4));
        Assert.That(ex!.Message, Does.Contain("target"));
    }
}
