// Known values of the reference kernels: erf, GELU, stable BCE, masked softmax, LayerNorm, GEMM, Copy2D, dropout, AdamW.
using FastRec.Kernels;
using FastRec.Kernels.Reference;
using static FastRec.Tests.Kernels.ReferenceFd;

namespace FastRec.Tests.Kernels;

/// <summary>Forward values of <see cref="RefMath"/> against independent numbers (CPython's libm erf, hand-written torch formulas).</summary>
public class ReferenceValueTests
{
    // values: CPython math.erf / math.erfc (glibc libm)
    [TestCase(0.0, 0.0, 1.0)]
    [TestCase(1e-20, 1.1283791670955125e-20, 1.0)]
    [TestCase(1e-08, 1.1283791670955126e-08, 0.9999999887162083)]
    [TestCase(0.1, 0.1124629160182849, 0.8875370839817152)]
    [TestCase(0.3, 0.3286267594591274, 0.6713732405408726)]
    [TestCase(0.46875, 0.49261347321793797, 0.507386526782062)]
    [TestCase(0.5, 0.5204998778130465, 0.4795001221869535)]
    [TestCase(0.9, 0.7969082124228322, 0.20309178757716786)]
    [TestCase(1.0, 0.8427007929497149, 0.15729920705028513)]
    [TestCase(1.5, 0.9661051464753108, 0.033894853524689274)]
    [TestCase(2.0, 0.9953222650189527, 0.004677734981047265)]
    [TestCase(3.0, 0.9999779095030014, 2.2090496998585438e-05)]
    [TestCase(3.9, 0.9999999652077514, 3.479224859723177e-08)]
    [TestCase(4.0, 0.9999999845827421, 1.541725790028002e-08)]
    [TestCase(4.5, 0.9999999998033839, 1.9661604415428873e-10)]
    [TestCase(6.0, 1.0, 2.1519736712498916e-17)]
    [TestCase(10.0, 1.0, 2.088487583762545e-45)]
    [TestCase(26.0, 1.0, 5.663192408856143e-296)]
    [TestCase(-0.2, -0.22270258921047847, 1.2227025892104786)]
    [TestCase(-1.0, -0.8427007929497149, 1.842700792949715)]
    [TestCase(-3.5, -0.9999992569016276, 1.9999992569016276)]
    [TestCase(-5.0, -0.9999999999984626, 1.9999999999984626)]
    public void ErfAndErfcAreDoublePrecise(double x, double erf, double erfc)
    {
        Assert.That(RefMath.Erf(x), Is.EqualTo(erf).Within(2e-15 * Math.Abs(erf)), "erf");
        Assert.That(RefMath.Erfc(x), Is.EqualTo(erfc).Within(2e-15 * Math.Abs(erfc)), "erfc");
    }

    [Test]
    public void GeluIsTheErfForm()
    {
        Assert.That(RefMath.Act(Activation.Gelu, 1.0), Is.EqualTo(0.8413447460685429).Within(2e-16));
        Assert.That(RefMath.Act(Activation.Gelu, 3.0), Is.EqualTo(2.99595030590511).Within(1e-15));
        // the left tail stays relatively accurate (0.5·x·erfc(−x/√2), no cancellation in 1 + erf)
        Assert.That(RefMath.Act(Activation.Gelu, -10.0), Is.EqualTo(-7.619853024160593e-23).Within(1e-36));
        Assert.That(RefMath.Act(Activation.Gelu, 0.0), Is.EqualTo(0.0));
    }

    [Test]
    public void BceIsStableAtLargeLogits()
    {
        var dz = new double[1];
        Assert.That(RefMath.BceForwardBackward(dz, [100.0], [0.0], [], 1, 1, 1, false), Is.EqualTo(100.0));
        Assert.That(dz[0], Is.EqualTo(1.0));
        Assert.That(RefMath.BceForwardBackward(dz, [-100.0], [1.0], [], 1, 1, 1, false), Is.EqualTo(100.0));
        Assert.That(dz[0], Is.EqualTo(-1.0));
        Assert.That(RefMath.BceForwardBackward(dz, [100.0], [1.0], [], 1, 1, 1, false), Is.EqualTo(3.720075976020836e-44).Within(1e-58));
        Assert.That(dz[0], Is.EqualTo(0.0).Within(1e-43));
        Assert.That(RefMath.BceForwardBackward(dz, [0.0], [1.0], [], 1, 1, 1, false), Is.EqualTo(0.6931471805599453).Within(1e-16));
        Assert.That(dz[0], Is.EqualTo(-0.5));
    }

