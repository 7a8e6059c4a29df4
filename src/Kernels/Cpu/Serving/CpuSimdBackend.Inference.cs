// Inference-only multi-head attention on the CPU: straight from the (B, T, 3C) projections, no permute, no saved probabilities.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FastRec.Kernels.Cpu;

public sealed partial class CpuSimdBackend
{
    /// <summary>
    /// Multi-head self-attention for serving (no dropout, nothing saved for a backward): for every sequence b, head h and
    /// query row i &lt; <paramref name="queryRows"/>, output[b, i, h·HS..] = softmax_j(Q_i·K_jᵀ/√HS, mask) · V, with Q, K, V read in
    /// place from <paramref name="qkv"/> (B, T, 3C) = [Q | K | V] per token, as <see cref="IBackend.AttentionForward"/> takes it.
    /// <paramref name="queryRows"/> = T gives every position; 1 gives only [CLS] (all the pooler and head read). The output is
    /// (B, queryRows, C). Keys are masked as <see cref="IBackend.SoftmaxForward"/> does (mask empty = none). Each (b, h) is one
    /// job over <see cref="CpuParallel"/> (at most <paramref name="maxThreads"/>, 0 = all); per-thread scratch is reused, so
    /// steady-state calls allocate nothing. Results do not depend on the thread count.
    /// </summary>
    /// <exception cref="ShapeException">a length does not match the dimensions, or C is not a multiple of NH.</exception>
    public static unsafe void AttentionInference(ReadOnlySpan<float> qkv, ReadOnlySpan<float> mask, Span<float> output,
        int B, int T, int C, int NH, int queryRows, int maxThreads = 0)
    {
        Check.Dims("AttentionInference(B, T, C, NH, queryRows)", B, T, C, NH, queryRows);
        int HS = Check.HeadSize(C, NH, "AttentionInference");
        if (queryRows > T) throw new ShapeException($"queryRows: {queryRows} query rows asked for sequences of T = {T}");
        if (qkv.Length != 3L * B * T * C) throw new ShapeException($"qkv: expected (B={B}, T={T}, 3C={3 * C}) = {3L * B * T * C} elements, got {qkv.Length}");
        if (!mask.IsEmpty && mask.Length != (long)B * T) throw new ShapeException($"mask: expected (B={B}, T={T}) = {(long)B * T} elements, got {mask.Length}");
        if (output.Length != (long)B * queryRows * C)
            throw new ShapeException($"output: expected (B={B}, queryRows={queryRows}, C={C}) = {(long)B * queryRows * C} elements, got {output.Length}");
        fixed (float* x = qkv, m = mask, o = output)
        {
            var job = new AttentionInferenceJob
            {
                Qkv = x, Mask = mask.IsEmpty ? null : m, Out = o, T = T, C = C, NH = NH, HS = HS, R = queryRows,
                Scale = 1f / MathF.Sqrt(HS),
            };
            long work = (long)B * NH * queryRows * T * HS;
            int threads = work < (1 << 15) ? 1 : maxThreads > 0 ? maxThreads : 0;
            if (threads == 1) job.Execute(0, B * NH, 0);
            else CpuParallel.ForRange(B * NH, ref job, threads);
        }
    }

    private unsafe struct AttentionInferenceJob : IParallelRangeJob
    {
        public float* Qkv, Mask, Out;
        public int T, C, NH, HS, R;
        public float Scale;

