// Every RefMath backward checked against central finite differences in float64, at ragged small sizes.
using FastRec.Kernels;
using FastRec.Kernels.Reference;
using static FastRec.Tests.Kernels.ReferenceFd;

namespace FastRec.Tests.Kernels;

/// <summary>Backward kernels of <see cref="RefMath"/> vs finite differences of L = Σ forward(x)·R.
/// Parameter gradients start from random values (they must ACCUMULATE), activation gradients from NaN (they must be ASSIGNED).</summary>
public class ReferenceGradTests
{
    [Test]
    public void HarnessDetectsAWrongGradient()
    {
        var x = Rand(5, 1);
        var r = Rand(5, 2);
        double Loss() { double s = 0; for (int i = 0; i < 5; i++) s += x[i] * x[i] * r[i]; return s; }
        var right = new double[5];
        for (int i = 0; i < 5; i++) right[i] = 2 * x[i] * r[i];
        Assert.That(Mismatch(x, right, Loss), Is.Null);
        var wrong = (double[])right.Clone();
        wrong[3] *= 1 + 1e-4;
        Assert.That(Mismatch(x, wrong, Loss), Does.Contain("element 3 of 5"));
    }

    [TestCase(1, 1, 1)]
    [TestCase(3, 7, 5)]
    [TestCase(7, 3, 1)]
    public void LinearBackward(int N, int IC, int OC)
    {
        var inp = Rand(N * IC, 10); var w = Rand(OC * IC, 11); var bias = Rand(OC, 12); var r = Rand(N * OC, 13);
        var outp = new double[N * OC];
        double Loss() { RefMath.LinearForward(outp, inp, w, bias, N, IC, OC); return Dot(outp, r); }

        var dInp = NaNs(N * IC);
        var dW0 = Rand(OC * IC, 14); var dB0 = Rand(OC, 15);
        var dW = (double[])dW0.Clone(); var dB = (double[])dB0.Clone();
        RefMath.LinearBackward(dInp, dW, dB, r, inp, w, N, IC, OC);
        for (int i = 0; i < dW.Length; i++) dW[i] -= dW0[i];   // accumulated: subtract the starting value
        for (int i = 0; i < dB.Length; i++) dB[i] -= dB0[i];

        Check("dInput", inp, dInp, Loss);
        Check("dWeight", w, dW, Loss);
        Check("dBias", bias, dB, Loss);
    }

    [Test]
    public void LinearBackwardSkipsAbsentGradients()
    {
        const int N = 3, IC = 4, OC = 2;
        var inp = Rand(N * IC, 10); var w = Rand(OC * IC, 11); var r = Rand(N * OC, 13);
        var dW = new double[OC * IC];
        RefMath.LinearBackward(Span<double>.Empty, dW, Span<double>.Empty, r, inp, w, N, IC, OC);
        Assert.That(dW, Has.Some.Not.EqualTo(0.0));
    }

    [TestCase(Activation.Gelu, 1)]
    [TestCase(Activation.Gelu, 33)]
    [TestCase(Activation.Relu, 7)]
    [TestCase(Activation.Tanh, 7)]
    [TestCase(Activation.Identity, 3)]
    public void ActivationBackward(Activation act, int n)
    {
        var x = Rand(n, 20, -4, 4);
        for (int i = 0; i < n; i++) if (Math.Abs(x[i]) < 1e-3) x[i] = 0.5;   // ReLU's kink
        var r = Rand(n, 21);
        var outp = new double[n];
        double Loss() { RefMath.ActivationForward(act, outp, x); return Dot(outp, r); }
        var dx = NaNs(n);
        RefMath.ActivationBackward(act, dx, r, x);
        Check($"{act}", x, dx, Loss);
    }

