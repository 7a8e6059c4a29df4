// Predictor.SentenceEmbeddings: equal to RecModel.Encode + mean pooling of [CLS] text [SEP], truncation, bad inputs.
using FastRec.Engine.Model;
using FastRec.Engine.Serving;
using FastRec.Engine.Text;
using FastRec.Kernels;

namespace FastRec.Tests.Serving;

public class PredictorEmbeddingTests
{
    private const int Cls = 2, Sep = 3, C = 32;

    private static int[] Tokens(int n, ulong seed) => Enumerable.Range(0, n).Select(i => 4 + (int)(Rng.Hash(seed, (ulong)i) % 46)).ToArray();

    /// <summary>The model's own sentence embedding of [CLS] t[..maxLength-2] [SEP], unpadded.</summary>
    private static float[] Expected(RecModel model, int[] t, int maxLength)
    {
        int[] ids = [Cls, .. t[..Math.Min(t.Length, maxLength - 2)], Sep];
        var mask = Enumerable.Repeat(1f, ids.Length).ToArray();
        var o = model.Encode(new RecBatch { B = 1, T = ids.Length, InputIds = ids, TokenTypeIds = new int[ids.Length], AttentionMask = mask });
        return SentenceEmbedding.MeanPooled(o.LastHiddenState, mask, 1, ids.Length, C);
    }

    [Test]
    public void EmbeddingsEqualTheModelsMeanPooledLastHiddenState()
    {
        using var model = PredictorTests.TinyModel(dense: 0, input: AdapterInput.Cls, hidden: []);
        using var pred = new Predictor(model, new PredictorOptions { MaxLength = 10, MaxBatch = 3, ClsId = Cls, SepId = Sep });
        // Five texts in two batches of mixed lengths (padding); one longer than MaxLength - 2 = 8 (cut); one empty ([CLS] [SEP]).
        int[][] texts = [Tokens(3, 1), Tokens(12, 2), Tokens(1, 3), Tokens(0, 4), Tokens(8, 5)];
        var offsets = new int[texts.Length + 1];
        for (int i = 0; i < texts.Length; i++) offsets[i + 1] = offsets[i] + texts[i].Length;
        var emb = new float[texts.Length * C];
        pred.SentenceEmbeddings(texts.SelectMany(t => t).ToArray(), offsets, emb);
        for (int i = 0; i < texts.Length; i++)
            Assert.That(emb.AsSpan(i * C, C).ToArray(), Is.EqualTo(Expected(model, texts[i], 10)).Within(2e-6), $"text {i} ({texts[i].Length} tokens)");
        Assert.That(pred.Score([4, 5], [6]), Is.InRange(0f, 1f), "scoring still works after an all-tokens pass");
    }

    [Test]
    public void BadInputsNameTheProblem()
    {
        using var model = PredictorTests.TinyModel(dense: 0);
        using var pred = new Predictor(model, new PredictorOptions { MaxLength = 10, ClsId = Cls, SepId = Sep });
        Assert.That(() => pred.SentenceEmbeddings([4, 5, 6], [0, 2, 1, 3], new float[3 * C]),
            Throws.ArgumentException.With.Message.Contains("offsets").And.Message.Contains("must not decrease"));
        Assert.That(() => pred.SentenceEmbeddings([4, 5, 6], [1, 3], new float[C]),
            Throws.ArgumentException.With.Message.Contains("offsets").And.Message.Contains("texts.Length = 3"));
        Assert.That(() => pred.SentenceEmbeddings([4, 50], [0, 2], new float[C]),
            Throws.ArgumentException.With.Message.Contains("texts[1] = 50"));
        Assert.That(() => pred.SentenceEmbeddings([4, 5], [0, 2], new float[C - 1]),
            Throws.ArgumentException.With.Message.Contains("embeddings").And.Message.Contains($"got {C - 1}"));
        pred.SentenceEmbeddings([], [0], []);   // no texts: nothing to do
        pred.Dispose();
        Assert.That(() => pred.SentenceEmbeddings([4], [0, 1], new float[C]), Throws.TypeOf<ObjectDisposedException>());
    }
}
