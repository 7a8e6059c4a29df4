// Device math shared by the ILGPU kernels: group tree sum, erf/GELU, a tanh exact at the tails, stable sigmoid and log1p.
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu.Kernels;

/// <summary>Activation codes used by kernel arguments (the GEMM epilogue, the activation kernels).</summary>
internal static class ActCode
{
    public const int None = 0, Tanh = 1, Gelu = 2, Relu = 3;

    public static int Of(Activation a) => a switch
    {
        Activation.Gelu => Gelu,
        Activation.Relu => Relu,
        Activation.Tanh => Tanh,
        Activation.Identity => None,
        _ => throw new ArgumentOutOfRangeException(nameof(a), a, "unknown activation"),
    };
}

/// <summary>Float math callable from kernels (pure functions; compiled by ILGPU for PTX and the CPU accelerator).</summary>
internal static class GpuMath
{
    /// <summary>Deterministic tree sum over the group's threads (a power of two ≤ 256: 256 on a GPU,
    /// 32 on the CPU accelerator); every thread gets the total.</summary>
    internal static float GroupSum(ArrayView<float> sh, float v)
    {
        int tid = Group.IdxX;
        sh[tid] = v;
        Group.Barrier();
        for (int s = Group.DimX / 2; s > 0; s >>= 1)
        {
            if (tid < s) sh[tid] += sh[tid + s];
            Group.Barrier();
        }
        float total = sh[0];
        Group.Barrier();
        return total;
    }

    private const float InvSqrt2 = 0.70710678118654752f;
    private const float InvSqrt2Pi = 0.39894228040143268f;

    /// <summary>erfc(z) for z ≥ 0: Chebyshev fit with relative error below 1.2e-7 (Numerical Recipes' erfcc).</summary>
    private static float ErfcPos(float z)
    {
        float t = 1f / (1f + 0.5f * z);
        return t * XMath.Exp(-z * z - 1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f +
               t * (-0.18628806f + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f +
               t * (-0.82215223f + t * 0.17087277f)))))))));
    }

    /// <summary>erf(x) = ±(1 − erfc(|x|)).</summary>
    public static float Erf(float x)
    {
        float erfAbs = 1f - ErfcPos(XMath.Abs(x));
        return x >= 0f ? erfAbs : -erfAbs;
    }

    /// <summary>Φ(x), the standard normal CDF, from erfc so the left tail keeps its relative accuracy (no 1 + erf cancellation).</summary>
    public static float Phi(float x)
    {
        float half = 0.5f * ErfcPos(XMath.Abs(x) * InvSqrt2);
        return x >= 0f ? 1f - half : half;
    }

    /// <summary>GELU, erf form: x·Φ(x) = 0.5·x·(1 + erf(x/√2)).</summary>
    public static float Gelu(float x) => x * Phi(x);

    /// <summary>d GELU / dx = Φ(x) + x·φ(x).</summary>
    public static float GeluGrad(float x) => Phi(x) + x * InvSqrt2Pi * XMath.Exp(-0.5f * x * x);

    /// <summary>tanh(x): odd series near 0, 1 − 2/(e^{2|x|}+1) elsewhere (saturates to ±1 without overflow NaNs).</summary>
    public static float Tanh(float x)
    {
        float ax = XMath.Abs(x);
        if (ax < 0.125f)
        {
            float x2 = x * x;
            return x * (1f + x2 * (-1f / 3f + x2 * (2f / 15f + x2 * (-17f / 315f))));
        }
        float r = 1f - 2f / (XMath.Exp(2f * ax) + 1f);
        return x >= 0f ? r : -r;
    }

    /// <summary>Logistic sigmoid, stable for large |x|.</summary>
    public static float Sigmoid(float x)
    {
        if (x >= 0f) return 1f / (1f + XMath.Exp(-x));
        float e = XMath.Exp(x);
        return e / (1f + e);
    }

    /// <summary>log(1 + e) for e ≥ 0 with Kahan's correction (accurate for tiny e).</summary>
    public static float Log1p(float e)
    {
        float u = 1f + e;
        float d = u - 1f;
        return d == 0f ? e : XMath.Log(u) * (e / d);
    }

    /// <summary>Applies activation <paramref name="code"/> (<see cref="ActCode"/>).</summary>
    public static float Act(int code, float x)
    {
        if (code == ActCode.Gelu) return Gelu(x);
        if (code == ActCode.Tanh) return Tanh(x);
        if (code == ActCode.Relu) return x > 0f ? x : 0f;
        return x;
    }

    /// <summary>act'(x)·dy for activation <paramref name="code"/>, from the forward input x.</summary>
    public static float ActGrad(int code, float x, float dy)
    {
        if (code == ActCode.Gelu) return dy * GeluGrad(x);
        if (code == ActCode.Tanh) { float t = Tanh(x); return dy * (1f - t * t); }
        if (code == ActCode.Relu) return x > 0f ? dy : 0f;
        return dy;
    }

    /// <summary>Sum over groups of <paramref name="width"/> lanes (a power of two ≤ the warp size; 1 = no exchange) by a
    /// butterfly of warp shuffles: every lane gets the total, in a fixed order.</summary>
    public static float WarpSum(int width, float v)
    {
        for (int o = width / 2; o > 0; o >>= 1) v += Warp.ShuffleXor(v, o);
        return v;
    }

    /// <summary>Maximum over groups of <paramref name="width"/> lanes (every lane gets it).</summary>
    public static float WarpMax(int width, float v)
    {
        for (int o = width / 2; o > 0; o >>= 1) v = XMath.Max(v, Warp.ShuffleXor(v, o));
        return v;
    }
}
