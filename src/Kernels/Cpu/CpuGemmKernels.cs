// The packed GEMM loop nest (GotoBLAS order), panel packing, and the register-blocked FMA micro-kernels.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FastRec.Kernels.Cpu;

/// <summary>An MR×NR micro-kernel with its cache blocking: C[MR,NR] (=, or += when add) alpha·Ap·Bp over kc,
/// where Ap is a packed A micro-panel (kc groups of MR floats) and Bp a packed B micro-panel (kc rows of NR floats).</summary>
internal unsafe interface IMicroKernel
{
    static abstract int MR { get; }
    static abstract int NR { get; }
    /// <summary>Depth of a packed panel (B micro-panel KC×NR should sit in L1).</summary>
    static abstract int KC { get; }
    /// <summary>Rows of the packed A block (MC×KC should sit in L2).</summary>
    static abstract int MC { get; }
    /// <summary>Columns of the packed B panel (KC×NC sits in L2/L3).</summary>
    static abstract int NC { get; }
    static abstract void Run(nint kc, float* a, float* b, float* c, nint ldc, float alpha, bool add);
}

/// <remarks>The hot methods are marked AggressiveOptimization: they are compiled fully optimised on first use instead of
/// starting at tier 0 (whose Vector code is several times slower), so the first calls of a process are fast too.</remarks>
internal static unsafe class MicroKernels
{
    /// <summary>The kernel <see cref="GemmKernel.Auto"/> runs: Vector512 where it is accelerated (Zen 5 executes 512-bit
    /// FMAs at full width, about 1.8x the 256-bit kernel's rate on the project's box, 2026-12-05; Zen 4 splits them and
    /// runs both kernels at the same rate), else Vector256 + FMA (Zen 3 and other AVX2 machines), else scalar.</summary>
    public static readonly GemmKernel Best = Avx512F.IsSupported && Vector512.IsHardwareAccelerated ? GemmKernel.V512x6x32
        : Fma.IsSupported && Avx2.IsSupported ? GemmKernel.V256x6x16 : GemmKernel.Scalar4x4;

    /// <summary>Whether this CPU has the instructions kernel <paramref name="k"/> needs.</summary>
    public static bool IsSupported(GemmKernel k) => k switch
    {
        GemmKernel.V256x6x16 => Fma.IsSupported && Avx2.IsSupported,
        GemmKernel.V512x6x32 => Avx512F.IsSupported && Vector512.IsHardwareAccelerated,
        _ => true,
    };

    public static int MR(GemmKernel k) => k switch
    {
        GemmKernel.V256x6x16 => K6x16.MR,
        GemmKernel.V512x6x32 => K6x32.MR,
        _ => Scalar4x4.MR,
    };

    public static int NR(GemmKernel k) => k switch
    {
        GemmKernel.V256x6x16 => K6x16.NR,
        GemmKernel.V512x6x32 => K6x32.NR,
        _ => Scalar4x4.NR,
    };

    /// <summary>Computes rows [m0, m1) × columns [n0, n1) of C with kernel <paramref name="k"/> on this thread.</summary>
    public static void Compute(GemmKernel k, in CpuGemm.Problem g, int m0, int m1, int n0, int n1, CpuGemm.Scratch s)
    {
        switch (k)
        {
            case GemmKernel.V256x6x16: Compute<K6x16>(in g, m0, m1, n0, n1, s); break;
            case GemmKernel.V512x6x32: Compute<K6x32>(in g, m0, m1, n0, n1, s); break;
            default: Compute<Scalar4x4>(in g, m0, m1, n0, n1, s); break;
        }
    }

