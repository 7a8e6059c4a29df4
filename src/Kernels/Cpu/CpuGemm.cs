// CPU single-precision GEMM: packed panels, register-blocked FMA micro-kernels, parallel over row or column blocks.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FastRec.Kernels.Cpu;

/// <summary>
/// SGEMM for the CPU backend, semantics exactly as <see cref="IBackend.Gemm"/> on spans (row-major, transposes,
/// leading dimensions, accumulate). GotoBLAS/BLIS structure: for each (NC columns, KC depth) the B panel is packed
/// into micro-panels of NR columns, for each MC rows the A block into micro-panels of MR rows, and a register-blocked
/// FMA micro-kernel computes each MR×NR tile of C. Packing absorbs the transposes and zero-pads the edges; partial
/// tiles run the same kernel on a copy, so every element of C sees the same arithmetic. The default kernel is
/// 6×32 Vector512 FMA where Vector512 is accelerated, else 6×16 Vector256 FMA (12 accumulators either way), KC = 256 (K split into equal blocks), MC = 144, NC = 2048; C's tile is
/// prefetched while the FMAs run. C must not overlap A or B.
/// <para>Threads: C is split into contiguous row (or column) ranges, one per thread of <see cref="CpuParallel"/>;
/// every element of C is computed by one thread with the same K order and blocking whatever the split, so the
/// result is bitwise independent of the thread count. Scratch panels are per-thread, 64-byte aligned native memory,
/// allocated once and reused: no managed allocation per call. Calls from several threads at once are safe (a call that
/// finds the pool busy runs on its own thread).</para>
/// </summary>
public static unsafe class CpuGemm
{
    /// <summary>Problems with M·N·K at most this take the simple loop (packing would cost more than it saves).</summary>
    internal const long SmallWork = 16 * 16 * 16;
    /// <summary>Multiply-adds per thread below which adding a thread does not pay for waking it.</summary>
    internal const long ParallelGrain = 1L << 20;

    /// <summary>The micro-kernel used by the packed path: <see cref="GemmKernel.Auto"/> (the default) picks the best one
    /// this CPU supports; the others are knobs for the benchmark and tests (results differ only in rounding order).</summary>
    public static GemmKernel Kernel
    {
        get => s_kernel;
        set
        {
            if (!IsSupported(value)) throw new PlatformNotSupportedException($"GEMM kernel {value} needs instructions this CPU lacks");
            s_kernel = value;
        }
    }
    private static GemmKernel s_kernel = GemmKernel.Auto;

    /// <summary>Whether this CPU has the instructions <paramref name="kernel"/> needs.</summary>
    public static bool IsSupported(GemmKernel kernel) => MicroKernels.IsSupported(kernel);

    /// <summary>C[M,N] = alpha·op(A)·op(B) (+ C when <paramref name="accumulate"/>); see <see cref="IBackend.Gemm"/>.
    /// op(A) is A[M,K] (row stride <paramref name="lda"/>) or, if <paramref name="transA"/>, A stored [K,M];
    /// op(B) is B[K,N] (<paramref name="ldb"/>) or, if <paramref name="transB"/>, B stored [N,K]. C has row stride
    /// <paramref name="ldc"/>. Leading dimensions are explicit here (the backend resolves 0).</summary>
    /// <exception cref="ShapeException">A dimension is not positive, a leading dimension is shorter than its row,
    /// or a span is shorter than its matrix.</exception>
    public static void Sgemm(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, bool accumulate, Span<float> c, int ldc)
    {
        Validate(transA, transB, M, N, K, a.Length, lda, b.Length, ldb, c.Length, ldc, 1, 0, 0, 0);
        fixed (float* pa = a, pb = b, pc = c)
        {
            var g = new Problem(transA, transB, M, N, K, alpha, pa, lda, pb, ldb, accumulate, pc, ldc);
            Run(in g, CpuParallel.Threads);
        }
    }

