// Vector256 math building blocks for the CPU backend: FMA, erf/GELU, fixed-order (alignment-independent) reductions.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FastRec.Kernels.Cpu;

/// <summary>
/// Scalar and Vector256 math used by the CPU kernels. Reductions here use a fixed summation order that depends only on
/// the length (never on the address), so results are bit-identical from run to run wherever the data lives
/// (TensorPrimitives' aggregations align to the address, which would make sums depend on where a buffer landed).
/// </summary>
internal static class SimdMath
{
    /// <summary>a·b + c, fused when the CPU has FMA.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Fmadd(Vector256<float> a, Vector256<float> b, Vector256<float> c)
        => Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    /// <summary>a·b + c in double lanes, fused when the CPU has FMA.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Fmadd(Vector256<double> a, Vector256<double> b, Vector256<double> c)
        => Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    /// <summary>Scalar a·b + c, fused when the CPU has FMA (same rounding as the vector path).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Fmadd(float a, float b, float c) => Fma.IsSupported ? MathF.FusedMultiplyAdd(a, b, c) : a * b + c;

    // ------------------------------------------------------------------ exp
    // exp(x) = 2^k · e^r with k = round(x·log2 e), r = x − k·ln2 (Cody-Waite, two constants), e^r = 1 + r + r²·Q(r),
    // Q of degree 4 (Chebyshev fit of (e^r − 1 − r)/r² on [−ln2/2, ln2/2]). Max relative error 8.2e-8 (≈1 ulp) on
    // [−87, 88]; below −87.3 the result is flushed to 0 (no subnormals); arguments are clamped above at 88.
    // Used instead of Vector256.Exp (which widens to double and measured ~10× slower here).
    private const float Log2E = 1.44269504088896341f, Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
    private const float Q0 = 0.5f, Q1 = 0.16666577756404877f, Q2 = 0.041666556149721146f, Q3 = 0.008363173343241215f,
        Q4 = 0.0013926175888627768f;
    private const float ExpMin = -87.33f, ExpMax = 88f;

