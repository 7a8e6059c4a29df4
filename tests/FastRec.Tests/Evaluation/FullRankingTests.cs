// Full-ranking metrics against hand-computed values: candidates, ties (straddling the cut, several relevant, all equal),
// sklearn's tie-averaged NDCG, MRR, skipped users, capped K, item mask, relevant filters, sampled variant, threads.
using FastRec.Engine.Evaluation;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Data;
using static FastRec.Tests.Evaluation.EvalTestUtil;

namespace FastRec.Tests.Evaluation;

[NonParallelizable] // one test changes CpuParallel.Threads
public class FullRankingTests
{
    private static readonly double D2 = 1 / Math.Log2(3), D4 = 0.5, D5 = 1 / Math.Log2(5);

    // User a: history = train {0 (pos), 1 (neg)} + validation {2}; test = 3 (pos), 1 (pos, re-rated), 4 (neg).
    // Candidates = {0..9} − {0, 1, 2} + {1, 3, 4} = {1, 3, 4, 5, 6, 7, 8, 9} (8); relevant = {3, 1}.
    private static Row[] ScenarioA() => [Train("a", 0), Train("a", 1, 0), Val("a", 2), Test("a", 3), Test("a", 1), Test("a", 4, 0)];

    // History items 0 and 2 score highest: counted, they would push every relevant item down by 2.
    // Candidate order: 5 (9), 3 (8), 6 (7), 1 (6), 4 (5), 9 (3), 8 (2), 7 (1): relevant at ranks 2 and 4.
    private static readonly float[] ScoresA = [100, 6, 90, 8, 5, 9, 7, 1, 2, 3];

    private static FixedScorer ScorerA(float[]? scores = null) => FixedScorer.Rows("fixed", new() { ["a"] = scores ?? ScoresA });

    [Test]
    public void StrictOrderExcludesHistoryAndKeepsReRatedTestItems()
    {
        var w = Window(10, ScenarioA());
        var r = FullRanking.Evaluate(w, ScorerA(), new FullRankingOptions { Ks = [1, 2, 5], SampledNegatives = 0 });
        var o = r.Overall;
        Assert.That(r.Users.ToArray(), Is.EqualTo(new[] { w.U("a") }));
        Assert.That(r.Candidates[0], Is.EqualTo(8));
        Assert.That(o.Users, Is.EqualTo(1));
        Assert.That(o.UsersSkipped, Is.EqualTo(0));
        Assert.That(o.HitRate, Is.EqualTo(new[] { 0, 1, 1.0 }));
        Assert.That(o.Recall, Is.EqualTo(new[] { 0, 0.5, 1.0 })); // hits / |relevant| (RecBole)
        Assert.That(o.Ndcg[0], Is.EqualTo(0));
        Assert.That(o.Ndcg[1], Is.EqualTo(D2 / (1 + D2)).Within(1e-12));
        Assert.That(o.Ndcg[2], Is.EqualTo((D2 + D5) / (1 + D2)).Within(1e-12)); // re-rated item 1 found at rank 4
        Assert.That(o.Mrr, Is.EqualTo(0.5).Within(1e-12));
        Assert.That(o.Sampled, Is.Null);
        Assert.That(r.Notes, Is.Empty);
    }

    [Test]
    public void AllEqualScoresGiveTheRandomRankingExpectation()
    {
        // 12 items, history {0, 1}: n = 10 candidates, one relevant (5), every score 0.5.
        var w = Window(12, [Train("c", 0), Val("c", 1), Test("c", 5)]);
        var r = FullRanking.Evaluate(w, new FixedScorer("const", (_, _) => 0.5f), new FullRankingOptions { Ks = [1, 3, 10], SampledNegatives = 0 });
        var o = r.Overall;
        Assert.That(o.HitRate[0], Is.EqualTo(0.1).Within(1e-12)); // HR@K = K / n
        Assert.That(o.HitRate[1], Is.EqualTo(0.3).Within(1e-12));
        Assert.That(o.HitRate[2], Is.EqualTo(1.0).Within(1e-12));
        Assert.That(o.Recall[1], Is.EqualTo(0.3).Within(1e-12));
        Assert.That(o.Ndcg[1], Is.EqualTo((1 + D2 + D4) / 10).Within(1e-12));
        double harmonic = Enumerable.Range(1, 10).Sum(x => 1.0 / x);
        Assert.That(o.Mrr, Is.EqualTo(harmonic / 10).Within(1e-12)); // E[1/rank], rank uniform on 1..10
    }

