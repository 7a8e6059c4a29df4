// EncoderItemVectors on a tiny random BERT with MiniLM's vocabulary and on the real MiniLM: equal to TextEncoder's sentence
// embedding per item, independent of batching and padding, deterministic, random init, the disk cache and its failure modes.
using FastRec.Engine.Data;
using FastRec.Engine.Model;
using FastRec.Engine.Representations;
using FastRec.Engine.Text;
using FastRec.Engine.Weights;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Model;
using FastRec.Tests.Weights;

namespace FastRec.Tests.Representations;

public class EncoderItemVectorsTests
{
    private string _root = null!;
    private string Tiny => Path.Combine(_root, "tiny");
    private string TinyOther => Path.Combine(_root, "tiny-other");   // same config, other weights

    /// <summary>Nine items: MovieTweetings texts, one without genres, a generic one, an empty one, and one longer than 32 tokens.</summary>
    private static readonly string[] Texts =
    [
        "Aliens (1986) | Action, Sci-Fi",
        "Alien (1979) | Horror, Sci-Fi",
        "",
        "The Lord of the Rings: The Fellowship of the Ring, an extended edition with a rather long subtitle that keeps going on and on (2001) | Action, Adventure, Drama, Fantasy",
        "Up (2009) | Animation",
        "Heat (1995)",
        "a plain item description",
        "Pretty Woman (1990) | Comedy, Romance",
        "x",
    ];

    [OneTimeSetUp]
    public void Setup()
    {
        // Tiny BERTs (2 layers, hidden 32) with MiniLM's real WordPiece vocabulary; generic parameters (LayerNorm gamma != 1,
        // biases != 0), so random init is told apart from them.
        _root = Directory.CreateTempSubdirectory("fastrec-items-").FullName;
        MiniLm.WriteTinyBert(Tiny, m => ModelTestUtil.RandomParams(m, 17));
        MiniLm.WriteTinyBert(TinyOther, m => ModelTestUtil.RandomParams(m, 18));
    }

    [OneTimeTearDown] public void TearDown() { try { Directory.Delete(_root, true); } catch (IOException) { } }

    private static ItemCatalog Catalog(IEnumerable<string> texts)
    {
        var c = new ItemCatalog();
        int i = 0;
        foreach (var t in texts) c.Add($"i{i++}", t);
        return c;
    }

