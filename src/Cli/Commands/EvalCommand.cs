// `fastrec eval`: score a split with a FastRec checkpoint and compare with the baselines; table or --json.
using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using FastRec.Cli.Reporting;
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Metrics;
using FastRec.Engine.Training;
using FastRec.Kernels;

namespace FastRec.Cli.Commands;

internal static class EvalCommand
{
    public static Command Build()
    {
        var data = new DataOptions();
        var backend = new BackendOptions();
        var model = new Option<string>("--model") { Description = "FastRec checkpoint directory (from fastrec train)", Required = true };
        var split = new Option<string>("--split") { Description = "The split to evaluate: test | validation | train | all (the data is split as the checkpoint's schema says)", DefaultValueFactory = _ => "test" };
        var max = new Option<int?>("--max") { Description = "Evaluate N evenly spaced examples of the split" };
        var noBaselines = new Option<bool>("--no-baselines") { Description = "Skip the popularity and bias baselines" };
        var batch = new Option<int>("--batch-size") { Description = "Examples per forward pass", DefaultValueFactory = _ => 64 };
        var json = new Option<bool>("--json") { Description = "Print the metrics as JSON on stdout (logs go to stderr)" };
        var cmd = new Command("eval", "Evaluate a FastRec checkpoint on a split of the data (default: the checkpoint's data and test split)");
        data.AddTo(cmd); data.AddResplitGuardTo(cmd); backend.AddTo(cmd);
        foreach (var o in new Option[] { model, split, max, noBaselines, batch, json }) cmd.Options.Add(o);
        cmd.SetAction(r => CliRun.Guard(() =>
        {
            using var b = backend.Create(r);
            using var rec = Checkpoint.Load(r.GetValue(model)!, b).Recommender;
            var schema = data.Schema(r, rec.Schema);
            data.CheckSplit(r, schema, rec.Schema, r.GetValue(model)!);
            var table = data.Table(r, schema);
            var ds = RecDataset.Build(table, schema.Examples);
            string which = r.GetValue(split)!.ToLowerInvariant();
            var set = which switch
            {
                "test" => ds.Test,
                "validation" or "val" => ds.Validation,
                "train" => ds.Train,
                "all" => RecDataset.BuildAll(table, schema.Examples),
                _ => throw new ArgumentException($"--split: '{which}' is not test, validation, train or all" +
                                                 (which is "temporal" or "random" ? " (how the data is split is --split-kind)" : "")),
            };
            if (which == "test" && !r.GetValue(noBaselines) && schema.Examples.Split == SplitKind.Temporal && schema.Examples.NegativesPerPositive == 0)
                return Scoreboard(r, rec, ds, b, r.GetValue(max), r.GetValue(batch), r.GetValue(json));
            set = Experiment.Spaced(set, r.GetValue(max));
            var mo = new MetricsOptions { ItemCount = ds.Catalog.Count };
            var p = rec.Predict(set, r.GetValue(batch));
            var models = new List<ScoredModel> { new("model", p, MetricsReport.Compute(set.Labels, p, set.Users, set.Items, mo)) };
            if (!r.GetValue(noBaselines))
                foreach (IBaseline bl in new IBaseline[] { PopularityBaseline.Fit(ds.Train), BiasBaseline.Fit(ds.Train) })
                {
                    var q = bl.Predict(set);
                    models.Add(new(bl.Name, q, MetricsReport.Compute(set.Labels, q, set.Users, set.Items, mo)));
                }
            if (r.GetValue(json))
            {
                var o = new JsonObject { ["split"] = which, ["examples"] = set.Count };
                foreach (var m in models) o[m.Name] = CliRun.Json(m.Metrics);
                CliRun.EmitJson(o);
            }
            else
            {
                Console.WriteLine($"{which}: {set.Count:N0} examples, {set.Positives:N0} positive");
                Console.Write(ExperimentReportWriter.ConsoleTable(models));
            }
            return 0;
        }, r.GetValue(json)));
        return cmd;
    }