    [Test]
    public void TieGroupStraddlingTheCut()
    {
        // Item 0 above (not relevant), then a tie of four {1, 2, 3, 4} holding the relevant item 2, then item 5.
        // K = 3 leaves 2 of the 4 tied slots inside the cut.
        var w = Window(6, [.. Filler(), Test("d", 2)]);
        var r = FullRanking.Evaluate(w, FixedScorer.Rows("s", new() { ["d"] = [5, 3, 3, 3, 3, 1] }), new FullRankingOptions { Ks = [1, 3, 6], SampledNegatives = 0 });
        var o = r.Overall;
        Assert.That(r.Candidates[0], Is.EqualTo(6));
        Assert.That(o.HitRate, Is.EqualTo(new[] { 0, 0.5, 1.0 }).Within(1e-12));
        Assert.That(o.Recall, Is.EqualTo(new[] { 0, 0.5, 1.0 }).Within(1e-12));
        Assert.That(o.Ndcg[1], Is.EqualTo((D2 + D4) / 4).Within(1e-12));          // ranks 2, 3 of the group's 2..5
        Assert.That(o.Ndcg[2], Is.EqualTo((D2 + D4 + 1 / Math.Log2(5) + 1 / Math.Log2(6)) / 4).Within(1e-12));
        Assert.That(o.Mrr, Is.EqualTo((1.0 / 2 + 1.0 / 3 + 1.0 / 4 + 1.0 / 5) / 4).Within(1e-12));
    }

    [Test]
    public void SeveralRelevantItemsInOneTieGroup()
    {
        // A tie of four {0..3} at the top holds two relevant items (1, 3); item 4 is last.
        var w = Window(5, [.. Filler(), Test("e", 1), Test("e", 3)]);
        var r = FullRanking.Evaluate(w, FixedScorer.Rows("s", new() { ["e"] = [0, 0, 0, 0, -1] }), new FullRankingOptions { Ks = [1, 2], SampledNegatives = 0 });
        var o = r.Overall;
        // HR@1: P(a relevant item first) = 2/4. HR@2 = 1 − C(2,2)/C(4,2) = 5/6 (hypergeometric).
        Assert.That(o.HitRate[0], Is.EqualTo(0.5).Within(1e-12));
        Assert.That(o.HitRate[1], Is.EqualTo(5.0 / 6).Within(1e-12));
        // E[hits@1] = 2·1/4, recall = 1/4; E[hits@2] = 2·2/4 = 1, recall = 1/2.
        Assert.That(o.Recall, Is.EqualTo(new[] { 0.25, 0.5 }).Within(1e-12));
        // NDCG@1 = (2/4)·1 / 1; NDCG@2 = (2/4)(1 + D2) / (1 + D2).
        Assert.That(o.Ndcg, Is.EqualTo(new[] { 0.5, 0.5 }).Within(1e-12));
        // First relevant rank over the 6 equally likely position pairs: {1,x}×3 -> 1, {2,3},{2,4} -> 1/2, {3,4} -> 1/3.
        Assert.That(o.Mrr, Is.EqualTo(13.0 / 18).Within(1e-12));
    }

    [Test]
    public void NdcgFollowsSklearnTieAveraging()
    {
        // sklearn ndcg_score([[1, 1, 0, 1, 0]], [[.9, .5, .5, .5, .1]], k=3, ignore_ties=False): the tie group {1, 2, 3}
        // has mean gain 2/3 at each of its positions 2..4; positions 2 and 3 are inside k.
        // DCG = 1 + (2/3)(1/log2 3 + 1/log2 4); IDCG@3 = 1 + 1/log2 3 + 1/log2 4.
        var w = Window(5, [.. Filler(), Test("f", 0), Test("f", 1), Test("f", 3), Test("f", 2, 0)]);
        var r = FullRanking.Evaluate(w, FixedScorer.Rows("s", new() { ["f"] = [0.9f, 0.5f, 0.5f, 0.5f, 0.1f] }), new FullRankingOptions { Ks = [3], SampledNegatives = 0 });
        Assert.That(r.Overall.Ndcg[0], Is.EqualTo((1 + 2.0 / 3 * (D2 + D4)) / (1 + D2 + D4)).Within(1e-12));
        Assert.That(r.Overall.HitRate[0], Is.EqualTo(1.0));
        Assert.That(r.Overall.Recall[0], Is.EqualTo((1 + 2 * 2.0 / 3) / 3).Within(1e-12));
        Assert.That(r.Overall.Mrr, Is.EqualTo(1.0));
    }

