// `fastrec study transfer|cold-items|distill-items`: the transfer ablations, the strict cold-item test and the item-encoder
// distillation, each a table and a report.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using FastRec.Cli.Reporting;
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Distillation;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Representations;
using FastRec.Engine.Weights;

namespace FastRec.Cli.Commands;

internal static class StudyCommand
{
    public static Command Build()
    {
        var cmd = new Command("study", "Evaluation studies: transfer (learning curves of five item representations), cold-items (the strict new-item test) " +
                                       "and distill-items (smaller item encoders for the item tower)");
        cmd.Subcommands.Add(Transfer());
        cmd.Subcommands.Add(ColdItems());
        cmd.Subcommands.Add(DistillItems());
        return cmd;
    }

    /// <summary>Options both studies share.</summary>
    private sealed class Common
    {
        public readonly DataOptions Data = new();
        public readonly BackendOptions Backend = new();
        public readonly Option<string> Model = new("--model") { Description = "Encoder of variants (a) and (b) and the zero-shot baseline (default: minilm)", DefaultValueFactory = _ => "minilm" };
        public readonly Option<string> Out = new("--out") { Description = "Report folder" };
        public readonly Option<string> Cache = new("--cache") { Description = "Folder of the item-vector cache ('none' = no cache)", DefaultValueFactory = _ => "out/cache" };
        public readonly Option<int?> Epochs = new("--epochs") { Description = "Most epochs of the head (early stopping on validation AUC; default 12)" };
        public readonly Option<int?> RankingUsers = new("--ranking-users") { Description = "Full ranking for N evenly spaced test users (0 = all)" };
        public readonly Option<bool> Json = new("--json") { Description = "Print the results as one JSON document on stdout (progress goes to stderr)" };

        public void AddTo(Command c, string defaultOut)
        {
            Data.AddTo(c); Backend.AddTo(c);
            Out.DefaultValueFactory = _ => defaultOut;
            foreach (var o in new Option[] { Model, Out, Cache, Epochs, RankingUsers, Json }) c.Options.Add(o);
        }

        public string? CacheDir(ParseResult r) => r.GetValue(Cache) is { } c && !c.Equals("none", StringComparison.OrdinalIgnoreCase) ? c : null;

        public ItemVectorModelOptions Head(ParseResult r)
        {
            var h = new ItemVectorModelOptions();
            if (r.GetValue(Epochs) is { } e) h = h with { Epochs = e > 0 ? e : throw new ArgumentException($"--epochs must be >= 1, got {e}") };
            return h;
        }

        /// <summary>--held-out of the cold-item studies (added by <see cref="AddHeldOut"/>).</summary>
        public readonly Option<double> HeldOut = new("--held-out") { Description = "Share of the items held out as new (the latest to appear)", DefaultValueFactory = _ => 0.2 };

        /// <summary>Adds the options and --held-out.</summary>
        public void AddHeldOut(Command c, string defaultOut) { AddTo(c, defaultOut); c.Options.Add(HeldOut); }

        /// <summary>The report folder (checked writable) and the held-out share (checked in (0, 1)).</summary>
        public (string Dir, double HeldOut) OutAndHeldOut(ParseResult r)
        {
            string dir = r.GetValue(Out)!;
            OutputPaths.Dir(dir, "--out");
            double heldOut = r.GetValue(HeldOut);
            if (!(heldOut > 0 && heldOut < 1)) throw new ArgumentException($"--held-out must be in (0, 1), got {heldOut}");
            return (dir, heldOut);
        }

        /// <summary>Prints the result: one JSON document with --json, else the console summary and the report's path.</summary>
        public int Emit(ParseResult r, string report, Func<JsonObject> json, Func<string> summary, Stopwatch wall)
        {
            if (r.GetValue(Json)) CliRun.EmitJson(json());
            else
            {
                Console.Write(summary());
                Console.WriteLine($"report: {Path.GetFullPath(report)} ({wall.Elapsed.TotalSeconds:0} s)");
            }
            return 0;
        }

        /// <summary>The raw table (no derived features) and the schema's example options with history features on.</summary>
        public (InteractionTable Raw, ExampleOptions Examples) Load(ParseResult r)
        {
            var schema = Data.Schema(r) with { HistoryFeatures = false };
            if (schema.Examples.Split != SplitKind.Temporal) throw new ArgumentException("studies need the temporal split");
            if (schema.Examples.NegativesPerPositive != 0) throw new ArgumentException("studies evaluate real interactions: use --negatives 0");
            return (Data.Table(r, schema), schema.Examples);
        }

    }

