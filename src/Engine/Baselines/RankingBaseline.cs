// Shared by the strong baselines: the IBaseline + IItemScorer contract, training-window score calibration, liked history.
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;

namespace FastRec.Engine.Baselines;

/// <summary>A baseline that both scores examples with a probability (<see cref="IBaseline"/>: AUC, GAUC, log loss) and
/// ranks the whole catalogue for a user at the start of the test window (<see cref="IItemScorer"/>: full ranking).</summary>
public interface IRankingBaseline : IBaseline, IItemScorer
{
    /// <summary>Short name for reports.</summary>
    new string Name { get; }
}

/// <summary>Argument checks shared by every <see cref="IItemScorer"/> here.</summary>
internal static class ScorerArgs
{
    /// <summary>Throws unless <paramref name="window"/> has V = <paramref name="itemCount"/> items, every user is one of
    /// its users and <paramref name="scores"/> holds users.Length x V floats.</summary>
    public static void Check(EvalWindow window, ReadOnlySpan<int> users, Span<float> scores, int itemCount)
    {
        ArgumentNullException.ThrowIfNull(window);
        if (window.ItemCount != itemCount)
            throw new ArgumentException($"window: the window's catalogue has {window.ItemCount} items, the model was fitted on {itemCount}", nameof(window));
        if (scores.Length != (long)users.Length * itemCount)
            throw new ArgumentException($"scores: expected {users.Length} x {itemCount} = {(long)users.Length * itemCount} floats, got {scores.Length}", nameof(scores));
        foreach (int u in users)
            if ((uint)u >= (uint)window.UserCount) throw new ArgumentOutOfRangeException(nameof(users), u, $"users: user index {u} is outside [0, {window.UserCount})");
    }

    /// <summary>Throws unless <paramref name="set"/> indexes the users and items of <paramref name="window"/>.</summary>
    public static void CheckSet(EvalWindow window, ExampleSet set)
    {
        ArgumentNullException.ThrowIfNull(set);
        if (!ReferenceEquals(set.UserIds, window.UserIds))
            throw new ArgumentException($"set: the '{set.Name}' examples do not share the window's users (build both from one RecDataset)", nameof(set));
        if (set.Catalog.Count != window.ItemCount)
            throw new ArgumentException($"set: the '{set.Name}' examples' catalogue has {set.Catalog.Count} items, the window {window.ItemCount}", nameof(set));
    }
}

/// <summary>
/// A baseline whose raw score s(user, item | history) is not a probability: <see cref="IBaseline.Predict"/> returns
/// σ(a·s + b), a 1-D logistic regression (<see cref="DenseLogisticBaseline"/> on the one feature s) fitted on the
/// training window's rows, each scored from the user's interactions strictly before it (leak-free history; where the
/// model allows it, the row's own contribution to the fitted model is left out, see <see cref="RawScore"/>). The
/// calibration is monotone, so AUC and GAUC are those of the raw score; it only makes log loss meaningful.
/// An example at time t is scored from <see cref="EvalWindow.Before"/>(user, t): every split's rows before t.
/// </summary>
public abstract class CalibratedBaseline : IRankingBaseline
{
    private DenseLogisticBaseline? _calibration;

    /// <summary>The window the model was fitted on (its users and items index every set it predicts).</summary>
    public EvalWindow Window { get; }

    /// <summary>Binds the model to <paramref name="window"/>.</summary>
    protected CalibratedBaseline(EvalWindow window)
    {
        ArgumentNullException.ThrowIfNull(window);
        Window = window;
    }

    /// <inheritdoc/>
    public abstract string Name { get; }

    /// <summary>The calibration σ(a·s + b) of a raw score <paramref name="raw"/>.</summary>
    public double Probability(double raw)
    {
        if (_calibration is null) throw new InvalidOperationException($"{Name}: the score calibration is not fitted");
        return 1 / (1 + Math.Exp(-_calibration.Logit([(float)raw])));
    }

    /// <summary>
    /// The raw score of <paramref name="item"/> for <paramref name="user"/> whose interactions before the example are
    /// <paramref name="history"/> (time order). <paramref name="leaveOut"/> is true for a calibration row that is itself a
    /// training positive of the user on the item (and the user's only one): a model fitted on training positives then
    /// scores it as if that interaction had not been trained on, where it can do so exactly. Consecutive calls for one
    /// user see histories that only grow while the user does not change (see <see cref="LikedHistory"/>).
    /// </summary>
    protected internal abstract double RawScore(int user, int item, UserRows history, bool leaveOut);

