// Building examples: contexts without look-ahead (ties included), split boundaries, seeded negative sampling, bad options.
using FastRec.Engine.Data;
using FastRec.Kernels;

namespace FastRec.Tests.Data;

public class ExampleBuilderTests
{
    private static InteractionTable Table(TempDir d, params string[] rows)
    {
        var ids = "abcdefghijklmnopqrst".Select(c => $"{c},Item {c}").Prepend("item,title").ToArray();
        var items = ItemCatalog.Load(d.Write("items.csv", ids));
        return InteractionTable.Load(d.Write("clicks.csv", rows.Prepend("user,item,label,timestamp").ToArray()), items);
    }

    private static string[] Ids(ExampleSet s, int i) => s.Context(i).ToArray().Select(s.Catalog.Id).ToArray();

    private static IEnumerable<ExampleSet> All(RecDataset ds) => [ds.Train, ds.Validation, ds.Test];

    /// <summary>Finds the example of user <paramref name="user"/> at <paramref name="ts"/> on <paramref name="item"/>.</summary>
    private static (ExampleSet, int) Find(RecDataset ds, string user, string item, long ts)
    {
        foreach (var s in All(ds))
            for (int i = 0; i < s.Count; i++)
                if (s.UserIds[s.Users[i]] == user && s.Catalog.Id(s.Items[i]) == item && s.Timestamps[i] == ts && !s.Sampled[i]) return (s, i);
        throw new AssertionException($"no example ({user}, {item}, {ts})");
    }

    private static readonly ExampleOptions Small = new() { ContextSize = 3, TrainFraction = 0.5, ValidationFraction = 0.25 };

    [Test]
    public void NoLookAheadAFuturePositiveEarlierInTheFileNeverAppears()
    {
        using var d = new TempDir();
        // The future positive 'f' (t=50) is the FIRST row of the file; 'b' is a negative; 'x's are other users.
        var ds = RecDataset.Build(Table(d,
            "u1,f,1,50", "u1,a,1,10", "u2,c,1,5", "u1,b,0,20", "u1,c,1,30", "u1,d,1,40", "u2,e,1,45", "u2,g,1,60"), Small);
        Assert.That(Ids(Find(ds, "u1", "a", 10).Item1, Find(ds, "u1", "a", 10).Item2), Is.Empty);
        var (s, i) = Find(ds, "u1", "c", 30);
        Assert.That(Ids(s, i), Is.EqualTo(new[] { "a" }), "the negative b is not context; f is in the future");
        (s, i) = Find(ds, "u1", "d", 40);
        Assert.That(Ids(s, i), Is.EqualTo(new[] { "c", "a" }), "most recent first");
        (s, i) = Find(ds, "u1", "f", 50);
        Assert.That(Ids(s, i), Is.EqualTo(new[] { "d", "c", "a" }));
        (s, i) = Find(ds, "u2", "g", 60);
        Assert.That(Ids(s, i), Is.EqualTo(new[] { "e", "c" }), "other users' items never leak in");
    }

    [Test]
    public void EqualTimestampsAreNotBefore()
    {
        using var d = new TempDir();
        var ds = RecDataset.Build(Table(d, "u1,a,1,10", "u1,b,1,10", "u1,c,1,10", "u1,d,1,11", "u1,e,1,12", "u1,f,1,13", "u1,g,1,14", "u1,h,1,15"),
            Small with { ContextSize = 5 });
        foreach (string item in new[] { "a", "b", "c" })
        {
            var (s, i) = Find(ds, "u1", item, 10);
            Assert.That(Ids(s, i), Is.Empty, $"{item} must not see its same-time siblings");
        }
        var (s2, i2) = Find(ds, "u1", "d", 11);
        Assert.That(Ids(s2, i2), Is.EqualTo(new[] { "c", "b", "a" }), "same-time positives: the later file row is more recent");
        var (s3, i3) = Find(ds, "u1", "h", 15);
        Assert.That(Ids(s3, i3), Is.EqualTo(new[] { "g", "f", "e", "d", "c" }), "capped at K = 5");
    }

    [TestCase(1), TestCase(3), TestCase(7)]
    public void ContextsEqualABruteForceRescanOnRandomDataWithManyTies(int k)
    {
        using var d = new TempDir();
        var rows = new List<string>();
        for (int r = 0; r < 300; r++)
        {
            int u = (int)(Rng.Hash(1, (ulong)r) % 6), it = (int)(Rng.Hash(2, (ulong)r) % 20), t = (int)(Rng.Hash(3, (ulong)r) % 40);
            rows.Add($"u{u},{(char)('a' + it)},{(Rng.Uniform(4, (ulong)r) < 0.6f ? 1 : 0)},{t}");
        }
        var table = Table(d, rows.ToArray());
        var ds = RecDataset.Build(table, new ExampleOptions { ContextSize = k });
        int checkedExamples = 0;
        foreach (var s in All(ds))
            for (int i = 0; i < s.Count; i++)
            {
                // Rescan: the user's positives strictly before t, latest time first, later row first among equal times.
                var expected = Enumerable.Range(0, table.Count)
                    .Where(r => table.Users[r] == s.Users[i] && table.Labels[r] >= 0.5f && table.Timestamps[r] < s.Timestamps[i])
                    .OrderByDescending(r => table.Timestamps[r]).ThenByDescending(r => r)
                    .Take(k).Select(r => table.Items[r]).ToArray();
                Assert.That(s.Context(i).ToArray(), Is.EqualTo(expected), $"{s.Name}[{i}]");
                checkedExamples++;
            }
        Assert.That(checkedExamples, Is.EqualTo(300));
    }

