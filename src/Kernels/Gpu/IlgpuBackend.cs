// The ILGPU backend (CUDA, or ILGPU's CPU accelerator for tests): construction, the kernel table, memory, launch helpers.
using System.Reflection;
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
/// <see cref="IBackend"/> on ILGPU. Every kernel is a static method under <c>Gpu/Kernels</c>, listed once in the kernel
/// table below and compiled in the constructor into a typed launcher. The ops live in partial files by op, like the CPU
/// backend's (IlgpuBackend.Gemm.cs: GEMM, linear, pooler; .Elementwise.cs; .LayerNorm.cs; .Embedding.cs; .Attention.cs:
/// softmax and attention; .Loss.cs: BCE and MSE; .Optim.cs: global norm and AdamW). All launches go to the
/// accelerator's default stream, so calls are asynchronous and ordered, and only <see cref="Upload{T}"/> / <see cref="Download{T}"/> move data between host and device.
/// On CUDA, GEMMs without an epilogue go to the native cuBLASLt library when <c>libfastrec_native</c> is found
/// (see <see cref="NativeCuda"/>); otherwise the tiled ILGPU GEMM serves.
/// Reductions are deterministic (fixed trees, no atomics): same inputs, same bits.
/// </summary>
public sealed partial class IlgpuBackend : IBackend
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

    // ---------------------------------------------------------------- the kernel table (one line per kernel)
    // A kernel is added here and nowhere else: the constructor loads every entry, the PTX tests walk EntryPoints, and an op
    // launches it with Run(kernel)(_stream, config, arguments...). The launcher type spells the kernel's parameters after
    // the stream and the launch configuration; a mismatch fails in the constructor.

    private static readonly List<KernelEntry> s_kernels = [];   // first: the entries below register themselves in order

    // GEMM, linear, pooler (IlgpuBackend.Gemm.cs)
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>> GemmTiled = new(GemmKernels.Tiled);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>> GemmTiled128 = new(GemmKernels.Tiled128);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs, int>> GemmSmall = new(GemmKernels.Small);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, int>> ColSumPartial = new(ReductionKernels.ColSumPartial);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, int>> ColSumFinish = new(ReductionKernels.ColSumFinish);
    // elementwise (IlgpuBackend.Elementwise.cs); activations indexed by ActIndex
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int>>[] ActForward =
        [new(ElementwiseKernels.ActForward<GeluOp>), new(ElementwiseKernels.ActForward<ReluOp>),
         new(ElementwiseKernels.ActForward<TanhOp>), new(ElementwiseKernels.ActForward<IdentityOp>)];
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>>[] ActBackward =
        [new(ElementwiseKernels.ActBackward<GeluOp>), new(ElementwiseKernels.ActBackward<ReluOp>),
         new(ElementwiseKernels.ActBackward<TanhOp>), new(ElementwiseKernels.ActBackward<IdentityOp>)];
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, DropoutSpec, float, int>> Dropout = new(ElementwiseKernels.Dropout);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>> TanhGradFromOutput = new(ElementwiseKernels.TanhGradFromOutput);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, Copy2DArgs, int>> Copy2DRows = new(ElementwiseKernels.Copy2D);
    // residual + LayerNorm (IlgpuBackend.LayerNorm.cs)
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LnArgs>> LayerNormForward = new(LayerNormKernels.LayerNormForward);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LnArgs>> LayerNormBackward = new(LayerNormKernels.LayerNormBackward);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>> LayerNormParamPartial = new(LayerNormKernels.LayerNormParamPartial);
    // embeddings (IlgpuBackend.Embedding.cs)
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, EmbedArgs, int>> EmbeddingGather = new(EmbeddingKernels.Forward);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int>> PositionGrad = new(EmbeddingKernels.PositionGrad);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<int>, ArrayView<int>, int, int, int>> Link = new(EmbeddingKernels.Link);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int>> ChunkSum = new(EmbeddingKernels.ChunkSum);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, int, int, int, int>> HeadAdd = new(EmbeddingKernels.HeadAdd);
    // softmax + attention (IlgpuBackend.Attention.cs)
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, PermuteArgs, int>> HeadsPermute = new(AttentionKernels.HeadsPermute);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, SoftmaxArgs>> SoftmaxRows = new(AttentionKernels.SoftmaxForward);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, SoftmaxArgs>> SoftmaxRowsBackward = new(AttentionKernels.SoftmaxBackward);
    // losses (IlgpuBackend.Loss.cs)
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BceArgs>> Bce = new(LossKernels.Bce);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MseArgs>> MsePartial = new(LossKernels.MsePartial);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, MseArgs>> MseFinish = new(LossKernels.MseFinish);
    // optimiser (IlgpuBackend.Optim.cs)
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int>> SumSquaresPartial = new(OptimizerKernels.SumSquaresPartial);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int>> SumSquaresFinish = new(OptimizerKernels.SumSquaresFinish);
    private static readonly Kernel<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<AdamSegment>, ArrayView<float>, AdamArgs>> AdamWUpdate = new(OptimizerKernels.AdamW);

    /// <summary>The kernel entry points, for tests that compile each one to PTX without a GPU.</summary>
    internal static IReadOnlyList<(string Name, MethodInfo Method, bool ExplicitlyGrouped)> EntryPoints =>
        s_kernels.Select(k => (k.Name, k.Method, true)).ToList();

    /// <summary>An entry of the kernel table: the kernel's name (its C# expression) and method, registered in table order.</summary>
    private abstract class KernelEntry
    {
        protected KernelEntry(Delegate kernel, string name)
        {
            Name = name;
            Method = kernel.Method;
            Id = s_kernels.Count;
            s_kernels.Add(this);
        }

        public string Name { get; }
        public MethodInfo Method { get; }
        /// <summary>Index of the launcher in each backend's <see cref="_launchers"/>.</summary>
        public int Id { get; }
        /// <summary>Compiles the (explicitly grouped) kernel for <paramref name="acc"/> and returns its launcher.</summary>
        public abstract Delegate Load(Accelerator acc);
    }

    /// <summary>A kernel whose launcher has type <typeparamref name="TLauncher"/> (stream, configuration, kernel parameters).</summary>
    private sealed class Kernel<TLauncher>(Delegate kernel, [CallerArgumentExpression(nameof(kernel))] string name = "")
        : KernelEntry(kernel, name) where TLauncher : Delegate
    {
        public override Delegate Load(Accelerator acc) => acc.LoadKernel<TLauncher>(Method);
    }

    /// <summary>Each table entry's launcher on this accelerator, by <see cref="KernelEntry.Id"/> (loaded once, in the constructor).</summary>
    private readonly Delegate[] _launchers;

    /// <summary>The launcher of <paramref name="kernel"/> on this backend.</summary>
    private TLauncher Run<TLauncher>(Kernel<TLauncher> kernel) where TLauncher : Delegate => Unsafe.As<TLauncher>(_launchers[kernel.Id]);

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

        _launchers = s_kernels.Select(k => k.Load(acc)).ToArray();

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

    // ---------------------------------------------------------------- helpers

    private static int Ceil(int a, int b) => (a + b - 1) / b;

    /// <summary>Launch shape of a grid-stride kernel over n elements: groups of <see cref="_flatGroup"/> threads,
    /// at most <see cref="_flatMaxGroups"/> groups (enough to fill the GPU; two on the CPU accelerator, where every
    /// simulated thread costs an OS-thread wake-up).</summary>
    private KernelConfig Flat(int n) =>
        new(new Index1D(Math.Clamp(Ceil(Math.Max(n, 1), _flatGroup), 1, _flatMaxGroups)), new Index1D(_flatGroup));

    private readonly int _flatGroup, _flatMaxGroups;

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
