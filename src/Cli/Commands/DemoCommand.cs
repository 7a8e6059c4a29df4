// `fastrec demo`: the main job on a fresh clone: MiniLM fine-tuned on MovieTweetings vs baselines, report + plots in out/demo.
using System.CommandLine;
using System.Diagnostics;
using FastRec.Cli.Reporting;
using FastRec.Engine.Data;
using FastRec.Engine.Distillation;
using FastRec.Engine.Model;
using FastRec.Engine.Training;

namespace FastRec.Cli.Commands;

internal static class DemoCommand
{
    /// <summary>CPU-friendly defaults, sized so the whole demo stays well under 15 minutes on a loaded 2-core machine:
    /// the top encoder layer, the pooler and the head train over cached activations of the five frozen layers. The head
    /// and pooler learn at 2e-3, the top encoder layer at 1e-4 (layer-wise decay 0.05).</summary>
    public static readonly TrainerOptions Trainer = new()
    {
        Epochs = 2, BatchSize = 32, LearningRate = 2e-3f, WarmupFraction = 0.1, WeightDecay = 0.01f, MaxGradNorm = 1f,
        Freeze = Freeze.TopK, TopK = 1, LayerLrDecay = 0.05f, EvalEverySteps = 50, Patience = 0, RestoreBest = true, Seed = 42, EvalBatchSize = 64,
    };
    public static readonly ExperimentOptions Sizes = new() { MaxTrain = 4000, MaxValidation = 800, MaxTest = 2000 };
    public static readonly TextOptions Text = new() { MaxLength = 48 };
    public static readonly AdapterConfig Head = new() { HiddenSizes = [64], Dropout = 0.1f, Input = AdapterInput.Pooler };
    /// <summary>Leak-free user/item history rates as dense features next to the text (the hybrid model); --text-only drops them.</summary>
    public const bool History = true;
    public const int ContextSize = 3;

