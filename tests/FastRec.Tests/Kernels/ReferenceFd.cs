// Central finite differences in float64 for checking RefMath's backward kernels.
using FastRec.Kernels;

namespace FastRec.Tests.Kernels;

/// <summary>Finite-difference helpers: the scalar loss is L = Σ out·R with a fixed random R, perturbed one element at a time.</summary>
internal static class ReferenceFd
{
    /// <summary>Central-difference step. With L of order 10 the rounding error is ~1e-15·10/1e-6 = 1e-8, truncation ~h² = 1e-12.</summary>
    public const double H = 1e-6;

    /// <summary>Deterministic doubles in [lo, hi) from the counter RNG (widened floats are fine for FD).</summary>
    public static double[] Rand(int n, ulong seed, double lo = -1, double hi = 1)
    {
        var a = new double[n];
        for (int i = 0; i < n; i++) a[i] = lo + (hi - lo) * Rng.Uniform(seed, (ulong)i);
        return a;
    }

    /// <summary>Σ a·r.</summary>
    public static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> r)
    {
        Assert.That(a.Length, Is.EqualTo(r.Length), "Dot: lengths");
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * r[i];
        return s;
    }

    /// <summary>An array filled with NaN: an assigned gradient that the kernel forgets to write fails the check.</summary>
    public static double[] NaNs(int n) { var a = new double[n]; Array.Fill(a, double.NaN); return a; }

    /// <summary>
    /// Compares <paramref name="analytic"/> with the central difference of <paramref name="loss"/> wrt each element of
    /// <paramref name="x"/> (perturbed in place and restored). Returns null when |fd − an| ≤ atol + rtol·|an| everywhere,
    /// else a description of the worst element.
    /// </summary>
    public static string? Mismatch(double[] x, double[] analytic, Func<double> loss, double atol = 1e-7, double rtol = 1e-6)
    {
        if (analytic.Length != x.Length) return $"analytic has {analytic.Length} elements, x has {x.Length}";
        string? worst = null; double worstExcess = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double x0 = x[i];
            x[i] = x0 + H; double lp = loss();
            x[i] = x0 - H; double lm = loss();
            x[i] = x0;
            double fd = (lp - lm) / (2 * H);
            double excess = Math.Abs(fd - analytic[i]) - (atol + rtol * Math.Abs(analytic[i]));
            if (!(excess <= 0) && (worst is null || !(excess <= worstExcess)))
            {
                worstExcess = double.IsNaN(excess) ? double.PositiveInfinity : excess;
                worst = $"element {i} of {x.Length}: analytic {analytic[i]:R}, finite difference {fd:R}";
            }
        }
        return worst;
    }

    /// <summary>Asserts <see cref="Mismatch"/> finds nothing.</summary>
    public static void Check(string what, double[] x, double[] analytic, Func<double> loss, double atol = 1e-7, double rtol = 1e-6)
    {
        string? m = Mismatch(x, analytic, loss, atol, rtol);
        Assert.That(m, Is.Null, $"{what}: {m}");
    }
}
