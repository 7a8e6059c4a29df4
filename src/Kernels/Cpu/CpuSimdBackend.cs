// The production CPU backend: memory, GEMM, linear, strided copies and the pooler (other ops in the partial files beside it).
using System.Runtime.CompilerServices;
using System.Numerics.Tensors;

namespace FastRec.Kernels.Cpu;

/// <summary>
/// Production CPU implementation of <see cref="IBackend"/>: Vector256/FMA kernels written as operator structs driven by one
/// loop (<see cref="SimdLoop"/>), GEMMs through <see cref="CpuGemm.Sgemm"/>. Memory is <see cref="CpuBuffer{T}"/>.
/// <para>Steady-state calls allocate nothing on the managed heap. Results are deterministic and bitwise independent of
/// the thread count (<see cref="CpuParallel.Threads"/>): row ops split rows, elementwise ops split 8-aligned blocks,
/// reductions over rows (parameter gradients) split columns so each column is summed by one thread in row order, and
/// <see cref="GlobalNorm"/> sums fixed-size chunks in double, combined in chunk order. Nothing depends on buffer addresses.</para>
/// <para>Like a GPU stream, one instance is driven by one thread at a time (it keeps small reusable scratch).</para>
/// </summary>
public sealed partial class CpuSimdBackend : IBackend
{
    /// <inheritdoc/>
    public string Name => "cpu";

    // ---------------------------------------------------------------- threading
    /// <summary>Elements (or multiply-adds) a part should have before waking another thread pays.</summary>
    private const int Grain = 1 << 15;
    /// <summary>Elements per block of an elementwise loop (a multiple of 8, so the split never changes a vector's lanes).</summary>
    private const int Block = 1 << 11;

    /// <summary>Parts worth using for <paramref name="work"/> units: 1..Threads.</summary>
    private static int Parts(long work) => (int)Math.Clamp(work / Grain, 1, CpuParallel.Threads);

    /// <summary>Blocks of <see cref="Block"/> elements covering n.</summary>
    private static int Blocks(int n) => (n + Block - 1) / Block;

    /// <summary>Column range of part <paramref name="part"/> of <paramref name="parts"/> over C columns, 8-aligned.</summary>
    private static (int Start, int End) ColumnRange(int C, int parts, int part)
    {
        int groups = (C + 7) / 8;
        var (g0, g1) = CpuParallel.Partition(groups, parts, part);
        return (Math.Min(g0 * 8, C), Math.Min(g1 * 8, C));
    }

    /// <inheritdoc/>
    public void Dispose() { }

    // ---------------------------------------------------------------- view access
    /// <summary>The span of a view on this backend (empty for None); refuses buffers of another backend.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<T> S<T>(View<T> v, [CallerArgumentExpression(nameof(v))] string name = "") where T : unmanaged
    {
        if (v.Buffer is null) return Span<T>.Empty;
        if (v.Buffer is CpuBuffer<T> cpu && ReferenceEquals(cpu.Owner, this)) return cpu.Array.AsSpan((int)v.Offset, v.Length);
        throw Foreign(v.Buffer, name);
    }

    private static ArgumentException Foreign<T>(DeviceBuffer<T> buffer, string name) where T : unmanaged
        => new($"{name}: the buffer belongs to backend '{buffer.Owner.Name}' ({buffer.GetType().Name}), not to this 'cpu' backend", name);

    // ---------------------------------------------------------------- memory
    /// <inheritdoc/>
    public DeviceBuffer<T> Allocate<T>(long length) where T : unmanaged
    {
        if (length < 0 || length > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"length: a buffer holds 0..{Array.MaxLength} elements, asked for {length}");
        return new CpuBuffer<T>(this, length);
    }

    /// <inheritdoc/>
    public void Upload<T>(View<T> dst, ReadOnlySpan<T> src) where T : unmanaged
    {
        Check.Upload(dst, src.Length);
        src.CopyTo(S(dst));
    }

    /// <inheritdoc/>
    public void Download<T>(View<T> src, Span<T> dst) where T : unmanaged
    {
        Check.Download(src, dst.Length);
        S(src).CopyTo(dst);
    }

