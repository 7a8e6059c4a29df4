// PackedLinear (the serving path's pre-packed Linear) against the Reference backend's Linear + activation; bad inputs.
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Kernels.Reference;
using FastRec.Tests.Kernels;

namespace FastRec.Tests.Serving;

public class PackedLinearTests
{
    private static float[] Reference(float[] x, float[] w, float[]? bias, int M, int K, int N, Activation act)
    {
        using var r = new ReferenceBackend();
        using var xb = TestUtil.Upload(r, x);
        using var wb = TestUtil.Upload(r, w);
        using var bb = bias is null ? null : TestUtil.Upload(r, bias);
        using var ob = TestUtil.Poisoned(r, M * N);
        r.LinearForward(ob.All, xb.All, wb.All, bb?.All ?? View<float>.None, M, K, N);
        r.ActivationForward(act, ob.All, ob.All);
        return TestUtil.Download(r, ob.All);
    }

    [Test]
    public void MatchesReferenceLinear([Values(1, 7, 13)] int M, [Values(1, 17, 48)] int N, [Values(1, 5, 64)] int K,
        [Values] bool bias, [Values(Activation.Identity, Activation.Gelu, Activation.Relu)] Activation act)
    {
        var x = TestUtil.Random(M * K, 1); var w = TestUtil.Random(N * K, 2); var b = bias ? TestUtil.Random(N, 3) : null;
        using var packed = new PackedWeight(w, N, K);
        var o = Enumerable.Repeat(float.NaN, M * N).ToArray();
        PackedLinear.Forward(x, M, packed, b, o, act);
        TestUtil.AssertClose(o, Reference(x, w, b, M, K, N, act), 2e-6f * K, 1e-5f, $"PackedLinear M={M} N={N} K={K}");
    }

    [Test]
    public void BlockedPathMatchesReference([Values(Activation.Identity, Activation.Gelu)] Activation act, [Values(1, 2)] int threads)
    {
        // M·K > 65536 floats: k blocks of 384 (900 = 384 + 384 + 132), m blocks of 96 (100 = 96 + 4), a partial last panel
        // (40 = 16 + 16 + 8) whose partial sums go through the tile copy
        const int M = 100, K = 900, N = 40;
        var x = TestUtil.Random(M * K, 7); var w = TestUtil.Random(N * K, 8); var b = TestUtil.Random(N, 9);
        using var packed = new PackedWeight(w, N, K);
        var o = Enumerable.Repeat(float.NaN, M * N).ToArray();
        PackedLinear.Forward(x, M, packed, b, o, act, threads);
        TestUtil.AssertClose(o, Reference(x, w, b, M, K, N, act), 2e-6f * K, 1e-5f, "blocked PackedLinear");
        var five = new float[5 * N];
        PackedLinear.Forward(x.AsSpan(95 * K, 5 * K), 5, packed, b, five, act);
        var unblocked = o.AsSpan(95 * N, 5 * N).ToArray();
        TestUtil.AssertClose(five, unblocked, 2e-6f * K, 1e-5f, "rows 95..99 alone (unblocked: M·K small) vs inside the blocked product");
    }

    [Test]
    public void ResultDoesNotDependOnThreadsOrRowCount()
    {
        const int M = 37, N = 96, K = 200;
        var x = TestUtil.Random(M * K, 4); var w = TestUtil.Random(N * K, 5); var b = TestUtil.Random(N, 6);
        using var packed = new PackedWeight(w, N, K);
        var one = new float[M * N]; var many = new float[M * N];
        PackedLinear.Forward(x, M, packed, b, one, Activation.Gelu, maxThreads: 1);
        PackedLinear.Forward(x, M, packed, b, many, Activation.Gelu, maxThreads: 0);
        Assert.That(many, Is.EqualTo(one), "thread split changes no bit");
        // the first 5 rows alone give the same bits as inside the 37-row product
        var five = new float[5 * N];
        PackedLinear.Forward(x.AsSpan(0, 5 * K), 5, packed, b, five, Activation.Gelu);
        Assert.That(five, Is.EqualTo(one.AsSpan(0, 5 * N).ToArray()), "rows are independent of M");
    }

    [Test]
    public void Vector512PairTilesGiveTheSameBitsAsThe256BitTiles([Values(1, 6, 37, 100)] int M, [Values(40, 48, 96)] int N,
        [Values(Activation.Identity, Activation.Gelu)] Activation act, [Values(1, 2)] int threads)
    {
        // N = 40: a pair then a partial panel; 48: a pair then a lone full panel; 96: three pairs. M = 100 with K = 900 is the
        // blocked path (k blocks, m blocks), the others the one-chain path.
        if (!(System.Runtime.Intrinsics.X86.Avx512F.IsSupported && System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated))
            Assert.Ignore("Vector512 is not accelerated on this machine: only the 256-bit tiles exist here");
        int K = M == 100 ? 900 : 200;
        var x = TestUtil.Random(M * K, 11); var w = TestUtil.Random(N * K, 12); var b = TestUtil.Random(N, 13);
        using var packed = new PackedWeight(w, N, K);
        var wide = Enumerable.Repeat(float.NaN, M * N).ToArray();
        var narrow = Enumerable.Repeat(float.NaN, M * N).ToArray();
        bool saved = PackedLinear.Vector512Enabled;
        try
        {
            PackedLinear.Vector512Enabled = true;
            Assert.That(PackedLinear.Vector512Enabled, Is.True);
            PackedLinear.Forward(x, M, packed, b, wide, act, threads);
            PackedLinear.Vector512Enabled = false;
            PackedLinear.Forward(x, M, packed, b, narrow, act, threads);
        }
        finally { PackedLinear.Vector512Enabled = saved; }
        Assert.That(wide, Is.EqualTo(narrow), "the 6x32 Vector512 tile changes no bit");
        TestUtil.AssertClose(wide, Reference(x, w, b, M, K, N, act), 2e-6f * K, 1e-5f, "Vector512 PackedLinear");
    }

    [Test]
    public void BadInputsNameTheArgument()
    {
        Assert.That(() => new PackedWeight(new float[11], 3, 4), Throws.TypeOf<ShapeException>().With.Message.Contains("weight"));
        Assert.That(() => new PackedWeight(new float[0], 0, 4), Throws.TypeOf<ShapeException>().With.Message.Contains("OC"));
        using var w = new PackedWeight(new float[12], 3, 4);
        Assert.That(() => PackedLinear.Forward(new float[7], 2, w, default, new float[6]),
            Throws.TypeOf<ShapeException>().With.Message.Contains("input"));
        Assert.That(() => PackedLinear.Forward(new float[8], 2, w, default, new float[5]),
            Throws.TypeOf<ShapeException>().With.Message.Contains("output"));
        Assert.That(() => PackedLinear.Forward(new float[8], 2, w, new float[2], new float[6]),
            Throws.TypeOf<ShapeException>().With.Message.Contains("bias"));
        Assert.That(() => PackedLinear.Forward(new float[8], 2, w, default, new float[6], Activation.Tanh),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("act"));
        w.Dispose();
        Assert.That(() => PackedLinear.Forward(new float[8], 2, w, default, new float[6]), Throws.TypeOf<ObjectDisposedException>());
    }
}
