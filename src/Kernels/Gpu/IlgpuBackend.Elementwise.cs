// ILGPU backend elementwise ops: activations, dropout, strided row copies.
using FastRec.Kernels.Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu;

public sealed partial class IlgpuBackend
{
    // ---------------------------------------------------------------- activations

    /// <inheritdoc/>
    public void ActivationForward(Activation act, View<float> output, View<float> input)
    {
        Check.ActivationForward(act, output, input);
        var x = Arr(input);
        var y = Arr(output);
        Run(ActForward[ActIndex(act)])(_stream, Flat(input.Length), y, x, input.Length);
    }

    /// <inheritdoc/>
    public void ActivationBackward(Activation act, View<float> dInput, View<float> dOutput, View<float> input)
    {
        Check.ActivationBackward(act, dInput, dOutput, input);
        var x = Arr(input);
        Run(ActBackward[ActIndex(act)])(_stream, Flat(input.Length), Arr(dInput), Arr(dOutput), x, input.Length);
    }

    private static int ActIndex(Activation act) => act switch
    {
        Activation.Gelu => 0,
        Activation.Relu => 1,
        Activation.Tanh => 2,
        Activation.Identity => 3,
        _ => throw new ArgumentOutOfRangeException(nameof(act), act, "unknown activation"),
    };

    // ---------------------------------------------------------------- dropout

    /// <inheritdoc/>
    public void DropoutForward(View<float> output, View<float> input, DropoutSpec dropout)
    {
        Check.DropoutForward(output, input, dropout);
        DropoutCore(Arr(output), Arr(input), input.Length, dropout);
    }

    /// <inheritdoc/>
    public void DropoutBackward(View<float> dInput, View<float> dOutput, DropoutSpec dropout)
    {
        Check.DropoutBackward(dInput, dOutput, dropout);
        DropoutCore(Arr(dInput), Arr(dOutput), dOutput.Length, dropout);
    }

    private void DropoutCore(ArrayView<float> y, ArrayView<float> x, int n, DropoutSpec d)
    {
        if (n == 0) return;
        if (!d.IsOn)
        {
            if (NativeCuda.Address(y) != NativeCuda.Address(x)) x.CopyTo(_stream, y);
            return;
        }
        Run(Dropout)(_stream, Flat(n), y, x, d, 1f / (1f - d.P), n);
    }

    // ---------------------------------------------------------------- Copy2D

    /// <inheritdoc/>
    public void Copy2D(View<float> dst, int ldDst, int dstCol, View<float> src, int ldSrc, int srcCol, int rows, int cols, bool accumulate)
    {
        Check.Copy2D(dst, ldDst, dstCol, src, ldSrc, srcCol, rows, cols);
        var p = new Copy2DArgs { Cols = cols, LdDst = ldDst, DstCol = dstCol, LdSrc = ldSrc, SrcCol = srcCol, Accumulate = accumulate ? 1 : 0 };
        Run(Copy2DRows)(_stream, Flat(rows * cols), Arr(dst), Arr(src), p, rows * cols);
    }
}
