// Vectorised dropout keep masks: Rng.Keep's SplitMix64 decisions for 8 consecutive elements at a time, bit-identical.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FastRec.Kernels.Cpu;

/// <summary>
/// <see cref="Rng.Keep"/> over consecutive counters in Vector256&lt;ulong&gt; lanes. Same decisions bit for bit:
/// Uniform = (hash &gt;&gt; 40)·2⁻²⁴ is exact, so Uniform ≥ P ⇔ (hash &gt;&gt; 40) ≥ ⌈P·2²⁴⌉ in integers.
/// </summary>
internal static class SimdRng
{
    private const ulong Golden = 0x9E3779B97F4A7C15UL, M1 = 0xBF58476D1CE4E5B9UL, M2 = 0x94D049BB133111EBUL;

    /// <summary>True when the 64-bit lane multiply is done in hardware (AVX-512DQ/VL) or by AVX2 32-bit products.</summary>
    public static bool IsAccelerated => Vector256.IsHardwareAccelerated && (Avx512DQ.VL.IsSupported || Avx2.IsSupported);

    /// <summary>Keep masks (all-ones = keep) for counters Offset + first, Offset + first + 1, ... eight per call.</summary>
    public struct KeepStream
    {
        private Vector256<ulong> _z;              // seed + (counter + 1)·Golden for the next four counters
        private readonly Vector256<long> _threshold;

        public KeepStream(in DropoutSpec d, long first)
        {
            ulong c0 = d.Offset + (ulong)first;
            _z = Vector256.Create(d.Seed + (c0 + 1) * Golden) + Vector256.Create(0UL, Golden, unchecked(2 * Golden), unchecked(3 * Golden));
            _threshold = Vector256.Create((long)Math.Ceiling(d.P * 16777216.0));
        }

        /// <summary>Masks of the next eight elements as float lanes.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Next8()
        {
            Vector256<ulong> step = Vector256.Create(unchecked(4 * Golden));
            Vector256<ulong> za = _z, zb = _z + step;
            _z = zb + step;
            Vector256<long> ka = Vector256.GreaterThanOrEqual((Mix(za) >> 40).AsInt64(), _threshold);
            Vector256<long> kb = Vector256.GreaterThanOrEqual((Mix(zb) >> 40).AsInt64(), _threshold);
            return Vector256.Narrow(ka, kb).AsSingle();
        }
    }

    /// <summary>The SplitMix64 finaliser of <see cref="Rng.Hash"/> on four lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> Mix(Vector256<ulong> z)
    {
        z = Mul(z ^ (z >> 30), M1);
        z = Mul(z ^ (z >> 27), M2);
        return z ^ (z >> 31);
    }

    /// <summary>a·b mod 2⁶⁴ per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> Mul(Vector256<ulong> a, ulong b)
    {
        if (Avx512DQ.VL.IsSupported) return Avx512DQ.VL.MultiplyLow(a, Vector256.Create(b));
        Vector256<uint> bl = Vector256.Create(b & 0xFFFFFFFFUL).AsUInt32(), bh = Vector256.Create(b >> 32).AsUInt32();
        Vector256<ulong> lo = Avx2.Multiply(a.AsUInt32(), bl);
        Vector256<ulong> cross = Avx2.Multiply((a >> 32).AsUInt32(), bl) + Avx2.Multiply(a.AsUInt32(), bh);
        return lo + (cross << 32);
    }
}
