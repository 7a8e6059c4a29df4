// Writes a distillation / co-training report.md (teacher, student, baselines side by side) and its ScottPlot PNGs.
using System.Globalization;
using System.Text;
using FastRec.Engine.Distillation;
using FastRec.Engine.Training;

namespace FastRec.Cli.Reporting;

internal static class DistillReportWriter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Writes report.md and the plots into <paramref name="dir"/>; returns the report's path.</summary>
    public static string Write(string dir, string title, DistillRunReport r, IEnumerable<string> setup, double wallSeconds)
    {
        Directory.CreateDirectory(dir);
        var plots = WritePlots(dir, r);
        var sb = new StringBuilder();
        sb.AppendLine($"# {title}").AppendLine();
        sb.AppendLine($"Generated {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", Inv)} UTC on {Environment.ProcessorCount} cores; wall time {wallSeconds:0} s.").AppendLine();
        sb.AppendLine("## Setup").AppendLine();
        foreach (var s in setup) sb.AppendLine($"- {s}");
        sb.AppendLine($"- examples: {r.Sizes.Train:N0} train, {r.Sizes.Validation:N0} validation, {r.Sizes.Test:N0} test; baselines fitted on the same training examples");
        if (r.StudentInit.Length > 0) sb.AppendLine($"- student initialisation: {r.StudentInit}");
        if (r.Cache.Length > 0) sb.AppendLine($"- {r.Cache}");
        sb.AppendLine($"- training time {r.TrainSeconds:0} s").AppendLine();

        sb.AppendLine("## Side by side (test)").AppendLine();
        sb.AppendLine("| model | AUC | GAUC | log loss | parameters | size on disk | batch-1 latency p50 | p99 |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        Row(sb, r.Teacher, r.TeacherFacts);
        Row(sb, r.Student, r.StudentFacts);
        foreach (var b in r.Baselines)
            sb.AppendLine($"| {b.Name} | {b.Metrics.Auc:0.0000} | {b.Metrics.Gauc.Format()} | {b.Metrics.LogLoss:0.0000} | – | – | – | – |");
        sb.AppendLine();
        var best = r.BestBaseline;
        sb.AppendLine($"Best baseline: **{best.Name}** (AUC {best.Metrics.Auc:0.0000}). AUC lift over it: {r.Teacher.Name} {Signed(r.TeacherLift)}, " +
                      $"{r.Student.Name} {Signed(r.StudentLift)}.");
        if (r.Kind == "distillation")
        {
            sb.AppendLine();
            sb.AppendLine(double.IsNaN(r.LiftKept)
                ? "The teacher does not beat the best baseline on this sample, so the fraction of its lift the student keeps is undefined."
                : $"**The student keeps {100 * r.LiftKept:0.0} % of the teacher's AUC lift over the best baseline**, with " +
                  $"{(double)r.StudentFacts.Parameters / r.TeacherFacts.Parameters:0.00}× the parameters" +
                  (double.IsNaN(r.StudentFacts.LatencyP50Ms) ? "." : $" and {r.StudentFacts.LatencyP50Ms / r.TeacherFacts.LatencyP50Ms:0.00}× the batch-1 latency."));
        }
        sb.AppendLine();
        sb.AppendLine("Latency: one request = one (context, candidate) pair through the Predictor (pre-packed weights, [CLS]-only last layer), " +
                      "both models alternating on this machine, after warm-up.").AppendLine();
        if (r.Precision.Count > 0)
        {
            sb.AppendLine("## Serving precision: fp32 vs int16").AppendLine();
            sb.AppendLine("The same model served with `PredictorOptions.Precision = Int16` (encoder Linears in symmetric int16, exact int32 sums) " +
                          "and in fp32, one request per test example, the two alternating.").AppendLine();
            sb.AppendLine("| model | examples | AUC fp32 | AUC int16 | max abs Δp | mean abs Δp | p50 fp32 | p50 int16 |");
            sb.AppendLine("|---|---|---|---|---|---|---|---|");
            foreach (var c in r.Precision)
                sb.AppendLine($"| {c.Name} | {c.Examples} | {c.AucFloat32:0.0000} | {c.AucInt16:0.0000} | {c.MaxAbsDiff:0.0e+0} | {c.MeanAbsDiff:0.0e+0} | {c.P50Float32Ms:0.00} ms | {c.P50Int16Ms:0.00} ms |");
            sb.AppendLine();
        }

        sb.AppendLine("## Training").AppendLine();
        bool co = r.Kind == "co-training";
        sb.AppendLine(co ? "| epoch | loss A | loss B | val AUC A | val AUC B |" : "| epoch | loss | hard | soft | hidden | attention | val AUC |");
        sb.AppendLine(co ? "|---|---|---|---|---|" : "|---|---|---|---|---|---|---|");
        foreach (var e in r.Epochs)
            sb.AppendLine(co
                ? $"| {e.Epoch} | {e.Loss:0.0000} | {e.LossB:0.0000} | {e.ValidationAuc:0.0000} | {e.ValidationAucB:0.0000} |"
                : $"| {e.Epoch} | {e.Loss:0.0000} | {e.Hard:0.0000} | {e.Soft:0.0000} | {e.Hidden:0.0000} | {e.Attention:0.000000} | {e.ValidationAuc:0.0000} |");
        sb.AppendLine();
        foreach (var (file, caption) in plots) sb.AppendLine($"![{caption}]({file})").AppendLine();
        string path = Path.Combine(dir, "report.md");
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    private static void Row(StringBuilder sb, ScoredModel m, ModelFacts f)
    {
        string disk = f.DiskBytes is { } d ? Mb(d) : Mb(f.Bytes) + " (fp32)";
        string lat(double v) => double.IsNaN(v) ? "–" : $"{v:0.00} ms";
        sb.AppendLine($"| {m.Name} | {m.Metrics.Auc:0.0000} | {m.Metrics.Gauc.Format()} | {m.Metrics.LogLoss:0.0000} | {f.Parameters / 1e6:0.00} M | {disk} | {lat(f.LatencyP50Ms)} | {lat(f.LatencyP99Ms)} |");
    }

    private static string Mb(long bytes) => (bytes / 1048576.0).ToString("0.0", Inv) + " MiB";
    private static string Signed(double v) => (v >= 0 ? "+" : "") + v.ToString("0.0000", Inv);

    private static List<(string File, string Caption)> WritePlots(string dir, DistillRunReport r)
    {
        var list = new List<(string, string)>();
        var models = new[] { r.Teacher, r.Student }.Concat(r.Baselines).ToArray();
        // Test AUC side by side
        {
            var plt = new ScottPlot.Plot();
            var bars = models.Select((m, i) => new ScottPlot.Bar { Position = i, Value = m.Metrics.Auc, FillColor = i < 2 ? ScottPlot.Colors.SteelBlue : ScottPlot.Colors.Gray }).ToArray();
            plt.Add.Bars(bars);
            plt.Axes.Bottom.SetTicks(Enumerable.Range(0, models.Length).Select(i => (double)i).ToArray(), models.Select(m => m.Name).ToArray());
            double lo = Math.Max(0, models.Min(m => m.Metrics.Auc) - 0.05), hi = Math.Min(1, models.Max(m => m.Metrics.Auc) + 0.02);
            plt.Axes.SetLimitsY(lo, hi);
            plt.Title("Test AUC"); plt.YLabel("AUC");
            plt.SavePng(Path.Combine(dir, "auc_side_by_side.png"), 800, 450);
            list.Add(("auc_side_by_side.png", "test AUC of teacher, student and baselines"));
        }
        // Size and latency
        if (!double.IsNaN(r.TeacherFacts.LatencyP50Ms))
        {
            var plt = new ScottPlot.Plot();
            var facts = new[] { r.TeacherFacts, r.StudentFacts };
            plt.Add.Bars(facts.Select((f, i) => new ScottPlot.Bar { Position = i, Value = f.LatencyP50Ms, FillColor = ScottPlot.Colors.SteelBlue }).ToArray());
            plt.Axes.Bottom.SetTicks([0, 1], facts.Select(f => $"{f.Name} ({f.Parameters / 1e6:0.0} M params)").ToArray());
            plt.Axes.SetLimitsY(0, facts.Max(f => f.LatencyP50Ms) * 1.15);
            plt.Title("Batch-1 latency, p50"); plt.YLabel("ms");
            plt.SavePng(Path.Combine(dir, "latency.png"), 600, 450);
            list.Add(("latency.png", "batch-1 latency of each model"));
        }
        // Validation AUC by epoch
        if (r.Epochs.Count > 0)
        {
            var plt = new ScottPlot.Plot();
            double[] xs = r.Epochs.Select(e => (double)e.Epoch).ToArray();
            var s = plt.Add.Scatter(xs, r.Epochs.Select(e => e.ValidationAuc).ToArray());
            s.LegendText = r.Kind == "co-training" ? "model A" : "student"; s.MarkerSize = 7; s.LineWidth = 2;
            if (r.Kind == "co-training")
            {
                var s2 = plt.Add.Scatter(xs, r.Epochs.Select(e => e.ValidationAucB).ToArray());
                s2.LegendText = "model B"; s2.MarkerSize = 7; s2.LineWidth = 2;
            }
            plt.Title("Validation AUC by epoch"); plt.XLabel("epoch"); plt.YLabel("AUC");
            plt.ShowLegend();
            plt.SavePng(Path.Combine(dir, "validation_auc.png"), 700, 400);
            list.Add(("validation_auc.png", "validation AUC by epoch"));
        }
        return list;
    }
}
