// Exact expectations of HR@K, Recall@K, NDCG@K and MRR over a uniformly random order of tied scores, from counts only.
namespace FastRec.Engine.Evaluation;

/// <summary>
/// Ranking metrics of one user as their expectation when every group of equal scores is put in a uniformly random order,
/// computed without sorting from, for each relevant item j (sorted by descending score), <c>greater[j]</c> = candidates
/// with a strictly higher score and <c>equal[j]</c> = candidates with the same score (the item itself included). A tie
/// group at score s occupies ranks greater+1 .. greater+equal; its m relevant items take a uniformly random m-subset of them.
/// <list type="bullet">
/// <item>Recall@K = E[hits@K] / |R|, with E[hits@K] = Σ_j clamp(K − g_j, 0, e_j) / e_j (linearity).</item>
/// <item>NDCG@K = E[DCG@K] / IDCG@K: each relevant item adds (D(min(g+e, K)) − D(min(g, K))) / e with
/// D(r) = Σ_{i&lt;r} 1/log2(i+2), IDCG = D(min(K, |R|)); this is sklearn's ndcg_score with ignore_ties=False.</item>
/// <item>HR@K = P(some relevant item in the top K). Only the first relevant tie group (g, e, m) can straddle the cut: with
/// t = K − g slots of it inside the top K, HR = 0 when t &lt;= 0, 1 when t &gt;= e, else the hypergeometric
/// 1 − Π_{i&lt;m} (e − t − i) / (e − i) (probability that not all m relevant items fall in the e − t slots past the cut).</item>
/// <item>MRR = E[1 / rank of the first relevant] = Σ_{x=1}^{e−m+1} P(X = x) / (g + x), X the smallest of m positions drawn
/// from 1..e: P(X = 1) = m / e, P(X = x + 1) = P(X = x)·(e − x − m + 1) / (e − x). No cut.</item>
/// </list>
/// </summary>
internal static class TiedRanking
{
    /// <summary>D(r) = Σ_{i&lt;r} 1/log2(i+2) for r in [0, maxK]. (maxK + 1)</summary>
    public static double[] DiscountPrefix(int maxK)
    {
        var d = new double[maxK + 1];
        for (int r = 0; r < maxK; r++) d[r + 1] = d[r] + 1.0 / Math.Log2(r + 2);
        return d;
    }

    /// <summary>Metrics of one user whose relevant items, sorted by descending score, have <paramref name="score"/>,
    /// <paramref name="greater"/> and <paramref name="equal"/> (at least one item). Writes HR, Recall and NDCG for each
    /// cut-off of <paramref name="ks"/> (each &lt;= discount.Length − 1) and returns the MRR.</summary>
    public static double Compute(ReadOnlySpan<float> score, ReadOnlySpan<int> greater, ReadOnlySpan<int> equal,
        ReadOnlySpan<int> ks, ReadOnlySpan<double> discount, Span<double> hitRate, Span<double> recall, Span<double> ndcg)
    {
        int n = score.Length;
        // The first (highest-scoring) tie group of relevant items: g, e and its m relevant items.
        int g = greater[0], e = equal[0], m = 1;
        while (m < n && score[m] == score[0]) m++;
        for (int q = 0; q < ks.Length; q++)
        {
            int k = ks[q];
            double hits = 0, dcg = 0;
            for (int j = 0; j < n; j++)
            {
                int gj = greater[j], ej = equal[j];
                if (gj >= k) break; // sorted by score: every later item ranks below the cut too
                hits += (double)(Math.Min(gj + ej, k) - gj) / ej;
                dcg += (discount[Math.Min(gj + ej, k)] - discount[gj]) / ej;
            }
            hitRate[q] = HitProbability(g, e, m, k);
            recall[q] = hits / n;
            ndcg[q] = dcg / discount[Math.Min(k, n)];
        }
        return ReciprocalRank(g, e, m);
    }

    /// <summary>P(at least one of m relevant items of a tie group at ranks g+1..g+e is within the top K).</summary>
    public static double HitProbability(int g, int e, int m, int k)
    {
        int t = k - g;
        if (t <= 0) return 0;
        if (t >= e) return 1;
        double none = 1;
        for (int i = 0; i < m && none > 0; i++) none *= (double)(e - t - i) / (e - i); // reaches 0 when m > e - t
        return 1 - none;
    }

    /// <summary>E[1 / rank of the first of m relevant items placed at random among ranks g+1..g+e].</summary>
    public static double ReciprocalRank(int g, int e, int m)
    {
        double p = (double)m / e, sum = 0;
        for (int x = 1, last = e - m + 1; x <= last; x++)
        {
            sum += p / (g + x);
            if (x < last) p *= (double)(e - x - m + 1) / (e - x);
        }
        return sum;
    }

    /// <summary>HR@K (= hits@K) and NDCG@K of one relevant item with g higher and e equal (itself included) scores.</summary>
    public static (double Hit, double Ndcg) Single(int g, int e, int k, ReadOnlySpan<double> discount)
    {
        if (g >= k) return (0, 0);
        int end = Math.Min(g + e, k);
        return ((double)(end - g) / e, (discount[end] - discount[g]) / e / discount[1]);
    }
}
