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
        sb.AppendLine(ScoreboardTables.Headline(b, TableFormat.Markdown, Name(r)));
        var ranked = b.Rows.FirstOrDefault(x => x.Ranking is not null)?.Ranking;
        if (ranked is not null)
            sb.AppendLine($"Full ranking: {ranked.Overall.Users:N0} users with a held-out test positive, candidates = the {ranked.UniverseSize:N0} held-out items. " +
                          "Blind models (popularity, bias, ItemKNN, BPR-MF) have no trained parameter for these items: they give all of them one score (ties are " +
                          "scored at their random-order expectation) or, for BPR-MF, untrained initial factors, so their numbers are the chance level up to noise.").AppendLine();
        if (r.Lifts.Count > 0) sb.AppendLine(EvaluationTables.LiftTable(r.Lifts, TableFormat.Markdown));
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
        sb.Append(ScoreboardTables.Headline(r.Board, TableFormat.Console, Name(r)));
        foreach (var l in r.Lifts) sb.AppendLine($"  {l.Model} over {l.Baseline} ({l.Metric}): {l.Lift}");
        return sb.ToString();
    }

    /// <summary>Row labels that mark the models blind by construction.</summary>
    private static Func<ScoreboardRow, string> Name(ColdItemStudyResult r)
        => row => r.Blind.Contains(row.Name) ? $"{row.Name} (blind by construction)" : row.Name;
}