    [Test]
    public void TemporalSplitPutsLaterTimestampsInLaterSplitsAndKeepsTiesTogether()
    {
        using var d = new TempDir();
        // 20 rows; timestamps 0..15 with five rows at t=7 straddling the 40% mark.
        var rows = Enumerable.Range(0, 20).Select(r => $"u{r % 3},{(char)('a' + r % 20)},{r % 2},{(r >= 6 && r <= 10 ? 7 : r < 6 ? r : r - 3)}").ToArray();
        var ds = RecDataset.Build(Table(d, rows), new ExampleOptions { TrainFraction = 0.4, ValidationFraction = 0.3 });
        Assert.That(ds.Train.Count + ds.Validation.Count + ds.Test.Count, Is.EqualTo(20));
        Assert.That(ds.Train.Count, Is.EqualTo(11), "the cut at 8 moves past the tie group at t=7");
        Assert.That((ds.Validation.Count, ds.Test.Count), Is.EqualTo((3, 6)));
        Assert.That(ds.Train.Timestamps.ToArray().Max(), Is.LessThan(ds.Validation.Timestamps.ToArray().Min()));
        Assert.That(ds.Validation.Timestamps.ToArray().Max(), Is.LessThan(ds.Test.Timestamps.ToArray().Min()));
        foreach (var s in All(ds))
            Assert.That(s.Timestamps.ToArray(), Is.Ordered, $"{s.Name} is in time order");
    }

    [Test]
    public void RandomSplitIsSeededWithExactFractions()
    {
        using var d = new TempDir();
        var rows = Enumerable.Range(0, 100).Select(r => $"u{r % 7},{(char)('a' + r % 20)},{r % 2},{r}").ToArray();
        var table = Table(d, rows);
        var o = new ExampleOptions { Split = SplitKind.Random, Seed = 5 };
        var a = RecDataset.Build(table, o); var b = RecDataset.Build(table, o); var c = RecDataset.Build(table, o with { Seed = 6 });
        Assert.That((a.Train.Count, a.Validation.Count, a.Test.Count), Is.EqualTo((80, 10, 10)));
        Assert.That(a.Test.Timestamps.ToArray(), Is.EqualTo(b.Test.Timestamps.ToArray()), "same seed, same split");
        Assert.That(a.Test.Timestamps.ToArray(), Is.Not.EqualTo(c.Test.Timestamps.ToArray()), "another seed, another split");
        Assert.That(a.Validation.Timestamps.ToArray(), Is.Ordered);
        Assert.That(a.Test.Timestamps.ToArray().Max(), Is.GreaterThan(a.Train.Timestamps.ToArray().Min()), "random, not temporal");
    }

    [Test]
    public void NegativeSamplingNeverSamplesAnInteractedItemAndIsSeeded()
    {
        using var d = new TempDir();
        var rows = new List<string>();
        for (int r = 0; r < 120; r++) rows.Add($"u{r % 5},{(char)('a' + (int)(Rng.Hash(9, (ulong)r) % 20))},{(r % 3 == 0 ? 0 : 1)},{r / 2}");
        var table = Table(d, rows.ToArray());
        var o = new ExampleOptions { NegativesPerPositive = 3, Seed = 11 };
        var ds = RecDataset.Build(table, o);
        int positives = 0;
        foreach (float y in table.Labels) if (y >= 0.5f) positives++;
        Assert.That(ds.SampledNegatives, Is.EqualTo(3 * positives));
        var interacted = Enumerable.Range(0, table.Count).Select(r => (table.Users[r], table.Items[r])).ToHashSet();
        int sampled = 0;
        foreach (var s in All(ds))
            for (int i = 0; i < s.Count; i++)
            {
                if (!s.Sampled[i]) continue;
                sampled++;
                Assert.That(interacted, Does.Not.Contain((s.Users[i], s.Items[i])), $"{s.Name}[{i}] sampled an interacted item");
                Assert.That(s.Labels[i], Is.EqualTo(0f));
                // Same timestamp and context as the interaction it was drawn for (the preceding real example).
                int src = i - 1; while (s.Sampled[src]) src--;
                Assert.That(s.Timestamps[i], Is.EqualTo(s.Timestamps[src]));
                Assert.That(s.Users[i], Is.EqualTo(s.Users[src]));
                Assert.That(s.Context(i).ToArray(), Is.EqualTo(s.Context(src).ToArray()));
            }
        Assert.That(sampled, Is.EqualTo(3 * positives));
        foreach (var s in All(ds))
            for (int i = 0; i < s.Count; i++)
                foreach (int c in s.Context(i)) Assert.That(interacted, Does.Contain((s.Users[i], c)), $"context item {c} of {s.Name}[{i}] is a real interaction, never a sampled one");

        var again = RecDataset.Build(table, o);
        Assert.That(again.Train.Items.ToArray(), Is.EqualTo(ds.Train.Items.ToArray()), "same seed, same draws");
        var other = RecDataset.Build(table, o with { Seed = 12 });
        Assert.That(other.Train.Items.ToArray(), Is.Not.EqualTo(ds.Train.Items.ToArray()), "another seed, other draws");
    }

