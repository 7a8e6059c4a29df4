// What only the ILGPU backend has: 128x128 GEMM tiles, the CPU accelerator's fast paths, its numerics in the tails,
// deterministic scatter-add, zero-copy memory. Every op's parity on the GPU code paths is the shared suite
// (tests/Shared/ParitySuite.cs), run by BackendParityTests on the "ilgpu-gpu-paths" backend.
using FastRec.Kernels;
using FastRec.Kernels.Gpu;
using FastRec.Kernels.Reference;
using FastRec.Tests.Kernels;
using FastRec.Tests.Shared;

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
    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void Gemm128TilesMatchReference(bool transA, bool transB)
    {
        // ragged: a second, 2-row / 1-column tile; both accumulate modes, through the shared GEMM case
        _g.GemmTile = 128;
        try
        {
            var suite = new ParitySuite(_g, _r, new Asserting(), "ilgpu 128x128 tiles");
            foreach (bool acc in new[] { false, true })
                suite.Gemm(transA, transB, 130, 129, 20, transA && transB ? 2 : 1, pad: 3, accumulate: acc);
        }
        finally
        {
            _g.GemmTile = 0;
        }
    }

    private sealed class Asserting : IParityReport
    {
        public double ToleranceScale => 1;
        public void Fail(string message) => Assert.Fail(message);
    }

    // (The CPU accelerator's own fast paths, one thread per GEMM output and per row, are the "ilgpu-cpu" backend of the
    // shared suite; the GPU paths forced here are its "ilgpu-gpu-paths" backend.)

    // ---------------------------------------------------------------- activations
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

    // ---------------------------------------------------------------- embeddings
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

    // ---------------------------------------------------------------- optimiser
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
