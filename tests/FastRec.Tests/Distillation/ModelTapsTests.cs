// RecModel's distillation taps: float64 finite differences through injected hidden/attention gradients, consistency, misuse.
using FastRec.Engine.Model;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Model;
using static FastRec.Tests.Model.ModelTestUtil;

namespace FastRec.Tests.Distillation;

public class ModelTapsTests
{
    private const ulong DropSeed = 321;
    private const int DropStep = 3;

    /// <summary>
    /// L = BCE(logits) + Σ_i Σ R_i ⊙ hidden_i (i = 0 embeddings, 1, 2 = last) + Σ_l Σ S_l ⊙ probs_l, in float64 with dropout on.
    /// BackwardTaps with dHidden = R, dProbs = S must give ∂L/∂θ for ~8 elements of every tensor.
    /// </summary>
    [Test]
    public void InjectedGradientsMatchFiniteDifferencesInFloat64()
    {
        var be = new Float64Backend();
        using var model = new RecModel(be, TinyBert(), TinyHead());
        RandomParams(model, 15);
        var batch = Batch();
        int L = model.Layout.NumLayers, B = batch.B, T = batch.T, C = model.Bert.HiddenSize, NH = model.Bert.NumAttentionHeads;
        var loss = be.Allocate<float>(1);
        DeviceBuffer<float> Up(float[] x) { var buf = be.Allocate<float>(x.Length); be.Upload(buf.All, x); return buf; }
        var R = Enumerable.Range(0, L + 1).Select(i => Up(Kernels.TestUtil.Random(B * T * C, 500 + (ulong)i, -0.5f, 0.5f))).ToArray();
        var S = Enumerable.Range(0, L).Select(l => Up(Kernels.TestUtil.Random(B * NH * T * T, 600 + (ulong)l, -2f, 2f))).ToArray();

        double Loss(bool backward)
        {
            model.ForwardTaps(batch, training: true, DropSeed, DropStep);
            be.BceForwardBackward(loss.All, model.TapLogitsGrad, model.TapLogits, model.TapLabels, model.TapWeights, B);
            double l = be.Data(loss.All)[0];
            for (int i = 0; i <= L; i++) l += Dot(be.Data(model.TapHidden(i)), be.Data(R[i].All));
            for (int j = 0; j < L; j++) l += Dot(be.Data(model.TapAttentionProbs(j)), be.Data(S[j].All));
            if (backward)
            {
                model.ZeroGrad();
                model.BackwardTaps(R.Select(r => r.All).ToArray(), S.Select(s => s.All).ToArray());
            }
            return l;
        }
        static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b) { double s = 0; for (int i = 0; i < a.Length; i++) s += a[i] * b[i]; return s; }

        Loss(backward: true);
        var grads = be.Data(model.Grads.All).ToArray();
        var p = be.Data(model.Params.All);
        const double h = 1e-5;
        var usedRows = batch.InputIds.Where((id, i) => batch.AttentionMask[i] == 1f).Distinct().ToArray();
        var failures = new List<string>();
        int checkedCount = 0;
        foreach (var t in model.Layout.Tensors)
        {
            int[] rows = t.Name switch
            {
                "embeddings.word_embeddings.weight" => usedRows,
                "embeddings.position_embeddings.weight" => Enumerable.Range(0, T).ToArray(),
                _ => [],
            };
            for (int k = 0; k < 8; k++)
            {
                ulong r = Rng.Hash(91, (ulong)(t.Offset * 8 + k));
                int i = rows.Length > 0 ? rows[(int)(r % (ulong)rows.Length)] * C + (int)((r >> 32) % (ulong)C) : (int)(r % (ulong)t.Length);
                int gi = t.Offset + i;
                double orig = p[gi];
                p[gi] = orig + h; double lp = Loss(false);
                p[gi] = orig - h; double lm = Loss(false);
                p[gi] = orig;
                double fd = (lp - lm) / (2 * h), an = grads[gi];
                if (!(Math.Abs(fd - an) <= 1e-7 + 1e-5 * Math.Abs(fd)))
                    failures.Add($"{t.Name}[{i}]: analytic {an:E6}, finite difference {fd:E6}");
                checkedCount++;
            }
        }
        Assert.That(failures, Is.Empty, $"{failures.Count} of {checkedCount} gradients differ:\n" + string.Join("\n", failures.Take(20)));