    [Test]
    public void EveryMetricEqualsTheMeanOverAllTieOrders()
    {
        for (ulong seed = 1; seed <= 25; seed++)
        {
            int n = 2 + (int)(Rng.Hash(seed, 999) % 6);
            var s = new float[n]; var rel = new bool[n];
            for (int i = 0; i < n; i++)
            {
                s[i] = (int)(Rng.Uniform(seed + 50, (ulong)i) * 3) / 3f; // 3 distinct values: many ties
                rel[i] = Rng.Uniform(seed, (ulong)i) < 0.4f;
            }
            rel[(int)(seed % (ulong)n)] = true;
            var rows = Filler().Concat(Enumerable.Range(0, n).Select(i => Test("x", i, rel[i] ? 1 : 0))).ToArray();
            var w = Window(n, rows);
            int[] ks = [.. Enumerable.Range(1, n)];
            var r = FullRanking.Evaluate(w, FixedScorer.Rows("s", new() { ["x"] = s }), new FullRankingOptions { Ks = ks, SampledNegatives = 0 });
            var oracle = Oracle(s, rel, ks);
            for (int q = 0; q < ks.Length; q++)
            {
                Assert.That(r.Overall.HitRate[q], Is.EqualTo(oracle.Hr[q]).Within(1e-12), $"seed {seed} HR@{ks[q]}");
                Assert.That(r.Overall.Recall[q], Is.EqualTo(oracle.Recall[q]).Within(1e-12), $"seed {seed} Recall@{ks[q]}");
                Assert.That(r.Overall.Ndcg[q], Is.EqualTo(oracle.Ndcg[q]).Within(1e-12), $"seed {seed} NDCG@{ks[q]}");
            }
            Assert.That(r.Overall.Mrr, Is.EqualTo(oracle.Mrr).Within(1e-12), $"seed {seed} MRR");
        }
    }

    /// <summary>Mean HR, Recall, NDCG at each K and MRR over every ordering consistent with the scores (one user, every
    /// item a candidate).</summary>
    private static (double[] Hr, double[] Recall, double[] Ndcg, double Mrr) Oracle(float[] s, bool[] rel, int[] ks)
    {
        int n = s.Length, R = rel.Count(x => x), orders = 0;
        var hr = new double[ks.Length]; var recall = new double[ks.Length]; var ndcg = new double[ks.Length]; double mrr = 0;
        foreach (var p in Metrics.RankingTests.Permutations([.. Enumerable.Range(0, n)], 0))
        {
            bool sorted = true;
            for (int i = 0; i + 1 < n; i++) sorted &= s[p[i]] >= s[p[i + 1]];
            if (!sorted) continue;
            orders++;
            int first = Array.FindIndex(p, i => rel[i]);
            mrr += 1.0 / (first + 1);
            for (int q = 0; q < ks.Length; q++)
            {
                int k = ks[q], hits = 0; double dcg = 0, idcg = 0;
                for (int r = 0; r < k; r++) if (rel[p[r]]) { hits++; dcg += 1 / Math.Log2(r + 2); }
                for (int r = 0; r < Math.Min(k, R); r++) idcg += 1 / Math.Log2(r + 2);
                hr[q] += hits > 0 ? 1 : 0; recall[q] += (double)hits / R; ndcg[q] += dcg / idcg;
            }
        }
        for (int q = 0; q < ks.Length; q++) { hr[q] /= orders; recall[q] /= orders; ndcg[q] /= orders; }
        return (hr, recall, ndcg, mrr / orders);
    }

