// Smoke tests of the shared kernel plumbing: views, shape checks, the counter RNG.
using FastRec.Kernels;

namespace FastRec.Tests;

public class SmokeTests
{
    [Test]
    public void RngIsAPureFunctionOfSeedAndCounter()
    {
        Assert.That(Rng.Uniform(7, 12345), Is.EqualTo(Rng.Uniform(7, 12345)));
        Assert.That(Rng.Uniform(7, 12345), Is.Not.EqualTo(Rng.Uniform(8, 12345)));
        double mean = 0; const int n = 100_000;
        for (int i = 0; i < n; i++) { float u = Rng.Uniform(42, (ulong)i); Assert.That(u, Is.InRange(0f, 1f)); mean += u; }
        Assert.That(mean / n, Is.EqualTo(0.5).Within(0.01));
    }
}