        [ThreadStatic] private static float[]? t_scratch;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int start, int end, int part)
        {
            int T = this.T, HS = this.HS, C3 = 3 * C;
            int need = HS * T + 4 * T;
            var scratch = t_scratch;
            if (scratch is null || scratch.Length < need) t_scratch = scratch = new float[Math.Max(need, 4096)];
            fixed (float* sp = scratch)
            {
                float* kt = sp, s = sp + HS * T;   // K transposed (HS, T); four rows of scores (4, T)
                for (int bh = start; bh < end; bh++)
                {
                    int b = bh / NH, h = bh - b * NH;
                    float* seq = Qkv + (nint)b * T * C3;
                    float* k0 = seq + C + h * HS, v0 = seq + 2 * C + h * HS;
                    TransposeK(k0, C3, kt, T, HS);
                    // A mask of all ones masks nothing: the softmax then skips its compare-and-select (same values).
                    var maskRow = Mask is null || AllOnes(Mask + (nint)b * T, T) ? ReadOnlySpan<float>.Empty : new ReadOnlySpan<float>(Mask + (nint)b * T, T);
                    float* outBh = Out + (nint)b * R * C + h * HS;
                    for (int i = 0; i < R; i += 4)
                    {
                        int rows = Math.Min(4, R - i);
                        float* q = seq + (nint)i * C3 + h * HS;
                        if (rows == 4) Scores4(q, C3, kt, s, T, HS);
                        else
                            for (int r = 0; r < rows; r++) Scores(q + (nint)r * C3, kt, s + r * T, T, HS);
                        for (int r = 0; r < rows; r++)
                        {
                            var row = new Span<float>(s + r * T, T);
                            SoftmaxRow(row, maskRow, Scale, row);
                        }
                        int r2 = 0;
                        if (rows == 4 && HS % 32 == 0 && Vector256.IsHardwareAccelerated) { Mix4(s, T, v0, C3, outBh + (nint)i * C, C, T, HS); r2 = 4; }
                        for (; r2 + 2 <= rows; r2 += 2) Mix2(s + r2 * T, T, v0, C3, outBh + (nint)(i + r2) * C, C, T, HS);
                        if (r2 < rows) Mix(s + r2 * T, v0, C3, outBh + (nint)(i + r2) * C, T, HS);
                    }
                }
            }
        }

        /// <summary>kt[d, j] = k[j·ldk + d] for j &lt; T, d &lt; HS: 8×8 AVX transposes, then scalars for the ragged edges.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void TransposeK(float* k, int ldk, float* kt, int T, int HS)
        {
            int j = 0;
            if (System.Runtime.Intrinsics.X86.Avx.IsSupported)
                for (; j + 8 <= T; j += 8)
                {
                    int d = 0;
                    for (; d + 8 <= HS; d += 8) MicroKernels.Transpose8x8(k + (nint)j * ldk + d, ldk, kt + (nint)d * T + j, T);
                    for (; d < HS; d++)
                        for (int jj = j; jj < j + 8; jj++) kt[(nint)d * T + jj] = k[(nint)jj * ldk + d];
                }
            for (; j < T; j++)
                for (int d = 0; d < HS; d++) kt[(nint)d * T + j] = k[(nint)j * ldk + d];
        }

        private static bool AllOnes(float* m, int T)
        {
            for (int j = 0; j < T; j++) if (m[j] != 1f) return false;
            return true;
        }

