// Tiled SGEMM for the ILGPU backend: 64×64 and 128×128 block tiles in shared memory, 4×4 / 8×8 register blocking per thread.
using ILGPU;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu.Kernels;

/// <summary>Arguments of <see cref="GemmKernels.Tiled"/> (flags are ints: 0 = false). Strides are in elements.</summary>
internal struct GemmArgs
{
    public int M, N, K, Lda, Ldb, Ldc;
    public int StrideA, StrideB, StrideC;
    public float Alpha;
    public int TransA, TransB, Accumulate;
    /// <summary>1: bias[col] is added after alpha·AB (+C).</summary>
    public int HasBias;
    /// <summary>Epilogue activation (<see cref="ActCode"/>), applied last.</summary>
    public int Act;
}

/// <summary>Row-major strided-batched GEMM, C = act(alpha·op(A)·op(B) (+C) (+bias)).
/// Grid: (⌈N/64⌉, ⌈M/64⌉, batch) groups of 256 threads. Thread (tx, ty) of a 16×16 layout owns rows
/// ty + 16i and columns tx + 16j (i, j &lt; 4) of the block tile: conflict-free shared reads, coalesced C writes.</summary>
internal static class GemmKernels
{
    public const int BM = 64, BN = 64, BK = 16, Threads = 256;
    private const int LdsA = BM + 4, LdsB = BN + 4;

