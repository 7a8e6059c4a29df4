// TextEncoder (behind `fastrec encode`) on the real MiniLM, and mean pooling on a hand-computed case.
using FastRec.Engine.Text;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Weights;

namespace FastRec.Tests.Text;

public class TextEncoderTests
{
    [Test]
    public void MeanPoolingSkipsPaddingAndNormalises()
    {
        // B=1, T=3, C=2: tokens (3,0), (1,4), padding (100,100) -> mean (2,2) -> (0.7071, 0.7071)
        var e = SentenceEmbedding.MeanPooled([3, 0, 1, 4, 100, 100], [1, 1, 0], 1, 3, 2);
        Assert.That(e[0], Is.EqualTo(MathF.Sqrt(0.5f)).Within(1e-7f));
        Assert.That(e[1], Is.EqualTo(MathF.Sqrt(0.5f)).Within(1e-7f));
        var ex = Assert.Throws<ArgumentException>(() => SentenceEmbedding.MeanPooled(new float[5], [1, 1, 0], 1, 3, 2))!;
        Assert.That(ex.Message, Does.Contain("hidden").And.Contain("got 5"));
    }

    [Test]
    public void MiniLmSentenceEmbeddingsRankParaphrasesFirst()
    {
        using var backend = new CpuSimdBackend();
        using var enc = new TextEncoder(MiniLm.Dir, backend, maxLength: 64);
        var a = enc.Encode("A man is eating food.");
        var b = enc.Encode("A man is eating a piece of bread.");
        var c = enc.Encode("The girl is carrying a baby.");
        Assert.That(a.InputIds[0], Is.EqualTo(101));
        Assert.That(a.LastHiddenState, Has.Length.EqualTo(a.SeqLen * 384));
        Assert.That(a.PoolerOutput, Has.Length.EqualTo(384));
        static double Dot(float[] x, float[] y) => x.Zip(y, (p, q) => (double)p * q).Sum();
        Assert.That(Dot(a.SentenceEmbedding, a.SentenceEmbedding), Is.EqualTo(1.0).Within(1e-5), "unit norm");
        Assert.That(Dot(a.SentenceEmbedding, b.SentenceEmbedding), Is.GreaterThan(Dot(a.SentenceEmbedding, c.SentenceEmbedding) + 0.3),
            "the paraphrase is much closer than the unrelated sentence");
    }
}
