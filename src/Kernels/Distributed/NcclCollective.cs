// NCCL (libnccl.so.2) through P/Invoke: all-reduce and broadcast of GPU memory between ranks, one GPU per rank.
using System.Diagnostics;
using System.Runtime.InteropServices;
using FastRec.Kernels.Gpu;
using ILGPU.Runtime.Cuda;

namespace FastRec.Kernels.Distributed;

/// <summary>
/// Collectives between GPUs through NVIDIA's NCCL, one rank per GPU (start the job with mpirun and give each rank its GPU,
/// e.g. <c>CUDA_VISIBLE_DEVICES=$OMPI_COMM_WORLD_LOCAL_RANK</c> in a wrapper). NCCL's unique id travels from rank 0 through
/// the bootstrap collective (<see cref="MpiCollective"/>), which also carries host-memory operations and the barrier.
/// <para>The library is located like the native cuBLASLt library (<see cref="NativeCuda"/>): the file named by
/// <see cref="LibraryEnvironmentVariable"/>, else <c>libnccl.so.2</c> on the loader's path, in the CUDA toolkit, or in a
/// Python environment's <c>nvidia/nccl/lib</c> (PyTorch's CUDA wheels ship it there).</para>
/// <para>Device views are reduced in place on the backend's CUDA stream (ordered after the kernels that wrote them); the call
/// waits for the stream, polling <c>cuStreamQuery</c> and <c>ncclCommGetAsyncError</c>, and past <see cref="Timeout"/> aborts
/// the communicator (<c>ncclCommAbort</c>) and throws <see cref="CollectiveTimeoutException"/>. Joining
/// (<c>ncclCommInitRank</c>) blocks until every rank has joined.</para>
/// </summary>
public sealed unsafe class NcclCollective : ICollective
{
    /// <summary>Environment variable naming the NCCL library file: <c>FASTREC_NCCL_LIB</c>.</summary>
    public const string LibraryEnvironmentVariable = "FASTREC_NCCL_LIB";

    private const int NcclFloat32 = 7, NcclSum = 0, NcclInProgress = 7, CudaNotReady = 600;

    [StructLayout(LayoutKind.Sequential, Size = 128)]
    private struct UniqueId { public fixed byte Internal[128]; }

    private readonly ICollective _boot;
    private readonly IlgpuBackend _backend;
    private readonly IntPtr _stream;
    private IntPtr _comm;
    private readonly delegate* unmanaged[Cdecl]<void*, void*, nuint, int, int, IntPtr, IntPtr, int> _allReduce;
    private readonly delegate* unmanaged[Cdecl]<void*, void*, nuint, int, int, IntPtr, IntPtr, int> _broadcast;
    private readonly delegate* unmanaged[Cdecl]<IntPtr, int*, int> _asyncError;
    private readonly delegate* unmanaged[Cdecl]<IntPtr, int> _commAbort, _commDestroy;
    private readonly delegate* unmanaged[Cdecl]<int, byte*> _errorString;
    private readonly delegate* unmanaged[Cdecl]<IntPtr, int> _streamQuery;
    private TimeSpan _timeout;
    private bool _broken, _disposed;

    /// <inheritdoc/>
    public string Name => "nccl";
    /// <inheritdoc/>
    public int Rank => _boot.Rank;
    /// <inheritdoc/>
    public int Size => _boot.Size;
    /// <summary>The NCCL library file that was loaded.</summary>
    public string Library { get; }

    /// <inheritdoc/>
    public TimeSpan Timeout
    {
        get => _timeout;
        set { Collective.CheckTimeout(value); _timeout = value; _boot.Timeout = value; }
    }

