// The headline table of a Scoreboard (one row per model: validation AUC, AUC, GAUC, log loss, full-ranking metrics) and
// the sections every report built on a Scoreboard shares (lifts, full ranking, slices).
using System.Text;
using FastRec.Engine.Evaluation;

namespace FastRec.Cli.Reporting;

internal static class ScoreboardTables
{
    /// <summary>One row per model, the reference baseline marked; a model that cannot rank prints n/a there.</summary>
    public static string Headline(Scoreboard board, TableFormat format, Func<ScoreboardRow, string>? name = null)
    {
        var header = new[] { "model", "val AUC", "AUC", "GAUC (users)", "log loss", "HR@10", "NDCG@10", "Recall@20", "MRR" };
        var rows = board.Rows.Select(r =>
        {
            var m = r.Metrics; var k = r.Ranking?.Overall;
            string label = (name?.Invoke(r) ?? r.Name) + (r == board.Reference ? " (reference)" : "");
            return new[]
            {
                label, N(r.Entry.ValidationAuc), N(m?.Auc ?? double.NaN), m?.Gauc.Format() ?? "n/a", N(m?.LogLoss ?? double.NaN),
                N(k?.HitRateAt(10) ?? double.NaN), N(k?.NdcgAt(10) ?? double.NaN), N(k?.RecallAt(20) ?? double.NaN), N(k?.Mrr ?? double.NaN),
            };
        }).ToList();
        var sb = new StringBuilder(EvaluationTables.Table(header, rows, format));
        var notes = board.Rows.Where(r => r.Entry.Note is not null).Select(r => $"{r.Name}: {r.Entry.Note}").ToList();
        foreach (var n in notes) sb.AppendLine(format == TableFormat.Markdown ? $"\n- {n}" : $"  note: {n}");
        return sb.ToString();
    }

    /// <summary>The lifts, full-ranking and slice sections of a report built on <paramref name="board"/>; slices for the
    /// models named in <paramref name="sliceModels"/> (those present).</summary>
    public static string Sections(Scoreboard board, IEnumerable<string> sliceModels, string heading = "##")
    {
        var sb = new StringBuilder();
        if (board.Lifts.Count > 0)
        {
            sb.AppendLine($"{heading} Lifts (reference: {board.Reference?.Name}, the baseline with the best validation AUC; also over the baselines named by the report)").AppendLine();
            sb.AppendLine(EvaluationTables.LiftTable(board.Lifts, TableFormat.Markdown));
        }
        var ranked = board.Rows.Where(r => r.Ranking is not null).Select(r => r.Ranking!).ToList();
        if (ranked.Count > 0)
        {
            sb.AppendLine($"{heading} Full ranking").AppendLine();
            sb.AppendLine($"Every test user with at least one test positive ({ranked[0].Overall.Users:N0} users): every catalogue item the user has not " +
                          "interacted with before the test window, plus the user's test items, is scored and ranked; relevant = the user's test positives.").AppendLine();
            sb.AppendLine(EvaluationTables.FullRankingTable(ranked, TableFormat.Markdown));
            var unranked = board.Rows.Where(r => r.Ranking is null).Select(r => r.Name).ToList();
            if (unranked.Count > 0) sb.AppendLine($"Not ranked (no full-catalogue scorer): {string.Join(", ", unranked)}.").AppendLine();
        }
        var names = sliceModels.Where(n => board.Rows.Any(r => r.Name == n)).Distinct().ToList();
        if (names.Count > 0 && board.Rows.First(r => r.Name == names[0]).Slices.Count > 0)
        {
            sb.AppendLine($"{heading} Slices").AppendLine();
            sb.AppendLine("Items by training interactions (cold = none), users by interactions before the test window.").AppendLine();
            sb.AppendLine(EvaluationTables.SliceTable(names.Select(n => (n, board[n].Slices)).ToList(), TableFormat.Markdown));
            var rankingSlices = names.Where(n => board[n].RankingSlices.Count > 0).Select(n => (n, board[n].RankingSlices)).ToList();
            if (rankingSlices.Count > 0) sb.AppendLine(EvaluationTables.RankingSliceTable(rankingSlices, TableFormat.Markdown));
        }
        return sb.ToString();
    }

    private static string N(double v) => EvaluationTables.Num(v);
}
