// Training logs other tools read: one JSON line per optimizer step and/or TensorBoard scalars, fed by the trainer's progress.
using System.Text;
using System.Text.Json;

namespace FastRec.Engine.Training;

/// <summary>
/// A sink of <see cref="TrainProgress"/> reports (pass it, or <see cref="Around"/> another progress, to
/// <see cref="Trainer.Fit"/> or <see cref="Experiment.Run"/>) that writes what pandas, jq and TensorBoard read:
/// <list type="bullet">
/// <item>JSON lines: one object per optimizer step, <c>{"step", "epoch", "loss", "lr", "examples_per_second",
/// "wall_time"}</c>, plus <c>"val_loss"</c>, <c>"val_auc"</c> and <c>"train_loss_mean"</c> (the mean step loss since the
/// previous evaluation) on the steps that were evaluated; <see cref="Final"/> adds one line of end-of-run metrics. A step's
/// line is written when the next report shows whether it was evaluated (at the latest, at <see cref="Dispose"/>).
/// The loss and the rate are float32 (as the trainer keeps them), written in their shortest form. Undefined numbers (NaN) are null.</item>
/// <item>TensorBoard (<see cref="TensorBoardWriter"/>): tags <c>train/loss</c>, <c>train/lr</c>,
/// <c>train/examples_per_second</c>, <c>train/epoch</c> every step; <c>val/loss</c>, <c>val/auc</c>,
/// <c>train/loss_mean</c> at each evaluation; <c>test/...</c> from <see cref="Final"/>.</item>
/// </list>
/// Both files are opened by the constructor, so a path that cannot be written fails before any training. A write that
/// fails later (disk full) does not stop the training: logging stops and <see cref="TakeFailure"/> says why.
/// </summary>
public sealed class TrainingLog : IProgress<TrainProgress>, IDisposable
{
    private static readonly JsonWriterOptions s_json = new() { Indented = false };
    private readonly object _lock = new();
    private StreamWriter? _jsonl;
    private TensorBoardWriter? _tb;
    private Dictionary<string, object?>? _pending;   // the last step's line, until we know whether it was evaluated
    private long _pendingStep = -1;
    private string? _failure;
    private bool _failureTaken;

    /// <summary>The JSON-lines file, or null.</summary>
    public string? JsonlPath { get; }
    /// <summary>The TensorBoard event file, or null.</summary>
    public string? EventFile { get; }

