// `fastrec distill`: distil a fine-tuned teacher checkpoint into a smaller student checkpoint; teacher/student/baselines report.
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using FastRec.Cli.Reporting;
using FastRec.Engine.Data;
using FastRec.Engine.Distillation;
using FastRec.Engine.Model;
using FastRec.Engine.Training;

namespace FastRec.Cli.Commands;

/// <summary>Options shared by distill and cotrain: schedule, sampling, soft-label loss, report.</summary>
internal sealed class DistillCliOptions
{
    public readonly Option<float> Alpha = new("--alpha") { Description = "Weight of the soft (teacher / peer) term, in [0,1]", DefaultValueFactory = _ => 0.5f };
    public readonly Option<float> Temperature = new("--temperature") { Description = "Temperature T of the soft term (scaled by T²)", DefaultValueFactory = _ => 2f };
    public readonly Option<int> Epochs = new("--epochs") { Description = "Passes over the training examples", DefaultValueFactory = _ => 2 };
    public readonly Option<int> BatchSize = new("--batch-size") { Description = "Examples per step", DefaultValueFactory = _ => 32 };
    public readonly Option<float> Lr = new("--lr") { Description = "Peak learning rate (linear warmup, then linear decay)", DefaultValueFactory = _ => 1e-4f };
    public readonly Option<double> Warmup = new("--warmup") { Description = "Warmup fraction of the steps", DefaultValueFactory = _ => 0.1 };
    public readonly Option<float> WeightDecay = new("--weight-decay") { Description = "AdamW weight decay", DefaultValueFactory = _ => 0.01f };
    public readonly Option<ulong> Seed = new("--seed") { Description = "Seed: student init, order, dropout", DefaultValueFactory = _ => 42UL };
    public readonly Option<int?> MaxTrain = new("--max-train") { Description = "Train on the most recent N training examples" };
    public readonly Option<int?> MaxVal = new("--max-val") { Description = "Validate on the first N validation examples" };
    public readonly Option<int?> MaxTest = new("--max-test") { Description = "Test on the first N test examples" };
    public readonly Option<int> LatencyRequests = new("--latency-requests") { Description = "Batch-1 requests timed per model (0 = skip)", DefaultValueFactory = _ => 100 };
    public readonly Option<int> PrecisionCheck = new("--precision-check") { Description = "Test examples scored through fp32 and int16 Predictors of each model to report int16 serving's AUC, score change and latency (0 = skip)", DefaultValueFactory = _ => 300 };
    public readonly Option<string?> Report = new("--report") { Description = "Also write report.md and plots into this directory" };
    public readonly Option<bool> Json = new("--json") { Description = "Print the results as JSON on stdout (progress and logs go to stderr)" };
    /// <summary>--grad-accum, --eval-every, --patience: the flags of the shared training loop, as `train` has them.</summary>
    public readonly TrainerCliOptions Loop = new();

    public void AddTo(Command cmd)
    {
        foreach (var o in new[] { Epochs, BatchSize }) CliRun.AtLeast(o, 1);
        foreach (var o in new[] { MaxTrain, MaxVal, MaxTest }) CliRun.AtLeast(o, 1);
        foreach (var o in new[] { LatencyRequests, PrecisionCheck })
            o.Validators.Add(v =>
            {
                if (v.GetValueOrDefault<int>() < 0) v.AddError($"{o.Name} must be >= 0 (0 = skip), got {v.GetValueOrDefault<int>()}");
            });
        foreach (var o in new Option[] { Alpha, Temperature, Epochs, BatchSize, Lr, Warmup, WeightDecay, Seed, MaxTrain, MaxVal, MaxTest, LatencyRequests, PrecisionCheck, Report, Json })
            cmd.Options.Add(o);
        Loop.AddLoopTo(cmd);
    }

    public DistillOptions Distill(ParseResult r) => new()
    {
        Alpha = r.GetValue(Alpha), Temperature = r.GetValue(Temperature), Seed = r.GetValue(Seed),
        Optimizer = new AdamWOptions { Lr = r.GetValue(Lr), WeightDecay = r.GetValue(WeightDecay) },
    };

    /// <summary>Checks <paramref name="o"/> before any work, in the flags' words (<paramref name="more"/>: the verb's own flags).</summary>
    public void Check(DistillOptions o, params (string Property, Option Flag)[] more)
    {
        var flags = new Dictionary<string, Option>
        {
            [nameof(DistillOptions.Alpha)] = Alpha, [nameof(DistillOptions.Temperature)] = Temperature, [nameof(DistillOptions.Optimizer)] = Lr,
        };
        foreach (var (p, f) in more) flags[p] = f;
        CliRun.InFlagWords(o.Validate, flags);
    }