    private static Command Transfer()
    {
        var c = new Common();
        var windows = new Option<string>("--windows") { Description = "Training windows: fractions of the training period, most recent part", DefaultValueFactory = _ => "0.01,0.05,0.25,1" };
        var seeds = new Option<int>("--seeds") { Description = "Seeds per variant and window", DefaultValueFactory = _ => 3 };
        var variants = new Option<string>("--variants") { Description = "a pretrained encoder, b random-init encoder, c genre+year+title words, d ID embeddings, e history only", DefaultValueFactory = _ => "a,b,c,d,e" };
        var cmd = new Command("transfer", "Does the pretrained encoder transfer? The same head over five item representations at several training windows and seeds");
        c.AddTo(cmd, "out/study/transfer");
        foreach (var o in new Option[] { windows, seeds, variants }) cmd.Options.Add(o);
        cmd.SetAction(r => CliRun.Guard(() =>
        {
            Action<string> log = CliRun.Info;
            string dir = r.GetValue(c.Out)!;
            OutputPaths.Dir(dir, "--out");
            var fractions = ParseFractions(r.GetValue(windows)!);
            int nSeeds = r.GetValue(seeds);
            if (nSeeds < 1) throw new ArgumentException($"--seeds must be >= 1, got {nSeeds}");
            var wall = Stopwatch.StartNew();
            using var b = c.Backend.Create(r);
            var (raw, examples) = c.Load(r);
            var full = RecDataset.Build(HistoryFeatures.Append(raw), examples);
            var bounds = StudyBoundaries.Of(full);
            var keys = r.GetValue(variants)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            bool needsEncoder = keys.Any(k => k is "a" or "b");
            string model = needsEncoder ? CliRun.ResolveModel(r.GetValue(c.Model)!) : r.GetValue(c.Model)!;
            var list = TransferVariants.Build(keys, model, raw.Catalog, b, c.CacheDir(r), log: log);
            var options = new TransferStudyOptions
            {
                Windows = fractions, Seeds = nSeeds, Head = c.Head(r), RankingUsers = r.GetValue(c.RankingUsers) ?? new TransferStudyOptions().RankingUsers,
            };
            var result = TransferStudy.Run(raw, t => HistoryFeatures.Append(t), examples, bounds, list, b, options, log);
            result.Seconds = wall.Elapsed.TotalSeconds;
            string report = StudyReportWriter.Write(dir, result,
            [
                $"data: {raw.Source} ({raw.Count:N0} interactions, {raw.Catalog.Count:N0} items), temporal split; validation and test rows fixed at every window",
                $"head: ItemVectorModel (wide & deep over [liked/disliked history profiles x candidate vector, candidate vector, cosines, history features]), hidden {options.Head.Hidden}, " +
                $"history {options.Head.HistoryLength}, AdamW lr {options.Head.LearningRate}, batch {options.Head.BatchSize}, up to {options.Head.Epochs} epochs, early stopping on validation AUC (patience {options.Head.Patience})",
                $"encoder: {model}; item text \"Title (Year). Genres: a, b\", masked mean pooling + L2 (as the encoder was trained); random init = HF BERT init, same tokenizer",
                $"seeds: {nSeeds} (head init and order; BPR init for (d)); backend {b.Name}",
            ]);
            if (r.GetValue(c.Json)) CliRun.EmitJson(TransferJson(result));
            else
            {
                foreach (var l in result.Lifts.Where(l => l.Metric == "GAUC" || l.Metric == "NDCG@10"))
                    Console.WriteLine($"  {l.Window,5:P0}  ({l.Variant}) over ({l.Over}) {l.Metric,-8} {l.Lift}");
                Console.WriteLine($"report: {Path.GetFullPath(report)} ({result.Seconds:0} s)");
            }
            return 0;
        }, r.GetValue(c.Json)));
        return cmd;
    }

    private static Command ColdItems()
    {
        var c = new Common();
        var cmd = new Command("cold-items", "The strict cold-item test: hold out the newest 20 % of items, drop their rows before the test window, rank among them");
        c.AddHeldOut(cmd, "out/study/cold-items");
        cmd.SetAction(r => CliRun.Guard(() =>
        {
            Action<string> log = CliRun.Info;
            var (dir, heldOut) = c.OutAndHeldOut(r);
            var wall = Stopwatch.StartNew();
            using var b = c.Backend.Create(r);
            string model = CliRun.ResolveModel(r.GetValue(c.Model)!);
            var (raw, examples) = c.Load(r);
            var full = RecDataset.Build(HistoryFeatures.Append(raw), examples);
            var text = EncoderItemVectors.Compute(model, b, raw.Catalog, new EncoderItemVectorOptions { CacheDirectory = c.CacheDir(r) }, log);
            var result = ColdItemStudy.Run(raw, t => HistoryFeatures.Append(t), examples, StudyBoundaries.Of(full), text, NonNeuralItemVectors.Compute(raw.Catalog), b,
                new ColdItemStudyOptions { HeldOut = heldOut, Head = c.Head(r), RankingUsers = r.GetValue(c.RankingUsers) ?? 0 }, log);
            string report = ColdItemReportWriter.Write(dir, result, wall.Elapsed.TotalSeconds);
            return c.Emit(r, report, () => ColdJson(result), () => ColdItemReportWriter.ConsoleSummary(result), wall);
        }, r.GetValue(c.Json)));
        return cmd;
    }