    public static void Tiled(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> bias, GemmArgs p)
    {
        var sa = SharedMemory.Allocate<float>(BK * LdsA);   // (BK, BM) A tile, k-major
        var sb = SharedMemory.Allocate<float>(BK * LdsB);   // (BK, BN) B tile, k-major
        int tid = Group.IdxX;
        int tx = tid & 15, ty = tid >> 4;
        int row0 = Grid.IdxY * BM, col0 = Grid.IdxX * BN, z = Grid.IdxZ;
        int aBase = z * p.StrideA, bBase = z * p.StrideB, cBase = z * p.StrideC;

        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;

        for (int k0 = 0; k0 < p.K; k0 += BK)
        {
            for (int l = 0; l < 4; l++)
            {
                int idx = tid + l * Threads;
                int m, k;
                if (p.TransA == 0) { m = idx >> 4; k = idx & 15; }   // A[M,K]: consecutive threads walk k
                else { k = idx >> 6; m = idx & 63; }                // A stored [K,M]: walk m
                int gm = row0 + m, gk = k0 + k;
                float v = 0f;
                if (gm < p.M && gk < p.K)
                    v = p.TransA == 0 ? a[aBase + gm * p.Lda + gk] : a[aBase + gk * p.Lda + gm];
                sa[k * LdsA + m] = v;

                int n;
                if (p.TransB == 0) { k = idx >> 6; n = idx & 63; }   // B[K,N]: walk n
                else { n = idx >> 4; k = idx & 15; }                // B stored [N,K]: walk k
                int gn = col0 + n;
                gk = k0 + k;
                float w = 0f;
                if (gn < p.N && gk < p.K)
                    w = p.TransB == 0 ? b[bBase + gk * p.Ldb + gn] : b[bBase + gn * p.Ldb + gk];
                sb[k * LdsB + n] = w;
            }
            Group.Barrier();

            for (int kk = 0; kk < BK; kk++)
            {
                int ao = kk * LdsA + ty, bo = kk * LdsB + tx;
                float a0 = sa[ao], a1 = sa[ao + 16], a2 = sa[ao + 32], a3 = sa[ao + 48];
                float b0 = sb[bo], b1 = sb[bo + 16], b2 = sb[bo + 32], b3 = sb[bo + 48];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            Group.Barrier();
        }

        int r = row0 + ty, cc = col0 + tx;
        StoreRow(c, bias, p, cBase, r, cc, c00, c01, c02, c03);
        StoreRow(c, bias, p, cBase, r + 16, cc, c10, c11, c12, c13);
        StoreRow(c, bias, p, cBase, r + 32, cc, c20, c21, c22, c23);
        StoreRow(c, bias, p, cBase, r + 48, cc, c30, c31, c32, c33);
    }

    public const int BM2 = 128, BN2 = 128, BK2 = 8;
    private const int LdsA2 = BM2 + 4, LdsB2 = BN2 + 4;

    /// <summary>Large problems: 128×128 block tiles, BK = 8, 256 threads each owning an 8×8 register tile (rows ty + 16i,
    /// columns tx + 16j): 16 shared loads feed 64 FMAs per k step (the 64×64 kernel: 8 for 16). Same semantics.</summary>
    public static void Tiled128(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> bias, GemmArgs p)
    {
        var sa = SharedMemory.Allocate<float>(BK2 * LdsA2);   // (BK2, BM2) A tile, k-major
        var sb = SharedMemory.Allocate<float>(BK2 * LdsB2);   // (BK2, BN2) B tile, k-major
        int tid = Group.IdxX;
        int tx = tid & 15, ty = tid >> 4;
        int row0 = Grid.IdxY * BM2, col0 = Grid.IdxX * BN2, z = Grid.IdxZ;
        int aBase = z * p.StrideA, bBase = z * p.StrideB, cBase = z * p.StrideC;
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c04 = 0, c05 = 0, c06 = 0, c07 = 0;
        float c10 = 0, c11 = 0, c12 = 0, c13 = 0, c14 = 0, c15 = 0, c16 = 0, c17 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c24 = 0, c25 = 0, c26 = 0, c27 = 0;
        float c30 = 0, c31 = 0, c32 = 0, c33 = 0, c34 = 0, c35 = 0, c36 = 0, c37 = 0;
        float c40 = 0, c41 = 0, c42 = 0, c43 = 0, c44 = 0, c45 = 0, c46 = 0, c47 = 0;
        float c50 = 0, c51 = 0, c52 = 0, c53 = 0, c54 = 0, c55 = 0, c56 = 0, c57 = 0;
        float c60 = 0, c61 = 0, c62 = 0, c63 = 0, c64 = 0, c65 = 0, c66 = 0, c67 = 0;
        float c70 = 0, c71 = 0, c72 = 0, c73 = 0, c74 = 0, c75 = 0, c76 = 0, c77 = 0;

        for (int k0 = 0; k0 < p.K; k0 += BK2)
        {
            for (int l = 0; l < 4; l++)
            {
                int idx = tid + l * Threads;
                int m, k;
                if (p.TransA == 0) { m = idx >> 3; k = idx & 7; }     // A[M,K]: consecutive threads walk k
                else { k = idx >> 7; m = idx & 127; }                 // A stored [K,M]: walk m
                int gm = row0 + m, gk = k0 + k;
                float v = 0f;
                if (gm < p.M && gk < p.K)
                    v = p.TransA == 0 ? a[aBase + gm * p.Lda + gk] : a[aBase + gk * p.Lda + gm];
                sa[k * LdsA2 + m] = v;

                int n;
                if (p.TransB == 0) { k = idx >> 7; n = idx & 127; }   // B[K,N]: walk n
                else { n = idx >> 3; k = idx & 7; }                   // B stored [N,K]: walk k
                int gn = col0 + n;
                gk = k0 + k;
                float w = 0f;
                if (gn < p.N && gk < p.K)
                    w = p.TransB == 0 ? b[bBase + gk * p.Ldb + gn] : b[bBase + gn * p.Ldb + gk];
                sb[k * LdsB2 + n] = w;
            }
            Group.Barrier();

            for (int kk = 0; kk < BK2; kk++)
            {
                int ao = kk * LdsA2 + ty, bo = kk * LdsB2 + tx;
                float a0 = sa[ao + 0], a1 = sa[ao + 16], a2 = sa[ao + 32], a3 = sa[ao + 48], a4 = sa[ao + 64], a5 = sa[ao + 80], a6 = sa[ao + 96], a7 = sa[ao + 112];
                float b0 = sb[bo + 0], b1 = sb[bo + 16], b2 = sb[bo + 32], b3 = sb[bo + 48], b4 = sb[bo + 64], b5 = sb[bo + 80], b6 = sb[bo + 96], b7 = sb[bo + 112];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3; c04 += a0 * b4; c05 += a0 * b5; c06 += a0 * b6; c07 += a0 * b7;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3; c14 += a1 * b4; c15 += a1 * b5; c16 += a1 * b6; c17 += a1 * b7;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3; c24 += a2 * b4; c25 += a2 * b5; c26 += a2 * b6; c27 += a2 * b7;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3; c34 += a3 * b4; c35 += a3 * b5; c36 += a3 * b6; c37 += a3 * b7;
                c40 += a4 * b0; c41 += a4 * b1; c42 += a4 * b2; c43 += a4 * b3; c44 += a4 * b4; c45 += a4 * b5; c46 += a4 * b6; c47 += a4 * b7;
                c50 += a5 * b0; c51 += a5 * b1; c52 += a5 * b2; c53 += a5 * b3; c54 += a5 * b4; c55 += a5 * b5; c56 += a5 * b6; c57 += a5 * b7;
                c60 += a6 * b0; c61 += a6 * b1; c62 += a6 * b2; c63 += a6 * b3; c64 += a6 * b4; c65 += a6 * b5; c66 += a6 * b6; c67 += a6 * b7;
                c70 += a7 * b0; c71 += a7 * b1; c72 += a7 * b2; c73 += a7 * b3; c74 += a7 * b4; c75 += a7 * b5; c76 += a7 * b6; c77 += a7 * b7;
            }
            Group.Barrier();
        }

        int r = row0 + ty, cc = col0 + tx;
        StoreRow8(c, bias, p, cBase, r + 0, cc, c00, c01, c02, c03, c04, c05, c06, c07);
        StoreRow8(c, bias, p, cBase, r + 16, cc, c10, c11, c12, c13, c14, c15, c16, c17);
        StoreRow8(c, bias, p, cBase, r + 32, cc, c20, c21, c22, c23, c24, c25, c26, c27);
        StoreRow8(c, bias, p, cBase, r + 48, cc, c30, c31, c32, c33, c34, c35, c36, c37);
        StoreRow8(c, bias, p, cBase, r + 64, cc, c40, c41, c42, c43, c44, c45, c46, c47);
        StoreRow8(c, bias, p, cBase, r + 80, cc, c50, c51, c52, c53, c54, c55, c56, c57);
        StoreRow8(c, bias, p, cBase, r + 96, cc, c60, c61, c62, c63, c64, c65, c66, c67);
        StoreRow8(c, bias, p, cBase, r + 112, cc, c70, c71, c72, c73, c74, c75, c76, c77);
    }

    private static void StoreRow8(ArrayView<float> c, ArrayView<float> bias, GemmArgs p, int cBase, int row, int col,
                                  float v0, float v1, float v2, float v3, float v4, float v5, float v6, float v7)
    {
        if (row >= p.M) return;
        int rb = cBase + row * p.Ldc;
        Store(c, bias, p, rb, col, v0);
        Store(c, bias, p, rb, col + 16, v1);
        Store(c, bias, p, rb, col + 32, v2);
        Store(c, bias, p, rb, col + 48, v3);
        Store(c, bias, p, rb, col + 64, v4);
        Store(c, bias, p, rb, col + 80, v5);
        Store(c, bias, p, rb, col + 96, v6);
        Store(c, bias, p, rb, col + 112, v7);
    }

    /// <summary>Small problems: one output element per thread (grid-stride over batch·M·N), dot product straight from
    /// global memory, no shared memory or barriers. For GEMMs smaller than one 64×64 tile (the MLP head, the pooler at
    /// small batch) and for the CPU accelerator, where every barrier is an OS-thread rendezvous.</summary>
    public static void Small(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> bias, GemmArgs p, int total)
    {
        int mn = p.M * p.N;
        for (int idx = Grid.GlobalIndex.X; idx < total; idx += Grid.DimX * Group.DimX)
        {
            int z = idx / mn, rem = idx - z * mn;
            int row = rem / p.N, col = rem - row * p.N;
            int ab = z * p.StrideA, bb = z * p.StrideB;
            float acc = 0f;
            for (int k = 0; k < p.K; k++)
            {
                float av = p.TransA == 0 ? a[ab + row * p.Lda + k] : a[ab + k * p.Lda + row];
                float bv = p.TransB == 0 ? b[bb + k * p.Ldb + col] : b[bb + col * p.Ldb + k];
                acc += av * bv;
            }
            Store(c, bias, p, z * p.StrideC + row * p.Ldc, col, acc);
        }
    }

    private static void StoreRow(ArrayView<float> c, ArrayView<float> bias, GemmArgs p, int cBase, int row, int col,
                                 float v0, float v1, float v2, float v3)
    {
        if (row >= p.M) return;
        Store(c, bias, p, cBase + row * p.Ldc, col, v0);
        Store(c, bias, p, cBase + row * p.Ldc, col + 16, v1);
        Store(c, bias, p, cBase + row * p.Ldc, col + 32, v2);
        Store(c, bias, p, cBase + row * p.Ldc, col + 48, v3);
    }

    private static void Store(ArrayView<float> c, ArrayView<float> bias, GemmArgs p, int rowBase, int col, float acc)
    {
        if (col >= p.N) return;
        int i = rowBase + col;
        float v = p.Alpha * acc;
        if (p.Accumulate != 0) v += c[i];
        if (p.HasBias != 0) v += bias[col];
        c[i] = GpuMath.Act(p.Act, v);
    }
}
