// The Mean head input: hand-computed masked mean and its backward on every backend, and padding invariance of the model.
using FastRec.Engine.Model;
using FastRec.Kernels;
using static FastRec.Tests.Model.ModelTestUtil;

namespace FastRec.Tests.Model;

[TestFixtureSource(typeof(ModelTestUtil), nameof(ModelTestUtil.Backends))]
public class MeanPoolingTests(string backendName)
{
    [Test]
    public void MaskedMeanAndItsBackwardMatchHandComputedValues()
    {
        // B = 2, T = 3, C = 2; row 0 keeps t = 0, 1 (weights 1/2), row 1 keeps t = 0 only (weight 1).
        float[] mask = [1, 1, 0, 1, 0, 0];
        var w = new float[6];
        MeanPooling.Weights(mask, 2, 3, w);
        Assert.That(w, Is.EqualTo(new float[] { 0.5f, 0.5f, 0, 1, 0, 0 }));

        using var be = CreateBackend(backendName);
        float[] hidden = [1, 2, 3, 4, 100, 200, /* row 1 */ 5, 6, 7, 8, 9, 10];   // (B, T, C); padding rows are large
        using var h = be.Allocate<float>(12);
        using var wv = be.Allocate<float>(6);
        using var pooled = be.Allocate<float>(4);
        be.Upload(h.All, hidden);
        be.Upload(wv.All, w);
        MeanPooling.Forward(be, pooled.All, wv.All, h.All, 2, 3, 2);
        var got = new float[4];
        be.Download(pooled.All, got);
        Assert.That(got, Is.EqualTo(new float[] { 2, 3, 5, 6 }), "(1+3)/2, (2+4)/2 | row 1's [CLS] alone");

        // δpooled rows 3 floats apart (head input width C + D = 2 + 1): the D column must not leak into δhidden.
        float[] dPooled = [10, 20, -1, 30, 40, -1];
        using var dp = be.Allocate<float>(6);
        using var dh = be.Allocate<float>(12);
        be.Upload(dp.All, dPooled);
        be.Upload(dh.All, Enumerable.Repeat(float.NaN, 12).ToArray());   // assigned, not accumulated
        MeanPooling.Backward(be, dh.All, wv.All, dp.All, 3, 2, 3, 2);
        var dHidden = new float[12];
        be.Download(dh.All, dHidden);
        Assert.That(dHidden, Is.EqualTo(new float[] { 5, 10, 5, 10, 0, 0, 30, 40, 0, 0, 0, 0 }));
    }

    [Test]
    public void WeightsOfAFullyMaskedRowAreZeroNotNaN()
    {
        var w = new float[4];
        MeanPooling.Weights(new float[] { 0, 0, 1, 1 }, 2, 2, w);
        Assert.That(w, Is.EqualTo(new float[] { 0, 0, 0.5f, 0.5f }));
        var ex = Assert.Throws<ShapeException>(() => MeanPooling.Weights(new float[3], 2, 2, w))!;
        Assert.That(ex.Message, Does.Contain("mask").And.Contain("(B=2, T=2) = 4").And.Contain("got 3"));
    }

    /// <summary>The same pairs padded to T = 7 and to T = 13 give the same logits, loss and gradients with the Mean head
    /// input (padding keys are masked in attention and padding rows have weight 0 in the mean).</summary>
    [Test]
    public void PaddingToALongerSequenceChangesNothing()
    {
        using var be = CreateBackend(backendName);
        using var model = new RecModel(be, TinyBert(dropout: 0), TinyHead(dense: 2, input: AdapterInput.Mean, dropout: 0));
        RandomParams(model, 13);
        var shortBatch = Batch(dense: 2, T: 7);
        var longBatch = Repad(shortBatch, 13);
        var z7 = model.Forward(shortBatch);
        var z13 = model.Forward(longBatch);
        Assert.That(z13, Is.EqualTo(z7).Within(1e-5f));
        Assert.That(z7.Distinct().Count(), Is.EqualTo(3), "three different pairs give three different logits");

        var zCls = new float[3];
        using (var cls = new RecModel(be, TinyBert(dropout: 0), TinyHead(dense: 2, input: AdapterInput.Cls, dropout: 0)))
        {
            be.Upload(cls.Params.All, AllParams(model));
            zCls = cls.Forward(shortBatch);
        }
        Assert.That(zCls, Is.Not.EqualTo(z7).Within(1e-3f), "the mean differs from the [CLS] row (else Mean is not in effect)");

        model.ZeroGrad();
        float l7 = model.ForwardBackward(shortBatch, 1, 1);
        var g7 = AllGrads(model);
        model.ZeroGrad();
        float l13 = model.ForwardBackward(longBatch, 1, 1);
        var g13 = AllGrads(model);
        Assert.That(l13, Is.EqualTo(l7).Within(1e-5f), "loss");
        var pos = model.Layout["embeddings.position_embeddings.weight"];
        Assert.That(g13.AsSpan(pos.Offset + 7 * 32, 6 * 32).ToArray(), Is.All.EqualTo(0f), "padding positions get no gradient");
        Assert.That(Kernels.TestUtil.MaxRelError(g13, g7), Is.LessThan(1e-4), "gradients");
    }

    /// <summary><paramref name="src"/> with every row right-padded (pad id 0, mask 0, type 0) to <paramref name="T"/>.</summary>
    private static RecBatch Repad(RecBatch src, int T)
    {
        int B = src.B, T0 = src.T;
        var ids = new int[B * T]; var types = new int[B * T]; var mask = new float[B * T];
        for (int b = 0; b < B; b++)
        {
            Array.Copy(src.InputIds, b * T0, ids, b * T, T0);
            Array.Copy(src.TokenTypeIds!, b * T0, types, b * T, T0);
            Array.Copy(src.AttentionMask, b * T0, mask, b * T, T0);
        }
        return new RecBatch
        {
            B = B, T = T, InputIds = ids, TokenTypeIds = types, AttentionMask = mask, Dense = src.Dense, Labels = src.Labels, Weights = src.Weights,
        };
    }
}
