// ILGPU backend GEMM-shaped ops: strided-batched GEMM (tiled kernels or cuBLASLt), linear, the BERT pooler.
using FastRec.Kernels.Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu;

public sealed partial class IlgpuBackend
{
    // ---------------------------------------------------------------- GEMM

    /// <inheritdoc/>
    public void Gemm(bool transA, bool transB, int M, int N, int K, float alpha,
                     View<float> a, int lda, View<float> b, int ldb, bool accumulate, View<float> c, int ldc,
                     int batch = 1, long strideA = 0, long strideB = 0, long strideC = 0)
    {
        Check.Gemm(transA, transB, M, N, K, a, ref lda, b, ref ldb, c, ref ldc, batch, strideA, strideB, strideC);
        GemmCore(transA, transB, M, N, K, alpha, Arr(a), lda, Arr(b), ldb, accumulate, Arr(c), ldc,
                 batch, (int)strideA, (int)strideB, (int)strideC, _dummyF.ViewOf(0, 1), false, ActCode.None);
    }

    /// <summary>GEMMs with at most this many outputs (batch·M·N) use the one-thread-per-output kernel instead of the
    /// tiled one. GPU default 4096 (below one 64×64 tile); the CPU accelerator defaults to "always" (its barriers are
    /// OS-thread rendezvous); tests set 0 to force the tiled kernel.</summary>
    internal long SmallGemmMaxOutputs { get; set; }

