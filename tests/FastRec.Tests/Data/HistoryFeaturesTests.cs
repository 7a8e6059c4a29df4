// History features: hand-computed rates and counts, no look-ahead (equal timestamps never see each other), bad input.
using FastRec.Tests.Training;
using FastRec.Engine.Data;
using FastRec.Tests.Data;

namespace FastRec.Tests.Data;

public class HistoryFeaturesTests
{
    [Test]
    public void RatesAndCountsUseOnlyStrictlyEarlierRows()
    {
        using var dir = new TempDir();
        string items = dir.Write("items.csv", "item,title", "a,alpha", "b,beta");
        // Rows out of time order on purpose; rows 3 and 4 share timestamp 30.
        string inter = dir.Write("i.csv", "user,item,label,timestamp",
            "u,a,1,10",
            "v,a,0,20",
            "u,b,1,30",
            "v,b,1,30",
            "u,a,0,5");
        var t = HistoryFeatures.Append(InteractionTable.Load(inter, ItemCatalog.Load(items)), alpha: 2);
        Assert.That(t.DenseNames, Is.EqualTo(HistoryFeatures.Names));
        float[] Row(int r) => t.Dense.Slice(r * 4, 4).ToArray();
        // Time order: (u,a,0,5) (u,a,1,10) (v,a,0,20) {(u,b,1,30) (v,b,1,30)}.
        // Row 4 (t=5) is first: no history, prior g = (0+1)/(0+2) = 0.5.
        Assert.That(Row(4), Is.EqualTo(new[] { 0.5f, 0f, 0.5f, 0f }));
        // Row 0 (t=10): u has 1 row (0 positives), a has 1 row (0 positives); g = 1/3.
        double g = 1.0 / 3;
        Assert.That(Row(0)[0], Is.EqualTo((float)((0 + 2 * g) / (1 + 2))).Within(1e-7f));
        Assert.That(Row(0)[1], Is.EqualTo((float)Math.Log(2)).Within(1e-7f));
        Assert.That(Row(0)[2], Is.EqualTo((float)((0 + 2 * g) / (1 + 2))).Within(1e-7f));
        // Rows 2 and 3 share t=30: neither sees the other. Seen before: 3 rows, 1 positive; g = 2/5.
        g = 2.0 / 5;
        Assert.That(Row(2)[0], Is.EqualTo((float)((1 + 2 * g) / (2 + 2))).Within(1e-7f), "u: 2 earlier rows, 1 positive");
        Assert.That(Row(2)[2], Is.EqualTo((float)(2 * g / 2)).Within(1e-7f), "b: no earlier row");
        Assert.That(Row(3)[0], Is.EqualTo((float)((0 + 2 * g) / (1 + 2))).Within(1e-7f), "v: 1 earlier row (t=20), not u's row at t=30");
        Assert.That(Row(3)[3], Is.EqualTo(0f), "b unseen before t=30 although row 2 shares the timestamp");
    }

    [Test]
    public void ExistingDenseColumnsAreKeptInFront()
    {
        using var dir = new TempDir();
        string items = dir.Write("items.csv", "item,title", "a,alpha");
        string inter = dir.Write("i.csv", "user,item,label,timestamp,x", "u,a,1,1,7.5", "u,a,0,2,-1");
        var raw = InteractionTable.Load(inter, ItemCatalog.Load(items), new InteractionFileOptions { DenseColumns = ["x"] });
        var t = HistoryFeatures.Append(raw);
        Assert.That(t.DenseNames, Is.EqualTo((string[])["x", .. HistoryFeatures.Names]));
        Assert.That(t.Dense[0], Is.EqualTo(7.5f));
        Assert.That(t.Dense[5], Is.EqualTo(-1f));
        Assert.That(t.Count, Is.EqualTo(raw.Count));
        TrainAssert.Throws<ArgumentException>(() => HistoryFeatures.Append(t), "already has history features");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => HistoryFeatures.Append(raw, 0), "alpha");
    }
}
