// The real all-MiniLM-L6-v2: our converted weights + RecModel.Encode against ONNX Runtime running the original model.onnx.
using FastRec.Engine.Model;
using FastRec.Engine.Text;
using FastRec.Engine.Weights;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace FastRec.Tests.Weights;

public class OnnxRuntimeParityTests
{
    private const float HiddenTol = 1e-4f, PoolerTol = 1e-4f, PaddingTol = 1e-3f;
    private const double CosineMin = 0.99999;

    // 24 inputs, singles and pairs, from an empty text ([CLS] [SEP]) to one truncated at exactly 128 tokens.
    private static readonly (string A, string? B)[] s_inputs =
    [
        ("", null),
        ("a", null),
        ("Hello, world!", null),
        ("The quick brown fox jumps over the lazy dog.", null),
        ("Crème brûlée at a café in Zürich — naïve résumé.", null),
        ("I loved this movie", "A masterpiece of modern cinema."),
        ("Terrible.", "Would not recommend it to anyone, the plot made no sense at all and the acting was wooden."),
        ("user 42 watched: The Matrix (1999); Inception (2010); Interstellar (2014)", "candidate: Tenet (2020)"),
        ("😀 emoji and symbols #hashtag @mention $100 50% off!!!", null),
        ("北京 is the capital of China; 東京 is the capital of Japan.", null),
        ("unaffable antidisestablishmentarianism supercalifragilisticexpialidocious", null),
        ("What is the capital of France?", "Paris is the capital and most populous city of France."),
        (string.Join(' ', Enumerable.Repeat("recommendation systems learn from implicit feedback", 6)), null),
        ("short", string.Join(' ', Enumerable.Repeat("a long second segment that keeps going", 8))),
        (string.Join(", ", Enumerable.Range(1, 40)), null),
        ("CAPITAL LETTERS ONLY HERE", "mixed Case Words Here"),
        ("tab\tseparated\tvalues and\nnew lines", null),
        ("Don't stop believin'. It's 3:45pm on 2024-09-22.", null),
        ("The", "the"),
        ("A film about a man who loses his memory and uses tattoos and notes to hunt for his wife's killer.", "Memento (2000), directed by Christopher Nolan"),
        (string.Join(' ', Enumerable.Repeat("word", 30)), string.Join(' ', Enumerable.Repeat("other", 30))),
        ("?", "!"),
        (string.Join(' ', Enumerable.Range(0, 300).Select(i => $"token{i % 17}")), null),   // truncated to 128
        (string.Join(' ', Enumerable.Repeat("left side text", 50)), string.Join(' ', Enumerable.Repeat("right", 70))),  // pair truncated to 128
    ];

    private InferenceSession _ort = null!;
    private IBackend _backend = null!;
    private RecModel _model = null!;
    private BertTextTokenizer _tok = null!;
    private TokenizedText[] _rows = [];

    [OneTimeSetUp]
    public void Load()
    {
        _ort = new InferenceSession(MiniLm.Onnx, new SessionOptions { IntraOpNumThreads = 2, InterOpNumThreads = 1 });
        _backend = new CpuSimdBackend();
        _model = BertCheckpoint.Load(MiniLm.Dir, _backend);
        _tok = new BertTextTokenizer(MiniLm.Info.VocabPath, MiniLm.Info.LowerCase, 128, MiniLm.Info.Config.MaxPositionEmbeddings);
        _rows = s_inputs.Select(p => _tok.Encode(p.A, p.B)).ToArray();
    }

    [OneTimeTearDown]
    public void Dispose()
    {
        _ort?.Dispose();
        _model?.Dispose();
        _backend?.Dispose();
    }

    [Test]
    public void InputsCoverOneTo128Tokens()
    {
        Assert.That(_rows, Has.Length.GreaterThanOrEqualTo(20));
        Assert.That(_rows.Min(r => r.Length), Is.EqualTo(2), "the empty text: [CLS] [SEP]");
        Assert.That(_rows.Max(r => r.Length), Is.EqualTo(128));
        Assert.That(_rows.Count(r => r.TokenTypeIds.Contains(1)), Is.GreaterThanOrEqualTo(8), "pairs");
        Assert.That(_rows.Count(r => r.Truncated), Is.EqualTo(2));
    }

