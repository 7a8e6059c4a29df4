// Deep mutual learning: each model's gradient is BCE + soft BCE towards the other's logits; co-training on a small slice.
using FastRec.Engine.Distillation;
using FastRec.Engine.Model;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Model;
using static FastRec.Tests.Distillation.DistillTestUtil;

namespace FastRec.Tests.Distillation;

public class MutualLearningTests
{
    private static readonly int[] Rows = [0, 1, 2, 3, 4, 5];

    [Test]
    public void EachModelsGradientIsBcePlusSoftBceTowardsTheOther()
    {
        using var be = new CpuSimdBackend();
        using var a = DistillTestUtil.Model(be, Bert(2), 1);
        using var b = DistillTestUtil.Model(be, Bert(1, C: 16), 2);
        using var a2 = DistillTestUtil.Model(be, Bert(2), 1);   // replicas for the manual computation
        using var b2 = DistillTestUtil.Model(be, Bert(1, C: 16), 2);
        var o = new DistillOptions { Alpha = 0.4f, Temperature = 3f, Seed = 8, Optimizer = new AdamWOptions { Lr = 0f } };
        using var ml = new MutualLearning(a, b, o);
        var batch = Batch(Rows);
        var loss = ml.Step(batch, 1);

        var za = a2.Forward(batch, training: true, 8, 1);
        var zb = b2.Forward(batch, training: true, 9, 1);
        foreach (var (m, other, seed, expectGrads, expectHard, expectSoft) in new[]
                 { (a2, zb, 8UL, ModelTestUtil.AllGrads(a), loss.HardA, loss.SoftA), (b2, za, 9UL, ModelTestUtil.AllGrads(b), loss.HardB, loss.SoftB) })
        {
            m.ZeroGrad();
            m.ForwardTaps(batch, true, seed, 1);
            using var l = be.Allocate<float>(2);
            using var soft = be.Allocate<float>(batch.B);
            be.Upload(soft.All, other.Select(z => (float)(1 / (1 + Math.Exp(-(double)z / 3)))).ToArray());
            be.BceForwardBackward(l.Slice(0, 1), m.TapLogitsGrad, m.TapLogits, m.TapLabels, View<float>.None, batch.B, 1f, 0.6f);
            be.BceForwardBackward(l.Slice(1, 1), m.TapLogitsGrad, m.TapLogits, soft.All, View<float>.None, batch.B, 3f, 0.4f * 9f, true);
            m.BackwardTaps();
            var host = Kernels.TestUtil.Download(be, l.All);
            Assert.That(expectHard, Is.EqualTo(host[0]));
            Assert.That(expectSoft, Is.EqualTo(host[1]));
            Assert.That(expectGrads, Is.EqualTo(ModelTestUtil.AllGrads(m)), "bit-identical gradients");
        }
        Assert.That(loss.SoftA, Is.GreaterThan(0f));
    }

    [Test]
    public void CoTrainingOnASmallSliceTeachesBothModels()
    {
        using var be = new CpuSimdBackend();
        using var a = new RecModel(be, Bert(2, dropout: 0), Head());
        using var b = new RecModel(be, Bert(1, C: 16, dropout: 0), Head());
        a.InitRandom(21); b.InitRandom(22);
        var test = Batch(Enumerable.Range(300, 96).ToArray());
        var o = new DistillOptions { Alpha = 0.3f, Temperature = 1f, Seed = 3, Optimizer = new AdamWOptions { Lr = 3e-3f, WeightDecay = 0f } };
        using var ml = new MutualLearning(a, b, o);
        var train = Enumerable.Range(0, 96).ToArray();
        float first = 0, last = 0;
        int step = 0;
        for (int epoch = 0; epoch < 20; epoch++)
        {
            float sum = 0;
            for (int s = 0; s < train.Length; s += 16) sum += ml.Step(Batch(train[s..(s + 16)]), ++step).HardA;
            if (epoch == 0) first = sum; else last = sum;
        }
        Assert.That(last, Is.LessThan(0.7f * first), "model A's label (hard) loss falls");
        TestContext.Out.WriteLine($"AUC A {Auc(a.Forward(test), test.Labels):F3}, B {Auc(b.Forward(test), test.Labels):F3}");
        Assert.That(Auc(a.Forward(test), test.Labels), Is.GreaterThan(0.85), "model A learned the rule");
        Assert.That(Auc(b.Forward(test), test.Labels), Is.GreaterThan(0.85), "model B learned the rule");
    }

    [Test]
    public void BadSetupsAreRefused()
    {
        using var be = new CpuSimdBackend();
        using var a = DistillTestUtil.Model(be, Bert(1), 1);
        using var dense = new RecModel(be, Bert(1), Head(dense: 2));
        Assert.That(() => new MutualLearning(a, a, new DistillOptions()), Throws.ArgumentException.With.Message.Contains("distinct"));
        Assert.That(() => new MutualLearning(a, dense, new DistillOptions()), Throws.ArgumentException.With.Message.Contains("dense"));
        using var b = DistillTestUtil.Model(be, Bert(1), 2);
        Assert.That(() => new MutualLearning(a, b, new DistillOptions { Alpha = -0.1f }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("Alpha"));
    }
}
