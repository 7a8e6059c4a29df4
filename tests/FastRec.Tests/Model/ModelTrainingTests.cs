// Training behaviour of RecModel on every backend: freezing, determinism, AdamW step, accumulation, shape changes, Encode.
using FastRec.Engine.Model;
using FastRec.Kernels;
using static FastRec.Tests.Model.ModelTestUtil;

namespace FastRec.Tests.Model;

[TestFixtureSource(typeof(ModelTestUtil), nameof(ModelTestUtil.Backends))]
public class ModelTrainingTests(string backendName)
{
    private IBackend? _b;
    private IBackend _backend => _b!;

    [SetUp] public void SetUp() => _b = CreateBackend(backendName);
    [TearDown] public void TearDown() { _b?.Dispose(); _b = null; }

    private RecModel NewModel(ulong seed = 3, AdapterConfig? head = null)
    {
        var m = new RecModel(_backend, TinyBert(), head ?? TinyHead());
        RandomParams(m, seed);
        return m;
    }

    private static bool ExpectedTrainable(RecModel m, ParamInfo t, Freeze mode, int k) => mode switch
    {
        Freeze.AdapterOnly => t.Layer == m.Layout.HeadLayer,
        Freeze.TopK => t.Layer >= m.Layout.NumLayers - k,
        _ => true,
    };

