// CatalogRecommender: top-k equals a brute-force sort (ties by index), history and exclusions never returned, 8 threads
// bit-identical to one, zero allocation per call, ids (unknown ones refused), AddItems through the encoder, bad input.
using FastRec.Engine.Representations;
using FastRec.Engine.Serving;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Model;
using FastRec.Tests.Weights;

namespace FastRec.Tests.Serving;

[NonParallelizable]
public class CatalogRecommenderTests
{
    private string _root = "";
    private string Encoder => Path.Combine(_root, "tiny-bert");

    [OneTimeSetUp]
    public void Setup()
    {
        _root = Directory.CreateTempSubdirectory("fastrec-serving-").FullName;
        MiniLm.WriteTinyBert(Encoder, m => ModelTestUtil.RandomParams(m, 31));
    }

    [OneTimeTearDown]
    public void TearDown() { try { Directory.Delete(_root, true); } catch (IOException) { } }

    private static string[] Ids(int n) => Enumerable.Range(0, n).Select(i => $"id{i}").ToArray();

    /// <summary>A synthetic scorer (random weights) of V items behind a recommender with ids "id0".."id{V−1}".</summary>
    private static CatalogRecommender Synthetic(int V, ulong seed = 7)
    {
        var s = TowerScorer.Random(V, 8, new TowerModelOptions { Dim = 8, Hidden = 16, HistoryLength = 10, Negatives = 2 }, seed);
        return new CatalogRecommender(s, Ids(V), Ids(V).Select(x => $"text of {x}").ToArray());
    }

    /// <summary>The expected top k: every item neither in the history nor excluded, by score descending then index.</summary>
    private static (int[] Items, float[] Scores) BruteForce(TowerScorer s, int[] items, float[] labels, int k, int[] exclude)
    {
        var scores = ServingTestUtil.Scores(s, items, labels);
        var order = Enumerable.Range(0, s.ItemCount).Where(i => !items.Contains(i) && !exclude.Contains(i))
            .OrderByDescending(i => scores[i]).ThenBy(i => i).Take(k).ToArray();
        return (order, order.Select(i => scores[i]).ToArray());
    }

    private static (int[] Items, float[] Scores) Run(CatalogRecommender r, int[] items, float[] labels, int k, int[] exclude)
    {
        var top = new int[k]; var scores = new float[k];
        int n = r.TopK(items, labels, k, top, exclude, scores);
        return (top[..n], scores[..n]);
    }

    [Test]
    public void TopKEqualsABruteForceSort()
    {
        var r = Synthetic(2_000);
        int cases = 0;
        foreach (int n in new[] { 0, 1, 7, 10, 40 })   // 40 > N: only the last 10 are read, but all 40 are never returned
            foreach (int k in new[] { 1, 10, 137, 2_000 })
                foreach (int e in new[] { 0, 25 })
                {
                    var (items, labels) = ServingTestUtil.History(n, 2_000, (ulong)(n * 31 + k));
                    var exclude = Enumerable.Range(0, e).Select(j => (j * 79 + k) % 2_000).ToArray();
                    var want = BruteForce(r.Scorer, items, labels, k, exclude);
                    var got = Run(r, items, labels, k, exclude);
                    Assert.That(got.Items, Is.EqualTo(want.Items), $"history {n}, k {k}, {e} excluded");
                    Assert.That(got.Scores, Is.EqualTo(want.Scores), $"history {n}, k {k}, {e} excluded");
                    Assert.That(got.Items.Intersect(items.Concat(exclude)), Is.Empty);
                    cases++;
                }
        Assert.That(cases, Is.EqualTo(40));
    }