    /// <summary>Tiled GEMM block size: 0 = choose (128×128 tiles when both M, N ≥ 128 and they fill every multiprocessor,
    /// else 64×64), or force 64 / 128. For benchmarks and tests.</summary>
    public int GemmTile
    {
        get => _gemmTile;
        set => _gemmTile = value is 0 or 64 or 128 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "GemmTile: 0 (auto), 64 or 128");
    }

    private int _gemmTile;

    private void GemmCore(bool transA, bool transB, int M, int N, int K, float alpha,
                          ArrayView<float> a, int lda, ArrayView<float> b, int ldb, bool accumulate, ArrayView<float> c, int ldc,
                          int batch, int strideA, int strideB, int strideC, ArrayView<float> bias, bool hasBias, int act)
    {
        if (_native is not null && NativeGemmEnabled && act == ActCode.None &&
            _native.Gemm(transA, transB, M, N, K, alpha, a, lda, b, ldb, accumulate, c, ldc, batch, strideA, strideB, strideC,
                         hasBias ? bias : default, hasBias))
            return;
        var p = new GemmArgs
        {
            M = M, N = N, K = K, Lda = lda, Ldb = ldb, Ldc = ldc,
            StrideA = strideA, StrideB = strideB, StrideC = strideC, Alpha = alpha,
            TransA = transA ? 1 : 0, TransB = transB ? 1 : 0, Accumulate = accumulate ? 1 : 0,
            HasBias = hasBias ? 1 : 0, Act = act,
        };
        long outputs = (long)M * N * batch;
        if (outputs <= SmallGemmMaxOutputs)
        {
            Run(GemmSmall)(_stream, Flat((int)outputs), a, b, c, bias, p, (int)outputs);
            return;
        }
        long blocks128 = (long)Ceil(N, GemmKernels.BN2) * Ceil(M, GemmKernels.BM2) * batch;
        bool big = GemmTile == 128 ||
                   (GemmTile == 0 && M >= GemmKernels.BM2 && N >= GemmKernels.BN2 && blocks128 >= _acc.NumMultiprocessors);
        if (big)
        {
            var grid2 = new Index3D(Ceil(N, GemmKernels.BN2), Ceil(M, GemmKernels.BM2), batch);
            Run(GemmTiled128)(_stream, new KernelConfig(grid2, new Index3D(GemmKernels.Threads, 1, 1)), a, b, c, bias, p);
            return;
        }
        var grid = new Index3D(Ceil(N, GemmKernels.BN), Ceil(M, GemmKernels.BM), batch);
        Run(GemmTiled)(_stream, new KernelConfig(grid, new Index3D(GemmKernels.Threads, 1, 1)), a, b, c, bias, p);
    }

    // ---------------------------------------------------------------- linear

    /// <inheritdoc/>
    public void LinearForward(View<float> output, View<float> input, View<float> weight, View<float> bias, int N, int IC, int OC)
    {
        Check.LinearForward(output, input, weight, bias, N, IC, OC);
        GemmCore(false, true, N, OC, IC, 1f, Arr(input), IC, Arr(weight), IC, false, Arr(output), OC,
                 1, 0, 0, 0, Opt(bias), !bias.IsNone, ActCode.None);
    }

    /// <inheritdoc/>
    public void LinearBackward(View<float> dInput, View<float> dWeight, View<float> dBias,
                               View<float> dOutput, View<float> input, View<float> weight, int N, int IC, int OC)
    {
        Check.LinearBackward(dInput, dWeight, dBias, dOutput, input, weight, N, IC, OC);
        var dOut = Arr(dOutput);
        if (!dInput.IsNone)   // δinput(N,IC) = δout(N,OC) · W(OC,IC)
            GemmCore(false, false, N, IC, OC, 1f, dOut, OC, Arr(weight), IC, false, Arr(dInput), IC, 1, 0, 0, 0, _dummyF.ViewOf(0, 1), false, ActCode.None);
        if (!dWeight.IsNone)  // δW(OC,IC) += δoutᵀ · inp
            GemmCore(true, false, OC, IC, N, 1f, dOut, OC, Arr(input), IC, true, Arr(dWeight), IC, 1, 0, 0, 0, _dummyF.ViewOf(0, 1), false, ActCode.None);
        if (!dBias.IsNone) ColumnSum(Arr(dBias), dOut, N, OC);
    }

    /// <summary>dst(C) += Σ_rows x(N, C), deterministic two-stage reduction.</summary>
    private void ColumnSum(ArrayView<float> dst, ArrayView<float> x, int n, int cdim)
    {
        int chunks = Ceil(n, ReductionKernels.ColChunk);
        var partial = ScratchF((long)chunks * cdim);
        Run(ColSumPartial)(_stream, new KernelConfig(new Index2D(Ceil(cdim, 32), chunks), new Index2D(_reduceGroup, 1)), partial, x, n, cdim);
        Run(ColSumFinish)(_stream, Flat(cdim), dst, partial, chunks, cdim);
    }

    // ---------------------------------------------------------------- pooler

    /// <inheritdoc/>
    public void PoolerForward(View<float> pooled, View<float> hidden, View<float> weight, View<float> bias, int B, int T, int C)
    {
        Check.PoolerForward(pooled, hidden, weight, bias, B, T, C);
        // pooled(B,C) = tanh(hidden[b,0,:] (row stride T·C) · Wᵀ + bias)
        GemmCore(false, true, B, C, C, 1f, Arr(hidden), T * C, Arr(weight), C, false, Arr(pooled), C, 1, 0, 0, 0,
                 Opt(bias), !bias.IsNone, ActCode.Tanh);
    }

    /// <inheritdoc/>
    public void PoolerBackward(View<float> dHidden, View<float> dWeight, View<float> dBias, View<float> dPooled,
                               View<float> pooled, View<float> hidden, View<float> weight, View<float> workspace, int B, int T, int C)
    {
        Check.PoolerBackward(dHidden, dWeight, dBias, dPooled, pooled, hidden, weight, workspace, B, T, C);
        var none = _dummyF.ViewOf(0, 1);
        var dPre = Arr(workspace).SubView(0, (long)B * C);      // (B,C) δ before tanh
        Run(TanhGradFromOutput)(_stream, Flat(B * C), dPre, Arr(dPooled), Arr(pooled), B * C);
        if (!dHidden.IsNone)   // δhidden[b,0,:] += δpre · W
            GemmCore(false, false, B, C, C, 1f, dPre, C, Arr(weight), C, true, Arr(dHidden), T * C, 1, 0, 0, 0, none, false, ActCode.None);
        if (!dWeight.IsNone)   // δW += δpreᵀ · hidden[:,0,:]
            GemmCore(true, false, C, C, B, 1f, dPre, C, Arr(hidden), T * C, true, Arr(dWeight), C, 1, 0, 0, 0, none, false, ActCode.None);
        if (!dBias.IsNone) ColumnSum(Arr(dBias), dPre, B, C);
    }
}
