// The learning-rate schedule (warmup, decay, bounds) and layer-wise LR decay multipliers.
using FastRec.Engine.Model;
using FastRec.Engine.Training;

namespace FastRec.Tests.Training;

public class ScheduleTests
{
    [Test]
    public void WarmupRampsLinearlyThenDecaysLinearlyToOneStepPastTheEnd()
    {
        var s = new LrSchedule(1e-3f, totalSteps: 10, warmupSteps: 4);
        float[] expected = [0.25e-3f, 0.5e-3f, 0.75e-3f, 1e-3f, 1e-3f, 5e-3f / 6, 4e-3f / 6, 3e-3f / 6, 2e-3f / 6, 1e-3f / 6];
        for (int step = 1; step <= 10; step++)
            Assert.That(s.At(step), Is.EqualTo(expected[step - 1]).Within(1e-9f), $"step {step}");
    }

    [Test]
    public void NoWarmupStartsAtThePeak()
    {
        var s = new LrSchedule(2f, 4, 0);
        Assert.That(new[] { s.At(1), s.At(2), s.At(3), s.At(4) }, Is.EqualTo(new[] { 2f, 1.5f, 1f, 0.5f }));
    }

    [Test]
    public void AllWarmupEndsAtThePeak()
    {
        var s = new LrSchedule(1f, 4, 4);
        Assert.That(new[] { s.At(1), s.At(2), s.At(3), s.At(4) }, Is.EqualTo(new[] { 0.25f, 0.5f, 0.75f, 1f }));
    }

    [TestCase(0.1, 25, 3)]
    [TestCase(0.0, 25, 0)]
    [TestCase(1.0, 25, 25)]
    [TestCase(0.06, 10, 1)]
    public void WarmupForRoundsTheFraction(double fraction, int total, int expected)
        => Assert.That(LrSchedule.WarmupFor(fraction, total), Is.EqualTo(expected));

    [Test]
    public void BadScheduleArgumentsAreRefusedByName()
    {
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => _ = new LrSchedule(0f, 10, 1), "learning rate", "> 0");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => _ = new LrSchedule(float.NaN, 10, 1), "learning rate");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => _ = new LrSchedule(1f, 0, 0), "total steps");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => _ = new LrSchedule(1f, 10, 11), "warmup steps", "[0, total steps = 10]");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => new LrSchedule(1f, 10, 1).At(0), "step must be in [1, 10]");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => new LrSchedule(1f, 10, 1).At(11), "step must be in [1, 10]");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => LrSchedule.WarmupFor(1.5, 10), "warmup fraction");
    }

    [Test]
    public void LayerWiseDecayScalesByDepthFromTheTop()
    {
        var layout = new ParameterLayout(TrainFixture.TinyConfig(layers: 3), new AdapterConfig { HiddenSizes = [4] });
        var o = new TrainerOptions { LayerLrDecay = 0.5f };
        Assert.Multiple(() =>
        {
            Assert.That(o.LrScale(layout["head.out.weight"], 3), Is.EqualTo(1f));
            Assert.That(o.LrScale(layout["pooler.dense.weight"], 3), Is.EqualTo(1f));
            Assert.That(o.LrScale(layout["encoder.layer.2.output.dense.weight"], 3), Is.EqualTo(0.5f));
            Assert.That(o.LrScale(layout["encoder.layer.1.attention.self.query.bias"], 3), Is.EqualTo(0.25f));
            Assert.That(o.LrScale(layout["encoder.layer.0.intermediate.dense.weight"], 3), Is.EqualTo(0.125f));
            Assert.That(o.LrScale(layout["embeddings.word_embeddings.weight"], 3), Is.EqualTo(0.0625f));
            Assert.That(new TrainerOptions().LrScale(layout["embeddings.word_embeddings.weight"], 3), Is.EqualTo(1f), "decay 1 = off");
        });
    }
}
