// TowerScorer.Save/Load: bit-identical scores after a round trip (trained, with new items, synthetic), the catalogue and
// info, a stable byte format, and every bad file refused with InvalidDataException naming the file and the problem.
using System.Buffers.Binary;
using System.Security.Cryptography;
using FastRec.Engine.Representations;
using FastRec.Tests.Serving;

namespace FastRec.Tests.Representations;

public class TowerScorerFileTests
{
    private string _dir = "";
    private TowerScorer _scorer = null!;
    private string[] _ids = [], _texts = [];

    [OneTimeSetUp]
    public void Setup()
    {
        _dir = Directory.CreateTempSubdirectory("fastrec-tower-file-").FullName;
        var (data, _, scorer) = ServingTestUtil.Trained();
        _scorer = scorer;
        _ids = Enumerable.Range(0, data.Catalog.Count).Select(data.Catalog.Id).ToArray();
        _texts = Enumerable.Range(0, data.Catalog.Count).Select(data.Catalog.Text).ToArray();
    }

    [OneTimeTearDown]
    public void TearDown() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private string PathOf(string name) => Path.Combine(_dir, name);

    /// <summary>Asserts every score of several histories (new user, short, longer than N, repeated items) is bit-identical.</summary>
    private static void SameScores(TowerScorer a, TowerScorer b)
    {
        Assert.That(b.ItemCount, Is.EqualTo(a.ItemCount));
        Assert.That((b.Dim, b.EncodingDim, b.HistoryLength), Is.EqualTo((a.Dim, a.EncodingDim, a.HistoryLength)));
        foreach (int n in new[] { 0, 1, 3, 6, 20 })
        {
            var (items, labels) = ServingTestUtil.History(n, a.ItemCount, (ulong)(100 + n));
            var x = ServingTestUtil.Scores(a, items, labels);
            var y = ServingTestUtil.Scores(b, items, labels);
            for (int i = 0; i < x.Length; i++)
                Assert.That(BitConverter.SingleToInt32Bits(y[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(x[i])), $"history {n}, item {i}: {x[i]} vs {y[i]}");
        }
    }

    [Test]
    public void RoundTripGivesBitIdenticalScoresAndTheCatalogue()
    {
        string p = PathOf("trained.frts");
        _scorer.Save(p, _ids, _texts, "{\"note\": \"ünïcode\"}");
        var f = TowerScorer.LoadFile(p);
        SameScores(_scorer, f.Scorer);
        Assert.That(f.ItemIds, Is.EqualTo(_ids));
        Assert.That(f.ItemTexts, Is.EqualTo(_texts));
        Assert.That(f.Info, Is.EqualTo("{\"note\": \"ünïcode\"}"));
        // Saving what was loaded writes the same bytes: every value is stored bit for bit.
        string again = PathOf("again.frts");
        f.Scorer.Save(again, f.ItemIds, f.ItemTexts, f.Info);
        Assert.That(File.ReadAllBytes(again), Is.EqualTo(File.ReadAllBytes(p)));
        Assert.That(Directory.GetFiles(_dir, "*.tmp"), Is.Empty, "the temp file was renamed");
    }

    [Test]
    public void RoundTripWithNewItemsAndWithoutCatalogue()
    {
        var enc = new float[3 * _scorer.EncodingDim];
        for (int i = 0; i < enc.Length; i++) enc[i] = MathF.Sin(i + 1);
        var grown = _scorer.WithItems(enc);
        string p = PathOf("grown.frts");
        grown.Save(p);
        var f = TowerScorer.LoadFile(p);
        Assert.That(f.ItemIds, Is.Null);
        Assert.That(f.ItemTexts, Is.Null);
        Assert.That(f.Info, Is.Empty);
        SameScores(grown, f.Scorer);
        // Items added after loading equal items added before saving.
        SameScores(grown.WithItems(enc), f.Scorer.WithItems(enc));
    }

    [Test]
    public void RoundTripOfASyntheticScorerWithoutTheRatedOutput()
    {
        var s = TowerScorer.Random(300, 16, new TowerModelOptions { Dim = 8, Hidden = 12, HistoryLength = 10, Negatives = 0 }, seed: 5);
        string p = PathOf("synthetic.frts");
        s.Save(p);
        SameScores(s, TowerScorer.Load(p));
    }

    [Test]
    public void SaveReplacesAnExistingFileAndRefusesBadCatalogues()
    {
        string p = PathOf("replace.frts");
        File.WriteAllText(p, "old");
        _scorer.Save(p);
        SameScores(_scorer, TowerScorer.Load(p));
        Assert.That(() => _scorer.Save(p, _ids[1..], _texts[1..]), Throws.ArgumentException.With.Message.Contains($"{_ids.Length - 1} ids for {_ids.Length} items"));
        Assert.That(() => _scorer.Save(p, _ids, null), Throws.ArgumentException.With.Message.Contains("both or neither"));
        var dup = (string[])_ids.Clone();
        dup[4] = dup[2];
        Assert.That(() => _scorer.Save(p, dup, _texts), Throws.ArgumentException.With.Message.Contains($"'{_ids[2]}' appears twice (items 2 and 4)"));
        SameScores(_scorer, TowerScorer.Load(p));   // a refused save leaves the file alone
    }

    // ---- bad files ----

    private byte[] Saved()
    {
        string p = PathOf($"ok-{Guid.NewGuid():N}.frts");
        _scorer.Save(p, _ids, _texts);
        return File.ReadAllBytes(p);
    }

    private void Refused(byte[] bytes, string problem)
    {
        string p = PathOf($"bad-{Guid.NewGuid():N}.frts");
        File.WriteAllBytes(p, bytes);
        Assert.That(() => TowerScorer.Load(p), Throws.InstanceOf<InvalidDataException>().With.Message.Contains(p).And.Message.Contains(problem));
    }

    private static void Rehash(byte[] b) => SHA256.HashData(b.AsSpan(0, b.Length - 32)).CopyTo(b.AsSpan(b.Length - 32));

    /// <summary>Byte offset of the weights W1 (after the header, prior, mean, std, P, p_b and e).</summary>
    private int W1Offset => 4 + 4 + 7 * 4 + 8 + 2 * 8 * TowerModel.DenseCount + 4 * (_scorer.Dim * _scorer.EncodingDim + 3 * _scorer.Dim);

    [Test]
    public void TruncatedFilesAreRefused()
    {
        var b = Saved();
        Refused(b[..20], "shorter than the smallest valid file");
        Refused(b[..200], "truncated");
        Refused(b[..^1], "checksum");   // the catalogue or the hash cut short: the checksum no longer matches
    }

    [Test]
    public void WrongMagicAndVersionAreRefused()
    {
        var b = Saved();
        b[0] = (byte)'X';
        Refused(b, "magic 'XRTS', expected 'FRTS'");
        b = Saved();
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(4), 99);
        Refused(b, "format version 99; this build reads version 1");
    }