    [Test]
    public void UntiedScoresMatchANaiveSortOverExplicitCandidates()
    {
        var (w, _) = RandomCase(users: 50, items: 40);
        // Per user a permutation of 0..39 (7919 is prime to 40): no ties, so a plain sort is the truth.
        var scorer = new FixedScorer("perm", (u, i) => (i * 7919 + int.Parse(u[1..]) * 31) % 40);
        var mask = Enumerable.Range(0, 40).Select(i => Rng.Uniform(77, (ulong)i) < 0.6f).ToArray();
        foreach (var m in new[] { null, mask })
        {
            int[] ks = [1, 5, 10];
            var r = FullRanking.Evaluate(w, scorer, new FullRankingOptions { Ks = ks, ItemMask = m, SampledNegatives = 0 });
            for (int p = 0; p < r.Users.Length; p++)
            {
                int u = r.Users[p];
                string id = w.UserIds[u];
                var history = w.HistoryBeforeTest(u).Items.ToArray().ToHashSet();
                int[] testItemRows = w.TestRows(u).Items.ToArray();
                float[] testLabels = w.TestRows(u).Labels.ToArray();
                var testItems = testItemRows.ToHashSet();
                var relevant = testItemRows.Where((i, j) => testLabels[j] >= 0.5f && (m is null || m[i])).ToHashSet();
                var candidates = Enumerable.Range(0, 40).Where(i => (m is null || m[i]) && (!history.Contains(i) || testItems.Contains(i)))
                    .OrderByDescending(i => (i * 7919 + int.Parse(id[1..]) * 31) % 40).ToList();
                Assert.That(r.Candidates[p], Is.EqualTo(candidates.Count), $"user {id} mask {m is not null}");
                if (relevant.Count == 0) { Assert.That(r.PerUser(RankingMetric.Mrr)[p], Is.NaN); continue; }
                var ranks = candidates.Select((item, at) => (item, rank: at + 1)).Where(x => relevant.Contains(x.item)).Select(x => x.rank).ToArray();
                Assert.That(r.PerUser(RankingMetric.Mrr)[p], Is.EqualTo(1.0 / ranks.Min()).Within(1e-12), $"user {id}");
                foreach (int k in ks)
                {
                    int hits = ranks.Count(x => x <= k);
                    double dcg = ranks.Where(x => x <= k).Sum(x => 1 / Math.Log2(x + 1));
                    double idcg = Enumerable.Range(1, Math.Min(k, relevant.Count)).Sum(x => 1 / Math.Log2(x + 1));
                    Assert.That(r.PerUser(RankingMetric.HitRate, k)[p], Is.EqualTo(hits > 0 ? 1.0 : 0.0), $"user {id} HR@{k}");
                    Assert.That(r.PerUser(RankingMetric.Recall, k)[p], Is.EqualTo((double)hits / relevant.Count).Within(1e-12), $"user {id} Recall@{k}");
                    Assert.That(r.PerUser(RankingMetric.Ndcg, k)[p], Is.EqualTo(dcg / idcg).Within(1e-12), $"user {id} NDCG@{k}");
                }
            }
            Assert.That(r.Overall.Users, Is.GreaterThan(20));
        }
    }

    [Test]
    public void UserWithoutTestPositiveIsSkippedAndCounted()
    {
        var w = Window(10, [.. ScenarioA(), Train("b", 5), Test("b", 6, 0)]);
        Assert.That(w.TestUsers.ToArray(), Is.EqualTo(new[] { w.U("a") }));
        var r = FullRanking.Evaluate(w, ScorerA(), new FullRankingOptions { Ks = [2], Users = [w.U("a"), w.U("b")], SampledNegatives = 0 });
        Assert.That(r.Overall.Users, Is.EqualTo(1));
        Assert.That(r.Overall.UsersSkipped, Is.EqualTo(1));
        Assert.That(r.Overall.Ndcg[0], Is.EqualTo(D2 / (1 + D2)).Within(1e-12)); // b does not dilute the mean
        var perUser = r.PerUser(RankingMetric.Ndcg, 2);
        Assert.That(perUser[0], Is.EqualTo(D2 / (1 + D2)).Within(1e-12));
        Assert.That(perUser[1], Is.NaN);
        Assert.That(r.RelevantCounts(), Is.EqualTo(new[] { 2, 0 }));
        Assert.That(r.Notes, Has.Some.Contains("1 of 2 users have no relevant"));
    }

