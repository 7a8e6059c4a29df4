// FastRec native CUDA library: C ABI entry points P/Invoked from src/Kernels/Gpu/NativeCuda.cs (cuBLASLt TF32 SGEMM).
//
// Memory and stream come from ILGPU: the caller passes raw device pointers and ILGPU's CUDA stream, and calls from the
// thread on which ILGPU made its CUDA context current, so the runtime API below runs in that same context.
// Every entry point returns 0 on success; any other value makes the caller fall back to its ILGPU kernel.
#include <cuda_runtime.h>
#include <cstdint>
#include <cstring>
#include <unordered_map>

#if defined(FASTREC_HAVE_CUBLASLT)
#include <cublasLt.h>
#endif

namespace {

constexpr int kAbiVersion = 2;

#if defined(FASTREC_HAVE_CUBLASLT)
// Everything that selects a cuBLASLt plan: shapes, transposes, leading dimensions, batching, epilogue and the
// pointer alignments the heuristic was told about.
struct Key {
    int ta, tb, m, n, k, lda, ldb, ldc, batch, bias, alignA, alignB, alignC;
    long long sa, sb, sc;
    bool operator==(const Key& o) const { return std::memcmp(this, &o, sizeof(Key)) == 0; }
};

struct KeyHash {
    size_t operator()(const Key& k) const {
        const unsigned char* p = reinterpret_cast<const unsigned char*>(&k);
        size_t h = 1469598103934665603ull;
        for (size_t i = 0; i < sizeof(Key); i++) { h ^= p[i]; h *= 1099511628211ull; }
        return h;
    }
};

struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo;
};

struct Handle {
    cublasLtHandle_t lt = nullptr;
    void* workspace = nullptr;
    size_t workspaceBytes = 0;
    std::unordered_map<Key, Plan, KeyHash> plans;
};

int Alignment(const void* p) {
    uintptr_t v = reinterpret_cast<uintptr_t>(p);
    int a = 4;
    while (a < 256 && (v % (uintptr_t)(a * 2)) == 0) a *= 2;
    return a;
}

void DestroyPlan(Plan& p) {
    if (p.op) cublasLtMatmulDescDestroy(p.op);
    if (p.a) cublasLtMatrixLayoutDestroy(p.a);
    if (p.b) cublasLtMatrixLayoutDestroy(p.b);
    if (p.c) cublasLtMatrixLayoutDestroy(p.c);
    p = Plan();
}

cublasStatus_t Layout(cublasLtMatrixLayout_t* l, int rows, int cols, int ld, int batch, long long stride) {
    cublasStatus_t s = cublasLtMatrixLayoutCreate(l, CUDA_R_32F, (uint64_t)rows, (uint64_t)cols, (int64_t)ld);
    if (s != CUBLAS_STATUS_SUCCESS || batch <= 1) return s;
    int32_t count = batch;
    int64_t st = stride;
    s = cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count));
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    return cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &st, sizeof(st));
}

// Builds the plan of a row-major problem C[M,N] = op(A)·op(B) as the column-major problem Cᵀ[N,M] = op(B)ᵀ·op(A)ᵀ:
// cuBLAS "A" is our B (m = N), cuBLAS "B" is our A (n = M), and a bias over our columns is cuBLAS's row bias.
int MakePlan(Handle* h, const Key& k, Plan* out) {
    Plan p;
    cublasStatus_t s = cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_32F);
    if (s != CUBLAS_STATUS_SUCCESS) { DestroyPlan(p); return 100 + (int)s; }
    cublasOperation_t opA = k.tb ? CUBLAS_OP_T : CUBLAS_OP_N;   // our B, stored [K,N] (N) or [N,K] (T), row-major
    cublasOperation_t opB = k.ta ? CUBLAS_OP_T : CUBLAS_OP_N;   // our A, stored [M,K] (N) or [K,M] (T), row-major
    cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof(opA));
    cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof(opB));
    if (k.bias) {
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        s = cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi));
        if (s != CUBLAS_STATUS_SUCCESS) { DestroyPlan(p); return 200 + (int)s; }
    }
    // column-major shapes of the stored matrices
    if ((s = Layout(&p.a, k.tb ? k.k : k.n, k.tb ? k.n : k.k, k.ldb, k.batch, k.sb)) != CUBLAS_STATUS_SUCCESS ||
        (s = Layout(&p.b, k.ta ? k.m : k.k, k.ta ? k.k : k.m, k.lda, k.batch, k.sa)) != CUBLAS_STATUS_SUCCESS ||
        (s = Layout(&p.c, k.n, k.m, k.ldc, k.batch, k.sc)) != CUBLAS_STATUS_SUCCESS) {
        DestroyPlan(p);
        return 300 + (int)s;
    }
    cublasLtMatmulPreference_t pref = nullptr;
    cublasLtMatmulPreferenceCreate(&pref);
    uint64_t ws = h->workspaceBytes;
    uint32_t aA = (uint32_t)k.alignB, aB = (uint32_t)k.alignA, aC = (uint32_t)k.alignC;   // cuBLAS A = our B
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aA, sizeof(aA));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &aB, sizeof(aB));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &aC, sizeof(aC));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &aC, sizeof(aC));
    cublasLtMatmulHeuristicResult_t result;
    int returned = 0;
    s = cublasLtMatmulAlgoGetHeuristic(h->lt, p.op, p.a, p.b, p.c, p.c, pref, 1, &result, &returned);
    cublasLtMatmulPreferenceDestroy(pref);
    if (s != CUBLAS_STATUS_SUCCESS || returned == 0) { DestroyPlan(p); return 400 + (int)s; }
    p.algo = result.algo;
    *out = p;
    return 0;
}
#endif

}  // namespace

