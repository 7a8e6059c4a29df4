// `fastrec train`: fine-tune a BERT model directory (or continue a checkpoint) on interactions + items, save a checkpoint.
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using FastRec.Cli.Reporting;
using FastRec.Engine.Data;
using FastRec.Engine.Model;
using FastRec.Engine.Training;
using FastRec.Engine.Weights;

namespace FastRec.Cli.Commands;

internal static class TrainCommand
{
    public static Command Build()
    {
        var data = new DataOptions();
        var backend = new BackendOptions();
        var t = new TrainerCliOptions();
        var distributed = new DistributedOptions();
        var model = new Option<string?>("--model") { Description = "Pretrained Hugging Face BERT directory (config.json, model.safetensors, vocab.txt), or 'minilm'" };
        var outDir = new Option<string>("--out") { Description = "Checkpoint directory to write", Required = true };
        var initFrom = new Option<string?>("--init-from") { Description = "Continue from this fine-tuned FastRec checkpoint (periodic re-tuning on new data)" };
        var resume = new Option<bool>("--resume") { Description = "Resume the interrupted run saved in --out (same options and data)" };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace the checkpoint already in --out (without it, an existing checkpoint is refused)" };
        var report = new Option<string?>("--report") { Description = "Also write report.md and plots into this directory" };
        var json = new Option<bool>("--json") { Description = "Print the final metrics as JSON on stdout (progress and logs go to stderr)" };
        var logs = new TrainingLogOptions();
        var cmd = new Command("train", "Fine-tune a BERT recommender on interactions + item texts and save a FastRec checkpoint");
        data.AddTo(cmd); backend.AddTo(cmd); t.AddTo(cmd); distributed.AddTo(cmd);
        cmd.Options.Add(model); cmd.Options.Add(outDir); cmd.Options.Add(initFrom); cmd.Options.Add(resume); cmd.Options.Add(overwrite); cmd.Options.Add(report); cmd.Options.Add(json);
        logs.AddTo(cmd);
        cmd.SetAction(r => distributed.Run(r, r.GetValue(json), comm =>
        {
            bool rank0 = comm.Rank == 0;
            var wall = Stopwatch.StartNew();
            string output = r.GetValue(outDir)!;
            // Everything that would make the finished run unsavable is refused before any work.
            OutputPaths.CheckpointDir(output, "--out");
            if (r.GetValue(report) is { } reportDir) OutputPaths.Dir(reportDir, "--report");
            logs.Check(r);
            bool resuming = r.GetValue(resume) && Checkpoint.Exists(output);
            if (Checkpoint.Exists(output) && !r.GetValue(resume) && !r.GetValue(overwrite))
                throw new ArgumentException($"--out {output}: already holds a FastRec checkpoint; add --resume to continue its run, or --overwrite to replace it");
            if (r.GetValue(resume) && !resuming) CliRun.Info($"--resume: no checkpoint in {output} yet; starting the run from the beginning");
            var trainer = t.Trainer(r, new TrainerOptions { Epochs = 2, BatchSize = 32, LearningRate = 5e-5f }, output) with { Collective = comm, VerifyRanks = r.GetValue(distributed.Verify) };
            var exp = t.Experiment(r, new ExperimentOptions(), trainer);
            using var b = backend.Create(r);
            using var nccl = distributed.Nccl(r, comm, b);
            if (nccl is not null) exp = exp with { Trainer = exp.Trainer with { Collective = nccl } };
            Recommender? rec = null;
            TrainingState? state = null;
            var text = t.Text(r, new TextOptions());
            JsonObject? finishedMetrics = null;
            try
            {
                if (resuming)
                {
                    var loaded = Checkpoint.Load(output, b);
                    rec = loaded.Recommender;
                    state = loaded.State ?? throw new InvalidOperationException($"{output}: the checkpoint has no training state to resume");
                    if (state.Finished) finishedMetrics = loaded.Metrics;
                    CliRun.Info($"resuming {output} at step {state.Step} of {state.TotalSteps}" + (state.Ranks != comm.Size ? $" (on {comm.Size} rank(s), it ran on {state.Ranks})" : ""));
                }
                else if (r.GetValue(initFrom) is { } init)
                {
                    BertConfig? expectBert = r.GetValue(model) is { } m ? BertCheckpoint.Open(CliRun.ResolveModel(m)).Config : null;
                    rec = Checkpoint.Load(init, b, expectBert).Recommender;
                    if (t.HeadGiven(r))
                        Checkpoint.CompareAdapter(t.Adapter(r, rec.Model.Adapter, rec.Model.Adapter.DenseFeatures), rec.Model.Adapter, Path.Combine(init, Checkpoint.InfoFile));
                    if (r.GetValue(t.MaxLength) is { } ml && ml != rec.Text.MaxLength)
                        throw new ArgumentException($"--max-length {ml} differs from the checkpoint's {rec.Text.MaxLength}; --init-from keeps the checkpoint's text settings");
                    CliRun.Info($"continuing from {init}");
                }
            }
            catch { rec?.Dispose(); throw; }
            var schema = data.Schema(r, rec?.Schema);
            if (resuming) data.CheckResume(schema, rec!.Schema, output);
            if (finishedMetrics is not null)
            {
                // Resuming after a crash that struck after the final save: the run is complete, nothing to do.
                rec!.Dispose();
                CliRun.Info($"{output}: the run already finished at step {state!.Step} of {state.TotalSteps}; nothing to resume");
                if (r.GetValue(json) && rank0) CliRun.EmitJson(finishedMetrics);
                return 0;
            }
            var table = data.Table(r, schema);
            var dataset = RecDataset.Build(table, schema.Examples);
            CliRun.Info($"{table.Source}: {table.Count:N0} interactions -> train {dataset.Train.Count:N0}, validation {dataset.Validation.Count:N0}, test {dataset.Test.Count:N0}");
            if (rec is null)
            {
                string dir = CliRun.ResolveModel(r.GetValue(model) ?? throw new ArgumentException("--model is required (a HF model directory or 'minilm'), unless --init-from or --resume"));
                var head = t.Adapter(r, new AdapterConfig { HiddenSizes = [64], Dropout = 0.1f }, table.DenseNames.Length);
                rec = Recommender.FromPretrained(dir, b, head, text, r.GetValue(t.Seed) ?? 42);
            }
            using var _ = rec;
            rec.Schema = schema;

            if (comm.Size > 1) CliRun.Info($"data parallel over {comm.Size} ranks ({comm.Name}): {exp.Trainer.BatchSize * exp.Trainer.GradientAccumulation * comm.Size} examples per optimizer step");
            ExperimentReport result;
            using (var log = rank0 ? logs.Open(r, append: resuming) : null)   // rank 0 alone writes the logs
            {
                result = TrainProgressView.Run(p => Experiment.Run(rec, dataset, exp, log?.Around(p) ?? p, state));
                log?.Final(result);
            }
            if (!rank0) return 0;   // rank 0 writes the checkpoint and the report
            var resultJson = CliRun.Json(result);
            Console.WriteLine(ExperimentReportWriter.ConsoleTable([result.Model, .. result.Baselines]));
            Console.WriteLine($"  AUC lift over {result.BestBaseline.Name}: {result.AucLift:+0.0000;-0.0000}");
            OutputPaths.SaveCheckpoint(rec, output, "--out", result.Training.State, exp.Trainer, resultJson, resultJson);
            Console.WriteLine($"checkpoint: {Path.GetFullPath(output)}");
            if (r.GetValue(report) is { } rep)
                Console.WriteLine("report: " + ExperimentReportWriter.Write(rep, "FastRec training report", result,
                    [$"base model: {rec.BaseModel}", $"backend: {b.Name}", $"trainer: {string.Join(", ", exp.Trainer.Fingerprint().Select(f => $"{f.Name}={f.Value}"))}"],
                    wall.Elapsed.TotalSeconds));
            Console.WriteLine($"wall time {wall.Elapsed.TotalSeconds:0.0} s");
            if (r.GetValue(json)) CliRun.EmitJson(resultJson);
            return 0;
        }));
        return cmd;
    }
}
