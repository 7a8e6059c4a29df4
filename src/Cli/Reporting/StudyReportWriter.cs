// Writes the transfer study's report.md (tables per metric, lifts with intervals) and its learning-curve plots.
using System.Globalization;
using System.Text;
using FastRec.Engine.Evaluation;

namespace FastRec.Cli.Reporting;

internal static class StudyReportWriter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The metrics of the tables and plots: (title, accessor, higher is better).</summary>
    public static readonly (string Name, Func<TransferPoint, double> Get)[] Metrics =
    [
        ("GAUC", p => p.Gauc), ("AUC", p => p.Auc), ("NDCG@10 (full ranking)", p => p.Ndcg10), ("Recall@20 (full ranking)", p => p.Recall20),
        ("cold-item GAUC", p => p.ColdGauc), ("log loss", p => p.LogLoss),
    ];

    /// <summary>Writes report.md, results.csv and the plots into <paramref name="dir"/>; returns the report's path.</summary>
    public static string Write(string dir, TransferStudyResult r, IEnumerable<string> setup)
    {
        Directory.CreateDirectory(dir);
        var windows = r.Points.Select(p => p.Window).Distinct().Order().ToArray();
        var rows = windows.ToDictionary(w => w, w => r.Points.First(p => p.Window == w).TrainRows);
        var sb = new StringBuilder();
        sb.AppendLine("# FastRec transfer study: does the pretrained encoder help?").AppendLine();
        sb.AppendLine($"Generated {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", Inv)} UTC on {Environment.ProcessorCount} cores; wall time {r.Seconds:0} s.").AppendLine();
        sb.AppendLine("## Setup").AppendLine();
        foreach (var s in setup) sb.AppendLine($"- {s}");
        sb.AppendLine($"- test: {r.Test.Rows:N0} rows of {r.Test.Users:N0} users ({r.Test.ColdRows:N0} rows on items without a training interaction at the 100 % window); " +
                      $"full ranking over the whole catalogue for {r.Test.RankingUsers:N0} test users (an evenly spaced sample of the users with a test positive)");
        sb.AppendLine("- variants: " + string.Join("; ", r.Variants.Select(v => $"({v.Key}) {v.Name}")));
        sb.AppendLine();
        sb.AppendLine("Cells: mean ± standard deviation over seeds. Columns: training window (share of the training period, most recent part) and its labelled examples.");
        sb.AppendLine();
        foreach (var (name, get) in Metrics)
            sb.AppendLine($"### {name}").AppendLine().AppendLine(MetricTable(r, name, get));
        sb.AppendLine("## Lifts (paired bootstrap over test users, first seed's models, 95 % interval)").AppendLine();
        sb.AppendLine("| window | comparison | metric | result |");
        sb.AppendLine("|---|---|---|---|");
        foreach (var l in r.Lifts)
            sb.AppendLine($"| {l.Window:P0} | ({l.Variant}) over ({l.Over}) | {l.Metric} | {l.Lift} |");
        sb.AppendLine();
        foreach (var (file, caption) in Plot(dir, r, windows, rows)) sb.AppendLine($"![{caption}]({file})").AppendLine();
        File.WriteAllText(Path.Combine(dir, "results.csv"), Csv(r));
        string path = Path.Combine(dir, "report.md");
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    /// <summary>One metric as a markdown table: a row per variant, a column per training window (with its labelled
    /// examples), cells mean ± sd over seeds.</summary>
    public static string MetricTable(TransferStudyResult r, string metric, Func<TransferPoint, double> get)
    {
        var windows = r.Points.Select(p => p.Window).Distinct().Order().ToArray();
        var sb = new StringBuilder();
        sb.AppendLine("| variant | " + string.Join(" | ", windows.Select(w => $"{metric} {w:P0} ({r.Points.First(p => p.Window == w).TrainRows:N0})")) + " |");
        sb.AppendLine("|---|" + string.Concat(windows.Select(_ => "---:|")));
        foreach (var (key, vname) in r.Variants)
            sb.AppendLine($"| ({key}) {vname} | " + string.Join(" | ", windows.Select(w => Cell(r.Summary(key, w, get)))) + " |");
        return sb.ToString();
    }

    /// <summary>"0.7812 ± 0.0011", or "n/a" when undefined.</summary>
    public static string Cell((double Mean, double Sd, int N) s)
        => s.N == 0 || !double.IsFinite(s.Mean) ? "n/a" : s.N == 1 ? s.Mean.ToString("0.0000", Inv) : $"{s.Mean.ToString("0.0000", Inv)} ± {s.Sd.ToString("0.0000", Inv)}";

    private static string Csv(TransferStudyResult r)
    {
        var sb = new StringBuilder("variant,window,seed,train_rows,train_users,validation_auc,best_epoch,auc,gauc,log_loss,cold_gauc,ndcg_at_10,recall_at_20,seconds\n");
        foreach (var p in r.Points)
            sb.AppendLine(string.Join(",", new object[] { p.Variant, p.Window, p.Seed, p.TrainRows, p.TrainUsers, p.ValidationAuc, p.BestEpoch, p.Auc, p.Gauc,
                                                          p.LogLoss, p.ColdGauc, p.Ndcg10, p.Recall20, p.Seconds }.Select(o => Convert.ToString(o, Inv))));
        return sb.ToString();
    }

    private static List<(string, string)> Plot(string dir, TransferStudyResult r, double[] windows, Dictionary<double, int> rows)
    {
        var list = new List<(string, string)>();
        foreach (var (name, get, file) in new (string, Func<TransferPoint, double>, string)[]
                 { ("GAUC", p => p.Gauc, "learning-gauc.png"), ("NDCG@10 (full ranking)", p => p.Ndcg10, "learning-ndcg.png"), ("cold-item GAUC", p => p.ColdGauc, "learning-cold-gauc.png") })
        {
            var plt = new ScottPlot.Plot();
            double[] xs = windows.Select(w => Math.Log10(rows[w])).ToArray();
            foreach (var (key, vname) in r.Variants)
            {
                var s = windows.Select(w => r.Summary(key, w, get)).ToArray();
                var ok = Enumerable.Range(0, s.Length).Where(i => s[i].N > 0 && double.IsFinite(s[i].Mean)).ToArray();
                if (ok.Length == 0) continue;
                var line = plt.Add.Scatter(ok.Select(i => xs[i]).ToArray(), ok.Select(i => s[i].Mean).ToArray());
                line.LegendText = $"({key}) {vname}"; line.LineWidth = 2; line.MarkerSize = 6;
                var bars = plt.Add.ErrorBar(ok.Select(i => xs[i]).ToArray(), ok.Select(i => s[i].Mean).ToArray(), ok.Select(i => s[i].Sd).ToArray());
                bars.Color = line.Color;
            }
            plt.Axes.Bottom.SetTicks(xs, windows.Select(w => $"{rows[w]:N0}\n({w:P0})").ToArray());
            plt.Title($"{name} vs labelled training examples (test, mean ± sd over seeds)");
            plt.XLabel("labelled training examples (log scale; share of the training period)"); plt.YLabel(name);
            plt.ShowLegend(ScottPlot.Alignment.LowerRight);
            plt.SavePng(Path.Combine(dir, file), 900, 520);
            list.Add((file, $"learning curve: {name}"));
        }
        return list;
    }
}