    [Test]
    public void NegativeSamplingWithNothingLeftToSampleIsAnError()
    {
        using var d = new TempDir();
        var items = ItemCatalog.Load(d.Write("items.csv", "item,title", "a,A", "b,B"));
        var table = InteractionTable.Load(d.Write("c.csv", "user,item,label,timestamp", "u1,a,1,1", "u1,b,0,2", "u2,a,1,3", "u2,a,1,4"), items);
        DataAssert.Throws<InvalidDataException>(() => RecDataset.Build(table, new ExampleOptions { NegativesPerPositive = 1 }),
            "user 'u1' interacted with all 2 items");
    }

    [Test]
    public void EmptySplitIsAnError()
    {
        using var d = new TempDir();
        var table = Table(d, "u1,a,1,5", "u1,b,1,5", "u2,c,0,5", "u2,d,1,5");
        DataAssert.Throws<InvalidDataException>(() => RecDataset.Build(table), "validation split is empty", "equal timestamps");
        var tiny = Table(d, "u1,a,1,1", "u1,b,1,2");
        DataAssert.Throws<InvalidDataException>(() => RecDataset.Build(tiny, new ExampleOptions { Split = SplitKind.Random }), "split is empty");
    }

    [TestCase(0), TestCase(-1), TestCase(129)]
    public void ContextSizeOutOfRangeIsAnError(int k)
    {
        using var d = new TempDir();
        var table = Table(d, "u1,a,1,1", "u1,b,1,2", "u1,c,1,3");
        DataAssert.Throws<ArgumentOutOfRangeException>(() => RecDataset.Build(table, new ExampleOptions { ContextSize = k }), "context size K", "[1, 128]");
    }

    [Test]
    public void BadFractionsAndNegativeCountsAreErrors()
    {
        using var d = new TempDir();
        var table = Table(d, "u1,a,1,1", "u1,b,1,2", "u1,c,1,3");
        DataAssert.Throws<ArgumentOutOfRangeException>(() => RecDataset.Build(table, new ExampleOptions { TrainFraction = 0.9, ValidationFraction = 0.1 }), "leave a test split");
        DataAssert.Throws<ArgumentOutOfRangeException>(() => RecDataset.Build(table, new ExampleOptions { TrainFraction = 0 }), "train fraction");
        DataAssert.Throws<ArgumentOutOfRangeException>(() => RecDataset.Build(table, new ExampleOptions { NegativesPerPositive = -1 }), "negatives per positive");
    }

    [Test]
    public void DenseFeaturesAndWeightsFollowTheirExamples()
    {
        using var d = new TempDir();
        var items = ItemCatalog.Load(d.Write("items.csv", "item,title", "a,A", "b,B", "c,C", "d,D"));
        var table = InteractionTable.Load(d.Write("c.csv", "user,item,label,timestamp,w,x,y",
            "u1,d,1,4,4,40,-4", "u1,a,1,1,1,10,-1", "u2,c,0,3,3,30,-3", "u1,b,1,2,2,20,-2"), items,
            new InteractionFileOptions { WeightColumn = "w", DenseColumns = ["x", "y"] });
        var ds = RecDataset.Build(table, new ExampleOptions { TrainFraction = 0.5, ValidationFraction = 0.25 });
        foreach (var s in All(ds))
            for (int i = 0; i < s.Count; i++)
            {
                Assert.That(s.Weights[i], Is.EqualTo((float)s.Timestamps[i]));
                Assert.That(s.DenseRow(i).ToArray(), Is.EqualTo(new[] { 10f * s.Timestamps[i], -s.Timestamps[i] }));
            }
        Assert.That(ds.Test.SegmentA(0), Is.EqualTo("B ; A"));
        Assert.That(ds.Test.SegmentB(0), Is.EqualTo("D"));
        Assert.That(ds.Train.DenseNames, Is.EqualTo(new[] { "x", "y" }));
    }
}
