// Writes the item-encoder distillation study's report.md and a console summary.
using System.Globalization;
using System.Text;
using FastRec.Engine.Evaluation;

namespace FastRec.Cli.Reporting;

internal static class ItemDistillReportWriter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The encoders' table: cost per item, distance to the teacher and the tower's scores on the new items.</summary>
    public static string EncoderTable(ItemDistillStudyResult r, TableFormat format)
    {
        double teacherMs = r.Encoders[0].MsPerItem;
        var rows = new List<string[]>();
        foreach (var e in r.Encoders)
        {
            var row = r.Board[e.Model];
            rows.Add(
            [
                e.Model, e.Layers.ToString(Inv), e.MsPerItem.ToString("0.00", Inv), (teacherMs / e.MsPerItem).ToString("0.00", Inv) + "x",
                e.Distillation is { } d ? $"{d.InitialDistance:0.0000} -> {d.FinalDistance:0.0000}" : "0",
                EvaluationTables.Num(row.Metrics?.Auc ?? double.NaN), EvaluationTables.Num(ItemDistillStudy.Gauc(row)), EvaluationTables.Num(ItemDistillStudy.Ndcg(row)),
                Share(r.Kept.GetValueOrDefault((e.Model, "GAUC"), double.NaN), e.Distillation is null),
                Share(r.Kept.GetValueOrDefault((e.Model, "NDCG@10"), double.NaN), e.Distillation is null),
            ]);
        }
        var nn = r.Board[ItemDistillStudy.NonNeuralTower];
        rows.Add([nn.Name, "-", "-", "-", "-", EvaluationTables.Num(nn.Metrics?.Auc ?? double.NaN), EvaluationTables.Num(ItemDistillStudy.Gauc(nn)), EvaluationTables.Num(ItemDistillStudy.Ndcg(nn)), "0 %", "0 %"]);
        return EvaluationTables.Table(
            ["item tower over", "layers", "ms / item", "speed-up", "distance to teacher (2-2cos)", "AUC (new items)", "GAUC", "NDCG@10 among new", "GAUC lift kept", "NDCG@10 lift kept"],
            rows, format);
    }

    private static string Share(double v, bool teacher) => teacher ? "100 %" : double.IsNaN(v) ? "n/a" : (100 * v).ToString("0", Inv) + " %";

    /// <summary>Writes report.md into <paramref name="dir"/>; returns its path.</summary>
    public static string Write(string dir, ItemDistillStudyResult r, string backend)
    {
        Directory.CreateDirectory(dir);
        var sb = new StringBuilder();
        var b = r.Board;
        sb.AppendLine("# FastRec item-encoder distillation").AppendLine();
        sb.AppendLine($"Generated {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", Inv)} UTC on {Environment.ProcessorCount} cores, backend {backend}; wall time {r.Seconds:0} s.").AppendLine();
        sb.AppendLine($"The newest {r.HeldOutItems:N0} items lose all {r.DroppedRows:N0} of their interactions before the test window. Each student starts " +
                      "from every k-th teacher layer and is distilled on the texts of the other items only (no labels, no held-out text): its mean-pooled, " +
                      "L2-normalised sentence vector is pulled onto the teacher's (mean ‖ŝ − t‖² = 2 − 2cos), embeddings frozen. Each encoder then re-encodes " +
                      "the whole catalogue (timed, no cache, ms per item at the encoder's batch) and an item tower is refitted over its vectors. Scored on the " +
                      $"{b.Test.Rows:N0} test rows on the new items ({b.Test.Users:N0} users) and by full ranking among the new items only. \"Lift kept\" = " +
                      "(student − non-neural tower) / (teacher − non-neural tower).").AppendLine();
        sb.AppendLine(EncoderTable(r, TableFormat.Markdown));
        sb.AppendLine(ScoreboardTables.Headline(b, TableFormat.Markdown));
        if (r.Lifts.Count > 0) sb.AppendLine(EvaluationTables.LiftTable(r.Lifts, TableFormat.Markdown));
        sb.AppendLine().AppendLine($"The students are Hugging Face model directories in {r.StudentsDirectory}: `fastrec tower --encoder DIR` trains a tower over one.");
        string path = Path.Combine(dir, "report.md");
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    /// <summary>A plain-text summary for the console.</summary>
    public static string ConsoleSummary(ItemDistillStudyResult r)
    {
        var sb = new StringBuilder();
        sb.Append(EncoderTable(r, TableFormat.Console));
        foreach (var l in r.Lifts.Where(l => l.Metric is "GAUC" or "NDCG@10")) sb.AppendLine($"  {l.Model} over {l.Baseline} ({l.Metric}): {l.Lift}");
        return sb.ToString();
    }
}
