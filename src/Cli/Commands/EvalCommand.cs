// `fastrec eval`: score a split with a FastRec checkpoint and compare with the baselines; table or --json.
using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using FastRec.Cli.Reporting;
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Metrics;
using FastRec.Engine.Training;

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
}
