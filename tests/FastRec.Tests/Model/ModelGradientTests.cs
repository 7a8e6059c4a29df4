// Whole-model gradient checks: float64 analytic gradients vs central finite differences, then each backend vs float64.
using FastRec.Engine.Model;
using static FastRec.Tests.Model.ModelTestUtil;

namespace FastRec.Tests.Model;

[TestFixture]
public class ModelGradientTests
{
    private const ulong DropSeed = 123;
    private const int DropStep = 4;

    private static IEnumerable<TestCaseData> Heads()
    {
        yield return new TestCaseData(true, AdapterInput.Pooler, new[] { 16 }, 2).SetName("Float64_FiniteDifferences_PoolerInput_OneHiddenLayer_Dense2");
        yield return new TestCaseData(false, AdapterInput.Cls, Array.Empty<int>(), 0).SetName("Float64_FiniteDifferences_ClsInput_NoPooler_NoHiddenLayer");
        yield return new TestCaseData(true, AdapterInput.Mean, new[] { 16 }, 2).SetName("Float64_FiniteDifferences_MeanInput_OneHiddenLayer_Dense2");
        yield return new TestCaseData(false, AdapterInput.Mean, Array.Empty<int>(), 0).SetName("Float64_FiniteDifferences_MeanInput_NoPooler_NoHiddenLayer");
    }

    /// <summary>
    /// The model runs in float64 (<see cref="Float64Backend"/>), dropout ON everywhere (masks are a function of (seed, step),
    /// so the perturbed forwards reuse them). For ~8 elements of EVERY tensor (embedding rows restricted to the rows the
    /// batch uses) the analytic gradient must match (L(p+h) − L(p−h)) / 2h with h = 1e-5.
    /// </summary>
    [TestCaseSource(nameof(Heads))]
    public void AnalyticGradientsMatchCentralDifferences(bool pooler, AdapterInput input, int[] hidden, int dense)
    {
        var be = new Float64Backend();
        using var model = new RecModel(be, TinyBert(pooler), TinyHead(dense, input, hidden));
        RandomParams(model, 5);
        var batch = Batch(dense);

        float loss = model.ForwardBackward(batch, DropSeed, DropStep);
        double loss64 = be.LastLoss;
        Assert.That(loss, Is.EqualTo((float)loss64));
        model.ForwardLoss(batch, training: true, DropSeed, DropStep);
        Assert.That(be.LastLoss, Is.EqualTo(loss64), "ForwardLoss(training) must replay ForwardBackward's dropout masks");
        model.ForwardLoss(batch);
        Assert.That(be.LastLoss, Is.Not.EqualTo(loss64), "dropout must be on in training (else this test checks less than it claims)");

        var grads = be.Data(model.Grads.All).ToArray();
        var p = be.Data(model.Params.All);
        const double h = 1e-5;
        int C = model.Bert.HiddenSize, checkedCount = 0;
        var usedRows = batch.InputIds.Where((id, i) => batch.AttentionMask[i] == 1f).Distinct().ToArray();
        var failures = new List<string>();
        foreach (var t in model.Layout.Tensors)
        {
            int[] rows = t.Name switch
            {
                "embeddings.word_embeddings.weight" => usedRows,
                "embeddings.position_embeddings.weight" => Enumerable.Range(0, batch.T).ToArray(),
                _ => [],
            };
            double maxAbs = 0;
            for (int k = 0; k < 8; k++)
            {
                ulong r = FastRec.Kernels.Rng.Hash(77, (ulong)(t.Offset * 8 + k));
                int i = rows.Length > 0 ? rows[(int)(r % (ulong)rows.Length)] * C + (int)((r >> 32) % (ulong)C) : (int)(r % (ulong)t.Length);
                int gi = t.Offset + i;
                double orig = p[gi];
                p[gi] = orig + h; model.ForwardLoss(batch, true, DropSeed, DropStep); double lp = be.LastLoss;
                p[gi] = orig - h; model.ForwardLoss(batch, true, DropSeed, DropStep); double lm = be.LastLoss;
                p[gi] = orig;
                double fd = (lp - lm) / (2 * h), an = grads[gi];
                if (!(Math.Abs(fd - an) <= 1e-8 + 1e-5 * Math.Abs(fd)))
                    failures.Add($"{t.Name}[{i}]: analytic {an:E6}, finite difference {fd:E6}");
                maxAbs = Math.Max(maxAbs, Math.Abs(an));
                checkedCount++;
            }
            // key.bias adds q·b_k to every score of a query row: softmax is invariant to that, so its gradient is exactly 0.
            bool used = model.IsTrainable(t.Name) && !t.Name.EndsWith("attention.self.key.bias", StringComparison.Ordinal);
            if (used && maxAbs < 1e-7) failures.Add($"{t.Name}: every sampled gradient is ~0 ({maxAbs:E2}); the check would be vacuous");
        }
        Assert.That(failures, Is.Empty, $"{failures.Count} of {checkedCount} gradients differ:\n" + string.Join("\n", failures.Take(20)));
        Assert.That(checkedCount, Is.GreaterThanOrEqualTo(8 * model.Layout.Tensors.Count));

        // nn.Embedding(padding_idx = 0): the pad row gets no gradient even though padded positions use it.
        var word = model.Layout["embeddings.word_embeddings.weight"];
        Assert.That(grads.AsSpan(word.Offset, C).ToArray(), Is.All.EqualTo(0.0), "pad_token_id row of word_embeddings must have zero gradient");
    }

