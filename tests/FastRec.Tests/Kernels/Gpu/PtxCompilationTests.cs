// Compiles every ILGPU kernel to PTX for sm_90 (H100/H200) without a GPU, so CUDA-only compile errors surface in CI.
using FastRec.Kernels.Gpu;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace FastRec.Tests.Kernels.Gpu;

/// <summary>ILGPU's PTX backend runs without a driver: each kernel entry point of <see cref="IlgpuBackend"/> must compile for
/// sm_90 (ILGPU writes `.target sm_80`, which the driver JITs for the device) with the PTX ISA ILGPU picks for a CUDA 13 driver (the H100/H200 machines run driver 580 = CUDA 13.0), and the
/// PTX must declare the entry and an sm_8x/9x target. Catches device-only failures (unsupported intrinsics, managed types,
/// dynamic allocation) that the CPU accelerator tolerates. Set FASTREC_PTX_DUMP=DIR to keep each kernel's PTX for reading.</summary>
public sealed class PtxCompilationTests
{
    private Context _context = null!;
    private PTXBackend _backend = null!;

    [OneTimeSetUp]
    public void Create()
    {
        _context = Context.Create(b => b.CPU(CPUDeviceKind.Nvidia).EnableAlgorithms().Optimize(OptimizationLevel.O2));
        var isa = CudaAccelerator.GetInstructionSet(CudaArchitecture.SM_90, CudaDriverVersion.FromMajorMinor(13, 0));
        _backend = new PTXBackend(_context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, isa, null);
    }

    [OneTimeTearDown]
    public void Dispose()
    {
        _backend?.Dispose();
        _context?.Dispose();
    }

    private static IEnumerable<TestCaseData> Kernels() =>
        IlgpuBackend.EntryPoints.Select(e => new TestCaseData(e.Name).SetName($"CompilesToPtx({e.Name})"));

    [TestCaseSource(nameof(Kernels))]
    public void CompilesToPtx(string name)
    {
        var (_, method, explicitlyGrouped) = IlgpuBackend.EntryPoints.Single(e => e.Name == name);
        var entry = explicitlyGrouped
            ? EntryPointDescription.FromExplicitlyGroupedKernel(method)
            : EntryPointDescription.FromImplicitlyGroupedKernel(method);
        var compiled = (PTXCompiledKernel)_backend.Compile(entry, new KernelSpecialization());
        string ptx = compiled.PTXAssembly; if (Environment.GetEnvironmentVariable("FASTREC_PTX_DUMP") is { } dir) File.WriteAllText(Path.Combine(dir, $"{name.Replace("<", "_").Replace(">", "")}.ptx"), ptx);
        // ILGPU 1.5.3 caps the emitted target at sm_80 (the driver JIT-compiles it for sm_90) with PTX ISA 8.x
        Assert.That(ptx, Does.Match(@"\.target sm_(80|8\d|9\d)\b"), "target architecture");
        Assert.That(ptx, Does.Match(@"\.version 8\.\d"), "PTX ISA");
        Assert.That(ptx, Does.Contain(".entry "), "kernel entry");
        Assert.That(ptx, Does.Contain(compiled.Name), "entry point name");
        Assert.That(ptx, Does.Not.Contain("call.uni"), "every helper is inlined (no device calls in the hot loops)");
    }

    [Test]
    public void EveryKernelOfTheBackendIsListed()
    {
        // the kernel table lists every kernel once; the PTX tests walk it, so none is missed
        Assert.That(IlgpuBackend.EntryPoints.Select(e => e.Name).Distinct().Count(), Is.EqualTo(IlgpuBackend.EntryPoints.Count));
        Assert.That(IlgpuBackend.EntryPoints, Has.Count.EqualTo(33));   // + MsePartial, MseFinish (distillation)
    }
}