    /// <summary>Strided-batched SGEMM: for p in [0, <paramref name="batch"/>) computes <see cref="Sgemm"/> on
    /// A + p·strideA, B + p·strideB, C + p·strideC. Small matrices (attention: B·NH batches of T×T) are
    /// parallelised across batches, one whole matrix per thread; large ones one after another, each in parallel.
    /// Batches whose C blocks overlap (e.g. strideC = 0 with accumulate, a sum over batches) run in batch order.</summary>
    /// <exception cref="ShapeException">As <see cref="Sgemm"/>, or a batch count or stride is negative or too short.</exception>
    public static void SgemmBatched(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, bool accumulate, Span<float> c, int ldc,
        int batch, long strideA, long strideB, long strideC)
    {
        Validate(transA, transB, M, N, K, a.Length, lda, b.Length, ldb, c.Length, ldc, batch, strideA, strideB, strideC);
        fixed (float* pa = a, pb = b, pc = c)
        {
            var g = new Problem(transA, transB, M, N, K, alpha, pa, lda, pb, ldb, accumulate, pc, ldc);
            int threads = CpuParallel.Threads;
            long work = (long)M * N * K;
            // Batches whose C blocks overlap (strideC 0 sums into one C) run in order, as the contract reads.
            bool disjointC = strideC >= (long)(M - 1) * ldc + N;
            int maxT = (int)Math.Min(threads, Math.Max(1, work * batch / ParallelGrain));
            bool acrossBatches = batch > 1 && maxT > 1 && disjointC &&
                (work < 16 * ParallelGrain || batch >= 4 * threads || batch % threads == 0);
            if (acrossBatches)
            {
                var job = new BatchJob { G = g, StrideA = strideA, StrideB = strideB, StrideC = strideC };
                CpuParallel.ForRange(batch, ref job, maxT);
                return;
            }
            for (int p = 0; p < batch; p++)
            {
                Problem gp = g.Offset(p * strideA, p * strideB, p * strideC);
                Run(in gp, threads);
            }
        }
    }

    private static void Validate(bool transA, bool transB, int M, int N, int K, int aLen, int lda, int bLen, int ldb,
        int cLen, int ldc, int batch, long strideA, long strideB, long strideC)
    {
        if (M <= 0 || N <= 0 || K <= 0)
            throw new ShapeException($"Sgemm: dimensions must be positive, got (M, N, K) = ({M}, {N}, {K})");
        if (batch <= 0) throw new ShapeException($"Sgemm: batch must be positive, got {batch}");
        if (strideA < 0 || strideB < 0 || strideC < 0)
            throw new ShapeException($"Sgemm: strides must not be negative, got ({strideA}, {strideB}, {strideC})");
        CheckMatrix("a", transA ? K : M, transA ? M : K, lda, aLen, batch, strideA, transA ? "(K, M)" : "(M, K)");
        CheckMatrix("b", transB ? N : K, transB ? K : N, ldb, bLen, batch, strideB, transB ? "(N, K)" : "(K, N)");
        CheckMatrix("c", M, N, ldc, cLen, batch, strideC, "(M, N)");
    }

    private static void CheckMatrix(string name, int rows, int cols, int ld, int length, int batch, long stride, string shape)
    {
        if (ld < cols)
            throw new ShapeException($"Sgemm: ld{name} = {ld} is shorter than a row of {name} {shape} = ({rows}, {cols})");
        long need = (long)(batch - 1) * stride + (long)(rows - 1) * ld + cols;
        if (length < need)
            throw new ShapeException($"Sgemm: {name} {shape} = ({rows}, {cols}) with ld{name} = {ld}" +
                (batch > 1 ? $", {batch} batches of stride {stride}" : "") + $" needs {need} elements, got {length}");
    }

    /// <summary>One GEMM on raw pointers (already validated).</summary>
    internal readonly struct Problem
    {
        public readonly float* A, B, C;
        public readonly nint Lda, Ldb, Ldc;
        public readonly int M, N, K;
        public readonly float Alpha;
        public readonly bool TransA, TransB, Accumulate;

        public Problem(bool transA, bool transB, int m, int n, int k, float alpha, float* a, nint lda, float* b, nint ldb,
            bool accumulate, float* c, nint ldc)
        {
            TransA = transA; TransB = transB; M = m; N = n; K = k; Alpha = alpha;
            A = a; Lda = lda; B = b; Ldb = ldb; Accumulate = accumulate; C = c; Ldc = ldc;
        }

        public Problem Offset(long da, long db, long dc) =>
            new(TransA, TransB, M, N, K, Alpha, A + da, Lda, B + db, Ldb, Accumulate, C + dc, Ldc);
    }

    /// <summary>Runs one problem on up to <paramref name="threads"/> threads.</summary>
    private static void Run(in Problem g, int threads)
    {
        long work = (long)g.M * g.N * g.K;
        if (work <= SmallWork) { Small(in g); return; }
        GemmKernel kernel = ResolveKernel();
        int mr = MicroKernels.MR(kernel), nr = MicroKernels.NR(kernel);
        int maxT = (int)Math.Min(threads, Math.Max(1, work / ParallelGrain));
        int mUnits = (g.M + mr - 1) / mr, nUnits = (g.N + nr - 1) / nr;
        if (maxT <= 1 || (mUnits < 2 && nUnits < 2))
        {
            MicroKernels.Compute(kernel, in g, 0, g.M, 0, g.N, Scratch.ForCurrentThread());
            return;
        }
        // Each thread packs its own rows of A and all of B when the rows are split (all of A and its columns of B
        // when the columns are): split the longer side, so the panel every thread repacks is the smaller one.
        bool splitM = mUnits >= maxT && (g.M >= g.N || nUnits < maxT);
        var job = new TileJob { G = g, Kernel = kernel, SplitM = splitM, Unit = splitM ? mr : nr };
        CpuParallel.ForRange(splitM ? mUnits : nUnits, ref job, maxT);
    }

