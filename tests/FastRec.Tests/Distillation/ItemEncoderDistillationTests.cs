// Sentence-embedding distillation of an item encoder: the loss gradient against finite differences, a student as deep as
// the teacher starts at distance 0, training brings a shallower student closer (embeddings frozen, deterministic), bad input.
using FastRec.Engine.Distillation;
using FastRec.Engine.Model;
using FastRec.Engine.Representations;
using FastRec.Engine.Text;
using FastRec.Engine.Weights;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Model;
using FastRec.Tests.Weights;

namespace FastRec.Tests.Distillation;

public class ItemEncoderDistillationTests
{
    private string _root = null!;
    private string Teacher => Path.Combine(_root, "teacher");

    private static readonly string[] Raw =
    [
        "Aliens (1986) | Action, Sci-Fi", "Alien (1979) | Horror, Sci-Fi", "Up (2009) | Animation", "Heat (1995) | Crime, Drama",
        "Pretty Woman (1990) | Comedy, Romance", "The Matrix (1999) | Action, Sci-Fi", "Toy Story (1995) | Animation, Comedy",
        "Titanic (1997) | Drama, Romance", "Se7en (1995) | Crime, Thriller", "Jaws (1975) | Adventure, Thriller",
        "Amelie (2001) | Comedy, Romance", "Gravity (2013) | Drama, Sci-Fi", "Frozen (2013) | Animation, Musical",
        "Inception (2010) | Action, Thriller", "Casablanca (1942) | Drama, Romance", "Psycho (1960) | Horror, Mystery",
    ];

    [OneTimeSetUp]
    public void Setup()
    {
        _root = Directory.CreateTempSubdirectory("fastrec-itemdistil-").FullName;
        MiniLm.WriteTinyBert(Teacher, m => ModelTestUtil.RandomParams(m, 23));
    }

    [OneTimeTearDown] public void TearDown() { try { Directory.Delete(_root, true); } catch (IOException) { } }

    private (RecModel Teacher, BertTextTokenizer Tok, string[] Texts, float[] Targets) Setup(IBackend b, string[]? raw = null)
    {
        raw ??= Raw;
        var info = BertCheckpoint.Open(Teacher);
        var tok = new BertTextTokenizer(info.VocabPath, info.LowerCase, 32, info.Config.MaxPositionEmbeddings);
        var targets = EncoderItemVectors.ComputeTexts(Teacher, b, raw.Where(t => t.Length > 0).ToArray()).Values;
        var full = new List<float>();
        int k = 0;
        foreach (var t in raw)
            if (t.Length > 0) full.AddRange(targets.AsSpan(k++ * info.Config.HiddenSize, info.Config.HiddenSize).ToArray());
            else full.AddRange(new float[info.Config.HiddenSize]);
        return (EncoderItemVectors.LoadModel(Teacher, b), tok, raw.Select(ItemText.Format).ToArray(), full.ToArray());
    }