    [Test]
    public void KLargerThanTheCatalogueIsCappedAndSaid()
    {
        var w = Window(10, ScenarioA());
        var r = FullRanking.Evaluate(w, ScorerA(), new FullRankingOptions { Ks = [5, 50], SampledNegatives = 0 });
        Assert.That(r.RequestedKs, Is.EqualTo(new[] { 5, 50 }));
        Assert.That(r.Ks, Is.EqualTo(new[] { 5, 10 }));
        Assert.That(r.Notes, Has.Some.Contains("K = 50 exceeds the 10 items of the candidate universe; capped to 10"));
        // 8 candidates < 10: the user's whole list is the top 10.
        Assert.That(r.Overall.UsersBelowK, Is.EqualTo(new[] { 0, 1 }));
        Assert.That(r.Notes, Has.Some.Contains("1 users have fewer than 10 candidates"));
        Assert.That(r.Overall.Recall[1], Is.EqualTo(1.0));
        Assert.That(r.Overall.Ndcg[1], Is.EqualTo((D2 + D5) / (1 + D2)).Within(1e-12));
        Assert.That(r.PerUser(RankingMetric.Recall, 50)[0], Is.EqualTo(1.0)); // the requested K also finds the column
    }

    [Test]
    public void ItemMaskRestrictsTheUniverse()
    {
        // Universe {1, 4, 5, 6, 7}: a's candidates are all five (item 1 is history but a test item); relevant = {1}
        // (3 is outside). g has its only positive (8) outside: skipped.
        var w = Window(10, [.. ScenarioA(), Test("g", 8)]);
        var mask = new bool[10];
        foreach (int i in new[] { 1, 4, 5, 6, 7 }) mask[i] = true;
        var r = FullRanking.Evaluate(w, ScorerA(), new FullRankingOptions { Ks = [2, 5], ItemMask = mask, SampledNegatives = 0 });
        Assert.That(r.UniverseSize, Is.EqualTo(5));
        Assert.That(r.Users.ToArray(), Is.EqualTo(new[] { w.U("a"), w.U("g") }));
        Assert.That(r.Candidates.ToArray(), Is.EqualTo(new[] { 5, 5 }));
        Assert.That(r.Overall.Users, Is.EqualTo(1));
        Assert.That(r.Overall.UsersSkipped, Is.EqualTo(1));
        // Order in the universe: 5 (9), 6 (7), 1 (6), 4 (5), 7 (1): item 1 at rank 3.
        Assert.That(r.Overall.HitRate, Is.EqualTo(new[] { 0, 1.0 }));
        Assert.That(r.Overall.Ndcg[1], Is.EqualTo(0.5).Within(1e-12));
        Assert.That(r.Overall.Mrr, Is.EqualTo(1.0 / 3).Within(1e-12));
    }

    [Test]
    public void RelevantFiltersRestrictTheRelevantItemsAndKeepTheCandidates()
    {
        var w = Window(10, ScenarioA());
        var only1 = new bool[10]; only1[1] = true;
        var only9 = new bool[10]; only9[9] = true;
        var r = FullRanking.Evaluate(w, ScorerA(), new FullRankingOptions
        {
            Ks = [2, 5], SampledNegatives = 0,
            RelevantFilters = [new Slice("only i1", SliceKind.Item, only1), new Slice("only i9", SliceKind.Item, only9)],
        });
        Assert.That(r.Restrictions.Select(x => x.Name), Is.EqualTo(new[] { "all", "only i1", "only i9" }));
        var f = r.Restrictions[1];
        // Item 3 is now a non-relevant candidate still ranked above: item 1 at rank 4 of the same 8 candidates.
        Assert.That(f.HitRate, Is.EqualTo(new[] { 0, 1.0 }));
        Assert.That(f.Recall, Is.EqualTo(new[] { 0, 1.0 }));
        Assert.That(f.Ndcg[1], Is.EqualTo(D5).Within(1e-12));
        Assert.That(f.Mrr, Is.EqualTo(0.25).Within(1e-12));
        Assert.That(r.Restrictions[2].Users, Is.EqualTo(0));
        Assert.That(r.Restrictions[2].UsersSkipped, Is.EqualTo(1));
        Assert.That(r.Restrictions[2].Ndcg[0], Is.NaN);
        Assert.That(r.Overall.Mrr, Is.EqualTo(0.5).Within(1e-12)); // unchanged by the filters
    }