        // the taps matter: without them the gradient of a layer-0 weight differs
        model.ForwardTaps(batch, true, DropSeed, DropStep);
        be.BceForwardBackward(loss.All, model.TapLogitsGrad, model.TapLogits, model.TapLabels, model.TapWeights, B);
        model.ZeroGrad();
        model.BackwardTaps();
        var plain = be.Data(model.Grads.All).ToArray();
        var q = model.Layout["encoder.layer.0.attention.self.query.weight"];
        Assert.That(plain.AsSpan(q.Offset, q.Length).ToArray(), Is.Not.EqualTo(grads.AsSpan(q.Offset, q.Length).ToArray()));
    }

    [Test]
    public void WithoutTapsTheBackwardIsForwardBackward()
    {
        using var a = new RecModel(new CpuSimdBackend(), TinyBert(), TinyHead());
        using var b = new RecModel(new CpuSimdBackend(), TinyBert(), TinyHead());
        RandomParams(a, 40); RandomParams(b, 40);
        var batch = Batch();
        float lossA = a.ForwardBackward(batch, 9, 2);
        b.ForwardTaps(batch, training: true, 9, 2);
        using var loss = b.Backend.Allocate<float>(1);
        b.Backend.BceForwardBackward(loss.All, b.TapLogitsGrad, b.TapLogits, b.TapLabels, b.TapWeights, batch.B);
        b.BackwardTaps();
        Assert.That(Kernels.TestUtil.Download(b.Backend, loss.All)[0], Is.EqualTo(lossA));
        Assert.That(AllGrads(b), Is.EqualTo(AllGrads(a)), "bit-identical gradients");
    }

    [Test]
    public void TapsAreTheModelsHiddenStatesAndAttention()
    {
        using var m = new RecModel(new CpuSimdBackend(), TinyBert(), TinyHead());
        RandomParams(m, 41);
        var batch = Batch();
        var enc = m.Encode(batch);
        var logits = m.Forward(batch);
        m.ForwardTaps(batch, training: false);
        Assert.That(Kernels.TestUtil.Download(m.Backend, m.TapHidden(2)), Is.EqualTo(enc.LastHiddenState).Within(1e-6));
        Assert.That(Kernels.TestUtil.Download(m.Backend, m.TapLogits), Is.EqualTo(logits).Within(1e-6));
        var probs = Kernels.TestUtil.Download(m.Backend, m.TapAttentionProbs(1));
        int T = batch.T, NH = m.Bert.NumAttentionHeads;
        for (int b = 0; b < batch.B; b++)
            for (int i = 0; i < T; i++)
            {
                double s = 0;
                for (int j = 0; j < T; j++)
                {
                    float pj = probs[((b * NH + 2) * T + i) * T + j];
                    if (batch.AttentionMask[b * T + j] == 0f) Assert.That(pj, Is.EqualTo(0f), "padding key");
                    s += pj;
                }
                Assert.That(s, Is.EqualTo(1.0).Within(1e-5), $"row b={b} i={i} sums to 1");
            }
    }

    [Test]
    public void StaleOrMisshapenTapsAreRefused()
    {
        using var m = new RecModel(new CpuSimdBackend(), TinyBert(), TinyHead());
        RandomParams(m, 42);
        var batch = Batch();
        Assert.That(() => m.TapLogits, Throws.InvalidOperationException.With.Message.Contains("ForwardTaps"));
        m.ForwardTaps(batch, training: true, 1, 1);
        Assert.That(() => m.TapHidden(3), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("hidden state index"));
        Assert.That(() => m.TapAttentionProbs(2), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("layer"));
        using var wrong = m.Backend.Allocate<float>(5);
        Assert.That(() => m.BackwardTaps([View<float>.None, wrong.All]), Throws.TypeOf<ShapeException>().With.Message.Contains("dHidden[1]"));
        Assert.That(() => m.BackwardTaps(default, [wrong.All]), Throws.TypeOf<ShapeException>().With.Message.Contains("dProbs[0]"));
        m.Forward(batch);
        Assert.That(() => m.BackwardTaps(), Throws.InvalidOperationException.With.Message.Contains("ForwardTaps"));
    }
}
