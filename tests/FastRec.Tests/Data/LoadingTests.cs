// Reading the generic interactions and items files: column mapping, label sources, and every bad input as a clear error.
using FastRec.Engine.Data;

namespace FastRec.Tests.Data;

public class LoadingTests
{
    private static ItemCatalog Items(TempDir d)
        => ItemCatalog.Load(d.Write("items.csv", "item,title,genres", "a,Alpha,Drama", "b,\"Beta, the movie\",Comedy|Drama", "c,Gamma,"),
            new ItemFileOptions { TextColumns = ["title", "genres"] });

    [Test]
    public void ItemsJoinTextColumnsAndUnquote()
    {
        using var d = new TempDir();
        var items = Items(d);
        Assert.That(items.Count, Is.EqualTo(3));
        Assert.That(items.Text(items.IndexOf("a")), Is.EqualTo("Alpha | Drama"));
        Assert.That(items.Text(items.IndexOf("b")), Is.EqualTo("Beta, the movie | Comedy|Drama"));
        Assert.That(items.Text(items.IndexOf("c")), Is.EqualTo("Gamma")); // empty column left out
        Assert.That(items.IndexOf("zzz"), Is.EqualTo(-1));
    }

    [Test]
    public void InteractionsWithMappedColumnsWeightAndDense()
    {
        using var d = new TempDir();
        var items = Items(d);
        string path = d.Write("clicks.csv", "uid,iid,clicked,when,w,f1,f2", "u1,a,1,100,2.5,0.5,-1", "u2,b,0,90,1,1e3,0", "u1,c,0.25,110,0,3,4");
        var t = InteractionTable.Load(path, items, new InteractionFileOptions
        {
            UserColumn = "uid", ItemColumn = "iid", LabelColumn = "clicked", TimestampColumn = "when", WeightColumn = "w", DenseColumns = ["f1", "f2"],
        });
        Assert.That(t.Count, Is.EqualTo(3));
        Assert.That(t.UserIds, Is.EqualTo(new[] { "u1", "u2" }));
        Assert.That(t.Users.ToArray(), Is.EqualTo(new[] { 0, 1, 0 }));
        Assert.That(t.Items.ToArray(), Is.EqualTo(new[] { items.IndexOf("a"), items.IndexOf("b"), items.IndexOf("c") }));
        Assert.That(t.Labels.ToArray(), Is.EqualTo(new[] { 1f, 0f, 0.25f }));
        Assert.That(t.Weights.ToArray(), Is.EqualTo(new[] { 2.5f, 1f, 0f }));
        Assert.That(t.Timestamps.ToArray(), Is.EqualTo(new long[] { 100, 90, 110 }));
        Assert.That(t.Dense.ToArray(), Is.EqualTo(new[] { 0.5f, -1f, 1000f, 0f, 3f, 4f }));
        Assert.That(t.Lines.ToArray(), Is.EqualTo(new[] { 2, 3, 4 }));
    }

    [Test]
    public void TsvRatingThresholdAndIsoTimestamps()
    {
        using var d = new TempDir();
        var items = Items(d);
        string path = d.Write("r.tsv", "user\titem\trating\ttimestamp", "u1\ta\t8\t2020-01-01T00:00:10Z", "u1\tb\t7.5\t2020-01-01");
        var t = InteractionTable.Load(path, items, new InteractionFileOptions { LabelColumn = null, RatingColumn = "rating", PositiveThreshold = 8 });
        Assert.That(t.Labels.ToArray(), Is.EqualTo(new[] { 1f, 0f }));
        Assert.That(t.Timestamps.ToArray(), Is.EqualTo(new long[] { 1577836810, 1577836800 }));
    }

    [Test]
    public void ImplicitDataWithoutTimestampUsesRowOrder()
    {
        using var d = new TempDir();
        var items = Items(d);
        string path = d.Write("i.csv", "user,item", "u1,a", "u2,b", "u1,c");
        var t = InteractionTable.Load(path, items, new InteractionFileOptions { LabelColumn = null, TimestampColumn = null });
        Assert.That(t.Labels.ToArray(), Is.EqualTo(new[] { 1f, 1f, 1f }));
        Assert.That(t.Timestamps.ToArray(), Is.EqualTo(new long[] { 0, 1, 2 }));
    }

    [Test]
    public void MissingColumnNamesItAndListsThePresentOnes()
    {
        using var d = new TempDir();
        var items = Items(d);
        string path = d.Write("c.csv", "user,itm,label,timestamp", "u1,a,1,1");
        DataAssert.Throws<InvalidDataException>(() => InteractionTable.Load(path, items), "column 'item'", "'user', 'itm', 'label', 'timestamp'", "c.csv");
        DataAssert.Throws<InvalidDataException>(() => ItemCatalog.Load(d.Write("it.csv", "id,name", "a,A")), "column 'item'", "'id', 'name'");
        DataAssert.Throws<InvalidDataException>(() => InteractionTable.Load(d.Write("c2.csv", "user,item,label,timestamp", "u1,a,1,1"), items,
            new InteractionFileOptions { DenseColumns = ["age"] }), "column 'age'", "dense feature column");
    }

