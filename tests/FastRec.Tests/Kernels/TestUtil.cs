// Test helpers shared by kernel tests: seeded random data, poisoned buffers, tolerant comparisons.
using FastRec.Kernels;

namespace FastRec.Tests.Kernels;

internal static class TestUtil
{
    /// <summary>Deterministic uniform data in [lo, hi) from the counter RNG.</summary>
    public static float[] Random(int n, ulong seed, float lo = -1f, float hi = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = lo + (hi - lo) * Rng.Uniform(seed, (ulong)i);
        return a;
    }

    /// <summary>A buffer on <paramref name="backend"/> holding <paramref name="data"/>.</summary>
    public static DeviceBuffer<T> Upload<T>(IBackend backend, T[] data) where T : unmanaged
    {
        var buf = backend.Allocate<T>(data.Length);
        if (data.Length > 0) backend.Upload(buf.All, data);
        return buf;
    }

    /// <summary>An output buffer pre-filled with NaN, so an element the kernel forgot to write fails the comparison.</summary>
    public static DeviceBuffer<float> Poisoned(IBackend backend, int n)
    {
        var a = new float[n];
        Array.Fill(a, float.NaN);
        return Upload(backend, a);
    }

    public static float[] Download(IBackend backend, View<float> v)
    {
        var a = new float[v.Length];
        backend.Download(v, a);
        return a;
    }

    /// <summary>Asserts |a-b| &lt;= atol + rtol·|b| elementwise, reporting the worst index.</summary>
    public static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, float atol, float rtol, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length");
        int worst = -1; double worstExcess = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double diff = Math.Abs((double)actual[i] - expected[i]);
            double tol = atol + rtol * Math.Abs((double)expected[i]);
            if (!(diff <= tol) && (worst < 0 || !(diff - tol <= worstExcess))) { worst = i; worstExcess = double.IsNaN(diff) ? double.PositiveInfinity : diff - tol; }
        }
        if (worst >= 0)
            Assert.Fail($"{what}: element {worst} of {actual.Length}: got {actual[worst]}, expected {expected[worst]} (atol {atol}, rtol {rtol})");
    }

    /// <summary>Max relative error max|a-b| / max(max|b|, tiny), the parity metric used against LibTorch.</summary>
    public static double MaxRelError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        double maxDiff = 0, maxRef = 1e-30;
        for (int i = 0; i < actual.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs((double)actual[i] - expected[i]));
            maxRef = Math.Max(maxRef, Math.Abs((double)expected[i]));
        }
        return maxDiff / maxRef;
    }
}