    private static Command DistillItems()
    {
        var c = new Common();
        var layers = new Option<string>("--layers") { Description = "Student depths, each initialised from every k-th teacher layer", DefaultValueFactory = _ => "3,2" };
        var distillEpochs = new Option<int>("--distill-epochs") { Description = "Passes of the sentence-embedding distillation over the items' texts", DefaultValueFactory = _ => 4 };
        var noCopy = new Option<bool>("--no-copy") { Description = "Skip the undistilled (copied layers only) students" };
        var cmd = new Command("distill-items", "Distil the item tower's encoder into smaller students on the items' texts, re-encode the catalogue with them, " +
                                               "refit the tower and measure the lift kept on strictly new items and the encode time per item");
        c.AddHeldOut(cmd, "out/study/distill-items");
        foreach (var o in new Option[] { layers, distillEpochs, noCopy }) cmd.Options.Add(o);
        cmd.SetAction(r => CliRun.Guard(() =>
        {
            Action<string> log = CliRun.Info;
            var (dir, heldOut) = c.OutAndHeldOut(r);
            int epochs = r.GetValue(distillEpochs);
            if (epochs < 1) throw new ArgumentException($"--distill-epochs must be >= 1, got {epochs}");
            var depths = new List<int>();
            foreach (var part in r.GetValue(layers)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                depths.Add(int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int l) && l >= 1
                    ? l : throw new ArgumentException($"--layers: '{part}' is not a layer count >= 1"));
            if (depths.Count == 0) throw new ArgumentException("--layers: give at least one student depth");
            var wall = Stopwatch.StartNew();
            using var b = c.Backend.Create(r);
            string model = CliRun.ResolveModel(r.GetValue(c.Model)!);
            int teacherLayers = BertCheckpoint.Open(model).Config.NumHiddenLayers;
            foreach (int l in depths)
                if (l >= teacherLayers) throw new ArgumentException($"--layers: a student of {l} layers is not smaller than the {teacherLayers}-layer teacher {model}");
            var (raw, examples) = c.Load(r);
            var full = RecDataset.Build(HistoryFeatures.Append(raw), examples);
            var options = new ItemDistillStudyOptions
            {
                HeldOut = heldOut, StudentLayers = depths.Distinct().ToArray(), Truncated = !r.GetValue(noCopy),
                Distill = new ItemEncoderDistillOptions { Epochs = epochs }, RankingUsers = r.GetValue(c.RankingUsers) ?? 0,
                Tower = r.GetValue(c.Epochs) is not null ? new TowerModelOptions { Epochs = c.Head(r).Epochs } : new TowerModelOptions(),
            };
            var result = ItemDistillStudy.Run(raw, t => HistoryFeatures.Append(t), examples, StudyBoundaries.Of(full), model,
                NonNeuralItemVectors.Compute(raw.Catalog), b, Path.Combine(dir, "students"), options, log);
            string report = ItemDistillReportWriter.Write(dir, result, b.Name);
            return c.Emit(r, report, () => ItemDistillJson(result), () => ItemDistillReportWriter.ConsoleSummary(result), wall);
        }, r.GetValue(c.Json)));
        return cmd;
    }

