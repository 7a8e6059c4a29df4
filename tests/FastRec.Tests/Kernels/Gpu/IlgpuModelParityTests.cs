// Whole-model parity of the ILGPU kernels (CPU accelerator) with the CpuSimd backend: logits, loss, every gradient, AdamW.
using FastRec.Engine.Model;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Kernels.Gpu;
using FastRec.Tests.Kernels;

namespace FastRec.Tests.Kernels.Gpu;

/// <summary>
/// A tiny BERT + MLP head (2 layers, C = 16, 2 heads, dense features, padding, token types, dropout on) run through
/// <see cref="RecModel"/> on the ILGPU backend (CPU accelerator: the kernels CUDA runs) and on <see cref="CpuSimdBackend"/>
/// with the same weights and batch. Same counter RNG, so dropout masks agree and the comparison is tight:
/// max relative error (max|a−b| / max|b| per tensor, floored at 1e-3 of the largest gradient) below 1e-4 for logits, loss
/// and every gradient, and below 1e-5 for the parameters after two AdamW steps.
/// </summary>
[NonParallelizable]
public sealed class IlgpuModelParityTests
{
    private static BertConfig TinyBert() => new()
    {
        VocabSize = 40, HiddenSize = 16, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 32,
        MaxPositionEmbeddings = 16, TypeVocabSize = 2, HiddenDropoutProb = 0.1, AttentionProbsDropoutProb = 0.1,
        LayerNormEps = 1e-12,
    };

    private static AdapterConfig TinyHead(AdapterInput input = AdapterInput.Pooler)
        => new() { HiddenSizes = [8], Activation = Activation.Gelu, Dropout = 0.1f, DenseFeatures = 3, Input = input };

    private static RecBatch Batch(int B, int T)
    {
        var ids = new int[B * T];
        var types = new int[B * T];
        var mask = new float[B * T];
        for (int b = 0; b < B; b++)
        {
            int len = T - 3 * b;   // later rows padded
            for (int t = 0; t < T; t++)
            {
                int i = b * T + t;
                mask[i] = t < len ? 1f : 0f;
                ids[i] = t == 0 ? 2 : t < len ? 4 + (int)(Rng.Hash(9, (ulong)i) % 36) : 0;
                types[i] = t >= len / 2 && t < len ? 1 : 0;
            }
        }
        return new RecBatch
        {
            B = B, T = T, InputIds = ids, TokenTypeIds = types, AttentionMask = mask,
            Dense = TestUtil.Random(B * 3, 10), Labels = new[] { 1f, 0f, 1f }[..B], Weights = new[] { 1f, 2f, 0.5f }[..B],
        };
    }

    private IlgpuBackend _gpu = null!;

    [OneTimeSetUp]
    public void Create() => _gpu = IlgpuBackend.CreateCpuAccelerator();

    [OneTimeTearDown]
    public void Dispose() => _gpu?.Dispose();

    [TestCase(AdapterInput.Pooler)]
    [TestCase(AdapterInput.Cls)]
    [TestCase(AdapterInput.Mean)]
    public void ForwardBackwardAndAdamWMatchTheCpuBackend(AdapterInput input)
    {
        var gpu = _gpu;
        using var cpu = new CpuSimdBackend();
        using var mg = new RecModel(gpu, TinyBert(), TinyHead(input));
        using var mc = new RecModel(cpu, TinyBert(), TinyHead(input));
        mg.InitRandom(7);
        mc.InitRandom(7);
        var batch = Batch(3, 8);

        var lg = mg.Forward(batch);
        var lc = mc.Forward(batch);
        Assert.That(TestUtil.MaxRelError(lg, lc), Is.LessThan(1e-4), "eval logits");

        var opt = new AdamWOptions { Lr = 1e-2f, MaxGradNorm = 0.5f };
        for (int step = 1; step <= 2; step++)
        {
            mg.ZeroGrad();
            mc.ZeroGrad();
            float lossG = mg.ForwardBackward(batch, dropoutSeed: 11, step);
            float lossC = mc.ForwardBackward(batch, dropoutSeed: 11, step);
            Assert.That(lossG, Is.EqualTo(lossC).Within(1e-4).Percent.Or.EqualTo(lossC).Within(1e-6), $"loss at step {step}");
            // per tensor: max|a−b| / max(max|b|, 1e-3·G), G = the largest gradient anywhere; the floor keeps tensors whose
            // exact gradient is 0 (key biases: softmax ignores them) from turning rounding noise into a relative error
            double G = mc.Layout.Tensors.Max(t => mc.GetGradient(t.Name).Max(x => Math.Abs((double)x)));
            foreach (var t in mc.Layout.Tensors)
            {
                var gg = mg.GetGradient(t.Name);
                var gc = mc.GetGradient(t.Name);
                double maxDiff = gg.Zip(gc, (x, y) => Math.Abs((double)x - y)).Max();
                double scale = Math.Max(gc.Max(x => Math.Abs((double)x)), 1e-3 * G);
                Assert.That(maxDiff / scale, Is.LessThan(1e-4), $"gradient of {t.Name} at step {step}");
            }
            float normG = mg.Step(opt, step);
            float normC = mc.Step(opt, step);
            Assert.That(normG, Is.EqualTo(normC).Within(1e-4).Percent, $"grad norm at step {step}");
        }
        // tensors with a (numerically) zero gradient take Adam steps of sign(noise)·lr: there only the step bound holds
        double gMax = mc.Layout.Tensors.Max(t => mc.GetGradient(t.Name).Max(x => Math.Abs((double)x)));
        foreach (var t in mc.Layout.Tensors)
        {
            var pg = mg.GetParameter(t.Name);
            var pc = mc.GetParameter(t.Name);
            if (mc.GetGradient(t.Name).Max(x => Math.Abs((double)x)) > 1e-3 * gMax)
                Assert.That(TestUtil.MaxRelError(pg, pc), Is.LessThan(1e-5), $"{t.Name} after AdamW");
            else
                Assert.That(pg.Zip(pc, (x, y) => Math.Abs((double)x - y)).Max(), Is.LessThanOrEqualTo(2 * 2 * opt.Lr), $"{t.Name} after AdamW (zero-gradient tensor)");
        }
    }

    [Test]
    public void TrainingStepIsBitwiseRepeatable()
    {
        var gpu = _gpu;
        float[] Run()
        {
            using var m = new RecModel(gpu, TinyBert(), TinyHead());
            m.InitRandom(3);
            m.ZeroGrad();
            m.ForwardBackward(Batch(2, 6), dropoutSeed: 5, step: 1);
            m.Step(new AdamWOptions { Lr = 1e-3f }, 1);
            var all = new float[m.Params.Length];
            gpu.Download(m.Params.All, all);
            return all;
        }
        Assert.That(Run(), Is.EqualTo(Run()));
    }
}
