// Slices: per-example metrics per item / user slice against hand values, undefined metrics as NaN ("n/a"), and
// full-ranking metrics per slice from one scoring pass.
using FastRec.Cli.Reporting;
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Tests.Data;
using static FastRec.Tests.Evaluation.EvalTestUtil;

namespace FastRec.Tests.Evaluation;

public class SlicesTests
{
    // Train counts: item 0 -> 0 (cold), item 1 -> 2 (1-4), item 2 -> 5 (>= 5); items 3..7 cold.
    // History before test: n -> 0 (new), m -> 2 (1-3), w -> 6 (warm).
    private static RecDataset Data() => Dataset(8,
    [
        Train("w", 2), Train("w", 2), Train("w", 2), Train("w", 2), Train("w", 2), Train("m", 1), Train("m", 1), Val("w", 3),
        Test("n", 0), Test("n", 2, 0), Test("m", 1), Test("m", 0, 0), Test("m", 2), Test("w", 2, 0), Test("w", 1, 0), Test("w", 0),
    ]);

    // Aligned with the test rows above.
    private static readonly float[] P = [0.8f, 0.3f, 0.4f, 0.6f, 0.9f, 0.2f, 0.5f, 0.7f];

    [Test]
    public void SliceDefinitionsFollowTheWindowCounts()
    {
        var w = EvalWindow.FromDataset(Data());
        var items = Slices.ItemSlices(w);
        Assert.That(items[0].Members, Is.EqualTo(new[] { true, false, false, true, true, true, true, true }));
        Assert.That(items[1].Members, Is.EqualTo(new[] { false, true, false, false, false, false, false, false }));
        Assert.That(items[2].Members, Is.EqualTo(new[] { false, false, true, false, false, false, false, false }));
        var users = Slices.UserSlices(w);
        Assert.That(users.Select(s => s.Members[w.U("n")]), Is.EqualTo(new[] { true, false, false }));
        Assert.That(users.Select(s => s.Members[w.U("m")]), Is.EqualTo(new[] { false, true, false }));
        Assert.That(users.Select(s => s.Members[w.U("w")]), Is.EqualTo(new[] { false, false, true }));
    }

    [Test]
    public void PerExampleMetricsPerSlice()
    {
        var d = Data();
        var w = EvalWindow.FromDataset(d);
        var s = Slices.Compute(w, d.Test, P, minGaucUsers: 1);
        Assert.That(s.Select(x => x.Name), Is.EqualTo(new[]
        {
            "all", "items: cold (0 train)", "items: 1-4 train", "items: >= 5 train",
            "users: new (0 before test)", "users: 1-3 before test", "users: warm (>= 4 before test)",
        }));
        var all = s[0];
        Assert.That((all.Rows, all.Share, all.Positives), Is.EqualTo((8L, 1.0, 4L)));
        Assert.That(all.Auc, Is.EqualTo(14.0 / 16).Within(1e-12));
        // GAUC: n 1 over 2 rows, m 1/2 over 3, w 1 over 3.
        Assert.That(all.Gauc, Is.EqualTo((2 * 1 + 3 * 0.5 + 3 * 1) / 8).Within(1e-12));
        Assert.That(all.GaucUsers, Is.EqualTo(3));
        double ll = -(Math.Log(0.8) + Math.Log(0.7) + Math.Log(0.4) + Math.Log(0.4) + Math.Log(0.9) + Math.Log(0.8) + Math.Log(0.5) + Math.Log(0.7)) / 8;
        Assert.That(all.LogLoss, Is.EqualTo(ll).Within(1e-6));
        // rows and AUC per slice: cold {n0, m0, w0}: 1; 1-4 {m1, w1}: 0; >= 5 {n2, m2, w2}: 1; new 1; 1-3 0.5; warm 1.
        Assert.That(s.Skip(1).Select(x => x.Rows), Is.EqualTo(new long[] { 3, 2, 3, 2, 3, 3 }));
        Assert.That(s[1].Share, Is.EqualTo(3.0 / 8));
        Assert.That(s.Skip(1).Select(x => x.Auc), Is.EqualTo(new[] { 1, 0, 1, 1, 0.5, 1 }));
        Assert.That(s[5].Gauc, Is.EqualTo(0.5).Within(1e-12));
        Assert.That(s[1].Kind, Is.EqualTo(SliceKind.Item));
        Assert.That(s[4].Kind, Is.EqualTo(SliceKind.User));
    }