    [Test]
    public void TiesRankByLowerItemIndexAcrossTheCut()
    {
        var (data, _, trained) = ServingTestUtil.Trained();
        int V = trained.ItemCount;
        var enc = new float[trained.EncodingDim];
        for (int c = 0; c < enc.Length; c++) enc[c] = c + 1;
        var s = trained.WithItems([.. enc, .. enc, .. enc]);   // items V, V+1, V+2: the same text, so the same score
        var r = new CatalogRecommender(s, Ids(V + 3));
        int[] items = [3, 8]; float[] labels = [1, 0];
        var scores = ServingTestUtil.Scores(s, items, labels);
        Assert.That(scores[V + 1], Is.EqualTo(scores[V]));
        Assert.That(scores[V + 2], Is.EqualTo(scores[V]));
        var full = BruteForce(s, items, labels, V + 1, []);
        int first = Array.IndexOf(full.Items, V);
        Assert.That(full.Items[first..(first + 3)], Is.EqualTo(new[] { V, V + 1, V + 2 }), "the tie, by index");
        // Cut the list between the tied items: the two lower indices are kept, the third is not.
        var got = Run(r, items, labels, first + 2, []);
        Assert.That(got.Items, Is.EqualTo(full.Items[..(first + 2)]));
        Assert.That(got.Items[^2..], Is.EqualTo(new[] { V, V + 1 }));
        Assert.That(data.Catalog.Count, Is.EqualTo(V));
    }

    [Test]
    public void ANewUserAndExclusionsOfAlmostEverything()
    {
        var r = Synthetic(300);
        var want = BruteForce(r.Scorer, [], [], 10, []);
        Assert.That(Run(r, [], [], 10, []).Items, Is.EqualTo(want.Items), "an empty history is a new user");
        var exclude = Enumerable.Range(0, 300).Where(i => i is not (5 or 17 or 250)).ToArray();
        var got = Run(r, [17], [1], 10, exclude);
        Assert.That(got.Items, Is.EquivalentTo(new[] { 5, 250 }), "only the two items neither seen nor excluded");
        // Repeated history items and exclusions count once; k up to the catalogue's size.
        got = Run(r, [1, 1, 2], [1, 0, 1], 300, [2, 3, 3]);
        Assert.That(got.Items, Has.Length.EqualTo(297));
        Assert.That(got.Items.Distinct().Count(), Is.EqualTo(297));
    }

