// Asking for CUDA where there is none fails with a clear message, through the backend and through the factory.
using FastRec.Kernels;
using FastRec.Kernels.Gpu;

namespace FastRec.Tests.Gpu;

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