    [Test]
    public void UnparseableRowNamesFileAndLine()
    {
        using var d = new TempDir();
        var items = Items(d);
        string bad = d.Write("c.csv", "user,item,label,timestamp", "u1,a,1,1", "u1,b,yes,2");
        DataAssert.Throws<InvalidDataException>(() => InteractionTable.Load(bad, items), "c.csv:3", "'label'", "'yes'");
        string ts = d.Write("t.csv", "user,item,label,timestamp", "u1,a,1,yesterday");
        DataAssert.Throws<InvalidDataException>(() => InteractionTable.Load(ts, items), "t.csv:2", "timestamp");
        string cols = d.Write("n.csv", "user,item,label,timestamp", "u1,a,1,1", "u1,b,1");
        var ex = DataAssert.Throws<InvalidDataException>(() => InteractionTable.Load(cols, items), "n.csv", "unparseable row");
        Assert.That(ex.Message, Does.Contain("lines [3"), "the line number");
    }

    [TestCase("NaN"), TestCase("Infinity"), TestCase("-Infinity")]
    public void NonFiniteDenseFeatureIsAnError(string value)
    {
        using var d = new TempDir();
        var items = Items(d);
        string path = d.Write("c.csv", "user,item,label,timestamp,age", "u1,a,1,1,3", $"u1,b,1,2,{value}");
        DataAssert.Throws<InvalidDataException>(() => InteractionTable.Load(path, items, new InteractionFileOptions { DenseColumns = ["age"] }),
            "c.csv:3", "dense feature 'age'", "finite");
    }

    [TestCase("NaN", "finite"), TestCase("Infinity", "finite"), TestCase("-0.5", "negative")]
    public void BadWeightIsAnError(string value, string problem)
    {
        using var d = new TempDir();
        var items = Items(d);
        string path = d.Write("c.csv", "user,item,label,timestamp,w", $"u1,a,1,1,{value}");
        DataAssert.Throws<InvalidDataException>(() => InteractionTable.Load(path, items, new InteractionFileOptions { WeightColumn = "w" }),
            "c.csv:2", "weight", problem);
    }

    [TestCase("1.5"), TestCase("-0.1"), TestCase("NaN")]
    public void LabelOutsideZeroOneIsAnError(string value)
    {
        using var d = new TempDir();
        var items = Items(d);
        string path = d.Write("c.csv", "user,item,label,timestamp", $"u1,a,{value},1");
        DataAssert.Throws<InvalidDataException>(() => InteractionTable.Load(path, items), "c.csv:2", "label", "[0, 1]");
    }

    [Test]
    public void ItemsWithoutTextAreRefusedByDefaultAndCounted()
    {
        using var d = new TempDir();
        var items = ItemCatalog.Load(d.Write("items.csv", "item,title", "a,Alpha", "e,"));
        string path = d.Write("c.csv", "user,item,label,timestamp", "u1,a,1,1", "u1,x,1,2", "u2,x,0,3", "u2,e,1,4");
        DataAssert.Throws<InvalidDataException>(() => InteractionTable.Load(path, items),
            "2 items referenced by 3 interactions have no text", "1 are absent from the items file", "1 have empty text", "'x'", "MissingItemText");
        Assert.That(items.Count, Is.EqualTo(2), "a refused load leaves the catalog unchanged");

        var t = InteractionTable.Load(path, items, new InteractionFileOptions { MissingItemText = MissingItemText.EmptyText });
        Assert.That(t.ItemsWithoutText, Is.EqualTo(2));
        Assert.That(t.InteractionsWithoutText, Is.EqualTo(3));
        Assert.That(items.Count, Is.EqualTo(3));
        Assert.That(items.Text(items.IndexOf("x")), Is.EqualTo(""));
        Assert.That(t.Items[1], Is.EqualTo(items.IndexOf("x")));
    }

    [Test]
    public void BadOptionsAndFiles()
    {
        using var d = new TempDir();
        var items = Items(d);
        string path = d.Write("c.csv", "user,item,label,rating,timestamp", "u1,a,1,9,1");
        DataAssert.Throws<ArgumentException>(() => InteractionTable.Load(path, items, new InteractionFileOptions { RatingColumn = "rating", PositiveThreshold = 8 }),
            "both a label column", "rating column");
        DataAssert.Throws<ArgumentException>(() => InteractionTable.Load(path, items, new InteractionFileOptions { LabelColumn = null, RatingColumn = "rating" }),
            "PositiveThreshold");
        DataAssert.Throws<InvalidDataException>(() => InteractionTable.Load(d.Write("h.csv", "user,item,label,timestamp"), items), "h.csv", "no interactions");
        DataAssert.Throws<InvalidDataException>(() => ItemCatalog.Load(d.Write("dup.csv", "item,title", "a,A", "a,B")), "dup.csv:3", "duplicate item id 'a'");
        DataAssert.Throws<InvalidDataException>(() => InteractionTable.Load(d.Write("e.csv", "user,item,label,timestamp", ",a,1,1"), items), "e.csv:2", "empty user id");
        DataAssert.Throws<FileNotFoundException>(() => ItemCatalog.Load(Path.Combine(d.Path, "nope.csv")), "nope.csv");
    }
}