    /// <summary>The depth of every K block: K split into equal blocks of at most KC (a multiple of 8 where possible);
    /// depends on K alone, so the summation order never depends on the thread split.</summary>
    private static int DepthBlock(int K, int KC)
    {
        int blocks = (K + KC - 1) / KC;
        int kc = (K + blocks - 1) / blocks;
        return Math.Min(RoundUp(kc, 8), KC);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Compute<TK>(in CpuGemm.Problem g, int m0, int m1, int n0, int n1, CpuGemm.Scratch s)
        where TK : IMicroKernel
    {
        int MR = TK.MR, NR = TK.NR;
        int KC = DepthBlock(g.K, TK.KC), MC = TK.MC, NC = TK.NC;
        int kcMax = Math.Min(KC, g.K);
        int ncMax = Math.Min(NC, RoundUp(n1 - n0, NR));
        int mcMax = Math.Min(MC, RoundUp(m1 - m0, MR));
        s.Ensure((nint)mcMax * kcMax, (nint)ncMax * kcMax);
        float* packA = s.A, packB = s.B, tile = s.Tile;
        float alpha = g.Alpha;
        nint ldc = g.Ldc;
        for (int jc = n0; jc < n1; jc += NC)
        {
            int nc = Math.Min(NC, n1 - jc);
            for (int pc = 0; pc < g.K; pc += KC)
            {
                int kc = Math.Min(KC, g.K - pc);
                PackB<TK>(in g, pc, kc, jc, nc, packB);
                bool add = pc > 0 || g.Accumulate;
                for (int ic = m0; ic < m1; ic += MC)
                {
                    int mc = Math.Min(MC, m1 - ic);
                    PackA<TK>(in g, ic, mc, pc, kc, packA);
                    for (int jr = 0; jr < nc; jr += NR)
                    {
                        int nr = Math.Min(NR, nc - jr);
                        float* bp = packB + (nint)jr * kc;
                        float* cRow = g.C + (nint)ic * ldc + jc + jr;
                        for (int ir = 0; ir < mc; ir += MR)
                        {
                            int mr = Math.Min(MR, mc - ir);
                            float* ap = packA + (nint)ir * kc;
                            float* cp = cRow + (nint)ir * ldc;
                            if (mr == MR && nr == NR) TK.Run(kc, ap, bp, cp, ldc, alpha, add);
                            else Edge<TK>(kc, ap, bp, cp, ldc, alpha, add, mr, nr, tile);
                        }
                    }
                }
            }
        }
    }

    /// <summary>A partial tile: runs the full kernel on a copy, so the arithmetic is the same as a full tile's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Edge<TK>(nint kc, float* ap, float* bp, float* c, nint ldc, float alpha, bool add, int mr, int nr, float* tile)
        where TK : IMicroKernel
    {
        int NR = TK.NR;
        if (add)
            for (int r = 0; r < mr; r++)
                for (int j = 0; j < nr; j++) tile[r * NR + j] = c[r * ldc + j];
        TK.Run(kc, ap, bp, tile, NR, alpha, add);
        for (int r = 0; r < mr; r++)
            for (int j = 0; j < nr; j++) c[r * ldc + j] = tile[r * NR + j];
    }

    /// <summary>Packs op(A)[ic..ic+mc, pc..pc+kc] into micro-panels of MR rows: panel p holds, for each k, MR floats.
    /// Rows past mc are zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA<TK>(in CpuGemm.Problem g, int ic, int mc, int pc, int kc, float* dst) where TK : IMicroKernel
    {
        int MR = TK.MR;
        nint lda = g.Lda;
        for (int ir = 0; ir < mc; ir += MR, dst += (nint)MR * kc)
        {
            int mr = Math.Min(MR, mc - ir);
            if (!g.TransA)
            {
                // A[i, k] at i*lda + k: each row is contiguous in k.
                float* src = g.A + (nint)(ic + ir) * lda + pc;
                if (MR % 6 == 0 && mr == MR && Avx.IsSupported)
                    for (int r = 0; r < MR; r += 6) PackRows6(src + r * lda, lda, kc, dst + r, MR);
                else PackRowsScalar(src, lda, mr, MR, kc, dst);
            }
            else
            {
                // A stored [K, M]: for each k the MR rows are contiguous.
                float* src = g.A + (nint)pc * lda + ic + ir;
                if (MR % 6 == 0 && mr == MR && Sse2.IsSupported)
                    for (int r = 0; r < MR; r += 6) PackCols6(src + r, lda, kc, dst + r, MR);
                else PackColsScalar(src, lda, mr, MR, kc, dst);
            }
        }
    }

    /// <summary>Packs op(B)[pc..pc+kc, jc..jc+nc] into micro-panels of NR columns: panel p holds, for each k, NR floats.
    /// Columns past nc are zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB<TK>(in CpuGemm.Problem g, int pc, int kc, int jc, int nc, float* dst) where TK : IMicroKernel
    {
        int NR = TK.NR;
        nint ldb = g.Ldb;
        for (int jr = 0; jr < nc; jr += NR, dst += (nint)NR * kc)
        {
            int nr = Math.Min(NR, nc - jr);
            if (!g.TransB)
            {
                // B[k, j] at k*ldb + j: for each k the NR columns are contiguous.
                float* src = g.B + (nint)pc * ldb + jc + jr;
                if (NR % 16 == 0 && nr == NR && Avx.IsSupported)
                    for (int j = 0; j < NR; j += 16) PackCols16(src + j, ldb, kc, dst + j, NR);
                else PackColsScalar(src, ldb, nr, NR, kc, dst);
            }
            else
            {
                // B stored [N, K]: each column j of op(B) is a contiguous row.
                float* src = g.B + (nint)(jc + jr) * ldb + pc;
                if (NR % 8 == 0 && nr == NR && Avx.IsSupported)
                    for (int j = 0; j < NR; j += 8) PackRows8(src + j * ldb, ldb, kc, dst + j, NR);
                else PackRowsScalar(src, ldb, nr, NR, kc, dst);
            }
        }
    }

    /// <summary>dst[k*width + r] = src[r*ld + k] for r &lt; rows (zero for rows ≤ r &lt; width), k &lt; kc.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackRowsScalar(float* src, nint ld, int rows, int width, int kc, float* dst)
    {
        for (int r = 0; r < rows; r++)
        {
            float* s = src + r * ld;
            float* d = dst + r;
            for (int k = 0; k < kc; k++) d[(nint)k * width] = s[k];
        }
        for (int r = rows; r < width; r++)
            for (int k = 0; k < kc; k++) dst[(nint)k * width + r] = 0f;
    }

    /// <summary>dst[k*width + c] = src[k*ld + c] for c &lt; cols (zero for cols ≤ c &lt; width), k &lt; kc.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackColsScalar(float* src, nint ld, int cols, int width, int kc, float* dst)
    {
        for (int k = 0; k < kc; k++)
        {
            float* s = src + k * ld;
            float* d = dst + (nint)k * width;
            int c = 0;
            for (; c < cols; c++) d[c] = s[c];
            for (; c < width; c++) d[c] = 0f;
        }
    }

    /// <summary>Six rows contiguous in k → for each k six floats at dst + k·ldd: 6×8 blocks transposed in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackRows6(float* src, nint ld, int kc, float* dst, nint ldd)
    {
        float* r0 = src, r1 = src + ld, r2 = src + 2 * ld, r3 = src + 3 * ld, r4 = src + 4 * ld, r5 = src + 5 * ld;
        int k = 0;
        for (; k + 8 <= kc; k += 8, dst += 8 * ldd)
        {
            Vector256<float> x0 = Avx.LoadVector256(r0 + k), x1 = Avx.LoadVector256(r1 + k);
            Vector256<float> x2 = Avx.LoadVector256(r2 + k), x3 = Avx.LoadVector256(r3 + k);
            Vector256<float> x4 = Avx.LoadVector256(r4 + k), x5 = Avx.LoadVector256(r5 + k);
            Vector256<float> t0 = Avx.UnpackLow(x0, x1), t1 = Avx.UnpackHigh(x0, x1); // r0 r1 pairs: k0 k1 | k4 k5, k2 k3 | k6 k7
            Vector256<float> t2 = Avx.UnpackLow(x2, x3), t3 = Avx.UnpackHigh(x2, x3);
            Vector256<double> t4 = Avx.UnpackLow(x4, x5).AsDouble(), t5 = Avx.UnpackHigh(x4, x5).AsDouble();
            Vector256<float> s0 = Avx.Shuffle(t0, t2, 0x44), s1 = Avx.Shuffle(t0, t2, 0xEE); // rows 0-3: k0 | k4, k1 | k5
            Vector256<float> s2 = Avx.Shuffle(t1, t3, 0x44), s3 = Avx.Shuffle(t1, t3, 0xEE); // k2 | k6, k3 | k7
            Vector128<double> t4l = t4.GetLower(), t4h = t4.GetUpper(), t5l = t5.GetLower(), t5h = t5.GetUpper();
            float* d = dst;
            Sse.Store(d, s0.GetLower()); Sse2.StoreScalar((double*)(d + 4), t4l); d += ldd;
            Sse.Store(d, s1.GetLower()); Sse2.StoreHigh((double*)(d + 4), t4l); d += ldd;
            Sse.Store(d, s2.GetLower()); Sse2.StoreScalar((double*)(d + 4), t5l); d += ldd;
            Sse.Store(d, s3.GetLower()); Sse2.StoreHigh((double*)(d + 4), t5l); d += ldd;
            Sse.Store(d, s0.GetUpper()); Sse2.StoreScalar((double*)(d + 4), t4h); d += ldd;
            Sse.Store(d, s1.GetUpper()); Sse2.StoreHigh((double*)(d + 4), t4h); d += ldd;
            Sse.Store(d, s2.GetUpper()); Sse2.StoreScalar((double*)(d + 4), t5h); d += ldd;
            Sse.Store(d, s3.GetUpper()); Sse2.StoreHigh((double*)(d + 4), t5h);
        }
        for (; k < kc; k++, dst += ldd)
        {
            dst[0] = r0[k]; dst[1] = r1[k]; dst[2] = r2[k]; dst[3] = r3[k]; dst[4] = r4[k]; dst[5] = r5[k];
        }
    }

    /// <summary>Six contiguous floats per k (a transposed A) → for each k six floats at dst + k·ldd.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackCols6(float* src, nint ld, int kc, float* dst, nint ldd)
    {
        for (int k = 0; k < kc; k++, src += ld, dst += ldd)
        {
            Sse.Store(dst, Sse.LoadVector128(src));
            Sse2.StoreScalar((double*)(dst + 4), Sse2.LoadScalarVector128((double*)(src + 4)));
        }
    }

    /// <summary>Sixteen contiguous floats per k (a plain B) → for each k sixteen floats at dst + k·ldd.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackCols16(float* src, nint ld, int kc, float* dst, nint ldd)
    {
        for (int k = 0; k < kc; k++, src += ld, dst += ldd)
        {
            Avx.Store(dst, Avx.LoadVector256(src));
            Avx.Store(dst + 8, Avx.LoadVector256(src + 8));
        }
    }

    /// <summary>Eight rows contiguous in k (a transposed B) → for each k eight floats at dst + k·ldd: 8×8 blocks
    /// transposed in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackRows8(float* src, nint ld, int kc, float* dst, nint ldd)
    {
        int k = 0;
        for (; k + 8 <= kc; k += 8) Transpose8x8(src + k, ld, dst + k * ldd, ldd);
        for (; k < kc; k++)
        {
            float* d = dst + k * ldd;
            for (int j = 0; j < 8; j++) d[j] = src[j * ld + k];
        }
    }

    /// <summary>d[k*ldd + r] = s[r*lds + k] for an 8×8 block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8(float* s, nint lds, float* d, nint ldd)
    {
        Vector256<float> x0 = Avx.LoadVector256(s), x1 = Avx.LoadVector256(s + lds);
        Vector256<float> x2 = Avx.LoadVector256(s + 2 * lds), x3 = Avx.LoadVector256(s + 3 * lds);
        Vector256<float> x4 = Avx.LoadVector256(s + 4 * lds), x5 = Avx.LoadVector256(s + 5 * lds);
        Vector256<float> x6 = Avx.LoadVector256(s + 6 * lds), x7 = Avx.LoadVector256(s + 7 * lds);
        Vector256<float> t0 = Avx.UnpackLow(x0, x1), t1 = Avx.UnpackHigh(x0, x1);
        Vector256<float> t2 = Avx.UnpackLow(x2, x3), t3 = Avx.UnpackHigh(x2, x3);
        Vector256<float> t4 = Avx.UnpackLow(x4, x5), t5 = Avx.UnpackHigh(x4, x5);
        Vector256<float> t6 = Avx.UnpackLow(x6, x7), t7 = Avx.UnpackHigh(x6, x7);
        Vector256<float> s0 = Avx.Shuffle(t0, t2, 0x44), s1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> s2 = Avx.Shuffle(t1, t3, 0x44), s3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> s4 = Avx.Shuffle(t4, t6, 0x44), s5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> s6 = Avx.Shuffle(t5, t7, 0x44), s7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(d, Avx.Permute2x128(s0, s4, 0x20));
        Avx.Store(d + ldd, Avx.Permute2x128(s1, s5, 0x20));
        Avx.Store(d + 2 * ldd, Avx.Permute2x128(s2, s6, 0x20));
        Avx.Store(d + 3 * ldd, Avx.Permute2x128(s3, s7, 0x20));
        Avx.Store(d + 4 * ldd, Avx.Permute2x128(s0, s4, 0x31));
        Avx.Store(d + 5 * ldd, Avx.Permute2x128(s1, s5, 0x31));
        Avx.Store(d + 6 * ldd, Avx.Permute2x128(s2, s6, 0x31));
        Avx.Store(d + 7 * ldd, Avx.Permute2x128(s3, s7, 0x31));
    }

    private static int RoundUp(int x, int m) => (x + m - 1) / m * m;

    // ------------------------------------------------------------------------------------------- kernels

    /// <summary>Portable scalar fallback (no SIMD); same packing, same per-element K order.</summary>
    private struct Scalar4x4 : IMicroKernel
    {
        public static int MR => 4;
        public static int NR => 4;
        public static int KC => 256;
        public static int MC => 128;
        public static int NC => 1024;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run(nint kc, float* a, float* b, float* c, nint ldc, float alpha, bool add)
        {
            float* acc = stackalloc float[16];
            for (int i = 0; i < 16; i++) acc[i] = 0;
            for (nint k = 0; k < kc; k++, a += 4, b += 4)
                for (int r = 0; r < 4; r++)
                    for (int j = 0; j < 4; j++) acc[r * 4 + j] = MathF.FusedMultiplyAdd(a[r], b[j], acc[r * 4 + j]);
            for (int r = 0; r < 4; r++)
                for (int j = 0; j < 4; j++)
                {
                    float* p = c + r * ldc + j;
                    *p = add ? MathF.FusedMultiplyAdd(acc[r * 4 + j], alpha, *p) : acc[r * 4 + j] * alpha;
                }
        }
    }

    /// <summary>Vector256 + FMA, 6 rows × 16 columns: 12 ymm accumulators, 2 B loads and 6 broadcasts per k.</summary>
    private struct K6x16 : IMicroKernel
    {
        public static int MR => 6;
        public static int NR => 16;
        public static int KC => 256;
        public static int MC => 144;
        public static int NC => 2048;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run(nint kc, float* a, float* b, float* c, nint ldc, float alpha, bool add)
        {
            if (Sse.IsSupported)
            {
                // C's tile is needed only at the end: fetch its lines while the FMAs run.
                float* p = c;
                for (int r = 0; r < 6; r++, p += ldc) { Sse.Prefetch0(p); Sse.Prefetch0(p + 15); }
            }
            Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
            Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
            for (nint k = 0; k < kc; k++)
            {
                Vector256<float> b0 = Vector256.Load(b), b1 = Vector256.Load(b + 8);
                Vector256<float> ai = Vector256.Create(a[0]);
                c00 = Fma.MultiplyAdd(ai, b0, c00); c01 = Fma.MultiplyAdd(ai, b1, c01);
                ai = Vector256.Create(a[1]);
                c10 = Fma.MultiplyAdd(ai, b0, c10); c11 = Fma.MultiplyAdd(ai, b1, c11);
                ai = Vector256.Create(a[2]);
                c20 = Fma.MultiplyAdd(ai, b0, c20); c21 = Fma.MultiplyAdd(ai, b1, c21);
                ai = Vector256.Create(a[3]);
                c30 = Fma.MultiplyAdd(ai, b0, c30); c31 = Fma.MultiplyAdd(ai, b1, c31);
                ai = Vector256.Create(a[4]);
                c40 = Fma.MultiplyAdd(ai, b0, c40); c41 = Fma.MultiplyAdd(ai, b1, c41);
                ai = Vector256.Create(a[5]);
                c50 = Fma.MultiplyAdd(ai, b0, c50); c51 = Fma.MultiplyAdd(ai, b1, c51);
                a += 6; b += 16;
            }
            Vector256<float> va = Vector256.Create(alpha);
            Store2(c, c00, c01, va, add); c += ldc;
            Store2(c, c10, c11, va, add); c += ldc;
            Store2(c, c20, c21, va, add); c += ldc;
            Store2(c, c30, c31, va, add); c += ldc;
            Store2(c, c40, c41, va, add); c += ldc;
            Store2(c, c50, c51, va, add);
        }
    }

    /// <summary>Vector512 + FMA, 6 rows × 32 columns: 12 zmm accumulators.</summary>
    private struct K6x32 : IMicroKernel
    {
        public static int MR => 6;
        public static int NR => 32;
        public static int KC => 128;
        public static int MC => 144;
        public static int NC => 2048;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run(nint kc, float* a, float* b, float* c, nint ldc, float alpha, bool add)
        {
            if (Sse.IsSupported)
            {
                // C's tile is needed only at the end: fetch its lines while the FMAs run.
                float* p = c;
                for (int r = 0; r < 6; r++, p += ldc) { Sse.Prefetch0(p + 0); Sse.Prefetch0(p + 16); Sse.Prefetch0(p + 31); }
            }
            Vector512<float> c0_0 = default, c0_1 = default, c1_0 = default, c1_1 = default, c2_0 = default, c2_1 = default;
            Vector512<float> c3_0 = default, c3_1 = default, c4_0 = default, c4_1 = default, c5_0 = default, c5_1 = default;
            for (nint k = 0; k < kc; k++)
            {
                Vector512<float> b0 = Vector512.Load(b + 0), b1 = Vector512.Load(b + 16);
                Vector512<float> ai;
                ai = Vector512.Create(a[0]);
                c0_0 = Vector512.FusedMultiplyAdd(ai, b0, c0_0); c0_1 = Vector512.FusedMultiplyAdd(ai, b1, c0_1);
                ai = Vector512.Create(a[1]);
                c1_0 = Vector512.FusedMultiplyAdd(ai, b0, c1_0); c1_1 = Vector512.FusedMultiplyAdd(ai, b1, c1_1);
                ai = Vector512.Create(a[2]);
                c2_0 = Vector512.FusedMultiplyAdd(ai, b0, c2_0); c2_1 = Vector512.FusedMultiplyAdd(ai, b1, c2_1);
                ai = Vector512.Create(a[3]);
                c3_0 = Vector512.FusedMultiplyAdd(ai, b0, c3_0); c3_1 = Vector512.FusedMultiplyAdd(ai, b1, c3_1);
                ai = Vector512.Create(a[4]);
                c4_0 = Vector512.FusedMultiplyAdd(ai, b0, c4_0); c4_1 = Vector512.FusedMultiplyAdd(ai, b1, c4_1);
                ai = Vector512.Create(a[5]);
                c5_0 = Vector512.FusedMultiplyAdd(ai, b0, c5_0); c5_1 = Vector512.FusedMultiplyAdd(ai, b1, c5_1);
                a += 6; b += 32;
            }
            Vector512<float> va = Vector512.Create(alpha);
            StoreV(c + 0, c0_0, va, add);
            StoreV(c + 16, c0_1, va, add);
            c += ldc;
            StoreV(c + 0, c1_0, va, add);
            StoreV(c + 16, c1_1, va, add);
            c += ldc;
            StoreV(c + 0, c2_0, va, add);
            StoreV(c + 16, c2_1, va, add);
            c += ldc;
            StoreV(c + 0, c3_0, va, add);
            StoreV(c + 16, c3_1, va, add);
            c += ldc;
            StoreV(c + 0, c4_0, va, add);
            StoreV(c + 16, c4_1, va, add);
            c += ldc;
            StoreV(c + 0, c5_0, va, add);
            StoreV(c + 16, c5_1, va, add);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreV(float* c, Vector256<float> x, Vector256<float> alpha, bool add)
    {
        if (add) Vector256.Store(Vector256.FusedMultiplyAdd(x, alpha, Vector256.Load(c)), c);
        else Vector256.Store(x * alpha, c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreV(float* c, Vector512<float> x, Vector512<float> alpha, bool add)
    {
        if (add) Vector512.Store(Vector512.FusedMultiplyAdd(x, alpha, Vector512.Load(c)), c);
        else Vector512.Store(x * alpha, c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store2(float* c, Vector256<float> x0, Vector256<float> x1, Vector256<float> alpha, bool add)
    {
        if (add)
        {
            Vector256.Store(Fma.MultiplyAdd(x0, alpha, Vector256.Load(c)), c);
            Vector256.Store(Fma.MultiplyAdd(x1, alpha, Vector256.Load(c + 8)), c + 8);
        }
        else
        {
            Vector256.Store(x0 * alpha, c);
            Vector256.Store(x1 * alpha, c + 8);
        }
    }
}