    [Test]
    public void UndefinedMetricsAreNaNAndPrintAsNotAvailable()
    {
        var d = Data();
        var w = EvalWindow.FromDataset(d);
        // Default minimum of 20 users: GAUC undefined everywhere here.
        var s = Slices.Compute(w, d.Test, P);
        Assert.That(s[0].Gauc, Is.NaN);
        Assert.That(s[0].GaucUsers, Is.EqualTo(3));
        // Without the cold rows: the cold slice is empty (no AUC, no log loss); "new" holds one negative row (one class).
        int[] keep = [1, 2, 4, 5, 6];
        var test = d.Test.Subset(keep);
        var sub = Slices.Compute(w, test, [.. keep.Select(i => P[i])], minGaucUsers: 1);
        var cold = sub[1];
        Assert.That((cold.Rows, cold.Share), Is.EqualTo((0L, 0.0)));
        Assert.That(cold.Auc, Is.NaN);
        Assert.That(cold.LogLoss, Is.NaN);
        Assert.That(cold.Gauc, Is.NaN);
        Assert.That(sub[4].Rows, Is.EqualTo(1));
        Assert.That(sub[4].Auc, Is.NaN);
        Assert.That(sub[4].LogLoss, Is.EqualTo(-Math.Log(0.7)).Within(1e-6));
        string table = EvaluationTables.SliceTable([("model", sub)], TableFormat.Markdown);
        Assert.That(table, Does.Contain("| items: cold (0 train) | 0 | 0.0 % | n/a | n/a | n/a |"));
        Assert.That(table, Does.Not.Contain("NaN"));
    }

    [Test]
    public void FullRankingPerSliceFromOneScoringPass()
    {
        var w = EvalWindow.FromDataset(Data());
        float[] s = [0.1f, 0.5f, 0.9f, 0.3f, 0.2f, 0f, -0.1f, -0.2f];
        var scorer = new FixedScorer("global", (_, i) => s[i]);
        var r = FullRanking.Evaluate(w, scorer, Slices.WithItemSlices(w, new FullRankingOptions { Ks = [1, 5], SampledNegatives = 0 }));
        Assert.That(scorer.Batches, Has.Count.EqualTo(1));
        var bySlice = Slices.Ranking(w, r);
        Assert.That(bySlice.Select(x => x.Name), Is.EqualTo(new[]
        {
            "all", "users: new (0 before test)", "users: 1-3 before test", "users: warm (>= 4 before test)",
            "items: cold (0 train)", "items: 1-4 train", "items: >= 5 train",
        }));
        // n: item 0 at rank 5 of 8; m: items 2, 1 at ranks 1, 2 of 8; w: history {2, 3} but 2 is a test item, so 3 is
        // excluded: item 0 at rank 4 of 7.
        int Candidates(string user) => r.Candidates[Array.IndexOf(r.Users.ToArray(), w.U(user))];
        Assert.That((Candidates("n"), Candidates("m"), Candidates("w")), Is.EqualTo((8, 8, 7)));
        Assert.That(bySlice[0].Mrr, Is.EqualTo((1.0 / 5 + 1 + 1.0 / 4) / 3).Within(1e-12));
        Assert.That(bySlice[1].Mrr, Is.EqualTo(1.0 / 5).Within(1e-12));
        Assert.That(bySlice[2].Mrr, Is.EqualTo(1.0).Within(1e-12));
        Assert.That(bySlice[3].Mrr, Is.EqualTo(1.0 / 4).Within(1e-12));
        Assert.That((bySlice[1].Users, bySlice[1].UsersSkipped), Is.EqualTo((1, 0)));
        // Cold relevant items: n (item 0, rank 5) and w (item 0, rank 4); m has none and is skipped.
        Assert.That(bySlice[4].Mrr, Is.EqualTo((1.0 / 5 + 1.0 / 4) / 2).Within(1e-12));
        Assert.That((bySlice[4].Users, bySlice[4].UsersSkipped), Is.EqualTo((2, 1)));
        Assert.That(bySlice[4].HitRate[1], Is.EqualTo(1.0));
        // 1-4 slice: m's item 1 at rank 2 (item 2, still a candidate, stays above).
        Assert.That(bySlice[5].Mrr, Is.EqualTo(0.5).Within(1e-12));
        // A user slice equals evaluating only its users.
        var warm = Slices.UserSlices(w)[2];
        var only = FullRanking.Evaluate(w, scorer, new FullRankingOptions { Ks = [1, 5], SampledNegatives = 0, Users = [w.U("w")] });
        Assert.That(bySlice[3].Ndcg, Is.EqualTo(only.Overall.Ndcg));
        Assert.That(r.Summarize(warm).Mrr, Is.EqualTo(only.Overall.Mrr));
    }

    [Test]
    public void BadInputsAreErrors()
    {
        var d = Data();
        var w = EvalWindow.FromDataset(d);
        DataAssert.Throws<ArgumentException>(() => Slices.Compute(w, d.Test, [0.5f, 0.5f, 0.5f]), "probabilities has 3 values but the test set has 8 rows");
        DataAssert.Throws<ArgumentException>(() => Slices.Compute(w, d.Test, [.. P.Select(p => p * 2)]), "is not a probability");
        var plain = FullRanking.Evaluate(w, new FixedScorer("c", (_, _) => 0), new FullRankingOptions { SampledNegatives = 0 });
        DataAssert.Throws<ArgumentException>(() => Slices.Ranking(w, plain), "evaluate with Slices.WithItemSlices");
        DataAssert.Throws<ArgumentException>(() => plain.Summarize(Slices.ItemSlices(w)[0]), "selects items; pass a user slice");
    }
}
