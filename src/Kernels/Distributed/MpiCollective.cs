// Open MPI (libmpi.so.40) through P/Invoke: MPI_COMM_WORLD collectives, non-blocking and polled so they can time out.
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace FastRec.Kernels.Distributed;

/// <summary>
/// The ranks of an <c>mpirun</c> job (MPI_COMM_WORLD) through the system's Open MPI, loaded at run time: the library named
/// by <see cref="LibraryEnvironmentVariable"/>, else <c>libmpi.so.40</c> (Debian/Ubuntu package libopenmpi3, pulled in by
/// openmpi-bin) from the loader's search path.
/// <para>No C shim: Open MPI's handles MPI_COMM_WORLD, MPI_FLOAT, MPI_BYTE, MPI_SUM and MPI_ERRORS_RETURN are, by its mpi.h,
/// the addresses of exported globals (<c>#define MPI_COMM_WORLD ((MPI_Comm)&amp;ompi_mpi_comm_world)</c>), which
/// <see cref="NativeLibrary.GetExport"/> returns; MPI_IN_PLACE is the constant <c>(void*)1</c>. That ties this class to
/// Open MPI's ABI (MPICH's handles are integers), which is the ABI of every Debian/Ubuntu openmpi package and of the
/// cluster installs that ship libmpi.so.40; a shim would need a C compiler and a CMake step on every machine for nothing.</para>
/// <para>Timeouts: each operation is the non-blocking form (MPI_Iallreduce, MPI_Ibcast, MPI_Ibarrier) polled with MPI_Test
/// until it completes or <see cref="ICollective.Timeout"/> passes; then <see cref="CollectiveTimeoutException"/> names the
/// operation and the rank, and the caller aborts the job (MPI cannot cancel a started collective). MPI errors return codes
/// (MPI_ERRORS_RETURN) and become <see cref="CollectiveException"/>s with the library's text.</para>
/// <para>MPI is initialised once per process (MPI_THREAD_SERIALIZED: calls may come from any one thread at a time) and
/// finalised by <see cref="Dispose"/>; after a failed operation Dispose skips MPI_Finalize, which would wait for the others.</para>
/// </summary>
public sealed unsafe class MpiCollective : HostCollective
{
    /// <summary>Environment variable naming the MPI library file: <c>FASTREC_MPI_LIB</c>.</summary>
    public const string LibraryEnvironmentVariable = "FASTREC_MPI_LIB";
    /// <summary>The library loaded when the variable is unset.</summary>
    public const string DefaultLibrary = "libmpi.so.40";

    private const int ThreadSerialized = 2;   // MPI_THREAD_SERIALIZED in Open MPI's enum
    private const int MaxErrorString = 256;   // MPI_MAX_ERROR_STRING (OPAL_MAX_ERROR_STRING)
    private static readonly IntPtr InPlace = 1;   // MPI_IN_PLACE

    private readonly IntPtr _comm, _float, _byte, _sum;
    private readonly delegate* unmanaged[Cdecl]<void*, void*, int, IntPtr, IntPtr, IntPtr, IntPtr*, int> _iallreduce;
    private readonly delegate* unmanaged[Cdecl]<void*, int, IntPtr, int, IntPtr, IntPtr*, int> _ibcast;
    private readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr*, int> _ibarrier;
    private readonly delegate* unmanaged[Cdecl]<IntPtr*, int*, void*, int> _test;
    private readonly delegate* unmanaged[Cdecl]<IntPtr, int, int> _abort;
    private readonly delegate* unmanaged[Cdecl]<int> _finalize;
    private readonly delegate* unmanaged[Cdecl]<int, byte*, int*, int> _errorString;
    private bool _broken, _disposed;

    /// <inheritdoc/>
    public override string Name => "mpi";
    /// <inheritdoc/>
    public override int Rank { get; }
    /// <inheritdoc/>
    public override int Size { get; }
    /// <summary>The library file or name that was loaded.</summary>
    public string Library { get; }