    /// <summary>Logits of a model whose weights were perturbed must change smoothly: the float64 loss is the one ForwardBackward reports.</summary>
    [Test]
    public void ForwardLossWithoutDropoutEqualsBceOfForwardLogits()
    {
        var be = new Float64Backend();
        using var model = new RecModel(be, TinyBert(), TinyHead());
        RandomParams(model, 9);
        var batch = Batch();
        var z = model.Forward(batch);
        double num = 0, den = 0;
        for (int b = 0; b < batch.B; b++)
        {
            double zb = z[b], y = batch.Labels[b], w = batch.Weights![b];
            num += w * (Math.Max(zb, 0) - zb * y + Math.Log(1 + Math.Exp(-Math.Abs(zb))));
            den += w;
        }
        Assert.That(model.ForwardLoss(batch), Is.EqualTo(num / den).Within(1e-6));
    }
}

/// <summary>Every backend's float32 gradients against the float64 model's on the same parameters and dropout masks.</summary>
[TestFixtureSource(typeof(ModelTestUtil), nameof(ModelTestUtil.Backends))]
public class ModelBackendGradientTests(string backendName)
{
    [TestCase(AdapterInput.Pooler)]
    [TestCase(AdapterInput.Cls)]
    [TestCase(AdapterInput.Mean)]
    public void Float32GradientsMatchFloat64Model(AdapterInput input)
    {
        var be64 = new Float64Backend();
        using var m64 = new RecModel(be64, TinyBert(), TinyHead(input: input));
        using var backend = CreateBackend(backendName);
        using var m32 = new RecModel(backend, TinyBert(), TinyHead(input: input));
        RandomParams(m64, 21);
        RandomParams(m32, 21);
        var batch = Batch();
        var z64 = new float[batch.B];
        var z32 = new float[batch.B];
        float l64 = m64.ForwardBackward(batch, 5, 2, z64);
        float l32 = m32.ForwardBackward(batch, 5, 2, z32);
        Assert.That(l32, Is.EqualTo(l64).Within(1e-5).Percent.Or.EqualTo(l64).Within(2e-6f), "loss");
        Assert.That(TestUtilMaxRel(z32, z64), Is.LessThan(1e-4), "logits");
        var g64 = AllGrads(m64);
        var g32 = AllGrads(m32);
        double scale = g64.Max(x => Math.Abs((double)x));
        foreach (var t in m64.Layout.Tensors)
        {
            var a = g32.AsSpan(t.Offset, t.Length);
            var e = g64.AsSpan(t.Offset, t.Length);
            if (t.Name.EndsWith("attention.self.key.bias", StringComparison.Ordinal))
            {   // exactly 0 in exact arithmetic (softmax shift invariance): only rounding noise is allowed
                Assert.That(a.ToArray().Max(x => Math.Abs(x)), Is.LessThan(1e-5 * scale), $"{backendName}: gradient of {t.Name}");
                continue;
            }
            Assert.That(Kernels.TestUtil.MaxRelError(a, e), Is.LessThan(5e-4), $"{backendName}: gradient of {t.Name}");
        }
    }

    private static double TestUtilMaxRel(float[] a, float[] e) => Kernels.TestUtil.MaxRelError(a, e);
}