    [Test]
    public void SentenceLossGradientMatchesFiniteDifferences()
    {
        const int B = 3, T = 5, C = 6;
        var hidden = Kernels.TestUtil.Random(B * T * C, 41, -1f, 1f);
        float[] mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0];   // lengths 5, 3, 1
        var targets = Kernels.TestUtil.Random(B * C, 42, -1f, 1f);
        for (int b = 0; b < B; b++)
        {
            var row = targets.AsSpan(b * C, C);
            float n = MathF.Sqrt(row.ToArray().Sum(x => x * x));
            for (int c = 0; c < C; c++) row[c] /= n;
        }
        var grad = new float[B * T * C];
        double loss = ItemEncoderDistillation.SentenceLoss(hidden, mask, B, T, C, targets, grad);
        Assert.That(loss, Is.GreaterThan(0));
        const float h = 1e-2f;
        for (int i = 0; i < hidden.Length; i++)
        {
            float orig = hidden[i];
            hidden[i] = orig + h; double lp = ItemEncoderDistillation.SentenceLoss(hidden, mask, B, T, C, targets, default);
            hidden[i] = orig - h; double lm = ItemEncoderDistillation.SentenceLoss(hidden, mask, B, T, C, targets, default);
            hidden[i] = orig;
            double fd = (lp - lm) / (2 * h) / B;   // the gradient is of the batch mean
            Assert.That(grad[i], Is.EqualTo(fd).Within(2e-4 + 2e-3 * Math.Abs(fd)), $"dHidden[{i}]");
            if (mask[i / C] == 0) Assert.That(grad[i], Is.EqualTo(0f), $"padding position {i / C} gets no gradient");
        }
        // ŝ = t gives a zero loss and gradient
        var same = new float[B * T * C];
        for (int b = 0; b < B; b++) for (int t = 0; t < T; t++) targets.AsSpan(b * C, C).CopyTo(same.AsSpan((b * T + t) * C, C));
        Assert.That(ItemEncoderDistillation.SentenceLoss(same, mask, B, T, C, targets, grad), Is.EqualTo(0).Within(1e-10));
        Assert.That(grad.Max(Math.Abs), Is.LessThan(1e-6f));
        Assert.That(() => ItemEncoderDistillation.SentenceLoss(same, mask, B, T, C + 1, targets, default), Throws.InstanceOf<ShapeException>());
    }

    [Test]
    public void AStudentAsDeepAsTheTeacherIsTheTeacher()
    {
        using var b = new CpuSimdBackend();
        var (teacher, tok, texts, targets) = Setup(b);
        using var _ = teacher;
        var (student, r) = ItemEncoderDistillation.Run(teacher, tok, texts, targets, new ItemEncoderDistillOptions { Student = new StudentConfig { Layers = 2 }, Epochs = 0 });
        using var __ = student;
        Assert.That(r.InitialDistance, Is.LessThan(1e-9), "a copy of every layer reproduces the teacher's vectors (the loss and the pooling agree with EncoderItemVectors)");
        Assert.That(r.FinalDistance, Is.EqualTo(r.InitialDistance));
        Assert.That(r.Texts, Is.EqualTo(Raw.Length));
        Assert.That(r.EpochLoss, Is.Empty);
    }

    [Test]
    public void DistillationBringsAShallowerStudentCloserDeterministicallyWithFrozenEmbeddings()
    {
        using var b = new CpuSimdBackend();
        var (teacher, tok, texts, targets) = Setup(b);
        using var _ = teacher;
        var o = new ItemEncoderDistillOptions { Student = new StudentConfig { Layers = 1 }, Epochs = 25, BatchSize = 4, Lr = 2e-3f, Seed = 7 };
        var (s1, r1) = ItemEncoderDistillation.Run(teacher, tok, texts, targets, o);
        var (s2, r2) = ItemEncoderDistillation.Run(teacher, tok, texts, targets, o);
        using (s1) using (s2)
        {
            Assert.That(r1.FinalDistance, Is.LessThan(0.5 * r1.InitialDistance), $"distance {r1.InitialDistance} -> {r1.FinalDistance}");
            Assert.That(r1.EpochLoss, Has.Count.EqualTo(25));
            Assert.That(r1.EpochLoss[^1], Is.LessThan(r1.EpochLoss[0]));
            Assert.That(s1.GetParameter("encoder.layer.0.attention.self.query.weight"), Is.EqualTo(s2.GetParameter("encoder.layer.0.attention.self.query.weight")), "same seed, same student");
            Assert.That(r2.EpochLoss, Is.EqualTo(r1.EpochLoss));
            Assert.That(s1.GetParameter("embeddings.word_embeddings.weight"), Is.EqualTo(teacher.GetParameter("embeddings.word_embeddings.weight")), "embeddings stay the teacher's");
            Assert.That(s1.GetParameter("encoder.layer.0.output.dense.weight"), Is.Not.EqualTo(teacher.GetParameter("encoder.layer.0.output.dense.weight")), "the layer trained");

            // The saved student re-encodes texts through EncoderItemVectors as its training measured them.
            string dir = Path.Combine(_root, "student");
            var info = BertCheckpoint.Open(Teacher);
            BertCheckpoint.Save(s1, dir, info.VocabPath, info.LowerCase);
            var v = EncoderItemVectors.ComputeTexts(dir, b, Raw).Values;
            double dist = 0;
            for (int i = 0; i < v.Length; i++) dist += (v[i] - targets[i]) * (double)(v[i] - targets[i]);
            Assert.That(dist / Raw.Length, Is.EqualTo(r1.FinalDistance).Within(1e-4));
        }
    }

    [Test]
    public void TextsWithoutTokensAreSkippedAndBadInputIsRefused()
    {
        using var b = new CpuSimdBackend();
        var raw = Raw.Take(6).Append("").ToArray();
        var (teacher, tok, texts, targets) = Setup(b, raw);
        using var _ = teacher;
        var one = new ItemEncoderDistillOptions { Student = new StudentConfig { Layers = 1 }, Epochs = 1, BatchSize = 4 };
        var (s, r) = ItemEncoderDistillation.Run(teacher, tok, texts, targets, one);
        s.Dispose();
        Assert.That(r.Texts, Is.EqualTo(6), "the empty text is skipped");
        Assert.That(() => ItemEncoderDistillation.Run(teacher, tok, texts, targets.AsSpan(1).ToArray(), one),
            Throws.ArgumentException.With.Message.Contains("targets: expected 7 texts"));
        var nan = (float[])targets.Clone(); nan[5] = float.NaN;
        Assert.That(() => ItemEncoderDistillation.Run(teacher, tok, texts, nan, one), Throws.ArgumentException.With.Message.Contains("targets[5]"));
        Assert.That(() => ItemEncoderDistillation.Run(teacher, tok, ["", " "], new float[2 * teacher.Bert.HiddenSize], one),
            Throws.ArgumentException.With.Message.Contains("no text has a token"));
        Assert.That(() => ItemEncoderDistillation.Run(teacher, tok, texts, targets, one with { Epochs = -1 }),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("Epochs"));
        Assert.That(() => ItemEncoderDistillation.Run(teacher, tok, texts, targets, one with { BatchSize = 0 }),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("BatchSize"));
        Assert.That(() => ItemEncoderDistillation.Run(teacher, tok, texts, targets, one with { Lr = float.NaN }),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("Lr"));
        Assert.That(() => ItemEncoderDistillation.Run(teacher, tok, texts, targets, one with { Student = new StudentConfig { Layers = 0 } }),
            Throws.InstanceOf<InvalidDataException>().With.Message.Contains("Layers"));
    }
}
