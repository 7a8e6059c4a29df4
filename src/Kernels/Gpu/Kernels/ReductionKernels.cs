// Shared reduction shapes of the ILGPU backend (a warp, or one thread, per row; column chunks) and deterministic column sums.
using ILGPU;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu.Kernels;

/// <summary>Row reductions (<see cref="LayerNormKernels"/>, <see cref="AttentionKernels"/> softmax) give each row Width threads:
/// a warp on a GPU (lanes stride the row, warp-shuffle butterflies reduce), one thread on the CPU accelerator (no
/// cross-thread traffic; its shuffles are OS-thread barriers); <see cref="RowOf"/>, <see cref="LaneOf"/> place a thread.
/// Column sums are two-stage and deterministic: stage 1 reduces chunks of <see cref="ColChunk"/> rows in groups of
/// 32 columns × (group size / 32) row slices (8 on a GPU, 1 on the CPU accelerator) into partials (⌈N/64⌉, C);
/// stage 2 adds the partials in chunk order.</summary>
internal static class ReductionKernels
{
    public const int Threads = 256, RowsPerGroup = 8, ColChunk = 64;

    /// <summary>Row of the calling thread when <paramref name="width"/> consecutive threads (a warp, or one thread) share a row.</summary>
    internal static int RowOf(int width) => Grid.GlobalIndex.X / width;

    /// <summary>Lane of the calling thread within its row's threads.</summary>
    internal static int LaneOf(int width) => Grid.GlobalIndex.X % width;

    /// <summary>Stage 1 of a column sum: partial[chunk, c] = Σ over the chunk's rows of x[r, c].</summary>
    public static void ColSumPartial(ArrayView<float> partial, ArrayView<float> x, int n, int cdim)
    {
        var sh = SharedMemory.Allocate<float>(Threads);
        int lane = Group.IdxX & 31, slice = Group.IdxX >> 5, slices = Group.DimX >> 5;
        int col = Grid.IdxX * 32 + lane, r0 = Grid.IdxY * ColChunk;
        float s = 0f;
        if (col < cdim)
            for (int k = 0; k < ColChunk / slices; k++)
            {
                int r = r0 + slice + slices * k;
                if (r < n) s += x[r * cdim + col];
            }
        sh[Group.IdxX] = s;
        Group.Barrier();
        if (slice == 0 && col < cdim)
        {
            float t = 0f;
            for (int k = 0; k < slices; k++) t += sh[k * 32 + lane];
            partial[Grid.IdxY * cdim + col] = t;
        }
    }

    /// <summary>Stage 2: dst[c] += Σ_chunk partial[chunk, c], chunks in order.</summary>
    public static void ColSumFinish(ArrayView<float> dst, ArrayView<float> partial, int chunks, int cdim)
    {
        for (int col = Grid.GlobalIndex.X; col < cdim; col += ElementwiseKernels.Stride)
        {
            float t = 0f;
            for (int k = 0; k < chunks; k++) t += partial[k * cdim + col];
            dst[col] += t;
        }
    }

}
