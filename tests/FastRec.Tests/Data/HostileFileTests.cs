// Files a hostile user might hand in: a 17 MiB line, an unterminated quote, invalid UTF-8, items with no text.
using System.Text;
using FastRec.Engine.Data;

namespace FastRec.Tests.Data;

public class HostileFileTests
{
    [Test]
    public void LineOverSixteenMebibytesIsADataErrorNamingTheFile()
    {
        using var d = new TempDir();
        string path = Path.Combine(d.Path, "huge.csv");
        using (var w = new StreamWriter(path))
        {
            w.Write("item,title\na,");
            w.Write(new string('x', 17 << 20));
            w.Write('\n');
        }
        var e = DataAssert.Throws<InvalidDataException>(() => ItemCatalog.Load(path), path, "16 MiB");
        Assert.That(e.Message.Length, Is.LessThan(600), "the message does not carry the line");
    }

    [Test]
    public void UnterminatedQuoteIsCutToTheLine()
    {
        using var d = new TempDir();
        var rows = new List<string> { "user,item,label,timestamp", "u1,a,1,1", "u1,\"a,1,2" };
        for (int i = 0; i < 2000; i++) rows.Add($"u{i},a,1,{i + 3}");   // ~30 KB swallowed by the open quote
        string path = d.Write("q.csv", [.. rows]);
        var items = ItemCatalog.Load(d.Write("items.csv", "item,title", "a,Alpha"));
        var e = DataAssert.Throws<InvalidDataException>(() => InteractionTable.Load(path, items), path, "line 3", "quote");
        TestContext.Out.WriteLine(e.Message.Length);
        Assert.That(e.Message.Length, Is.LessThan(600), "cut to the line, not the 30 KB the quote swallowed");
        Assert.That(e.Message, Does.Not.Contain("u1999"));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void InvalidUtf8IsCountedWithTheFirstLine()
    {
        using var d = new TempDir();
        string items = Path.Combine(d.Path, "items.csv");
        byte[] bad = [0xC3, 0x28];   // a truncated two-byte sequence
        File.WriteAllBytes(items, [.. Encoding.UTF8.GetBytes("item,title\na,Alpha\nb,Be"), .. bad, .. "ta\nc,Gamma\n"u8]);
        string inter = Path.Combine(d.Path, "c.csv");
        File.WriteAllBytes(inter, [.. Encoding.UTF8.GetBytes("user,item,label,timestamp\nu1,a,1,1\nu"), .. bad, .. ",b,1,2\nu"u8, .. bad, .. ",c,0,3\nu3,a,0,4\n"u8]);
        var catalog = ItemCatalog.Load(items);
        Assert.That(catalog.InvalidUtf8Rows, Is.EqualTo(1));
        Assert.That(catalog.FirstInvalidUtf8Line, Is.EqualTo(3));
        var t = InteractionTable.Load(inter, catalog);
        Assert.That(t.InvalidUtf8Rows, Is.EqualTo(2));
        Assert.That(t.FirstInvalidUtf8Line, Is.EqualTo(3));

        var clean = ItemCatalog.Load(d.Write("clean.csv", "item,title", "a,Ünïcödé ✓"));
        Assert.That(clean.InvalidUtf8Rows, Is.EqualTo(0));
        Assert.That(clean.FirstInvalidUtf8Line, Is.EqualTo(0));
    }

    [Test]
    public void InvalidUtf8InMovieTweetingsIsCounted()
    {
        using var d = new TempDir();
        File.WriteAllBytes(Path.Combine(d.Path, "movies.dat"), [.. "1::A (2000)::Drama\n2::B"u8, 0xFF, .. " (2001)::\n"u8]);
        File.WriteAllBytes(Path.Combine(d.Path, "ratings.dat"), [.. "1::1::9::10\n"u8, 0xFE, .. "::2::3::11\n2::2::8::12\n"u8]);
        var t = MovieTweetings.Load(d.Path);
        Assert.That(t.Catalog.InvalidUtf8Rows, Is.EqualTo(1));
        Assert.That(t.Catalog.FirstInvalidUtf8Line, Is.EqualTo(2));
        Assert.That(t.InvalidUtf8Rows, Is.EqualTo(1));
        Assert.That(t.FirstInvalidUtf8Line, Is.EqualTo(2));
    }

    [Test]
    public void MissingTextNamesTheCommandLineFlagToo()
    {
        using var d = new TempDir();
        var items = ItemCatalog.Load(d.Write("items.csv", "item,title", "a,Alpha"));
        string path = d.Write("c.csv", "user,item,label,timestamp", "u1,a,1,1", "u1,x,1,2");
        DataAssert.Throws<InvalidDataException>(() => InteractionTable.Load(path, items), "--missing-item-text empty", "MissingItemText.EmptyText");
    }
}