    [Test]
    public void EightThreadsGiveBitIdenticalResultsToOne()
    {
        var r = Synthetic(500, seed: 9);
        const int Requests = 40;
        var reqs = new (int[] Items, float[] Labels, int K, int[] Exclude)[Requests];
        var expected = new (int[] Items, float[] Scores)[Requests];
        for (int q = 0; q < Requests; q++)
        {
            var (items, labels) = ServingTestUtil.History(q % 13, 500, (ulong)(1_000 + q));
            reqs[q] = (items, labels, 1 + q * 7 % 50, q % 3 == 0 ? [q, q + 100] : []);
            expected[q] = Run(r, reqs[q].Items, reqs[q].Labels, reqs[q].K, reqs[q].Exclude);
        }
        int saved = CpuParallel.Threads;
        CpuParallel.Threads = 2;   // each call also splits its scoring over the pool when it is free
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        try
        {
            var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
            {
                var top = new int[50]; var sc = new float[50];
                for (int c = 0; c < 1_000; c++)
                {
                    int q = (t * 17 + c) % Requests;
                    var (items, labels, k, exclude) = reqs[q];
                    int n = r.TopK(items, labels, k, top, exclude, sc);
                    if (!top.AsSpan(0, n).SequenceEqual(expected[q].Items) || !sc.AsSpan(0, n).SequenceEqual(expected[q].Scores))
                    { failures.Add($"thread {t}, call {c}, request {q}"); return; }
                }
            })).ToList();
            threads.ForEach(x => x.Start());
            threads.ForEach(x => x.Join());
        }
        finally { CpuParallel.Threads = saved; }
        Assert.That(failures, Is.Empty);
    }

    [Test]
    public void ACallAllocatesNothingAfterWarmUp()
    {
        var r = Synthetic(1_000);
        var (items, labels) = ServingTestUtil.History(30, 1_000, 77);
        int[] exclude = [1, 2, 3];
        var top = new int[10]; var scores = new float[10];
        foreach (int threads in new[] { 1, 2 })
        {
            int saved = CpuParallel.Threads;
            CpuParallel.Threads = threads;
            try
            {
                for (int c = 0; c < 20; c++) { r.TopK(items, labels, 10, top, exclude, scores); r.TopK([], [], 10, top); }   // warm-up
                // Three windows: a per-call allocation shows in each; a one-time one of the runtime (a wait object made in a
                // thread hand-off, a tiering transition) in one at most (as in PredictorTests). The quietest must be zero.
                var windows = new long[3];
                for (int w = 0; w < windows.Length; w++)
                {
                    long before = GC.GetAllocatedBytesForCurrentThread();
                    for (int c = 0; c < 100; c++)
                    {
                        r.TopK(items, labels, 10, top, exclude, scores);
                        r.TopK([], [], 10, top);
                    }
                    windows[w] = GC.GetAllocatedBytesForCurrentThread() - before;
                }
                Assert.That(windows.Min(), Is.Zero, $"{threads} threads: bytes allocated by 200 calls in each window: {string.Join(", ", windows)}");
            }
            finally { CpuParallel.Threads = saved; }
        }
    }

    [Test]
    public void BadArgumentsAreNamed()
    {
        var r = Synthetic(100);
        var top = new int[200];
        foreach (int k in new[] { 0, -3, 101 })
            Assert.That(() => r.TopK([1], [1], k, top), Throws.InstanceOf<ArgumentOutOfRangeException>()
                .With.Property("ParamName").EqualTo("k").And.Message.Contains($"k must be in [1, 100] (the catalogue's items), got {k}"));
        Assert.That(() => r.TopK([1], [1], 10, new int[5]), Throws.ArgumentException.With.Message.Contains("result holds 5 slots but k is 10"));
        Assert.That(() => r.TopK([1], [1], 10, top, default, new float[3]), Throws.ArgumentException.With.Message.Contains("resultScores holds 3 slots"));
        Assert.That(() => r.TopK([1, 2], [1], 10, top), Throws.ArgumentException.With.Message.Contains("1 labels for 2 history items"));
        Assert.That(() => r.TopK([1, 100], [1, 1], 10, top), Throws.InstanceOf<ArgumentOutOfRangeException>()
            .With.Property("ParamName").EqualTo("historyItems").And.Message.Contains("historyItems[1] = 100 is outside the catalogue's 100 items"));
        Assert.That(() => r.TopK([-1], [1], 10, top), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("historyItems"));
        Assert.That(() => r.TopK([1], [float.NaN], 10, top), Throws.InstanceOf<ArgumentOutOfRangeException>()
            .With.Property("ParamName").EqualTo("historyLabels").And.Message.Contains("historyLabels[0] = NaN is outside [0, 1]"));
        Assert.That(() => r.TopK([1], [1.5f], 10, top), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("historyLabels"));
        Assert.That(() => r.TopK([1], [1], 10, top, [4, 200]), Throws.InstanceOf<ArgumentOutOfRangeException>()
            .With.Property("ParamName").EqualTo("exclude").And.Message.Contains("exclude[1] = 200"));
        // A refused call leaves no trace: the next one equals a fresh recommender's.
        Assert.That(Run(r, [1], [1], 100, []).Items, Is.EqualTo(Run(Synthetic(100), [1], [1], 100, []).Items));
    }

    [Test]
    public void ConstructorRefusesMismatchedOrDuplicateIds()
    {
        var s = TowerScorer.Random(5, 4, new TowerModelOptions { Dim = 2, Hidden = 2, HistoryLength = 2 });
        Assert.That(() => new CatalogRecommender(s, Ids(4)), Throws.ArgumentException.With.Message.Contains("4 ids for the scorer's 5 items"));
        Assert.That(() => new CatalogRecommender(s, ["a", "b", "c", "b", "e"]), Throws.ArgumentException.With.Message.Contains("'b' is given twice (items 1 and 3)"));
        Assert.That(() => new CatalogRecommender(s, Ids(5), ["x"]), Throws.ArgumentException.With.Message.Contains("1 texts for the scorer's 5 items"));
    }

    [Test]
    public void ByIdEqualsByIndexAndRefusesUnknownIds()
    {
        var r = Synthetic(200);
        var recs = r.TopK(["id3", "id50", "id7"], [1, 0, 1], 12, ["id9"]);
        var want = Run(r, [3, 50, 7], [1, 0, 1], 12, [9]);
        Assert.That(recs.Select(x => x.Item), Is.EqualTo(want.Items));
        Assert.That(recs.Select(x => x.Score), Is.EqualTo(want.Scores));
        Assert.That(recs.Select(x => x.Id), Is.EqualTo(want.Items.Select(i => $"id{i}")));
        Assert.That(recs[0].Text, Is.EqualTo($"text of id{recs[0].Item}"));
        // Null labels: every history item liked.
        Assert.That(r.TopK(["id3", "id50"], null, 5).Select(x => x.Item), Is.EqualTo(Run(r, [3, 50], [1, 1], 5, []).Items));
        Assert.That(r.TopK([], null, 5).Select(x => x.Item), Is.EqualTo(Run(r, [], [], 5, []).Items), "a new user by id");
        Assert.That(() => r.TopK(["id3", "nope", "id4", "zzz", "nope"], null, 5),
            Throws.ArgumentException.With.Property("ParamName").EqualTo("historyIds")
                .And.Message.Contains("2 unknown item ids in the history").And.Message.Contains("'nope', 'zzz'").And.Message.Contains("refused, not skipped"));
        Assert.That(() => r.TopK(["id3"], null, 5, ["gone"]), Throws.ArgumentException.With.Property("ParamName").EqualTo("exclude").And.Message.Contains("1 unknown item id in the exclusions"));
        Assert.That(() => r.TopK(["id3"], [1, 0], 5), Throws.ArgumentException.With.Message.Contains("2 labels for 1 history ids"));
        Assert.That(() => r.TopK(["id3"], null, 201), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("k"));
    }

    // ---- AddItems through the encoder ----

    /// <summary>A model trained on the tiny encoder's vectors of the fixture's catalogue, served with that encoder.</summary>
    private CatalogRecommender WithEncoder()
    {
        var catalog = ServingTestUtil.Dataset().Catalog;
        using var b = new CpuSimdBackend();
        var vectors = EncoderItemVectors.Compute(Encoder, b, catalog);
        var (data, _, scorer) = ServingTestUtil.Trained(vectors);
        var ids = Enumerable.Range(0, data.Catalog.Count).Select(data.Catalog.Id).ToArray();
        var texts = Enumerable.Range(0, data.Catalog.Count).Select(data.Catalog.Text).ToArray();
        return new CatalogRecommender(scorer, ids, texts, Encoder);
    }

    [Test]
    public void AddedItemsAreEncodedAsTheCatalogueWasAndRecommendable()
    {
        var r = WithEncoder();
        var before = r.Scorer;
        int V = r.ItemCount;
        (string, string)[] added = [("new-a", "Aliens (1986) | Action, Sci-Fi"), ("new-b", "Up (2009) | Animation")];
        r.AddItems(added);
        Assert.That(r.ItemCount, Is.EqualTo(V + 2));
        Assert.That((r.IndexOf("new-a"), r.IndexOf("new-b"), r.ItemId(V + 1), r.ItemText(V)), Is.EqualTo((V, V + 1, "new-b", "Aliens (1986) | Action, Sci-Fi")));
        Assert.That(before.ItemCount, Is.EqualTo(V), "the old scorer is untouched (immutable)");
        // The same vectors as encoding a catalogue holding those texts, then projecting them as new items.
        var catalog = new Engine.Data.ItemCatalog();
        foreach (var (id, text) in added) catalog.Add(id, text);
        using var b = new CpuSimdBackend();
        var expected = before.WithItems(EncoderItemVectors.Compute(Encoder, b, catalog).Values);
        for (int i = V; i < V + 2; i++)
            for (int c = 0; c < r.Scorer.Dim; c++)
                Assert.That(r.Scorer.ItemVector(i)[c], Is.EqualTo(expected.ItemVector(i)[c]).Within(1e-5), $"item {i}, column {c}");
        // Every item, the new ones included, is a candidate; the old items score as before.
        var all = r.TopK(["m1"], null, V + 1);
        Assert.That(all.Select(x => x.Id), Does.Contain("new-a").And.Contain("new-b"));
        var oldScores = ServingTestUtil.Scores(before, [1], [1]);
        var newScores = ServingTestUtil.Scores(r.Scorer, [1], [1]);
        Assert.That(newScores[..V], Is.EqualTo(oldScores));
    }

    [Test]
    public void AddItemsRefusesDuplicatesUnreadableTextsAndAMissingEncoder()
    {
        var r = WithEncoder();
        int V = r.ItemCount;
        Assert.That(() => r.AddItems([("m3", "Heat (1995)"), ("x", "Alien (1979)"), ("x", "Up (2009)")]),
            Throws.ArgumentException.With.Message.Contains("2 duplicate ids").And.Message.Contains("'m3', 'x'"));
        Assert.That(() => r.AddItems([("ok", "Heat (1995)"), ("blank", "   ")]), Throws.ArgumentException.With.Message.Contains("texts[1] (\"   \") tokenises to nothing"));
        Assert.That(() => r.AddItems([("ctl", "\u0001\u0002")]), Throws.ArgumentException.With.Message.Contains("tokenises to nothing"));
        Assert.That(r.ItemCount, Is.EqualTo(V), "a refused AddItems changes nothing");
        var noEncoder = new CatalogRecommender(r.Scorer, Enumerable.Range(0, V).Select(r.ItemId).ToArray());
        Assert.That(() => noEncoder.AddItems([("a", "Heat (1995)")]), Throws.InvalidOperationException.With.Message.Contains("no encoder"));
        // An encoder of another width than the model's is refused by name.
        var synthetic = new CatalogRecommender(TowerScorer.Random(3, 7), ["a", "b", "c"], null, Encoder);
        Assert.That(() => synthetic.AddItems([("d", "Heat (1995)")]), Throws.ArgumentException.With.Message.Contains("makes 32-wide vectors but the model was trained on 7-wide ones"));
    }

    [Test]
    public void CallsDuringAddItemsSeeTheOldOrTheNewCatalogue()
    {
        var r = WithEncoder();
        int V = r.ItemCount;
        var errors = new System.Collections.Concurrent.ConcurrentBag<string>();
        using var stop = new ManualResetEventSlim();
        var readers = Enumerable.Range(0, 3).Select(t => new Thread(() =>
        {
            var top = new int[V];
            while (!stop.IsSet)
            {
                var recs = r.TopK(["m0", "m2"], [1, 0], V - 2);
                if (recs.Length != V - 2 || recs.Any(x => x.Id != r.ItemId(x.Item))) errors.Add($"thread {t}: {recs.Length} items");
                int n = r.TopK([0, 2], [1, 0], V - 2, top);
                if (n != V - 2) errors.Add($"thread {t}: {n} items by index");
            }
        })).ToList();
        readers.ForEach(x => x.Start());
        r.AddItems([("late-1", "Heat (1995)"), ("late-2", "Alien (1979) | Horror")]);
        r.AddItems([("late-3", "Up (2009)")]);
        stop.Set();
        readers.ForEach(x => x.Join());
        Assert.That(errors, Is.Empty);
        Assert.That(r.ItemCount, Is.EqualTo(V + 3));
    }

    [Test]
    public void SaveAndLoadKeepTheAddedItems()
    {
        var r = WithEncoder();
        r.AddItems([("late", "Heat (1995)")]);
        string p = Path.Combine(_root, "served.frts");
        r.Save(p, "info");
        var back = CatalogRecommender.Load(p, Encoder);
        Assert.That(back.ItemCount, Is.EqualTo(r.ItemCount));
        Assert.That(back.IndexOf("late"), Is.EqualTo(r.ItemCount - 1));
        Assert.That(back.TopK(["m1"], null, 5), Is.EqualTo(r.TopK(["m1"], null, 5)));
        r.Scorer.Save(p);
        Assert.That(() => CatalogRecommender.Load(p), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("saved without its catalogue's item ids"));
    }
}
