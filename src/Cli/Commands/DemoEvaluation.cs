// The demo's evaluation a recommender expert trusts: strong baselines, the text item-vector model on every training
// row, full ranking, slices, intervals, the strict cold-item test and a learning curve of the transfer ablation.
using System.Diagnostics;
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Representations;
using FastRec.Kernels;

namespace FastRec.Cli.Commands;

/// <summary>Everything the demo's evaluation measured.</summary>
internal sealed class DemoEvaluationResult
{
    public required Scoreboard Board { get; init; }
    public required string TextModel { get; init; }
    public required (int Epoch, double ValidationAuc, double ValidationNdcg) TowerModel { get; init; }
    public required (int Rows, int Users) TowerTrained { get; init; }
    public required IReadOnlyList<FittedBaseline> Baselines { get; init; }
    public required ColdItemStudyResult? Cold { get; init; }
    public required TransferStudyResult? Transfer { get; init; }
    public required (int TrainRows, int TrainUsers) Train { get; init; }
    public required Dictionary<string, double> Seconds { get; init; }
}

internal static class DemoEvaluation
{
    /// <summary>Names of the demo's models on the scoreboard: the item-tower recommender over MiniLM and over the
    /// non-neural vectors (the same model), and the fixed-vector head of the transfer study over both.</summary>
    public const string Tower = "MiniLM item tower (all ratings)";
    public const string TowerNonNeural = "genre+year+title item tower (same model)";
    public const string TextModel = "MiniLM item vectors + history (wide & deep)";
    public const string NonNeural = "genre+year+title vectors + history (same head)";

    /// <summary>Runs the evaluation on <paramref name="data"/> (built with the history features and no sampled negatives) from
    /// <paramref name="raw"/> (the same table without derived features).</summary>
    public static DemoEvaluationResult Run(InteractionTable raw, RecDataset data, string encoderDir, IBackend b, string cacheDir,
        bool cold, bool transfer, Action<string> log)
    {
        var seconds = new Dictionary<string, double>();
        var sw = Stopwatch.StartNew();
        var window = EvalWindow.FromDataset(data);
        var text = EncoderItemVectors.Compute(encoderDir, b, data.Catalog, new EncoderItemVectorOptions { CacheDirectory = cacheDir }, log);
        var nonNeural = NonNeuralItemVectors.Compute(data.Catalog);
        seconds["item vectors"] = sw.Elapsed.TotalSeconds;

        sw.Restart();
        log("fitting the baselines (most popular, popularity, bias, history logistic, ItemKNN, BPR-MF, zero-shot MiniLM) on the training window ...");
        var baselines = StrongBaselines.FitAll(window, data.Train, data.Validation, b, text);
        seconds["baselines"] = sw.Elapsed.TotalSeconds;

        sw.Restart();
        log($"training the item-tower recommender on all {data.Train.Count:N0} training ratings (+ sampled unrated items), over MiniLM and over the non-neural vectors ...");
        using var tower = TowerModel.Fit(Tower, window, data.Train, data.Validation, text, b, new TowerModelOptions(), log);
        using var towerNonNeural = TowerModel.Fit(TowerNonNeural, window, data.Train, data.Validation, nonNeural, b, new TowerModelOptions());
        seconds["item tower"] = sw.Elapsed.TotalSeconds;
        sw.Restart();
        log($"training the fixed-vector head (the transfer study's model) on all {data.Train.Count:N0} training ratings ...");
        using var textModel = ItemVectorModel.Fit(TextModel, window, data.Train, data.Validation, text, b, new ItemVectorModelOptions(), log);
        using var nonNeuralModel = ItemVectorModel.Fit(NonNeural, window, data.Train, data.Validation, nonNeural, b, new ItemVectorModelOptions());
        seconds["fixed-vector head"] = sw.Elapsed.TotalSeconds;
        // The demo's text model is the better of the two by validation AUC (never by test).
        string best = tower.Best.ValidationAuc >= textModel.Best.ValidationAuc ? Tower : TextModel;
        log($"best text model by validation AUC: {best} ({tower.Best.ValidationAuc:0.0000} item tower, {textModel.Best.ValidationAuc:0.0000} fixed-vector head)");

        sw.Restart();
        var entries = new List<ScoreboardEntry>
        {
            new(Tower, tower.Predict(data.Test), tower.Best.ValidationAuc, tower, IsBaseline: false),
            new(TowerNonNeural, towerNonNeural.Predict(data.Test), towerNonNeural.Best.ValidationAuc, towerNonNeural, IsBaseline: true),
            new(TextModel, textModel.Predict(data.Test), textModel.Best.ValidationAuc, textModel, IsBaseline: false),
            new(NonNeural, nonNeuralModel.Predict(data.Test), nonNeuralModel.Best.ValidationAuc, nonNeuralModel, IsBaseline: true),
        };
        foreach (var f in baselines) entries.Add(new(f.Name, f.Model.Predict(data.Test), f.ValidationAuc, f.Model, IsBaseline: true));
        log("full ranking of the catalogue for every test user, slices and bootstrap intervals ...");
        var board = Scoreboard.Build(window, data.Test, entries,
            new ScoreboardOptions { AlsoOver = ["history-feature logistic", "BPR-MF", "recently popular", TowerNonNeural] });
        seconds["evaluation"] = sw.Elapsed.TotalSeconds;

        ColdItemStudyResult? coldResult = null;
        var bounds = StudyBoundaries.Of(data);
        if (cold)
        {
            sw.Restart();
            log("strict cold-item test: holding out the newest 20 % of items and refitting every model without them ...");
            coldResult = ColdItemStudy.Run(raw, t => HistoryFeatures.Append(t), data.Options, bounds, text, nonNeural, b, new ColdItemStudyOptions(), log);
            seconds["cold-item test"] = sw.Elapsed.TotalSeconds;
        }
        TransferStudyResult? transferResult = null;
        if (transfer)
        {
            sw.Restart();
            log("transfer learning curve: the same head over pretrained / random-init MiniLM, non-neural text and no item vectors at 1-100 % of the training period ...");
            var variants = TransferVariants.Build(["a", "b", "c", "e"], encoderDir, data.Catalog, b, cacheDir, log: log);
            transferResult = TransferStudy.Run(raw, t => HistoryFeatures.Append(t), data.Options, bounds, variants, b,
                new TransferStudyOptions { Seeds = 1, RankingUsers = 300 }, log);
            seconds["transfer study"] = sw.Elapsed.TotalSeconds;
        }
        int users = data.Train.Users.ToArray().Distinct().Count();
        return new DemoEvaluationResult
        {
            Board = board, TextModel = best, Baselines = baselines, TowerModel = tower.Best, TowerTrained = tower.Trained, Cold = coldResult, Transfer = transferResult,
            Train = (data.Train.Count, users), Seconds = seconds,
        };
    }
}
