// Datasets derived from one interaction table with the validation and test rows held fixed: training windows of a
// fraction of the training period (learning curves) and the strict cold-item holdout.
using FastRec.Engine.Data;

namespace FastRec.Engine.Evaluation;

/// <summary>The fixed temporal boundaries of a study: training from <see cref="TrainStart"/>, validation from
/// <see cref="ValidationStart"/>, test from <see cref="TestStart"/> (timestamps, inclusive starts).</summary>
public sealed record StudyBoundaries(long TrainStart, long ValidationStart, long TestStart)
{
    /// <summary>The boundaries of <paramref name="data"/>'s temporal split.</summary>
    public static StudyBoundaries Of(RecDataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Options.Split != SplitKind.Temporal) throw new ArgumentException("studies need the temporal split");
        return new StudyBoundaries(data.Train.Timestamps[0], data.Validation.Timestamps[0], data.Test.Timestamps[0]);
    }

    /// <summary>First timestamp of the most recent <paramref name="fraction"/> of the training period.</summary>
    public long WindowStart(double fraction)
    {
        if (!(fraction > 0 && fraction <= 1)) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "a training window is a fraction in (0, 1]");
        return fraction >= 1 ? TrainStart : ValidationStart - (long)Math.Ceiling(fraction * (ValidationStart - TrainStart));
    }
}

/// <summary>Builds the study datasets. Each keeps the user indices and the catalogue of the raw table, and the same
/// validation and test interactions; derived features (the prepare function, e.g. the history features) are
/// recomputed on what is left, so nothing from dropped rows leaks into them.</summary>
public static class StudyData
{
    /// <summary>The dataset whose training rows are those of the last <paramref name="fraction"/> of the training period
    /// (older rows are dropped from the data altogether: no model, feature or history sees them).</summary>
    public static RecDataset Window(InteractionTable raw, Func<InteractionTable, InteractionTable> prepare, ExampleOptions examples,
        StudyBoundaries bounds, double fraction)
    {
        ArgumentNullException.ThrowIfNull(raw); ArgumentNullException.ThrowIfNull(prepare); ArgumentNullException.ThrowIfNull(examples);
        long start = bounds.WindowStart(fraction);
        var rows = new List<int>(raw.Count);
        for (int r = 0; r < raw.Count; r++) if (raw.Timestamps[r] >= start) rows.Add(r);
        return Build(raw.Subset(rows.ToArray()), prepare, examples, bounds);
    }

    /// <summary>
    /// The strict cold-item holdout: the items with at least one interaction are ordered by first appearance (first
    /// timestamp, then file row); the latest <paramref name="fraction"/> of them are held out and every interaction
    /// with them before the test window is dropped, so they are new items at test time. Returns the dataset and the
    /// held-out mask (V); evaluate on test rows and a ranking universe restricted to the mask.
    /// </summary>
    public static (RecDataset Data, bool[] HeldOut, int DroppedRows) ColdItems(InteractionTable raw, Func<InteractionTable, InteractionTable> prepare,
        ExampleOptions examples, StudyBoundaries bounds, double fraction = 0.2)
    {
        ArgumentNullException.ThrowIfNull(raw); ArgumentNullException.ThrowIfNull(prepare);
        if (!(fraction > 0 && fraction < 1)) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "the held-out share of items must be in (0, 1)");
        int V = raw.Catalog.Count;
        var first = new long[V]; var firstRow = new int[V];
        Array.Fill(first, long.MaxValue); Array.Fill(firstRow, int.MaxValue);
        for (int r = 0; r < raw.Count; r++)
        {
            int i = raw.Items[r]; long t = raw.Timestamps[r];
            if (t < first[i] || (t == first[i] && r < firstRow[i])) { first[i] = t; firstRow[i] = r; }
        }
        var seen = Enumerable.Range(0, V).Where(i => first[i] != long.MaxValue).ToArray();
        Array.Sort(seen, (a, b) => first[a] != first[b] ? first[a].CompareTo(first[b]) : firstRow[a].CompareTo(firstRow[b]));
        int hold = (int)Math.Round(seen.Length * fraction);
        if (hold == 0) throw new InvalidDataException($"{raw.Source}: {seen.Length} items have interactions; {fraction:P0} of them is no item");
        var heldOut = new bool[V];
        for (int k = seen.Length - hold; k < seen.Length; k++) heldOut[seen[k]] = true;
        var rows = new List<int>(raw.Count);
        int dropped = 0;
        for (int r = 0; r < raw.Count; r++)
        {
            if (heldOut[raw.Items[r]] && raw.Timestamps[r] < bounds.TestStart) { dropped++; continue; }
            if (raw.Timestamps[r] >= bounds.TrainStart) rows.Add(r);
        }
        return (Build(raw.Subset(rows.ToArray()), prepare, examples, bounds), heldOut, dropped);
    }

    private static RecDataset Build(InteractionTable table, Func<InteractionTable, InteractionTable> prepare, ExampleOptions examples, StudyBoundaries bounds)
        => RecDataset.Build(prepare(table), examples with
        {
            Split = SplitKind.Temporal, ValidationStart = bounds.ValidationStart, TestStart = bounds.TestStart,
        });
}