    private static GemmKernel ResolveKernel()
    {
        GemmKernel k = Kernel;
        return k == GemmKernel.Auto ? MicroKernels.Best : k;
    }

    private struct TileJob : IParallelRangeJob
    {
        public Problem G;
        public GemmKernel Kernel;
        public bool SplitM;
        public int Unit;

        public readonly void Execute(int start, int end, int part)
        {
            Scratch s = Scratch.ForCurrentThread();
            if (SplitM) MicroKernels.Compute(Kernel, in G, start * Unit, Math.Min(end * Unit, G.M), 0, G.N, s);
            else MicroKernels.Compute(Kernel, in G, 0, G.M, start * Unit, Math.Min(end * Unit, G.N), s);
        }
    }

    private struct BatchJob : IParallelRangeJob
    {
        public Problem G;
        public long StrideA, StrideB, StrideC;

        public readonly void Execute(int start, int end, int part)
        {
            for (int p = start; p < end; p++)
            {
                Problem gp = G.Offset(p * StrideA, p * StrideB, p * StrideC);
                Run(in gp, 1);
            }
        }
    }

    /// <summary>The simple path for tiny problems: one dot product per element, K in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Small(in Problem g)
    {
        float* A = g.A, B = g.B, C = g.C;
        nint sai = g.TransA ? 1 : g.Lda, sak = g.TransA ? g.Lda : 1;
        nint sbk = g.TransB ? 1 : g.Ldb, sbj = g.TransB ? g.Ldb : 1;
        for (int i = 0; i < g.M; i++)
            for (int j = 0; j < g.N; j++)
            {
                float* pa = A + i * sai, pb = B + j * sbj;
                float s = 0;
                for (int k = 0; k < g.K; k++) s = MathF.FusedMultiplyAdd(pa[k * sak], pb[k * sbk], s);
                float* pc = C + i * g.Ldc + j;
                *pc = g.Accumulate ? MathF.FusedMultiplyAdd(s, g.Alpha, *pc) : s * g.Alpha;
            }
    }

    /// <summary>Per-thread packing buffers (64-byte aligned native memory), grown on demand, freed with the thread.</summary>
    internal sealed class Scratch
    {
        [ThreadStatic] private static Scratch? t_current;

        public float* A, B, Tile;
        private nint _capA, _capB;

        public static Scratch ForCurrentThread() => t_current ??= new Scratch();

        private Scratch() { Tile = (float*)NativeMemory.AlignedAlloc(64 * 64 * sizeof(float), 64); }

        /// <summary>Makes sure the A panel holds <paramref name="na"/> floats and the B panel <paramref name="nb"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Ensure(nint na, nint nb)
        {
            if (na > _capA) { NativeMemory.AlignedFree(A); A = (float*)NativeMemory.AlignedAlloc((nuint)(na * sizeof(float)), 64); _capA = na; }
            if (nb > _capB) { NativeMemory.AlignedFree(B); B = (float*)NativeMemory.AlignedAlloc((nuint)(nb * sizeof(float)), 64); _capB = nb; }
        }

        ~Scratch()
        {
            NativeMemory.AlignedFree(A);
            NativeMemory.AlignedFree(B);
            NativeMemory.AlignedFree(Tile);
        }
    }
}

/// <summary>Register-blocked micro-kernels of the packed path (MR rows × NR columns of C per call).</summary>
public enum GemmKernel
{
    /// <summary>The best kernel this CPU supports.</summary>
    Auto,
    /// <summary>Portable scalar 4×4 (no SIMD); also the reference for the packing logic.</summary>
    Scalar4x4,
    /// <summary>Vector256 + FMA, 6×16: 12 accumulators.</summary>
    V256x6x16,
    /// <summary>Vector512 + FMA, 6×32: 12 accumulators (on Zen 4 as fast as <see cref="V256x6x16"/>; on Zen 5, with
    /// full-width 512-bit FMA units, about 1.8x faster: the <see cref="Auto"/> choice where Vector512 is accelerated).</summary>
    V512x6x32,
}
