// ILGPU backend residual add + LayerNorm (post-LN BERT), forward and backward.
using FastRec.Kernels.Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu;

public sealed partial class IlgpuBackend
{
    // ---------------------------------------------------------------- residual + LayerNorm

    /// <inheritdoc/>
    public void AddLayerNormForward(View<float> output, View<float> sum, View<float> mean, View<float> rstd,
                                    View<float> a, View<float> b, View<float> gamma, View<float> beta, int N, int C, float eps)
    {
        Check.AddLayerNormForward(output, sum, mean, rstd, a, b, gamma, beta, N, C, eps);
        var p = new LnArgs { Width = RowWidth, N = N, C = C, HasB = b.IsNone ? 0 : 1, Eps = eps };
        Run(LayerNormForward)(_stream, RowsConfig(N), Arr(output), Arr(sum), Arr(mean), Arr(rstd), Arr(a), Opt(b), Arr(gamma), Arr(beta), p);
    }

    /// <inheritdoc/>
    public void AddLayerNormBackward(View<float> dx, View<float> dGamma, View<float> dBeta,
                                     View<float> dOutput, View<float> sum, View<float> gamma, View<float> mean, View<float> rstd, int N, int C)
    {
        Check.AddLayerNormBackward(dx, dGamma, dBeta, dOutput, sum, gamma, mean, rstd, N, C);
        var dOut = Arr(dOutput);
        var s = Arr(sum);
        var mu = Arr(mean);
        var rs = Arr(rstd);
        if (!dGamma.IsNone || !dBeta.IsNone)
        {
            // parameter gradients first: dx may alias δout
            int chunks = Ceil(N, ReductionKernels.ColChunk);
            var partial = ScratchF(2L * chunks * C);
            Run(LayerNormParamPartial)(_stream, new KernelConfig(new Index2D(Ceil(C, 32), chunks), new Index2D(_reduceGroup, 1)),
                            partial, dOut, s, mu, rs, N, C);
            if (!dGamma.IsNone) Run(ColSumFinish)(_stream, Flat(C), Arr(dGamma), partial.SubView(0, (long)chunks * C), chunks, C);
            if (!dBeta.IsNone) Run(ColSumFinish)(_stream, Flat(C), Arr(dBeta), partial.SubView((long)chunks * C, (long)chunks * C), chunks, C);
        }
        var p = new LnArgs { Width = RowWidth, N = N, C = C };
        Run(LayerNormBackward)(_stream, RowsConfig(N), Arr(dx), dOut, s, Arr(gamma), mu, rs, p);
    }
}
