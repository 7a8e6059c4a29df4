// Validation of metric inputs: non-empty, equal lengths, finite scores, labels in [0, 1]; messages name the problem.
namespace FastRec.Engine.Metrics;

/// <summary>Argument checks shared by every metric. Every failure is an <see cref="ArgumentException"/> whose
/// message names the argument, the index and the offending value.</summary>
public static class MetricsInput
{
    /// <summary>A label at or above this value counts as a positive for AUC, GAUC, the confusion counts and ranking.
    /// Log loss, MAE and RMSE use the label itself (soft labels are allowed there).</summary>
    public const float PositiveLabel = 0.5f;

    /// <summary>Checks that <paramref name="labels"/> and <paramref name="scores"/> are non-empty and of equal length,
    /// that every label is in [0, 1] and every score is finite (and, when <paramref name="probabilities"/> is set, in [0, 1]).</summary>
    public static void Validate(ReadOnlySpan<float> labels, ReadOnlySpan<float> scores, bool probabilities = false)
    {
        if (labels.Length == 0 && scores.Length == 0) throw new ArgumentException("empty input: there are no examples to evaluate (labels and scores are empty)");
        if (labels.Length != scores.Length)
            throw new ArgumentException($"length mismatch: labels has {labels.Length} elements but scores has {scores.Length}");
        if (labels.Length == 0) throw new ArgumentException("empty input: there are no examples to evaluate");
        for (int i = 0; i < labels.Length; i++)
        {
            float y = labels[i];
            if (float.IsNaN(y)) throw new ArgumentException($"labels[{i}] is NaN; labels must be in [0, 1]");
            if (y < 0f || y > 1f) throw new ArgumentException($"labels[{i}] = {y} is outside [0, 1]");
            float s = scores[i];
            if (float.IsNaN(s)) throw new ArgumentException($"scores[{i}] is NaN; scores must be finite");
            if (float.IsInfinity(s)) throw new ArgumentException($"scores[{i}] is {s}; scores must be finite");
            if (probabilities && (s < 0f || s > 1f))
                throw new ArgumentException($"scores[{i}] = {s} is not a probability (outside [0, 1]); pass sigmoid(logit)");
        }
    }

    /// <summary>Checks a per-example index column (user or item) against the number of examples.</summary>
    public static void ValidateIndex(ReadOnlySpan<int> index, int count, string name)
    {
        if (index.Length != count)
            throw new ArgumentException($"length mismatch: {name} has {index.Length} elements but labels has {count}");
        for (int i = 0; i < index.Length; i++)
            if (index[i] < 0) throw new ArgumentException($"{name}[{i}] = {index[i]} is negative; indices must be >= 0");
    }

    /// <summary>True when <paramref name="label"/> counts as a positive.</summary>
    public static bool IsPositive(float label) => label >= PositiveLabel;
}