    [Test]
    public void ACorruptByteFailsTheChecksum()
    {
        var b = Saved();
        b[b.Length / 2] ^= 0x10;
        Refused(b, "fails its SHA-256 checksum");
    }

    [Test]
    public void NonFiniteValuesAreRefusedEvenWithAValidChecksum()
    {
        var b = Saved();
        BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(W1Offset + 4 * 5), float.NaN);
        Rehash(b);
        Refused(b, "weights W1[5] is NaN");
        b = Saved();
        BinaryPrimitives.WriteDoubleLittleEndian(b.AsSpan(36 + 8 + 8 * TowerModel.DenseCount + 8 * 2), 0);   // std[2]
        Rehash(b);
        Refused(b, "feature std[2] is 0");
    }

    [Test]
    public void BadShapesAreRefusedEvenWithAValidChecksum()
    {
        var b = Saved();
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(8), 5);   // F
        Rehash(b);
        Refused(b, $"holds 5 dense features per item; this build's model computes {TowerModel.DenseCount}");
        b = Saved();
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(8 + 4 * 2), 0);   // d
        Rehash(b);
        Refused(b, "tower width d is 0, outside [1, 1024]");
        b = Saved();
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(8 + 4), _scorer.ItemCount + 1000);   // V
        Rehash(b);
        Refused(b, "truncated");
    }

    [Test]
    public void ABadCatalogueLengthIsRefused()
    {
        var b = Saved();
        int F = TowerModel.DenseCount, H = _scorer.Hidden, O = 2;   // the fixture's model has the "rated" output
        int catalogue = W1Offset + 4 * (H * _scorer.InputWidth + H + O * H + O + O * F + O) + 4 * _scorer.ItemCount * (_scorer.Dim + F - 2);
        Assert.That(BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(catalogue)), Is.EqualTo(_scorer.ItemCount), "offset of the catalogue count");
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(catalogue + 4), int.MaxValue);   // item 0's id length
        Rehash(b);
        Refused(b, "item 0's id");
        b = Saved();
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(catalogue), 3);
        Rehash(b);
        Refused(b, $"holds 3 catalogue entries for {_scorer.ItemCount} items");
    }

    [Test]
    public void AMissingFileIsFileNotFound()
        => Assert.That(() => TowerScorer.Load(PathOf("missing.frts")), Throws.InstanceOf<FileNotFoundException>());
}
