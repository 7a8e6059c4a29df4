// BERT tokenization with the MiniLM vocab (CRLF as shipped): ids, pairs, longest-first truncation, padding, limits.
using System.Text;
using FastRec.Engine.Text;
using FastRec.Engine.Weights;

namespace FastRec.Tests.Text;

public class BertTextTokenizerTests
{
    private static string s_vocabPath = "";
    private static string[] s_vocab = [];

    [OneTimeSetUp]
    public void WriteVocab()
    {
        var bytes = MiniLmPackage.ReadVocab();
        s_vocabPath = Path.Combine(Path.GetTempPath(), $"fastrec-vocab-{Environment.ProcessId}.txt");
        File.WriteAllBytes(s_vocabPath, bytes);   // as shipped: CRLF line endings
        s_vocab = Encoding.UTF8.GetString(bytes).Split("\r\n");
    }

    [OneTimeTearDown]
    public void RemoveVocab() => File.Delete(s_vocabPath);

    private static int Id(string token) => Array.IndexOf(s_vocab, token);

    private static BertTextTokenizer Tok(int maxLength = 128) => new(s_vocabPath, lowerCase: true, maxLength, maxPositions: 512);

    [Test]
    public void IdsAreTheVocabLineNumbers()
    {
        var t = Tok();
        Assert.That((t.ClsId, t.SepId, t.PadId), Is.EqualTo((Id("[CLS]"), Id("[SEP]"), Id("[PAD]"))));
        Assert.That((t.ClsId, t.SepId, t.PadId), Is.EqualTo((101, 102, 0)));
        var e = t.Encode("Hello, World!");
        Assert.That(e.InputIds, Is.EqualTo(new[] { 101, Id("hello"), Id(","), Id("world"), Id("!"), 102 }));
        Assert.That(e.TokenTypeIds, Is.All.EqualTo(0));
        Assert.That(e.Truncated, Is.False);
    }

    [Test]
    public void WordPieceSplitsLowerCasesAndStripsAccents()
    {
        var t = Tok();
        // Greedy longest-match-first WordPiece: "una" is in the vocab, "##ffa" then "##ble" (not un/##aff/##able).
        Assert.That(t.Encode("unaffable").InputIds, Is.EqualTo(new[] { 101, Id("una"), Id("##ffa"), Id("##ble"), 102 }));
        Assert.That(t.Encode("CAFÉ").InputIds, Is.EqualTo(t.Encode("cafe").InputIds), "uncased: lower-case and strip accents like HF");
    }

    [Test]
    public void PairsGetTokenTypesZeroThenOne()
    {
        var e = Tok().Encode("a movie", "great film");
        Assert.That(e.InputIds, Is.EqualTo(new[] { 101, Id("a"), Id("movie"), 102, Id("great"), Id("film"), 102 }));
        Assert.That(e.TokenTypeIds, Is.EqualTo(new[] { 0, 0, 0, 0, 1, 1, 1 }));
    }

    [Test]
    public void LongestFirstTruncationMatchesPoppingOneAtATime()
    {
        // a = 6 words, b = 2 words, budget 9 - 3 = 6: drop 2, both from the longer a.
        var e = Tok(9).Encode("one two three four five six", "seven eight");
        Assert.That(e.InputIds, Is.EqualTo(new[] { 101, Id("one"), Id("two"), Id("three"), Id("four"), 102, Id("seven"), Id("eight"), 102 }));
        Assert.That(e.Truncated, Is.True);
        // a = 3, b = 3, budget 7 - 3 = 4: drop 2, alternating from the second on ties: b, then a.
        var f = Tok(7).Encode("one two three", "four five six");
        Assert.That(f.InputIds, Is.EqualTo(new[] { 101, Id("one"), Id("two"), 102, Id("four"), Id("five"), 102 }));
        // single text: keep the first max-2 tokens
        var s = Tok(4).Encode("one two three");
        Assert.That(s.InputIds, Is.EqualTo(new[] { 101, Id("one"), Id("two"), 102 }));
    }