    [TestCase(1, 3, true)]
    [TestCase(3, 7, true)]
    [TestCase(2, 5, false)]
    public void AddLayerNormBackward(int N, int C, bool withB)
    {
        var a = Rand(N * C, 30, -2, 2); var b = withB ? Rand(N * C, 31) : []; var gamma = Rand(C, 32, 0.5, 1.5); var beta = Rand(C, 33);
        var r = Rand(N * C, 34);
        var outp = new double[N * C]; var sum = new double[N * C]; var mean = new double[N]; var rstd = new double[N];
        const double eps = 1e-5;
        double Loss() { RefMath.AddLayerNormForward(outp, sum, mean, rstd, a, b, gamma, beta, N, C, eps); return Dot(outp, r); }
        Loss();
        var dx = NaNs(N * C);
        var dG0 = Rand(C, 35); var dBe0 = Rand(C, 36);
        var dG = (double[])dG0.Clone(); var dBe = (double[])dBe0.Clone();
        RefMath.AddLayerNormBackward(dx, dG, dBe, r, sum, gamma, mean, rstd, N, C);
        for (int i = 0; i < C; i++) { dG[i] -= dG0[i]; dBe[i] -= dBe0[i]; }

        Check("dx wrt a", a, dx, Loss);
        if (withB) Check("dx wrt b", b, dx, Loss);
        Check("dGamma", gamma, dG, Loss);
        Check("dBeta", beta, dBe, Loss);
    }

    [TestCase(1, 1, 1, true)]
    [TestCase(2, 3, 5, true)]
    [TestCase(3, 2, 4, false)]
    public void EmbeddingBackward(int B, int T, int C, bool withTypes)
    {
        const int V = 4, P = 6, TV = 2;
        // repeated ids exercise the scatter-add
        var ids = new int[B * T]; var types = withTypes ? new int[B * T] : [];
        for (int i = 0; i < B * T; i++) { ids[i] = (i * 3) % V; if (withTypes) types[i] = i % TV; }
        var word = Rand(V * C, 40); var pos = Rand(P * C, 41); var type = Rand(TV * C, 42); var r = Rand(B * T * C, 43);
        var outp = new double[B * T * C];
        double Loss() { RefMath.EmbeddingForward(outp, ids, types, word, pos, type, B, T, C); return Dot(outp, r); }
        var dWord0 = Rand(V * C, 44); var dPos0 = Rand(P * C, 45); var dType0 = Rand(TV * C, 46);
        var dWord = (double[])dWord0.Clone(); var dPos = (double[])dPos0.Clone(); var dType = (double[])dType0.Clone();
        RefMath.EmbeddingBackward(dWord, dPos, dType, r, ids, types, B, T, C);
        for (int i = 0; i < dWord.Length; i++) dWord[i] -= dWord0[i];
        for (int i = 0; i < dPos.Length; i++) dPos[i] -= dPos0[i];
        for (int i = 0; i < dType.Length; i++) dType[i] -= dType0[i];

        Check("dWordEmb", word, dWord, Loss);
        Check("dPosEmb", pos, dPos, Loss);
        Check("dTypeEmb", type, dType, Loss);
    }

    [TestCase(1, 1, 1, false)]
    [TestCase(2, 3, 5, true)]
    [TestCase(3, 1, 7, true)]
    public void SoftmaxBackward(int B, int NH, int T, bool withMask)
    {
        double[] mask = withMask ? PaddingMask(B, T) : [];
        var scores = Rand(B * NH * T * T, 50, -3, 3); var r = Rand(B * NH * T * T, 51);
        const double scale = 0.7;
        var probs = new double[scores.Length];
        double Loss() { RefMath.SoftmaxForward(probs, scores, mask, B, NH, T, scale); return Dot(probs, r); }
        Loss();
        var dScores = NaNs(scores.Length);
        RefMath.SoftmaxBackward(dScores, r, probs, B, NH, T, scale);
        Check("dScores", scores, dScores, Loss);
    }

