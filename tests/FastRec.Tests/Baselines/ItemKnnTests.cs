// ItemKNN and MostPopular on a hand-made case: similarities, pruning and tie order, full-ranking rows, leave-one-out.
using FastRec.Engine.Baselines;
using FastRec.Tests.Training;

namespace FastRec.Tests.Baselines;

public class ItemKnnTests
{
    // Items a = 0, b = 1, c = 2, d = 3. Training likes: u0 {a, b, c}, u1 {a, b}, u2 {b, c}; u2 dislikes d.
    // U_a = {0, 1}, U_b = {0, 1, 2}, U_c = {0, 2}, U_d = {}. u3 likes a in validation; the test asks u3 about b.
    internal static HandData Data(bool historyFeatures = false) => HandData.Build(4, 4,
        [(0, 0, 1), (1, 0, 1), (0, 1, 1), (1, 1, 1), (2, 1, 1), (0, 2, 1), (2, 2, 1), (2, 3, 0)],
        [(3, 0, 1)],
        [(3, 1, 1), (0, 3, 0)], historyFeatures);

    // With shrink 1: sim(a, b) = 2 / (√6 + 1), sim(a, c) = 1 / (√4 + 1) = 1/3, sim(b, c) = 2 / (√6 + 1) = sim(a, b).
    private static readonly float Sab = (float)(2 / (Math.Sqrt(6) + 1));
    private const float Sac = 1f / 3;

    [Test]
    public void SimilaritiesArePrunedWithTiesToTheLowerItem()
    {
        var d = Data();
        var k1 = ItemKnnBaseline.Fit(d.Window, neighbours: 1, shrink: 1);
        Assert.That(k1.NeighboursOf(0).Items, Is.EqualTo(new[] { 1 }), "a keeps b (sim(a,b) > sim(a,c))");
        Assert.That(k1.NeighboursOf(0).Similarities[0], Is.EqualTo(Sab).Within(1e-6f));
        Assert.That(k1.NeighboursOf(1).Items, Is.EqualTo(new[] { 0 }), "b: a and c tie, the lower index is kept");
        Assert.That(k1.NeighboursOf(2).Items, Is.EqualTo(new[] { 1 }));
        Assert.That(k1.NeighboursOf(3).Items, Is.Empty, "d has no like");
        var k2 = ItemKnnBaseline.Fit(d.Window, neighbours: 2, shrink: 1);
        Assert.That(k2.NeighboursOf(2).Items, Is.EqualTo(new[] { 1, 0 }), "most similar first");
        Assert.That(k2.NeighboursOf(2).Similarities[1], Is.EqualTo(Sac).Within(1e-6f));
    }

    [Test]
    public void FullRankingSumsTheLikedHistoryItemsRows()
    {
        var d = Data();
        var k1 = ItemKnnBaseline.Fit(d.Window, neighbours: 1, shrink: 1);
        // u3's history before the test window: a (liked in validation). Only b keeps a as a neighbour.
        Assert.That(HandData.Scores(k1, d.Window, 3), Is.EqualTo(new[] { 0, Sab, 0, 0 }).Within(1e-6f));
        // u0 liked a, b, c: s(a) = sim(b, a), s(b) = sim(a, b), s(c) = sim(b, c); d nothing.
        Assert.That(HandData.Scores(k1, d.Window, 0, 3), Is.EqualTo(new[] { Sab, Sab, Sab, 0, 0, Sab, 0, 0 }).Within(1e-6f));
        var k2 = ItemKnnBaseline.Fit(d.Window, neighbours: 2, shrink: 1);
        Assert.That(HandData.Scores(k2, d.Window, 3), Is.EqualTo(new[] { 0, Sab, Sac, 0 }).Within(1e-6f), "c keeps a with 2 neighbours");
    }

