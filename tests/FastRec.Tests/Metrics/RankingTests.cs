// Recall@K, NDCG@K (ties averaged) and coverage@K against hand values and an all-tie-orders oracle.
using FastRec.Engine.Metrics;
using FastRec.Kernels;

namespace FastRec.Tests.Metrics;

public class RankingTests
{
    // user 0: a strict order; user 1: a three-way tie at the top; user 2: no positive (skipped, but counted in coverage).
    private static readonly float[] Y = [0, 1, 0, 1, 0, /**/ 1, 0, 0, 1, /**/ 0, 0];
    private static readonly float[] S = [0.9f, 0.8f, 0.7f, 0.6f, 0.5f, /**/ 0.5f, 0.5f, 0.5f, 0.2f, /**/ 0.4f, 0.3f];
    private static readonly int[] U = [0, 0, 0, 0, 0, /**/ 1, 1, 1, 1, /**/ 2, 2];
    private static readonly int[] I = [0, 1, 2, 3, 4, /**/ 5, 6, 7, 8, /**/ 0, 9];

    private static readonly double D2 = 1 / Math.Log2(3), D3 = 0.5, D4 = 1 / Math.Log2(5);

    [Test]
    public void AtTwo()
    {
        var r = UserMetrics.Ranking(Y, S, U, I, [2])[0];
        // user 0: hit at rank 2: recall 1/2, NDCG = D2 / (1 + D2). user 1: top 2 of a tie of three with one positive:
        // gain 1/3 per position -> hits 2/3, recall 1/3, DCG (1 + D2)/3, IDCG 1 + D2 -> NDCG 1/3.
        Assert.That(r.Recall, Is.EqualTo((0.5 + 1.0 / 3) / 2).Within(1e-12));
        Assert.That(r.Ndcg, Is.EqualTo((D2 / (1 + D2) + 1.0 / 3) / 2).Within(1e-12));
        Assert.That(r.Users, Is.EqualTo(2));
        Assert.That(r.UsersSkipped, Is.EqualTo(1));
        // top 2: {0,1}, {5,6} (tie broken by example order), {0,9} -> 5 of 10 distinct items.
        Assert.That(r.Coverage, Is.EqualTo(0.5));
    }

    [Test]
    public void AtOneAndAtTenAndCatalogDenominator()
    {
        var r = UserMetrics.Ranking(Y, S, U, I, [1, 10], itemCount: 20);
        Assert.That(r[0].Recall, Is.EqualTo((0 + 1.0 / 6) / 2).Within(1e-12));
        Assert.That(r[0].Ndcg, Is.EqualTo((0 + 1.0 / 3) / 2).Within(1e-12));
        Assert.That(r[0].Coverage, Is.EqualTo(2.0 / 20));
        Assert.That(r[1].Recall, Is.EqualTo(1.0).Within(1e-12));
        double user0 = (D2 + D4) / (1 + D2), user1 = ((1 + D2 + D3) / 3 + D4) / (1 + D2);
        Assert.That(r[1].Ndcg, Is.EqualTo((user0 + user1) / 2).Within(1e-12));
        Assert.That(r[1].Coverage, Is.EqualTo(10.0 / 20));
    }

    [Test]
    public void TieAveragingEqualsTheMeanOverAllTieOrders()
    {
        for (ulong seed = 1; seed <= 20; seed++)
        {
            int n = 2 + (int)(Rng.Hash(seed, 999) % 5);
            var y = new float[n]; var s = new float[n]; var u = new int[n]; var it = new int[n];
            for (int i = 0; i < n; i++)
            {
                y[i] = Rng.Uniform(seed, (ulong)i) < 0.5f ? 1 : 0; s[i] = (int)(Rng.Uniform(seed + 50, (ulong)i) * 3) / 3f; it[i] = i;
            }
            y[0] = 1;
            for (int k = 1; k <= n; k++)
            {
                var r = UserMetrics.Ranking(y, s, u, it, [k])[0];
                (double recall, double ndcg) = Oracle(y, s, k);
                Assert.That(r.Recall, Is.EqualTo(recall).Within(1e-12), $"seed {seed} k {k}");
                Assert.That(r.Ndcg, Is.EqualTo(ndcg).Within(1e-12), $"seed {seed} k {k}");
            }
        }
    }

    /// <summary>Mean Recall@K and NDCG@K over every ordering consistent with the scores (one user).</summary>
    private static (double, double) Oracle(float[] y, float[] s, int k)
    {
        int n = y.Length, positives = (int)y.Sum();
        double ideal = 0;
        for (int r = 0; r < Math.Min(positives, k); r++) ideal += 1 / Math.Log2(r + 2);
        double recallSum = 0, ndcgSum = 0; int orders = 0;
        foreach (var p in Permutations(Enumerable.Range(0, n).ToArray(), 0))
        {
            bool sorted = true;
            for (int i = 0; i + 1 < n; i++) sorted &= s[p[i]] >= s[p[i + 1]];
            if (!sorted) continue;
            double hits = 0, dcg = 0;
            for (int r = 0; r < Math.Min(k, n); r++) { hits += y[p[r]]; dcg += y[p[r]] / Math.Log2(r + 2); }
            recallSum += hits / positives; ndcgSum += dcg / ideal; orders++;
        }
        return (recallSum / orders, ndcgSum / orders);
    }

    /// <summary>Every permutation of a[from..] (a is restored afterwards).</summary>
    internal static IEnumerable<int[]> Permutations(int[] a, int from)
    {
        if (from == a.Length) { yield return (int[])a.Clone(); yield break; }
        for (int i = from; i < a.Length; i++)
        {
            (a[from], a[i]) = (a[i], a[from]);
            foreach (var p in Permutations(a, from + 1)) yield return p;
            (a[from], a[i]) = (a[i], a[from]);
        }
    }

    [Test]
    public void BadCutOffsAreErrors()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => UserMetrics.Ranking(Y, S, U, I, [0]));
        Assert.That(ex!.Message, Does.Contain("K must be >= 1"));
        var ex2 = Assert.Throws<ArgumentException>(() => UserMetrics.Ranking(Y, S, U, I, [5], itemCount: 5));
        Assert.That(ex2!.Message, Does.Contain("itemCount is 5"));
    }
}