    /// <inheritdoc/>
    public void Zero(View<float> dst)
    {
        Check.Zero(dst);
        S(dst).Clear();
    }

    /// <inheritdoc/>
    public void Copy(View<float> dst, View<float> src)
    {
        Check.Copy(dst, src);
        S(src).CopyTo(S(dst));
    }

    /// <inheritdoc/>
    public void Synchronize() { }

    // ---------------------------------------------------------------- GEMM
    /// <inheritdoc/>
    public void Gemm(bool transA, bool transB, int M, int N, int K, float alpha,
        View<float> a, int lda, View<float> b, int ldb, bool accumulate, View<float> c, int ldc,
        int batch = 1, long strideA = 0, long strideB = 0, long strideC = 0)
    {
        Check.Gemm(transA, transB, M, N, K, a, ref lda, b, ref ldb, c, ref ldc, batch, strideA, strideB, strideC);
        // op(A) is M×K: stored rows × cols = transA ? K×M : M×K (likewise B: K×N or N×K).
        int rowsA = transA ? K : M, colsA = transA ? M : K;
        int rowsB = transB ? N : K, colsB = transB ? K : N;
        long spanA = (long)(rowsA - 1) * lda + colsA, spanB = (long)(rowsB - 1) * ldb + colsB, spanC = (long)(M - 1) * ldc + N;
        Span<float> sa = S(a), sb = S(b), sc = S(c);
        if (batch == 1)
            CpuGemm.Sgemm(transA, transB, M, N, K, alpha, sa[..(int)spanA], lda, sb[..(int)spanB], ldb, accumulate, sc[..(int)spanC], ldc);
        else
            CpuGemm.SgemmBatched(transA, transB, M, N, K, alpha,
                sa[..(int)((batch - 1) * strideA + spanA)], lda, sb[..(int)((batch - 1) * strideB + spanB)], ldb,
                accumulate, sc[..(int)((batch - 1) * strideC + spanC)], ldc, batch, strideA, strideB, strideC);
    }

    // ---------------------------------------------------------------- linear
    /// <inheritdoc/>
    public void LinearForward(View<float> output, View<float> input, View<float> weight, View<float> bias, int N, int IC, int OC)
    {
        Check.LinearForward(output, input, weight, bias, N, IC, OC);
        Span<float> o = S(output);
        if (!bias.IsNone)
        {
            Span<float> bs = S(bias);
            for (int r = 0; r < N; r++) bs.CopyTo(o.Slice(r * OC, OC));
        }
        // out(N,OC) = inp(N,IC) · W(OC,IC)ᵀ (+ the broadcast bias)
        CpuGemm.Sgemm(false, true, N, OC, IC, 1f, S(input), IC, S(weight), IC, !bias.IsNone, o, OC);
    }

    /// <inheritdoc/>
    public void LinearBackward(View<float> dInput, View<float> dWeight, View<float> dBias,
        View<float> dOutput, View<float> input, View<float> weight, int N, int IC, int OC)
    {
        Check.LinearBackward(dInput, dWeight, dBias, dOutput, input, weight, N, IC, OC);
        ReadOnlySpan<float> dout = S(dOutput);
        // δinput(N,IC) = δout(N,OC) · W(OC,IC)
        if (!dInput.IsNone) CpuGemm.Sgemm(false, false, N, IC, OC, 1f, dout, OC, S(weight), IC, false, S(dInput), IC);
        // δW(OC,IC) += δoutᵀ · inp
        if (!dWeight.IsNone) CpuGemm.Sgemm(true, false, OC, IC, N, 1f, dout, OC, S(input), IC, true, S(dWeight), IC);
        // δbias(OC) += Σ_rows δout
        if (!dBias.IsNone) AddColumnSums(S(dBias), dout, N, OC, OC);
    }

    /// <summary>acc[j] += Σ_r m[r·ld + j] for r &lt; rows, rows added one after another (fixed order). Columns are split
    /// across threads, so each column is summed by one thread in the same order whatever the thread count.</summary>
    private static void AddColumnSums(Span<float> acc, ReadOnlySpan<float> m, int rows, int cols, int ld)
    {
        int parts = Math.Min(Parts((long)rows * cols), (cols + 7) / 8);
        var job = new ColumnSumJob { Acc = acc, M = m, Rows = rows, Cols = cols, Ld = ld, Count = parts };
        CpuParallel.ForRange(parts, ref job, parts);
    }

