// Tiled SGEMM for the ILGPU backend: 64×64 block tiles staged in shared memory, 4×4 register blocking per thread.
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
