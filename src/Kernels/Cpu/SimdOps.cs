// Elementwise operator structs (scalar + Vector256 Invoke) and the one loop that drives them, TensorPrimitives style.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FastRec.Kernels.Cpu;

/// <summary>An elementwise unary operator: the same function on one float and on 8 lanes.</summary>
internal interface IUnaryOp
{
    static abstract float Invoke(float x);
    static abstract Vector256<float> Invoke(Vector256<float> x);
}

/// <summary>An elementwise binary operator: the same function on one float and on 8 lanes.</summary>
internal interface IBinaryOp
{
    static abstract float Invoke(float x, float y);
    static abstract Vector256<float> Invoke(Vector256<float> x, Vector256<float> y);
}

/// <summary>GELU (erf form).</summary>
internal readonly struct GeluOp : IUnaryOp
{
    public static float Invoke(float x) => SimdMath.Gelu(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Invoke(Vector256<float> x) => SimdMath.Gelu(x);
}

/// <summary>max(x, 0).</summary>
internal readonly struct ReluOp : IUnaryOp
{
    public static float Invoke(float x) => x > 0f ? x : 0f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Invoke(Vector256<float> x) => Vector256.GreaterThan(x, Vector256<float>.Zero) & x;
}

/// <summary>tanh.</summary>
internal readonly struct TanhOp : IUnaryOp
{
    public static float Invoke(float x) => SimdMath.Tanh(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Invoke(Vector256<float> x) => SimdMath.Tanh(x);
}

/// <summary>δout · (1 − tanh²(x)) from the forward input x.</summary>
internal readonly struct TanhBackwardFromInputOp : IBinaryOp
{
    public static float Invoke(float dOut, float x) { float t = SimdMath.Tanh(x); return dOut - dOut * t * t; }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Invoke(Vector256<float> dOut, Vector256<float> x) { Vector256<float> t = SimdMath.Tanh(x); return dOut - dOut * t * t; }
}

/// <summary>δout · GELU'(x) with x = y.</summary>
internal readonly struct GeluBackwardOp : IBinaryOp
{
    public static float Invoke(float dOut, float x) => dOut * SimdMath.GeluGrad(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Invoke(Vector256<float> dOut, Vector256<float> x) => dOut * SimdMath.GeluGrad(x);
}

/// <summary>δout where x &gt; 0, else 0.</summary>
internal readonly struct ReluBackwardOp : IBinaryOp
{
    public static float Invoke(float dOut, float x) => x > 0f ? dOut : 0f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Invoke(Vector256<float> dOut, Vector256<float> x) => Vector256.GreaterThan(x, Vector256<float>.Zero) & dOut;
}

/// <summary>δout · (1 − t²) where t = tanh(x) was already computed.</summary>
internal readonly struct TanhBackwardOp : IBinaryOp
{
    public static float Invoke(float dOut, float t) => dOut - dOut * t * t;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Invoke(Vector256<float> dOut, Vector256<float> t) => dOut - dOut * t * t;
}

/// <summary>The loop drivers: vector body (unrolled ×2), then the tail run through the vector Invoke on a zero-padded copy,
/// so every element gets the same arithmetic whatever its position. dst may be the same span as an input (not a shifted one).</summary>
internal static class SimdLoop
{
    /// <summary>dst[i] = TOp(x[i]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Map<TOp>(ReadOnlySpan<float> x, Span<float> dst) where TOp : IUnaryOp
    {
        int n = x.Length;
        if (dst.Length < n) throw new ArgumentException("destination too short", nameof(dst));
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float dr = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        if (!Vector256.IsHardwareAccelerated)
        {
            for (; i < n; i++) Unsafe.Add(ref dr, i) = TOp.Invoke(Unsafe.Add(ref xr, i));
            return;
        }
        for (; i <= n - 16; i += 16)
        {
            Vector256<float> a = TOp.Invoke(Vector256.LoadUnsafe(ref xr, (nuint)i));
            Vector256<float> b = TOp.Invoke(Vector256.LoadUnsafe(ref xr, (nuint)(i + 8)));
            a.StoreUnsafe(ref dr, (nuint)i);
            b.StoreUnsafe(ref dr, (nuint)(i + 8));
        }
        for (; i <= n - 8; i += 8) TOp.Invoke(Vector256.LoadUnsafe(ref xr, (nuint)i)).StoreUnsafe(ref dr, (nuint)i);
        if (i < n)
        {
            Span<float> buf = stackalloc float[8];
            buf.Clear();
            x[i..].CopyTo(buf);
            TOp.Invoke(Vector256.Create<float>(buf)).CopyTo(buf);
            buf[..(n - i)].CopyTo(dst[i..]);
        }
    }

    /// <summary>dst[i] = TOp(x[i], y[i]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Map<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> dst) where TOp : IBinaryOp
    {
        int n = x.Length;
        if (y.Length < n || dst.Length < n) throw new ArgumentException("operand too short", nameof(dst));
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float yr = ref MemoryMarshal.GetReference(y);
        ref float dr = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        if (!Vector256.IsHardwareAccelerated)
        {
            for (; i < n; i++) Unsafe.Add(ref dr, i) = TOp.Invoke(Unsafe.Add(ref xr, i), Unsafe.Add(ref yr, i));
            return;
        }
        for (; i <= n - 16; i += 16)
        {
            Vector256<float> a = TOp.Invoke(Vector256.LoadUnsafe(ref xr, (nuint)i), Vector256.LoadUnsafe(ref yr, (nuint)i));
            Vector256<float> b = TOp.Invoke(Vector256.LoadUnsafe(ref xr, (nuint)(i + 8)), Vector256.LoadUnsafe(ref yr, (nuint)(i + 8)));
            a.StoreUnsafe(ref dr, (nuint)i);
            b.StoreUnsafe(ref dr, (nuint)(i + 8));
        }
        for (; i <= n - 8; i += 8)
            TOp.Invoke(Vector256.LoadUnsafe(ref xr, (nuint)i), Vector256.LoadUnsafe(ref yr, (nuint)i)).StoreUnsafe(ref dr, (nuint)i);
        if (i < n)
        {
            Span<float> bx = stackalloc float[8];
            Span<float> by = stackalloc float[8];
            bx.Clear(); by.Clear();
            x[i..n].CopyTo(bx);
            y[i..n].CopyTo(by);
            TOp.Invoke(Vector256.Create<float>(bx), Vector256.Create<float>(by)).CopyTo(bx);
            bx[..(n - i)].CopyTo(dst[i..]);
        }
    }
}
