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

internal static unsafe class MicroKernels
{
    public static readonly GemmKernel Best = Fma.IsSupported && Avx2.IsSupported ? GemmKernel.V256x6x16 : GemmKernel.Scalar4x4;

    /// <summary>Whether this CPU has the instructions kernel <paramref name="k"/> needs.</summary>
    public static bool IsSupported(GemmKernel k) => k switch
    {
        GemmKernel.V256x6x16 => Fma.IsSupported && Avx2.IsSupported,
        _ => true,
    };

    public static int MR(GemmKernel k) => k switch
    {
        GemmKernel.V256x6x16 => K6x16.MR,
        _ => Scalar4x4.MR,
    };

    public static int NR(GemmKernel k) => k switch
    {
        GemmKernel.V256x6x16 => K6x16.NR,
        _ => Scalar4x4.NR,
    };

    /// <summary>Computes rows [m0, m1) × columns [n0, n1) of C with kernel <paramref name="k"/> on this thread.</summary>
    public static void Compute(GemmKernel k, in CpuGemm.Problem g, int m0, int m1, int n0, int n1, CpuGemm.Scratch s)
    {
        switch (k)
        {
            case GemmKernel.V256x6x16: Compute<K6x16>(in g, m0, m1, n0, n1, s); break;
            default: Compute<Scalar4x4>(in g, m0, m1, n0, n1, s); break;
        }
    }

    private static void Compute<TK>(in CpuGemm.Problem g, int m0, int m1, int n0, int n1, CpuGemm.Scratch s)
        where TK : IMicroKernel
    {
        int MR = TK.MR, NR = TK.NR;
        int kcMax = Math.Min(TK.KC, g.K);
        int ncMax = Math.Min(TK.NC, RoundUp(n1 - n0, NR));
        int mcMax = Math.Min(TK.MC, RoundUp(m1 - m0, MR));
        s.Ensure((nint)mcMax * kcMax, (nint)ncMax * kcMax);
        float* packA = s.A, packB = s.B, tile = s.Tile;
        float alpha = g.Alpha;
        nint ldc = g.Ldc;
        for (int jc = n0; jc < n1; jc += TK.NC)
        {
            int nc = Math.Min(TK.NC, n1 - jc);
            for (int pc = 0; pc < g.K; pc += TK.KC)
            {
                int kc = Math.Min(TK.KC, g.K - pc);
                PackB<TK>(in g, pc, kc, jc, nc, packB);
                bool add = pc > 0 || g.Accumulate;
                for (int ic = m0; ic < m1; ic += TK.MC)
                {
                    int mc = Math.Min(TK.MC, m1 - ic);
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
                for (int r = 0; r < mr; r++)
                {
                    float* src = g.A + (nint)(ic + ir + r) * lda + pc;
                    float* d = dst + r;
                    for (int k = 0; k < kc; k++) d[(nint)k * MR] = src[k];
                }
            }
            else
            {
                // A stored [K, M]: for each k the MR rows are contiguous.
                float* src = g.A + (nint)pc * lda + ic + ir;
                for (int k = 0; k < kc; k++)
                {
                    float* d = dst + (nint)k * MR;
                    float* s = src + (nint)k * lda;
                    for (int r = 0; r < mr; r++) d[r] = s[r];
                }
            }
            if (mr < MR)
                for (int k = 0; k < kc; k++)
                    for (int r = mr; r < MR; r++) dst[(nint)k * MR + r] = 0f;
        }
    }

    /// <summary>Packs op(B)[pc..pc+kc, jc..jc+nc] into micro-panels of NR columns: panel p holds, for each k, NR floats.
    /// Columns past nc are zero.</summary>
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
                for (int k = 0; k < kc; k++)
                {
                    float* d = dst + (nint)k * NR;
                    float* s = src + (nint)k * ldb;
                    for (int j = 0; j < nr; j++) d[j] = s[j];
                }
            }
            else
            {
                // B stored [N, K]: each column j of op(B) is a contiguous row.
                for (int j = 0; j < nr; j++)
                {
                    float* s = g.B + (nint)(jc + jr + j) * ldb + pc;
                    float* d = dst + j;
                    for (int k = 0; k < kc; k++) d[(nint)k * NR] = s[k];
                }
            }
            if (nr < NR)
                for (int k = 0; k < kc; k++)
                    for (int j = nr; j < NR; j++) dst[(nint)k * NR + j] = 0f;
        }
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

        public static void Run(nint kc, float* a, float* b, float* c, nint ldc, float alpha, bool add)
        {
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
