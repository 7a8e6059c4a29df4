// The RecModel additions the trainer needs: start from a cached layer input, loss scaling, per-tensor LR scales.
using FastRec.Engine.Model;
using FastRec.Kernels;
using FastRec.Tests.Model;
using static FastRec.Tests.Model.ModelTestUtil;

namespace FastRec.Tests.Training;

[TestFixture("reference")]
[TestFixture("cpu")]
public class ModelHookTests(string backendName)
{
    private IBackend _b = null!;
    [SetUp] public void SetUp() => _b = CreateBackend(backendName);
    [TearDown] public void TearDown() => _b.Dispose();

    private RecModel NewModel()
    {
        var m = new RecModel(_b, TinyBert(dropout: 0.0), TinyHead(dropout: 0f));
        RandomParams(m, 3);
        return m;
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(2)]
    public void StartingFromEncodeToOutputGivesTheSameLogitsAndGradients(int layer)
    {
        using var m = NewModel();
        m.SetTrainable(Freeze.TopK, 2 - layer);
        var batch = Batch();
        var logits = m.Forward(batch);
        m.ZeroGrad();
        float loss = m.ForwardBackward(batch, 1, 1);
        var grads = AllGrads(m);

        var hidden = new float[batch.B * batch.T * m.Bert.HiddenSize];
        m.EncodeTo(batch, layer, hidden);
        batch.Hidden = hidden;
        batch.StartLayer = layer;
        Assert.That(m.Forward(batch), Is.EqualTo(logits).Within(1e-5f));
        m.ZeroGrad();
        Assert.That(m.ForwardBackward(batch, 1, 1), Is.EqualTo(loss).Within(1e-5f).Percent);
        var g2 = AllGrads(m);
        for (int i = 0; i < grads.Length; i++) Assert.That(g2[i], Is.EqualTo(grads[i]).Within(1e-4f + 1e-3f * Math.Abs(grads[i])), $"gradient {i}");
    }

    [Test]
    public void CachedBatchAboveTheLowestTrainableLayerIsRefused()
    {
        using var m = NewModel();
        m.SetTrainable(Freeze.All);
        var batch = Batch();
        var hidden = new float[batch.B * batch.T * m.Bert.HiddenSize];
        m.EncodeTo(batch, 1, hidden);
        batch.Hidden = hidden; batch.StartLayer = 1;
        TrainAssert.Throws<InvalidOperationException>(() => m.ForwardBackward(batch, 1, 1), "starts at encoder layer 1", "embeddings", "trainable");
        batch.StartLayer = 3;
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => m.Forward(batch), "StartLayer = 3", "[0, num_hidden_layers = 2]");
        batch.StartLayer = 1; batch.Hidden = new float[5];
        TrainAssert.Throws<ShapeException>(() => m.Forward(batch), "RecBatch.Hidden", "C=32");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => m.EncodeTo(Batch(), 3, hidden), "layer must be in [0, num_hidden_layers = 2]");
        TrainAssert.Throws<ShapeException>(() => m.EncodeTo(Batch(), 1, new float[3]), "hidden", "expected");
    }

    [Test]
    public void LossScaleScalesLossAndGradients()
    {
        using var m = NewModel();
        var batch = Batch();
        m.ZeroGrad();
        float l1 = m.ForwardBackward(batch, 1, 1);
        var g1 = AllGrads(m);
        m.ZeroGrad();
        float l2 = m.ForwardBackward(batch, 1, 1, lossScale: 0.25f);
        var g2 = AllGrads(m);
        Assert.That(l2, Is.EqualTo(0.25f * l1).Within(1e-6f));
        for (int i = 0; i < g1.Length; i++) Assert.That(g2[i], Is.EqualTo(0.25f * g1[i]).Within(1e-7f + 1e-5f * Math.Abs(g1[i])));
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => m.ForwardBackward(batch, 1, 1, lossScale: 0f), "lossScale");
    }

    [Test]
    public void LrScaleChangesOnlyTheScaledTensorsStep()
    {
        using var m = NewModel();
        var batch = Batch();
        var before = AllParams(m);
        m.SetLrScale(t => t.Layer == 0 ? 0f : 1f);   // layer 0 frozen through its LR scale
        m.ZeroGrad();
        m.ForwardBackward(batch, 1, 1);
        m.Step(new AdamWOptions { Lr = 1e-2f }, 1);
        var after = AllParams(m);
        foreach (var t in m.Layout.Tensors)
        {
            bool same = TrainAssert.BitEqual(before.AsSpan(t.Offset, t.Length), after.AsSpan(t.Offset, t.Length));
            if (t.Layer == 0) Assert.That(same, Is.True, t.Name);
        }
        Assert.That(TrainAssert.BitEqual(before, after), Is.False);
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => m.SetLrScale(_ => float.NaN), "LR scale", "finite");
    }
}