    /// <summary>Checks the training loop's options (<paramref name="t"/>, from a run's <c>Trainer()</c>) before any work, in the
    /// flags' words.</summary>
    public void Check(TrainerOptions t) => CliRun.InFlagWords(t.Validate, new Dictionary<string, Option>
    {
        [nameof(TrainerOptions.Epochs)] = Epochs, [nameof(TrainerOptions.BatchSize)] = BatchSize, [nameof(TrainerOptions.LearningRate)] = Lr,
        [nameof(TrainerOptions.WarmupFraction)] = Warmup, [nameof(TrainerOptions.WeightDecay)] = WeightDecay,
        [nameof(TrainerOptions.GradientAccumulation)] = Loop.GradAccum, [nameof(TrainerOptions.EvalEverySteps)] = Loop.EvalEvery,
        [nameof(TrainerOptions.Patience)] = Loop.Patience,
    });

    /// <summary>Prints the teacher/student/baselines table, parameters, batch-1 latency and the AUC lift kept.</summary>
    public static void PrintSummary(DistillRunReport rep)
    {
        Console.WriteLine(ExperimentReportWriter.ConsoleTable([rep.Teacher, rep.Student, .. rep.Baselines]));
        Console.WriteLine($"  parameters: teacher {rep.TeacherFacts.Parameters / 1e6:0.00} M, student {rep.StudentFacts.Parameters / 1e6:0.00} M; " +
                          $"batch-1 latency p50: teacher {rep.TeacherFacts.LatencyP50Ms:0.00} ms, student {rep.StudentFacts.LatencyP50Ms:0.00} ms");
        Console.WriteLine($"  AUC lift over {rep.BestBaseline.Name}: teacher {rep.TeacherLift:+0.0000;-0.0000}, student {rep.StudentLift:+0.0000;-0.0000}" +
                          (double.IsNaN(rep.LiftKept) ? "" : $" (the student keeps {100 * rep.LiftKept:0.0} %)"));
        foreach (var c in rep.Precision)
            Console.WriteLine($"  int16 serving, {c.Name}: AUC {c.AucInt16:0.0000} (fp32 {c.AucFloat32:0.0000}) on {c.Examples} test examples, " +
                              $"max |dp| {c.MaxAbsDiff:E1}; batch-1 p50 {c.P50Int16Ms:0.00} ms (fp32 {c.P50Float32Ms:0.00} ms)");
    }

    /// <summary>The run's results as JSON (metrics of every model, facts, lift).</summary>
    public static JsonObject ToJson(DistillRunReport rep)
    {
        JsonObject Facts(ModelFacts f) => new()
        {
            ["parameters"] = f.Parameters, ["bytes_fp32"] = f.Bytes, ["disk_bytes"] = f.DiskBytes,
            ["latency_p50_ms"] = double.IsNaN(f.LatencyP50Ms) ? null : Math.Round(f.LatencyP50Ms, 3),
            ["latency_p99_ms"] = double.IsNaN(f.LatencyP99Ms) ? null : Math.Round(f.LatencyP99Ms, 3),
        };
        var baselines = new JsonObject();
        foreach (var b in rep.Baselines) baselines[b.Name] = CliRun.Json(b.Metrics);
        return new JsonObject
        {
            ["kind"] = rep.Kind,
            [rep.Teacher.Name] = CliRun.Json(rep.Teacher.Metrics),
            [rep.Student.Name] = CliRun.Json(rep.Student.Metrics),
            ["baselines_test"] = baselines,
            ["best_baseline"] = rep.BestBaseline.Name,
            [$"{rep.Teacher.Name}_facts"] = Facts(rep.TeacherFacts),
            [$"{rep.Student.Name}_facts"] = Facts(rep.StudentFacts),
            ["auc_lift_" + rep.Teacher.Name.Replace(' ', '_')] = rep.TeacherLift,
            ["auc_lift_" + rep.Student.Name.Replace(' ', '_')] = rep.StudentLift,
            ["lift_kept"] = double.IsNaN(rep.LiftKept) ? null : rep.LiftKept,
            ["int16_serving"] = new JsonArray(rep.Precision.Select(c => (JsonNode)new JsonObject
            {
                ["model"] = c.Name, ["examples"] = c.Examples,
                ["auc_fp32"] = double.IsNaN(c.AucFloat32) ? null : c.AucFloat32, ["auc_int16"] = double.IsNaN(c.AucInt16) ? null : c.AucInt16,
                ["max_abs_dp"] = c.MaxAbsDiff, ["mean_abs_dp"] = c.MeanAbsDiff,
                ["p50_fp32_ms"] = Math.Round(c.P50Float32Ms, 3), ["p50_int16_ms"] = Math.Round(c.P50Int16Ms, 3),
            }).ToArray()),
            ["examples"] = new JsonObject { ["train"] = rep.Sizes.Train, ["validation"] = rep.Sizes.Validation, ["test"] = rep.Sizes.Test },
            ["validation_auc_by_epoch"] = new JsonArray(rep.Epochs.Select(e => (JsonNode?)(double.IsNaN(e.ValidationAuc) ? null : JsonValue.Create(e.ValidationAuc))).ToArray()),
            ["training"] = rep.Training is { } t ? new JsonObject
            {
                ["steps"] = t.Step, ["total_steps"] = t.TotalSteps, ["early_stopped"] = t.EarlyStopped, ["best_step"] = t.BestStep,
                ["best_validation_auc"] = double.IsNaN(t.BestAuc) ? null : t.BestAuc,
            } : null,
        };
    }