    private static JsonObject ItemDistillJson(ItemDistillStudyResult r)
    {
        var encoders = new JsonArray();
        foreach (var e in r.Encoders)
        {
            var row = r.Board[e.Model];
            encoders.Add(new JsonObject
            {
                ["model"] = e.Model, ["encoder"] = e.Encoder, ["layers"] = e.Layers, ["ms_per_item"] = e.MsPerItem,
                ["distance_to_teacher"] = CliRun.JsonNumber(e.Distillation?.FinalDistance ?? 0), ["distill_seconds"] = CliRun.JsonNumber(e.Distillation?.Seconds ?? double.NaN),
                ["auc"] = CliRun.JsonNumber(row.Metrics?.Auc ?? double.NaN), ["gauc"] = CliRun.JsonNumber(ItemDistillStudy.Gauc(row)), ["ndcg_at_10"] = CliRun.JsonNumber(ItemDistillStudy.Ndcg(row)),
                ["gauc_lift_kept"] = CliRun.JsonNumber(r.Kept.GetValueOrDefault((e.Model, "GAUC"), double.NaN)),
                ["ndcg_lift_kept"] = CliRun.JsonNumber(r.Kept.GetValueOrDefault((e.Model, "NDCG@10"), double.NaN)),
            });
        }
        var reference = r.Board[ItemDistillStudy.NonNeuralTower];
        return new JsonObject
        {
            ["held_out_items"] = r.HeldOutItems, ["dropped_rows"] = r.DroppedRows, ["test_rows"] = r.Board.Test.Rows, ["test_users"] = r.Board.Test.Users,
            ["encoders"] = encoders,
            ["non_neural"] = new JsonObject { ["gauc"] = CliRun.JsonNumber(ItemDistillStudy.Gauc(reference)), ["ndcg_at_10"] = CliRun.JsonNumber(ItemDistillStudy.Ndcg(reference)) },
            ["lifts"] = CliRun.Json(r.Lifts), ["students"] = r.StudentsDirectory, ["seconds"] = r.Seconds,
        };
    }

    internal static double[] ParseFractions(string text)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new ArgumentException("--windows: give at least one fraction in (0, 1]");
        var f = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out f[i]) || !(f[i] > 0 && f[i] <= 1))
                throw new ArgumentException($"--windows: '{parts[i]}' is not a fraction in (0, 1]");
        return f.Distinct().Order().ToArray();
    }

    private static JsonObject TransferJson(TransferStudyResult r)
    {
        var points = new JsonArray();
        foreach (var p in r.Points)
            points.Add(new JsonObject
            {
                ["variant"] = p.Variant, ["window"] = p.Window, ["seed"] = p.Seed, ["train_rows"] = p.TrainRows, ["train_users"] = p.TrainUsers,
                ["validation_auc"] = CliRun.JsonNumber(p.ValidationAuc), ["auc"] = CliRun.JsonNumber(p.Auc), ["gauc"] = CliRun.JsonNumber(p.Gauc), ["log_loss"] = CliRun.JsonNumber(p.LogLoss),
                ["cold_gauc"] = CliRun.JsonNumber(p.ColdGauc), ["ndcg_at_10"] = CliRun.JsonNumber(p.Ndcg10), ["recall_at_20"] = CliRun.JsonNumber(p.Recall20), ["seconds"] = p.Seconds,
            });
        var lifts = new JsonArray();
        foreach (var l in r.Lifts)
            lifts.Add(new JsonObject
            {
                ["variant"] = l.Variant, ["over"] = l.Over, ["window"] = l.Window, ["metric"] = l.Metric,
                ["delta"] = l.Lift.Delta, ["lo"] = l.Lift.Lo, ["hi"] = l.Lift.Hi, ["significant"] = l.Lift.Significant,
            });
        var variants = new JsonObject();
        foreach (var (k, n) in r.Variants) variants[k] = n;
        return new JsonObject { ["variants"] = variants, ["points"] = points, ["lifts"] = lifts, ["seconds"] = r.Seconds };
    }

    private static JsonObject ColdJson(ColdItemStudyResult r)
    {
        var models = new JsonObject();
        foreach (var row in r.Board.Rows)
            models[row.Name] = new JsonObject
            {
                ["blind"] = r.Blind.Contains(row.Name), ["validation_auc"] = CliRun.JsonNumber(row.Entry.ValidationAuc),
                ["auc"] = CliRun.JsonNumber(row.Metrics?.Auc ?? double.NaN), ["gauc"] = CliRun.JsonNumber(row.Metrics is { } m && m.Gauc.UsersUsed >= Slices.MinGaucUsers ? m.Gauc.Value : double.NaN),
                ["ndcg_at_10"] = CliRun.JsonNumber(row.Ranking?.Overall.NdcgAt(10) ?? double.NaN), ["recall_at_20"] = CliRun.JsonNumber(row.Ranking?.Overall.RecallAt(20) ?? double.NaN),
            };
        return new JsonObject
        {
            ["held_out_items"] = r.HeldOutItems, ["dropped_rows"] = r.DroppedRows, ["test_rows"] = r.Board.Test.Rows, ["test_users"] = r.Board.Test.Users,
            ["reference"] = r.Board.Reference?.Name, ["models"] = models, ["lifts"] = CliRun.Json(r.Board.Lifts),
        };
    }

}
