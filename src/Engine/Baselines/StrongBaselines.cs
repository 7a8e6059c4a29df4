// The registry of baselines that both score examples and rank the catalogue: fits them all on the training window.
using System.Diagnostics;
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Metrics;
using FastRec.Engine.Representations;
using FastRec.Kernels;

namespace FastRec.Engine.Baselines;

/// <summary>Hyper-parameters of <see cref="StrongBaselines.FitAll"/>.</summary>
public sealed record StrongBaselineOptions
{
    /// <summary>α of <see cref="PopularityBaseline"/>.</summary>
    public double PopularitySmoothing { get; init; } = 10;
    /// <summary>λ of <see cref="BiasBaseline"/>.</summary>
    public double BiasLambda { get; init; } = 2;
    /// <summary>α the examples' <see cref="HistoryFeatures"/> were built with (for <see cref="HistoryLogisticBaseline"/>).</summary>
    public double HistoryAlpha { get; init; } = HistoryFeatures.DefaultAlpha;
    /// <summary>Neighbours kept per item by <see cref="ItemKnnBaseline"/>.</summary>
    public int KnnNeighbours { get; init; } = 100;
    /// <summary>Shrinkage of <see cref="ItemKnnBaseline"/>.</summary>
    public double KnnShrink { get; init; } = 10;
    /// <summary>Choose ItemKNN's neighbours and shrinkage on the validation window instead (full-ranking NDCG@10 of
    /// <see cref="EvalWindow.ForValidation"/> over <see cref="KnnGrid"/>; ties go to the earlier grid point). On by default:
    /// a reviewer expects tuned neighbourhood baselines.</summary>
    public bool TuneKnn { get; init; } = true;
    /// <summary>The (neighbours, shrink) candidates of <see cref="TuneKnn"/>.</summary>
    public IReadOnlyList<(int Neighbours, double Shrink)> KnnGrid { get; init; } = [(100, 10), (100, 100), (50, 10), (50, 100), (400, 10), (400, 100)];
    /// <summary>The windows (days) <see cref="RecentPopularityBaseline"/> chooses from on the validation window.</summary>
    public IReadOnlyList<double> RecentDays { get; init; } = [1, 3, 7, 14, 30];
    /// <summary>Options of <see cref="BprBaseline"/>.</summary>
    public BprOptions Bpr { get; init; } = new();
}

/// <summary>One fitted baseline: the model, its fit time (calibration included) and its AUC on the validation examples.</summary>
public sealed record FittedBaseline(IRankingBaseline Model, double FitSeconds, double ValidationAuc)
{
    /// <summary>The model's name.</summary>
    public string Name => Model.Name;
}

/// <summary>Fits every baseline that is both an <see cref="IBaseline"/> and an <see cref="IItemScorer"/>.</summary>
public static class StrongBaselines
{
    /// <summary>
    /// Fits, in this order: <see cref="MostPopularBaseline"/>, <see cref="RecentPopularityBaseline"/> (window tuned on
    /// validation), <see cref="PopularityBaseline"/>, <see cref="BiasBaseline"/>,
    /// <see cref="HistoryLogisticBaseline"/> (only when <paramref name="train"/>'s dense features are exactly
    /// <see cref="HistoryFeatures.Names"/>), <see cref="ItemKnnBaseline"/>, <see cref="BprBaseline"/> (AdamW on
    /// <paramref name="backend"/>) and <see cref="ZeroShotTextBaseline"/> (only with <paramref name="textVectors"/>).
    /// The window-based models read the training window of <paramref name="window"/>; the example-based ones (popularity,
    /// bias, logistic) <paramref name="train"/>, which must be built from the same data. Each is timed, then scored on
    /// <paramref name="validation"/> (AUC; NaN when it has one class only).
    /// </summary>
    public static IReadOnlyList<FittedBaseline> FitAll(EvalWindow window, ExampleSet train, ExampleSet validation, IBackend backend,
        ItemVectors? textVectors = null, StrongBaselineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(window); ArgumentNullException.ThrowIfNull(backend);
        ScorerArgs.CheckSet(window, train);
        ScorerArgs.CheckSet(window, validation);
        var o = options ?? new StrongBaselineOptions();
        var fits = new List<Func<IRankingBaseline>>
        {
            () => MostPopularBaseline.Fit(window),
            () => RecentPopularityBaseline.FitTuned(window, train, validation, o.RecentDays),
            () => PopularityBaseline.Fit(train, o.PopularitySmoothing),
            () => BiasBaseline.Fit(train, o.BiasLambda),
        };
        if (train.DenseNames.SequenceEqual(HistoryFeatures.Names))
            fits.Add(() => new HistoryLogisticBaseline(DenseLogisticBaseline.Fit(train, name: "history-feature logistic"), o.HistoryAlpha));
        fits.Add(() =>
        {
            var (k, shrink) = o.TuneKnn ? TuneKnn(window, train, validation, o.KnnGrid) : (o.KnnNeighbours, o.KnnShrink);
            return ItemKnnBaseline.Fit(window, k, shrink);
        });
        fits.Add(() => BprBaseline.Fit(window, backend, o.Bpr));
        if (textVectors is not null) fits.Add(() => ZeroShotTextBaseline.Fit(window, textVectors));
        int positives = validation.Positives;
        bool bothClasses = positives > 0 && positives < validation.Count;
        var fitted = new List<FittedBaseline>();
        foreach (var fit in fits)
        {
            var sw = Stopwatch.StartNew();
            var model = fit();
            double seconds = sw.Elapsed.TotalSeconds;
            fitted.Add(new FittedBaseline(model, seconds, bothClasses ? RocAuc.Compute(validation.Labels, model.Predict(validation)) : double.NaN));
        }
        return fitted;
    }

    /// <summary>The grid point with the best full-ranking NDCG@10 on the validation window (ties: the earlier point).</summary>
    public static (int Neighbours, double Shrink) TuneKnn(EvalWindow window, ExampleSet train, ExampleSet validation,
        IReadOnlyList<(int Neighbours, double Shrink)> grid)
    {
        ArgumentNullException.ThrowIfNull(window); ArgumentNullException.ThrowIfNull(grid);
        if (grid.Count == 0) throw new ArgumentException("the ItemKNN grid is empty", nameof(grid));
        var vw = EvalWindow.ForValidation(window.Catalog, train, validation);
        if (vw.TestUsers.Length == 0) return grid[0];
        var best = grid[0]; double bestNdcg = double.NegativeInfinity;
        foreach (var g in grid)
        {
            var r = FullRanking.Evaluate(vw, ItemKnnBaseline.Fit(vw, g.Neighbours, g.Shrink), new FullRankingOptions { Ks = [10], SampledNegatives = 0 });
            double ndcg = r.Overall.Ndcg[0];
            if (ndcg > bestNdcg) { bestNdcg = ndcg; best = g; }
        }
        return best;
    }
}