extern "C" {

// Returns the library's ABI version and the number of CUDA devices (or -1 if the runtime fails).
int fastrec_native_version(int* device_count) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) n = -1;
    if (device_count) *device_count = n;
    return kAbiVersion;
}

// Creates a GEMM handle (cuBLASLt handle + 32 MiB workspace). stream: the caller's CUDA stream (unused here; each call
// names its stream). Returns 0, or an error code when cuBLASLt is missing or fails.
int fastrec_gemm_create(void** handle, void* stream) {
    (void)stream;
    if (!handle) return 1;
    *handle = nullptr;
#if defined(FASTREC_HAVE_CUBLASLT)
    Handle* h = new Handle();
    if (cublasLtCreate(&h->lt) != CUBLAS_STATUS_SUCCESS) { delete h; return 2; }
    h->workspaceBytes = 32u << 20;
    if (cudaMalloc(&h->workspace, h->workspaceBytes) != cudaSuccess) {
        cudaGetLastError();
        h->workspace = nullptr;
        h->workspaceBytes = 0;
    }
    *handle = h;
    return 0;
#else
    return 3;   // built without cuBLASLt
#endif
}

// Row-major strided-batched SGEMM with TF32 tensor cores: for p < batch,
// C_p[M,N] = alpha·op(A_p)·op(B_p) + beta·C_p (+ bias[col] when bias != null), op as FastRec's IBackend.Gemm
// (transA: A stored [K,M]; transB: B stored [N,K]); element strides sa, sb, sc between batch items.
int fastrec_gemm(void* handle, int transA, int transB, int M, int N, int K, float alpha,
                 const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc,
                 int batch, long long strideA, long long strideB, long long strideC, const float* bias, void* stream) {
#if defined(FASTREC_HAVE_CUBLASLT)
    Handle* h = static_cast<Handle*>(handle);
    if (!h || M <= 0 || N <= 0 || K <= 0 || batch <= 0) return 1;
    Key k;
    std::memset(&k, 0, sizeof(k));
    k.ta = transA; k.tb = transB; k.m = M; k.n = N; k.k = K; k.lda = lda; k.ldb = ldb; k.ldc = ldc;
    k.batch = batch; k.bias = bias != nullptr;
    k.alignA = Alignment(A); k.alignB = Alignment(B); k.alignC = Alignment(C);
    if (bias && Alignment(bias) < k.alignC) k.alignC = Alignment(bias);
    k.sa = strideA; k.sb = strideB; k.sc = strideC;
    auto it = h->plans.find(k);
    if (it == h->plans.end()) {
        Plan p;
        int rc = MakePlan(h, k, &p);
        if (rc != 0) return rc;
        it = h->plans.emplace(k, p).first;
    }
    Plan& p = it->second;
    if (bias) {
        cublasStatus_t s = cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias));
        if (s != CUBLAS_STATUS_SUCCESS) return 500 + (int)s;
    }
    cublasStatus_t s = cublasLtMatmul(h->lt, p.op, &alpha, B, p.a, A, p.b, &beta, C, p.c, C, p.c, &p.algo,
                                      h->workspace, h->workspaceBytes, static_cast<cudaStream_t>(stream));
    if (s != CUBLAS_STATUS_SUCCESS) return 600 + (int)s;
    return cudaGetLastError() == cudaSuccess ? 0 : 700;
#else
    (void)handle; (void)transA; (void)transB; (void)M; (void)N; (void)K; (void)alpha; (void)A; (void)lda; (void)B;
    (void)ldb; (void)beta; (void)C; (void)ldc; (void)batch; (void)strideA; (void)strideB; (void)strideC; (void)bias;
    (void)stream;
    return 3;
#endif
}

// Frees the handle, its plans and its workspace.
void fastrec_gemm_destroy(void* handle) {
#if defined(FASTREC_HAVE_CUBLASLT)
    Handle* h = static_cast<Handle*>(handle);
    if (!h) return;
    for (auto& kv : h->plans) DestroyPlan(kv.second);
    if (h->workspace) cudaFree(h->workspace);
    cublasLtDestroy(h->lt);
    delete h;
#else
    (void)handle;
#endif
}

}  // extern "C"
