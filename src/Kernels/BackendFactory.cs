// Picks a backend by name (auto | cpu | cuda | reference | ilgpu-cpu) or from the FASTREC_BACKEND environment variable.
using FastRec.Kernels.Cpu;
using FastRec.Kernels.Gpu;
using FastRec.Kernels.Reference;

namespace FastRec.Kernels;

/// <summary>Creates <see cref="IBackend"/> instances from user-facing names (CLI options, config files, the environment).</summary>
public static class BackendFactory
{
    /// <summary>Environment variable read when no name is given: <c>FASTREC_BACKEND</c>.</summary>
    public const string EnvironmentVariable = "FASTREC_BACKEND";

    /// <summary>The accepted names.</summary>
    public static IReadOnlyList<string> Names { get; } = ["auto", "cpu", "cuda", "reference", "ilgpu-cpu"];

    /// <summary>
    /// Creates the backend called <paramref name="name"/> (case-insensitive); null or empty reads <see cref="EnvironmentVariable"/>,
    /// and when that is unset too, "auto".
    /// <list type="bullet">
    /// <item><c>auto</c>: CUDA (ILGPU, plus the native cuBLASLt library when found) if a CUDA device exists, else <c>cpu</c>.</item>
    /// <item><c>cpu</c>: <see cref="CpuSimdBackend"/>, the production CPU path.</item>
    /// <item><c>cuda</c>: <see cref="IlgpuBackend.CreateCuda"/>; throws <see cref="CudaUnavailableException"/> without a device.</item>
    /// <item><c>reference</c>: <see cref="ReferenceBackend"/>, the double-precision spec (slow).</item>
    /// <item><c>ilgpu-cpu</c>: the ILGPU kernels on ILGPU's CPU accelerator (tests; very slow).</item>
    /// </list>
    /// </summary>
    public static IBackend Create(string? name = null)
    {
        if (string.IsNullOrWhiteSpace(name)) name = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(name)) name = "auto";
        switch (name.Trim().ToLowerInvariant())
        {
            case "auto":
                try { return IlgpuBackend.CreateCuda(); }
                catch (CudaUnavailableException) { return new CpuSimdBackend(); }
            case "cpu": return new CpuSimdBackend();
            case "cuda": return IlgpuBackend.CreateCuda();
            case "reference": return new ReferenceBackend();
            case "ilgpu-cpu": return IlgpuBackend.CreateCpuAccelerator();
            default:
                throw new ArgumentException($"backend: unknown backend '{name}'; choose one of {string.Join(", ", Names)}", nameof(name));
        }
    }
}
