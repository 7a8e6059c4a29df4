// Writes the strict cold-item test's report.md and a console summary.
using System.Globalization;
using System.Text;
using FastRec.Engine.Evaluation;

namespace FastRec.Cli.Reporting;

internal static class ColdItemReportWriter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The markdown section (table, lifts, reading notes), also used inside the demo report.</summary>
    public static string Section(ColdItemStudyResult r, string heading = "##")
    {
        var sb = new StringBuilder();
        var b = r.Board;
        sb.AppendLine($"{heading} Strict cold-item test").AppendLine();
        sb.AppendLine($"The newest {r.HeldOutItems:N0} items (20 % of the items with interactions, by first appearance) lose all {r.DroppedRows:N0} of their " +
                      $"interactions before the test window; every model is refitted without them. Evaluated on the {b.Test.Rows:N0} test rows on those items " +
                      $"({b.Test.Users:N0} users) and by full ranking among the held-out items only.").AppendLine();
        sb.AppendLine("| model | validation AUC | AUC | GAUC (users) | HR@10 | NDCG@10 | Recall@20 | MRR |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var row in b.Rows)
        {
            var m = row.Metrics; var k = row.Ranking?.Overall;
            string gauc = m is null || m.Gauc.UsersUsed < Slices.MinGaucUsers ? $"n/a ({m?.Gauc.UsersUsed ?? 0})" : $"{N(m.Gauc.Value)} ({m.Gauc.UsersUsed})";
            string name = r.Blind.Contains(row.Name) ? $"{row.Name} (blind by construction)" : row.Name;
            sb.AppendLine($"| {name} | {N(row.Entry.ValidationAuc)} | {N(m?.Auc ?? double.NaN)} | {gauc} | {N(k?.HitRateAt(10) ?? double.NaN)} | {N(k?.NdcgAt(10) ?? double.NaN)} | " +
                          $"{N(k?.RecallAt(20) ?? double.NaN)} | {N(k?.Mrr ?? double.NaN)} |");
        }
        sb.AppendLine();
        var ranked = b.Rows.FirstOrDefault(x => x.Ranking is not null)?.Ranking;
        if (ranked is not null)
            sb.AppendLine($"Full ranking: {ranked.Overall.Users:N0} users with a held-out test positive, candidates = the {ranked.UniverseSize:N0} held-out items. " +
                          "Blind models (popularity, bias, ItemKNN, BPR-MF) have no trained parameter for these items: they give all of them one score (ties are " +
                          "scored at their random-order expectation) or, for BPR-MF, untrained initial factors, so their numbers are the chance level up to noise.").AppendLine();
        sb.AppendLine("Lifts of the encoder-vector model (paired bootstrap over users, 95 %):").AppendLine();
        sb.AppendLine("| over | metric | result |");
        sb.AppendLine("|---|---|---|");
        foreach (var l in r.Lifts) sb.AppendLine($"| {l.Baseline} | {l.Metric} | {l.Lift} |");
        sb.AppendLine();
        return sb.ToString();
    }

    /// <summary>Writes report.md into <paramref name="dir"/>; returns its path.</summary>
    public static string Write(string dir, ColdItemStudyResult r, double seconds)
    {
        Directory.CreateDirectory(dir);
        var sb = new StringBuilder();
        sb.AppendLine("# FastRec strict cold-item test").AppendLine();
        sb.AppendLine($"Generated {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", Inv)} UTC on {Environment.ProcessorCount} cores; wall time {seconds:0} s.").AppendLine();
        sb.Append(Section(r));
        string path = Path.Combine(dir, "report.md");
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    /// <summary>A plain-text summary for the console.</summary>
    public static string ConsoleSummary(ColdItemStudyResult r)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"  {"model (held-out items)",-46} {"AUC",7} {"GAUC",7} {"NDCG@10",8} {"R@20",7}");
        foreach (var row in r.Board.Rows)
        {
            var m = row.Metrics; var k = row.Ranking?.Overall;
            double g = m is null || m.Gauc.UsersUsed < Slices.MinGaucUsers ? double.NaN : m.Gauc.Value;
            string name = (r.Blind.Contains(row.Name) ? "[blind] " : "") + row.Name;
            sb.AppendLine($"  {(name.Length > 46 ? name[..45] + "…" : name),-46} {N(m?.Auc ?? double.NaN),7} {N(g),7} {N(k?.NdcgAt(10) ?? double.NaN),8} {N(k?.RecallAt(20) ?? double.NaN),7}");
        }
        foreach (var l in r.Lifts) sb.AppendLine($"  text model over {l.Baseline} ({l.Metric}): {l.Lift}");
        return sb.ToString();
    }

    private static string N(double v) => EvaluationTables.Num(v);
}
