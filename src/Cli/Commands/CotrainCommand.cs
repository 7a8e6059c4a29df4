// `fastrec cotrain`: deep mutual learning of two models (a pretrained encoder and a smaller one, or two encoders); both checkpoints and a report.
using System.CommandLine;
using System.Diagnostics;
using FastRec.Cli.Reporting;
using FastRec.Engine.Data;
using FastRec.Engine.Distillation;
using FastRec.Engine.Model;
using FastRec.Engine.Training;

namespace FastRec.Cli.Commands;

internal static class CotrainCommand
{
    public static Command Build()
    {
        var data = new DataOptions();
        var backend = new BackendOptions();
        var d = new DistillCliOptions();
        var modelA = new Option<string>("--model") { Description = "Model A: pretrained Hugging Face BERT directory, or 'minilm'", Required = true };
        var modelB = new Option<string?>("--model-b") { Description = "Model B: another pretrained directory with the same vocabulary (default: a smaller copy of A, see --layers-b)" };
        var layersB = new Option<int?>("--layers-b") { Description = "Model B = A's encoder with this many layers (every k-th of A's); default half of A's" };
        var outA = new Option<string>("--out") { Description = "Checkpoint directory of model A", Required = true };
        var outB = new Option<string>("--out-b") { Description = "Checkpoint directory of model B", Required = true };
        var maxLength = new Option<int>("--max-length") { Description = "Longest token sequence", DefaultValueFactory = _ => 64 };
        var headHidden = new Option<string>("--head-hidden") { Description = "Hidden widths of the heads, comma separated ('none' = one Linear)", DefaultValueFactory = _ => "64" };
        var cmd = new Command("cotrain", "Train two models together by deep mutual learning (each on BCE plus a soft-label loss towards the other)");
        data.AddTo(cmd); backend.AddTo(cmd); d.AddTo(cmd);
        CliRun.AtLeast(layersB, 1); CliRun.AtLeast(maxLength, 3);
        foreach (var o in new Option[] { modelA, modelB, layersB, outA, outB, maxLength, headHidden }) cmd.Options.Add(o);
        cmd.SetAction(r => CliRun.Guard(() =>
        {
            var wall = Stopwatch.StartNew();
            string oa = r.GetValue(outA)!, ob = r.GetValue(outB)!;
            OutputPaths.CheckpointDir(oa, "--out");
            OutputPaths.CheckpointDir(ob, "--out-b");
            if (Path.GetFullPath(oa).TrimEnd(Path.DirectorySeparatorChar) == Path.GetFullPath(ob).TrimEnd(Path.DirectorySeparatorChar))
                throw new ArgumentException($"--out and --out-b are the same directory ({oa}); give two");
            if (r.GetValue(d.Report) is { } reportDir) OutputPaths.Dir(reportDir, "--report");
            var distill = d.Distill(r);
            d.Check(distill);
            var loop = d.Loop.Loop(r);
            var options = new MutualRunOptions
            {
                Distill = distill, Epochs = r.GetValue(d.Epochs), BatchSize = r.GetValue(d.BatchSize), LearningRate = r.GetValue(d.Lr),
                WarmupFraction = r.GetValue(d.Warmup), MaxTrain = r.GetValue(d.MaxTrain), MaxValidation = r.GetValue(d.MaxVal), MaxTest = r.GetValue(d.MaxTest),
                LatencyRequests = r.GetValue(d.LatencyRequests), Seed = r.GetValue(d.Seed),
                GradientAccumulation = loop.Accumulation, EvalEverySteps = loop.EvalEvery, Patience = loop.Patience,
            };
            d.Check(options.Trainer());
            using var b = backend.Create(r);
            var schema = data.Schema(r);
            var table = data.Table(r, schema);
            var dataset = RecDataset.Build(table, schema.Examples);
            CliRun.Info($"{table.Source}: {table.Count:N0} interactions -> train {dataset.Train.Count:N0}, validation {dataset.Validation.Count:N0}, test {dataset.Test.Count:N0}");
            var head = new AdapterConfig { HiddenSizes = Parse.IntList(r.GetValue(headHidden), "--head-hidden"), Dropout = 0.1f, DenseFeatures = table.DenseNames.Length };
            var text = new TextOptions { MaxLength = r.GetValue(maxLength) };
            ulong seed = r.GetValue(d.Seed);
            string dirA = CliRun.ResolveModel(r.GetValue(modelA)!);
            using var a = Recommender.FromPretrained(dirA, b, head, text, seed);
            a.Schema = schema;
            Recommender bRec;
            if (r.GetValue(modelB) is { } mb)
            {
                if (r.GetValue(layersB) is not null) throw new ArgumentException("--layers-b and --model-b exclude each other");
                bRec = Recommender.FromPretrained(CliRun.ResolveModel(mb), b, head, text, seed + 1);
            }
            else
            {
                int la = a.Model.Bert.NumHiddenLayers, lb = r.GetValue(layersB) ?? Math.Max(1, la / 2);
                var model = new RecModel(b, Student.Derive(a.Model.Bert, new StudentConfig { Layers = lb }), head);
                try { CliRun.Info(Student.InitializeFrom(model, a.Model, seed + 1).Summary); }
                catch { model.Dispose(); throw; }
                bRec = new Recommender(model, a.VocabPath, a.Text, a.Scaler, schema) { BaseModel = $"{a.BaseModel} (every k-th of {la} layers -> {lb})" };
            }
            using var _ = bRec;
            bRec.Schema = schema;
            var rep = TrainProgressView.Run(p => DistillationRun.CoTrain(a, bRec, dataset, options, CliRun.Info, progress: p));
            var json = DistillCliOptions.ToJson(rep);
            Console.WriteLine(ExperimentReportWriter.ConsoleTable([rep.Teacher, rep.Student, .. rep.Baselines]));
            OutputPaths.SaveCheckpoint(a, oa, "--out", null, null, json, json);
            OutputPaths.SaveCheckpoint(bRec, ob, "--out-b", null, null, json, json);
            rep.TeacherFacts = rep.TeacherFacts with { DiskBytes = DistillCliOptions.DirectoryBytes(oa) };
            rep.StudentFacts = rep.StudentFacts with { DiskBytes = DistillCliOptions.DirectoryBytes(ob) };
            Console.WriteLine($"  AUC lift over {rep.BestBaseline.Name}: A {rep.TeacherLift:+0.0000;-0.0000}, B {rep.StudentLift:+0.0000;-0.0000}; " +
                              $"batch-1 latency p50: A {rep.TeacherFacts.LatencyP50Ms:0.00} ms, B {rep.StudentFacts.LatencyP50Ms:0.00} ms");
            Console.WriteLine($"checkpoints: {Path.GetFullPath(oa)}, {Path.GetFullPath(ob)}");
            if (r.GetValue(d.Report) is { } dir)
                Console.WriteLine("report: " + DistillReportWriter.Write(dir, "FastRec co-training report", rep,
                    [$"model A: {a.BaseModel} ({a.Model.Bert.NumHiddenLayers} layers, hidden {a.Model.Bert.HiddenSize})",
                     $"model B: {bRec.BaseModel} ({bRec.Model.Bert.NumHiddenLayers} layers, hidden {bRec.Model.Bert.HiddenSize})",
                     $"loss of each: (1-α)·BCE + α·T²·soft BCE towards the other's logits, α = {options.Distill.Alpha}, T = {options.Distill.Temperature}",
                     $"schedule: {options.Epochs} epochs of batch {options.BatchSize}, peak LR {options.LearningRate}; backend {b.Name}"],
                    wall.Elapsed.TotalSeconds));
            Console.WriteLine($"wall time {wall.Elapsed.TotalSeconds:0.0} s");
            if (r.GetValue(d.Json)) CliRun.EmitJson(DistillCliOptions.ToJson(rep));
            return 0;
        }, r.GetValue(d.Json)));
        return cmd;
    }
}