    private NcclCollective(IntPtr lib, string library, ICollective boot, IlgpuBackend backend, IntPtr stream, IntPtr cuda, TimeSpan timeout)
    {
        Library = library;
        _boot = boot;
        _backend = backend;
        _stream = stream;
        _allReduce = (delegate* unmanaged[Cdecl]<void*, void*, nuint, int, int, IntPtr, IntPtr, int>)Export(lib, library, "ncclAllReduce");
        _broadcast = (delegate* unmanaged[Cdecl]<void*, void*, nuint, int, int, IntPtr, IntPtr, int>)Export(lib, library, "ncclBroadcast");
        _asyncError = (delegate* unmanaged[Cdecl]<IntPtr, int*, int>)Export(lib, library, "ncclCommGetAsyncError");
        _commAbort = (delegate* unmanaged[Cdecl]<IntPtr, int>)Export(lib, library, "ncclCommAbort");
        _commDestroy = (delegate* unmanaged[Cdecl]<IntPtr, int>)Export(lib, library, "ncclCommDestroy");
        _errorString = (delegate* unmanaged[Cdecl]<int, byte*>)Export(lib, library, "ncclGetErrorString");
        _streamQuery = (delegate* unmanaged[Cdecl]<IntPtr, int>)Export(cuda, "libcuda", "cuStreamQuery");
        var getId = (delegate* unmanaged[Cdecl]<UniqueId*, int>)Export(lib, library, "ncclGetUniqueId");
        var initRank = (delegate* unmanaged[Cdecl]<IntPtr*, int, UniqueId, int, int>)Export(lib, library, "ncclCommInitRank");
        Timeout = timeout;

        // Rank 0 makes the id, the bootstrap hands it to every rank, every rank joins.
        UniqueId id = default;
        if (Rank == 0) Check(getId(&id), "ncclGetUniqueId");
        _boot.Broadcast(new Span<byte>(&id, sizeof(UniqueId)), root: 0);
        _backend.Accelerator.Bind();
        IntPtr comm;
        Check(initRank(&comm, Size, id, Rank), "ncclCommInitRank");
        _comm = comm;
    }

    private static IntPtr Export(IntPtr lib, string library, string name)
        => NativeLibrary.TryGetExport(lib, name, out var p) ? p : throw new EntryPointNotFoundException($"{library}: symbol {name} missing (NCCL 2.x needed)");

