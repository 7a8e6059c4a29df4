// The backends every parity test runs on, as a list of (name, factory): adding a backend is one line here.
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Kernels.Reference;

namespace FastRec.Tests.Kernels;

/// <summary>Candidate backends for <see cref="BackendParityTests"/>, each compared against <see cref="ReferenceBackend"/>.
/// A factory that throws (no device, missing native library) makes that fixture Ignored with the reason.</summary>
public static class Backends
{
    /// <summary>(name, factory) of every candidate backend.</summary>
    public static readonly (string Name, Func<IBackend> Create)[] Candidates =
    [
        ("cpu", () => new CpuSimdBackend()),
        ("ilgpu-cpu", () => FastRec.Kernels.Gpu.IlgpuBackend.CreateCpuAccelerator()),
        ("ilgpu-gpu-paths", GpuPaths),   // the code paths a GPU takes, on the CPU accelerator
    ];

    /// <summary>ILGPU's CPU accelerator forced onto the code paths a GPU takes: tiled GEMM at every size (no small-GEMM
    /// fast path), warp-shuffle row reductions of the device's warp width.</summary>
    private static IBackend GpuPaths()
    {
        var g = FastRec.Kernels.Gpu.IlgpuBackend.CreateCpuAccelerator();
        g.SmallGemmMaxOutputs = 0;
        g.RowWidth = g.Accelerator.WarpSize;
        return g;
    }

    /// <summary>One NUnit fixture per candidate, argument = its name.</summary>
    public static IEnumerable<TestFixtureData> Fixtures()
    {
        foreach (var (name, _) in Candidates) yield return new TestFixtureData(name);
    }

    /// <summary>Creates the candidate called <paramref name="name"/>.</summary>
    public static IBackend Create(string name)
    {
        foreach (var (n, create) in Candidates)
            if (n == name) return create();
        throw new ArgumentException($"name: no candidate backend called '{name}'", nameof(name));
    }

    /// <summary>The oracle every candidate is compared against.</summary>
    public static IBackend CreateReference() => new ReferenceBackend();
}
