// CpuGemm against a naive double-accumulating triple loop: transposes, leading dimensions, accumulate, threads, allocation.
using FastRec.Kernels;
using FastRec.Kernels.Cpu;

namespace FastRec.Tests.Kernels;

[NonParallelizable]
public class CpuGemmTests
{
    private const float Pad = 12345.5f; // fills the gaps between rows (ld > row length); must survive untouched

    private int _savedThreads;

    [SetUp]
    public void SaveThreads() => _savedThreads = CpuParallel.Threads;

    [TearDown]
    public void RestoreThreads()
    {
        CpuParallel.Threads = _savedThreads;
        CpuGemm.Kernel = GemmKernel.Auto;
    }

    /// <summary>A matrix of rows × cols with row stride ld; the gaps hold <see cref="Pad"/>.</summary>
    private static float[] Matrix(int rows, int cols, int ld, ulong seed)
    {
        float[] r = TestUtil.Random(rows * ld, seed);
        for (int i = 0; i < rows; i++)
            for (int j = cols; j < ld; j++) r[i * ld + j] = Pad;
        return r;
    }

    /// <summary>The spec: C = alpha·op(A)·op(B) (+ C), double accumulation. Also returns, per element, the scale
    /// |alpha|·Σ|a||b| + |c| that bounds the float rounding error.</summary>
    private static (float[] C, double[] Scale) Naive(bool transA, bool transB, int M, int N, int K, float alpha,
        float[] a, int lda, float[] b, int ldb, bool accumulate, float[] c, int ldc) =>
        Combine(Product(transA, transB, M, N, K, a, lda, b, ldb), M, N, alpha, accumulate, c, ldc);

    /// <summary>op(A)·op(B) (M, N) and Σ|a·b| per element, in double.</summary>
    private static (double[] P, double[] Abs) Product(bool transA, bool transB, int M, int N, int K, float[] a, int lda, float[] b, int ldb)
    {
        var p = new double[M * N];
        var abs = new double[M * N];
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
            {
                double s = 0, sa = 0;
                for (int k = 0; k < K; k++)
                {
                    double x = transA ? a[k * lda + i] : a[i * lda + k];
                    double y = transB ? b[j * ldb + k] : b[k * ldb + j];
                    s += x * y; sa += Math.Abs(x * y);
                }
                p[i * N + j] = s; abs[i * N + j] = sa;
            }
        return (p, abs);
    }

    /// <summary>Expected C (ldc layout, gaps kept) = alpha·P + (accumulate ? C : 0), with its error scale.</summary>
    private static (float[] C, double[] Scale) Combine((double[] P, double[] Abs) prod, int M, int N, float alpha,
        bool accumulate, float[] c, int ldc)
    {
        var r = (float[])c.Clone();
        var scale = new double[c.Length];
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
            {
                double prev = accumulate ? c[i * ldc + j] : 0;
                r[i * ldc + j] = (float)(alpha * prod.P[i * N + j] + prev);
                scale[i * ldc + j] = Math.Abs(alpha) * prod.Abs[i * N + j] + Math.Abs(prev);
            }
        return (r, scale);
    }