    [Test]
    public void SampledVariantRanksEachPositiveAmongDrawnNegatives()
    {
        var w = Window(10, ScenarioA());
        var options = new FullRankingOptions { Ks = [2], SampledNegatives = 100, RelevantFilters = [new Slice("only i1", SliceKind.Item, [.. Enumerable.Range(0, 10).Select(i => i == 1)])] };
        // History (0, 2) and the other positive score highest: drawn as negatives they would beat item 1.
        float[] top = [100, 40, 90, 50, 5, 9, 7, 1, 2, 3];
        var r = FullRanking.Evaluate(w, ScorerA(top), options);
        var s = r.Overall.Sampled!;
        Assert.That((s.Negatives, s.K, s.Pairs, s.PairsSkipped), Is.EqualTo((100, 10, 2L, 0L)));
        Assert.That(s.HitRate, Is.EqualTo(1.0));
        Assert.That(s.Ndcg, Is.EqualTo(1.0));
        Assert.That(r.Restrictions[1].Sampled!.Pairs, Is.EqualTo(1));
        Assert.That(r.Notes, Has.Some.Contains("sampled metrics").And.Contains("not comparable with full ranking"));

        // Every score equal: the positive is uniform among 101: HR@10 = 10/101, NDCG@10 = D(10)/101.
        var flat = FullRanking.Evaluate(w, new FixedScorer("flat", (_, _) => 1f), options).Overall.Sampled!;
        double d10 = Enumerable.Range(0, 10).Sum(i => 1 / Math.Log2(i + 2));
        Assert.That(flat.HitRate, Is.EqualTo(10.0 / 101).Within(1e-12));
        Assert.That(flat.Ndcg, Is.EqualTo(d10 / 101).Within(1e-12));

        // Positives below every negative: nothing in the top 10.
        var bottom = FullRanking.Evaluate(w, ScorerA([100, -6, 90, -5, 5, 9, 7, 1, 2, 3]), options).Overall.Sampled!;
        Assert.That((bottom.HitRate, bottom.Ndcg), Is.EqualTo((0.0, 0.0)));

        // A fixed seed repeats the draws; another seed draws other negatives.
        var (rw, rs) = RandomCase(users: 40, items: 37);
        var seeded = new FullRankingOptions { Ks = [5], SampledNegatives = 5 };
        var first = FullRanking.Evaluate(rw, rs, seeded).Overall.Sampled!;
        Assert.That(FullRanking.Evaluate(rw, rs, seeded).Overall.Sampled, Is.EqualTo(first));
        Assert.That(FullRanking.Evaluate(rw, rs, seeded with { Seed = 7 }).Overall.Sampled!.Ndcg, Is.Not.EqualTo(first.Ndcg));
        Assert.That(first.Ndcg, Is.GreaterThan(0).And.LessThan(1));
        Assert.That(FullRanking.Evaluate(rw, rs, seeded with { SampledNegatives = 0 }).Overall.Sampled, Is.Null);
    }

    [Test]
    public void ResultsDoNotDependOnThreadsOrBatchSize()
    {
        int saved = CpuParallel.Threads;
        try
        {
            var (w, scorer) = RandomCase(users: 60, items: 37);
            var options = Slices.WithItemSlices(w, new FullRankingOptions { Ks = [1, 5, 10], SampledNegatives = 20 });
            CpuParallel.Threads = 1;
            var one = FullRanking.Evaluate(w, scorer, options with { BatchUsers = 7 });
            Assert.That(scorer.Batches.Max(), Is.LessThanOrEqualTo(7));
            Assert.That(scorer.Batches.Sum(), Is.EqualTo(w.TestUsers.Length));
            CpuParallel.Threads = 2;
            var two = FullRanking.Evaluate(w, scorer, options);
            Assert.That(one.Overall.Users, Is.GreaterThan(30));
            for (int f = 0; f < one.Restrictions.Count; f++)
            {
                foreach (var m in new[] { RankingMetric.HitRate, RankingMetric.Recall, RankingMetric.Ndcg, RankingMetric.Mrr })
                    foreach (int k in one.Ks)
                        Assert.That(two.PerUser(m, k, f), Is.EqualTo(one.PerUser(m, k, f)), $"{m}@{k} restriction {f}");
                Assert.That(two.Restrictions[f].Ndcg, Is.EqualTo(one.Restrictions[f].Ndcg));
                Assert.That(two.Restrictions[f].Sampled, Is.EqualTo(one.Restrictions[f].Sampled));
            }
        }
        finally { CpuParallel.Threads = saved; }
    }