    private static float MaxDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.That(a.Length, Is.EqualTo(b.Length));
        float worst = 0;
        for (int i = 0; i < a.Length; i++) worst = Math.Max(worst, Math.Abs(a[i] - b[i]));
        return worst;
    }

    private static double Cos(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double d = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
        return d / Math.Sqrt(na * nb);
    }

    /// <summary>Each row equals TextEncoder's sentence embedding of the formatted text on the same backend (the CPU path is
    /// the Predictor's forward, any other backend RecModel.Encode); the empty text gives a zero row.</summary>
    [TestCase("reference")]
    [TestCase("cpu")]
    public void RowsEqualTextEncoderSentenceEmbeddings(string backendName)
    {
        using var backend = ModelTestUtil.CreateBackend(backendName);
        var v = EncoderItemVectors.Compute(Tiny, backend, Catalog(Texts), new EncoderItemVectorOptions { BatchSize = 3 });
        Assert.That((v.Count, v.Dim), Is.EqualTo((Texts.Length, 32)));
        using var enc = new TextEncoder(Tiny, backend, maxLength: 32);
        bool sawTruncated = false;
        for (int i = 0; i < Texts.Length; i++)
        {
            if (Texts[i].Length == 0) { Assert.That(v.Row(i).ToArray(), Is.All.EqualTo(0f), "empty text: zero row"); continue; }
            var e = enc.Encode(ItemText.Format(Texts[i]));
            sawTruncated |= e.Truncated;
            Assert.That(MaxDiff(v.Row(i), e.SentenceEmbedding), Is.LessThan(1e-5f), $"item {i}: {Texts[i]}");
        }
        Assert.That(sawTruncated, Is.True, "the long text is cut to 32 tokens on both sides");
        Assert.That(v.Name, Is.EqualTo("tiny mean-pooled, max 32 tokens"));
    }

    [Test]
    public void BatchingPaddingAndOrderDoNotChangeTheVectors()
    {
        using var backend = new CpuSimdBackend();
        var one = EncoderItemVectors.Compute(Tiny, backend, Catalog(Texts), new EncoderItemVectorOptions { BatchSize = 1 });   // no padding
        var all = EncoderItemVectors.Compute(Tiny, backend, Catalog(Texts), new EncoderItemVectorOptions { BatchSize = 64 });  // one padded batch
        var again = EncoderItemVectors.Compute(Tiny, backend, Catalog(Texts), new EncoderItemVectorOptions { BatchSize = 64 });
        var reversed = EncoderItemVectors.Compute(Tiny, backend, Catalog(Texts.Reverse()), new EncoderItemVectorOptions { BatchSize = 2 });
        Assert.That(again.Values, Is.EqualTo(all.Values), "deterministic: bit-identical");
        for (int i = 0; i < Texts.Length; i++)
        {
            Assert.That(MaxDiff(all.Row(i), one.Row(i)), Is.LessThan(1e-6f), $"item {i}: padded vs alone");
            Assert.That(MaxDiff(reversed.Row(Texts.Length - 1 - i), one.Row(i)), Is.LessThan(1e-6f), $"item {i}: other batch neighbours");
        }
    }

    [Test]
    public void RandomInitHasHfInitStatisticsAndDiffersFromTheCheckpoint()
    {
        using var backend = new CpuSimdBackend();
        var rnd = new EncoderItemVectorOptions { RandomInit = true, Seed = 3 };
        using (var m = EncoderItemVectors.LoadModel(Tiny, backend, rnd))
        {
            var word = m.GetParameter("embeddings.word_embeddings.weight");   // (V, C)
            int C = m.Bert.HiddenSize;
            var rest = word.AsSpan(C).ToArray();                               // all but the [PAD] row (id 0)
            double mean = rest.Average(x => (double)x), std = Math.Sqrt(rest.Average(x => (x - mean) * (x - mean)));
            Assert.That(std, Is.EqualTo(0.02).Within(2e-4), "normal(0, 0.02) over ~1M values");
            Assert.That(Math.Abs(mean), Is.LessThan(1e-4));
            Assert.That(word.AsSpan(0, C).ToArray(), Is.All.EqualTo(0f), "the pad row is zero");
            Assert.That(m.GetParameter("encoder.layer.1.output.LayerNorm.weight"), Is.All.EqualTo(1f));
            Assert.That(m.GetParameter("encoder.layer.1.output.LayerNorm.bias"), Is.All.EqualTo(0f));
            Assert.That(m.GetParameter("encoder.layer.0.attention.self.query.bias"), Is.All.EqualTo(0f));
        }
        using (var m = EncoderItemVectors.LoadModel(Tiny, backend))
            Assert.That(m.GetParameter("encoder.layer.1.output.LayerNorm.weight"), Has.Some.Not.EqualTo(1f), "the checkpoint's own weights");

        var pre = EncoderItemVectors.Compute(Tiny, backend, Catalog(Texts));
        var a = EncoderItemVectors.Compute(Tiny, backend, Catalog(Texts), rnd);
        var b = EncoderItemVectors.Compute(Tiny, backend, Catalog(Texts), rnd);
        var c = EncoderItemVectors.Compute(Tiny, backend, Catalog(Texts), rnd with { Seed = 4 });
        Assert.That(b.Values, Is.EqualTo(a.Values), "a pure function of the seed");
        Assert.That(a.Name, Is.EqualTo("random-init tiny (seed 3) mean-pooled, max 32 tokens"));
        for (int i = 0; i < Texts.Length; i++)
        {
            if (Texts[i].Length == 0) { Assert.That(a.Row(i).ToArray(), Is.All.EqualTo(0f)); continue; }
            Assert.That(MaxDiff(a.Row(i), pre.Row(i)), Is.GreaterThan(0.05f), $"item {i}: random init vs checkpoint");
            Assert.That(MaxDiff(a.Row(i), c.Row(i)), Is.GreaterThan(0.05f), $"item {i}: seed 3 vs seed 4");
        }
        using var enc = EncoderItemVectors.LoadModel(Tiny, backend, rnd);
        var tok = new BertTextTokenizer(Path.Combine(Tiny, "vocab.txt"), true, 32);
        var t = tok.Encode(ItemText.Format(Texts[0]));
        var o = enc.Encode(new RecBatch { B = 1, T = t.Length, InputIds = t.InputIds, TokenTypeIds = t.TokenTypeIds, AttentionMask = Enumerable.Repeat(1f, t.Length).ToArray() });
        Assert.That(MaxDiff(a.Row(0), SentenceEmbedding.MeanPooled(o.LastHiddenState, Enumerable.Repeat(1f, t.Length).ToArray(), 1, t.Length, 32)), Is.LessThan(1e-5f),
            "the random-init vectors are that model's sentence embeddings");
    }

    [Test]
    public void CacheRoundTripsAndIsKeyedByEverythingTheVectorsDependOn()
    {
        using var backend = new CpuSimdBackend();
        string cache = Path.Combine(_root, "cache-keys");
        var log = new List<string>();
        ItemVectors Run(EncoderItemVectorOptions o, IEnumerable<string>? texts = null, string? dir = null)
        {
            log.Clear();
            return EncoderItemVectors.Compute(dir ?? Tiny, backend, Catalog(texts ?? Texts), o with { CacheDirectory = cache }, log.Add);
        }
        bool Read() => log.Any(l => l.Contains("read from cache"));
        int Files() => Directory.GetFiles(cache).Length;

        var first = Run(new());
        Assert.That(Read(), Is.False);
        Assert.That(log, Has.Some.Contains("wrote cache"));
        Assert.That(Files(), Is.EqualTo(1));
        var second = Run(new() { BatchSize = 5 });
        Assert.That(Read(), Is.True, "batch size does not change the vectors: the same file");
        Assert.That(second.Values, Is.EqualTo(first.Values), "bit-identical round trip");
        Assert.That(second.Name, Is.EqualTo(first.Name));

        var changed = Texts.ToArray();
        changed[4] = "Up (2009) | Animation, Comedy";
        Run(new(), changed);
        Assert.That((Read(), Files()), Is.EqualTo((false, 2)), "one text changed");
        Run(new() { MaxLength = 16 });
        Assert.That((Read(), Files()), Is.EqualTo((false, 3)), "max length changed");
        Run(new() { RandomInit = true, Seed = 1 });
        Assert.That((Read(), Files()), Is.EqualTo((false, 4)), "random init");
        Run(new() { RandomInit = true, Seed = 2 });
        Assert.That((Read(), Files()), Is.EqualTo((false, 5)), "another seed");
        Run(new(), dir: TinyOther);
        Assert.That((Read(), Files()), Is.EqualTo((false, 6)), "other weights, same config");
        Run(new() { RandomInit = true, Seed = 1 }, dir: TinyOther);
        Assert.That((Read(), Files()), Is.EqualTo((true, 6)), "random init does not read the weights: same architecture, vocabulary and seed");
        Assert.That(Directory.GetFiles(cache).All(f => Path.GetFileName(f).StartsWith("item-vectors-", StringComparison.Ordinal)), Is.True, "no temp files left");
    }

    [TestCase("truncate", "bytes, expected")]
    [TestCase("flip-payload", "checksum")]
    [TestCase("flip-trailer", "checksum")]
    [TestCase("magic", "bad magic")]
    [TestCase("empty", "truncated")]
    [TestCase("other-key", "other inputs")]
    public void CorruptCacheFilesAreDetectedReportedAndRecomputed(string damage, string expectedProblem)
    {
        using var backend = new CpuSimdBackend();
        string cache = Path.Combine(_root, "cache-" + damage);
        var o = new EncoderItemVectorOptions { CacheDirectory = cache };
        var good = EncoderItemVectors.Compute(Tiny, backend, Catalog(Texts), o);
        string file = Directory.GetFiles(cache).Single();
        var bytes = File.ReadAllBytes(file);
        switch (damage)
        {
            case "truncate": File.WriteAllBytes(file, bytes[..(bytes.Length / 2)]); break;
            case "flip-payload": bytes[bytes.Length - 32 - 100] ^= 0x40; File.WriteAllBytes(file, bytes); break;
            case "flip-trailer": bytes[^1] ^= 1; File.WriteAllBytes(file, bytes); break;
            case "magic": bytes[0] = (byte)'X'; File.WriteAllBytes(file, bytes); break;
            case "empty": File.WriteAllBytes(file, []); break;
            case "other-key":
                // A valid file of other inputs (another text) put under this file's name.
                string other = Path.Combine(_root, "cache-other-" + Guid.NewGuid().ToString("N"));
                EncoderItemVectors.Compute(Tiny, backend, Catalog(Texts.Append("extra")), o with { CacheDirectory = other });
                File.Copy(Directory.GetFiles(other).Single(), file, overwrite: true);
                break;
        }
        var log = new List<string>();
        var v = EncoderItemVectors.Compute(Tiny, backend, Catalog(Texts), o, log.Add);
        Assert.That(log, Has.Some.Contains(Path.GetFileName(file)).And.Contains(expectedProblem).And.Contains("recomputing"));
        Assert.That(v.Values, Is.EqualTo(good.Values), "recomputed, not read");
        log.Clear();
        EncoderItemVectors.Compute(Tiny, backend, Catalog(Texts), o, log.Add);
        Assert.That(log, Has.Some.Contains("read from cache"), "the rewritten file is valid again");
    }

    [Test]
    public void BadOptionsAreRefusedByName()
    {
        using var backend = new CpuSimdBackend();
        var c = Catalog(Texts);
        Assert.That(() => EncoderItemVectors.Compute(Tiny, backend, c, new() { MaxLength = 2 }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("MaxLength").And.Message.Contains("got 2"));
        Assert.That(() => EncoderItemVectors.Compute(Tiny, backend, c, new() { MaxLength = 65 }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("max_position_embeddings = 64").And.Message.Contains("got 65"));
        Assert.That(() => EncoderItemVectors.Compute(Tiny, backend, c, new() { BatchSize = 0 }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("BatchSize"));
        Assert.That(() => EncoderItemVectors.Compute(Tiny, backend, c, new() { CacheDirectory = "" }),
            Throws.ArgumentException.With.Message.Contains("CacheDirectory"));
        string missing = Path.Combine(_root, "no-such-model");
        Assert.That(() => EncoderItemVectors.Compute(missing, backend, c),
            Throws.TypeOf<DirectoryNotFoundException>().With.Message.Contains(missing));
        var none = EncoderItemVectors.Compute(Tiny, backend, Catalog([]));
        Assert.That((none.Count, none.Dim), Is.EqualTo((0, 32)), "an empty catalogue");
    }

    // ------------------------------------------------------------------ the real all-MiniLM-L6-v2

    [Test]
    public void MiniLmVectorsEqualTextEncoderOnRealTitles()
    {
        var all = MovieTweetings.LoadItems(Path.Combine(MovieTweetings.FindVendoredDirectory(), "movies.dat"));
        var texts = new[] { 0, 1, 2, 500, 5000, 10_505 }.Select(all.Text).ToArray();
        using var backend = new CpuSimdBackend();
        var v = EncoderItemVectors.Compute(MiniLm.Dir, backend, Catalog(texts), new EncoderItemVectorOptions { BatchSize = 4 });
        Assert.That(v.Dim, Is.EqualTo(384));
        using var enc = new TextEncoder(MiniLm.Dir, backend, maxLength: 32);
        for (int i = 0; i < texts.Length; i++)
            Assert.That(MaxDiff(v.Row(i), enc.Encode(ItemText.Format(texts[i])).SentenceEmbedding), Is.LessThan(1e-5f), $"{texts[i]}");
    }

    [Test]
    public void MiniLmPutsAliensNearerAlienThanPrettyWoman()
    {
        using var backend = new CpuSimdBackend();
        var v = EncoderItemVectors.Compute(MiniLm.Dir, backend,
            Catalog(["Aliens (1986) | Action, Sci-Fi", "Alien (1979) | Horror, Sci-Fi", "Pretty Woman (1990) | Comedy, Romance"]));
        double near = Cos(v.Row(0), v.Row(1)), far = Cos(v.Row(0), v.Row(2));
        Assert.That(near, Is.GreaterThan(far + 0.2), $"cos(Aliens, Alien) = {near:F3}, cos(Aliens, Pretty Woman) = {far:F3}");
        for (int i = 0; i < 3; i++)
        {
            double n = 0;
            foreach (float x in v.Row(i)) n += x * x;
            Assert.That(n, Is.EqualTo(1.0).Within(1e-5), $"row {i} has unit norm");
        }
    }
}
