// The ILGPU backend: the whole IBackend contract as ILGPU kernels on CUDA (or, for tests, ILGPU's CPU accelerator).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastRec.Kernels.Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace FastRec.Kernels.Gpu;

/// <summary>Thrown when a CUDA backend is asked for on a machine without a usable CUDA device.</summary>
public sealed class CudaUnavailableException(string message, Exception? inner = null) : NotSupportedException(message, inner);

/// <summary>
/// <see cref="IBackend"/> on ILGPU. Every kernel is a static method under <c>Gpu/Kernels</c>, compiled once in the
/// constructor into a typed launcher; all launches go to the accelerator's default stream, so calls are asynchronous
/// and ordered, and only <see cref="Upload{T}"/> / <see cref="Download{T}"/> move data between host and device.
/// On CUDA, GEMMs without an epilogue go to the native cuBLASLt library when <c>libfastrec_native</c> is found
/// (see <see cref="NativeCuda"/>); otherwise the tiled ILGPU GEMM serves.
/// Reductions are deterministic (fixed trees, no atomics): same inputs, same bits.
/// </summary>
public sealed class IlgpuBackend : IBackend
{
    private readonly Context _context;
    private readonly Accelerator _acc;
    private readonly AcceleratorStream _stream;
    private readonly GpuBuffer<float> _dummyF;
    private readonly GpuBuffer<int> _dummyI;
    private GpuBuffer<float>? _scratchF;
    private GpuBuffer<int>? _scratchI;
    private readonly NativeCuda? _native;
    private bool _disposed;

    // ---------------------------------------------------------------- launchers (compiled once)
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs> _gemm;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs> _gemm128;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs, int> _gemmSmall;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int>[] _actFwd;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>[] _actBwd;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, DropoutSpec, float, int> _dropout;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> _tanhGradFromOut;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, Copy2DArgs, int> _copy2D;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, PermuteArgs, int> _permute;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LnArgs> _lnFwd;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, LnArgs> _lnBwd;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, int, int> _lnParamPartial;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int> _colSumPartial;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int> _colSumFinish;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, SoftmaxArgs> _softmaxFwd;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, SoftmaxArgs> _softmaxBwd;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, EmbedArgs, int> _embFwd;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int> _posGrad;
    private readonly Action<KernelConfig, ArrayView<int>, ArrayView<int>, int, int, int> _link;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int> _chunkSum;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, int, int, int, int> _headAdd;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, BceArgs> _bce;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MseArgs> _msePartial;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, MseArgs> _mseFinish;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int> _sumSqPartial;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int> _sumSqFinish;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<AdamSegment>, ArrayView<float>, AdamArgs> _adamw;