    [Test]
    public void BceWeightsTemperatureAndScaleFollowTheFormula()
    {
        // two examples, z = logits / T: loss = scale · Σ w·ℓ(z, y) / Σ w
        double[] logits = [2.0, -1.0], y = [0.25, 1.0], w = [3.0, 1.0];
        const double T = 2.0, scale = 4.0;
        static double L(double z, double y) => Math.Log(1 + Math.Exp(z)) - z * y;   // moderate z: the naive form is exact enough
        double expected = scale * (3 * L(1.0, 0.25) + 1 * L(-0.5, 1.0)) / 4;
        var dz = new double[2];
        Assert.That(RefMath.BceForwardBackward(dz, logits, y, w, 2, T, scale, false), Is.EqualTo(expected).Within(1e-14));
        static double S(double z) => 1 / (1 + Math.Exp(-z));
        Assert.That(dz[0], Is.EqualTo(scale * 3 * (S(1.0) - 0.25) / (T * 4)).Within(1e-15));
        Assert.That(dz[1], Is.EqualTo(scale * 1 * (S(-0.5) - 1.0) / (T * 4)).Within(1e-15));
    }

    [Test]
    public void SoftmaxGivesMaskedKeysExactlyZero()
    {
        const int B = 2, NH = 2, T = 5;
        var mask = ReferenceGradTests.PaddingMask(B, T);   // batch 1 pads its last key
        var scores = Rand(B * NH * T * T, 7, -50, 50);
        var probs = NaNs(scores.Length);
        RefMath.SoftmaxForward(probs, scores, mask, B, NH, T, 1.0);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int i = 0; i < T; i++)
                {
                    double rowSum = 0;
                    for (int j = 0; j < T; j++)
                    {
                        double p = probs[((b * NH + h) * T + i) * T + j];
                        if (mask[b * T + j] == 0) Assert.That(p, Is.EqualTo(0.0), $"masked key b={b} j={j}");
                        else Assert.That(p, Is.GreaterThan(0.0).Or.EqualTo(0.0));
                        rowSum += p;
                    }
                    Assert.That(rowSum, Is.EqualTo(1.0).Within(1e-14));
                }
        Assert.That(mask, Has.Some.EqualTo(0.0), "the test must contain padding");
    }

    [Test]
    public void SoftmaxOfAFullyMaskedRowIsZeroNotNaN()
    {
        var probs = NaNs(4);
        RefMath.SoftmaxForward(probs, [1.0, 2.0, 3.0, 4.0], [0.0, 0.0], 1, 1, 2, 1.0);
        Assert.That(probs, Is.All.EqualTo(0.0));
    }

    [Test]
    public void LayerNormOutputHasMeanZeroAndVarianceOneBeforeAffine()
    {
        const int N = 3, C = 7;
        var a = Rand(N * C, 1, -5, 5); var b = Rand(N * C, 2);
        var gamma = Enumerable.Repeat(1.0, C).ToArray(); var beta = new double[C];
        var outp = new double[N * C]; var sum = new double[N * C]; var mean = new double[N]; var rstd = new double[N];
        RefMath.AddLayerNormForward(outp, sum, mean, rstd, a, b, gamma, beta, N, C, 1e-12);
        for (int n = 0; n < N; n++)
        {
            var row = outp.AsSpan(n * C, C).ToArray();
            double m = row.Average(), v = row.Select(x => (x - m) * (x - m)).Average();
            Assert.That(m, Is.EqualTo(0.0).Within(1e-14), $"mean of row {n}");
            Assert.That(v, Is.EqualTo(1.0).Within(1e-10), $"variance of row {n}");
            Assert.That(sum[n * C + 3], Is.EqualTo(a[n * C + 3] + b[n * C + 3]), "sum = a + b is saved");
            Assert.That(mean[n], Is.EqualTo(sum.AsSpan(n * C, C).ToArray().Average()).Within(1e-14));
        }
        // the affine part
        gamma = Rand(C, 3, 0.5, 2); beta = Rand(C, 4);
        var outp2 = new double[N * C];
        RefMath.AddLayerNormForward(outp2, sum, mean, rstd, a, b, gamma, beta, N, C, 1e-12);
        for (int i = 0; i < N * C; i++) Assert.That(outp2[i], Is.EqualTo(outp[i] * gamma[i % C] + beta[i % C]).Within(1e-13));
    }

    [Test]
    public void LayerNormUsesPopulationVarianceAndEps()
    {
        // row [1, 3]: mean 2, population variance 1; with eps = 1, rstd = 1/sqrt(2)
        var outp = new double[2]; var sum = new double[2]; var mean = new double[1]; var rstd = new double[1];
        RefMath.AddLayerNormForward(outp, sum, mean, rstd, [1.0, 3.0], [], [1.0, 2.0], [0.0, 10.0], 1, 2, 1.0);
        Assert.That(mean[0], Is.EqualTo(2.0));
        Assert.That(rstd[0], Is.EqualTo(1 / Math.Sqrt(2)).Within(1e-16));
        Assert.That(outp, Is.EqualTo(new[] { -1 / Math.Sqrt(2), 10 + 2 / Math.Sqrt(2) }).Within(1e-15));
    }

    [Test]
    public void SoftmaxAppliesTheScaleBeforeTheExponential()
    {
        // (B=1, NH=1, T=2, T=2) with scale 2: exp(2·s) ∝ [1, 2] and [2, 1]
        var probs = new double[4];
        double s = Math.Log(2) / 2;
        RefMath.SoftmaxForward(probs, [0.0, s, s, 0.0], [], 1, 1, 2, 2.0);
        Assert.That(probs, Is.EqualTo(new[] { 1 / 3.0, 2 / 3.0, 2 / 3.0, 1 / 3.0 }).Within(1e-15));
    }

    [Test]
    public void LinearForwardIsGemmWithTransposedWeightPlusBias()
    {
        const int N = 3, IC = 7, OC = 5;
        var x = Rand(N * IC, 1); var w = Rand(OC * IC, 2); var bias = Rand(OC, 3);
        var outp = new double[N * OC];
        RefMath.LinearForward(outp, x, w, bias, N, IC, OC);
        var expected = new double[N * OC];
        for (int n = 0; n < N; n++) bias.CopyTo(expected, n * OC);
        RefMath.Gemm(false, true, N, OC, IC, 1.0, x, 0, w, 0, true, expected, 0);
        Assert.That(outp, Is.EqualTo(expected).Within(1e-14));
    }

    [Test]
    public void PoolerIsTanhOfLinearOnTheClsToken()
    {
        const int B = 3, T = 4, C = 5;
        var h = Rand(B * T * C, 1); var w = Rand(C * C, 2); var bias = Rand(C, 3);
        var pooled = new double[B * C];
        RefMath.PoolerForward(pooled, h, w, bias, B, T, C);
        var cls = new double[B * C];
        RefMath.Copy2D(cls, C, 0, h, T * C, 0, B, C, false);   // row b of cls = hidden[b, 0, :]
        var pre = new double[B * C];
        RefMath.LinearForward(pre, cls, w, bias, B, C, C);
        Assert.That(pooled, Is.EqualTo(pre.Select(Math.Tanh).ToArray()).Within(1e-15));
    }

    [Test]
    public void EmbeddingAddsWordPositionAndTypeRows()
    {
        // C = 1 tables: word[v] = 10·v, pos[t] = 100·t, type[k] = 1000·k
        double[] word = [0, 10, 20], pos = [0, 100, 200], type = [0, 1000];
        var outp = new double[4];
        RefMath.EmbeddingForward(outp, [2, 1, 0, 2], [1, 0, 0, 1], word, pos, type, 2, 2, 1);
        Assert.That(outp, Is.EqualTo(new double[] { 1020, 110, 0, 1120 }));
        RefMath.EmbeddingForward(outp, [2, 1, 0, 2], [], word, pos, type, 2, 2, 1);
        Assert.That(outp, Is.EqualTo(new double[] { 20, 110, 0, 120 }), "no typeIds = type 0");
    }

    [TestCase(false, 0f)]
    [TestCase(true, 0f)]
    [TestCase(true, 0.4f)]
    public void AttentionForwardIsGemmSoftmaxDropoutGemm(bool withMask, float p)
    {
        const int B = 2, T = 5, C = 6, NH = 3, HS = C / NH;
        double[] mask = withMask ? ReferenceGradTests.PaddingMask(B, T) : [];
        var drop = new DropoutSpec(p, 77, 9);
        var qkv = Rand(B * T * 3 * C, 1, -2, 2);
        var outp = NaNs(B * T * C); var perm = NaNs(3 * B * T * C); var probs = NaNs(B * NH * T * T);
        RefMath.AttentionForward(outp, perm, probs, qkv, mask, B, T, C, NH, drop);

        // the same from the documented layout with the other reference ops
        var q = new double[B * NH * T * HS]; var k = new double[q.Length]; var v = new double[q.Length];
        for (int b = 0; b < B; b++) for (int h = 0; h < NH; h++) for (int t = 0; t < T; t++) for (int d = 0; d < HS; d++)
        {
            int src = (b * T + t) * 3 * C + h * HS + d, dst = ((b * NH + h) * T + t) * HS + d;
            q[dst] = qkv[src]; k[dst] = qkv[src + C]; v[dst] = qkv[src + 2 * C];
        }
        Assert.That(perm, Is.EqualTo(q.Concat(k).Concat(v).ToArray()), "qkvPerm is (3, B, NH, T, HS)");
        var scores = new double[B * NH * T * T];
        RefMath.Gemm(false, true, T, T, HS, 1.0, q, 0, k, 0, false, scores, 0, B * NH, T * HS, T * HS, T * T);
        var expProbs = new double[scores.Length];
        RefMath.SoftmaxForward(expProbs, scores, mask, B, NH, T, 1 / Math.Sqrt(HS));
        Assert.That(probs, Is.EqualTo(expProbs).Within(1e-15), "probs are saved before dropout");
        var dropped = new double[scores.Length];
        RefMath.DropoutForward(dropped, expProbs, drop);   // keep index = flat index in (B, NH, T, T)
        var o = new double[B * NH * T * HS];
        RefMath.Gemm(false, false, T, HS, T, 1.0, dropped, 0, v, 0, false, o, 0, B * NH, T * T, T * HS, T * HS);
        var expected = new double[B * T * C];
        for (int b = 0; b < B; b++) for (int h = 0; h < NH; h++) for (int t = 0; t < T; t++) for (int d = 0; d < HS; d++)
            expected[(b * T + t) * C + h * HS + d] = o[((b * NH + h) * T + t) * HS + d];
        Assert.That(outp, Is.EqualTo(expected).Within(1e-14));
        if (p > 0) Assert.That(dropped, Has.Some.EqualTo(0.0).And.Some.Not.EqualTo(0.0), "dropout really dropped something");
    }

    /// <summary>op(X)[r, c] of a matrix stored with leading dimension ld, transposed or not.</summary>
    private static double OpAt(double[] stored, long start, int ld, bool trans, int r, int c)
        => trans ? stored[start + (long)c * ld + r] : stored[start + (long)r * ld + c];

    [Test]
    public void GemmMatchesANaiveTripleLoopInAllTransposes(
        [Values(false, true)] bool transA, [Values(false, true)] bool transB, [Values(false, true)] bool accumulate,
        [Values(1, 3)] int batch, [Values(0, 2)] int ldPad)
    {
        const int M = 3, N = 5, K = 7;
        const double alpha = 0.75;
        int rowsA = transA ? K : M, colsA = transA ? M : K, rowsB = transB ? N : K, colsB = transB ? K : N;
        int lda = ldPad == 0 ? 0 : colsA + ldPad, ldb = ldPad == 0 ? 0 : colsB + ldPad, ldc = ldPad == 0 ? 0 : N + ldPad;
        int la = lda == 0 ? colsA : lda, lb = ldb == 0 ? colsB : ldb, lc = ldc == 0 ? N : ldc;
        long sA = rowsA * la + 1, sB = rowsB * lb + 3, sC = M * lc + 2;   // gaps between batches
        var a = Rand((int)(sA * batch), 11); var b = Rand((int)(sB * batch), 12);
        var c = Rand((int)(sC * batch), 13);
        if (!accumulate)   // previous contents of C must be ignored, padding must stay
            for (int p = 0; p < batch; p++) for (int i = 0; i < M; i++) for (int j = 0; j < N; j++) c[p * sC + i * lc + j] = double.NaN;
        var c0 = (double[])c.Clone();

        RefMath.Gemm(transA, transB, M, N, K, alpha, a, lda, b, ldb, accumulate, c, ldc, batch, sA, sB, sC);

        var expected = (double[])c0.Clone();
        for (int p = 0; p < batch; p++)
        {
            // materialise op(A)[M,K] and op(B)[K,N], then the textbook product
            var opA = new double[M, K]; var opB = new double[K, N];
            for (int i = 0; i < M; i++) for (int k = 0; k < K; k++) opA[i, k] = OpAt(a, p * sA, la, transA, i, k);
            for (int k = 0; k < K; k++) for (int j = 0; j < N; j++) opB[k, j] = OpAt(b, p * sB, lb, transB, k, j);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++)
                {
                    double s = 0;
                    for (int k = 0; k < K; k++) s += opA[i, k] * opB[k, j];
                    long ci = p * sC + i * lc + j;
                    expected[ci] = alpha * s + (accumulate ? c0[ci] : 0);
                }
        }
        Assert.That(c, Is.EqualTo(expected).Within(1e-14));
    }

    [Test]
    public void Copy2DCopiesAndAccumulatesAStridedBlock()
    {
        // src (2 rows, ld 4), take cols 1..2 into dst (2 rows, ld 3) at col 1
        double[] src = [0, 1, 2, 3, 10, 11, 12, 13];
        double[] dst = [-1, -1, -1, -1, -1, -1];
        RefMath.Copy2D(dst, 3, 1, src, 4, 1, 2, 2, false);
        Assert.That(dst, Is.EqualTo(new double[] { -1, 1, 2, -1, 11, 12 }));
        RefMath.Copy2D(dst, 3, 1, src, 4, 1, 2, 2, true);
        Assert.That(dst, Is.EqualTo(new double[] { -1, 2, 4, -1, 22, 24 }));
    }

    [Test]
    public void DropoutKeepsAboutOneMinusPAndScalesTheKept()
    {
        const int n = 4000;
        var d = new DropoutSpec(0.25f, 42, 1000);
        var x = Enumerable.Repeat(1.0, n).ToArray(); var y = new double[n];
        RefMath.DropoutForward(y, x, d);
        int kept = y.Count(v => v != 0);
        Assert.That(kept / (double)n, Is.EqualTo(0.75).Within(0.03));
        Assert.That(y.Where(v => v != 0), Is.All.EqualTo(1 / 0.75).Within(1e-7));
        for (int i = 0; i < n; i++) Assert.That(y[i] != 0, Is.EqualTo(Rng.Keep(d, i)), $"element {i} follows Rng.Keep");
        RefMath.DropoutForward(y, x, DropoutSpec.Off);
        Assert.That(y, Is.EqualTo(x), "off is the identity");
    }

    /// <summary>Two steps of the example below written exactly as torch.optim.AdamW (foreach=False) and clip_grad_norm_ do.</summary>
    private static void TorchAdamWStep(double[] p, double[] g, double[] m, double[] v, (int off, int len, double lrScale, double wd)[] groups,
        double totalNorm, double maxNorm, double lr, double beta1, double beta2, double eps, int step)
    {
        double clipCoef = maxNorm / (totalNorm + 1e-6);          // clip_grad_norm_: clip_coef_clamped = clamp(clip_coef, max=1)
        double clipClamped = Math.Min(clipCoef, 1.0);
        foreach (var (off, len, lrScale, wd) in groups)           // a frozen group has requires_grad=False: torch never visits it
        {
            if (lrScale == 0) continue;
            double groupLr = lr * lrScale;
            for (int i = off; i < off + len; i++)
            {
                double grad = g[i] * clipClamped;                 // grads.mul_(clip_coef_clamped)
                p[i] *= 1 - groupLr * wd;                         // param.mul_(1 - lr * weight_decay)
                m[i] += (grad - m[i]) * (1 - beta1);              // exp_avg.lerp_(grad, 1 - beta1)
                v[i] = v[i] * beta2 + (1 - beta2) * grad * grad;  // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
                double stepSize = groupLr / bc1;
                double denom = Math.Sqrt(v[i]) / Math.Sqrt(bc2) + eps;   // (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                p[i] += -stepSize * m[i] / denom;                 // param.addcdiv_(exp_avg, denom, value=-step_size)
            }
        }
    }

    [Test]
    public void AdamWMatchesTorchOverTwoStepsWithSegmentsAndClipping()
    {
        double[] p = [1.0, -0.5, 0.3, 2.0, -1.0], m = [0, 0, 0, 0.2, -0.1], v = [0, 0, 0, 0.05, 0.02];
        // (binary-exact float scalars) [0,2) decayed, [2,3) not decayed at half the lr, [3,5) frozen (moments non-zero: must stay untouched)
        var segs = new[] { new AdamSegment(0, 2, 1f, 0.125f), new AdamSegment(2, 1, 0.5f, 0f), new AdamSegment(3, 2, 0f, 0.125f) };
        var groups = segs.Select(s => (s.Offset, s.Length, (double)s.LrScale, (double)s.WeightDecay)).ToArray();
        double[][] grads = [[0.5, -2.0, 1.0, 3.0, -4.0], [-0.3, 0.7, -0.2, 1.0, 1.0]];
        double[] norms = [5.5, 0.8];   // step 1 clips (5.5 > 1), step 2 does not (0.8 < 1)
        const double lr = 0.01, b1 = 0.9, b2 = 0.999, maxNorm = 1.0;
        double eps = 1e-8;
        var (tp, tm, tv) = ((double[])p.Clone(), (double[])m.Clone(), (double[])v.Clone());
        for (int step = 1; step <= 2; step++)
        {
            RefMath.AdamW(p, grads[step - 1], m, v, segs, norms[step - 1], maxNorm, lr, b1, b2, eps, step);
            TorchAdamWStep(tp, grads[step - 1], tm, tv, groups, norms[step - 1], maxNorm, lr, b1, b2, eps, step);
            Assert.That(p, Is.EqualTo(tp).Within(1e-15), $"param after step {step}");
            Assert.That(m, Is.EqualTo(tm).Within(1e-15), $"m after step {step}");
            Assert.That(v, Is.EqualTo(tv).Within(1e-15), $"v after step {step}");
            if (step == 1)   // hand-checked numbers (CPython, same formulas)
                Assert.That(p[0], Is.EqualTo(0.9887500011000001).Within(1e-15));
        }
        Assert.That(p, Is.EqualTo(new[] { 0.9926936059792014, -0.4922798107715941, 0.2955006745832904, 2.0, -1.0 }).Within(1e-15));
        Assert.That(m[3..], Is.EqualTo(new[] { 0.2, -0.1 }), "frozen moments untouched");
        Assert.That(v[3..], Is.EqualTo(new[] { 0.05, 0.02 }), "frozen moments untouched");
    }
}
