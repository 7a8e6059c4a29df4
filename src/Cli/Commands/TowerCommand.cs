// `fastrec tower`: train the item-tower model on the data's training window (validation for selection) and save its scorer.
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Metrics;
using FastRec.Engine.Representations;

namespace FastRec.Cli.Commands;

internal static class TowerCommand
{
    public static Command Build()
    {
        var data = new DataOptions();
        var backend = new BackendOptions();
        var outFile = new Option<string>("--out") { Description = "The scorer file to write (weights, item table, item ids and texts); serve it with fastrec recommend", Required = true };
        var encoder = new Option<string>("--encoder") { Description = "Encoder of the item texts (default: minilm = models/minilm)", DefaultValueFactory = _ => "minilm" };
        var cache = new Option<string>("--cache") { Description = "Folder of the item-vector cache ('none' = no cache)", DefaultValueFactory = _ => "out/cache" };
        var epochs = new Option<int?>("--epochs") { Description = $"Most epochs (early stopping on validation; default {new TowerModelOptions().Epochs})" };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Training checkpoint file, written after every epoch; when it exists the training resumes from it (bit-identical to an uninterrupted run; a file of another run is refused)" };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace --out when it exists (without it, an existing file is refused)" };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON on stdout (progress goes to stderr)" };
        CliRun.AtLeast(epochs, 1);
        var cmd = new Command("tower",
            "Train the item-tower text recommender (cached item encodings, user tower over the rated history, wide & deep head) on the training window, " +
            "select the epoch on validation, and save the scorer with the catalogue for fastrec recommend");
        data.AddTo(cmd); backend.AddTo(cmd);
        foreach (var o in new Option[] { outFile, encoder, cache, epochs, checkpoint, overwrite, json }) cmd.Options.Add(o);
        cmd.SetAction(r => CliRun.Guard(() =>
        {
            string output = r.GetValue(outFile)!;
            OutputPaths.OutFile(output, "--out");
            if (File.Exists(output) && !r.GetValue(overwrite))
                throw new ArgumentException($"--out {output}: the file exists; add --overwrite to replace it");
            string? checkpointPath = r.GetValue(checkpoint);
            if (checkpointPath is not null) OutputPaths.OutFile(checkpointPath, "--checkpoint");
            var wall = Stopwatch.StartNew();
            using var b = backend.Create(r);
            var schema = data.Schema(r) with { HistoryFeatures = false };   // the model computes its own history features
            if (schema.Examples.Split != SplitKind.Temporal) throw new ArgumentException("--split-kind: the tower model needs the temporal split (it reads each user's history in time order)");
            if (schema.Examples.NegativesPerPositive != 0) throw new ArgumentException("--negatives: the tower model samples its own unrated items; use --negatives 0");
            var ds = RecDataset.Build(data.Table(r, schema), schema.Examples);
            var window = EvalWindow.FromDataset(ds);
            string model = CliRun.ResolveModel(r.GetValue(encoder)!);
            string? cacheDir = r.GetValue(cache) is { } c && !c.Equals("none", StringComparison.OrdinalIgnoreCase) ? c : null;
            var encoderOptions = new EncoderItemVectorOptions { CacheDirectory = cacheDir };
            var vectors = EncoderItemVectors.Compute(model, b, ds.Catalog, encoderOptions, CliRun.Info);
            var options = new TowerModelOptions();
            if (r.GetValue(epochs) is { } e) options = options with { Epochs = e };
            if (checkpointPath is not null) options = options with { CheckpointPath = checkpointPath };
            using var tower = TowerModel.Fit("tower", window, ds.Train, ds.Validation, vectors, b, options, CliRun.Info);
            double testAuc = RocAuc.Compute(ds.Test.Labels, tower.Predict(ds.Test));
            var scorer = tower.CreateScorer(window, includeTest: true);
            var result = new JsonObject
            {
                ["out"] = Path.GetFullPath(output), ["items"] = scorer.ItemCount, ["encoder"] = Path.GetFullPath(model), ["item_vectors"] = vectors.Name,
                ["encoder_max_length"] = encoderOptions.MaxLength, ["train_rows"] = tower.Trained.Rows, ["train_users"] = tower.Trained.Users,
                ["parameters"] = tower.ParameterCount, ["epochs_run"] = tower.History.Count, ["best_epoch"] = tower.Best.Epoch,
                ["validation_auc"] = CliRun.JsonNumber(tower.Best.ValidationAuc), ["validation_ndcg_at_10"] = CliRun.JsonNumber(tower.Best.ValidationNdcg),
                ["test_auc"] = CliRun.JsonNumber(testAuc),
            };
            var ids = new string[scorer.ItemCount]; var texts = new string[scorer.ItemCount];
            for (int i = 0; i < ids.Length; i++) { ids[i] = ds.Catalog.Id(i); texts[i] = ds.Catalog.Text(i); }
            scorer.Save(output, ids, texts, result.ToJsonString());
            result["seconds"] = wall.Elapsed.TotalSeconds;
            if (r.GetValue(json)) CliRun.EmitJson(result);
            else
            {
                Console.WriteLine($"tower: {tower.Trained.Rows:N0} training ratings of {tower.Trained.Users:N0} users; best epoch {tower.Best.Epoch} of {tower.History.Count}: " +
                                  $"validation AUC {tower.Best.ValidationAuc:0.0000}" + (double.IsNaN(tower.Best.ValidationNdcg) ? "" : $", NDCG@10 {tower.Best.ValidationNdcg:0.0000}") +
                                  $"; test AUC (like given rated) {testAuc:0.0000}");
                Console.WriteLine($"saved the scorer of {scorer.ItemCount:N0} items -> {Path.GetFullPath(output)} ({wall.Elapsed.TotalSeconds:0} s)");
            }
            return 0;
        }, r.GetValue(json)));
        return cmd;
    }
}
