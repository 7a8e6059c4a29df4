// Per-user metrics over test impressions: GAUC, and ranking quality Recall@K, NDCG@K, item coverage@K.
namespace FastRec.Engine.Metrics;

/// <summary>GAUC: the mean of per-user AUCs weighted by each user's number of impressions. Users whose impressions are
/// all of one class have no AUC and are skipped (<see cref="UsersSkipped"/>); Value is NaN when no user qualifies.
/// Below <see cref="MinUsers"/> users the value says little (one user gives 0 or 1): <see cref="Reportable"/> is false and
/// <see cref="Format"/> prints "n/a".</summary>
public sealed record GaucResult(double Value, int UsersUsed, int UsersSkipped, long ImpressionsUsed)
{
    /// <summary>Fewest users with both classes for a GAUC worth reporting.</summary>
    public const int MinUsers = 20;

    /// <summary>True when at least <see cref="MinUsers"/> users have an AUC.</summary>
    public bool Reportable => UsersUsed >= MinUsers && !double.IsNaN(Value);

    /// <summary>The value with the user count beside it, "0.6512 (2,896 users)", or "n/a (3 users)" when not
    /// <see cref="Reportable"/>.</summary>
    public string Format(string number = "0.0000")
    {
        string users = UsersUsed.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) + (UsersUsed == 1 ? " user" : " users");
        return $"{(Reportable ? Value.ToString(number, System.Globalization.CultureInfo.InvariantCulture) : "n/a")} ({users})";
    }
}

/// <summary>Ranking of each user's test impressions by descending score, cut at <see cref="K"/>.
/// Recall@K = (positives in the top K) / (user's positives); NDCG@K = DCG@K / ideal DCG@K with binary gain and
/// discount 1/log2(rank+1). Tied scores are averaged as in sklearn's ndcg_score (ignore_ties=False): every position of a
/// group of equal scores gets the group's mean gain. Both are averaged over users with at least one positive
/// (<see cref="Users"/>); users without a positive are skipped (<see cref="UsersSkipped"/>).
/// Coverage@K = distinct items in any user's top K (ties broken by example order) / item count.</summary>
public sealed record RankingMetrics(int K, double Recall, double Ndcg, double Coverage, int Users, int UsersSkipped);

/// <summary>Metrics computed per user and then averaged.</summary>
public static class UserMetrics
{
    /// <summary>GAUC of <paramref name="scores"/> grouped by <paramref name="users"/> (see <see cref="GaucResult"/>).</summary>
    public static GaucResult Gauc(ReadOnlySpan<float> labels, ReadOnlySpan<float> scores, ReadOnlySpan<int> users)
    {
        MetricsInput.Validate(labels, scores);
        MetricsInput.ValidateIndex(users, labels.Length, nameof(users));
        return Gauc(labels, scores, GroupedOrder(scores, users), users);
    }

    /// <summary>Recall@K, NDCG@K and coverage@K for each K in <paramref name="ks"/> (see <see cref="RankingMetrics"/>).
    /// <paramref name="itemCount"/> is the coverage denominator; 0 means the number of distinct items in <paramref name="items"/>.</summary>
    public static RankingMetrics[] Ranking(ReadOnlySpan<float> labels, ReadOnlySpan<float> scores, ReadOnlySpan<int> users,
        ReadOnlySpan<int> items, ReadOnlySpan<int> ks, int itemCount = 0)
    {
        MetricsInput.Validate(labels, scores);
        MetricsInput.ValidateIndex(users, labels.Length, nameof(users));
        MetricsInput.ValidateIndex(items, labels.Length, nameof(items));
        return Ranking(labels, scores, users, items, ks, itemCount, GroupedOrder(scores, users));
    }

    internal static GaucResult Gauc(ReadOnlySpan<float> labels, ReadOnlySpan<float> scores, int[] order, ReadOnlySpan<int> users)
    {
        double weighted = 0; long impressions = 0; int used = 0, skipped = 0;
        for (int a = 0; a < order.Length;)
        {
            int b = GroupEnd(order, users, a);
            double auc = RocAuc.Sorted(labels, scores, order.AsSpan(a, b - a), out _, out _);
            if (double.IsNaN(auc)) skipped++;
            else { used++; impressions += b - a; weighted += (b - a) * auc; }
            a = b;
        }
        return new GaucResult(used == 0 ? double.NaN : weighted / impressions, used, skipped, impressions);
    }