    /// <summary>e^x of 8 lanes, ~1 ulp; 0 below −87.33, finite (clamped) above 88; NaN lanes give NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        Vector256<float> cx = Vector256.Min(Vector256.Max(x, Vector256.Create(ExpMin)), Vector256.Create(ExpMax));
        Vector256<float> k = Vector256.Round(cx * Vector256.Create(Log2E));
        Vector256<float> r = Fmadd(k, Vector256.Create(-Ln2Hi), cx);
        r = Fmadd(k, Vector256.Create(-Ln2Lo), r);
        Vector256<float> q = Fmadd(Fmadd(Fmadd(Fmadd(Vector256.Create(Q4), r, Vector256.Create(Q3)), r, Vector256.Create(Q2)), r,
            Vector256.Create(Q1)), r, Vector256.Create(Q0));
        Vector256<float> y = Fmadd(r * r, q, r) + Vector256<float>.One;
        Vector256<int> bits = (Vector256.ConvertToInt32(k) + Vector256.Create(127)) << 23;
        y *= bits.AsSingle();
        y = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(ExpMin)), Vector256<float>.Zero, y);
        return Vector256.ConditionalSelect(Vector256.Equals(x, x), y, x); // NaN stays NaN
    }

    /// <summary>Scalar e^x with the same arithmetic as the vector version.</summary>
    public static float Exp(float x)
    {
        if (float.IsNaN(x)) return x;
        if (x < ExpMin) return 0f;
        float cx = MathF.Min(x, ExpMax);
        float k = MathF.Round(cx * Log2E);
        float r = Fmadd(k, -Ln2Hi, cx);
        r = Fmadd(k, -Ln2Lo, r);
        float q = Fmadd(Fmadd(Fmadd(Fmadd(Q4, r, Q3), r, Q2), r, Q1), r, Q0);
        float y = Fmadd(r * r, q, r) + 1f;
        return y * BitConverter.Int32BitsToSingle(((int)k + 127) << 23);
    }

    // ------------------------------------------------------------------ erf
    // |x| < 1: erf(x) = x·P(x²), P of degree 6 (Chebyshev fit of erf(√u)/√u on u ∈ [0,1]).
    // 1 ≤ |x| < 4: erf(x) = 1 − exp(−x²)·R(1/x), R of degree 8 (Chebyshev fit of erfcx(1/s) on s ∈ [1/4, 1]).
    // |x| ≥ 4: ±1 (erfc(4) = 1.5e-8 is below half an ulp of 1). Measured max relative error 1.7e-7 (≈1.5 ulp) over [-6, 6].
    private const float P0 = 1.1283791065216064f, P1 = -0.3761262595653534f, P2 = 0.11283594369888306f,
        P3 = -0.02685421146452427f, P4 = 0.005189087241888046f, P5 = -0.000801686430349946f, P6 = 7.875874871388078e-05f;
    private const float R0 = 0.00030501774745061994f, R1 = 0.558479905128479f, R2 = 0.04583790898323059f,
        R3 = -0.48593950271606445f, R4 = 0.5290705561637878f, R5 = -0.2865356206893921f, R6 = 0.061354149132966995f,
        R7 = 0.010945133864879608f, R8 = -0.00593402236700058f;

    /// <summary>erf(x), float, ~1e-7 relative.</summary>
    public static float Erf(float x)
    {
        float ax = MathF.Abs(x);
        if (ax < 1f)
        {
            float u = x * x;
            float p = Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(P6, u, P5), u, P4), u, P3), u, P2), u, P1), u, P0);
            return x * p;
        }
        if (!(ax < 4f)) return float.IsNaN(x) ? x : MathF.CopySign(1f, x);
        float s = 1f / ax;
        float r = Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(R8, s, R7), s, R6), s, R5), s, R4), s, R3), s, R2), s, R1), s, R0);
        return MathF.CopySign(1f - Exp(-(ax * ax)) * r, x);
    }

    /// <summary>erf of 8 lanes, ~1e-7 relative (see the constants above).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Erf(Vector256<float> x)
    {
        Vector256<float> one = Vector256.Create(1f);
        Vector256<float> ax = Vector256.Abs(x);
        Vector256<float> u = x * x;
        Vector256<float> p = Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Vector256.Create(P6), u, Vector256.Create(P5)), u,
            Vector256.Create(P4)), u, Vector256.Create(P3)), u, Vector256.Create(P2)), u, Vector256.Create(P1)), u, Vector256.Create(P0));
        Vector256<float> small = x * p;
        Vector256<float> isSmall = Vector256.LessThan(ax, one);
        if (Vector256.EqualsAll(isSmall.AsUInt32(), Vector256<uint>.AllBitsSet)) return small;

        Vector256<float> cx = Vector256.Min(Vector256.Max(ax, one), Vector256.Create(4f)); // in [1, 4]
        Vector256<float> s = one / cx;
        Vector256<float> r = Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Vector256.Create(R8), s, Vector256.Create(R7)), s,
            Vector256.Create(R6)), s, Vector256.Create(R5)), s, Vector256.Create(R4)), s, Vector256.Create(R3)), s,
            Vector256.Create(R2)), s, Vector256.Create(R1)), s, Vector256.Create(R0));
        Vector256<float> big = one - Exp(-(cx * cx)) * r;
        big = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(ax, Vector256.Create(4f)), one, big);
        big = (big.AsUInt32() | (x.AsUInt32() & Vector256.Create(0x80000000u))).AsSingle(); // copysign
        return Vector256.ConditionalSelect(isSmall, small, big);
    }

    private const float InvSqrt2 = 0.70710678118654752f;
    private const float InvSqrt2Pi = 0.39894228040143268f;

    // ------------------------------------------------------------------ GELU through erfc (no cancellation for x < 0)
    // GELU(x) = x·Φ(x), Φ(x) = 1 − Q(x) for x ≥ 0 and Q(|x|) for x < 0, with the tail Q(|x|) = ½·erfc(z), z = |x|/√2,
    // erfc(z) = exp(−z²)·t·E(t), t = 1/(1 + p·z) (Abramowitz–Stegun form), E of degree 8 fitted (Chebyshev in t) to
    // erfcx on z ∈ [0, 9.4]; exp(−z²) = exp(−x²/2) is taken from x² = hi + lo (exact, FMA) as exp(−hi/2)·(1 − lo/2).
    // Φ is within 4e-7 relative for every x (the erf form 0.5·(1 + erf) loses all relative accuracy in the left tail),
    // and exp(−z²) = exp(−x²/2) is also the Gaussian density the gradient needs: one exp, one division per 8 lanes.
    private const float GeluP = 0.47f;
    private const float E0 = 0.26509231328964233f, E1 = 0.26682808995246887f, E2 = 0.22064319252967834f, E3 = 0.25527283549308777f,
        E4 = -0.14454849064350128f, E5 = 0.4965401291847229f, E6 = -0.5910224318504333f, E7 = 0.2810535728931427f,
        E8 = -0.04985921457409859f;
    private const float TailMaxZ = 9.4f; // exp(−z²) flushes to 0 beyond: the fit covers every z that matters

    /// <summary>Φ(x) (standard normal CDF) and exp(−x²/2) of 8 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> NormalCdf(Vector256<float> x, out Vector256<float> gauss)
    {
        Vector256<float> z = Vector256.Abs(x) * Vector256.Create(InvSqrt2);
        Vector256<float> t = Vector256<float>.One / Fmadd(Vector256.Create(GeluP), Vector256.Min(z, Vector256.Create(TailMaxZ)), Vector256<float>.One);
        Vector256<float> r = t * Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Vector256.Create(E8), t, Vector256.Create(E7)), t,
            Vector256.Create(E6)), t, Vector256.Create(E5)), t, Vector256.Create(E4)), t, Vector256.Create(E3)), t,
            Vector256.Create(E2)), t, Vector256.Create(E1)), t, Vector256.Create(E0));
        // z² = x²/2 = (hi + lo)/2 with x² = hi + lo exact: z itself carries a rounding that exp(−z²) would amplify by z².
        Vector256<float> hi = x * x;
        Vector256<float> lo = Fma.IsSupported ? Fma.MultiplyAdd(x, x, -hi) : Vector256<float>.Zero;
        Vector256<float> half = Vector256.Create(0.5f);
        gauss = Exp(-(half * hi)) * (Vector256<float>.One - half * lo);
        Vector256<float> tail = Vector256.Create(0.5f) * gauss * r;
        return Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, Vector256<float>.Zero), Vector256<float>.One - tail, tail);
    }

    /// <summary>Scalar Φ(x) and exp(−x²/2), same arithmetic as the vector version.</summary>
    private static float NormalCdf(float x, out float gauss)
    {
        float z = MathF.Abs(x) * InvSqrt2;
        float t = 1f / Fmadd(GeluP, MathF.Min(z, TailMaxZ), 1f);
        float r = t * Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(Fmadd(E8, t, E7), t, E6), t, E5), t, E4), t, E3), t, E2), t, E1), t, E0);
        float hi = x * x;
        float lo = Fma.IsSupported ? MathF.FusedMultiplyAdd(x, x, -hi) : 0f;
        gauss = Exp(-0.5f * hi) * (1f - 0.5f * lo);
        float tail = 0.5f * gauss * r;
        return x >= 0f ? 1f - tail : tail;
    }

    /// <summary>GELU, erf form: x·Φ(x) = 0.5·x·(1 + erf(x/√2)).</summary>
    public static float Gelu(float x) => x * NormalCdf(x, out _);

    /// <summary>GELU of 8 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Gelu(Vector256<float> x) => x * NormalCdf(x, out _);

    /// <summary>d GELU / dx = Φ(x) + x·φ(x), φ(x) = exp(−x²/2)/√(2π).</summary>
    public static float GeluGrad(float x)
    {
        float cdf = NormalCdf(x, out float g);
        return Fmadd(x * InvSqrt2Pi, g, cdf);
    }

    /// <summary>GELU derivative of 8 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> GeluGrad(Vector256<float> x)
    {
        Vector256<float> cdf = NormalCdf(x, out Vector256<float> g);
        return Fmadd(x * Vector256.Create(InvSqrt2Pi), g, cdf);
    }

    // ------------------------------------------------------------------ tanh
    // |x| < 0.625: tanh(x) = x + x³·T(x²), T of degree 4 (Chebyshev fit of (tanh(√u) − √u)/u^1.5 on u ∈ [0, 0.39]);
    // otherwise tanh(|x|) = (1 − e)/(1 + e) with e = exp(−2|x|), sign restored. Max relative error ≈ 2e-7.
    private const float TanhSmall = 0.625f;
    private const float T0 = -0.333333283662796f, T1 = 0.1333276927471161f, T2 = -0.05385090783238411f,
        T3 = 0.020997179672122f, T4 = -0.006096714176237583f;

    /// <summary>tanh(x), float, ~2e-7 relative.</summary>
    public static float Tanh(float x)
    {
        float ax = MathF.Abs(x);
        if (ax < TanhSmall)
        {
            float u = x * x;
            return Fmadd(x * u, Fmadd(Fmadd(Fmadd(Fmadd(T4, u, T3), u, T2), u, T1), u, T0), x);
        }
        if (float.IsNaN(x)) return x;
        float e = Exp(-2f * ax);
        return MathF.CopySign((1f - e) / (1f + e), x);
    }

    /// <summary>tanh of 8 lanes, ~2e-7 relative.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Tanh(Vector256<float> x)
    {
        Vector256<float> u = x * x;
        Vector256<float> t = Fmadd(Fmadd(Fmadd(Fmadd(Vector256.Create(T4), u, Vector256.Create(T3)), u, Vector256.Create(T2)), u,
            Vector256.Create(T1)), u, Vector256.Create(T0));
        Vector256<float> small = Fmadd(x * u, t, x);
        Vector256<float> ax = Vector256.Abs(x);
        Vector256<float> isSmall = Vector256.LessThan(ax, Vector256.Create(TanhSmall));
        if (Vector256.EqualsAll(isSmall.AsUInt32(), Vector256<uint>.AllBitsSet)) return small;
        Vector256<float> e = Exp(ax * Vector256.Create(-2f));
        Vector256<float> big = (Vector256<float>.One - e) / (Vector256<float>.One + e);
        big = (big.AsUInt32() | (x.AsUInt32() & Vector256.Create(0x80000000u))).AsSingle(); // copysign
        big = Vector256.ConditionalSelect(Vector256.Equals(x, x), big, x);                 // NaN stays NaN
        return Vector256.ConditionalSelect(isSmall, small, big);
    }

    // ------------------------------------------------------------------ reductions (fixed order)
    /// <summary>Lane sum in a fixed order ((0+4)+(2+6)) + ((1+5)+(3+7)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HorizontalSum(Vector256<float> v)
    {
        Vector128<float> s = v.GetLower() + v.GetUpper();
        Vector128<float> t = s + Vector128.Shuffle(s, Vector128.Create(2, 3, 0, 1));
        return t.GetElement(0) + t.GetElement(1);
    }

    /// <summary>Lane sum of doubles in a fixed order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double HorizontalSum(Vector256<double> v)
    {
        Vector128<double> s = v.GetLower() + v.GetUpper();
        return s.GetElement(0) + s.GetElement(1);
    }

    /// <summary>Σ x, float, four vector accumulators then a fixed lane order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Sum(ReadOnlySpan<float> x)
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        int n = x.Length, i = 0;
        float tail = 0f;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
            for (; i <= n - 32; i += 32)
            {
                a0 += Vector256.LoadUnsafe(ref xr, (nuint)i);
                a1 += Vector256.LoadUnsafe(ref xr, (nuint)(i + 8));
                a2 += Vector256.LoadUnsafe(ref xr, (nuint)(i + 16));
                a3 += Vector256.LoadUnsafe(ref xr, (nuint)(i + 24));
            }
            for (; i <= n - 8; i += 8) a0 += Vector256.LoadUnsafe(ref xr, (nuint)i);
            for (int k = i; k < n; k++) tail += Unsafe.Add(ref xr, k);
            return HorizontalSum((a0 + a1) + (a2 + a3)) + tail;
        }
        for (; i < n; i++) tail += Unsafe.Add(ref xr, i);
        return tail;
    }

    /// <summary>Σ x·y, float, fixed order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float yr = ref MemoryMarshal.GetReference(y);
        int n = x.Length, i = 0;
        float tail = 0f;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
            for (; i <= n - 32; i += 32)
            {
                a0 = Fmadd(Vector256.LoadUnsafe(ref xr, (nuint)i), Vector256.LoadUnsafe(ref yr, (nuint)i), a0);
                a1 = Fmadd(Vector256.LoadUnsafe(ref xr, (nuint)(i + 8)), Vector256.LoadUnsafe(ref yr, (nuint)(i + 8)), a1);
                a2 = Fmadd(Vector256.LoadUnsafe(ref xr, (nuint)(i + 16)), Vector256.LoadUnsafe(ref yr, (nuint)(i + 16)), a2);
                a3 = Fmadd(Vector256.LoadUnsafe(ref xr, (nuint)(i + 24)), Vector256.LoadUnsafe(ref yr, (nuint)(i + 24)), a3);
            }
            for (; i <= n - 8; i += 8)
                a0 = Fmadd(Vector256.LoadUnsafe(ref xr, (nuint)i), Vector256.LoadUnsafe(ref yr, (nuint)i), a0);
            for (int k = i; k < n; k++) tail = Fmadd(Unsafe.Add(ref xr, k), Unsafe.Add(ref yr, k), tail);
            return HorizontalSum((a0 + a1) + (a2 + a3)) + tail;
        }
        for (; i < n; i++) tail = Fmadd(Unsafe.Add(ref xr, i), Unsafe.Add(ref yr, i), tail);
        return tail;
    }

    /// <summary>Σ (x − c)², float, fixed order (the two-pass variance).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float SumSquaredDeviation(ReadOnlySpan<float> x, float c)
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        int n = x.Length, i = 0;
        float tail = 0f;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> vc = Vector256.Create(c);
            Vector256<float> a0 = Vector256<float>.Zero, a1 = a0;
            for (; i <= n - 16; i += 16)
            {
                Vector256<float> d0 = Vector256.LoadUnsafe(ref xr, (nuint)i) - vc;
                Vector256<float> d1 = Vector256.LoadUnsafe(ref xr, (nuint)(i + 8)) - vc;
                a0 = Fmadd(d0, d0, a0);
                a1 = Fmadd(d1, d1, a1);
            }
            for (; i <= n - 8; i += 8) { Vector256<float> d = Vector256.LoadUnsafe(ref xr, (nuint)i) - vc; a0 = Fmadd(d, d, a0); }
            for (int k = i; k < n; k++) { float d = Unsafe.Add(ref xr, k) - c; tail = Fmadd(d, d, tail); }
            return HorizontalSum(a0 + a1) + tail;
        }
        for (; i < n; i++) { float d = Unsafe.Add(ref xr, i) - c; tail = Fmadd(d, d, tail); }
        return tail;
    }

    /// <summary>Σ x² accumulated in double, fixed order (element i goes to accumulator lane i mod 16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double SumSquaresDouble(ReadOnlySpan<float> x)
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        int n = x.Length, i = 0;
        double tail = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<double> a0 = Vector256<double>.Zero, a1 = a0, a2 = a0, a3 = a0;
            for (; i <= n - 16; i += 16)
            {
                (Vector256<double> l0, Vector256<double> h0) = Vector256.Widen(Vector256.LoadUnsafe(ref xr, (nuint)i));
                (Vector256<double> l1, Vector256<double> h1) = Vector256.Widen(Vector256.LoadUnsafe(ref xr, (nuint)(i + 8)));
                a0 = Fmadd(l0, l0, a0);
                a1 = Fmadd(h0, h0, a1);
                a2 = Fmadd(l1, l1, a2);
                a3 = Fmadd(h1, h1, a3);
            }
            for (; i < n; i++) { double d = Unsafe.Add(ref xr, i); tail += d * d; }
            return HorizontalSum((a0 + a1) + (a2 + a3)) + tail;
        }
        for (; i < n; i++) { double d = Unsafe.Add(ref xr, i); tail += d * d; }
        return tail;
    }

    /// <summary>Max of x, fixed order (-∞ for an empty span).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Max(ReadOnlySpan<float> x)
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        int n = x.Length, i = 0;
        float m = float.NegativeInfinity;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> a = Vector256.Create(float.NegativeInfinity);
            for (; i <= n - 8; i += 8) a = Vector256.Max(a, Vector256.LoadUnsafe(ref xr, (nuint)i));
            Vector128<float> s = Vector128.Max(a.GetLower(), a.GetUpper());
            s = Vector128.Max(s, Vector128.Shuffle(s, Vector128.Create(2, 3, 0, 1)));
            m = MathF.Max(s.GetElement(0), s.GetElement(1));
        }
        for (; i < n; i++) m = MathF.Max(m, Unsafe.Add(ref xr, i));
        return m;
    }
}
