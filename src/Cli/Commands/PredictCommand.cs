// `fastrec predict`: score every row of an interactions file with a FastRec checkpoint and write scores.csv.
using System.CommandLine;
using System.Globalization;
using System.Text;
using FastRec.Engine.Data;
using FastRec.Engine.Training;
using FastRec.Engine.Weights;

namespace FastRec.Cli.Commands;

internal static class PredictCommand
{
    public static Command Build()
    {
        var data = new DataOptions();
        var backend = new BackendOptions();
        var model = new Option<string>("--model") { Description = "FastRec checkpoint directory", Required = true };
        var outFile = new Option<string>("--out") { Description = "CSV to write: user,item,timestamp,label,score", Required = true };
        var batch = new Option<int>("--batch-size") { Description = "Examples per forward pass", DefaultValueFactory = _ => 64 };
        var cmd = new Command("predict",
            "Score every row of --interactions (context = the user's earlier positive rows in the same file, as in training) and write scores.csv");
        data.AddTo(cmd); backend.AddTo(cmd);
        CliRun.AtLeast(batch, 1);
        foreach (var o in new Option[] { model, outFile, batch }) cmd.Options.Add(o);
        cmd.SetAction(r => CliRun.Guard(() =>
        {
            OutputPaths.OutFile(r.GetValue(outFile)!, "--out");
            using var b = backend.Create(r);
            using var rec = Checkpoint.Load(r.GetValue(model)!, b).Recommender;
            var schema = data.Schema(r, rec.Schema);
            var table = data.Table(r, schema);
            var set = RecDataset.BuildAll(table, schema.Examples with { NegativesPerPositive = 0 });
            var p = rec.Predict(set, r.GetValue(batch));
            var sb = new StringBuilder("user,item,timestamp,label,score\n");
            var inv = CultureInfo.InvariantCulture;
            for (int i = 0; i < set.Count; i++)
                sb.Append(Csv(set.UserIds[set.Users[i]])).Append(',').Append(Csv(set.Catalog.Id(set.Items[i]))).Append(',')
                  .Append(set.Timestamps[i].ToString(inv)).Append(',').Append(set.Labels[i].ToString(inv)).Append(',')
                  .Append(p[i].ToString("0.000000", inv)).Append('\n');
            string path = r.GetValue(outFile)!;
            AtomicFile.WriteText(path, sb.ToString());
            Console.WriteLine($"scored {set.Count:N0} rows -> {Path.GetFullPath(path)}");
            return 0;
        }));
        return cmd;
    }

    private static string Csv(string s) => s.IndexOfAny([',', '"', '\n', '\r']) < 0 ? s : "\"" + s.Replace("\"", "\"\"") + "\"";
}
