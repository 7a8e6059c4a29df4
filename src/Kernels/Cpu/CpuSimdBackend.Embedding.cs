// CPU backend BERT embeddings: word + position + token-type gather (forward) and deterministic scatter-add (backward).
using System.Numerics.Tensors;

namespace FastRec.Kernels.Cpu;

public sealed partial class CpuSimdBackend
{
    /// <inheritdoc/>
    public void EmbeddingForward(View<float> output, View<int> ids, View<int> typeIds,
        View<float> wordEmb, View<float> posEmb, View<float> typeEmb, int B, int T, int C)
    {
        var (V, TV) = Check.EmbeddingForward(output, ids, typeIds, wordEmb, posEmb, typeEmb, B, T, C);
        int bt = checked(B * T);
        ReadOnlySpan<int> id = S(ids), tid = S(typeIds);
        Check.Ids(id, V, T, "ids", "wordEmb");
        if (!typeIds.IsNone) Check.Ids(tid, TV, T, "typeIds", "typeEmb");
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
        var (V, TV) = Check.EmbeddingBackward(dWordEmb, dPosEmb, dTypeEmb, dOutput, ids, typeIds, B, T, C);
        int bt = checked(B * T);
        ReadOnlySpan<int> id = S(ids), tid = S(typeIds);
        if (!dWordEmb.IsNone) Check.Ids(id, V, T, "ids", "dWordEmb");
        if (!dTypeEmb.IsNone && !typeIds.IsNone) Check.Ids(tid, TV, T, "typeIds", "dTypeEmb");
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
}
