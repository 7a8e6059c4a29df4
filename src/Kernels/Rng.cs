// Counter-based RNG: a pure function of (seed, counter), so masks never depend on thread scheduling.
using System.Runtime.CompilerServices;

namespace FastRec.Kernels;

/// <summary>Stateless random numbers keyed by (seed, counter). Every backend (CPU, ILGPU) calls these
/// same functions, so a dropout mask is bit-identical across backends and thread counts.</summary>
public static class Rng
{
    /// <summary>SplitMix64 finaliser of seed and counter: a well-mixed 64-bit value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Hash(ulong seed, ulong counter)
    {
        ulong z = seed + (counter + 1) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform float in [0, 1) with 24 random bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Uniform(ulong seed, ulong counter)
        => (Hash(seed, counter) >> 40) * (1.0f / 16777216.0f);

    /// <summary>Dropout keep decision for element <paramref name="i"/> of a tensor under <paramref name="d"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Keep(in DropoutSpec d, long i) => Uniform(d.Seed, d.Offset + (ulong)i) >= d.P;

    /// <summary>Standard normal via Box-Muller from two counters (for weight initialisation).</summary>
    public static float Normal(ulong seed, ulong counter)
    {
        double u1 = (Hash(seed, 2 * counter) >> 11) * (1.0 / 9007199254740992.0);
        double u2 = (Hash(seed, 2 * counter + 1) >> 11) * (1.0 / 9007199254740992.0);
        u1 = Math.Max(u1, 1e-300);
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2));
    }
}
