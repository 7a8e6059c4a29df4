// CPU single-precision GEMM entry point (row-major, transposes, leading dimensions, strided batches).
namespace FastRec.Kernels.Cpu;

/// <summary>SGEMM for the CPU backend. Semantics exactly as <see cref="IBackend.Gemm"/> on spans.
/// (Initial plain version; replaced by the packed, register-blocked, multi-threaded kernel.)</summary>
public static class CpuGemm
{
    /// <summary>C[M,N] = alpha·op(A)·op(B) (+ C when accumulate); see <see cref="IBackend.Gemm"/>.</summary>
    public static void Sgemm(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, bool accumulate, Span<float> c, int ldc)
    {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
            {
                float s = 0;
                for (int k = 0; k < K; k++)
                    s += (transA ? a[k * lda + i] : a[i * lda + k]) * (transB ? b[j * ldb + k] : b[k * ldb + j]);
                c[i * ldc + j] = alpha * s + (accumulate ? c[i * ldc + j] : 0f);
            }
    }
}
