// Example encoding and batch packing: [CLS] context [SEP] candidate [SEP], longest-first truncation, padding, weights.
using FastRec.Engine.Data;
using FastRec.Engine.Training;

namespace FastRec.Tests.Training;

public class EncoderTests
{
    private TrainFixture _fx = null!;
    private RecDataset _data = null!;

    [OneTimeSetUp] public void Setup() { _fx = new TrainFixture(); _data = _fx.Load(); }
    [OneTimeTearDown] public void TearDown() => _fx.Dispose();

    private ExampleEncoder Encoder(int maxLength) => ExampleEncoder.Create(Path.Combine(_fx.ModelDir, "vocab.txt"), _data.Catalog,
        new TextOptions { MaxLength = maxLength }, 64);

    [Test]
    public void SequencesAreContextThenCandidateWithTokenTypes()
    {
        var enc = Encoder(64);
        var set = _data.Test;
        var e = enc.Encode(set);
        int cls = enc.Tokenizer.ClsId, sep = enc.Tokenizer.SepId;
        int checkedRows = 0;
        for (int i = 0; i < set.Count; i++)
        {
            var row = e.Row(i).ToArray();
            var b = enc.ItemTokens(set.Items[i]);
            Assert.That(row[0], Is.EqualTo(cls));
            Assert.That(row[^1], Is.EqualTo(sep));
            Assert.That(row[e.TypeStart[i] - 1], Is.EqualTo(sep), "segment A ends with [SEP]");
            Assert.That(row[e.TypeStart[i]..^1], Is.EqualTo(b), "segment B is the candidate's tokens");
            var ctx = set.Context(i);
            var expectA = new List<int>();
            for (int j = 0; j < ctx.Length; j++)
            {
                if (j > 0) expectA.AddRange(enc.Tokenizer.Tokenize(";"));
                expectA.AddRange(enc.ItemTokens(ctx[j]));
            }
            Assert.That(row[1..(e.TypeStart[i] - 1)], Is.EqualTo(expectA.ToArray()), "segment A = context items, most recent first");
            if (ctx.Length > 0) checkedRows++;
        }
        Assert.That(checkedRows, Is.GreaterThan(0), "some examples have a context");
        Assert.That(e.Truncated, Is.EqualTo(0));
    }

    [Test]
    public void LongPairsAreTruncatedLongestFirst()
    {
        var enc = Encoder(9);   // budget 6 tokens for A + B
        var set = _data.Test;
        var e = enc.Encode(set);
        Assert.That(e.Truncated, Is.GreaterThan(0));
        for (int i = 0; i < set.Count; i++)
        {
            Assert.That(e.Length(i), Is.LessThanOrEqualTo(9));
            int nb = e.Length(i) - e.TypeStart[i] - 1, na = e.TypeStart[i] - 2;
            int fullB = enc.ItemTokens(set.Items[i]).Length;
            if (e.Length(i) == 9 && fullB >= 3) Assert.That(nb, Is.GreaterThanOrEqualTo(3).And.LessThanOrEqualTo(fullB), "the candidate keeps its share");
            Assert.That(na + nb, Is.LessThanOrEqualTo(6));
        }
    }

    [Test]
    public void BatchesArePaddedAndWeighted()
    {
        var enc = Encoder(64);
        var set = _data.Train;
        var e = enc.Encode(set);
        int[] rows = [0, 1, 2, 3];
        var batch = BatchPacker.Pack(set, e, rows, padId: 0, FeatureScaler.None, positiveWeight: 3f, negativeWeight: 0.5f);
        int T = rows.Max(e.Length);
        Assert.That(batch.T, Is.EqualTo(T));
        for (int b = 0; b < rows.Length; b++)
        {
            int n = e.Length(rows[b]);
            Assert.That(batch.AttentionMask.Skip(b * T).Take(T).Sum(), Is.EqualTo(n));
            Assert.That(batch.InputIds.Skip(b * T + n).Take(T - n), Has.All.EqualTo(0), "padding");
            Assert.That(batch.TokenTypeIds!.Skip(b * T + e.TypeStart[rows[b]]).Take(n - e.TypeStart[rows[b]]), Has.All.EqualTo(1));
            Assert.That(batch.Weights![b], Is.EqualTo(set.Labels[rows[b]] >= 0.5f ? 3f : 0.5f));
        }
    }

    [Test]
    public void BadTextOptionsAreRefused()
    {
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => Encoder(2), "max length", "[3, max_position_embeddings = 64]");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => Encoder(65), "max length", "65");
    }
}
