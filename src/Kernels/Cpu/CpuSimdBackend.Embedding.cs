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
        var job = new EmbeddingJob { Out = S(output), Ids = id, TypeIds = tid, Word = S(wordEmb), Pos = S(posEmb), Type = S(typeEmb), T = T, C = C };
        CpuParallel.ForRange(bt, ref job, Parts((long)bt * C));
    }

    /// <summary>Tokens [start, end) of (B·T): out = word[id] + pos[t] + type[typeId].</summary>
    private ref struct EmbeddingJob : IParallelRangeJob
    {
        public Span<float> Out;
        public ReadOnlySpan<int> Ids, TypeIds;
        public ReadOnlySpan<float> Word, Pos, Type;
        public int T, C;

        public readonly void Execute(int start, int end, int part)
        {
            int C = this.C;
            for (int i = start; i < end; i++)
            {
                Span<float> orow = Out.Slice(i * C, C);
                int type = TypeIds.IsEmpty ? 0 : TypeIds[i];
                TensorPrimitives.Add(Word.Slice(Ids[i] * C, C), Pos.Slice(i % T * C, C), orow);
                TensorPrimitives.Add(orow, Type.Slice(type * C, C), orow);
            }
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
        int parts = Math.Min(Parts((long)bt * C), (C + 7) / 8);
        var job = new EmbeddingBackwardJob
        {
            DWord = S(dWordEmb), DPos = S(dPosEmb), DType = S(dTypeEmb), Dy = S(dOutput), Ids = id, TypeIds = tid,
            BT = bt, T = T, C = C, Count = parts,
        };
        CpuParallel.ForRange(parts, ref job, parts);
    }

    /// <summary>Index p of [0, Count) scatters the columns ColumnRange(C, Count, p) of every token, in (b, t) order:
    /// each table element is summed by one thread in the same order whatever the thread count (ids may repeat).</summary>
    private ref struct EmbeddingBackwardJob : IParallelRangeJob
    {
        public Span<float> DWord, DPos, DType;
        public ReadOnlySpan<float> Dy;
        public ReadOnlySpan<int> Ids, TypeIds;
        public int BT, T, C, Count;

        public readonly void Execute(int start, int end, int part)
        {
            int C = this.C;
            for (int p = start; p < end; p++)
            {
                var (c0, c1) = ColumnRange(C, Count, p);
                int w = c1 - c0;
                if (w <= 0) continue;
                for (int i = 0; i < BT; i++)
                {
                    ReadOnlySpan<float> g = Dy.Slice(i * C + c0, w);
                    if (!DWord.IsEmpty) { Span<float> r = DWord.Slice(Ids[i] * C + c0, w); TensorPrimitives.Add(r, g, r); }
                    if (!DPos.IsEmpty) { Span<float> r = DPos.Slice(i % T * C + c0, w); TensorPrimitives.Add(r, g, r); }
                    if (!DType.IsEmpty) { Span<float> r = DType.Slice((TypeIds.IsEmpty ? 0 : TypeIds[i]) * C + c0, w); TensorPrimitives.Add(r, g, r); }
                }
            }
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