    /// <summary>The files or names tried for libnccl, in order (<paramref name="library"/>, when given, alone).</summary>
    public static IEnumerable<string> Candidates(string? library = null)
    {
        if (!string.IsNullOrEmpty(library)) { yield return library; yield break; }
        var env = Environment.GetEnvironmentVariable(LibraryEnvironmentVariable);
        if (!string.IsNullOrEmpty(env)) { yield return env; yield break; }
        yield return "libnccl.so.2";
        yield return "/usr/local/cuda/lib64/libnccl.so.2";
        var roots = new List<string> { "/usr/lib", "/usr/local/lib", Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "lib") };
        foreach (var v in new[] { "VIRTUAL_ENV", "CONDA_PREFIX" })
            if (Environment.GetEnvironmentVariable(v) is { Length: > 0 } prefix) { roots.Add(Path.Combine(prefix, "lib")); yield return Path.Combine(prefix, "lib", "libnccl.so.2"); }
        foreach (var root in roots)
        {
            if (!Directory.Exists(root)) continue;
            foreach (var py in Directory.EnumerateDirectories(root, "python3*").Order(StringComparer.Ordinal))
                foreach (var packages in new[] { "site-packages", "dist-packages" })
                    yield return Path.Combine(py, packages, "nvidia", "nccl", "lib", "libnccl.so.2");
        }
    }

    /// <summary>
    /// Loads NCCL, takes the unique id from rank 0 through <paramref name="bootstrap"/> and joins the communicator of
    /// <paramref name="bootstrap"/>'s ranks on <paramref name="backend"/>'s GPU. Throws <see cref="DllNotFoundException"/>
    /// naming every place tried when libnccl cannot be loaded, <see cref="ArgumentException"/> when the backend is not CUDA,
    /// <see cref="CollectiveException"/> when NCCL fails. The bootstrap stays owned by the caller until this is disposed.
    /// </summary>
    public static NcclCollective Create(ICollective bootstrap, IBackend backend, TimeSpan timeout, string? library = null)
    {
        ArgumentNullException.ThrowIfNull(bootstrap); ArgumentNullException.ThrowIfNull(backend);
        Collective.CheckTimeout(timeout);
        var tried = new List<string>();
        IntPtr lib = IntPtr.Zero;
        string? found = null;
        foreach (var c in Candidates(library))
        {
            tried.Add(c);
            if (NativeLibrary.TryLoad(c, out lib)) { found = c; break; }
        }
        if (found is null)
            throw new DllNotFoundException(
                $"NCCL could not be loaded (tried {string.Join(", ", tried)}): install NCCL (libnccl2, or pip install nvidia-nccl-cu12) " +
                $"or set {LibraryEnvironmentVariable} to the path of libnccl.so.2");
        if (backend is not IlgpuBackend { Accelerator: CudaAccelerator cuda } gpu)
            throw new ArgumentException($"backend: NCCL reduces GPU memory and needs the CUDA backend, got '{backend.Name}' (use the mpi collective on CPUs)", nameof(backend));
        IntPtr stream = cuda.DefaultStream is CudaStream cs ? cs.StreamPtr : IntPtr.Zero;
        if (!NativeLibrary.TryLoad("libcuda.so.1", out var driver) && !NativeLibrary.TryLoad("libcuda.so", out driver))
            throw new DllNotFoundException("the CUDA driver library libcuda.so.1 could not be loaded");
        return new NcclCollective(lib, found, bootstrap, gpu, stream, driver, timeout);
    }

    private string ErrorText(int rc) => _errorString == null ? "" : Marshal.PtrToStringUTF8((IntPtr)_errorString(rc)) ?? "";

    private void Check(int rc, string op)
    {
        if (rc == 0) return;
        _broken = true;
        throw new CollectiveException($"{op} failed on rank {Rank} of {Size}: NCCL error {rc}: {ErrorText(rc)}");
    }

    /// <summary>Waits for the stream (the queued NCCL call) or the timeout, watching NCCL's asynchronous errors.</summary>
    private void Wait(string op, int count)
    {
        long start = Stopwatch.GetTimestamp();
        while (true)
        {
            int rc = _streamQuery(_stream);
            if (rc == 0) return;
            if (rc != CudaNotReady) { _broken = true; throw new CollectiveException($"{op} on rank {Rank} of {Size}: cuStreamQuery returned CUDA error {rc}"); }
            int async;
            Check(_asyncError(_comm, &async), "ncclCommGetAsyncError");
            if (async != 0 && async != NcclInProgress)
            {
                _commAbort(_comm); _comm = IntPtr.Zero;
                Check(async, op);
            }
            if (Stopwatch.GetElapsedTime(start) > _timeout)
            {
                _broken = true;
                _commAbort(_comm); _comm = IntPtr.Zero;
                throw new CollectiveTimeoutException(
                    $"{op} of {count} elements on rank {Rank} of {Size} timed out after {_timeout.TotalSeconds:0.###} s: another rank died, hangs or is far behind");
            }
            Thread.Yield();
        }
    }

    private void Usable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_broken) throw new InvalidOperationException($"NCCL on rank {Rank}: an earlier operation failed or timed out; the job must be aborted");
    }

    private IntPtr Device(View<float> data)
        => data.Buffer is GpuBuffer<float> g && g.Owner == _backend ? g.NativePtr + (nint)(data.Offset * sizeof(float))
            : throw new ArgumentException($"data: NCCL reduces this backend's GPU memory; got a view of {data.Buffer?.GetType().Name ?? "nothing"} on '{data.Buffer?.Owner.Name}'", nameof(data));

    /// <inheritdoc/>
    public void AllReduceSum(View<float> data)
    {
        Collective.CheckView(data);
        Usable();
        if (data.Length == 0) return;
        var p = (void*)Device(data);
        Check(_allReduce(p, p, (nuint)data.Length, NcclFloat32, NcclSum, _comm, _stream), "ncclAllReduce");
        Wait("ncclAllReduce", data.Length);
    }

    /// <inheritdoc/>
    public void Broadcast(View<float> data, int root)
    {
        Collective.CheckView(data);
        Collective.CheckRoot(root, Size);
        Usable();
        if (data.Length == 0) return;
        var p = (void*)Device(data);
        Check(_broadcast(p, p, (nuint)data.Length, NcclFloat32, root, _comm, _stream), "ncclBroadcast");
        Wait("ncclBroadcast", data.Length);
    }

    /// <inheritdoc/>
    public void AllReduceSum(Span<float> data) => _boot.AllReduceSum(data);
    /// <inheritdoc/>
    public void Broadcast(Span<byte> data, int root) => _boot.Broadcast(data, root);
    /// <inheritdoc/>
    public void Barrier() { _backend.Synchronize(); _boot.Barrier(); }

    /// <inheritdoc/>
    public void Abort(int errorCode)
    {
        if (_comm != IntPtr.Zero) { _commAbort(_comm); _comm = IntPtr.Zero; }
        _broken = true;
        _boot.Abort(errorCode);
    }

    /// <summary>Destroys the communicator (aborts it after a failure); the bootstrap is the caller's.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_comm == IntPtr.Zero) return;
        if (_broken) _commAbort(_comm); else _commDestroy(_comm);
        _comm = IntPtr.Zero;
    }
}
