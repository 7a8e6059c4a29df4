// Writes the demo's report.md: the headline scoreboard with intervals, full ranking, slices, the strict cold-item test,
// the transfer learning curve, the pair model, and a reading of what the numbers say.
using System.Globalization;
using System.Text;
using FastRec.Cli.Commands;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Training;

namespace FastRec.Cli.Reporting;

internal static class DemoReportWriter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Writes DIR/report.md (and the transfer study's files into DIR/transfer); returns the report's path.</summary>
    public static string Write(string dir, DemoEvaluationResult e, ExperimentReport? pair, string pairReport, IEnumerable<string> setup, double wallSeconds)
    {
        Directory.CreateDirectory(dir);
        var b = e.Board;
        var sb = new StringBuilder();
        sb.AppendLine("# FastRec demo: does text help a recommender? Measured the way a recommender expert would").AppendLine();
        sb.AppendLine($"Generated {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", Inv)} UTC on {Environment.ProcessorCount} cores; wall time {wallSeconds:0} s " +
                      $"({string.Join(", ", e.Seconds.Select(kv => $"{kv.Key} {kv.Value:0} s"))}).").AppendLine();
        sb.AppendLine("## Setup").AppendLine();
        foreach (var s in setup) sb.AppendLine($"- {s}");
        sb.AppendLine($"- training window: {e.Train.TrainRows:N0} ratings from {e.Train.TrainUsers:N0} users (every training rating); model selection and early stopping " +
                      "on the validation window only; the test window is scored once");
        sb.AppendLine();
        sb.AppendLine("## Headline (test window)").AppendLine();
        sb.AppendLine($"{b.Test.Rows:N0} test ratings of {b.Test.Users:N0} users ({b.Test.Positives:N0} liked). AUC, GAUC and log loss on the test ratings; " +
                      "HR/NDCG/Recall/MRR by full ranking of the whole catalogue. The reference is the baseline with the best validation AUC.").AppendLine();
        sb.AppendLine(ScoreboardTables.Headline(b, TableFormat.Markdown));
        sb.Append(ScoreboardTables.Sections(b, [e.TextModel, b.Reference?.Name ?? "", "history-feature logistic"]));
        if (e.Cold is not null) sb.Append(ColdItemReportWriter.Section(e.Cold));
        if (e.Transfer is not null)
        {
            string tdir = Path.Combine(dir, "transfer");
            StudyReportWriter.Write(tdir, e.Transfer, ["the demo's light run: 1 seed, 300 ranked users; `fastrec study transfer` runs 5 variants x 3 seeds"]);
            sb.AppendLine("## Transfer: pretrained vs random-init encoder, by amount of training data").AppendLine();
            sb.AppendLine("The same head over (a) pretrained MiniLM item vectors, (b) the same encoder randomly initialised, (c) genre + year + title-word vectors, " +
                          "(e) no item vectors, each with the history features, trained on the most recent 1 / 5 / 25 / 100 % of the training period " +
                          "(older ratings dropped, history features recomputed), one seed; validation and test fixed. Full tables: [transfer/report.md](transfer/report.md).").AppendLine();
            sb.AppendLine(StudyReportWriter.MetricTable(e.Transfer, "GAUC", p => p.Gauc));
            sb.AppendLine(StudyReportWriter.MetricTable(e.Transfer, "cold-item GAUC", p => p.ColdGauc));
            foreach (var l in e.Transfer.Lifts.Where(l => l.Over == "b" || (l.Variant == "a" && l.Over == "e")).Where(l => l.Metric != "AUC"))
                sb.AppendLine($"- {l.Window:P0}: (a) over ({l.Over}) {l.Metric}: {l.Lift}");
            sb.AppendLine();
            sb.AppendLine("![learning curve: GAUC](transfer/learning-gauc.png)").AppendLine();
            sb.AppendLine("![learning curve: cold-item GAUC](transfer/learning-cold-gauc.png)").AppendLine();
        }
        if (pair is not null)
        {
            sb.AppendLine("## The pair model (MiniLM cross-encoder fine-tuned on (history, candidate) text pairs)").AppendLine();
            sb.AppendLine($"One BERT pass per (history, candidate) pair, so on this CPU it trains on {pair.Sizes.Train:N0} of the training ratings and is tested on " +
                          $"the first {pair.Sizes.Test:N0} test ratings; full ranking would need a pass per catalogue item and user. Its report: [{pairReport}]({pairReport}).").AppendLine();
            sb.AppendLine("| model (first test ratings) | AUC | GAUC | log loss |");
            sb.AppendLine("|---|---|---|---|");
            foreach (var m in new[] { pair.Model }.Concat(pair.Baselines))
                sb.AppendLine($"| {m.Name} | {m.Metrics.Auc:0.0000} | {EvaluationTables.Num(m.Metrics.Gauc.Value)} | {m.Metrics.LogLoss:0.0000} |");
            sb.AppendLine();
        }
        sb.AppendLine("## Reading").AppendLine();
        foreach (var line in Reading(e)) sb.AppendLine($"- {line}");
        sb.AppendLine();
        string path = Path.Combine(dir, "report.md");
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    /// <summary>What the numbers say, sentence by sentence, from the lifts and tables (no hand-written claims).</summary>
    public static IEnumerable<string> Reading(DemoEvaluationResult e)
    {
        var b = e.Board;
        if (b.Reference is not null)
        {
            foreach (var l in b.Lifts.Where(x => x.Model == e.TextModel))
                yield return $"{l.Metric}: the text model against {l.Baseline}{(l.Baseline == b.Reference.Name ? " (the reference)" : "")}: {Words(l.Lift)}.";
        }
        var bestRank = b.Rows.Where(r => r.Ranking is not null).MaxBy(r => r.Ranking!.Overall.NdcgAt(10));
        if (bestRank is not null)
            yield return $"Full ranking is led by {bestRank.Name} (NDCG@10 {EvaluationTables.Num(bestRank.Ranking!.Overall.NdcgAt(10))}): which items a user will rate " +
                         "next is mostly exposure and popularity; the text model is trained to tell liked from disliked among rated items (log loss), not to predict exposure, " +
                         "so it ranks below popularity there.";
        var text = b.Rows.FirstOrDefault(r => r.Name == e.TextModel);
        var coldSlice = text?.Slices.FirstOrDefault(s => s.Name.StartsWith("items: cold", StringComparison.Ordinal));
        var refCold = b.Reference?.Slices.FirstOrDefault(s => s.Name.StartsWith("items: cold", StringComparison.Ordinal));
        if (coldSlice is not null && refCold is not null)
            yield return $"Items with no training rating ({coldSlice.Share:P0} of test ratings): GAUC {EvaluationTables.Num(coldSlice.Gauc)} for the text model vs " +
                         $"{EvaluationTables.Num(refCold.Gauc)} for {b.Reference!.Name}.";
        if (e.Cold is not null)
            foreach (var l in e.Cold.Lifts.Where(l => l.Metric is "GAUC" or "NDCG@10"))
                yield return $"Strict cold-item test, {l.Metric}: the text model against {l.Baseline}: {Words(l.Lift)}.";
        if (e.Transfer is not null)
            foreach (var l in e.Transfer.Lifts.Where(l => l.Variant == "a" && l.Over == "b" && l.Metric == "GAUC"))
                yield return $"Pretrained vs random-init encoder at {l.Window:P0} of the training period, GAUC: {Words(l.Lift)}.";
    }

    private static string Words(Lift l)
        => l.Significant ? (l.Delta > 0 ? $"better, {l}" : $"worse, {l}") : $"no significant difference ({l.Delta:+0.0000;-0.0000} [{l.Lo:+0.0000;-0.0000}, {l.Hi:+0.0000;-0.0000}])";
}