    private (float[] Hidden, float[] Pooler) RunOrt(int B, int T, int[] ids, int[] types, float[] mask)
    {
        var dims = new[] { B, T };
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids.Select(i => (long)i).ToArray(), dims)),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(mask.Select(m => (long)m).ToArray(), dims)),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(types.Select(i => (long)i).ToArray(), dims)),
        };
        using var results = _ort.Run(inputs);
        var hidden = results.First(r => r.Name == "last_hidden_state").AsTensor<float>().ToArray();
        var pooler = results.First(r => r.Name != "last_hidden_state").AsTensor<float>().ToArray();
        return (hidden, pooler);
    }

    private EncoderOutput RunOurs(int B, int T, int[] ids, int[] types, float[] mask) =>
        _model.Encode(new RecBatch { B = B, T = T, InputIds = ids, TokenTypeIds = types, AttentionMask = mask });

    private static double MaxAbsDiff(float[] a, float[] b)
    {
        Assert.That(a, Has.Length.EqualTo(b.Length));
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs((double)a[i] - b[i]));
        return double.IsNaN(m) || a.Any(float.IsNaN) ? double.NaN : m;
    }

    private static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double d = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { d += (double)a[i] * b[i]; na += (double)a[i] * a[i]; nb += (double)b[i] * b[i]; }
        return d / Math.Sqrt(na * nb);
    }

    private static void Compare(string what, int B, int T, float[] mask, EncoderOutput ours, (float[] Hidden, float[] Pooler) ort)
    {
        int C = ours.C;
        Assert.That(ours.LastHiddenState, Has.Length.EqualTo(ort.Hidden.Length));
        // Real tokens carry the 1e-4 bound. Padding positions are computed too (both sides attend from them to the real
        // tokens) but nothing reads them, and their LayerNorms amplify float32 rounding (about 2e-4 seen on B=24, T=128):
        // they get a looser bound that still catches a wrong computation.
        double dh = 0, dPad = 0;
        for (int i = 0; i < ours.LastHiddenState.Length; i++)
        {
            double d = Math.Abs((double)ours.LastHiddenState[i] - ort.Hidden[i]);
            if (double.IsNaN(d)) d = double.PositiveInfinity;
            if (mask[i / C] != 0) dh = Math.Max(dh, d); else dPad = Math.Max(dPad, d);
        }
        double dp = MaxAbsDiff(ours.PoolerOutput!, ort.Pooler);
        var eo = SentenceEmbedding.MeanPooled(ours.LastHiddenState, mask, B, T, C);
        var er = SentenceEmbedding.MeanPooled(ort.Hidden, mask, B, T, C);
        double minCos = Enumerable.Range(0, B).Min(b => Cosine(eo.AsSpan(b * C, C), er.AsSpan(b * C, C)));
        TestContext.Out.WriteLine($"{what}: last_hidden_state max|diff| {dh:E2} (padding positions {dPad:E2}), pooler {dp:E2}, min sentence cosine {minCos:F9}");
        Assert.That(dh, Is.LessThanOrEqualTo(HiddenTol), $"{what}: last_hidden_state at real tokens");
        Assert.That(dPad, Is.LessThanOrEqualTo(PaddingTol), $"{what}: last_hidden_state at padding positions");
        Assert.That(dp, Is.LessThanOrEqualTo(PoolerTol), $"{what}: pooler_output");
        Assert.That(minCos, Is.GreaterThanOrEqualTo(CosineMin), $"{what}: sentence embedding cosine");
    }

    [Test]
    public void EachInputAloneMatchesOnnxRuntime()
    {
        for (int i = 0; i < _rows.Length; i++)
        {
            var r = _rows[i];
            var mask = Enumerable.Repeat(1f, r.Length).ToArray();
            var ours = RunOurs(1, r.Length, r.InputIds, r.TokenTypeIds, mask);
            var ort = RunOrt(1, r.Length, r.InputIds, r.TokenTypeIds, mask);
            Compare($"input {i} (T={r.Length})", 1, r.Length, mask, ours, ort);
        }
    }

    [Test]
    public void OnePaddedBatchMatchesOnnxRuntime()
    {
        // Singles and pairs mixed in one batch, padded to the longest row (128).
        var (T, truncated) = _tok.EncodeBatch(s_inputs.Select(p => p.A).ToArray(), s_inputs.Select(p => p.B).ToArray(),
                                              out var ids, out var types, out var mask);
        int B = _rows.Length;
        Assert.That((T, truncated), Is.EqualTo((128, 2)));
        for (int b = 0; b < B; b++)
        {
            Assert.That(ids.AsSpan(b * T, _rows[b].Length).ToArray(), Is.EqualTo(_rows[b].InputIds), $"row {b}: batch ids = single ids");
            Assert.That(types.AsSpan(b * T, _rows[b].Length).ToArray(), Is.EqualTo(_rows[b].TokenTypeIds), $"row {b}: token types");
        }
        var ours = RunOurs(B, T, ids, types, mask);
        var ort = RunOrt(B, T, ids, types, mask);
        Compare($"padded batch (B={B}, T={T})", B, T, mask, ours, ort);
    }
}
