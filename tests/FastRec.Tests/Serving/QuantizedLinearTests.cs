// QuantizedLinear (the serving path's int16 Linear): exact against a float64 evaluation of the same quantised operands,
// close to the fp32 Linear, overflow-free at the extremes, bit-identical across threads, rows and code paths; bad inputs.
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Kernels;

namespace FastRec.Tests.Serving;

[NonParallelizable]   // ForcePortable is process-wide
public class QuantizedLinearTests
{
    private static float[] Run(float[] x, int M, Int16Weight w, float[]? bias, Activation act = Activation.Identity, int threads = 0)
    {
        var o = Enumerable.Repeat(float.NaN, M * w.OutFeatures).ToArray();
        var q = new short[(int)QuantizedLinear.ScratchLength(M, w.InFeatures)];
        var s = new float[M];
        QuantizedLinear.Forward(x, M, w, bias, o, q, s, act, threads);
        return o;
    }

    /// <summary>The test's own statement of the row quantisation: s = max|x|/8191, q = round-half-even(x·(8191/max|x|)).</summary>
    private static (short[] Q, float S) QuantizeRow(ReadOnlySpan<float> x)
    {
        float max = 0f;
        foreach (float v in x) max = MathF.Max(max, MathF.Abs(v));
        float inv = max > 0f ? 8191f / max : 0f;
        var q = new short[x.Length];
        for (int k = 0; k < x.Length; k++) q[k] = (short)Math.Clamp(MathF.Round(x[k] * inv, MidpointRounding.ToEven), -8191f, 8191f);
        return (q, max / 8191f);
    }

    /// <summary>float64 evaluation of s_x·s_w·Σ q_x·q_w + bias, then the activation in float64.</summary>
    private static float[] Dequantised(float[] x, int M, int K, Int16Weight w, float[]? bias, Activation act)
    {
        int N = w.OutFeatures;
        var wd = w.Dequantize();
        var o = new float[M * N];
        for (int m = 0; m < M; m++)
        {
            var (q, s) = QuantizeRow(x.AsSpan(m * K, K));
            for (int n = 0; n < N; n++)
            {
                double acc = 0;
                for (int k = 0; k < K; k++) acc += (double)q[k] * s * wd[n * K + k];
                acc += bias?[n] ?? 0f;
                o[m * N + n] = (float)FastRec.Kernels.Reference.RefMath.Act(act, acc);
            }
        }
        return o;
    }

    [Test]
    public void MatchesFloat64OfTheQuantisedOperands([Values(1, 7, 13)] int M, [Values(1, 33, 64)] int N, [Values(1, 5, 64, 100)] int K,
        [Values] bool bias, [Values(Activation.Identity, Activation.Gelu, Activation.Relu)] Activation act)
    {
        var x = TestUtil.Random(M * K, 1); var wf = TestUtil.Random(N * K, 2); var b = bias ? TestUtil.Random(N, 3) : null;
        using var w = new Int16Weight(wf, N, K);
        TestUtil.AssertClose(Run(x, M, w, b, act), Dequantised(x, M, K, w, b, act), 1e-6f * K, 2e-6f, $"QuantizedLinear M={M} N={N} K={K}");
    }

    [Test]
    public void DequantizedWeightIsWithinHalfAStep()
    {
        const int N = 40, K = 70;
        var wf = TestUtil.Random(N * K, 5, -3f, 3f);
        using var w = new Int16Weight(wf, N, K);
        var d = w.Dequantize();
        for (int n = 0; n < N; n++)
        {
            float max = 0f;
            for (int k = 0; k < K; k++) max = MathF.Max(max, MathF.Abs(wf[n * K + k]));
            for (int k = 0; k < K; k++)
                Assert.That(Math.Abs(d[n * K + k] - wf[n * K + k]), Is.LessThanOrEqualTo(0.5 * max / 8191 * 1.001 + 1e-12), $"w[{n},{k}]");
        }
    }