    internal static RankingMetrics[] Ranking(ReadOnlySpan<float> labels, ReadOnlySpan<float> scores, ReadOnlySpan<int> users,
        ReadOnlySpan<int> items, ReadOnlySpan<int> ks, int itemCount, int[] order)
    {
        if (ks.Length == 0) throw new ArgumentException("ks is empty: give at least one cut-off K for Recall@K/NDCG@K");
        foreach (int k in ks) if (k < 1) throw new ArgumentOutOfRangeException(nameof(ks), k, "every K must be >= 1");
        if (itemCount < 0) throw new ArgumentOutOfRangeException(nameof(itemCount), itemCount, "itemCount must be >= 0 (0 = distinct items in the input)");
        int maxItem = 0;
        foreach (int it in items) maxItem = Math.Max(maxItem, it);
        if (itemCount > 0 && maxItem >= itemCount)
            throw new ArgumentException($"items holds index {maxItem} but itemCount is {itemCount}");
        var seen = new bool[maxItem + 1];
        int distinct = 0;
        foreach (int it in items) if (!seen[it]) { seen[it] = true; distinct++; }
        int denominator = itemCount > 0 ? itemCount : distinct;

        int maxK = 0;
        foreach (int k in ks) maxK = Math.Max(maxK, k);
        var discountPrefix = new double[maxK + 1]; // discountPrefix[r] = Σ_{j<r} 1/log2(j+2)
        for (int r = 0; r < maxK; r++) discountPrefix[r + 1] = discountPrefix[r] + 1.0 / Math.Log2(r + 2);

        var result = new RankingMetrics[ks.Length];
        var covered = new bool[maxItem + 1];
        for (int q = 0; q < ks.Length; q++)
        {
            int k = ks[q];
            Array.Clear(covered);
            int coveredCount = 0, usersUsed = 0, usersSkipped = 0;
            double recallSum = 0, ndcgSum = 0;
            for (int a = 0; a < order.Length;)
            {
                int b = GroupEnd(order, users, a);
                for (int r = a; r < Math.Min(b, a + k); r++)
                    if (!covered[items[order[r]]]) { covered[items[order[r]]] = true; coveredCount++; }
                long positives = 0;
                for (int r = a; r < b; r++) if (MetricsInput.IsPositive(labels[order[r]])) positives++;
                if (positives == 0) { usersSkipped++; a = b; continue; }
                double hits = 0, dcg = 0;
                for (int g = a; g < b && g - a < k;)
                {
                    // A group [g, h) of equal scores: each position gets the group's mean gain.
                    float s = scores[order[g]];
                    int h = g, groupPositives = 0;
                    for (; h < b && scores[order[h]] == s; h++) if (MetricsInput.IsPositive(labels[order[h]])) groupPositives++;
                    double meanGain = (double)groupPositives / (h - g);
                    int first = g - a, endInK = Math.Min(h - a, k);
                    hits += meanGain * (endInK - first);
                    dcg += meanGain * (discountPrefix[endInK] - discountPrefix[first]);
                    g = h;
                }
                double ideal = discountPrefix[(int)Math.Min(positives, k)];
                recallSum += hits / positives; ndcgSum += dcg / ideal; usersUsed++;
                a = b;
            }
            result[q] = new RankingMetrics(k, usersUsed == 0 ? double.NaN : recallSum / usersUsed,
                usersUsed == 0 ? double.NaN : ndcgSum / usersUsed, (double)coveredCount / denominator, usersUsed, usersSkipped);
        }
        return result;
    }

    /// <summary>Indices sorted by user ascending, then score descending, then index ascending.</summary>
    internal static int[] GroupedOrder(ReadOnlySpan<float> scores, ReadOnlySpan<int> users)
    {
        var order = new int[scores.Length];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        order.AsSpan().Sort(new ByUserThenScore(users.ToArray(), scores.ToArray()));
        return order;
    }

    private static int GroupEnd(int[] order, ReadOnlySpan<int> users, int a)
    {
        int u = users[order[a]], b = a + 1;
        while (b < order.Length && users[order[b]] == u) b++;
        return b;
    }

    private readonly struct ByUserThenScore(int[] users, float[] scores) : IComparer<int>
    {
        public int Compare(int a, int b)
        {
            int c = users[a].CompareTo(users[b]);
            if (c != 0) return c;
            float sa = scores[a], sb = scores[b];
            if (sa > sb) return -1;
            if (sa < sb) return 1;
            return a.CompareTo(b);
        }
    }
}
