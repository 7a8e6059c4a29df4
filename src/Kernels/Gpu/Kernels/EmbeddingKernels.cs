// Embedding gather and its deterministic scatter-add backward (chunked same-id chains, no atomics) for the ILGPU backend.
using ILGPU;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu.Kernels;

/// <summary>Arguments of <see cref="EmbeddingKernels.Forward"/>: V, TV = rows of the word and type tables.</summary>
internal struct EmbedArgs
{
    public int T, C, V, TV, HasType;
}

/// <summary>
/// Backward without atomics, in a fixed order: tokens are split in chunks of <see cref="Chunk"/>. <see cref="Link"/> finds,
/// for each token, whether it is the first of its id overall (global head) and within its chunk (chunk head), the next
/// token of the same id in its chunk, and the first token of the same id in a later chunk (= that chunk's head).
/// <see cref="ChunkSum"/> sums each chunk's chain into the chunk head's row of a (n, C) workspace;
/// <see cref="HeadAdd"/> walks the chunk heads of each id in order and adds the total to the table row once.
/// Longest serial chain: Chunk + n/Chunk, whatever the id frequencies (padding included).
/// Ids outside [0, rows) are treated as row 0, as in the forward.
/// </summary>
internal static class EmbeddingKernels
{
    public const int Chunk = 64;

    private static int Clamp(int id, int rows) => id < 0 || id >= rows ? 0 : id;

    /// <summary>out[i, c] = word[id, c] + pos[t, c] + type[tt, c]; element = (token, c).</summary>
    public static void Forward(ArrayView<float> output, ArrayView<int> ids, ArrayView<int> typeIds,
        ArrayView<float> word, ArrayView<float> pos, ArrayView<float> type, EmbedArgs p, int n)
    {
        for (int idx = Grid.GlobalIndex.X; idx < n; idx += ElementwiseKernels.Stride)
        {
            int i = idx / p.C, c = idx - i * p.C, t = i % p.T;
            int id = Clamp(ids[i], p.V);
            int tt = p.HasType != 0 ? Clamp(typeIds[i], p.TV) : 0;
            output[idx] = word[id * p.C + c] + pos[t * p.C + c] + type[tt * p.C + c];
        }
    }

    /// <summary>δpos[t, c] += Σ_b δout[b, t, c] (b in order); element = (t, c).</summary>
    public static void PositionGrad(ArrayView<float> dPos, ArrayView<float> dOut, int b, int t, int c)
    {
        for (int idx = Grid.GlobalIndex.X; idx < t * c; idx += ElementwiseKernels.Stride)
        {
            int tt = idx / c, cc = idx - tt * c;
            float s = 0f;
            for (int k = 0; k < b; k++) s += dOut[(k * t + tt) * c + cc];
            dPos[idx] += s;
        }
    }

    /// <summary>links[i] = flags (1 global head, 2 chunk head); links[n+i] = next same id in chunk; links[2n+i] = first
    /// same id in a later chunk (−1 = none). hasIds = 0: every id is 0.</summary>
    public static void Link(ArrayView<int> links, ArrayView<int> ids, int n, int rows, int hasIds)
    {
        for (int i = Grid.GlobalIndex.X; i < n; i += ElementwiseKernels.Stride) LinkOne(i, links, ids, n, rows, hasIds);
    }

    private static void LinkOne(int i, ArrayView<int> links, ArrayView<int> ids, int n, int rows, int hasIds)
    {
        int x = hasIds != 0 ? Clamp(ids[i], rows) : 0;
        int chunkStart = i / Chunk * Chunk;
        int chunkEnd = chunkStart + Chunk < n ? chunkStart + Chunk : n;
        int flags = 3;
        for (int j = 0; j < i; j++)
        {
            int y = hasIds != 0 ? Clamp(ids[j], rows) : 0;
            if (y == x)
            {
                flags &= ~1;
                if (j >= chunkStart) { flags = 0; break; }
            }
        }
        int nextIn = -1, nextHead = -1;
        for (int j = i + 1; j < n; j++)
        {
            int y = hasIds != 0 ? Clamp(ids[j], rows) : 0;
            if (y != x) continue;
            if (j < chunkEnd) { if (nextIn < 0) nextIn = j; }
            else { nextHead = j; break; }
        }
        links[i] = flags;
        links[n + i] = nextIn;
        links[2 * n + i] = nextHead;
    }

    /// <summary>For chunk heads: partial[i, c] = Σ of δout rows along the in-chunk chain, in token order.</summary>
    public static void ChunkSum(ArrayView<float> partial, ArrayView<float> dOut, ArrayView<int> links, int n, int c)
    {
        for (int idx = Grid.GlobalIndex.X; idx < n * c; idx += ElementwiseKernels.Stride)
        {
            int i = idx / c, cc = idx - i * c;
            if ((links[i] & 2) == 0) continue;
            float s = 0f;
            for (int j = i; j >= 0; j = links[n + j]) s += dOut[j * c + cc];
            partial[idx] = s;
        }
    }

    /// <summary>For global heads: table[id, c] += Σ of the chunk heads' partials of that id, in chunk order.</summary>
    public static void HeadAdd(ArrayView<float> table, ArrayView<float> partial, ArrayView<int> links,
        ArrayView<int> ids, int n, int c, int rows, int hasIds)
    {
        for (int idx = Grid.GlobalIndex.X; idx < n * c; idx += ElementwiseKernels.Stride)
        {
            int i = idx / c, cc = idx - i * c;
            if ((links[i] & 1) == 0) continue;
            float s = 0f;
            for (int j = i; j >= 0; j = links[2 * n + j]) s += partial[j * c + cc];
            int id = hasIds != 0 ? Clamp(ids[i], rows) : 0;
            table[id * c + cc] += s;
        }
    }
}