    /// <summary>Bytes of the files in <paramref name="dir"/> (a checkpoint's size on disk).</summary>
    public static long DirectoryBytes(string dir) => Directory.Exists(dir) ? new DirectoryInfo(dir).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length) : 0;
}

internal static class DistillCommand
{
    public static Command Build()
    {
        var data = new DataOptions();
        var backend = new BackendOptions();
        var d = new DistillCliOptions();
        var teacherOpt = new Option<string>("--teacher") { Description = "Fine-tuned FastRec checkpoint to distil (from fastrec train)", Required = true };
        var outDir = new Option<string>("--out") { Description = "Student checkpoint directory to write", Required = true };
        var layers = new Option<int>("--layers") { Description = "Student encoder layers", DefaultValueFactory = _ => 3 };
        var hidden = new Option<int?>("--hidden") { Description = "Student hidden width (default: the teacher's; then its layers start from every k-th teacher layer)" };
        var heads = new Option<int?>("--heads") { Description = "Student attention heads (default: the teacher's)" };
        var ffn = new Option<int?>("--ffn") { Description = "Student feed-forward width (default: the teacher's, or 4x hidden)" };
        var hiddenW = new Option<float>("--hidden-weight") { Description = "Weight of the hidden-state MSE (TinyBERT, uniform layer map; 0 = off)", DefaultValueFactory = _ => 0f };
        var attnW = new Option<float>("--attention-weight") { Description = "Weight of the attention-probability MSE (needs equal heads; 0 = off)", DefaultValueFactory = _ => 0f };
        var noEmb = new Option<bool>("--no-embedding-match") { Description = "Do not match the embedding outputs in the hidden-state loss" };
        var cacheMb = new Option<int>("--cache-mb") { Description = "Memory budget of the teacher-output cache", DefaultValueFactory = _ => 512 };
        var spill = new Option<string?>("--spill-dir") { Description = "Where teacher outputs beyond the budget spill (default: refused and recomputed)" };
        var noCache = new Option<bool>("--no-cache") { Description = "Run the teacher on every batch instead of caching its outputs" };
        var cmd = new Command("distill", "Distil a fine-tuned teacher checkpoint into a smaller student (soft labels, optional hidden/attention transfer)");
        data.AddTo(cmd); data.AddResplitGuardTo(cmd); backend.AddTo(cmd); d.AddTo(cmd);
        CliRun.AtLeast(layers, 1); CliRun.AtLeast(cacheMb, 0);
        foreach (var o in new Option[] { teacherOpt, outDir, layers, hidden, heads, ffn, hiddenW, attnW, noEmb, cacheMb, spill, noCache }) cmd.Options.Add(o);
        cmd.SetAction(r => CliRun.Guard(() =>
        {
            var wall = Stopwatch.StartNew();
            string teacherDir = r.GetValue(teacherOpt)!, output = r.GetValue(outDir)!;
            OutputPaths.CheckpointDir(output, "--out");
            if (r.GetValue(d.Report) is { } reportDir) OutputPaths.Dir(reportDir, "--report");
            if (r.GetValue(spill) is { } spillDir) OutputPaths.Dir(spillDir, "--spill-dir");
            var loop = d.Loop.Loop(r);
            var options = new DistillRunOptions
            {
                Student = new StudentConfig { Layers = r.GetValue(layers), Hidden = r.GetValue(hidden), Heads = r.GetValue(heads), Intermediate = r.GetValue(ffn) },
                Distill = d.Distill(r) with
                {
                    HiddenWeight = r.GetValue(hiddenW), AttentionWeight = r.GetValue(attnW), MatchEmbeddings = !r.GetValue(noEmb),
                    UseCache = !r.GetValue(noCache), CacheBudgetBytes = (long)r.GetValue(cacheMb) << 20, SpillDirectory = r.GetValue(spill),
                },
                Epochs = r.GetValue(d.Epochs), BatchSize = r.GetValue(d.BatchSize), LearningRate = r.GetValue(d.Lr), WarmupFraction = r.GetValue(d.Warmup),
                GradientAccumulation = loop.Accumulation, EvalEverySteps = loop.EvalEvery, Patience = loop.Patience,
                MaxTrain = r.GetValue(d.MaxTrain), MaxValidation = r.GetValue(d.MaxVal), MaxTest = r.GetValue(d.MaxTest),
                LatencyRequests = r.GetValue(d.LatencyRequests), PrecisionCheckExamples = r.GetValue(d.PrecisionCheck), Seed = r.GetValue(d.Seed),
            };
            d.Check(options.Distill, (nameof(DistillOptions.HiddenWeight), hiddenW), (nameof(DistillOptions.AttentionWeight), attnW), (nameof(DistillOptions.CacheBudgetBytes), cacheMb));
            d.Check(options.Trainer());
            using var b = backend.Create(r);
            using var teacher = Checkpoint.Load(teacherDir, b).Recommender;
            var schema = data.Schema(r, teacher.Schema);
            data.CheckSplit(r, schema, teacher.Schema, teacherDir);
            var table = data.Table(r, schema);
            var dataset = RecDataset.Build(table, schema.Examples);
            CliRun.Info($"{table.Source}: {table.Count:N0} interactions -> train {dataset.Train.Count:N0}, validation {dataset.Validation.Count:N0}, test {dataset.Test.Count:N0}");
            var (student, rep) = TrainProgressView.Run(p => DistillationRun.Distill(teacher, dataset, options, CliRun.Info, progress: p));
            using var _ = student;
            var json = DistillCliOptions.ToJson(rep);
            DistillCliOptions.PrintSummary(rep);
            OutputPaths.SaveCheckpoint(student, output, "--out", null, null, json, json);
            rep.TeacherFacts = rep.TeacherFacts with { DiskBytes = DistillCliOptions.DirectoryBytes(teacherDir) };
            rep.StudentFacts = rep.StudentFacts with { DiskBytes = DistillCliOptions.DirectoryBytes(output) };
            json = DistillCliOptions.ToJson(rep);
            Console.WriteLine($"checkpoint: {Path.GetFullPath(output)}");
            if (r.GetValue(d.Report) is { } dir)
                Console.WriteLine("report: " + DistillReportWriter.Write(dir, "FastRec distillation report", rep,
                    [$"teacher: {Path.GetFullPath(teacherDir)} ({teacher.Model.Bert.NumHiddenLayers} layers, hidden {teacher.Model.Bert.HiddenSize})",
                     $"student: {student.Model.Bert.NumHiddenLayers} layers, hidden {student.Model.Bert.HiddenSize}, {student.Model.Bert.NumAttentionHeads} heads, FFN {student.Model.Bert.IntermediateSize}",
                     $"loss: (1-α)·BCE + α·T²·soft BCE with α = {options.Distill.Alpha}, T = {options.Distill.Temperature}; hidden-state MSE × {options.Distill.HiddenWeight}; attention MSE × {options.Distill.AttentionWeight}",
                     $"schedule: {options.Epochs} epochs of batch {options.BatchSize} x {options.GradientAccumulation} accumulated, peak LR {options.LearningRate}, warmup {options.WarmupFraction}" +
                     (options.Patience > 0 ? $", early stopping after {options.Patience} evaluations without a better validation AUC" : "") +
                     (rep.Training is { EarlyStopped: true } ts ? $" (stopped at step {ts.Step} of {ts.TotalSteps})" : "") + $"; backend {b.Name}"],
                    wall.Elapsed.TotalSeconds));
            Console.WriteLine($"wall time {wall.Elapsed.TotalSeconds:0.0} s");
            if (r.GetValue(d.Json)) CliRun.EmitJson(json);
            return 0;
        }, r.GetValue(d.Json)));
        return cmd;
    }
}
