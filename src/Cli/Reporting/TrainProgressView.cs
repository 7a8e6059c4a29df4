// Draws the Engine's training progress: a Spectre.Console progress bar on a terminal, plain log lines otherwise.
using System.Diagnostics;
using FastRec.Engine.Training;
using Spectre.Console;

namespace FastRec.Cli.Reporting;

/// <summary>
/// Runs <paramref name="work"/> with an <see cref="IProgress{T}"/> that shows loss, examples/s and ETA. On an interactive
/// terminal a Spectre.Console progress display (one task per phase); when output is redirected (or under --json, where
/// Console.Out is stderr), one line per evaluation, per message and at most one status line every 15 seconds.
/// </summary>
internal static class TrainProgressView
{
    public static T Run<T>(Func<IProgress<TrainProgress>, T> work)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive || Console.IsOutputRedirected || Commands.CliRun.JsonMode)
            return work(new LineProgress());
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                     new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx => result = work(new BarProgress(ctx)));
        return result;
    }

    private static string Line(TrainProgress p) => p.Phase switch
    {
        TrainPhase.Training => $"step {p.Done}/{p.Total}  loss {p.Loss:0.0000}  lr {p.LearningRate:0.###e+0}  {p.ExamplesPerSecond:0.0} ex/s  ETA {Eta(p.Eta)}",
        TrainPhase.Caching when p.Message is not null => $"{p.Message} {p.Done}/{p.Total}",
        TrainPhase.Caching => $"caching frozen layers {p.Done}/{p.Total}  {p.ExamplesPerSecond:0.0} ex/s  ETA {Eta(p.Eta)}",
        TrainPhase.Evaluated => Eval(p.Evaluation!),
        _ => p.Message ?? p.Phase.ToString(),
    };

    public static string Eval(EvalPoint e)
        => $"eval @ step {e.Step} (epoch {e.Epoch:0.00}): train loss {e.TrainLoss:0.0000}  val loss {e.ValidationLoss:0.0000}  val AUC {e.ValidationAuc:0.0000}";

    private static string Eta(TimeSpan? t) => t is { } v ? v.ToString(v.TotalHours >= 1 ? @"h\:mm\:ss" : @"m\:ss") : "-";

    private sealed class LineProgress : IProgress<TrainProgress>
    {
        private readonly Stopwatch _last = Stopwatch.StartNew();
        private TrainPhase _phase = TrainPhase.Message;

        public void Report(TrainProgress p)
        {
            bool status = p.Phase is TrainPhase.Training or TrainPhase.Caching;
            bool last = p.Done == p.Total && p.Total > 0;
            if (status && p.Phase == _phase && !last && _last.Elapsed.TotalSeconds < 15) return;
            if (p.Phase == TrainPhase.Encoding) return;
            _phase = p.Phase;
            _last.Restart();
            Console.WriteLine("  " + Line(p));
        }
    }

    private sealed class BarProgress(ProgressContext ctx) : IProgress<TrainProgress>
    {
        private ProgressTask? _cache, _train, _score;

        public void Report(TrainProgress p)
        {
            switch (p.Phase)
            {
                case TrainPhase.Caching when p.Message is not null:
                    _score ??= ctx.AddTask(p.Message, maxValue: p.Total);
                    _score.Value = p.Done;
                    break;
                case TrainPhase.Caching:
                    _cache ??= ctx.AddTask("frozen layers (once)", maxValue: p.Total);
                    _cache.Value = p.Done;
                    _cache.Description = $"frozen layers (once)  {p.ExamplesPerSecond:0.0} ex/s";
                    break;
                case TrainPhase.Training:
                    _train ??= ctx.AddTask("training", maxValue: p.Total);
                    _train.Value = p.Done;
                    _train.Description = $"training  loss {p.Loss:0.0000}  {p.ExamplesPerSecond:0.0} ex/s  ETA {Eta(p.Eta)}";
                    break;
                case TrainPhase.Evaluated:
                    AnsiConsole.MarkupLine($"  [grey]{Markup.Escape(Eval(p.Evaluation!))}[/]");
                    break;
                case TrainPhase.Message:
                    AnsiConsole.MarkupLine($"  [yellow]{Markup.Escape(p.Message ?? "")}[/]");
                    break;
            }
        }
    }
}
