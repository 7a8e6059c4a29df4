// Leak-free history features: each row's user and item positive rates and counts over strictly earlier interactions.
namespace FastRec.Engine.Data;

/// <summary>
/// Appends four dense features to every interaction, computed from the interactions with a timestamp strictly before
/// the row's (the same "no look-ahead" rule as the contexts; equal timestamps never see each other), over the whole table
/// whatever the split, so validation and test rows use the history observed up to their time:
/// <list type="bullet">
/// <item><c>hist_user_rate</c> = (user positives + α·g) / (user interactions + α), g = (all positives + 1) / (all interactions + 2)
/// so far (a running prior, itself leak-free);</item>
/// <item><c>hist_user_log_count</c> = ln(1 + user interactions);</item>
/// <item><c>hist_item_rate</c> and <c>hist_item_log_count</c>: the same for the item.</item>
/// </list>
/// Labels count as positive with their value (soft labels add fractionally). Example weights are ignored.
/// </summary>
public static class HistoryFeatures
{
    /// <summary>Names of the appended features, in order.</summary>
    public static readonly string[] Names = ["hist_user_rate", "hist_user_log_count", "hist_item_rate", "hist_item_log_count"];

    /// <summary>α of <see cref="Append"/> when not given.</summary>
    public const double DefaultAlpha = 5;

    /// <summary>The running prior g = (positives + 1) / (interactions + 2) over every earlier interaction.</summary>
    public static double Prior(double positives, double interactions) => (positives + 1) / (interactions + 2);

    /// <summary>A user's or item's smoothed rate (positives + α·g) / (interactions + α).</summary>
    public static double Rate(double positives, double interactions, double prior, double alpha) => (positives + alpha * prior) / (interactions + alpha);

    /// <summary>ln(1 + interactions).</summary>
    public static double LogCount(double interactions) => Math.Log(1 + interactions);

    /// <summary>A copy of <paramref name="table"/> with the four history features appended to its dense features.</summary>
    public static InteractionTable Append(InteractionTable table, double alpha = DefaultAlpha)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (!(alpha > 0 && double.IsFinite(alpha))) throw new ArgumentOutOfRangeException(nameof(alpha), alpha, $"alpha must be finite and > 0, got {alpha}");
        if (table.DenseNames.Any(n => Names.Contains(n)))
            throw new ArgumentException($"{table.Source}: the table already has history features ({string.Join(", ", Names)})");
        int N = table.Count, F = table.DenseNames.Length, G = F + Names.Length;
        var ts = table.Timestamps.ToArray();
        var order = new int[N];
        for (int i = 0; i < N; i++) order[i] = i;
        Array.Sort(order, (a, b) => ts[a] != ts[b] ? ts[a].CompareTo(ts[b]) : a.CompareTo(b));
        var uN = new double[table.UserIds.Length]; var uP = new double[uN.Length];
        var iN = new double[table.Catalog.Count]; var iP = new double[iN.Length];
        double gN = 0, gP = 0;
        var dense = new float[(long)N * G];   // (N, F + 4)
        var users = table.Users; var items = table.Items; var labels = table.Labels; var old = table.Dense;
        for (int s = 0; s < N;)
        {
            int e = s;
            while (e < N && ts[order[e]] == ts[order[s]]) e++;
            double g = Prior(gP, gN);
            for (int k = s; k < e; k++)
            {
                int r = order[k], u = users[r], it = items[r];
                var row = dense.AsSpan(r * G, G);
                old.Slice(r * F, F).CopyTo(row);
                row[F] = (float)Rate(uP[u], uN[u], g, alpha);
                row[F + 1] = (float)LogCount(uN[u]);
                row[F + 2] = (float)Rate(iP[it], iN[it], g, alpha);
                row[F + 3] = (float)LogCount(iN[it]);
            }
            for (int k = s; k < e; k++)
            {
                int r = order[k];
                double y = labels[r];
                uN[users[r]]++; uP[users[r]] += y; iN[items[r]]++; iP[items[r]] += y; gN++; gP += y;
            }
            s = e;
        }
        return new InteractionTable(table.Source, table.Catalog, table.UserIds, [.. table.DenseNames, .. Names],
            table.Users.ToArray(), table.Items.ToArray(), table.Labels.ToArray(), table.Weights.ToArray(), ts, dense, table.Lines.ToArray(),
            table.ItemsWithoutText, table.InteractionsWithoutText);
    }
}
