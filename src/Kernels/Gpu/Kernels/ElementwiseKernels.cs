// Elementwise and data-movement kernels of the ILGPU backend: activations, dropout, strided copies.
using ILGPU;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu.Kernels;

/// <summary>A specialised elementwise activation (generic struct operator: one kernel instance per activation).</summary>
internal interface IActOp
{
    float Forward(float x);
    float Backward(float x, float dy);
}

internal struct GeluOp : IActOp
{
    public float Forward(float x) => GpuMath.Gelu(x);
    public float Backward(float x, float dy) => dy * GpuMath.GeluGrad(x);
}

internal struct ReluOp : IActOp
{
    public float Forward(float x) => x > 0f ? x : 0f;
    public float Backward(float x, float dy) => x > 0f ? dy : 0f;
}

internal struct TanhOp : IActOp
{
    public float Forward(float x) => GpuMath.Tanh(x);
    public float Backward(float x, float dy) { float t = GpuMath.Tanh(x); return dy * (1f - t * t); }
}

internal struct IdentityOp : IActOp
{
    public float Forward(float x) => x;
    public float Backward(float x, float dy) => dy;
}

/// <summary>Arguments of <see cref="ElementwiseKernels.Copy2D"/>.</summary>
internal struct Copy2DArgs
{
    public int Cols, LdDst, DstCol, LdSrc, SrcCol, Accumulate;
}

/// <summary>Elementwise kernels are explicitly grouped and grid-strided: thread g handles elements g, g + S, g + 2S...
/// (S = all launched threads), so the launch size is a tuning choice (<see cref="Stride"/>) independent of n.</summary>
internal static class ElementwiseKernels
{
    /// <summary>First element and stride of the calling thread in a grid-stride loop.</summary>
    public static int Stride => Grid.DimX * Group.DimX;

    /// <summary>y = act(x) over n elements.</summary>
    public static void ActForward<TOp>(ArrayView<float> y, ArrayView<float> x, int n) where TOp : struct, IActOp
    {
        for (int i = Grid.GlobalIndex.X; i < n; i += Stride) y[i] = default(TOp).Forward(x[i]);
    }

    /// <summary>dx = act'(x)·dy (assigned).</summary>
    public static void ActBackward<TOp>(ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> x, int n)
        where TOp : struct, IActOp
    {
        for (int i = Grid.GlobalIndex.X; i < n; i += Stride) dx[i] = default(TOp).Backward(x[i], dy[i]);
    }

    /// <summary>y = keep(i) ? x·scale : 0 with the shared counter RNG (forward and backward alike). May alias.</summary>
    public static void Dropout(ArrayView<float> y, ArrayView<float> x, DropoutSpec d, float scale, int n)
    {
        for (int i = Grid.GlobalIndex.X; i < n; i += Stride)
        {
            float v = x[i];
            y[i] = Rng.Keep(d, i) ? v * scale : 0f;
        }
    }

    /// <summary>dPre = dPooled ⊙ (1 − pooled²): tanh backward from the saved output.</summary>
    public static void TanhGradFromOutput(ArrayView<float> dPre, ArrayView<float> dOut, ArrayView<float> y, int n)
    {
        for (int i = Grid.GlobalIndex.X; i < n; i += Stride)
        {
            float t = y[i];
            dPre[i] = dOut[i] * (1f - t * t);
        }
    }

    /// <summary>dst[r, dstCol + c] (=|+=) src[r, srcCol + c]; element i = (r, c) of rows × cols.</summary>
    public static void Copy2D(ArrayView<float> dst, ArrayView<float> src, Copy2DArgs p, int n)
    {
        for (int i = Grid.GlobalIndex.X; i < n; i += Stride)
        {
            int r = i / p.Cols, c = i - r * p.Cols;
            int di = r * p.LdDst + p.DstCol + c;
            float v = src[r * p.LdSrc + p.SrcCol + c];
            dst[di] = p.Accumulate != 0 ? dst[di] + v : v;
        }
    }
}
