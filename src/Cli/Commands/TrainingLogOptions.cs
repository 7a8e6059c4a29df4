// The training-log flags (--log-jsonl FILE, --tensorboard DIR): checked before any work, opened around the training.
using System.CommandLine;
using FastRec.Engine.Training;

namespace FastRec.Cli.Commands;

internal sealed class TrainingLogOptions
{
    public readonly Option<string?> Jsonl = new("--log-jsonl") { Description = "Write one JSON line per optimizer step (step, epoch, loss, lr, examples/s; validation metrics when evaluated) to this file" };
    public readonly Option<string?> TensorBoard = new("--tensorboard") { Description = "Write TensorBoard scalars (an events.out.tfevents.* file) into this directory: tensorboard --logdir DIR" };

    public void AddTo(Command cmd)
    {
        cmd.Options.Add(Jsonl);
        cmd.Options.Add(TensorBoard);
    }

    /// <summary>Refuses unwritable log paths before any work.</summary>
    public void Check(ParseResult r)
    {
        if (r.GetValue(Jsonl) is { } file) OutputPaths.OutFile(file, Jsonl.Name);
        if (r.GetValue(TensorBoard) is { } dir) OutputPaths.Dir(dir, TensorBoard.Name);
    }

    /// <summary>The log, or null when neither flag was given; <paramref name="append"/> continues the JSON-lines file (a resumed run).</summary>
    public TrainingLog? Open(ParseResult r, bool append)
    {
        string? file = r.GetValue(Jsonl), dir = r.GetValue(TensorBoard);
        if (file is null && dir is null) return null;
        var log = new TrainingLog(file, dir, append);
        if (log.JsonlPath is { } j) CliRun.Info($"training log: {j}");
        if (log.EventFile is { } e) CliRun.Info($"TensorBoard events: {e} (tensorboard --logdir {dir})");
        return log;
    }
}

internal static class TrainingLogExtensions
{
    /// <summary>The test metrics of a finished experiment as the log's last line (test_auc, test_gauc, test_log_loss).</summary>
    public static void Final(this TrainingLog log, ExperimentReport result)
    {
        var state = result.Training.State;
        var m = result.Model.Metrics;
        double epoch = state.Epoch + (state.TrainExamples > 0 ? (double)state.Cursor / state.TrainExamples : 0);
        log.Final(state.Step, epoch, [("test_auc", m.Auc), ("test_gauc", m.Gauc.Reportable ? m.Gauc.Value : double.NaN), ("test_log_loss", m.LogLoss)]);
    }
}