    private MpiCollective(IntPtr lib, string library, TimeSpan timeout)
    {
        Library = library;
        // The handles: addresses of Open MPI's predefined objects.
        _comm = Export(lib, library, "ompi_mpi_comm_world");
        _float = Export(lib, library, "ompi_mpi_float");
        _byte = Export(lib, library, "ompi_mpi_byte");
        _sum = Export(lib, library, "ompi_mpi_op_sum");
        IntPtr errorsReturn = Export(lib, library, "ompi_mpi_errors_return");
        _iallreduce = (delegate* unmanaged[Cdecl]<void*, void*, int, IntPtr, IntPtr, IntPtr, IntPtr*, int>)Export(lib, library, "MPI_Iallreduce");
        _ibcast = (delegate* unmanaged[Cdecl]<void*, int, IntPtr, int, IntPtr, IntPtr*, int>)Export(lib, library, "MPI_Ibcast");
        _ibarrier = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr*, int>)Export(lib, library, "MPI_Ibarrier");
        _test = (delegate* unmanaged[Cdecl]<IntPtr*, int*, void*, int>)Export(lib, library, "MPI_Test");
        _abort = (delegate* unmanaged[Cdecl]<IntPtr, int, int>)Export(lib, library, "MPI_Abort");
        _finalize = (delegate* unmanaged[Cdecl]<int>)Export(lib, library, "MPI_Finalize");
        _errorString = (delegate* unmanaged[Cdecl]<int, byte*, int*, int>)Export(lib, library, "MPI_Error_string");
        var initialized = (delegate* unmanaged[Cdecl]<int*, int>)Export(lib, library, "MPI_Initialized");
        var finalized = (delegate* unmanaged[Cdecl]<int*, int>)Export(lib, library, "MPI_Finalized");
        var initThread = (delegate* unmanaged[Cdecl]<int*, byte***, int, int*, int>)Export(lib, library, "MPI_Init_thread");
        var setErrhandler = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, int>)Export(lib, library, "MPI_Comm_set_errhandler");
        var commRank = (delegate* unmanaged[Cdecl]<IntPtr, int*, int>)Export(lib, library, "MPI_Comm_rank");
        var commSize = (delegate* unmanaged[Cdecl]<IntPtr, int*, int>)Export(lib, library, "MPI_Comm_size");

        int flag;
        finalized(&flag);
        if (flag != 0) throw new InvalidOperationException("MPI was already finalized in this process: it can be initialized once per process");
        initialized(&flag);
        if (flag == 0)
        {
            int provided;
            Check(initThread(null, null, ThreadSerialized, &provided), "MPI_Init_thread");
            if (provided < ThreadSerialized)
                throw new CollectiveException($"MPI_Init_thread: the library provides thread level {provided}, FastRec needs MPI_THREAD_SERIALIZED ({ThreadSerialized})");
        }
        Check(setErrhandler(_comm, errorsReturn), "MPI_Comm_set_errhandler");
        int rank, size;
        Check(commRank(_comm, &rank), "MPI_Comm_rank");
        Check(commSize(_comm, &size), "MPI_Comm_size");
        Rank = rank;
        Size = size;
        Timeout = timeout;
    }

    private static IntPtr Export(IntPtr lib, string library, string name)
        => NativeLibrary.TryGetExport(lib, name, out var p) ? p
            : throw new EntryPointNotFoundException($"{library}: symbol {name} missing; FastRec needs Open MPI's libmpi.so.40 (MPI-3), not another MPI");

    /// <summary>The library names or paths tried, in order.</summary>
    public static IEnumerable<string> Candidates()
    {
        var env = Environment.GetEnvironmentVariable(LibraryEnvironmentVariable);
        if (!string.IsNullOrEmpty(env)) { yield return env; yield break; }
        yield return DefaultLibrary;
    }

    /// <summary>Why this process cannot join an MPI job, or null when a launcher started it: Open MPI's mpirun sets
    /// <c>OMPI_COMM_WORLD_SIZE</c>, PMIx launchers (srun, prterun) <c>PMIX_RANK</c>, Hydra <c>PMI_RANK</c>.</summary>
    public static string? LauncherProblem(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        foreach (var v in new[] { "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK" })
            if (!string.IsNullOrEmpty(environment(v))) return null;
        return "this process was not started by mpirun (none of OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK is set); launch it as: mpirun -np N <command>";
    }

    /// <summary>
    /// Loads Open MPI, initialises it (once per process) and joins MPI_COMM_WORLD. Throws <see cref="DllNotFoundException"/>
    /// naming the library when it cannot be loaded, <see cref="InvalidOperationException"/> when no launcher started the
    /// process (see <see cref="LauncherProblem"/>), <see cref="CollectiveException"/> when MPI_Init fails.
    /// </summary>
    public static MpiCollective Create(TimeSpan timeout)
    {
        Collective.CheckTimeout(timeout);
        var (lib, library) = Load();
        if (LauncherProblem() is { } problem) throw new InvalidOperationException(problem);
        return new MpiCollective(lib, library, timeout);
    }

    /// <summary>dlopen with RTLD_GLOBAL: Open MPI dlopens its own components (mca_*.so), which look up libmpi's and
    /// libopen-pal's symbols globally; .NET's NativeLibrary.Load opens libraries RTLD_LOCAL, which can leave them unresolved.</summary>
    private static (IntPtr Lib, string Name) Load()
    {
        var tried = new List<string>();
        IntPtr dl = IntPtr.Zero;
        foreach (var libc in new[] { "libc.so.6", "libdl.so.2" })
            if (NativeLibrary.TryLoad(libc, out var h) && NativeLibrary.TryGetExport(h, "dlopen", out dl)) break;
        foreach (var name in Candidates())
        {
            tried.Add(name);
            IntPtr lib = IntPtr.Zero;
            if (dl != IntPtr.Zero)
            {
                var bytes = System.Text.Encoding.UTF8.GetBytes(name + "\0");
                fixed (byte* p = bytes) lib = ((delegate* unmanaged[Cdecl]<byte*, int, IntPtr>)dl)(p, 0x2 | 0x100);   // RTLD_NOW | RTLD_GLOBAL
            }
            if (lib == IntPtr.Zero && !NativeLibrary.TryLoad(name, out lib)) continue;
            return (lib, name);
        }
        throw new DllNotFoundException(
            $"the MPI library could not be loaded (tried {string.Join(", ", tried)}): install Open MPI (apt-get install openmpi-bin) " +
            $"or set {LibraryEnvironmentVariable} to the path of libmpi.so.40");
    }

    private void Check(int rc, string op)
    {
        if (rc == 0) return;
        _broken = true;
        throw new CollectiveException($"{op} failed on rank {Rank} of {Size}: MPI error {rc}: {ErrorText(rc)}");
    }

    private string ErrorText(int rc)
    {
        if (_errorString == null) return "(no text)";
        var buf = stackalloc byte[MaxErrorString + 1];
        int len = 0;
        if (_errorString(rc, buf, &len) != 0) return "(no text)";
        return System.Text.Encoding.UTF8.GetString(buf, Math.Clamp(len, 0, MaxErrorString));
    }

    /// <summary>Polls <paramref name="request"/> until it completes or the timeout passes.</summary>
    private void Wait(IntPtr request, string op, int count)
    {
        long start = Stopwatch.GetTimestamp();
        for (int polls = 0; ; polls++)
        {
            int done;
            Check(_test(&request, &done, null), op);
            if (done != 0) return;
            // Keep polling (MPI_Test is what moves a non-blocking collective forward) but yield the core when others want it.
            if (polls >= 64)
            {
                if (Stopwatch.GetElapsedTime(start) > Timeout)
                {
                    _broken = true;
                    throw new CollectiveTimeoutException(
                        $"{op} of {count} elements on rank {Rank} of {Size} timed out after {Timeout.TotalSeconds:0.###} s: another rank died, " +
                        "hangs or is far behind (raise the collective timeout if one is only slow)");
                }
                Thread.Yield();
            }
        }
    }

    private void Usable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_broken) throw new InvalidOperationException($"MPI on rank {Rank}: an earlier operation failed or timed out; the job must be aborted");
    }

    /// <inheritdoc/>
    public override void AllReduceSum(Span<float> data)
    {
        Usable();
        if (data.Length == 0) return;
        IntPtr req;
        fixed (float* p = data)
        {
            Check(_iallreduce((void*)InPlace, p, data.Length, _float, _sum, _comm, &req), "MPI_Iallreduce");
            Wait(req, "MPI_Iallreduce", data.Length);
        }
    }

    /// <inheritdoc/>
    public override void Broadcast(Span<byte> data, int root) => Broadcast(data, _byte, root);

    /// <inheritdoc/>
    protected override void BroadcastFloats(Span<float> data, int root) => Broadcast(data, _float, root);

    private void Broadcast<T>(Span<T> data, IntPtr type, int root) where T : unmanaged
    {
        Usable();
        Collective.CheckRoot(root, Size);
        if (data.Length == 0) return;
        IntPtr req;
        fixed (T* p = data)
        {
            Check(_ibcast(p, data.Length, type, root, _comm, &req), "MPI_Ibcast");
            Wait(req, "MPI_Ibcast", data.Length);
        }
    }

    /// <inheritdoc/>
    public override void Barrier()
    {
        Usable();
        IntPtr req;
        Check(_ibarrier(_comm, &req), "MPI_Ibarrier");
        Wait(req, "MPI_Ibarrier", 0);
    }

    /// <inheritdoc/>
    public override void Abort(int errorCode)
    {
        if (_disposed) Environment.Exit(errorCode);
        _broken = true;
        Console.Out.Flush();
        Console.Error.Flush();
        _abort(_comm, errorCode);
        Environment.Exit(errorCode);   // MPI_Abort does not return; in case it does
    }

    /// <summary>MPI_Finalize, unless an operation failed (then the job is to be aborted, and finalising would wait for ranks
    /// that are gone).</summary>
    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (!_broken) _finalize();
    }
}
