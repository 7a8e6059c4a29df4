// ILGPU backend BERT embeddings: gather forward, deterministic scatter-add backward (no atomics).
using System.Runtime.CompilerServices;
using FastRec.Kernels.Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu;

public sealed partial class IlgpuBackend
{
    // ---------------------------------------------------------------- embeddings

    /// <inheritdoc/>
    public void EmbeddingForward(View<float> output, View<int> ids, View<int> typeIds,
                                 View<float> wordEmb, View<float> posEmb, View<float> typeEmb, int B, int T, int C)
    {
        var (v, tv) = Check.EmbeddingForward(output, ids, typeIds, wordEmb, posEmb, typeEmb, B, T, C);
        Check.Ids(Mirror(ids), v, T, "ids", "wordEmb");
        if (!typeIds.IsNone) Check.Ids(Mirror(typeIds), tv, T, "typeIds", "typeEmb");
        var p = new EmbedArgs { T = T, C = C, V = v, TV = tv, HasType = typeIds.IsNone ? 0 : 1 };
        Run(EmbeddingGather)(_stream, Flat(B * T * C), Arr(output), Arr(ids), OptI(typeIds), Arr(wordEmb), Arr(posEmb), Arr(typeEmb), p, B * T * C);
    }

    /// <inheritdoc/>
    public void EmbeddingBackward(View<float> dWordEmb, View<float> dPosEmb, View<float> dTypeEmb,
                                  View<float> dOutput, View<int> ids, View<int> typeIds, int B, int T, int C)
    {
        var (v, tv) = Check.EmbeddingBackward(dWordEmb, dPosEmb, dTypeEmb, dOutput, ids, typeIds, B, T, C);
        if (!dWordEmb.IsNone) Check.Ids(Mirror(ids), v, T, "ids", "dWordEmb");
        if (!dTypeEmb.IsNone && !typeIds.IsNone) Check.Ids(Mirror(typeIds), tv, T, "typeIds", "dTypeEmb");
        var dOut = Arr(dOutput);
        int n = B * T;
        if (!dWordEmb.IsNone) ScatterRows(Arr(dWordEmb), v, dOut, Arr(ids), true, n, C);
        if (!dTypeEmb.IsNone) ScatterRows(Arr(dTypeEmb), tv, dOut, OptI(typeIds), !typeIds.IsNone, n, C);
        if (!dPosEmb.IsNone) Run(PositionGrad)(_stream, Flat(T * C), Arr(dPosEmb).SubView(0, (long)T * C), dOut, B, T, C);
    }

    /// <summary>The host mirror of an id view (kept by Upload): ids are checked there, with no device round-trip.</summary>
    private ReadOnlySpan<int> Mirror(View<int> ids, [CallerArgumentExpression(nameof(ids))] string name = "")
    {
        Arr(ids, name);
        return ((GpuBuffer<int>)ids.Buffer!).Mirror!.AsSpan(checked((int)ids.Offset), ids.Length);
    }

    private void ScatterRows(ArrayView<float> table, int rows, ArrayView<float> dOut, ArrayView<int> ids, bool hasIds, int n, int c)
    {
        var links = ScratchI(3L * n);
        var partial = ScratchF((long)n * c);
        int h = hasIds ? 1 : 0;
        Run(Link)(_stream, Flat(n), links, ids, n, rows, h);
        Run(ChunkSum)(_stream, Flat(n * c), partial, dOut, links, n, c);
        Run(HeadAdd)(_stream, Flat(n * c), table, partial, links, ids, n, c, rows, h);
    }
}