    /// <summary>
    /// Opens the logs: <paramref name="jsonlPath"/> (appended to with <paramref name="append"/>, as when resuming a run;
    /// else replaced) and a new event file in <paramref name="tensorBoardDir"/>; either may be null.
    /// </summary>
    /// <exception cref="IOException">a file cannot be created or written (the message names the path).</exception>
    public TrainingLog(string? jsonlPath, string? tensorBoardDir, bool append = false)
    {
        try
        {
            if (jsonlPath is not null)
            {
                string full = Path.GetFullPath(jsonlPath);
                if (Path.GetDirectoryName(full) is { } dir) Directory.CreateDirectory(dir);
                var fs = new FileStream(full, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.Read);
                _jsonl = new StreamWriter(fs, new UTF8Encoding(false)) { NewLine = "\n" };
                JsonlPath = full;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{jsonlPath}: cannot write the JSON-lines log ({e.Message})", e);
        }
        if (tensorBoardDir is not null)
        {
            try { _tb = new TensorBoardWriter(tensorBoardDir); }
            catch { _jsonl?.Dispose(); throw; }
            EventFile = _tb.FilePath;
        }
    }

    /// <summary>Logs a Training or Evaluated report; other phases are ignored.</summary>
    public void Report(TrainProgress value)
    {
        ArgumentNullException.ThrowIfNull(value);
        lock (_lock)
        {
            if (_failure is not null) return;
            try
            {
                if (value.Phase == TrainPhase.Training) Step(value);
                else if (value.Phase == TrainPhase.Evaluated && value.Evaluation is { } e) Evaluated(e);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Fail(ex);
            }
        }
    }

    private void Step(TrainProgress p)
    {
        FlushPending();
        if (_jsonl is not null)
        {
            _pending = new Dictionary<string, object?>
            {
                ["step"] = p.Done, ["epoch"] = p.Epoch, ["loss"] = (float)p.StepLoss, ["lr"] = (float)p.LearningRate,
                ["examples_per_second"] = p.ExamplesPerSecond, ["wall_time"] = WallTime(),
            };
            _pendingStep = p.Done;
        }
        _tb?.Scalars(p.Done, [("train/loss", p.StepLoss), ("train/lr", p.LearningRate), ("train/examples_per_second", p.ExamplesPerSecond), ("train/epoch", p.Epoch)]);
    }

    private void Evaluated(EvalPoint e)
    {
        if (_jsonl is not null)
        {
            if (_pending is null || _pendingStep != e.Step)
            {
                FlushPending();
                _pending = new Dictionary<string, object?> { ["step"] = (long)e.Step, ["epoch"] = e.Epoch, ["wall_time"] = WallTime() };
                _pendingStep = e.Step;
            }
            _pending["val_loss"] = e.ValidationLoss;
            _pending["val_auc"] = e.ValidationAuc;
            _pending["train_loss_mean"] = e.TrainLoss;
            FlushPending();
        }
        _tb?.Scalars(e.Step, [("val/loss", e.ValidationLoss), ("val/auc", e.ValidationAuc), ("train/loss_mean", e.TrainLoss)]);
    }

    /// <summary>
    /// End-of-run metrics (e.g. the test set's AUC): one JSON line <c>{"step", "epoch", "wall_time", NAME: value ...}</c> and
    /// TensorBoard scalars tagged NAME with its first '_' made a '/' (<c>test_auc</c> → <c>test/auc</c>).
    /// </summary>
    public void Final(long step, double epoch, IEnumerable<(string Name, double Value)> metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        var list = metrics.ToList();
        foreach (var (name, _) in list)
            if (string.IsNullOrEmpty(name) || name is "step" or "epoch" or "wall_time")
                throw new ArgumentException($"metric name '{name}' is empty or reserved (step, epoch, wall_time)", nameof(metrics));
        lock (_lock)
        {
            if (_failure is not null) return;
            try
            {
                FlushPending();
                if (_jsonl is not null)
                {
                    var line = new Dictionary<string, object?> { ["step"] = step, ["epoch"] = epoch, ["wall_time"] = WallTime() };
                    foreach (var (name, value) in list) line[name] = value;
                    WriteLine(line);
                }
                _tb?.Scalars(step, list.Select(m => (Tag(m.Name), m.Value)));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Fail(ex);
            }
        }
    }

    private static string Tag(string name)
    {
        int i = name.IndexOf('_');
        return i > 0 ? name[..i] + "/" + name[(i + 1)..] : name;
    }

    private static double WallTime() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    private void FlushPending()
    {
        if (_pending is null) return;
        var line = _pending;
        _pending = null;
        _pendingStep = -1;
        WriteLine(line);
    }

    private void WriteLine(Dictionary<string, object?> line)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, s_json))
        {
            w.WriteStartObject();
            foreach (var (key, value) in line)
            {
                switch (value)
                {
                    case long l: w.WriteNumber(key, l); break;
                    case int i: w.WriteNumber(key, i); break;
                    case double d when double.IsFinite(d): w.WriteNumber(key, d); break;
                    case float f when float.IsFinite(f): w.WriteNumber(key, f); break;   // shortest form that reads back as this float
                    default: w.WriteNull(key); break;
                }
            }
            w.WriteEndObject();
        }
        _jsonl!.WriteLine(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
        _jsonl.Flush();
    }

    private void Fail(Exception e)
    {
        _failure = $"{JsonlPath ?? EventFile}: writing the training log failed ({e.Message}); logging stopped, training goes on";
        _pending = null;
    }

    /// <summary>Why logging stopped, the first time it is asked after a failed write; null otherwise.</summary>
    public string? TakeFailure()
    {
        lock (_lock)
        {
            if (_failure is null || _failureTaken) return null;
            _failureTaken = true;
            return _failure;
        }
    }

    /// <summary>A progress that reports to this log and to <paramref name="inner"/> (e.g. the console view); a failed log write
    /// reaches <paramref name="inner"/> once as a <see cref="TrainPhase.Message"/>.</summary>
    public IProgress<TrainProgress> Around(IProgress<TrainProgress>? inner) => new Tee(this, inner);

    private sealed class Tee(TrainingLog log, IProgress<TrainProgress>? inner) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value)
        {
            log.Report(value);
            inner?.Report(value);
            if (log.TakeFailure() is { } failure) inner?.Report(new TrainProgress { Phase = TrainPhase.Message, Message = failure });
        }
    }

    /// <summary>Writes the last step's line and closes the files.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            try { if (_failure is null) FlushPending(); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { Fail(ex); }
            _jsonl?.Dispose();
            _jsonl = null;
            _tb?.Dispose();
            _tb = null;
        }
    }
}
