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
        int HS = HeadSize(C, NH, "AttentionInference");
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

        public readonly void Execute(int start, int end, int part)
        {
            int T = this.T, HS = this.HS, C3 = 3 * C;
            int need = HS * T + T;
            var scratch = t_scratch;
            if (scratch is null || scratch.Length < need) t_scratch = scratch = new float[Math.Max(need, 4096)];
            fixed (float* sp = scratch)
            {
                float* kt = sp, s = sp + HS * T;   // K transposed (HS, T); one row of scores (T)
                for (int bh = start; bh < end; bh++)
                {
                    int b = bh / NH, h = bh - b * NH;
                    float* seq = Qkv + (nint)b * T * C3;
                    float* k0 = seq + C + h * HS, v0 = seq + 2 * C + h * HS;
                    for (int j = 0; j < T; j++)
                        for (int d = 0; d < HS; d++) kt[d * T + j] = k0[(nint)j * C3 + d];
                    var maskRow = Mask is null ? ReadOnlySpan<float>.Empty : new ReadOnlySpan<float>(Mask + (nint)b * T, T);
                    for (int i = 0; i < R; i++)
                    {
                        Scores(seq + (nint)i * C3 + h * HS, kt, s, T, HS);
                        var row = new Span<float>(s, T);
                        SoftmaxRow(row, maskRow, Scale, row);
                        Mix(s, v0, C3, Out + ((nint)b * R + i) * C + h * HS, T, HS);
                    }
                }
            }
        }

        /// <summary>s[j] = Σ_d q[d]·kt[d, j] for j &lt; T (unscaled scores), four 8-key blocks at a time.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Scores(float* q, float* kt, float* s, int T, int HS)
        {
            int j = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                for (; j + 32 <= T; j += 32)
                {
                    Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                    float* kd = kt + j;
                    for (int d = 0; d < HS; d++, kd += T)
                    {
                        var x = Vector256.Create(q[d]);
                        a0 = SimdMath.Fmadd(x, Vector256.Load(kd), a0);
                        a1 = SimdMath.Fmadd(x, Vector256.Load(kd + 8), a1);
                        a2 = SimdMath.Fmadd(x, Vector256.Load(kd + 16), a2);
                        a3 = SimdMath.Fmadd(x, Vector256.Load(kd + 24), a3);
                    }
                    a0.Store(s + j); a1.Store(s + j + 8); a2.Store(s + j + 16); a3.Store(s + j + 24);
                }
                for (; j + 8 <= T; j += 8)
                {
                    Vector256<float> a0 = default;
                    float* kd = kt + j;
                    for (int d = 0; d < HS; d++, kd += T) a0 = SimdMath.Fmadd(Vector256.Create(q[d]), Vector256.Load(kd), a0);
                    a0.Store(s + j);
                }
            }
            for (; j < T; j++)
            {
                float a = 0f;
                for (int d = 0; d < HS; d++) a = SimdMath.Fmadd(q[d], kt[d * T + j], a);
                s[j] = a;
            }
        }

        /// <summary>o[d] = Σ_j p[j]·v[j·ldv + d] for d &lt; HS (keys in order).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Mix(float* p, float* v, int ldv, float* o, int T, int HS)
        {
            int d = 0;
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
