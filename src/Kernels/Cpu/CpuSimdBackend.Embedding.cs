// CPU backend BERT embeddings: word + position + token-type gather (forward) and deterministic scatter-add (backward).
using System.Numerics.Tensors;

namespace FastRec.Kernels.Cpu;

public sealed partial class CpuSimdBackend
{
    /// <inheritdoc/>
    public void EmbeddingForward(View<float> output, View<int> ids, View<int> typeIds,
        View<float> wordEmb, View<float> posEmb, View<float> typeEmb, int B, int T, int C)
    {
        Check.Dims("EmbeddingForward(B, T, C)", B, T, C);
        int bt = checked(B * T);
        Check.Len(output, (long)bt * C, "(B, T, C)");
        Check.Len(ids, bt, "(B, T)");
        Check.LenOpt(typeIds, bt, "(B, T)");
        int V = TableRows(wordEmb, C, "wordEmb");
        int P = TableRows(posEmb, C, "posEmb");
        int TV = TableRows(typeEmb, C, "typeEmb");
        if (T > P) throw new ShapeException($"posEmb: the table has {P} positions, fewer than T = {T}");
        ReadOnlySpan<int> id = S(ids), tid = S(typeIds);
        CheckIds(id, V, T, "ids", "wordEmb");
        if (!typeIds.IsNone) CheckIds(tid, TV, T, "typeIds", "typeEmb");
        Span<float> o = S(output);
        ReadOnlySpan<float> w = S(wordEmb), p = S(posEmb), ty = S(typeEmb);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
            {
                int i = b * T + t;
                Span<float> orow = o.Slice(i * C, C);
                int type = typeIds.IsNone ? 0 : tid[i];
                TensorPrimitives.Add(w.Slice(id[i] * C, C), p.Slice(t * C, C), orow);
                TensorPrimitives.Add(orow, ty.Slice(type * C, C), orow);
            }
    }

    /// <inheritdoc/>
    public void EmbeddingBackward(View<float> dWordEmb, View<float> dPosEmb, View<float> dTypeEmb,
        View<float> dOutput, View<int> ids, View<int> typeIds, int B, int T, int C)
    {
        Check.Dims("EmbeddingBackward(B, T, C)", B, T, C);
        int bt = checked(B * T);
        Check.Len(dOutput, (long)bt * C, "(B, T, C)");
        Check.Len(ids, bt, "(B, T)");
        Check.LenOpt(typeIds, bt, "(B, T)");
        int V = dWordEmb.IsNone ? int.MaxValue : TableRows(dWordEmb, C, "dWordEmb");
        int P = dPosEmb.IsNone ? int.MaxValue : TableRows(dPosEmb, C, "dPosEmb");
        int TV = dTypeEmb.IsNone ? int.MaxValue : TableRows(dTypeEmb, C, "dTypeEmb");
        if (T > P) throw new ShapeException($"dPosEmb: the table has {P} positions, fewer than T = {T}");
        ReadOnlySpan<int> id = S(ids), tid = S(typeIds);
        if (!dWordEmb.IsNone) CheckIds(id, V, T, "ids", "dWordEmb");
        if (!dTypeEmb.IsNone && !typeIds.IsNone) CheckIds(tid, TV, T, "typeIds", "dTypeEmb");
        ReadOnlySpan<float> dy = S(dOutput);
        Span<float> dw = S(dWordEmb), dp = S(dPosEmb), dt = S(dTypeEmb);
        // Fixed order: b, then t, each row added in turn.
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
            {
                int i = b * T + t;
                ReadOnlySpan<float> g = dy.Slice(i * C, C);
                if (!dw.IsEmpty) { Span<float> r = dw.Slice(id[i] * C, C); TensorPrimitives.Add(r, g, r); }
                if (!dp.IsEmpty) { Span<float> r = dp.Slice(t * C, C); TensorPrimitives.Add(r, g, r); }
                if (!dt.IsEmpty) { Span<float> r = dt.Slice((typeIds.IsNone ? 0 : tid[i]) * C, C); TensorPrimitives.Add(r, g, r); }
            }
    }

    /// <summary>Rows of a (rows, C) table; its length must be a positive multiple of C.</summary>
    private static int TableRows(View<float> table, int C, string name)
    {
        if (table.IsNone) throw new ShapeException($"{name}: required tensor is missing (expected (rows, C = {C}))");
        if (table.Length == 0 || table.Length % C != 0)
            throw new ShapeException($"{name}: expected (rows, C = {C}) elements, got {table.Length} (not a positive multiple of C)");
        return table.Length / C;
    }

    /// <summary>Every id in [0, rows), else ArgumentOutOfRangeException naming the id, its position and the table size.</summary>
    private static void CheckIds(ReadOnlySpan<int> ids, int rows, int T, string name, string table)
    {
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)rows)
                throw new ArgumentOutOfRangeException(name,
                    $"{name}: id {ids[i]} at position (b={i / T}, t={i % T}) is outside the table {table} of {rows} rows");
    }
}
