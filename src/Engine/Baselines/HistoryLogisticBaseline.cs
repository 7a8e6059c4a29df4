// The history-feature logistic as a full-ranking scorer: user and item rates and counts at the start of the test window.
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;

namespace FastRec.Engine.Baselines;

/// <summary>
/// A <see cref="DenseLogisticBaseline"/> fitted on exactly the <see cref="HistoryFeatures"/> columns, also as an
/// <see cref="IItemScorer"/>: at the start of the test window every user's and item's features are computed with the
/// <see cref="HistoryFeatures"/> formulas from all the window's rows before it (train + validation; the prior g over
/// those rows, α = <see cref="Alpha"/>, which must be the α the examples' features were built with), and item i is scored
/// with the model's logit of (user rate, user log count, item rate, item log count). The user's features are the same for
/// every item, so items rank by their own rate and count. <see cref="IBaseline.Predict"/> is the wrapped model's.
/// </summary>
public sealed class HistoryLogisticBaseline : IRankingBaseline
{
    private EvalWindow? _featuresOf;
    private float[] _user = [], _item = [];   // (U, 2), (V, 2): rate, log count at the start of the test window

    /// <summary>Wraps <paramref name="model"/>, whose features must be <see cref="HistoryFeatures.Names"/> in order.</summary>
    public HistoryLogisticBaseline(DenseLogisticBaseline model, double alpha = HistoryFeatures.DefaultAlpha)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!model.FeatureNames.SequenceEqual(HistoryFeatures.Names))
            throw new ArgumentException($"model: reads [{string.Join(", ", model.FeatureNames)}], not exactly the history features [{string.Join(", ", HistoryFeatures.Names)}]", nameof(model));
        if (!(alpha > 0 && double.IsFinite(alpha))) throw new ArgumentOutOfRangeException(nameof(alpha), alpha, $"alpha must be finite and > 0, got {alpha}");
        Model = model; Alpha = alpha;
    }

    /// <summary>The fitted logistic regression.</summary>
    public DenseLogisticBaseline Model { get; }
    /// <summary>α of the rates.</summary>
    public double Alpha { get; }
    /// <inheritdoc/>
    public string Name => "history-feature logistic";

    /// <inheritdoc/>
    public float[] Predict(ExampleSet set) => Model.Predict(set);

    /// <summary>Writes the logit of each item's features with the user's, at the start of the test window. (users.Length, V)</summary>
    public void ScoreItems(EvalWindow window, ReadOnlySpan<int> users, Span<float> scores)
    {
        ArgumentNullException.ThrowIfNull(window);
        int V = window.ItemCount;
        ScorerArgs.Check(window, users, scores, V);
        if (!ReferenceEquals(_featuresOf, window)) Features(window);
        Span<float> row = stackalloc float[4];
        for (int b = 0; b < users.Length; b++)
        {
            row[0] = _user[2 * users[b]]; row[1] = _user[2 * users[b] + 1];
            var dst = scores.Slice(b * V, V);
            for (int i = 0; i < V; i++)
            {
                row[2] = _item[2 * i]; row[3] = _item[2 * i + 1];
                dst[i] = (float)Model.Logit(row);
            }
        }
    }

    private void Features(EvalWindow window)
    {
        (_user, _item) = window.HistoryFeaturesAtTestStart(Alpha);
        _featuresOf = window;
    }
}