    /// <summary>The kernel entry points, for tests that compile each one to PTX without a GPU.</summary>
    internal static IReadOnlyList<(string Name, System.Reflection.MethodInfo Method, bool ExplicitlyGrouped)> EntryPoints { get; } =
    [
        (nameof(GemmKernels.Tiled), Info(typeof(GemmKernels), nameof(GemmKernels.Tiled)), true),
        (nameof(GemmKernels.Tiled128), Info(typeof(GemmKernels), nameof(GemmKernels.Tiled128)), true),
        (nameof(GemmKernels.Small), Info(typeof(GemmKernels), nameof(GemmKernels.Small)), true),
        ("ActForward<Gelu>", GenericInfo(typeof(ElementwiseKernels), nameof(ElementwiseKernels.ActForward), typeof(GeluOp)), true),
        ("ActForward<Relu>", GenericInfo(typeof(ElementwiseKernels), nameof(ElementwiseKernels.ActForward), typeof(ReluOp)), true),
        ("ActForward<Tanh>", GenericInfo(typeof(ElementwiseKernels), nameof(ElementwiseKernels.ActForward), typeof(TanhOp)), true),
        ("ActForward<Identity>", GenericInfo(typeof(ElementwiseKernels), nameof(ElementwiseKernels.ActForward), typeof(IdentityOp)), true),
        ("ActBackward<Gelu>", GenericInfo(typeof(ElementwiseKernels), nameof(ElementwiseKernels.ActBackward), typeof(GeluOp)), true),
        ("ActBackward<Relu>", GenericInfo(typeof(ElementwiseKernels), nameof(ElementwiseKernels.ActBackward), typeof(ReluOp)), true),
        ("ActBackward<Tanh>", GenericInfo(typeof(ElementwiseKernels), nameof(ElementwiseKernels.ActBackward), typeof(TanhOp)), true),
        ("ActBackward<Identity>", GenericInfo(typeof(ElementwiseKernels), nameof(ElementwiseKernels.ActBackward), typeof(IdentityOp)), true),
        (nameof(ElementwiseKernels.Dropout), Info(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Dropout)), true),
        (nameof(ElementwiseKernels.TanhGradFromOutput), Info(typeof(ElementwiseKernels), nameof(ElementwiseKernels.TanhGradFromOutput)), true),
        (nameof(ElementwiseKernels.Copy2D), Info(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Copy2D)), true),
        (nameof(ElementwiseKernels.HeadsPermute), Info(typeof(ElementwiseKernels), nameof(ElementwiseKernels.HeadsPermute)), true),
        (nameof(ReductionKernels.LayerNormForward), Info(typeof(ReductionKernels), nameof(ReductionKernels.LayerNormForward)), true),
        (nameof(ReductionKernels.LayerNormBackward), Info(typeof(ReductionKernels), nameof(ReductionKernels.LayerNormBackward)), true),
        (nameof(ReductionKernels.LayerNormParamPartial), Info(typeof(ReductionKernels), nameof(ReductionKernels.LayerNormParamPartial)), true),
        (nameof(ReductionKernels.ColSumPartial), Info(typeof(ReductionKernels), nameof(ReductionKernels.ColSumPartial)), true),
        (nameof(ReductionKernels.ColSumFinish), Info(typeof(ReductionKernels), nameof(ReductionKernels.ColSumFinish)), true),
        (nameof(ReductionKernels.SoftmaxForward), Info(typeof(ReductionKernels), nameof(ReductionKernels.SoftmaxForward)), true),
        (nameof(ReductionKernels.SoftmaxBackward), Info(typeof(ReductionKernels), nameof(ReductionKernels.SoftmaxBackward)), true),
        (nameof(EmbeddingKernels.Forward), Info(typeof(EmbeddingKernels), nameof(EmbeddingKernels.Forward)), true),
        (nameof(EmbeddingKernels.PositionGrad), Info(typeof(EmbeddingKernels), nameof(EmbeddingKernels.PositionGrad)), true),
        (nameof(EmbeddingKernels.Link), Info(typeof(EmbeddingKernels), nameof(EmbeddingKernels.Link)), true),
        (nameof(EmbeddingKernels.ChunkSum), Info(typeof(EmbeddingKernels), nameof(EmbeddingKernels.ChunkSum)), true),
        (nameof(EmbeddingKernels.HeadAdd), Info(typeof(EmbeddingKernels), nameof(EmbeddingKernels.HeadAdd)), true),
        (nameof(OptimizerKernels.Bce), Info(typeof(OptimizerKernels), nameof(OptimizerKernels.Bce)), true),
        (nameof(MseKernels.MsePartial), Info(typeof(MseKernels), nameof(MseKernels.MsePartial)), true),
        (nameof(MseKernels.MseFinish), Info(typeof(MseKernels), nameof(MseKernels.MseFinish)), true),
        (nameof(OptimizerKernels.SumSquaresPartial), Info(typeof(OptimizerKernels), nameof(OptimizerKernels.SumSquaresPartial)), true),
        (nameof(OptimizerKernels.SumSquaresFinish), Info(typeof(OptimizerKernels), nameof(OptimizerKernels.SumSquaresFinish)), true),
        (nameof(OptimizerKernels.AdamW), Info(typeof(OptimizerKernels), nameof(OptimizerKernels.AdamW)), true),
    ];

    private static System.Reflection.MethodInfo Info(Type t, string name) =>
        t.GetMethod(name, System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
        ?? throw new InvalidOperationException($"kernel {t.Name}.{name} not found");

    private static System.Reflection.MethodInfo GenericInfo(Type t, string name, Type arg) => Info(t, name).MakeGenericMethod(arg);

    // ---------------------------------------------------------------- construction

    /// <summary>An ILGPU backend on the first CUDA device. Throws <see cref="CudaUnavailableException"/> when there is none.
    /// <paramref name="useNative"/>: use libfastrec_native (cuBLASLt) for plain GEMMs when it can be loaded.</summary>
    public static IlgpuBackend CreateCuda(bool useNative = true)
    {
        EnsureCudaLibraryResolver();
        Context? ctx = null;
        try
        {
            ctx = Context.Create(b => b.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2));
            var devices = ctx.GetCudaDevices();
            if (devices.Count == 0)
                throw new CudaUnavailableException(
                    "no CUDA device found: ILGPU sees no CUDA device (is the NVIDIA driver's libcuda on LD_LIBRARY_PATH?). " +
                    "Use the 'cpu' backend instead.");
            var acc = devices[0].CreateCudaAccelerator(ctx);
            return new IlgpuBackend(ctx, acc, "ilgpu-cuda", useNative);
        }
        catch (CudaUnavailableException)
        {
            ctx?.Dispose();
            throw;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException
                                      or CudaException or NotSupportedException or InvalidOperationException)
        {
            ctx?.Dispose();
            throw new CudaUnavailableException($"no CUDA device found: the CUDA driver could not be used ({e.GetType().Name}: {e.Message}). " +
                                               "Use the 'cpu' backend instead.", e);
        }
    }

    private static int s_resolver;

    /// <summary>ILGPU imports the driver as "cuda", which .NET resolves to libcuda.so only; driver installs in containers
    /// often ship just libcuda.so.1. Teach ILGPU's assembly that name too (not on WSL, where ILGPU installs its own resolver).</summary>
    private static void EnsureCudaLibraryResolver()
    {
        if (Interlocked.Exchange(ref s_resolver, 1) != 0) return;
        try
        {
            if (File.Exists("/proc/version") && File.ReadAllText("/proc/version").Contains("microsoft", StringComparison.OrdinalIgnoreCase)) return;
            NativeLibrary.SetDllImportResolver(typeof(Context).Assembly, (name, assembly, path) =>
            {
                if (name != "cuda") return IntPtr.Zero;
                foreach (var file in new[] { "libcuda.so", "libcuda.so.1" })
                    if (NativeLibrary.TryLoad(file, assembly, path, out var handle)) return handle;
                return IntPtr.Zero;
            });
        }
        catch (InvalidOperationException)
        {
            // a resolver is already registered for ILGPU's assembly: keep it
        }
    }

    /// <summary>An ILGPU backend on ILGPU's CPU accelerator simulating an NVIDIA GPU (warp 32): for tests without a GPU.
    /// Slow (every GPU thread is a CPU thread); keep shapes tiny.</summary>
    public static IlgpuBackend CreateCpuAccelerator()
    {
        var ctx = Context.Create(b => b.CPU(CPUDeviceKind.Nvidia).EnableAlgorithms());
        var acc = ctx.CreateCPUAccelerator(0);
        return new IlgpuBackend(ctx, acc, "ilgpu-cpu", useNative: false);
    }

    private IlgpuBackend(Context context, Accelerator acc, string name, bool useNative)
    {
        _context = context;
        _acc = acc;
        _stream = acc.DefaultStream;
        Name = name;
        bool cpu = acc.AcceleratorType == AcceleratorType.CPU;
        _rowGroup = cpu ? 32 : ReductionKernels.Threads;
        _reduceGroup = cpu ? 32 : OptimizerKernels.Threads;
        RowWidth = cpu ? 1 : acc.WarpSize;
        _flatGroup = cpu ? 32 : 256;
        _flatMaxGroups = cpu ? 2 : Math.Max(1, acc.NumMultiprocessors) * 8;
        SmallGemmMaxOutputs = cpu ? long.MaxValue : GemmKernels.BM * GemmKernels.BN;
        _dummyF = AllocateCore<float>(1);
        _dummyI = AllocateCore<int>(1);

        _gemm = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmKernels.Tiled);
        _gemm128 = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmKernels.Tiled128);
        _gemmSmall = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs, int>(GemmKernels.Small);
        _actFwd =
        [
            acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(ElementwiseKernels.ActForward<GeluOp>),
            acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(ElementwiseKernels.ActForward<ReluOp>),
            acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(ElementwiseKernels.ActForward<TanhOp>),
            acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(ElementwiseKernels.ActForward<IdentityOp>),
        ];
        _actBwd =
        [
            acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(ElementwiseKernels.ActBackward<GeluOp>),
            acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(ElementwiseKernels.ActBackward<ReluOp>),
            acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(ElementwiseKernels.ActBackward<TanhOp>),
            acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(ElementwiseKernels.ActBackward<IdentityOp>),
        ];
        _dropout = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, DropoutSpec, float, int>(ElementwiseKernels.Dropout);
        _tanhGradFromOut = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(ElementwiseKernels.TanhGradFromOutput);
        _copy2D = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, Copy2DArgs, int>(ElementwiseKernels.Copy2D);
        _permute = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, PermuteArgs, int>(ElementwiseKernels.HeadsPermute);
        _lnFwd = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, LnArgs>(ReductionKernels.LayerNormForward);
        _lnBwd = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, LnArgs>(ReductionKernels.LayerNormBackward);
        _lnParamPartial = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, int, int>(ReductionKernels.LayerNormParamPartial);
        _colSumPartial = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int>(ReductionKernels.ColSumPartial);
        _colSumFinish = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int>(ReductionKernels.ColSumFinish);
        _softmaxFwd = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, SoftmaxArgs>(ReductionKernels.SoftmaxForward);
        _softmaxBwd = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, SoftmaxArgs>(ReductionKernels.SoftmaxBackward);
        _embFwd = acc.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, EmbedArgs, int>(EmbeddingKernels.Forward);
        _posGrad = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, int>(EmbeddingKernels.PositionGrad);
        _link = acc.LoadStreamKernel<ArrayView<int>, ArrayView<int>, int, int, int>(EmbeddingKernels.Link);
        _chunkSum = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int>(EmbeddingKernels.ChunkSum);
        _headAdd = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, int, int, int, int>(EmbeddingKernels.HeadAdd);
        _bce = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            BceArgs>(OptimizerKernels.Bce);
        _msePartial = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MseArgs>(MseKernels.MsePartial);
        _mseFinish = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, MseArgs>(MseKernels.MseFinish);
        _sumSqPartial = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(OptimizerKernels.SumSquaresPartial);
        _sumSqFinish = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(OptimizerKernels.SumSquaresFinish);
        _adamw = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<AdamSegment>, ArrayView<float>, AdamArgs>(OptimizerKernels.AdamW);

        if (useNative && acc is CudaAccelerator cuda)
            _native = NativeCuda.TryCreate(cuda.DefaultStream is CudaStream cs ? cs.StreamPtr : IntPtr.Zero, out _nativeStatus);
        else
            _nativeStatus = useNative ? "native library not used (not a CUDA accelerator)" : "native library disabled";
    }

    private readonly string _nativeStatus;

    /// <inheritdoc/>
    public string Name { get; }

    /// <summary>The ILGPU accelerator (device name, memory, warp size...).</summary>
    public Accelerator Accelerator => _acc;

    /// <summary>True when plain GEMMs run through the native cuBLASLt library.</summary>
    public bool UsesNativeGemm => _native is not null;

    /// <summary>Why the native library is or is not used (for logs and the device check).</summary>
    public string NativeStatus => _nativeStatus;

    /// <summary>Disables (false) or re-enables (true, when loaded) the native GEMM path; for A/B benchmarks.</summary>
    public bool NativeGemmEnabled { get; set; } = true;

    // ---------------------------------------------------------------- memory

    /// <inheritdoc/>
    public DeviceBuffer<T> Allocate<T>(long length) where T : unmanaged
    {
        if (length < 0) throw new ArgumentOutOfRangeException(nameof(length), length, "length must not be negative");
        return AllocateCore<T>(length);
    }

    private GpuBuffer<T> AllocateCore<T>(long length) where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var mem = _acc.Allocate1D<T>(Math.Max(1, length));
        mem.View.MemSetToZero(_stream);
        return new GpuBuffer<T>(this, mem, length);
    }

    /// <inheritdoc/>
    public void Upload<T>(View<T> dst, ReadOnlySpan<T> src) where T : unmanaged
    {
        Check.Upload(dst, src.Length);
        var d = Arr(dst);
        if (src.Length == 0) return;
        // The host memory stays pinned until the copy has finished: the copy may run on another thread (the CPU
        // accelerator) or DMA engine, and a compacting GC must not move a managed array under it.
        unsafe
        {
            fixed (T* h = src)
            {
                d.CopyFromCPU(_stream, ref *h, src.Length);
                _stream.Synchronize();
            }
        }
        if (dst.Buffer is GpuBuffer<T> { Mirror: { } mirror }) src.CopyTo(mirror.AsSpan(checked((int)dst.Offset), dst.Length));
    }

    /// <inheritdoc/>
    public void Download<T>(View<T> src, Span<T> dst) where T : unmanaged
    {
        Check.Download(src, dst.Length);
        var s = Arr(src);
        _stream.Synchronize();
        if (dst.Length == 0) return;
        unsafe
        {
            fixed (T* h = dst)   // pinned until the copy has finished (see Upload)
            {
                s.CopyToCPU(_stream, ref *h, dst.Length);
                _stream.Synchronize();
            }
        }
    }

    /// <inheritdoc/>
    public void Zero(View<float> dst)
    {
        Check.Zero(dst);
        var d = Arr(dst);
        if (dst.Length > 0) d.MemSetToZero(_stream);
    }

    /// <inheritdoc/>
    public void Copy(View<float> dst, View<float> src)
    {
        Check.Copy(dst, src);
        var d = Arr(dst);
        var s = Arr(src);
        if (dst.Length > 0) s.CopyTo(_stream, d);
    }

    /// <inheritdoc/>
    public void Synchronize() => _stream.Synchronize();

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
            _gemmSmall(Flat((int)outputs), a, b, c, bias, p, (int)outputs);
            return;
        }
        long blocks128 = (long)Ceil(N, GemmKernels.BN2) * Ceil(M, GemmKernels.BM2) * batch;
        bool big = GemmTile == 128 ||
                   (GemmTile == 0 && M >= GemmKernels.BM2 && N >= GemmKernels.BN2 && blocks128 >= _acc.NumMultiprocessors);
        if (big)
        {
            var grid2 = new Index3D(Ceil(N, GemmKernels.BN2), Ceil(M, GemmKernels.BM2), batch);
            _gemm128(new KernelConfig(grid2, new Index3D(GemmKernels.Threads, 1, 1)), a, b, c, bias, p);
            return;
        }
        var grid = new Index3D(Ceil(N, GemmKernels.BN), Ceil(M, GemmKernels.BM), batch);
        _gemm(new KernelConfig(grid, new Index3D(GemmKernels.Threads, 1, 1)), a, b, c, bias, p);
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
        _colSumPartial(new KernelConfig(new Index2D(Ceil(cdim, 32), chunks), new Index2D(_reduceGroup, 1)), partial, x, n, cdim);
        _colSumFinish(Flat(cdim), dst, partial, chunks, cdim);
    }

    // ---------------------------------------------------------------- activations

    /// <inheritdoc/>
    public void ActivationForward(Activation act, View<float> output, View<float> input)
    {
        Check.ActivationForward(act, output, input);
        var x = Arr(input);
        var y = Arr(output);
        _actFwd[ActIndex(act)](Flat(input.Length), y, x, input.Length);
    }

    /// <inheritdoc/>
    public void ActivationBackward(Activation act, View<float> dInput, View<float> dOutput, View<float> input)
    {
        Check.ActivationBackward(act, dInput, dOutput, input);
        var x = Arr(input);
        _actBwd[ActIndex(act)](Flat(input.Length), Arr(dInput), Arr(dOutput), x, input.Length);
    }

    private static int ActIndex(Activation act) => act switch
    {
        Activation.Gelu => 0,
        Activation.Relu => 1,
        Activation.Tanh => 2,
        Activation.Identity => 3,
        _ => throw new ArgumentOutOfRangeException(nameof(act), act, "unknown activation"),
    };

    // ---------------------------------------------------------------- residual + LayerNorm

    /// <inheritdoc/>
    public void AddLayerNormForward(View<float> output, View<float> sum, View<float> mean, View<float> rstd,
                                    View<float> a, View<float> b, View<float> gamma, View<float> beta, int N, int C, float eps)
    {
        Check.AddLayerNormForward(output, sum, mean, rstd, a, b, gamma, beta, N, C, eps);
        var p = new LnArgs { Width = RowWidth, N = N, C = C, HasB = b.IsNone ? 0 : 1, Eps = eps };
        _lnFwd(RowsConfig(N), Arr(output), Arr(sum), Arr(mean), Arr(rstd), Arr(a), Opt(b), Arr(gamma), Arr(beta), p);
    }

    /// <inheritdoc/>
    public void AddLayerNormBackward(View<float> dx, View<float> dGamma, View<float> dBeta,
                                     View<float> dOutput, View<float> sum, View<float> gamma, View<float> mean, View<float> rstd, int N, int C)
    {
        Check.AddLayerNormBackward(dx, dGamma, dBeta, dOutput, sum, gamma, mean, rstd, N, C);
        var dOut = Arr(dOutput);
        var s = Arr(sum);
        var mu = Arr(mean);
        var rs = Arr(rstd);
        if (!dGamma.IsNone || !dBeta.IsNone)
        {
            // parameter gradients first: dx may alias δout
            int chunks = Ceil(N, ReductionKernels.ColChunk);
            var partial = ScratchF(2L * chunks * C);
            _lnParamPartial(new KernelConfig(new Index2D(Ceil(C, 32), chunks), new Index2D(_reduceGroup, 1)),
                            partial, dOut, s, mu, rs, N, C);
            if (!dGamma.IsNone) _colSumFinish(Flat(C), Arr(dGamma), partial.SubView(0, (long)chunks * C), chunks, C);
            if (!dBeta.IsNone) _colSumFinish(Flat(C), Arr(dBeta), partial.SubView((long)chunks * C, (long)chunks * C), chunks, C);
        }
        var p = new LnArgs { Width = RowWidth, N = N, C = C };
        _lnBwd(RowsConfig(N), Arr(dx), dOut, s, Arr(gamma), mu, rs, p);
    }

    /// <summary>Launch shape of a row kernel: <see cref="RowWidth"/> threads per row, groups of 256 threads on a GPU
    /// (8 rows of a warp each), 32 on the CPU accelerator.</summary>
    private KernelConfig RowsConfig(int rows) =>
        new(new Index1D(Ceil(rows * RowWidth, _rowGroup)), new Index1D(_rowGroup));

    private readonly int _rowGroup;

    /// <summary>Group size of the block reductions (column sums, BCE, norm, AdamW): 256 on a GPU, 32 on the CPU accelerator.</summary>
    private readonly int _reduceGroup;

    /// <summary>Threads per row in LayerNorm and softmax: the warp size (warp-shuffle reductions) on a GPU; 1 on the CPU
    /// accelerator, where each shuffle is an OS-thread barrier. Tests set the warp size to run the shuffle path there.</summary>
    internal int RowWidth { get; set; }

    // ---------------------------------------------------------------- embeddings

    /// <inheritdoc/>
    public void EmbeddingForward(View<float> output, View<int> ids, View<int> typeIds,
                                 View<float> wordEmb, View<float> posEmb, View<float> typeEmb, int B, int T, int C)
    {
        var (v, tv) = Check.EmbeddingForward(output, ids, typeIds, wordEmb, posEmb, typeEmb, B, T, C);
        Check.Ids(Mirror(ids), v, T, "ids", "wordEmb");
        if (!typeIds.IsNone) Check.Ids(Mirror(typeIds), tv, T, "typeIds", "typeEmb");
        var p = new EmbedArgs { T = T, C = C, V = v, TV = tv, HasType = typeIds.IsNone ? 0 : 1 };
        _embFwd(Flat(B * T * C), Arr(output), Arr(ids), OptI(typeIds), Arr(wordEmb), Arr(posEmb), Arr(typeEmb), p, B * T * C);
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
        if (!dPosEmb.IsNone) _posGrad(Flat(T * C), Arr(dPosEmb).SubView(0, (long)T * C), dOut, B, T, C);
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
        _link(Flat(n), links, ids, n, rows, h);
        _chunkSum(Flat(n * c), partial, dOut, links, n, c);
        _headAdd(Flat(n * c), table, partial, links, ids, n, c, rows, h);
    }

    // ---------------------------------------------------------------- softmax

    /// <inheritdoc/>
    public void SoftmaxForward(View<float> probs, View<float> scores, View<float> mask, int B, int NH, int T, float scale)
    {
        Check.SoftmaxForward(probs, scores, mask, B, NH, T, scale);
        SoftmaxForwardCore(Arr(probs), Arr(scores), mask.IsNone ? null : Arr(mask), B, NH, T, scale);
    }

    private void SoftmaxForwardCore(ArrayView<float> probs, ArrayView<float> scores, ArrayView<float>? mask, int B, int NH, int T, float scale)
    {
        var p = new SoftmaxArgs { Width = RowWidth, Rows = B * NH * T, T = T, RowsPerBatch = NH * T, HasMask = mask is null ? 0 : 1, Scale = scale };
        _softmaxFwd(RowsConfig(p.Rows), probs, scores, mask ?? _dummyF.ViewOf(0, 1), p);
    }

    /// <inheritdoc/>
    public void SoftmaxBackward(View<float> dScores, View<float> dProbs, View<float> probs, int B, int NH, int T, float scale)
    {
        Check.SoftmaxBackward(dScores, dProbs, probs, B, NH, T, scale);
        SoftmaxBackwardCore(Arr(dScores), Arr(dProbs), Arr(probs), B, NH, T, scale);
    }

    private void SoftmaxBackwardCore(ArrayView<float> dScores, ArrayView<float> dProbs, ArrayView<float> probs, int B, int NH, int T, float scale)
    {
        var p = new SoftmaxArgs { Width = RowWidth, Rows = B * NH * T, T = T, RowsPerBatch = NH * T, Scale = scale };
        _softmaxBwd(RowsConfig(p.Rows), dScores, dProbs, probs, p);
    }

    // ---------------------------------------------------------------- attention

    /// <inheritdoc/>
    public void AttentionForward(View<float> output, View<float> qkvPerm, View<float> probs, View<float> workspace,
                                 View<float> qkv, View<float> mask, int B, int T, int C, int NH, DropoutSpec dropout)
    {
        Check.AttentionForward(output, qkvPerm, probs, workspace, qkv, mask, B, T, C, NH, dropout);
        int btc = B * T * C, hs = C / NH, bh = B * NH, tt = T * T;
        var perm = Arr(qkvPerm);
        var pr = Arr(probs);
        var ws = Arr(workspace);
        var dropped = ws.SubView(0, (long)bh * tt);                 // (B,NH,T,T) probabilities after dropout
        var outHeads = ws.SubView(2L * bh * tt, btc);               // (B,NH,T,HS)
        var q = perm.SubView(0, btc);
        var k = perm.SubView(btc, btc);
        var v = perm.SubView(2L * btc, btc);

        _permute(Flat(3 * btc), perm, Arr(qkv), new PermuteArgs { B = B, T = T, C = C, NH = NH, G = 3, ToHeads = 1 }, 3 * btc);
        // scores(B·NH, T, T) = Q · Kᵀ, scaled inside the softmax
        GemmCore(false, true, T, T, hs, 1f, q, hs, k, hs, false, pr, T, bh, T * hs, T * hs, tt, _dummyF.ViewOf(0, 1), false, ActCode.None);
        SoftmaxForwardCore(pr, pr, mask.IsNone ? null : Arr(mask), B, NH, T, 1f / MathF.Sqrt(hs));
        var p = pr;
        if (dropout.IsOn)
        {
            _dropout(Flat(bh * tt), dropped, pr, dropout, 1f / (1f - dropout.P), bh * tt);
            p = dropped;
        }
        // out(B·NH, T, HS) = P · V
        GemmCore(false, false, T, hs, T, 1f, p, T, v, hs, false, outHeads, hs, bh, tt, T * hs, T * hs, _dummyF.ViewOf(0, 1), false, ActCode.None);
        _permute(Flat(btc), Arr(output), outHeads, new PermuteArgs { B = B, T = T, C = C, NH = NH, G = 1, ToHeads = 0 }, btc);
    }

    /// <inheritdoc/>
    public void AttentionBackward(View<float> dQkv, View<float> dOutput, View<float> qkvPerm, View<float> probs, View<float> workspace,
                                  View<float> mask, int B, int T, int C, int NH, DropoutSpec dropout)
    {
        Check.AttentionBackward(dQkv, dOutput, qkvPerm, probs, workspace, mask, B, T, C, NH, dropout);
        int btc = B * T * C, hs = C / NH, bh = B * NH, tt = T * T;
        var perm = Arr(qkvPerm);
        var pr = Arr(probs);
        var ws = Arr(workspace);
        var s1 = ws.SubView(0, (long)bh * tt);                      // dropped probabilities
        var s2 = ws.SubView((long)bh * tt, (long)bh * tt);          // δP, then δscores
        var dOutHeads = ws.SubView(2L * bh * tt, btc);              // (B,NH,T,HS)
        var dPerm = ws.SubView(2L * bh * tt + btc, 3L * btc);       // (3,B,NH,T,HS)
        var q = perm.SubView(0, btc);
        var k = perm.SubView(btc, btc);
        var v = perm.SubView(2L * btc, btc);
        var dq = dPerm.SubView(0, btc);
        var dk = dPerm.SubView(btc, btc);
        var dv = dPerm.SubView(2L * btc, btc);
        var none = _dummyF.ViewOf(0, 1);

        _permute(Flat(btc), dOutHeads, Arr(dOutput), new PermuteArgs { B = B, T = T, C = C, NH = NH, G = 1, ToHeads = 1 }, btc);
        var p = pr;
        float keepScale = dropout.IsOn ? 1f / (1f - dropout.P) : 1f;
        if (dropout.IsOn)
        {
            _dropout(Flat(bh * tt), s1, pr, dropout, keepScale, bh * tt);
            p = s1;
        }
        // δV = Pᵀ · δO ; δP = δO · Vᵀ
        GemmCore(true, false, T, hs, T, 1f, p, T, dOutHeads, hs, false, dv, hs, bh, tt, T * hs, T * hs, none, false, ActCode.None);
        GemmCore(false, true, T, T, hs, 1f, dOutHeads, hs, v, hs, false, s2, T, bh, T * hs, T * hs, tt, none, false, ActCode.None);
        if (dropout.IsOn) _dropout(Flat(bh * tt), s2, s2, dropout, keepScale, bh * tt);
        SoftmaxBackwardCore(s2, s2, pr, B, NH, T, 1f / MathF.Sqrt(hs));
        // δQ = δS · K ; δK = δSᵀ · Q
        GemmCore(false, false, T, hs, T, 1f, s2, T, k, hs, false, dq, hs, bh, tt, T * hs, T * hs, none, false, ActCode.None);
        GemmCore(true, false, T, hs, T, 1f, s2, T, q, hs, false, dk, hs, bh, tt, T * hs, T * hs, none, false, ActCode.None);
        _permute(Flat(3 * btc), Arr(dQkv), dPerm, new PermuteArgs { B = B, T = T, C = C, NH = NH, G = 3, ToHeads = 0 }, 3 * btc);
    }

    // ---------------------------------------------------------------- dropout

    /// <inheritdoc/>
    public void DropoutForward(View<float> output, View<float> input, DropoutSpec dropout)
    {
        Check.DropoutForward(output, input, dropout);
        DropoutCore(Arr(output), Arr(input), input.Length, dropout);
    }

    /// <inheritdoc/>
    public void DropoutBackward(View<float> dInput, View<float> dOutput, DropoutSpec dropout)
    {
        Check.DropoutBackward(dInput, dOutput, dropout);
        DropoutCore(Arr(dInput), Arr(dOutput), dOutput.Length, dropout);
    }

    private void DropoutCore(ArrayView<float> y, ArrayView<float> x, int n, DropoutSpec d)
    {
        if (n == 0) return;
        if (!d.IsOn)
        {
            if (NativeCuda.Address(y) != NativeCuda.Address(x)) x.CopyTo(_stream, y);
            return;
        }
        _dropout(Flat(n), y, x, d, 1f / (1f - d.P), n);
    }

    // ---------------------------------------------------------------- Copy2D

    /// <inheritdoc/>
    public void Copy2D(View<float> dst, int ldDst, int dstCol, View<float> src, int ldSrc, int srcCol, int rows, int cols, bool accumulate)
    {
        Check.Copy2D(dst, ldDst, dstCol, src, ldSrc, srcCol, rows, cols);
        var p = new Copy2DArgs { Cols = cols, LdDst = ldDst, DstCol = dstCol, LdSrc = ldSrc, SrcCol = srcCol, Accumulate = accumulate ? 1 : 0 };
        _copy2D(Flat(rows * cols), Arr(dst), Arr(src), p, rows * cols);
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
        _tanhGradFromOut(Flat(B * C), dPre, Arr(dPooled), Arr(pooled), B * C);
        if (!dHidden.IsNone)   // δhidden[b,0,:] += δpre · W
            GemmCore(false, false, B, C, C, 1f, dPre, C, Arr(weight), C, true, Arr(dHidden), T * C, 1, 0, 0, 0, none, false, ActCode.None);
        if (!dWeight.IsNone)   // δW += δpreᵀ · hidden[:,0,:]
            GemmCore(true, false, C, C, B, 1f, dPre, C, Arr(hidden), T * C, true, Arr(dWeight), C, 1, 0, 0, 0, none, false, ActCode.None);
        if (!dBias.IsNone) ColumnSum(Arr(dBias), dPre, B, C);
    }

    // ---------------------------------------------------------------- BCE

    /// <inheritdoc/>
    public void BceForwardBackward(View<float> loss, View<float> dLogits, View<float> logits, View<float> targets, View<float> weights,
                                   int N, float temperature = 1f, float scale = 1f, bool accumulate = false)
    {
        Check.BceForwardBackward(loss, dLogits, logits, targets, weights, N, temperature);
        var p = new BceArgs
        {
            N = N, HasWeights = weights.IsNone ? 0 : 1, HasGrad = dLogits.IsNone ? 0 : 1, Accumulate = accumulate ? 1 : 0,
            Temperature = temperature, Scale = scale,
        };
        _bce(new KernelConfig(new Index1D(1), new Index1D(_reduceGroup)),
             Arr(loss), Opt(dLogits), Arr(logits), Arr(targets), Opt(weights), p);
    }

    // ---------------------------------------------------------------- mean squared error

    /// <inheritdoc/>
    public void MseForwardBackward(View<float> loss, View<float> dPred, View<float> pred, View<float> target, int N,
                                   float scale = 1f, bool accumulate = false)
    {
        Check.MseForwardBackward(loss, dPred, pred, target, N, scale);
        var p = new MseArgs
        {
            N = N, HasGrad = dPred.IsNone ? 0 : 1, Accumulate = accumulate ? 1 : 0,
            K = (float)(2.0 * scale / N), LossScale = (float)((double)scale / N),
        };
        // the partition depends only on N: the same length always sums in the same order
        int parts = Math.Clamp(Ceil(N, 16 * _reduceGroup), 1, 256);
        var partial = ScratchF(parts);
        _msePartial(new KernelConfig(new Index1D(parts), new Index1D(_reduceGroup)), partial, Opt(dPred), Arr(pred), Arr(target), p);
        _mseFinish(new KernelConfig(new Index1D(1), new Index1D(_reduceGroup)), Arr(loss), partial, parts, p);
    }

    // ---------------------------------------------------------------- optimiser

    /// <inheritdoc/>
    public void GlobalNorm(View<float> norm, View<float> grads)
    {
        Check.GlobalNorm(norm, grads);
        var g = Arr(grads);
        var nv = Arr(norm);
        int n = grads.Length;
        // the partition depends only on n: the same length always sums in the same order
        int parts = Math.Clamp(Ceil(n, 16 * _reduceGroup), 1, 256);
        var partial = ScratchF(parts);
        _sumSqPartial(new KernelConfig(new Index1D(parts), new Index1D(_reduceGroup)), partial, g, n);
        _sumSqFinish(new KernelConfig(new Index1D(1), new Index1D(_reduceGroup)), nv, partial, parts);
    }

    /// <inheritdoc/>
    public void AdamW(View<float> param, View<float> grad, View<float> m, View<float> v, View<AdamSegment> segments,
                      View<float> norm, float maxNorm, float lr, float beta1, float beta2, float eps, int step)
    {
        Check.AdamW(param, grad, m, v, segments, norm, maxNorm, beta1, beta2, step);
        int n = param.Length;
        Arr(segments);
        // segments are validated from the buffer's host mirror (kept by Upload): no device round-trip
        var segs = ((GpuBuffer<AdamSegment>)segments.Buffer!).Mirror!.AsSpan(checked((int)segments.Offset), segments.Length);
        int maxLen = Check.AdamSegments(segs, n);
        if (segs.Length == 0 || maxLen == 0) return;
        var p = new AdamArgs
        {
            Length = n, MaxNorm = maxNorm, Lr = lr, Beta1 = beta1, Beta2 = beta2, Eps = eps,
            Bc1 = (float)(1.0 - Math.Pow(beta1, step)), Bc2 = (float)(1.0 - Math.Pow(beta2, step)),
        };
        int gx = Math.Clamp(Ceil(maxLen, 4 * _reduceGroup), 1, 256);
        _adamw(new KernelConfig(new Index2D(gx, segs.Length), new Index2D(_reduceGroup, 1)),
               Arr(param), Arr(grad), Arr(m), Arr(v), Arr(segments), norm.IsNone ? _dummyF.ViewOf(0, 1) : Arr(norm), p);
    }

    // ---------------------------------------------------------------- helpers

    private static int Ceil(int a, int b) => (a + b - 1) / b;

    /// <summary>Launch shape of a grid-stride kernel over n elements: groups of <see cref="_flatGroup"/> threads,
    /// at most <see cref="_flatMaxGroups"/> groups (enough to fill the GPU; two on the CPU accelerator, where every
    /// simulated thread costs an OS-thread wake-up).</summary>
    private KernelConfig Flat(int n) =>
        new(new Index1D(Math.Clamp(Ceil(Math.Max(n, 1), _flatGroup), 1, _flatMaxGroups)), new Index1D(_flatGroup));

    private readonly int _flatGroup, _flatMaxGroups;

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

    private ArrayView<T> Arr<T>(View<T> v, [CallerArgumentExpression(nameof(v))] string name = "") where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (v.Buffer is null) throw new ShapeException($"{name}: required tensor is missing");
        if (v.Buffer is not GpuBuffer<T> g || !ReferenceEquals(g.Owner, this))
            throw new ArgumentException($"{name}: the buffer belongs to backend '{v.Buffer.Owner.Name}', not to this '{Name}' backend", name);
        return g.ViewOf(v.Offset, v.Length);
    }

    private ArrayView<float> Opt(View<float> v, [CallerArgumentExpression(nameof(v))] string name = "") =>
        v.IsNone ? _dummyF.ViewOf(0, 1) : Arr(v, name);

    private ArrayView<int> OptI(View<int> v, [CallerArgumentExpression(nameof(v))] string name = "") =>
        v.IsNone ? _dummyI.ViewOf(0, 1) : Arr(v, name);

    /// <summary>Internal float scratch of at least n elements (grown on demand; valid until the next scratch call
    /// that grows it — every launch is on one stream, so reuse between consecutive ops is safe).</summary>
    private ArrayView<float> ScratchF(long n)
    {
        if (_scratchF is null || _scratchF.Length < n)
        {
            if (_scratchF is not null) { _stream.Synchronize(); _scratchF.Dispose(); }
            _scratchF = AllocateCore<float>(Math.Max(n, 4096));
        }
        return _scratchF.ViewOf(0, n);
    }

    private ArrayView<int> ScratchI(long n)
    {
        if (_scratchI is null || _scratchI.Length < n)
        {
            if (_scratchI is not null) { _stream.Synchronize(); _scratchI.Dispose(); }
            _scratchI = AllocateCore<int>(Math.Max(n, 1024));
        }
        return _scratchI.ViewOf(0, n);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed) return;
        try { _stream.Synchronize(); } catch (Exception) { /* a failed device is being torn down anyway */ }
        _native?.Dispose();
        _scratchF?.Dispose();
        _scratchI?.Dispose();
        _dummyF.Dispose();
        _dummyI.Dispose();
        _disposed = true;
        _acc.Dispose();
        _context.Dispose();
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name} on {_acc.Name}";
}