    private static bool BitEqual(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
        => System.Runtime.InteropServices.MemoryMarshal.AsBytes(a).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b));

    [TestCase(Freeze.AdapterOnly, 0)]
    [TestCase(Freeze.TopK, 0)]
    [TestCase(Freeze.TopK, 1)]
    public void FrozenTensorsAreBitIdenticalAfterThreeSteps(Freeze mode, int k)
    {
        using var m = NewModel();
        m.SetTrainable(mode, k);
        var before = AllParams(m);
        var batch = Batch();
        for (int step = 1; step <= 3; step++)
        {
            m.ZeroGrad();
            m.ForwardBackward(batch, 7, step);
            m.Step(new AdamWOptions { Lr = 1e-2f }, step);
        }
        var after = AllParams(m);
        var moments = new float[m.Layout.TotalSize];
        _backend.Download(m.M.All, moments);
        int frozen = 0, trained = 0;
        foreach (var t in m.Layout.Tensors)
        {
            bool expect = ExpectedTrainable(m, t, mode, k);
            Assert.That(m.IsTrainable(t.Name), Is.EqualTo(expect), $"IsTrainable({t.Name}) under {mode}({k})");
            var b = before.AsSpan(t.Offset, t.Length);
            var a = after.AsSpan(t.Offset, t.Length);
            if (!expect)
            {
                Assert.That(BitEqual(a, b), Is.True, $"frozen {t.Name} changed");
                Assert.That(moments.AsSpan(t.Offset, t.Length).ToArray(), Is.All.EqualTo(0f), $"frozen {t.Name}: Adam m written");
                frozen++;
            }
            else if (!t.Name.EndsWith("attention.self.key.bias", StringComparison.Ordinal)) // its gradient is 0 (softmax shift invariance)
            {
                Assert.That(BitEqual(a, b), Is.False, $"trainable {t.Name} did not change");
                trained++;
            }
        }
        Assert.That(frozen, Is.GreaterThan(0));
        Assert.That(trained, Is.GreaterThan(0));
    }

    [TestCase(Freeze.AdapterOnly, 0)]
    [TestCase(Freeze.TopK, 1)]
    public void FrozenGradientsAreNotWrittenAndTrainableOnesEqualFullBackprop(Freeze mode, int k)
    {
        var batch = Batch();
        using var full = NewModel();
        full.ForwardBackward(batch, 9, 1);
        var gFull = AllGrads(full);

        using var m = NewModel();
        m.SetTrainable(mode, k);
        foreach (var t in m.Layout.Tensors)   // poison every frozen gradient: a kernel that writes it leaves no NaN
            if (!m.IsTrainable(t.Name)) _backend.Upload(m.Grads.Slice(t.Offset, t.Length), Enumerable.Repeat(float.NaN, t.Length).ToArray());
        float loss = m.ForwardBackward(batch, 9, 1);
        Assert.That(loss, Is.EqualTo(full.ForwardLoss(batch, true, 9, 1)));
        var g = AllGrads(m);
        foreach (var t in m.Layout.Tensors)
        {
            var gt = g.AsSpan(t.Offset, t.Length).ToArray();
            if (!m.IsTrainable(t.Name))
                Assert.That(gt, Is.All.NaN, $"frozen {t.Name}: gradient was written");
            else
                Assert.That(Kernels.TestUtil.MaxRelError(gt, gFull.AsSpan(t.Offset, t.Length)), Is.LessThan(1e-6),
                    $"{t.Name}: gradient with frozen lower layers differs from full backprop");
        }
    }

    [Test]
    public void SameSeedGivesIdenticalLossesOverFiveStepsWithDropout()
    {
        float[] Run(ulong dropoutSeed)
        {
            using var m = NewModel(seed: 4);
            var losses = new float[5];
            for (int step = 1; step <= 5; step++)
            {
                m.ZeroGrad();
                losses[step - 1] = m.ForwardBackward(Batch(seed: (ulong)step), dropoutSeed, step);
                m.Step(new AdamWOptions { Lr = 1e-3f }, step);
            }
            return losses;
        }
        var a = Run(42);
        var b = Run(42);
        var c = Run(43);
        Assert.That(BitEqual(a, b), Is.True, $"same seed: {string.Join(", ", a)} vs {string.Join(", ", b)}");
        Assert.That(a, Is.Not.EqualTo(c), "a different dropout seed must change the losses (dropout is on)");
    }

    [Test]
    public void StepIsTorchAdamWWithDecayOnlyOnWeights()
    {
        using var m = NewModel();
        m.ForwardBackward(Batch(), 1, 1);
        var g = AllGrads(m);
        var p0 = AllParams(m);
        var opt = new AdamWOptions { Lr = 1e-3f, WeightDecay = 0.1f, MaxGradNorm = 0f };
        float norm = m.Step(opt, 1);
        double expectNorm = Math.Sqrt(g.Sum(x => (double)x * x));
        Assert.That(norm, Is.EqualTo(expectNorm).Within(1e-5).Percent);
        var p1 = AllParams(m);
        foreach (var name in new[] { "head.out.weight", "head.out.bias", "encoder.layer.1.output.LayerNorm.weight", "embeddings.word_embeddings.weight" })
        {
            var t = m.Layout[name];
            Assert.That(t.Decay, Is.EqualTo(!name.EndsWith(".bias", StringComparison.Ordinal) && !name.Contains("LayerNorm")), $"{name}.Decay");
            for (int i = t.Offset; i < t.Offset + t.Length; i += 7)
            {
                // step 1: m̂ = g, v̂ = g², so p1 = p0·(1 − lr·wd) − lr·g/(|g| + eps)
                double wd = t.Decay ? 0.1 : 0.0;
                double expect = p0[i] * (1 - 1e-3 * wd) - 1e-3 * g[i] / (Math.Abs(g[i]) + 1e-8);
                Assert.That(p1[i], Is.EqualTo(expect).Within(2e-6), $"{name}[{i - t.Offset}]");
            }
        }
    }

    [Test]
    public void StepClipsToMaxGradNorm()
    {
        using var m = NewModel();
        m.ForwardBackward(Batch(), 1, 1);
        var g = AllGrads(m);
        double norm = Math.Sqrt(g.Sum(x => (double)x * x));
        float returned = m.Step(new AdamWOptions { Lr = 1e-3f, MaxGradNorm = (float)(norm / 4) }, 1);
        Assert.That(returned, Is.EqualTo(norm).Within(1e-5).Percent, "Step returns the pre-clip norm");
        var mom = new float[g.Length];
        _backend.Download(m.M.All, mom);
        double clip = (norm / 4) / (norm + 1e-6);
        for (int i = 0; i < g.Length; i += 97)
            Assert.That(mom[i], Is.EqualTo(0.1 * g[i] * clip).Within(1e-6 * Math.Abs(g[i]) + 1e-12), $"m[{i}] = (1 − β1)·clip·g");
    }

    [Test]
    public void ForwardBackwardAccumulatesGradients()
    {
        using var m = NewModel();
        var batch = Batch();
        m.ForwardBackward(batch, 2, 3);
        var once = AllGrads(m);
        m.ForwardBackward(batch, 2, 3);
        var twice = AllGrads(m);
        Assert.That(Kernels.TestUtil.MaxRelError(twice, once.Select(x => 2 * x).ToArray()), Is.LessThan(1e-6));
        m.ZeroGrad();
        Assert.That(AllGrads(m), Is.All.EqualTo(0f));
    }

    [Test]
    public void ChangingBatchShapeReusesOrGrowsActivationsWithoutChangingResults()
    {
        using var m = NewModel();
        var big = Batch();
        var first = m.Forward(big);
        var small = Batch(B: 2, T: 5, seed: 3);
        var smallLogits = m.Forward(small);
        var larger = Batch(B: 5, T: 9, seed: 4);
        Assert.That(m.Forward(larger), Has.Length.EqualTo(5));
        Assert.That(m.Forward(big), Is.EqualTo(first), "same batch after other shapes");
        using var fresh = NewModel();
        Assert.That(fresh.Forward(small), Is.EqualTo(smallLogits), "small batch on a fresh model");
        Assert.That(m.Forward(big, training: true, 5, 1), Is.Not.EqualTo(first), "training forward applies dropout");
    }

    [Test]
    public void ForwardOnlyLayoutGivesTheSameLogitsAsTheTrainingLayout()
    {
        using var m = new RecModel(_backend, TinyBert(dropout: 0), TinyHead(dropout: 0));   // no dropout: train == eval
        RandomParams(m, 8);
        var batch = Batch();
        var eval = m.Forward(batch);
        var train = new float[batch.B];
        float loss = m.ForwardBackward(batch, 1, 1, train);
        Assert.That(train, Is.EqualTo(eval));
        Assert.That(m.ForwardLoss(batch), Is.EqualTo(loss));
        Assert.That(m.Forward(batch), Is.EqualTo(eval), "eval after train on the shared buffer");
    }

    [Test]
    public void PoolerHeadLogitIsLinearOfPooledAndDense()
    {
        using var m = NewModel(head: TinyHead(dense: 2, hidden: []));
        var batch = Batch();
        var enc = m.Encode(batch);
        Assert.That(enc.LastHiddenState, Has.Length.EqualTo(3 * 7 * 32));
        Assert.That(enc.PoolerOutput, Has.Length.EqualTo(3 * 32));
        var w = m.GetParameter("head.out.weight");
        float bias = m.GetParameter("head.out.bias")[0];
        var logits = m.Forward(batch);
        for (int b = 0; b < 3; b++)
        {
            double z = bias;
            for (int c = 0; c < 32; c++) z += w[c] * enc.PoolerOutput![b * 32 + c];
            for (int d = 0; d < 2; d++) z += w[32 + d] * batch.Dense![b * 2 + d];
            Assert.That(logits[b], Is.EqualTo(z).Within(1e-5), $"logit {b}");
        }
    }

    [Test]
    public void ClsHeadLogitIsLinearOfFirstTokenHiddenState()
    {
        using var m = NewModel(head: TinyHead(dense: 0, input: AdapterInput.Cls, hidden: []));
        var batch = Batch(dense: 0);
        var enc = m.Encode(batch);
        var w = m.GetParameter("head.out.weight");
        float bias = m.GetParameter("head.out.bias")[0];
        var logits = m.Forward(batch);
        for (int b = 0; b < 3; b++)
        {
            double z = bias;
            for (int c = 0; c < 32; c++) z += w[c] * enc.LastHiddenState[b * 7 * 32 + c];
            Assert.That(logits[b], Is.EqualTo(z).Within(1e-5), $"logit {b}");
        }
        Assert.That(m.IsTrainable("pooler.dense.weight"), Is.False, "the pooler is unused with Cls input");
    }
}