    /// <summary>A random window (train / validation / test rows with mixed labels) and a scorer with many ties.</summary>
    internal static (EvalWindow, FixedScorer) RandomCase(int users, int items, ulong seed = 3)
    {
        var rows = new List<Row>();
        for (int u = 0; u < users; u++)
            for (int j = 0; j < 6; j++)
            {
                int item = (int)(Rng.Hash(seed, (ulong)(u * 100 + j)) % (ulong)items);
                float label = Rng.Uniform(seed + 1, (ulong)(u * 100 + j)) < 0.6f ? 1 : 0;
                rows.Add(new Row($"u{u}", item, label, j < 3 ? SplitPart.Train : j == 3 ? SplitPart.Validation : SplitPart.Test));
            }
        var w = Window(items, rows);
        var scorer = new FixedScorer("random", (u, i) => (int)(Rng.Uniform(seed + 2, ulong.Parse(u[1..]) * 1000 + (ulong)i) * 4) / 4f);
        return (w, scorer);
    }

    [Test]
    public void NonFiniteOrUnwrittenScoresAreErrors()
    {
        var w = Window(10, ScenarioA());
        DataAssert.Throws<InvalidDataException>(() => FullRanking.Evaluate(w, new FixedScorer("nan", (_, i) => i == 4 ? float.NaN : 1)),
            "scorer 'nan'", "item 'i4' (index 4)", "NaN", "user 'a'", "must be finite");
        DataAssert.Throws<InvalidDataException>(() => FullRanking.Evaluate(w, new FixedScorer("inf", (_, i) => i == 9 ? float.PositiveInfinity : 1)),
            "item 'i9' (index 9)", "Infinity");
        DataAssert.Throws<InvalidDataException>(() => FullRanking.Evaluate(w, new LazyScorer()), "scorer 'lazy'", "unwritten");
    }

    private sealed class LazyScorer : IItemScorer
    {
        public string Name => "lazy";
        public void ScoreItems(EvalWindow window, ReadOnlySpan<int> users, Span<float> scores) { }
    }

    [Test]
    public void BadOptionsAreErrors()
    {
        var w = Window(10, ScenarioA());
        var s = ScorerA();
        DataAssert.Throws<ArgumentException>(() => FullRanking.Evaluate(w, s, new FullRankingOptions { Ks = [] }), "Ks is empty");
        DataAssert.Throws<ArgumentOutOfRangeException>(() => FullRanking.Evaluate(w, s, new FullRankingOptions { Ks = [10, 0] }), "every K must be >= 1, got 0");
        DataAssert.Throws<ArgumentException>(() => FullRanking.Evaluate(w, s, new FullRankingOptions { ItemMask = new bool[3] }), "ItemMask has 3 flags but the catalogue has 10");
        DataAssert.Throws<ArgumentException>(() => FullRanking.Evaluate(w, s, new FullRankingOptions { ItemMask = new bool[10] }), "selects no item");
        DataAssert.Throws<ArgumentOutOfRangeException>(() => FullRanking.Evaluate(w, s, new FullRankingOptions { Users = [99] }), "Users[0] = 99 is outside [0, 1)");
        DataAssert.Throws<ArgumentException>(() => FullRanking.Evaluate(w, s, new FullRankingOptions { Users = [0, 0] }), "Users[1] = 0 ('a') is listed twice");
        DataAssert.Throws<ArgumentException>(() => FullRanking.Evaluate(w, s, new FullRankingOptions { RelevantFilters = [new Slice("u", SliceKind.User, new bool[1])] }),
            "relevant filter 'u' selects users; relevant filters must be item slices");
        DataAssert.Throws<ArgumentOutOfRangeException>(() => FullRanking.Evaluate(w, s, new FullRankingOptions { SampledNegatives = -1 }), "SampledNegatives must be >= 0");
        var r = FullRanking.Evaluate(w, s, new FullRankingOptions { Ks = [2] });
        DataAssert.Throws<ArgumentException>(() => r.PerUser(RankingMetric.Ndcg, 7), "K = 7 was not evaluated");
    }
}