    [Test]
    public void CloseToTheFp32LinearEvenWithOutliers()
    {
        // BERT-like: most inputs O(1), two outlier features 20x larger; the error budget is 2^-14·(max/rms) per operand
        const int M = 24, K = 384, N = 96;
        var x = TestUtil.Random(M * K, 11); var wf = TestUtil.Random(N * K, 12, -0.1f, 0.1f); var b = TestUtil.Random(N, 13);
        for (int m = 0; m < M; m++) { x[m * K + 7] *= 20f; x[m * K + 300] *= -20f; }
        using var w = new Int16Weight(wf, N, K);
        var got = Run(x, M, w, b);
        var exact = new double[M * N];
        double sq = 0;
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++)
            {
                double acc = b[n];
                for (int k = 0; k < K; k++) acc += (double)x[m * K + k] * wf[n * K + k];
                exact[m * N + n] = acc; sq += acc * acc;
            }
        double rms = Math.Sqrt(sq / exact.Length), worst = 0, errSq = 0;
        for (int i = 0; i < exact.Length; i++) { double e = got[i] - exact[i]; worst = Math.Max(worst, Math.Abs(e)); errSq += e * e; }
        double rmsErr = Math.Sqrt(errSq / exact.Length);
        // theory: rms error ≈ √K·(20/8191)/√12·rms(w) ≈ 7.9e-4 of the output rms here; the max over 2304 outputs ≈ 3.5x that
        Assert.That(rmsErr / rms, Is.LessThan(1.2e-3), $"rms |int16 - fp64| / rms = {rmsErr / rms:E2}");
        Assert.That(worst / rms, Is.LessThan(5e-3), $"max |int16 - fp64| / rms = {worst / rms:E2}");
        Assert.That(rmsErr, Is.GreaterThan(0), "the int16 path is an approximation: zero error would mean it never quantised");
    }

    [Test]
    public void NoOverflowAtTheExtremes()
    {
        // every |q| = 8191: an unblocked int32 sum of K = 1000 such products (6.7e10) would wrap
        const int M = 3, K = 1000, N = 2;
        var x = Enumerable.Repeat(1f, M * K).ToArray();
        for (int k = 0; k < K; k++) x[K + k] = -1f;                  // row 1 all -1
        var wf = Enumerable.Repeat(2f, N * K).ToArray();
        using var w = new Int16Weight(wf, N, K);
        var o = Run(x, M, w, null);
        Assert.That(o[0], Is.EqualTo(2000f).Within(2000f * 1e-6f));
        Assert.That(o[N], Is.EqualTo(-2000f).Within(2000f * 1e-6f));
    }

    [Test]
    public void BitIdenticalAcrossThreadsRowsAndCodePaths([Values(Activation.Identity, Activation.Relu)] Activation act)
    {
        const int M = 37, N = 100, K = 771;       // odd K (a padded pair), a partial last panel (100 = 3·32 + 4)
        var x = TestUtil.Random(M * K, 4); var wf = TestUtil.Random(N * K, 5); var b = TestUtil.Random(N, 6);
        using var w = new Int16Weight(wf, N, K);
        var one = Run(x, M, w, b, act, threads: 1);
        var many = Run(x, M, w, b, act, threads: 0);
        Assert.That(many, Is.EqualTo(one), "thread split changes no bit");
        var five = Run(x.AsSpan(0, 5 * K).ToArray(), 5, w, b, act);
        Assert.That(five, Is.EqualTo(one.AsSpan(0, 5 * N).ToArray()), "rows are independent of M");
        try
        {
            QuantizedLinear.ForcePortable = true;
            Assert.That(Run(x, M, w, b, act), Is.EqualTo(one), "portable path (no AVX-512) gives the same bits");
            QuantizedLinear.ForcePortable = false;
            QuantizedLinear.ForceAvx2 = true;
            Assert.That(Run(x, M, w, b, act), Is.EqualTo(one), "AVX2 path (256-bit VPMADDWD) gives the same bits");
            Assert.That(Run(x, M, w, b, act, threads: 1), Is.EqualTo(one), "AVX2 path, one thread");
        }
        finally { QuantizedLinear.ForcePortable = false; QuantizedLinear.ForceAvx2 = false; }
    }

    [Test]
    public void NonFiniteInputRowGivesNaNRow()
    {
        const int M = 3, K = 40, N = 8;
        var x = TestUtil.Random(M * K, 7); x[K + 33] = float.PositiveInfinity;
        using var w = new Int16Weight(TestUtil.Random(N * K, 8), N, K);
        var o = Run(x, M, w, null);
        for (int n = 0; n < N; n++)
        {
            Assert.That(float.IsNaN(o[N + n]), $"row 1 (holds +Inf) col {n} is NaN, not a wrong number");
            Assert.That(float.IsFinite(o[n]) && float.IsFinite(o[2 * N + n]), "other rows are unaffected");
        }
        x[K + 33] = float.NaN; x[2 * K + 1] = float.NegativeInfinity;
        o = Run(x, M, w, null);
        Assert.That(float.IsNaN(o[N]) && float.IsNaN(o[2 * N]) && float.IsFinite(o[0]));
    }

    [Test]
    public void NonFiniteRowsAreNaNOnBothPaths([Values(Activation.Identity, Activation.Relu, Activation.Gelu)] Activation act)
    {
        const int M = 3, K = 40, N = 8;
        var x = TestUtil.Random(M * K, 17); x[K + 5] = float.NaN; x[2 * K + 9] = float.NegativeInfinity;
        using var w = new Int16Weight(TestUtil.Random(N * K, 18), N, K);
        var simd = Run(x, M, w, null, act);
        float[] portable, avx2;
        try { QuantizedLinear.ForcePortable = true; portable = Run(x, M, w, null, act); }
        finally { QuantizedLinear.ForcePortable = false; }
        try { QuantizedLinear.ForceAvx2 = true; avx2 = Run(x, M, w, null, act); }
        finally { QuantizedLinear.ForceAvx2 = false; }
        for (int i = N; i < M * N; i++)
            Assert.That(float.IsNaN(simd[i]) && float.IsNaN(portable[i]) && float.IsNaN(avx2[i]), $"{act}: output {i} of a non-finite row is NaN on every path");
        Assert.That(portable.AsSpan(0, N).ToArray(), Is.EqualTo(simd.AsSpan(0, N).ToArray()), "the finite row: same bits");
        Assert.That(avx2.AsSpan(0, N).ToArray(), Is.EqualTo(simd.AsSpan(0, N).ToArray()), "the finite row: same bits on AVX2");
    }

    [Test]
    public void TinyAndSmallMagnitudesStayRight()
    {
        // a row below 1e-30 (8191/max would overflow float) is treated as zeros: the output is the bias, on both paths
        const int K = 64, N = 4;
        var wf = TestUtil.Random(N * K, 19);
        using var w = new Int16Weight(wf, N, K);
        var tiny = Enumerable.Repeat(1e-36f, K).ToArray();
        var bias = new float[] { 0.5f, -1f, 0f, 2f };
        var a = Run(tiny, 1, w, bias);
        float[] b;
        try { QuantizedLinear.ForcePortable = true; b = Run(tiny, 1, w, bias); }
        finally { QuantizedLinear.ForcePortable = false; }
        Assert.That(a, Is.EqualTo(bias), "1e-36 inputs contribute nothing visible in fp32");
        Assert.That(b, Is.EqualTo(a), "both paths agree");
        // small but representable: s_x·s_w (1.5e-48) would underflow; the store multiplies the sum by one scale at a time
        var x = Enumerable.Repeat(1e-20f, K).ToArray();
        using var w2 = new Int16Weight(Enumerable.Repeat(1e-20f, N * K).ToArray(), N, K);
        var o = Run(x, 1, w2, null);
        foreach (float v in o) Assert.That(v, Is.EqualTo(6.4e-39f).Within(6.4e-39f * 1e-4f), "K·1e-20·1e-20");
        // a column of weights below 1e-30 is a zero column, not ±8191 steps
        var wt = TestUtil.Random(N * K, 20); for (int k = 0; k < K; k++) wt[k] = (k % 3 - 1) * 1e-36f;
        using var w3 = new Int16Weight(wt, N, K);
        Assert.That(w3.Dequantize().AsSpan(0, K).ToArray(), Is.All.EqualTo(0f));
    }

    [Test]
    public void ManyRowBlocksMatchTheReference()
    {
        // KP = 550: row blocks of 114 rows in L2, so 200 rows run as 114 + 86; rows 150..154 alone give the same bits
        const int M = 200, K = 1100, N = 40;
        var x = TestUtil.Random(M * K, 21); var wf = TestUtil.Random(N * K, 22); var b = TestUtil.Random(N, 23);
        using var w = new Int16Weight(wf, N, K);
        var o = Run(x, M, w, b, Activation.Gelu, threads: 2);
        TestUtil.AssertClose(o, Dequantised(x, M, K, w, b, Activation.Gelu), 1e-6f * K, 2e-6f, "200 rows");
        var five = Run(x.AsSpan(150 * K, 5 * K).ToArray(), 5, w, b, Activation.Gelu);
        Assert.That(five, Is.EqualTo(o.AsSpan(150 * N, 5 * N).ToArray()), "rows 150..154 alone");
    }

    [Test]
    public void BadInputsNameTheArgument()
    {
        Assert.That(QuantizedLinear.ScratchLength(2_000_000, 1536), Is.EqualTo(2_000_004L * 1536), "no int overflow for large M·IC");
        Assert.That(() => new Int16Weight(new float[11], 3, 4), Throws.TypeOf<ShapeException>().With.Message.Contains("weight"));
        Assert.That(() => new Int16Weight(new float[] { 1, float.NaN, 0, 0 }, 2, 2), Throws.ArgumentException.With.Message.Contains("weight[0, 1]"));
        using var w = new Int16Weight(new float[12], 3, 4);
        var q = new short[(int)QuantizedLinear.ScratchLength(2, 4)]; var s = new float[2];
        Assert.That(() => QuantizedLinear.Forward(new float[7], 2, w, default, new float[6], q, s), Throws.TypeOf<ShapeException>().With.Message.Contains("input"));
        Assert.That(() => QuantizedLinear.Forward(new float[8], 2, w, default, new float[5], q, s), Throws.TypeOf<ShapeException>().With.Message.Contains("output"));
        Assert.That(() => QuantizedLinear.Forward(new float[8], 2, w, new float[2], new float[6], q, s), Throws.TypeOf<ShapeException>().With.Message.Contains("bias"));
        Assert.That(() => QuantizedLinear.Forward(new float[8], 2, w, default, new float[6], new short[23], s), Throws.TypeOf<ShapeException>().With.Message.Contains("quantized"));
        Assert.That(() => QuantizedLinear.Forward(new float[8], 2, w, default, new float[6], q, new float[1]), Throws.TypeOf<ShapeException>().With.Message.Contains("rowScale"));
        Assert.That(() => QuantizedLinear.Forward(new float[8], 2, w, default, new float[6], q, s, Activation.Tanh), Throws.TypeOf<ArgumentOutOfRangeException>());
        w.Dispose();
        Assert.That(() => QuantizedLinear.Forward(new float[8], 2, w, default, new float[6], q, s), Throws.TypeOf<ObjectDisposedException>());
    }
}
