// Test-only IBackend whose float buffers hold doubles: runs the model's exact code path in float64 via RefMath.
using FastRec.Kernels;
using FastRec.Kernels.Reference;

namespace FastRec.Tests.Model;

/// <summary>A float buffer stored as doubles (the "device memory" of <see cref="Float64Backend"/>).</summary>
internal sealed class Float64Buffer(Float64Backend owner, long length) : DeviceBuffer<float>
{
    public readonly double[] Data = new double[checked((int)length)];
    public override long Length => Data.LongLength;
    public override IBackend Owner => owner;
    public override void Dispose() { }
}

/// <summary>
/// Every op is <see cref="RefMath"/> on double storage, so a <c>RecModel</c> on this backend computes in float64
/// end to end: finite differences of its loss are accurate to ~1e-10 and check the model's wiring, not float rounding.
/// Inputs are copied before outputs are written (aliasing as the contract allows). <see cref="LastLoss"/> keeps the
/// last BCE loss in double; <see cref="Data"/> exposes a view's doubles for perturbing parameters.
/// </summary>
internal sealed class Float64Backend : IBackend
{
    public string Name => "float64-test";
    /// <summary>The loss of the last <see cref="BceForwardBackward"/>, unrounded.</summary>
    public double LastLoss { get; private set; } = double.NaN;

    /// <summary>The doubles behind a float view.</summary>
    public Span<double> Data(View<float> v)
        => v.IsNone ? Span<double>.Empty : ((Float64Buffer)v.Buffer!).Data.AsSpan(checked((int)v.Offset), v.Length);

    private double[] In(View<float> v) => Data(v).ToArray();
    private static ReadOnlySpan<int> Ints(View<int> v) => v.IsNone ? ReadOnlySpan<int>.Empty : v.Span;

    public DeviceBuffer<T> Allocate<T>(long length) where T : unmanaged
        => typeof(T) == typeof(float) ? (DeviceBuffer<T>)(object)new Float64Buffer(this, length) : new CpuBuffer<T>(this, length);

    public void Upload<T>(View<T> dst, ReadOnlySpan<T> src) where T : unmanaged
    {
        Assert.That(src.Length, Is.EqualTo(dst.Length), "Upload length");
        if (dst.Buffer is Float64Buffer)
        {
            var d = Data((View<float>)(object)dst);
            var s = System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(src);
            for (int i = 0; i < d.Length; i++) d[i] = s[i];
        }
        else src.CopyTo(dst.Span);
    }

    public void Download<T>(View<T> src, Span<T> dst) where T : unmanaged
    {
        Assert.That(dst.Length, Is.EqualTo(src.Length), "Download length");
        if (src.Buffer is Float64Buffer)
        {
            var s = Data((View<float>)(object)src);
            var d = System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(dst);
            for (int i = 0; i < s.Length; i++) d[i] = (float)s[i];
        }
        else src.Span.CopyTo(dst);
    }

    public void Zero(View<float> dst) => Data(dst).Clear();
    public void Copy(View<float> dst, View<float> src) => In(src).CopyTo(Data(dst));
    public void Synchronize() { }
    public void Dispose() { }

    public void Gemm(bool transA, bool transB, int M, int N, int K, float alpha, View<float> a, int lda, View<float> b, int ldb,
                     bool accumulate, View<float> c, int ldc, int batch = 1, long strideA = 0, long strideB = 0, long strideC = 0)
        => RefMath.Gemm(transA, transB, M, N, K, alpha, In(a), lda, In(b), ldb, accumulate, Data(c), ldc, batch, strideA, strideB, strideC);

    public void LinearForward(View<float> output, View<float> input, View<float> weight, View<float> bias, int N, int IC, int OC)
    {
        Assert.That((output.Length, input.Length, weight.Length), Is.EqualTo((N * OC, N * IC, OC * IC)), "LinearForward shapes");
        RefMath.LinearForward(Data(output), In(input), In(weight), In(bias), N, IC, OC);
    }

    public void LinearBackward(View<float> dInput, View<float> dWeight, View<float> dBias, View<float> dOutput, View<float> input,
                               View<float> weight, int N, int IC, int OC)
        => RefMath.LinearBackward(Data(dInput), Data(dWeight), Data(dBias), In(dOutput), In(input), In(weight), N, IC, OC);

    public void ActivationForward(Activation act, View<float> output, View<float> input) => RefMath.ActivationForward(act, Data(output), In(input));
    public void ActivationBackward(Activation act, View<float> dInput, View<float> dOutput, View<float> input)
        => RefMath.ActivationBackward(act, Data(dInput), In(dOutput), In(input));

    public void AddLayerNormForward(View<float> output, View<float> sum, View<float> mean, View<float> rstd, View<float> a, View<float> b,
                                    View<float> gamma, View<float> beta, int N, int C, float eps)
        => RefMath.AddLayerNormForward(Data(output), Data(sum), Data(mean), Data(rstd), In(a), In(b), In(gamma), In(beta), N, C, eps);