    public static Command Build()
    {
        var backend = new BackendOptions();
        var t = new TrainerCliOptions();
        var outDir = new Option<string>("--out") { Description = "Where the report, plots and checkpoint go", DefaultValueFactory = _ => "out/demo" };
        var model = new Option<string>("--model") { Description = "Base model directory", DefaultValueFactory = _ => CliRun.MiniLmDir };
        var textOnly = new Option<bool>("--text-only") { Description = "Text alone: no history features in the head" };
        var noDistill = new Option<bool>("--no-distill") { Description = "Skip the distillation step (3-layer student of the fine-tuned teacher)" };
        var noCold = new Option<bool>("--no-cold-items") { Description = "Skip the strict cold-item test" };
        var noTransfer = new Option<bool>("--no-transfer") { Description = "Skip the transfer learning curve (pretrained vs random-init encoder by training-window size)" };
        var cache = new Option<string>("--cache") { Description = "Folder of the item-vector cache", DefaultValueFactory = _ => "out/cache" };
        var cmd = new Command("demo",
            "The main job: fine-tune all-MiniLM-L6-v2 (converted on first use) on the vendored MovieTweetings, compare with baselines, " +
            "write out/demo/report.md with plots");
        backend.AddTo(cmd); t.AddTo(cmd);
        foreach (var o in new Option[] { outDir, model, textOnly, noDistill, noCold, noTransfer, cache }) cmd.Options.Add(o);
        cmd.SetAction(r => CliRun.Guard(() =>
        {
            var wall = Stopwatch.StartNew();
            string dir = r.GetValue(outDir)!;
            OutputPaths.Dir(dir, "--out");
            OutputPaths.CheckpointDir(Path.Combine(dir, "checkpoint"), "--out");
            OutputPaths.CheckpointDir(Path.Combine(dir, "distill", "student"), "--out");
            string baseDir = CliRun.ResolveModel(r.GetValue(model)!);
            using var b = backend.Create(r);
            bool history = History && !r.GetValue(textOnly);
            var schema = new DataSchema { Kind = "movietweetings", Examples = new ExampleOptions { ContextSize = ContextSize }, HistoryFeatures = history };
            var raw = MovieTweetings.Load(MovieTweetings.FindVendoredDirectory());
            var data = RecDataset.Build(schema.Prepare(raw), schema.Examples);
            CliRun.Info($"MovieTweetings: {data.Table.Count:N0} ratings (label = rating >= 8), {data.Catalog.Count:N0} movies -> " +
                        $"train {data.Train.Count:N0}, validation {data.Validation.Count:N0}, test {data.Test.Count:N0} (temporal split)");
            var trainer = t.Trainer(r, Trainer, null);
            var exp = t.Experiment(r, Sizes, trainer);
            var head = t.Adapter(r, Head, data.Table.DenseNames.Length);
            var text = t.Text(r, Text);
            using var rec = Recommender.FromPretrained(baseDir, b, head, text, trainer.Seed);
            rec.Schema = schema;
            CliRun.Info($"model {baseDir}: {rec.Model.Bert.NumHiddenLayers} layers, hidden {rec.Model.Bert.HiddenSize}; backend {b.Name}; " +
                        $"train {exp.MaxTrain} / validate {exp.MaxValidation} / test {exp.MaxTest} examples, max length {text.MaxLength}, " +
                        $"freeze {trainer.Freeze}{(trainer.Freeze == Freeze.TopK ? $" (top {trainer.TopK})" : "")}");
            var result = TrainProgressView.Run(p => Experiment.Run(rec, data, exp, p));
            string ckpt = Path.Combine(dir, "checkpoint");
            Console.WriteLine(ExperimentReportWriter.ConsoleTable([result.Model, .. result.Baselines]));
            Console.WriteLine($"  AUC lift over {result.BestBaseline.Name}: {result.AucLift:+0.0000;-0.0000}");
            OutputPaths.SaveCheckpoint(rec, ckpt, "--out", result.Training.State, trainer, CliRun.Json(result));
            string pairDir = Path.Combine(dir, "pair");
            string pairReport = ExperimentReportWriter.Write(pairDir, "FastRec demo: the MiniLM pair model fine-tuned on MovieTweetings", result,
            [
                $"base model: all-MiniLM-L6-v2 ({rec.Model.Bert.NumHiddenLayers} layers, hidden {rec.Model.Bert.HiddenSize}) from {baseDir}; head {string.Join("-", head.HiddenSizes)} on the {head.Input.ToString().ToLowerInvariant()} output",
                $"data: vendored MovieTweetings 100k, label = rating >= 8, context = the user's last {ContextSize} liked movies before the rating, max length {text.MaxLength} tokens",
                history ? "dense features: the leak-free history features (user and item positive rate and log count over strictly earlier ratings) feed the head next to the text; " +
                          "the history-feature logistic baseline shows what the text adds" : "text only (no dense features)",
                $"training: {trainer.Epochs} epochs, batch {trainer.BatchSize}, AdamW lr {trainer.LearningRate} (warmup {trainer.WarmupFraction:P0}, linear decay), " +
                $"weight decay {trainer.WeightDecay}, clip {trainer.MaxGradNorm}, freeze {trainer.Freeze} top-{trainer.TopK}, seed {trainer.Seed}, backend {b.Name}",
                $"checkpoint: {ckpt}",
            ], wall.Elapsed.TotalSeconds);
            Console.WriteLine($"pair model report: {Path.GetFullPath(pairReport)}");

            // The evaluation a recommender expert trusts: strong baselines and the text item-vector model on every training
            // rating, full ranking, slices, bootstrap intervals, the strict cold-item test, the transfer learning curve.
            var eval = DemoEvaluation.Run(raw, data, baseDir, b, r.GetValue(cache)!, cold: !r.GetValue(noCold), transfer: !r.GetValue(noTransfer), CliRun.Info);
            Console.WriteLine(ScoreboardTables.Headline(eval.Board, TableFormat.Console));
            foreach (var l in eval.Board.Lifts) Console.WriteLine($"  {l.Model} over {l.Baseline}, {l.Metric}: {l.Lift}");
            Console.WriteLine();
            Console.WriteLine(EvaluationTables.FullRankingTable(eval.Board.Rows.Where(x => x.Ranking is not null).Select(x => x.Ranking!).ToList(), TableFormat.Console));
            var sliceModels = new[] { eval.TextModel, eval.Board.Reference?.Name }.OfType<string>().Distinct().ToList();
            Console.WriteLine(EvaluationTables.SliceTable(sliceModels.Select(n => (n, eval.Board[n].Slices)).ToList(), TableFormat.Console));
            if (eval.Cold is not null) Console.Write(ColdItemReportWriter.ConsoleSummary(eval.Cold));
            string report = DemoReportWriter.Write(dir, eval, result, "pair/report.md",
            [
                $"data: vendored MovieTweetings 100k ({data.Table.Count:N0} ratings, {data.Catalog.Count:N0} movies), label = rating >= 8, temporal split 80/10/10 " +
                $"(train {data.Train.Count:N0}, validation {data.Validation.Count:N0}, test {data.Test.Count:N0} ratings)",
                $"text models: all-MiniLM-L6-v2 from {baseDir} encodes every movie once (\"Title (Year). Genres: a, b\", masked mean pooling + L2, as the encoder was trained). " +
                $"(1) the item tower: a trained projection (+ per-item residual) of those vectors, a user tower over the last 50 rated items (mean + attention against the candidate, " +
                $"no user id), a wide & deep head with a 'like' output and a 'rated' output (trained against uniformly sampled unrated items), on the history features and the items' " +
                $"1/7/30-day rating counts; ranks by log p(rated) + log p(like); trained on all {eval.TowerTrained.Rows:N0} training ratings of {eval.TowerTrained.Users:N0} users, " +
                $"epoch {eval.TowerModel.Epoch} kept by validation AUC and NDCG@10. (2) the fixed-vector head of the transfer study (liked / disliked history profiles x the " +
                $"candidate's vector). The demo's text model, chosen by validation AUC: {eval.TextModel}",
                history ? "history features: leak-free user and item positive rates and log counts over strictly earlier ratings" : "text only: no history features (--text-only)",
                $"baselines, fitted on the same training window: most popular, recently popular (window chosen on validation), smoothed popularity, user+item bias, history-feature logistic, ItemKNN, BPR-MF, zero-shot MiniLM " +
                "(cosine of the user's liked-history mean with the candidate), and both text models over genre + year + title-word vectors; backend " + b.Name,
            ], wall.Elapsed.TotalSeconds);
            Console.WriteLine($"report: {Path.GetFullPath(report)}");
            if (!r.GetValue(noDistill)) Distill(rec, data, dir, trainer.Seed, b.Name, wall);
            Console.WriteLine($"wall time {wall.Elapsed.TotalSeconds:0.0} s");
            return 0;
        }));
        return cmd;
    }