    /// <summary>Index p of [0, Count) sums the columns <see cref="ColumnRange"/>(Cols, Count, p).</summary>
    private ref struct ColumnSumJob : IParallelRangeJob
    {
        public Span<float> Acc;
        public ReadOnlySpan<float> M;
        public int Rows, Cols, Ld, Count;

        public readonly void Execute(int start, int end, int part)
        {
            for (int p = start; p < end; p++)
            {
                var (c0, c1) = ColumnRange(Cols, Count, p);
                if (c0 >= c1) continue;
                Span<float> acc = Acc[c0..c1];
                for (int r = 0; r < Rows; r++)
                    TensorPrimitives.Add(acc, M.Slice(r * Ld + c0, c1 - c0), acc);
            }
        }
    }

    // ---------------------------------------------------------------- strided row copy
    /// <inheritdoc/>
    public void Copy2D(View<float> dst, int ldDst, int dstCol, View<float> src, int ldSrc, int srcCol, int rows, int cols, bool accumulate)
    {
        Check.Copy2D(dst, ldDst, dstCol, src, ldSrc, srcCol, rows, cols);
        if (ReferenceEquals(dst.Buffer, src.Buffer)
            && dst.Offset + dstCol < src.Offset + (long)(rows - 1) * ldSrc + srcCol + cols
            && src.Offset + srcCol < dst.Offset + (long)(rows - 1) * ldDst + dstCol + cols)
            throw new ArgumentException("dst: the destination rows overlap the source rows (copy through a separate buffer)", nameof(dst));
        Span<float> d = S(dst);
        ReadOnlySpan<float> s = S(src);
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> sr = s.Slice(r * ldSrc + srcCol, cols);
            Span<float> dr = d.Slice(r * ldDst + dstCol, cols);
            if (accumulate) TensorPrimitives.Add(dr, sr, dr);
            else sr.CopyTo(dr);
        }
    }

    // ---------------------------------------------------------------- pooler
    /// <inheritdoc/>
    public void PoolerForward(View<float> pooled, View<float> hidden, View<float> weight, View<float> bias, int B, int T, int C)
    {
        Check.PoolerForward(pooled, hidden, weight, bias, B, T, C);
        Span<float> p = S(pooled);
        if (!bias.IsNone)
        {
            Span<float> bs = S(bias);
            for (int r = 0; r < B; r++) bs.CopyTo(p.Slice(r * C, C));
        }
        // pooled(B,C) = hidden[:,0,:] (rows T·C apart) · W(C,C)ᵀ + bias, then tanh
        CpuGemm.Sgemm(false, true, B, C, C, 1f, S(hidden)[..((B - 1) * T * C + C)], T * C, S(weight), C, !bias.IsNone, p, C);
        SimdLoop.Map<TanhOp>(p, p);
    }

    /// <inheritdoc/>
    public void PoolerBackward(View<float> dHidden, View<float> dWeight, View<float> dBias, View<float> dPooled,
        View<float> pooled, View<float> hidden, View<float> weight, View<float> workspace, int B, int T, int C)
    {
        Check.PoolerBackward(dHidden, dWeight, dBias, dPooled, pooled, hidden, weight, workspace, B, T, C);
        // g(B,C) = δpooled ⊙ (1 − pooled²)
        Span<float> g = S(workspace)[..(B * C)];
        SimdLoop.Map<TanhBackwardOp>(S(dPooled), S(pooled), g);
        int span = (B - 1) * T * C + C;
        // δhidden[:,0,:] += g · W
        if (!dHidden.IsNone) CpuGemm.Sgemm(false, false, B, C, C, 1f, g, C, S(weight), C, true, S(dHidden)[..span], T * C);
        // δW(C,C) += gᵀ · hidden[:,0,:]
        if (!dWeight.IsNone) CpuGemm.Sgemm(true, false, C, C, B, 1f, g, C, S(hidden)[..span], T * C, true, S(dWeight), C);
        if (!dBias.IsNone) AddColumnSums(S(dBias), g, B, C, C);
    }
}
