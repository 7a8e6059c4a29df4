// Asking for CUDA where there is none fails with a clear message, through the backend and through the factory.
using FastRec.Kernels;
using FastRec.Kernels.Gpu;

namespace FastRec.Tests.Kernels.Gpu;

public sealed class CudaAvailabilityTests
{
    private static void IgnoreWhereCudaExists()
    {
        try
        {
            using var b = IlgpuBackend.CreateCuda(useNative: false);
        }
        catch (CudaUnavailableException)
        {
            return;
        }
        Assert.Ignore("a CUDA device is present on this machine: the no-device path cannot be exercised here");
    }

    [Test]
    public void CreateCudaWithoutADeviceSaysNoCudaDeviceFound()
    {
        IgnoreWhereCudaExists();
        var ex = Assert.Throws<CudaUnavailableException>(() => IlgpuBackend.CreateCuda());
        Assert.That(ex!.Message, Does.StartWith("no CUDA device found").And.Contain("cpu"));
    }

    [Test]
    public void FactoryCudaWithoutADeviceSaysNoCudaDeviceFound()
    {
        IgnoreWhereCudaExists();
        var ex = Assert.Throws<CudaUnavailableException>(() => BackendFactory.Create("cuda"));
        Assert.That(ex!.Message, Does.StartWith("no CUDA device found"));
    }

    [Test]
    public void FactoryAutoFallsBackToTheCpuBackendWithoutCuda()
    {
        IgnoreWhereCudaExists();
        using var b = BackendFactory.Create("auto");
        Assert.That(b.Name, Is.EqualTo("cpu"));
    }

    [TestCase("cpu", "cpu")]
    [TestCase("CPU", "cpu")]
    [TestCase("reference", "reference")]
    [TestCase("ilgpu-cpu", "ilgpu-cpu")]
    public void FactoryCreatesTheNamedBackend(string name, string expected)
    {
        using var b = BackendFactory.Create(name);
        Assert.That(b.Name, Is.EqualTo(expected));
    }

    [Test]
    public void FactoryReadsFastrecBackendWhenNoNameIsGiven()
    {
        var old = Environment.GetEnvironmentVariable(BackendFactory.EnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(BackendFactory.EnvironmentVariable, "reference");
            using var b = BackendFactory.Create();
            Assert.That(b.Name, Is.EqualTo("reference"));
        }
        finally
        {
            Environment.SetEnvironmentVariable(BackendFactory.EnvironmentVariable, old);
        }
    }

    [Test]
    public void FactoryUnknownNameListsTheChoices()
    {
        var ex = Assert.Throws<ArgumentException>(() => BackendFactory.Create("tpu"));
        Assert.That(ex!.Message, Does.Contain("'tpu'").And.Contain("auto").And.Contain("cuda").And.Contain("ilgpu-cpu"));
    }
}

/// <summary>The optional native library: absent or broken files are reported, never fatal.</summary>
[NonParallelizable]
public sealed class NativeLibraryLoaderTests
{
    [Test]
    public void AFileThatIsNotALibraryIsReportedByPath()
    {
        var path = Path.Combine(Path.GetTempPath(), $"fastrec-not-a-lib-{Environment.ProcessId}.so");
        File.WriteAllText(path, "not an ELF file");
        var old = Environment.GetEnvironmentVariable("FASTREC_NATIVE_LIB");
        try
        {
            Environment.SetEnvironmentVariable("FASTREC_NATIVE_LIB", path);
            var native = NativeCuda.TryCreate(IntPtr.Zero, out var status);
            Assert.That(native, Is.Null);
            Assert.That(status, Does.Contain(path).And.Contain("could not be loaded"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("FASTREC_NATIVE_LIB", old);
            File.Delete(path);
        }
    }

    [Test]
    public void TheEnvironmentVariableIsSearchedFirst()
    {
        var old = Environment.GetEnvironmentVariable("FASTREC_NATIVE_LIB");
        try
        {
            Environment.SetEnvironmentVariable("FASTREC_NATIVE_LIB", "/nowhere/libfastrec_native.so");
            var candidates = NativeCuda.Candidates().ToList();
            Assert.That(candidates[0], Is.EqualTo("/nowhere/libfastrec_native.so"));
            // Then where the FastRec.Kernels package puts it (its runtimes/linux-x64/native asset), then build-native/ folders.
            Assert.That(candidates[1], Is.EqualTo(Path.Combine(AppContext.BaseDirectory, "libfastrec_native.so")));
            Assert.That(candidates[2], Is.EqualTo(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libfastrec_native.so")));
            Assert.That(candidates.Skip(3), Has.All.EndWith(Path.Combine("build-native", "libfastrec_native.so")));
        }
        finally
        {
            Environment.SetEnvironmentVariable("FASTREC_NATIVE_LIB", old);
        }
    }
}
