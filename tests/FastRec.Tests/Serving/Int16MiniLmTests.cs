// The int16 serving path on the real all-MiniLM-L6-v2: how far its logits move from the fp32 Predictor's on real text pairs.
using FastRec.Engine.Model;
using FastRec.Engine.Serving;
using FastRec.Engine.Text;
using FastRec.Engine.Weights;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Weights;

namespace FastRec.Tests.Serving;

public class Int16MiniLmTests
{
    private static readonly (string Context, string Candidate)[] s_pairs =
    [
        ("The Matrix (1999) | Inception (2010) | Interstellar (2014)", "Tenet (2020) Action|Sci-Fi"),
        ("Toy Story (1995) | Finding Nemo (2003)", "Saw (2004) Horror|Thriller"),
        ("Pride and Prejudice (2005) Drama|Romance", "Notting Hill (1999) Comedy|Romance"),
        ("The Godfather (1972) | Goodfellas (1990) | Casino (1995)", "The Irishman (2019) Biography|Crime|Drama"),
        ("Frozen (2013) Animation", "The Conjuring (2013) Horror|Mystery|Thriller"),
        ("Memento (2000) | The Prestige (2006)", "Shutter Island (2010) Mystery|Thriller"),
        ("Mad Max: Fury Road (2015)", "Paddington 2 (2017) Adventure|Comedy|Family"),
        ("Amélie (2001) Comedy|Romance | Cinema Paradiso (1988)", "La La Land (2016) Comedy|Drama|Music"),
        ("Alien (1979) | Aliens (1986) | Predator (1987) | The Thing (1982) | Terminator 2 (1991)", "Prometheus (2012) Sci-Fi"),
        ("Spirited Away (2001)", "My Neighbor Totoro (1988) Animation|Family|Fantasy"),
        ("Titanic (1997)", "Avatar (2009) Action|Adventure|Fantasy"),
        ("Schindler's List (1993) | The Pianist (2002)", "Dunkirk (2017) Action|Drama|History"),
    ];

    [Test]
    public void LogitsMoveByAboutOnePerMilleOnRealText()
    {
        using var backend = new CpuSimdBackend();
        // a one-logit head on the pooler whose weights are N(0, 1/C)-like: z is a random projection of the pooled text
        var adapter = new AdapterConfig { HiddenSizes = [], DenseFeatures = 0, Input = AdapterInput.Pooler, Dropout = 0f };
        using var model = BertCheckpoint.Load(MiniLm.Dir, backend, adapter, seed: 3);
        var tok = new BertTextTokenizer(MiniLm.Info.VocabPath, MiniLm.Info.LowerCase, 64, MiniLm.Info.Config.MaxPositionEmbeddings);
        var opts = new PredictorOptions { MaxLength = 64, MaxBatch = 4, ClsId = tok.ClsId, SepId = tok.SepId };
        using var f32 = new Predictor(model, opts);
        using var i16 = new Predictor(model, opts with { Precision = ServingPrecision.Int16 });
        Assert.That(i16.PackedBytes, Is.LessThan(f32.PackedBytes * 0.51), "int16 encoder weights: half the bytes (+ column scales)");

        var z32 = new List<double>(); var z16 = new List<double>();
        foreach (var (context, candidate) in s_pairs)
        {
            int[] ctx = [.. tok.Tokenize(context)], cand = [.. tok.Tokenize(candidate)];
            float[] a = new float[1], b = new float[1];
            f32.ScoreLogits(ctx, cand, [0, cand.Length], a);
            i16.ScoreLogits(ctx, cand, [0, cand.Length], b);
            z32.Add(a[0]); z16.Add(b[0]);
        }
        double mean = z32.Average(), spread = Math.Sqrt(z32.Average(z => (z - mean) * (z - mean)));
        double worst = z32.Zip(z16, (a, b) => Math.Abs(a - b)).Max();
        TestContext.Out.WriteLine($"logit spread over the pairs {spread:E3}, max |z_int16 - z_fp32| {worst:E3} ({worst / spread:P3} of the spread)");
        Assert.That(spread, Is.GreaterThan(0), "the pairs score differently (a test that cannot fail is a defect)");
        Assert.That(worst / spread, Is.LessThan(0.01), "int16 moves no logit by more than 1 % of the spread between real pairs");
        Assert.That(worst, Is.GreaterThan(0), "int16 is an approximation: identical logits would mean it did not run");
        // the ranking of the pairs is unchanged
        var r32 = z32.Select((z, i) => (z, i)).OrderBy(t => t.z).Select(t => t.i).ToArray();
        var r16 = z16.Select((z, i) => (z, i)).OrderBy(t => t.z).Select(t => t.i).ToArray();
        Assert.That(r16, Is.EqualTo(r32), "same order of the 12 pairs");
    }
}