    [Test]
    public void BatchIsPaddedWithMaskAndTypes()
    {
        var (T, truncated) = Tok().EncodeBatch(["hello world", "hi"], ["x", "a b c"], out var ids, out var types, out var mask);
        Assert.That(T, Is.EqualTo(7));   // the longest row: [CLS] hi [SEP] a b c [SEP]
        Assert.That(truncated, Is.EqualTo(0));
        var row0 = Tok().Encode("hello world", "x");
        var row1 = Tok().Encode("hi", "a b c");
        int want = Math.Max(row0.Length, row1.Length);
        Assert.That(T, Is.EqualTo(want));
        Assert.That(ids.AsSpan(0, row0.Length).ToArray(), Is.EqualTo(row0.InputIds));
        Assert.That(ids.AsSpan(T, row1.Length).ToArray(), Is.EqualTo(row1.InputIds));
        Assert.That(ids.AsSpan(row0.Length, T - row0.Length).ToArray(), Is.All.EqualTo(0), "padded with [PAD]");
        Assert.That(types.AsSpan(T, row1.Length).ToArray(), Is.EqualTo(row1.TokenTypeIds));
        Assert.That(mask.AsSpan(0, T).ToArray().Sum(), Is.EqualTo(row0.Length));
        Assert.That(mask.AsSpan(T, T).ToArray().Sum(), Is.EqualTo(row1.Length));
    }

    [Test]
    public void EncodeRowFillsAReusedBatchRowInPlace()
    {
        var t = Tok();
        int T = 6;
        var ids = Enumerable.Repeat(-1, 2 * T).ToArray();
        var types = Enumerable.Repeat(-1, 2 * T).ToArray();
        var mask = Enumerable.Repeat(-1f, 2 * T).ToArray();
        int n = t.EncodeRow("one two", "three", ids.AsSpan(T, T), types.AsSpan(T, T), mask.AsSpan(T, T), out bool truncated);
        Assert.That(n, Is.EqualTo(6));
        Assert.That(truncated, Is.False);
        Assert.That(ids.AsSpan(T, T).ToArray(), Is.EqualTo(t.Encode("one two", "three").InputIds));
        Assert.That(ids.AsSpan(0, T).ToArray(), Is.All.EqualTo(-1), "the other row is untouched");
        n = t.EncodeRow("one two three four five", null, ids.AsSpan(T, T), types.AsSpan(T, T), mask.AsSpan(T, T), out truncated);
        Assert.That((n, truncated), Is.EqualTo((6, true)), "truncated to the row length");
        n = t.EncodeRow("hi", null, ids.AsSpan(T, T), types.AsSpan(T, T), mask.AsSpan(T, T), out truncated);
        Assert.That(ids.AsSpan(T, T).ToArray(), Is.EqualTo(new[] { 101, Id("hi"), 102, 0, 0, 0 }));
        Assert.That(types.AsSpan(T, T).ToArray(), Is.All.EqualTo(0), "stale token types cleared");
        Assert.That(mask.AsSpan(T, T).ToArray(), Is.EqualTo(new[] { 1f, 1f, 1f, 0f, 0f, 0f }));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => t.EncodeRow("a", "b", ids.AsSpan(0, 2), types.AsSpan(0, 2), mask.AsSpan(0, 2), out _))!;
        Assert.That(e.Message, Does.Contain("max length 2 too small"));
    }

    [Test]
    public void MaxLengthBeyondPositionsIsRefused()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new BertTextTokenizer(s_vocabPath, true, 600, maxPositions: 512))!;
        Assert.That(e.Message, Does.Contain("600").And.Contain("max_position_embeddings 512"));
    }

    [Test]
    public void LongTextIsTruncatedAndReported()
    {
        string text = string.Join(' ', Enumerable.Repeat("word", 600));
        var (T, truncated) = Tok(128).EncodeBatch([text, "short"], null, out var ids, out _, out _);
        Assert.That(T, Is.EqualTo(128));
        Assert.That(truncated, Is.EqualTo(1));
        Assert.That(ids[127], Is.EqualTo(102), "ends with [SEP]");
    }
}