    /// <summary>Batch b keeps its first T − (b mod 3) keys (at least one), the rest are padding.</summary>
    internal static double[] PaddingMask(int B, int T)
    {
        var mask = new double[B * T];
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) mask[b * T + t] = t < Math.Max(1, T - b % 3) ? 1 : 0;
        return mask;
    }

    [TestCase(1, 1, 1, 1, false, 0f)]
    [TestCase(2, 3, 4, 2, false, 0f)]
    [TestCase(2, 5, 6, 3, true, 0f)]
    [TestCase(3, 4, 4, 1, true, 0.3f)]
    [TestCase(2, 3, 6, 2, false, 0.5f)]
    public void AttentionBackward(int B, int T, int C, int NH, bool withMask, float p)
    {
        double[] mask = withMask ? PaddingMask(B, T) : [];
        var dropout = new DropoutSpec(p, 1234, 17);
        var qkv = Rand(B * T * 3 * C, 60, -1.5, 1.5); var r = Rand(B * T * C, 61);
        var outp = new double[B * T * C]; var perm = new double[3 * B * T * C]; var probs = new double[B * NH * T * T];
        double Loss() { RefMath.AttentionForward(outp, perm, probs, qkv, mask, B, T, C, NH, dropout); return Dot(outp, r); }
        Loss();
        var dQkv = NaNs(qkv.Length);
        RefMath.AttentionBackward(dQkv, r, perm, probs, B, T, C, NH, dropout);
        Check("dQkv", qkv, dQkv, Loss);
    }

    [TestCase(7, 0.25f)]
    [TestCase(33, 0.5f)]
    public void DropoutBackward(int n, float p)
    {
        var d = new DropoutSpec(p, 99, 5);
        var x = Rand(n, 70); var r = Rand(n, 71); var outp = new double[n];
        double Loss() { RefMath.DropoutForward(outp, x, d); return Dot(outp, r); }
        var dx = NaNs(n);
        RefMath.DropoutBackward(dx, r, d);
        Check("dInput", x, dx, Loss);
    }

    [TestCase(1, 1, 1, true)]
    [TestCase(2, 3, 5, true)]
    [TestCase(3, 2, 4, false)]
    public void PoolerBackward(int B, int T, int C, bool withBias)
    {
        var hidden = Rand(B * T * C, 80); var w = Rand(C * C, 81); var bias = withBias ? Rand(C, 82) : []; var r = Rand(B * C, 83);
        var pooled = new double[B * C];
        double Loss() { RefMath.PoolerForward(pooled, hidden, w, bias, B, T, C); return Dot(pooled, r); }
        Loss();
        var dH0 = Rand(B * T * C, 84); var dW0 = Rand(C * C, 85); var dB0 = Rand(C, 86);
        var dH = (double[])dH0.Clone(); var dW = (double[])dW0.Clone(); var dB = withBias ? (double[])dB0.Clone() : [];
        RefMath.PoolerBackward(dH, dW, dB, r, pooled, hidden, w, B, T, C);
        for (int i = 0; i < dH.Length; i++) dH[i] -= dH0[i];   // += on row 0, other rows untouched
        for (int i = 0; i < dW.Length; i++) dW[i] -= dW0[i];
        for (int i = 0; i < dB.Length; i++) dB[i] -= dB0[i];

        Check("dHidden", hidden, dH, Loss);
        Check("dWeight", w, dW, Loss);
        if (withBias) Check("dBias", bias, dB, Loss);
    }

    [TestCase(1, false, false, 1.0, 1.0)]
    [TestCase(7, true, false, 1.0, 1.0)]
    [TestCase(7, true, true, 2.5, 3.0)]
    [TestCase(33, false, true, 0.5, 0.25)]
    public void BceBackward(int N, bool withWeights, bool softTargets, double temperature, double scale)
    {
        var z = Rand(N, 90, -6, 6);
        var y = softTargets ? Rand(N, 91, 0, 1) : Rand(N, 91, 0, 1).Select(v => v < 0.5 ? 0.0 : 1.0).ToArray();
        var w = withWeights ? Rand(N, 92, 0.1, 2) : [];
        double Loss() => RefMath.BceForwardBackward(Span<double>.Empty, z, y, w, N, temperature, scale, false);
        var dz = NaNs(N);
        double loss = RefMath.BceForwardBackward(dz, z, y, w, N, temperature, scale, false);
        Assert.That(loss, Is.EqualTo(Loss()), "the loss does not depend on whether the gradient is asked for");
        Check("dLogits", z, dz, Loss);

        // accumulate adds onto what is there
        var acc = Rand(N, 93);
        var expected = acc.Zip(dz, (a, g) => a + g).ToArray();
        RefMath.BceForwardBackward(acc, z, y, w, N, temperature, scale, true);
        Assert.That(acc, Is.EqualTo(expected).Within(1e-15));
    }

    [Test]
    public void GlobalNormIsTheL2Norm()
    {
        var g = Rand(33, 95);
        double expected = Math.Sqrt(g.Sum(v => v * v));
        Assert.That(RefMath.GlobalNorm(g), Is.EqualTo(expected).Within(1e-15));
        Assert.That(RefMath.GlobalNorm([3.0, 4.0]), Is.EqualTo(5.0));
    }
}