    [Test]
    public void PredictCalibratesTheSameScoreAndTrainingLikesAreLeftOut()
    {
        var d = Data();
        var m = ItemKnnBaseline.Fit(d.Window, neighbours: 2, shrink: 1);
        var p = m.Predict(d.Data.Test);
        Assert.That(p[0], Is.EqualTo((float)m.Probability(Sab)).Within(1e-6f), "(u3, b) after u3 liked a");
        Assert.That(p[1], Is.EqualTo((float)m.Probability(0)).Within(1e-6f), "(u0, d): d has no neighbour");
        // u0's training like of b (t = 20), history {a}: without it |U_b| = 2 and |U_a ∩ U_b| = 1: 1 / (√(2·2) + 1).
        var before = d.Window.Before(0, 20);
        Assert.That(m.RawScore(0, 1, before, leaveOut: true), Is.EqualTo(1.0 / 3).Within(1e-12));
        Assert.That(m.RawScore(0, 1, d.Window.Before(0, 20), leaveOut: false), Is.EqualTo(Sab).Within(1e-6));
        // The calibration's unpenalised intercept is at its optimum on the training rows: Σ (p − y) = 0 over them.
        double sum = 0;
        var rows = new List<(int U, int I, float Y, long T)>();
        for (int u = 0; u < 4; u++)
        {
            var t = d.Window.TrainRows(u);
            for (int r = 0; r < t.Count; r++) rows.Add((u, t.Items[r], t.Labels[r], t.Timestamps[r]));
        }
        foreach (var (u, i, y, ts) in rows)
        {
            bool leave = y >= 0.5f;   // no user likes an item twice here
            sum += m.Probability(m.RawScore(u, i, d.Window.Before(u, ts), leave)) - y;
        }
        Assert.That(sum, Is.EqualTo(0).Within(1e-5));
        Assert.That(m.Probability(1), Is.GreaterThan(m.Probability(0)), "more similar liked items, more likely");
    }

    [Test]
    public void MostPopularCountsDistinctLikers()
    {
        var d = Data();
        var m = MostPopularBaseline.Fit(d.Window);
        Assert.That(m.Likes.ToArray(), Is.EqualTo(new[] { 2, 3, 2, 0 }), "u3's validation like of a is not training");
        Assert.That(HandData.Scores(m, d.Window, 0, 3), Is.EqualTo(new float[] { 2, 3, 2, 0, 2, 3, 2, 0 }));
        Assert.That(m.RawScore(0, 1, d.Window.Before(0, 20), leaveOut: true), Is.EqualTo(Math.Log(3)).Within(1e-12), "b without u0: 2 likers");
        Assert.That(m.RawScore(3, 1, d.Window.Before(3, 90), leaveOut: false), Is.EqualTo(Math.Log(4)).Within(1e-12));
        Assert.That(m.Predict(d.Data.Test)[0], Is.EqualTo((float)m.Probability(Math.Log(4))).Within(1e-6f));
    }

    [Test]
    public void BadKnnArgumentsAreRefused()
    {
        var d = Data();
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => ItemKnnBaseline.Fit(d.Window, neighbours: 0), "neighbours must be >= 1");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => ItemKnnBaseline.Fit(d.Window, shrink: -1), "shrink");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => ItemKnnBaseline.Fit(d.Window, shrink: double.NaN), "shrink");
        var m = ItemKnnBaseline.Fit(d.Window);
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => m.NeighboursOf(4), "item index 4");
        TrainAssert.Throws<ArgumentException>(() => m.ScoreItems(d.Window, [0], new float[3]), "scores", "1 x 4");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => m.ScoreItems(d.Window, [7], new float[4]), "user index 7");
        var other = HandData.Build(4, 5, [(0, 0, 1), (1, 0, 1)], [(2, 0, 1)], [(3, 4, 1)]);
        TrainAssert.Throws<ArgumentException>(() => m.ScoreItems(other.Window, [0], new float[5]), "window", "5 items", "fitted on 4");
        TrainAssert.Throws<ArgumentException>(() => m.Predict(other.Data.Test), "do not share the window's users");
    }
}