    /// <summary>The test split the way a recommender expert reads it: the checkpoint against every strong baseline fitted on
    /// the same training window, per-example metrics, full ranking (baselines; the pair model cannot rank the catalogue),
    /// slices, and paired-bootstrap lifts over the baseline with the best validation AUC.</summary>
    private static int Scoreboard(ParseResult r, Recommender rec, RecDataset ds, IBackend b, int? max, int batch, bool json)
    {
        var test = ds.Test;
        int[] rows = Experiment.SpacedIndices(test.Count, max);
        var scored = rows.Length == test.Count ? test : test.Subset(rows, test.Name);
        CliRun.Info($"scoring {scored.Count:N0} test examples with the checkpoint ...");
        var p = rec.Predict(scored, batch);
        var full = new float[test.Count];
        for (int q = 0; q < rows.Length; q++) full[rows[q]] = p[q];
        var window = EvalWindow.FromDataset(ds);
        CliRun.Info("fitting the baselines on the training window (most popular, popularity, bias, history logistic, ItemKNN, BPR-MF) ...");
        var entries = new List<ScoreboardEntry>
        {
            new("model", full, double.NaN, null, IsBaseline: false, "a (history, candidate) pair model: one encoder pass per pair, so it does not rank the whole catalogue"),
        };
        foreach (var f in StrongBaselines.FitAll(window, ds.Train, ds.Validation, b))
            entries.Add(new(f.Name, f.Model.Predict(test), f.ValidationAuc, f.Model, IsBaseline: true));
        var board = Engine.Evaluation.Scoreboard.Build(window, test, entries, new ScoreboardOptions { Rows = rows.Length == test.Count ? null : rows });
        if (json)
        {
            var o = new JsonObject { ["split"] = "test", ["examples"] = board.Test.Rows, ["users"] = board.Test.Users, ["reference"] = board.Reference?.Name };
            foreach (var row in board.Rows)
            {
                var m = row.Metrics is null ? new JsonObject() : CliRun.Json(row.Metrics);
                m["validation_auc"] = CliRun.JsonNumber(row.Entry.ValidationAuc);
                if (row.Ranking is { } k)
                    m["full_ranking"] = new JsonObject
                    {
                        ["users"] = k.Overall.Users, ["hr_at_10"] = CliRun.JsonNumber(k.Overall.HitRateAt(10)), ["ndcg_at_10"] = CliRun.JsonNumber(k.Overall.NdcgAt(10)),
                        ["recall_at_20"] = CliRun.JsonNumber(k.Overall.RecallAt(20)), ["ndcg_at_50"] = CliRun.JsonNumber(k.Overall.NdcgAt(50)), ["mrr"] = CliRun.JsonNumber(k.Overall.Mrr),
                        ["sampled_100_hr_at_10"] = CliRun.JsonNumber(k.Overall.Sampled?.HitRate ?? double.NaN), ["sampled_100_ndcg_at_10"] = CliRun.JsonNumber(k.Overall.Sampled?.Ndcg ?? double.NaN),
                    };
                var slices = new JsonObject();
                foreach (var sl in row.Slices)
                    slices[sl.Name] = new JsonObject { ["rows"] = sl.Rows, ["share"] = sl.Share, ["auc"] = CliRun.JsonNumber(sl.Auc), ["gauc"] = CliRun.JsonNumber(sl.Gauc), ["gauc_users"] = sl.GaucUsers, ["log_loss"] = CliRun.JsonNumber(sl.LogLoss) };
                m["slices"] = slices;
                o[row.Name] = m;
            }
            o["lifts"] = CliRun.Json(board.Lifts);
            CliRun.EmitJson(o);
        }
        else
        {
            Console.WriteLine($"test: {board.Test.Rows:N0} examples ({board.Test.Positives:N0} positive) of {board.Test.Users:N0} users; reference = {board.Reference?.Name} (best validation AUC)");
            Console.Write(ScoreboardTables.Headline(board, TableFormat.Console));
            Console.WriteLine();
            if (board.Lifts.Count > 0) Console.WriteLine(EvaluationTables.LiftTable(board.Lifts, TableFormat.Console));
            Console.WriteLine(EvaluationTables.FullRankingTable(board.Rows.Where(x => x.Ranking is not null).Select(x => x.Ranking!).ToList(), TableFormat.Console));
            var names = new[] { "model", board.Reference?.Name }.OfType<string>().Distinct().ToList();
            Console.WriteLine(EvaluationTables.SliceTable(names.Select(n => (n, board[n].Slices)).ToList(), TableFormat.Console));
        }
        return 0;
    }

}
