// P/Invoke bridge to libfastrec_native (cuBLASLt TF32 SGEMM), loaded at run time and optional.
using System.Runtime.InteropServices;
using ILGPU;

namespace FastRec.Kernels.Gpu;

/// <summary>
/// The native CUDA library <c>libfastrec_native.so</c> (native/*.cu, built by CMake into build-native/ where nvcc exists).
/// Found through the <c>FASTREC_NATIVE_LIB</c> environment variable (a file path), else <c>build-native/</c> under the
/// working directory, the application directory or any of their parents. Absent or failing: the ILGPU kernels serve.
/// Memory is shared with ILGPU by raw device pointers; work is queued on ILGPU's CUDA stream, so ordering is kept.
/// </summary>
public sealed unsafe class NativeCuda : IDisposable
{
    /// <summary>Library ABI version this bridge expects from <c>fastrec_native_version</c>.</summary>
    public const int AbiVersion = 2;

    private readonly IntPtr _lib;
    private IntPtr _handle;
    private readonly IntPtr _stream;
    private readonly delegate* unmanaged[Cdecl]<IntPtr, int, int, int, int, int, float, IntPtr, int, IntPtr, int, float, IntPtr, int,
        int, long, long, long, IntPtr, IntPtr, int> _gemm;
    private readonly delegate* unmanaged[Cdecl]<IntPtr, void> _destroy;

    /// <summary>Path the library was loaded from.</summary>
    public string Path { get; }

    private NativeCuda(IntPtr lib, string path, IntPtr handle, IntPtr stream)
    {
        _lib = lib;
        Path = path;
        _handle = handle;
        _stream = stream;
        _gemm = (delegate* unmanaged[Cdecl]<IntPtr, int, int, int, int, int, float, IntPtr, int, IntPtr, int, float, IntPtr, int,
            int, long, long, long, IntPtr, IntPtr, int>)NativeLibrary.GetExport(lib, "fastrec_gemm");
        _destroy = (delegate* unmanaged[Cdecl]<IntPtr, void>)NativeLibrary.GetExport(lib, "fastrec_gemm_destroy");
    }

    /// <summary>Candidate paths of the library, in search order.</summary>
    public static IEnumerable<string> Candidates()
    {
        var env = Environment.GetEnvironmentVariable("FASTREC_NATIVE_LIB");
        if (!string.IsNullOrEmpty(env)) yield return env;
        // From the FastRec.Kernels package: copied next to the application, or left under runtimes/ (portable builds).
        yield return System.IO.Path.Combine(AppContext.BaseDirectory, "libfastrec_native.so");
        yield return System.IO.Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libfastrec_native.so");
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                yield return System.IO.Path.Combine(dir.FullName, "build-native", "libfastrec_native.so");
        }
    }

    /// <summary>Loads the library and creates its cuBLASLt handle bound to <paramref name="stream"/>; null (with the reason in
    /// <paramref name="status"/>) when it is absent or unusable.</summary>
    public static NativeCuda? TryCreate(IntPtr stream, out string status)
    {
        foreach (var path in Candidates())
        {
            if (!File.Exists(path)) continue;
            if (!NativeLibrary.TryLoad(path, out var lib)) { status = $"native library at {path} could not be loaded"; return null; }
            try
            {
                if (!NativeLibrary.TryGetExport(lib, "fastrec_native_version", out var verPtr) ||
                    !NativeLibrary.TryGetExport(lib, "fastrec_gemm_create", out var createPtr))
                {
                    NativeLibrary.Free(lib);
                    status = $"native library at {path} lacks the FastRec entry points";
                    return null;
                }
                int devices;
                int version = ((delegate* unmanaged[Cdecl]<int*, int>)verPtr)(&devices);
                if (version != AbiVersion)
                {
                    NativeLibrary.Free(lib);
                    status = $"native library at {path} has ABI {version}, expected {AbiVersion}";
                    return null;
                }
                IntPtr handle;
                int rc = ((delegate* unmanaged[Cdecl]<IntPtr*, IntPtr, int>)createPtr)(&handle, stream);
                if (rc != 0)
                {
                    NativeLibrary.Free(lib);
                    status = $"native library at {path}: cuBLASLt handle creation failed (code {rc})";
                    return null;
                }
                status = $"cuBLASLt TF32 GEMM from {path}";
                return new NativeCuda(lib, path, handle, stream);
            }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
            {
                NativeLibrary.Free(lib);
                status = $"native library at {path} is unusable: {e.Message}";
                return null;
            }
        }
        status = "native library not found (set FASTREC_NATIVE_LIB or build native/ into build-native/)";
        return null;
    }

    /// <summary>Row-major strided-batched GEMM on device pointers (semantics of <see cref="IBackend.Gemm"/>, optional
    /// per-column bias). Returns false when the library declines (the caller then runs the ILGPU kernel).</summary>
    internal bool Gemm(bool transA, bool transB, int M, int N, int K, float alpha,
                       ArrayView<float> a, int lda, ArrayView<float> b, int ldb, bool accumulate, ArrayView<float> c, int ldc,
                       int batch, long strideA, long strideB, long strideC, ArrayView<float> bias, bool hasBias)
    {
        if (_handle == IntPtr.Zero) return false;
        int rc = _gemm(_handle, transA ? 1 : 0, transB ? 1 : 0, M, N, K, alpha, Ptr(a), lda, Ptr(b), ldb, accumulate ? 1f : 0f,
                       Ptr(c), ldc, batch, strideA, strideB, strideC, hasBias ? Ptr(bias) : IntPtr.Zero, _stream);
        return rc == 0;
    }

    private static IntPtr Ptr(ArrayView<float> v) => Address(v);

    /// <summary>Raw address of a view's first element (device address on CUDA).</summary>
    internal static IntPtr Address<T>(ArrayView<T> v) where T : unmanaged =>
        ((IArrayView)v).Buffer.NativePtr + (nint)((IContiguousArrayView)v).IndexInBytes;

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_handle != IntPtr.Zero) { _destroy(_handle); _handle = IntPtr.Zero; }
    }
}