    /// <inheritdoc/>
    public abstract void ScoreItems(EvalWindow window, ReadOnlySpan<int> users, Span<float> scores);

    /// <summary>Fits the calibration on every training-window row of <see cref="Window"/> (call once, at the end of Fit).</summary>
    protected void Calibrate()
    {
        var raw = new List<float>(); var labels = new List<float>();
        var positives = new Dictionary<int, int>();
        for (int u = 0; u < Window.UserCount; u++)
        {
            var rows = Window.TrainRows(u);
            if (rows.Count == 0) continue;
            positives.Clear();
            for (int r = 0; r < rows.Count; r++)
                if (rows.Labels[r] >= 0.5f) positives[rows.Items[r]] = positives.GetValueOrDefault(rows.Items[r]) + 1;
            for (int r = 0; r < rows.Count; r++)
            {
                int i = rows.Items[r];
                bool leaveOut = rows.Labels[r] >= 0.5f && positives[i] == 1;
                raw.Add(Finite(RawScore(u, i, Window.Before(u, rows.Timestamps[r]), leaveOut), u, i));
                labels.Add(rows.Labels[r]);
            }
        }
        Calibrate(raw.ToArray(), labels.ToArray());
    }

    /// <summary>Fits the calibration on given raw scores and their labels (a model that scores held-out rows itself).</summary>
    protected void Calibrate(float[] raw, float[] labels)
    {
        if (raw.Length == 0) throw new ArgumentException("window: no training row to fit the score calibration on", nameof(raw));
        _calibration = DenseLogisticBaseline.Fit($"{Name} calibration", ["raw score"], raw, labels, []);
    }

    private float Finite(double s, int user, int item)
    {
        if (!double.IsFinite(s)) throw new InvalidOperationException($"{Name}: the raw score of item {item} for user {user} is {s}");
        return (float)s;
    }

    /// <summary>σ(a·s + b) per example, s from the user's interactions strictly before the example's timestamp.</summary>
    public float[] Predict(ExampleSet set)
    {
        ScorerArgs.CheckSet(Window, set);
        // Per user in time order, so that a model can extend the user's history instead of rebuilding it.
        var order = new int[set.Count];
        for (int k = 0; k < order.Length; k++) order[k] = k;
        var users = set.Users.ToArray();
        Array.Sort(order, (a, b) => users[a] != users[b] ? users[a].CompareTo(users[b]) : a.CompareTo(b));
        var p = new float[set.Count];
        foreach (int k in order)
        {
            int u = set.Users[k], i = set.Items[k];
            p[k] = (float)Probability(Finite(RawScore(u, i, Window.Before(u, set.Timestamps[k]), leaveOut: false), u, i));
        }
        return p;
    }
}

/// <summary>
/// The distinct items a user liked (label &gt;= 0.5) in a history, in first-liked order, kept incrementally: advancing to a
/// longer history of the same user appends only the new rows; another user (or a shorter history) starts again.
/// </summary>
internal sealed class LikedHistory(int itemCount)
{
    private readonly int[] _mark = new int[itemCount];   // (V) == _stamp when the item is in the list
    private readonly List<int> _items = [];
    private int _stamp, _user = -1, _rows;

    /// <summary>The distinct liked items, in the order first liked.</summary>
    public IReadOnlyList<int> Items => _items;

    /// <summary>Whether <paramref name="item"/> is liked in the current history.</summary>
    public bool Contains(int item) => _mark[item] == _stamp;

    /// <summary>Moves to <paramref name="history"/>; returns the index in <see cref="Items"/> from which items are new
    /// (0 when the list was rebuilt).</summary>
    public int Advance(UserRows history)
    {
        if (history.User != _user || history.Count < _rows)
        {
            _stamp++; _items.Clear(); _user = history.User; _rows = 0;
        }
        int start = _items.Count;
        for (int r = _rows; r < history.Count; r++)
        {
            int j = history.Items[r];
            if (history.Labels[r] >= 0.5f && _mark[j] != _stamp) { _mark[j] = _stamp; _items.Add(j); }
        }
        _rows = history.Count;
        return start;
    }
}
