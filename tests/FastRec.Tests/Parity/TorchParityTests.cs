// Model parity against LibTorch (TorchBert): layout, logits, loss, every parameter gradient and 10 AdamW steps, per backend and shape.
using FastRec.Engine.Model;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Kernels.Reference;
using FastRec.Peers;
using FastRec.Tests.Kernels;

namespace FastRec.Tests.Parity;

/// <summary>One parity configuration: a backend, a model shape, a batch shape with ragged padding.</summary>
public sealed record ParityCase(string Backend, string Shape, BertConfig Bert, AdapterConfig Adapter, int[] Lengths, int T, bool Weighted)
{
    public int B => Lengths.Length;
    public override string ToString() => $"{Backend}/{Shape}";
}

[TestFixtureSource(nameof(Cases))]
public class TorchParityTests(ParityCase c)
{
    /// <summary>Max relative error allowed per tensor: max|fastrec − torch| / max|torch|.</summary>
    private const double Tolerance = 1e-4;

    /// <summary>
    /// The key bias adds q·b_k to every score of a query row, and softmax is invariant to such a shift, so its gradient is
    /// analytically zero and both sides hold rounding noise (~1e-15). A relative metric is meaningless there: it is checked
    /// to be negligible against the largest gradient instead, and left out of the parameter comparison after AdamW steps
    /// (Adam normalises that noise into ±lr steps, which the output cannot see).
    /// </summary>
    private static bool AnalyticallyZeroGradient(string name) => name.EndsWith("attention.self.key.bias", StringComparison.Ordinal);