    /// <summary>The demo's distillation step: a 3-layer student (every other teacher layer) trained on the teacher's soft
    /// labels, scored beside the teacher and the baselines, timed at batch 1; report in DIR/distill.</summary>
    private static void Distill(Recommender teacher, RecDataset data, string dir, ulong seed, string backendName, Stopwatch wall)
    {
        var options = new DistillRunOptions
        {
            Student = new StudentConfig { Layers = 3 },
            Distill = new DistillOptions { Alpha = 0.5f, Temperature = 2f },
            Epochs = 2, BatchSize = 32, LearningRate = 2e-4f, MaxTrain = Sizes.MaxTrain, MaxValidation = Sizes.MaxValidation,
            MaxTest = Sizes.MaxTest, LatencyRequests = 50, Seed = seed,
        };
        CliRun.Info("distilling the fine-tuned teacher into a 3-layer student (soft-label BCE, alpha 0.5, T 2) ...");
        var (student, rep) = DistillationRun.Distill(teacher, data, options, CliRun.Info);
        using var _ = student;
        DistillCliOptions.PrintSummary(rep);
        string sdir = Path.Combine(dir, "distill");
        OutputPaths.SaveCheckpoint(student, Path.Combine(sdir, "student"), "--out", null, null, DistillCliOptions.ToJson(rep));
        Console.WriteLine("distillation report: " + Path.GetFullPath(DistillReportWriter.Write(sdir, "FastRec demo: distilling the fine-tuned MiniLM", rep,
            [$"teacher: the demo's fine-tuned all-MiniLM-L6-v2 ({teacher.Model.Bert.NumHiddenLayers} layers)",
             $"student: {student.Model.Bert.NumHiddenLayers} layers initialised from every other teacher layer, same head",
             $"loss: (1-α)·BCE + α·T²·soft BCE with α = {options.Distill.Alpha}, T = {options.Distill.Temperature}",
             $"schedule: {options.Epochs} epochs of batch {options.BatchSize}, peak LR {options.LearningRate}; backend {backendName}"],
            wall.Elapsed.TotalSeconds)));
    }
}
