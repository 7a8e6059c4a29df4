// Writes an experiment's report.md (metrics table, lift, timings) and its ScottPlot PNGs (loss, AUC, ROC, calibration).
using System.Globalization;
using System.Text;
using FastRec.Engine.Metrics;
using FastRec.Engine.Training;

namespace FastRec.Cli.Reporting;

internal static class ExperimentReportWriter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Writes report.md and the plots into <paramref name="dir"/>; <paramref name="setup"/> lines describe the run.</summary>
    public static string Write(string dir, string title, ExperimentReport r, IEnumerable<string> setup, double wallSeconds)
    {
        Directory.CreateDirectory(dir);
        var plots = Plots.WriteAll(dir, r);
        var sb = new StringBuilder();
        sb.AppendLine($"# {title}").AppendLine();
        sb.AppendLine($"Generated {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", Inv)} UTC on {Environment.ProcessorCount} cores; wall time {wallSeconds:0} s.").AppendLine();
        sb.AppendLine("## Setup").AppendLine();
        foreach (var s in setup) sb.AppendLine($"- {s}");
        sb.AppendLine($"- examples: {r.Sizes.Train:N0} train (the most recent), {r.Sizes.Validation:N0} validation, {r.Sizes.Test:N0} test (the earliest of the validation and test splits); the baselines are fitted on the same training examples");
        var st = r.Training.State;
        sb.AppendLine($"- training: {st.Step} of {st.TotalSteps} steps{(st.EarlyStopped ? " (early stopped)" : "")}, best validation AUC {st.BestAuc:0.0000} at step {st.BestStep}" +
                      (r.Training.CachedLayer >= 0 ? $", frozen layers below layer {r.Training.CachedLayer} cached" : ""));
        sb.AppendLine($"- time: cache {r.Training.CacheSeconds:0} s, training + validation {r.Training.TrainSeconds:0} s, test scoring {r.Seconds.Test:0} s, baselines {r.Seconds.Baselines:0.0} s");
        sb.AppendLine();
        sb.AppendLine("## Test metrics").AppendLine();
        var models = new List<ScoredModel> { r.Model };
        models.AddRange(r.Baselines);
        int k = r.Model.Metrics.Ranking.Length > 0 ? r.Model.Metrics.Ranking[0].K : 0;
        sb.AppendLine($"| model | AUC | GAUC | log loss | accuracy@0.5 | F1@best | RMSE | ECE |{(k > 0 ? $" Recall@{k} | NDCG@{k} |" : "")}");
        sb.AppendLine($"|---|---|---|---|---|---|---|---|{(k > 0 ? "---|---|" : "")}");
        foreach (var m in models)
        {
            var x = m.Metrics;
            var rank = k > 0 ? x.Ranking[0] : null;
            sb.AppendLine($"| {m.Name} | {x.Auc:0.0000} | {x.Gauc.Format()} | {x.LogLoss:0.0000} | {x.AtHalf.Accuracy:0.0000} | {x.AtBestF1.F1:0.0000} | {x.Rmse:0.0000} | {x.Ece:0.0000} |" +
                          (rank is null ? "" : $" {rank.Recall:0.0000} | {rank.Ndcg:0.0000} |"));
        }
        sb.AppendLine();
        var best = r.BestBaseline;
        sb.AppendLine($"**Lift over the best baseline ({best.Name})**: AUC {Signed(r.AucLift)} ({Signed(100 * r.AucLift / best.Metrics.Auc)} %), " +
                      (r.Model.Metrics.Gauc.Reportable && best.Metrics.Gauc.Reportable ? $"GAUC {Signed(r.Model.Metrics.Gauc.Value - best.Metrics.Gauc.Value)}, " : "") + $"log loss {Signed(r.Model.Metrics.LogLoss - best.Metrics.LogLoss)} (lower is better).");
        sb.AppendLine();
        sb.AppendLine($"GAUC uses {r.Model.Metrics.Gauc.UsersUsed} users; {r.Model.Metrics.Gauc.UsersSkipped} users with one class only are skipped" +
                      (r.Model.Metrics.Gauc.Reportable ? "." : $"; below {GaucResult.MinUsers} users it is not reported (n/a)."));
        sb.AppendLine("Validation AUC of the baselines: " + string.Join(", ", r.BaselineValidationAuc.Select(kv => $"{kv.Key} {kv.Value:0.0000}")) + ".");
        sb.AppendLine();
        sb.AppendLine("## Training curves").AppendLine();
        sb.AppendLine("| step | epoch | train loss | val loss | val AUC |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var e in st.Evaluations)
            sb.AppendLine($"| {e.Step} | {e.Epoch:0.00} | {e.TrainLoss:0.0000} | {e.ValidationLoss:0.0000} | {e.ValidationAuc:0.0000} |");
        sb.AppendLine();
        foreach (var (file, caption) in plots) sb.AppendLine($"![{caption}]({file})").AppendLine();
        string path = Path.Combine(dir, "report.md");
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    private static string Signed(double v) => (v >= 0 ? "+" : "") + v.ToString("0.0000", Inv);

    /// <summary>The ScottPlot figures.</summary>
    private static class Plots
    {
        public static List<(string File, string Caption)> WriteAll(string dir, ExperimentReport r)
        {
            var list = new List<(string, string)>();
            var st = r.Training.State;
            // Loss by step: every step's training loss, a moving average, and the validation loss at each evaluation.
            {
                var plt = new ScottPlot.Plot();
                double[] xs = Enumerable.Range(1, st.StepLosses.Count).Select(i => (double)i).ToArray();
                double[] ys = st.StepLosses.Select(v => (double)v).ToArray();
                if (xs.Length > 0)
                {
                    var raw = plt.Add.Scatter(xs, ys);
                    raw.LegendText = "train loss (step)"; raw.MarkerSize = 0; raw.LineWidth = 1; raw.Color = raw.Color.WithAlpha(0.35);
                    var avg = plt.Add.Scatter(xs, MovingAverage(ys, Math.Max(1, ys.Length / 25)));
                    avg.LegendText = "train loss (moving average)"; avg.MarkerSize = 0; avg.LineWidth = 2;
                }
                if (st.Evaluations.Count > 0)
                {
                    var v = plt.Add.Scatter(st.Evaluations.Select(e => (double)e.Step).ToArray(), st.Evaluations.Select(e => e.ValidationLoss).ToArray());
                    v.LegendText = "validation loss"; v.MarkerSize = 7; v.LineWidth = 2;
                }
                plt.Title("Loss by step"); plt.XLabel("optimizer step"); plt.YLabel("BCE");
                plt.ShowLegend();
                plt.SavePng(Path.Combine(dir, "loss.png"), 800, 450);
                list.Add(("loss.png", "train and validation loss by step"));
            }
            // Validation AUC by step, with the baselines' validation AUC.
            {
                var plt = new ScottPlot.Plot();
                if (st.Evaluations.Count > 0)
                {
                    var v = plt.Add.Scatter(st.Evaluations.Select(e => (double)e.Step).ToArray(), st.Evaluations.Select(e => e.ValidationAuc).ToArray());
                    v.LegendText = "fine-tuned model"; v.MarkerSize = 7; v.LineWidth = 2;
                }
                foreach (var (name, auc) in r.BaselineValidationAuc)
                {
                    var h = plt.Add.HorizontalLine(auc);
                    h.LegendText = name; h.LinePattern = ScottPlot.LinePattern.Dashed;
                }
                plt.Title("Validation AUC by step"); plt.XLabel("optimizer step"); plt.YLabel("AUC");
                plt.ShowLegend();
                plt.SavePng(Path.Combine(dir, "auc.png"), 800, 450);
                list.Add(("auc.png", "validation AUC by step"));
            }
            // ROC curves on the test set.
            {
                var plt = new ScottPlot.Plot();
                foreach (var m in new[] { r.Model }.Concat(r.Baselines))
                {
                    var roc = m.Metrics.Roc;
                    var s = plt.Add.Scatter(roc.FalsePositiveRate, roc.TruePositiveRate);
                    s.LegendText = $"{m.Name} (AUC {m.Metrics.Auc:0.000})"; s.MarkerSize = 0; s.LineWidth = 2;
                }
                var d = plt.Add.Line(0, 0, 1, 1);
                d.LinePattern = ScottPlot.LinePattern.Dotted; d.Color = ScottPlot.Colors.Gray;
                plt.Title("ROC (test)"); plt.XLabel("false positive rate"); plt.YLabel("true positive rate");
                plt.Axes.SetLimits(0, 1, 0, 1);
                plt.ShowLegend(ScottPlot.Alignment.LowerRight);
                plt.SavePng(Path.Combine(dir, "roc.png"), 600, 600);
                list.Add(("roc.png", "ROC curve on the test set"));
            }
            // Calibration on the test set.
            {
                var plt = new ScottPlot.Plot();
                foreach (var m in new[] { r.Model }.Concat(r.Baselines))
                {
                    var bins = m.Metrics.Calibration.Where(b => b.Count > 0).ToArray();
                    var s = plt.Add.Scatter(bins.Select(b => b.MeanProbability).ToArray(), bins.Select(b => b.MeanLabel).ToArray());
                    s.LegendText = $"{m.Name} (ECE {m.Metrics.Ece:0.000})"; s.MarkerSize = 6; s.LineWidth = 2;
                }
                var d = plt.Add.Line(0, 0, 1, 1);
                d.LinePattern = ScottPlot.LinePattern.Dotted; d.Color = ScottPlot.Colors.Gray;
                plt.Title("Calibration (test)"); plt.XLabel("mean predicted probability"); plt.YLabel("positive rate");
                plt.Axes.SetLimits(0, 1, 0, 1);
                plt.ShowLegend(ScottPlot.Alignment.UpperLeft);
                plt.SavePng(Path.Combine(dir, "calibration.png"), 600, 600);
                list.Add(("calibration.png", "calibration curve on the test set"));
            }
            return list;
        }

        private static double[] MovingAverage(double[] ys, int w)
        {
            var o = new double[ys.Length];
            double sum = 0;
            for (int i = 0; i < ys.Length; i++)
            {
                sum += ys[i];
                if (i >= w) sum -= ys[i - w];
                o[i] = sum / Math.Min(i + 1, w);
            }
            return o;
        }
    }

    /// <summary>A plain-text metrics table for the console.</summary>
    public static string ConsoleTable(IEnumerable<ScoredModel> models)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"  {"model",-28} {"AUC",8} {"GAUC (users)",-20} {"logloss",8} {"acc@0.5",8} {"F1@best",8} {"ECE",8}");
        foreach (var m in models)
        {
            MetricsReport x = m.Metrics;
            sb.AppendLine($"  {Trim(m.Name, 28),-28} {x.Auc,8:0.0000} {x.Gauc.Format(),-20} {x.LogLoss,8:0.0000} {x.AtHalf.Accuracy,8:0.0000} {x.AtBestF1.F1,8:0.0000} {x.Ece,8:0.0000}");
        }
        return sb.ToString();
    }

    private static string Trim(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}