    public void AddLayerNormBackward(View<float> dx, View<float> dGamma, View<float> dBeta, View<float> dOutput, View<float> sum,
                                     View<float> gamma, View<float> mean, View<float> rstd, int N, int C)
        => RefMath.AddLayerNormBackward(Data(dx), Data(dGamma), Data(dBeta), In(dOutput), In(sum), In(gamma), In(mean), In(rstd), N, C);

    public void EmbeddingForward(View<float> output, View<int> ids, View<int> typeIds, View<float> wordEmb, View<float> posEmb,
                                 View<float> typeEmb, int B, int T, int C)
        => RefMath.EmbeddingForward(Data(output), Ints(ids), Ints(typeIds), In(wordEmb), In(posEmb), In(typeEmb), B, T, C);

    public void EmbeddingBackward(View<float> dWordEmb, View<float> dPosEmb, View<float> dTypeEmb, View<float> dOutput, View<int> ids,
                                  View<int> typeIds, int B, int T, int C)
        => RefMath.EmbeddingBackward(Data(dWordEmb), Data(dPosEmb), Data(dTypeEmb), In(dOutput), Ints(ids), Ints(typeIds), B, T, C);

    public void SoftmaxForward(View<float> probs, View<float> scores, View<float> mask, int B, int NH, int T, float scale)
        => RefMath.SoftmaxForward(Data(probs), In(scores), In(mask), B, NH, T, scale);

    public void SoftmaxBackward(View<float> dScores, View<float> dProbs, View<float> probs, int B, int NH, int T, float scale)
        => RefMath.SoftmaxBackward(Data(dScores), In(dProbs), In(probs), B, NH, T, scale);

    public void AttentionForward(View<float> output, View<float> qkvPerm, View<float> probs, View<float> workspace, View<float> qkv,
                                 View<float> mask, int B, int T, int C, int NH, DropoutSpec dropout)
        => RefMath.AttentionForward(Data(output), Data(qkvPerm), Data(probs), In(qkv), In(mask), B, T, C, NH, dropout);

    public void AttentionBackward(View<float> dQkv, View<float> dOutput, View<float> qkvPerm, View<float> probs, View<float> workspace,
                                  View<float> mask, int B, int T, int C, int NH, DropoutSpec dropout)
        => RefMath.AttentionBackward(Data(dQkv), In(dOutput), In(qkvPerm), In(probs), B, T, C, NH, dropout);

    public void DropoutForward(View<float> output, View<float> input, DropoutSpec dropout) => RefMath.DropoutForward(Data(output), In(input), dropout);
    public void DropoutBackward(View<float> dInput, View<float> dOutput, DropoutSpec dropout) => RefMath.DropoutBackward(Data(dInput), In(dOutput), dropout);

    public void Copy2D(View<float> dst, int ldDst, int dstCol, View<float> src, int ldSrc, int srcCol, int rows, int cols, bool accumulate)
        => RefMath.Copy2D(Data(dst), ldDst, dstCol, In(src), ldSrc, srcCol, rows, cols, accumulate);

    public void PoolerForward(View<float> pooled, View<float> hidden, View<float> weight, View<float> bias, int B, int T, int C)
        => RefMath.PoolerForward(Data(pooled), In(hidden), In(weight), In(bias), B, T, C);

    public void PoolerBackward(View<float> dHidden, View<float> dWeight, View<float> dBias, View<float> dPooled, View<float> pooled,
                               View<float> hidden, View<float> weight, View<float> workspace, int B, int T, int C)
        => RefMath.PoolerBackward(Data(dHidden), Data(dWeight), Data(dBias), In(dPooled), In(pooled), In(hidden), In(weight), B, T, C);

    public void BceForwardBackward(View<float> loss, View<float> dLogits, View<float> logits, View<float> targets, View<float> weights,
                                   int N, float temperature = 1, float scale = 1, bool accumulate = false)
    {
        LastLoss = RefMath.BceForwardBackward(Data(dLogits), In(logits), In(targets), In(weights), N, temperature, scale, accumulate);
        Data(loss)[0] = LastLoss;
    }

    public void GlobalNorm(View<float> norm, View<float> grads) => Data(norm)[0] = RefMath.GlobalNorm(In(grads));

    public void AdamW(View<float> param, View<float> grad, View<float> m, View<float> v, View<AdamSegment> segments, View<float> norm,
                      float maxNorm, float lr, float beta1, float beta2, float eps, int step)
        => RefMath.AdamW(Data(param), In(grad), Data(m), Data(v), segments.Span, maxNorm > 0 ? Data(norm)[0] : 0, maxNorm, lr, beta1, beta2, eps, step);
}