    /// <summary>Asserts every element within 1e-5·sqrt(K) of its scale, and the gaps between rows untouched.</summary>
    private static void AssertGemmClose(float[] actual, float[] expected, double[] scale, int M, int N, int K, int ldc, string what)
    {
        double tol = 1e-5 * Math.Sqrt(K);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < ldc; j++)
            {
                int x = i * ldc + j;
                if (i * ldc + j >= actual.Length) break;
                if (j >= N)
                {
                    if (actual[x] != Pad) Assert.Fail($"{what}: gap element ({i}, {j}) beyond N = {N} was overwritten with {actual[x]}");
                    continue;
                }
                double err = Math.Abs((double)actual[x] - expected[x]);
                if (!(err <= tol * Math.Max(scale[x], 1e-30)))
                    Assert.Fail($"{what}: C({i}, {j}) = {actual[x]}, expected {expected[x]}, error {err:G3} > {tol:G3}·{scale[x]:G3}");
            }
    }

    private static readonly int[] Ragged = [1, 2, 5, 7, 17, 33, 65, 127, 129];

    /// <summary>(M, N, K) triples: each ragged size on the diagonal, mixed triples, and a MiniLM-like shape.</summary>
    private static IEnumerable<int[]> Shapes()
    {
        foreach (int s in Ragged) yield return [s, s, s];
        for (int i = 0; i < Ragged.Length; i++)
            yield return [Ragged[i], Ragged[(i + 3) % Ragged.Length], Ragged[(i + 7) % Ragged.Length]];
        yield return [64, 384, 1536];
        yield return [6, 300, 40];   // M one micro-tile, many column tiles: split by columns
        yield return [130, 1, 70];   // N = 1 (a matrix-vector product)
    }

    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (int[] s in Shapes())
            foreach (bool tA in new[] { false, true })
                foreach (bool tB in new[] { false, true })
                    yield return new TestCaseData(s[0], s[1], s[2], tA, tB).SetName($"Sgemm_{(tA ? 'T' : 'N')}{(tB ? 'T' : 'N')}_{s[0]}x{s[1]}x{s[2]}");
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesNaive(int M, int N, int K, bool transA, bool transB)
    {
        // Leading dimensions longer than the rows, different for each matrix.
        int lda = (transA ? M : K) + 3, ldb = (transB ? K : N) + 1, ldc = N + 5;
        float[] a = Matrix(transA ? K : M, transA ? M : K, lda, 1);
        float[] b = Matrix(transB ? N : K, transB ? K : N, ldb, 2);
        var product = Product(transA, transB, M, N, K, a, lda, b, ldb);
        foreach (bool accumulate in new[] { false, true })
            foreach (float alpha in new[] { 1f, -0.75f })
            {
                float[] c = Matrix(M, N, ldc, 3);
                if (!accumulate)
                    for (int i = 0; i < M; i++) Array.Fill(c, float.NaN, i * ldc, N); // every element must be written
                var (expected, scale) = Combine(product, M, N, alpha, accumulate, c, ldc);
                CpuGemm.Sgemm(transA, transB, M, N, K, alpha, a, lda, b, ldb, accumulate, c, ldc);
                AssertGemmClose(c, expected, scale, M, N, K, ldc, $"accumulate={accumulate} alpha={alpha}");
            }
    }

    private static IEnumerable<TestCaseData> KernelCases()
    {
        foreach (GemmKernel k in Enum.GetValues<GemmKernel>())
            foreach (int[] s in new[] { new[] { 33, 65, 17 }, new[] { 129, 127, 300 } })
                yield return new TestCaseData(k, s[0], s[1], s[2]).SetName($"Kernel_{k}_{s[0]}x{s[1]}x{s[2]}");
    }

    /// <summary>Every micro-kernel variant (not only the one this CPU picks) against the spec, K past one panel.</summary>
    [TestCaseSource(nameof(KernelCases))]
    public void EveryKernelMatchesNaive(GemmKernel kernel, int M, int N, int K)
    {
        if (!CpuGemm.IsSupported(kernel)) Assert.Ignore($"{kernel} needs instructions this CPU lacks");
        CpuGemm.Kernel = kernel;
        foreach (bool tA in new[] { false, true })
            foreach (bool tB in new[] { false, true })
            {
                int lda = tA ? M : K, ldb = tB ? K : N, ldc = N;
                float[] a = Matrix(tA ? K : M, tA ? M : K, lda, 4), b = Matrix(tB ? N : K, tB ? K : N, ldb, 5);
                float[] c = Matrix(M, N, ldc, 6);
                var (expected, scale) = Naive(tA, tB, M, N, K, 0.5f, a, lda, b, ldb, true, c, ldc);
                CpuGemm.Sgemm(tA, tB, M, N, K, 0.5f, a, lda, b, ldb, true, c, ldc);
                AssertGemmClose(c, expected, scale, M, N, K, ldc, $"{kernel} {(tA ? 'T' : 'N')}{(tB ? 'T' : 'N')}");
            }
    }

    private static float[] RunWithThreads(int threads, bool transA, bool transB, int M, int N, int K, bool accumulate)
    {
        CpuParallel.Threads = threads;
        int lda = transA ? M : K, ldb = transB ? K : N;
        float[] a = TestUtil.Random(M * K, 7), b = TestUtil.Random(K * N, 8), c = TestUtil.Random(M * N, 9);
        CpuGemm.Sgemm(transA, transB, M, N, K, 0.3f, a, lda, b, ldb, accumulate, c, N);
        return c;
    }

    [TestCase(200, 150, 300, false, true, false)]
    [TestCase(257, 129, 100, true, false, true)]
    [TestCase(12, 3000, 100, false, false, true)] // few rows: split by columns
    [TestCase(97, 33, 1200, true, true, false)]   // K over several depth blocks
    public void ThreadCountDoesNotChangeABit(int M, int N, int K, bool transA, bool transB, bool accumulate)
    {
        Assert.That((long)M * N * K, Is.GreaterThanOrEqualTo(3 * CpuGemm.ParallelGrain), "big enough to use 3 threads");
        float[] one = RunWithThreads(1, transA, transB, M, N, K, accumulate);
        float[] two = RunWithThreads(2, transA, transB, M, N, K, accumulate);
        float[] three = RunWithThreads(3, transA, transB, M, N, K, accumulate);
        Assert.That(two, Is.EqualTo(one), "2 threads vs 1");
        Assert.That(three, Is.EqualTo(one), "3 threads vs 1");
    }

    [Test]
    public void TransposesGiveBitwiseTheSameProduct()
    {
        // Packing absorbs the transposes, so the arithmetic (and the rounding) is the same for all four forms.
        const int M = 70, N = 45, K = 300;
        float[] a = TestUtil.Random(M * K, 10), b = TestUtil.Random(K * N, 11);
        float[] aT = Transpose(a, M, K), bT = Transpose(b, K, N);
        float[] nn = new float[M * N], tn = new float[M * N], nt = new float[M * N], tt = new float[M * N];
        CpuGemm.Sgemm(false, false, M, N, K, 1f, a, K, b, N, false, nn, N);
        CpuGemm.Sgemm(true, false, M, N, K, 1f, aT, M, b, N, false, tn, N);
        CpuGemm.Sgemm(false, true, M, N, K, 1f, a, K, bT, K, false, nt, N);
        CpuGemm.Sgemm(true, true, M, N, K, 1f, aT, M, bT, K, false, tt, N);
        Assert.That(tn, Is.EqualTo(nn), "TN vs NN");
        Assert.That(nt, Is.EqualTo(nn), "NT vs NN");
        Assert.That(tt, Is.EqualTo(nn), "TT vs NN");
    }

    private static float[] Transpose(float[] x, int rows, int cols)
    {
        var t = new float[x.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
        return t;
    }

    [TestCase(12, 16, 16, 8, false, true)]    // attention-like: many small matrices, split across batches
    [TestCase(3, 150, 130, 70, true, false)]  // few large matrices, each split inside
    [TestCase(5, 2, 3, 4, false, false)]      // tiny: the simple path
    public void BatchedMatchesNaivePerBatch(int batch, int M, int N, int K, bool transA, bool transB)
    {
        int lda = transA ? M : K, ldb = transB ? K : N, ldc = N;
        long sa = M * K + 7, sb = K * N + 3, sc = M * N + 2; // gaps between batches
        float[] a = TestUtil.Random((int)(sa * batch), 12), b = TestUtil.Random((int)(sb * batch), 13);
        float[] c = TestUtil.Random((int)(sc * batch), 14);
        float[] before = (float[])c.Clone();
        foreach (int threads in new[] { 1, 2 })
        {
            CpuParallel.Threads = threads;
            float[] got = (float[])before.Clone();
            CpuGemm.SgemmBatched(transA, transB, M, N, K, 2f, a, lda, b, ldb, true, got, ldc, batch, sa, sb, sc);
            for (int p = 0; p < batch; p++)
            {
                float[] ap = a.AsSpan((int)(p * sa), M * K).ToArray(), bp = b.AsSpan((int)(p * sb), K * N).ToArray();
                float[] cp = before.AsSpan((int)(p * sc), M * N).ToArray();
                var (expected, scale) = Naive(transA, transB, M, N, K, 2f, ap, lda, bp, ldb, true, cp, ldc);
                AssertGemmClose(got.AsSpan((int)(p * sc), M * N).ToArray(), expected, scale, M, N, K, ldc, $"threads {threads}, batch {p}");
                // The single-matrix entry gives the same bits.
                CpuGemm.Sgemm(transA, transB, M, N, K, 2f, ap, lda, bp, ldb, true, cp, ldc);
                Assert.That(got.AsSpan((int)(p * sc), M * N).ToArray(), Is.EqualTo(cp), $"threads {threads}, batch {p}: batched vs single");
            }
            for (int p = 0; p < batch; p++)
                for (long g = p * sc + M * N; g < (p + 1) * sc; g++)
                    Assert.That(got[g], Is.EqualTo(before[g]), $"gap element {g} between batches was overwritten");
        }
    }

    [Test]
    public void CallsFromSeveralThreadsAtOnceGiveTheSameBits()
    {
        // Per-thread scratch and the busy-pool fallback: concurrent callers must not share panels.
        CpuParallel.Threads = 2;
        float[] RunOne(int seed, int M, int N, int K)
        {
            float[] a = TestUtil.Random(M * K, (ulong)seed), b = TestUtil.Random(K * N, (ulong)seed + 1), c = new float[M * N];
            CpuGemm.Sgemm(false, true, M, N, K, 1f, a, K, b, K, false, c, N);
            return c;
        }
        float[] x0 = RunOne(20, 150, 130, 120), y0 = RunOne(30, 90, 200, 160);
        var tasks = new[]
        {
            Task.Run(() => { for (int i = 0; i < 10; i++) Assert.That(RunOne(20, 150, 130, 120), Is.EqualTo(x0)); }),
            Task.Run(() => { for (int i = 0; i < 10; i++) Assert.That(RunOne(30, 90, 200, 160), Is.EqualTo(y0)); }),
        };
        Assert.That(() => Task.WaitAll(tasks), Throws.Nothing);
    }

    [Test]
    public void BatchesSharingOneCAccumulateInOrder()
    {
        // strideC = 0 with accumulate: C = Σ_p A_p·B_p, summed batch after batch (never two threads on one C).
        CpuParallel.Threads = 2;
        const int batch = 16, M = 128, N = 128, K = 128; // big enough to use 2 threads, long enough for them to overlap
        float[] a = TestUtil.Random(batch * M * K, 40), b = TestUtil.Random(batch * K * N, 41);
        Assert.That((long)batch * M * N * K, Is.GreaterThanOrEqualTo(2 * CpuGemm.ParallelGrain));
        float[] c = new float[M * N], expected = new float[M * N];
        CpuGemm.SgemmBatched(false, false, M, N, K, 1f, a, K, b, N, true, c, N, batch, M * K, K * N, 0);
        for (int p = 0; p < batch; p++)
            CpuGemm.Sgemm(false, false, M, N, K, 1f, a.AsSpan(p * M * K), K, b.AsSpan(p * K * N), N, true, expected, N);
        Assert.That(c, Is.EqualTo(expected));
    }

    [Test]
    public void NoManagedAllocationAfterWarmUp()
    {
        CpuParallel.Threads = 2;
        const int M = 100, N = 120, K = 140, batch = 8;
        float[] a = TestUtil.Random(M * K * batch, 15), b = TestUtil.Random(K * N * batch, 16), c = new float[M * N * batch];
        void Calls()
        {
            CpuGemm.Sgemm(false, true, M, N, K, 1f, a, K, b, K, false, c, N);
            CpuGemm.Sgemm(true, false, M, N, K, 1f, a, M, b, N, true, c, N);
            CpuGemm.Sgemm(false, false, 3, 4, 5, 1f, a, 5, b, 4, false, c, 4);
            CpuGemm.SgemmBatched(false, false, 16, 16, 16, 1f, a, 16, b, 16, false, c, 16, batch, 256, 256, 256);
        }
        Calls(); // warm-up: JIT, worker threads, per-thread scratch
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 5; i++) Calls();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(allocated, Is.Zero, "bytes allocated by 5 rounds of warm GEMM calls");
    }

    [Test]
    public void BadShapesAreRefusedWithTheirName()
    {
        float[] a = new float[64], b = new float[64], c = new float[64];
        var e = Assert.Throws<ShapeException>(() => CpuGemm.Sgemm(false, false, 0, 4, 4, 1f, a, 4, b, 4, false, c, 4));
        Assert.That(e!.Message, Does.Contain("dimensions must be positive").And.Contain("(0, 4, 4)"));
        e = Assert.Throws<ShapeException>(() => CpuGemm.Sgemm(false, false, 4, 4, 4, 1f, a, 3, b, 4, false, c, 4));
        Assert.That(e!.Message, Does.Contain("lda = 3"));
        e = Assert.Throws<ShapeException>(() => CpuGemm.Sgemm(false, true, 4, 4, 8, 1f, a, 8, b, 4, false, c, 4));
        Assert.That(e!.Message, Does.Contain("ldb = 4"));
        e = Assert.Throws<ShapeException>(() => CpuGemm.Sgemm(false, false, 4, 4, 4, 1f, a, 4, b, 4, false, c.AsSpan(0, 15), 4));
        Assert.That(e!.Message, Does.Contain("c (M, N) = (4, 4)").And.Contain("needs 16 elements, got 15"));
        e = Assert.Throws<ShapeException>(() => CpuGemm.Sgemm(true, false, 4, 4, 20, 1f, a, 4, b, 4, false, c, 4));
        Assert.That(e!.Message, Does.Contain("a (K, M) = (20, 4)").And.Contain("needs 80 elements, got 64"));
        e = Assert.Throws<ShapeException>(() => CpuGemm.SgemmBatched(false, false, 2, 2, 2, 1f, a, 2, b, 2, false, c, 2, 3, 4, 4, 32));
        Assert.That(e!.Message, Does.Contain("3 batches of stride 32").And.Contain("needs 68 elements, got 64"));
        Assert.Throws<ShapeException>(() => CpuGemm.SgemmBatched(false, false, 2, 2, 2, 1f, a, 2, b, 2, false, c, 2, 0, 4, 4, 4));
    }
}