        /// <summary>Four output rows, 32 columns at a time: o[r·ldo + d] = Σ_j p[r·ldp + j]·v[j·ldv + d] (HS a multiple of 32):
        /// 16 independent FMA chains, each V load shared by four rows. The same chain per element (keys in order) as
        /// <see cref="Mix"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Mix4(float* p, int ldp, float* v, int ldv, float* o, int ldo, int T, int HS)
        {
            float* p1 = p + ldp, p2 = p + 2 * ldp, p3 = p + 3 * ldp;
            for (int d = 0; d < HS; d += 32)
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
                Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, e0 = default, e1 = default, e2 = default, e3 = default;
                float* vj = v + d;
                for (int j = 0; j < T; j++, vj += ldv)
                {
                    var v0 = Vector256.Load(vj); var v1 = Vector256.Load(vj + 8); var v2 = Vector256.Load(vj + 16); var v3 = Vector256.Load(vj + 24);
                    var x = Vector256.Create(p[j]);
                    a0 = SimdMath.Fmadd(x, v0, a0); a1 = SimdMath.Fmadd(x, v1, a1); a2 = SimdMath.Fmadd(x, v2, a2); a3 = SimdMath.Fmadd(x, v3, a3);
                    x = Vector256.Create(p1[j]);
                    b0 = SimdMath.Fmadd(x, v0, b0); b1 = SimdMath.Fmadd(x, v1, b1); b2 = SimdMath.Fmadd(x, v2, b2); b3 = SimdMath.Fmadd(x, v3, b3);
                    x = Vector256.Create(p2[j]);
                    c0 = SimdMath.Fmadd(x, v0, c0); c1 = SimdMath.Fmadd(x, v1, c1); c2 = SimdMath.Fmadd(x, v2, c2); c3 = SimdMath.Fmadd(x, v3, c3);
                    x = Vector256.Create(p3[j]);
                    e0 = SimdMath.Fmadd(x, v0, e0); e1 = SimdMath.Fmadd(x, v1, e1); e2 = SimdMath.Fmadd(x, v2, e2); e3 = SimdMath.Fmadd(x, v3, e3);
                }
                a0.Store(o + d); a1.Store(o + d + 8); a2.Store(o + d + 16); a3.Store(o + d + 24);
                float* o1 = o + ldo, o2 = o + 2 * ldo, o3 = o + 3 * ldo;
                b0.Store(o1 + d); b1.Store(o1 + d + 8); b2.Store(o1 + d + 16); b3.Store(o1 + d + 24);
                c0.Store(o2 + d); c1.Store(o2 + d + 8); c2.Store(o2 + d + 16); c3.Store(o2 + d + 24);
                e0.Store(o3 + d); e1.Store(o3 + d + 8); e2.Store(o3 + d + 16); e3.Store(o3 + d + 24);
            }
        }

        /// <summary>Scores of four query rows (q rows <paramref name="ldq"/> apart) into s (4, T): blocks of 4 rows × 16 keys
        /// share each K load; the rest as <see cref="Scores"/>. The same FMA chain per element as <see cref="Scores"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Scores4(float* q, int ldq, float* kt, float* s, int T, int HS)
        {
            float* q1 = q + ldq, q2 = q + 2 * ldq, q3 = q + 3 * ldq;
            int j = 0;
            if (Vector256.IsHardwareAccelerated)
                for (; j + 16 <= T; j += 16)
                {
                    Vector256<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
                    float* kd = kt + j;
                    for (int d = 0; d < HS; d++, kd += T)
                    {
                        var k0 = Vector256.Load(kd);
                        var k1 = Vector256.Load(kd + 8);
                        var x = Vector256.Create(q[d]);
                        a0 = SimdMath.Fmadd(x, k0, a0); a1 = SimdMath.Fmadd(x, k1, a1);
                        x = Vector256.Create(q1[d]);
                        b0 = SimdMath.Fmadd(x, k0, b0); b1 = SimdMath.Fmadd(x, k1, b1);
                        x = Vector256.Create(q2[d]);
                        c0 = SimdMath.Fmadd(x, k0, c0); c1 = SimdMath.Fmadd(x, k1, c1);
                        x = Vector256.Create(q3[d]);
                        d0 = SimdMath.Fmadd(x, k0, d0); d1 = SimdMath.Fmadd(x, k1, d1);
                    }
                    a0.Store(s + j); a1.Store(s + j + 8);
                    b0.Store(s + T + j); b1.Store(s + T + j + 8);
                    c0.Store(s + 2 * T + j); c1.Store(s + 2 * T + j + 8);
                    d0.Store(s + 3 * T + j); d1.Store(s + 3 * T + j + 8);
                }
            if (j < T)
                for (int r = 0; r < 4; r++) ScoresFrom(q + (nint)r * ldq, kt, s + r * T, T, HS, j);
        }

        /// <summary>s[j] = Σ_d q[d]·kt[d, j] for j &lt; T (unscaled scores).</summary>
        private static void Scores(float* q, float* kt, float* s, int T, int HS) => ScoresFrom(q, kt, s, T, HS, 0);

        /// <summary>s[j] = Σ_d q[d]·kt[d, j] for j in [j0, T), 8-key blocks then scalars (one FMA chain per key, d in order).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void ScoresFrom(float* q, float* kt, float* s, int T, int HS, int j0)
        {
            int j = j0;
            if (Vector256.IsHardwareAccelerated)
                for (; j + 8 <= T; j += 8)
                {
                    Vector256<float> a0 = default;
                    float* kd = kt + j;
                    for (int d = 0; d < HS; d++, kd += T) a0 = SimdMath.Fmadd(Vector256.Create(q[d]), Vector256.Load(kd), a0);
                    a0.Store(s + j);
                }
            for (; j < T; j++)
            {
                float a = 0f;
                for (int d = 0; d < HS; d++) a = SimdMath.Fmadd(q[d], kt[d * T + j], a);
                s[j] = a;
            }
        }

        /// <summary>Two output rows at once: o[r·ldo + d] = Σ_j p[r·ldp + j]·v[j·ldv + d]; the same chains as <see cref="Mix"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Mix2(float* p, int ldp, float* v, int ldv, float* o, int ldo, int T, int HS)
        {
            float* p1 = p + ldp;
            int d = 0;
            if (Vector256.IsHardwareAccelerated)
                for (; d + 32 <= HS; d += 32)
                {
                    Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
                    float* vj = v + d;
                    for (int j = 0; j < T; j++, vj += ldv)
                    {
                        var v0 = Vector256.Load(vj); var v1 = Vector256.Load(vj + 8);
                        var v2 = Vector256.Load(vj + 16); var v3 = Vector256.Load(vj + 24);
                        var x = Vector256.Create(p[j]);
                        a0 = SimdMath.Fmadd(x, v0, a0); a1 = SimdMath.Fmadd(x, v1, a1); a2 = SimdMath.Fmadd(x, v2, a2); a3 = SimdMath.Fmadd(x, v3, a3);
                        x = Vector256.Create(p1[j]);
                        b0 = SimdMath.Fmadd(x, v0, b0); b1 = SimdMath.Fmadd(x, v1, b1); b2 = SimdMath.Fmadd(x, v2, b2); b3 = SimdMath.Fmadd(x, v3, b3);
                    }
                    a0.Store(o + d); a1.Store(o + d + 8); a2.Store(o + d + 16); a3.Store(o + d + 24);
                    float* o1 = o + ldo;
                    b0.Store(o1 + d); b1.Store(o1 + d + 8); b2.Store(o1 + d + 16); b3.Store(o1 + d + 24);
                }
            if (d < HS)
            {
                MixFrom(p, v, ldv, o, T, HS, d);
                MixFrom(p1, v, ldv, o + ldo, T, HS, d);
            }
        }

        /// <summary>o[d] = Σ_j p[j]·v[j·ldv + d] for d &lt; HS (keys in order).</summary>
        private static void Mix(float* p, float* v, int ldv, float* o, int T, int HS) => MixFrom(p, v, ldv, o, T, HS, 0);

        /// <summary>o[d] = Σ_j p[j]·v[j·ldv + d] for d in [d0, HS): 32-wide blocks, 8-wide blocks, scalars; j in order.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void MixFrom(float* p, float* v, int ldv, float* o, int T, int HS, int d0)
        {
            int d = d0;
            if (Vector256.IsHardwareAccelerated)
            {
                for (; d + 32 <= HS; d += 32)
                {
                    Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                    float* vj = v + d;
                    for (int j = 0; j < T; j++, vj += ldv)
                    {
                        var x = Vector256.Create(p[j]);
                        a0 = SimdMath.Fmadd(x, Vector256.Load(vj), a0);
                        a1 = SimdMath.Fmadd(x, Vector256.Load(vj + 8), a1);
                        a2 = SimdMath.Fmadd(x, Vector256.Load(vj + 16), a2);
                        a3 = SimdMath.Fmadd(x, Vector256.Load(vj + 24), a3);
                    }
                    a0.Store(o + d); a1.Store(o + d + 8); a2.Store(o + d + 16); a3.Store(o + d + 24);
                }
                for (; d + 8 <= HS; d += 8)
                {
                    Vector256<float> a0 = default;
                    float* vj = v + d;
                    for (int j = 0; j < T; j++, vj += ldv) a0 = SimdMath.Fmadd(Vector256.Create(p[j]), Vector256.Load(vj), a0);
                    a0.Store(o + d);
                }
            }
            for (; d < HS; d++)
            {
                float a = 0f;
                for (int j = 0; j < T; j++) a = SimdMath.Fmadd(p[j], v[(nint)j * ldv + d], a);
                o[d] = a;
            }
        }
    }
}