    /// <summary>
    /// The parity metric max|a − b| / max|b| for one gradient tensor, except that max|b| is floored at 1e-3 of the largest
    /// gradient of the model (<paramref name="globalMax"/>): a tiny tensor whose gradient is a near-cancelling sum
    /// (head.out.bias = Σ wᵢ(σ(zᵢ) − yᵢ) / Σ wᵢ with balanced labels) would otherwise be judged on its cancellation error.
    /// For every tensor with max|b| ≥ 1e-3·globalMax this is exactly max|a − b| / max|b|.
    /// </summary>
    private static double GradientError(float[] actual, float[] expected, double globalMax)
    {
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs((double)actual[i] - expected[i]));
            maxRef = Math.Max(maxRef, Math.Abs((double)expected[i]));
        }
        return maxDiff / Math.Max(maxRef, 1e-3 * globalMax);
    }

    private static double GlobalMaxGradient(RecModel model, TorchBert torchModel)
        => model.Layout.Tensors.Max(info => torchModel.GetGradient(info.Name).Max(Math.Abs));

    private static BertConfig Bert(int layers, int hidden, int heads, int ff, int vocab, int maxPos, bool pooler = true) => new()
    {
        VocabSize = vocab, HiddenSize = hidden, NumHiddenLayers = layers, NumAttentionHeads = heads, IntermediateSize = ff,
        MaxPositionEmbeddings = maxPos, TypeVocabSize = 2, LayerNormEps = 1e-12, HiddenAct = "gelu",
        HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0, AddPoolingLayer = pooler, // dropout off for parity
    };

    public static IEnumerable<TestFixtureData> Cases()
    {
        // MiniLM-L6 shape (vocab reduced), head: one hidden layer of 64 + 2 dense features; B = 4, T = 32, ragged padding.
        var miniLm = Bert(6, 384, 12, 1536, 1000, 512);
        var miniHead = new AdapterConfig { HiddenSizes = [64], Activation = Activation.Gelu, Dropout = 0, DenseFeatures = 2, Input = AdapterInput.Pooler };
        // Small shape (the Reference backend is scalar double loops): ragged T = 11.
        var small = Bert(2, 48, 4, 96, 97, 40);
        var smallHead = new AdapterConfig { HiddenSizes = [16], Activation = Activation.Gelu, Dropout = 0, DenseFeatures = 2, Input = AdapterInput.Pooler };
        // Variant: no pooler, head on the raw [CLS] state, two tanh hidden layers, no dense features, unweighted loss.
        var noPool = Bert(2, 48, 4, 96, 97, 40, pooler: false);
        var clsHead = new AdapterConfig { HiddenSizes = [24, 8], Activation = Activation.Tanh, Dropout = 0, DenseFeatures = 0, Input = AdapterInput.Cls };

        yield return new TestFixtureData(new ParityCase("cpu", "minilm", miniLm, miniHead, [32, 27, 19, 8], 32, true));
        yield return new TestFixtureData(new ParityCase("cpu", "small", small, smallHead, [11, 7, 3], 11, true));
        yield return new TestFixtureData(new ParityCase("cpu", "small-cls", noPool, clsHead, [11, 9, 1, 6], 11, false));
        yield return new TestFixtureData(new ParityCase("reference", "small", small, smallHead, [11, 7, 3], 11, true));
        yield return new TestFixtureData(new ParityCase("reference", "small-cls", noPool, clsHead, [11, 9, 1, 6], 11, false));
    }

    private static IBackend CreateBackend(string name) => name switch
    {
        "cpu" => new CpuSimdBackend(),
        "reference" => new ReferenceBackend(),
        _ => throw new ArgumentException($"unknown backend {name}"),
    };

    /// <summary>A deterministic batch: ids in [1, V) then padding id 0, two segments in odd rows, dense features, 0/1 labels.</summary>
    private static RecBatch MakeBatch(ParityCase c, ulong seed)
    {
        int B = c.B, T = c.T, V = c.Bert.VocabSize, D = c.Adapter.DenseFeatures;
        var batch = new RecBatch
        {
            B = B, T = T, InputIds = new int[B * T], TokenTypeIds = new int[B * T], AttentionMask = new float[B * T],
            Dense = D > 0 ? TestUtil.Random(B * D, seed + 7) : null, Labels = new float[B],
            Weights = c.Weighted ? new float[B] : null,
        };
        for (int b = 0; b < B; b++)
        {
            int len = c.Lengths[b];
            for (int t = 0; t < T; t++)
            {
                int i = b * T + t;
                bool real = t < len;
                batch.InputIds[i] = real ? 1 + (int)(Rng.Uniform(seed, (ulong)i) * (V - 1)) % (V - 1) : 0;
                batch.TokenTypeIds![i] = real && b % 2 == 1 && t >= len / 2 ? 1 : 0;
                batch.AttentionMask[i] = real ? 1f : 0f;
            }
            batch.Labels[b] = Rng.Uniform(seed + 3, (ulong)b) < 0.5f ? 0f : 1f;
            if (batch.Weights != null) batch.Weights[b] = 0.5f + 1.5f * Rng.Uniform(seed + 5, (ulong)b);
        }
        return batch;
    }

    private static RecModel MakeModel(ParityCase c, IBackend backend)
    {
        var model = new RecModel(backend, c.Bert, c.Adapter);
        model.InitRandom(1234);
        return model;
    }

    [Test]
    public void LayoutMatchesTorchNamesShapesAndDecayGroups()
    {
        using var backend = CreateBackend(c.Backend);
        using var model = new RecModel(backend, c.Bert, c.Adapter);
        var torchShapes = TorchBert.ParameterShapes(c.Bert, c.Adapter);
        Assert.That(model.Layout.Tensors.Select(p => p.Name), Is.EqualTo(torchShapes.Select(s => s.Name)));
        foreach (var (info, (name, shape)) in model.Layout.Tensors.Zip(torchShapes))
        {
            Assert.That(info.Shape.Select(d => (long)d), Is.EqualTo(shape), name);
            Assert.That(info.Decay, Is.EqualTo(TorchBert.Decays(name)), $"{name}: decay group");
        }
    }

    [Test]
    public void LogitsLossAndEveryGradientMatchLibTorch()
    {
        using var backend = CreateBackend(c.Backend);
        using var model = MakeModel(c, backend);
        using var torchModel = TorchBert.FromModel(model);
        var batch = MakeBatch(c, 42);

        float[] logits = model.Forward(batch);
        float[] torchLogits = torchModel.Logits(batch);
        double logitErr = TestUtil.MaxRelError(logits, torchLogits);
        TestContext.Out.WriteLine($"{c}: logits rel err {logitErr:E2}");
        Assert.That(logitErr, Is.LessThanOrEqualTo(Tolerance), $"logits: fastrec [{string.Join(", ", logits)}] vs torch [{string.Join(", ", torchLogits)}]");

        model.ZeroGrad();
        float loss = model.ForwardBackward(batch, dropoutSeed: 0, step: 1);
        float torchLoss = torchModel.ForwardBackward(batch);
        TestContext.Out.WriteLine($"{c}: loss {loss} vs torch {torchLoss}");
        Assert.That(Math.Abs(loss - torchLoss), Is.LessThanOrEqualTo(Tolerance * Math.Abs(torchLoss)), $"loss {loss} vs torch {torchLoss}");

        var failures = new List<string>();
        double worst = 0; string worstName = "";
        double globalMax = GlobalMaxGradient(model, torchModel);
        foreach (var info in model.Layout.Tensors)
        {
            float[] g = model.GetGradient(info.Name), tg = torchModel.GetGradient(info.Name);
            if (AnalyticallyZeroGradient(info.Name))
            {
                double noise = Math.Max(g.Max(Math.Abs), tg.Max(Math.Abs));
                if (!(noise <= 1e-6 * globalMax)) failures.Add($"{info.Name}: should be ~0, max|fastrec| {g.Max(Math.Abs):E2}, max|torch| {tg.Max(Math.Abs):E2}");
                continue;
            }
            double err = GradientError(g, tg, globalMax);
            if (err > worst) { worst = err; worstName = info.Name; }
            if (!(err <= Tolerance)) failures.Add($"{info.Name}: rel err {err:E2} (max|torch| {tg.Max(Math.Abs):E2}, max|fastrec| {g.Max(Math.Abs):E2})");
        }
        TestContext.Out.WriteLine($"{c}: worst gradient rel err {worst:E2} ({worstName}) over {model.Layout.Tensors.Count} tensors");
        Assert.That(failures, Is.Empty, "gradients beyond tolerance:\n" + string.Join("\n", failures));
    }

    [Test]
    public void TenAdamWStepsMatchLibTorch()
    {
        const int Steps = 10;
        var opt = new AdamWOptions { Lr = 1e-3f, WeightDecay = 0.01f, MaxGradNorm = 1.0f };
        using var backend = CreateBackend(c.Backend);
        using var model = MakeModel(c, backend);
        using var torchModel = TorchBert.FromModel(model);
        torchModel.ConfigureOptimizer(lr: 1e-3, weightDecay: 0.01, maxGradNorm: 1.0);
        var batches = Enumerable.Range(0, 3).Select(i => MakeBatch(c, 100 + (ulong)i)).ToArray();

        var failures = new List<string>();
        for (int step = 1; step <= Steps; step++)
        {
            var batch = batches[(step - 1) % batches.Length];
            model.ZeroGrad();
            float loss = model.ForwardBackward(batch, dropoutSeed: 0, step: step);
            float norm = model.Step(opt, step);
            torchModel.ZeroGrad();
            float torchLoss = torchModel.ForwardBackward(batch);
            double torchNorm = torchModel.Step();
            TestContext.Out.WriteLine($"{c}: step {step}: loss {loss:F7} vs torch {torchLoss:F7}, grad norm {norm:E4} vs {torchNorm:E4}");
            if (!(Math.Abs(loss - torchLoss) <= Tolerance * Math.Abs(torchLoss))) failures.Add($"step {step}: loss {loss} vs torch {torchLoss}");
            if (!(Math.Abs(norm - torchNorm) <= 1e-3 * torchNorm)) failures.Add($"step {step}: grad norm {norm} vs torch {torchNorm}");
        }
        double worst = 0; string worstName = "";
        foreach (var info in model.Layout.Tensors.Where(i => !AnalyticallyZeroGradient(i.Name)))
        {
            double err = TestUtil.MaxRelError(model.GetParameter(info.Name), torchModel.GetParameter(info.Name));
            if (err > worst) { worst = err; worstName = info.Name; }
        }
        TestContext.Out.WriteLine($"{c}: after {Steps} steps, worst parameter rel err {worst:E2} ({worstName})");
        Assert.That(failures, Is.Empty, string.Join("\n", failures));
        Assert.That(worst, Is.LessThanOrEqualTo(1e-3), $"parameters drifted apart after {Steps} steps: {worstName}");
    }

    [TestCase(Freeze.TopK, 1)]
    [TestCase(Freeze.AdapterOnly, 0)]
    public void FrozenTensorsMatchLibTorchWithoutGradients(Freeze mode, int topK)
    {
        if (c.Shape == "minilm") Assert.Ignore("freezing is covered on the small shapes (same code path, a fraction of the time)");
        const int Steps = 3;
        var opt = new AdamWOptions { Lr = 1e-3f, WeightDecay = 0.01f, MaxGradNorm = 1.0f };
        using var backend = CreateBackend(c.Backend);
        using var model = MakeModel(c, backend);
        model.SetTrainable(mode, topK);
        using var torchModel = TorchBert.FromModel(model);
        torchModel.ConfigureOptimizer(lr: 1e-3, weightDecay: 0.01, maxGradNorm: 1.0);
        var frozen = model.Layout.Tensors.Where(t => !model.IsTrainable(t.Name)).Select(t => t.Name).ToList();
        Assert.That(frozen, Is.Not.Empty, "the mode should freeze something");
        Assert.That(frozen, Does.Contain("embeddings.word_embeddings.weight"));
        var before = frozen.ToDictionary(n => n, model.GetParameter);

        var failures = new List<string>();
        for (int step = 1; step <= Steps; step++)
        {
            var batch = MakeBatch(c, 200 + (ulong)step);
            model.ZeroGrad();
            float loss = model.ForwardBackward(batch, dropoutSeed: 0, step: step);
            torchModel.ZeroGrad();
            float torchLoss = torchModel.ForwardBackward(batch);
            if (!(Math.Abs(loss - torchLoss) <= Tolerance * Math.Abs(torchLoss))) failures.Add($"step {step}: loss {loss} vs torch {torchLoss}");
            double globalMax = GlobalMaxGradient(model, torchModel);
            foreach (var info in model.Layout.Tensors)
            {
                float[] g = model.GetGradient(info.Name);
                if (!model.IsTrainable(info.Name))
                {
                    if (g.Any(x => x != 0)) failures.Add($"step {step}: frozen {info.Name} got a gradient");
                    continue;
                }
                // Gradients are compared on the first step only, where both models hold identical parameters; later
                // steps start from parameters that AdamW has already moved apart by rounding (their losses are compared).
                if (step > 1 || AnalyticallyZeroGradient(info.Name)) continue;
                double err = GradientError(g, torchModel.GetGradient(info.Name), globalMax);
                if (!(err <= Tolerance)) failures.Add($"step {step}: {info.Name}: gradient rel err {err:E2}");
            }
            model.Step(opt, step);
            torchModel.Step();
        }
        foreach (string name in frozen)
            if (!model.GetParameter(name).SequenceEqual(before[name])) failures.Add($"frozen {name} changed");
        Assert.That(failures, Is.Empty, string.Join("\n", failures));
    }
}
