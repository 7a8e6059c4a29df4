// The temporal evaluation protocol's view of the data: every real interaction per user in time order, tagged with its
// split, so that rankers, baselines and slices all read "what was known before the test window" from one place.
using FastRec.Engine.Data;

namespace FastRec.Engine.Evaluation;

/// <summary>Which split an interaction belongs to.</summary>
public enum SplitPart : byte
{
    /// <summary>The training window: what models are fitted on.</summary>
    Train = 0,
    /// <summary>The validation window: model selection and early stopping; observed history at test time.</summary>
    Validation = 1,
    /// <summary>The test window: reported once.</summary>
    Test = 2,
}

/// <summary>
/// The real interactions (sampled negatives excluded) of a <see cref="RecDataset"/>, per user in time order (equal
/// timestamps keep the examples' order), each tagged with its <see cref="SplitPart"/>. U users, V catalogue items.
/// <para>Protocol: models are fitted on <see cref="SplitPart.Train"/> rows only; at test time a user's observed history is
/// every interaction before the test window (train + validation rows, <see cref="HistoryBeforeTest"/>); the test window's
/// rows are what is predicted. Counts for slices: <see cref="TrainItemCount"/> (training interactions per item) and
/// <see cref="HistoryUserCount"/> (interactions before the test window per user).</para>
/// </summary>
public sealed partial class EvalWindow
{
    private readonly int[] _offsets;     // (U + 1) CSR over users
    private readonly int[] _items;       // (R) item per interaction, user-major, time order within a user
    private readonly float[] _labels;    // (R)
    private readonly long[] _timestamps; // (R)
    private readonly SplitPart[] _parts; // (R)
    private readonly int[] _beforeTest;  // (U) interactions of the user before the test window (a prefix of the user's rows)
    private readonly int[] _testUsers;   // users with >= 1 test positive, ascending

    private EvalWindow(ItemCatalog catalog, string[] userIds, int[] offsets, int[] items, float[] labels, long[] ts, SplitPart[] parts)
    {
        Catalog = catalog; UserIds = userIds;
        _offsets = offsets; _items = items; _labels = labels; _timestamps = ts; _parts = parts;
        int U = userIds.Length, V = catalog.Count;
        _beforeTest = new int[U];
        TrainItemCount = new int[V];
        var testUsers = new List<int>();
        for (int u = 0; u < U; u++)
        {
            int n = 0; bool testPositive = false;
            for (int r = offsets[u]; r < offsets[u + 1]; r++)
            {
                if (parts[r] != SplitPart.Test) n = r - offsets[u] + 1;
                else if (labels[r] >= 0.5f) testPositive = true;
                if (parts[r] == SplitPart.Train) TrainItemCount[items[r]]++;
            }
            _beforeTest[u] = n;
            if (testPositive) testUsers.Add(u);
        }
        _testUsers = testUsers.ToArray();
    }

    /// <summary>The item catalogue (V items); every item index refers to it.</summary>
    public ItemCatalog Catalog { get; }
    /// <summary>User id per user index (U).</summary>
    public string[] UserIds { get; }
    /// <summary>U.</summary>
    public int UserCount => UserIds.Length;
    /// <summary>V.</summary>
    public int ItemCount => Catalog.Count;
    /// <summary>Training-window interactions per item. (V)</summary>
    public int[] TrainItemCount { get; }
    /// <summary>Users with at least one test positive (label &gt;= 0.5), ascending: the users of full-ranking evaluation.</summary>
    public ReadOnlySpan<int> TestUsers => _testUsers;

    /// <summary>Interactions of <paramref name="user"/> before the test window (train + validation). (0..)</summary>
    public int HistoryUserCount(int user) => _beforeTest[user];

    /// <summary>All interactions of <paramref name="user"/>, time order: items, labels, timestamps, parts.</summary>
    public UserRows Rows(int user) => Slice(user, _offsets[user], _offsets[user + 1]);
    /// <summary>The user's interactions before the test window (train + validation rows), time order.</summary>
    public UserRows HistoryBeforeTest(int user) => Slice(user, _offsets[user], _offsets[user] + _beforeTest[user]);
    /// <summary>The user's training-window interactions only, time order.</summary>
    public UserRows TrainRows(int user)
    {
        int s = _offsets[user], e = s;
        while (e < _offsets[user + 1] && _parts[e] == SplitPart.Train) e++;
        return Slice(user, s, e);
    }
    /// <summary>The user's test-window interactions, time order.</summary>
    public UserRows TestRows(int user) => Slice(user, _offsets[user] + _beforeTest[user], _offsets[user + 1]);
    /// <summary>The user's interactions with timestamp strictly before <paramref name="timestamp"/> (any split), time order.</summary>
    public UserRows Before(int user, long timestamp)
    {
        int s = _offsets[user], lo = s, hi = _offsets[user + 1];   // first row with timestamp >= t, by bisection
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_timestamps[mid] < timestamp) lo = mid + 1; else hi = mid;
        }
        return Slice(user, s, lo);
    }

    /// <summary>The four <see cref="HistoryFeatures"/> as they stand at the start of the test window (over every
    /// interaction before it, same formula and α): per user (U, 2) = [hist_user_rate, hist_user_log_count] and per item
    /// (V, 2) = [hist_item_rate, hist_item_log_count]. What a full-ranking scorer feeds a model trained on those features.</summary>
    public (float[] User, float[] Item) HistoryFeaturesAtTestStart(double alpha = HistoryFeatures.DefaultAlpha)
    {
        int U = UserCount, V = ItemCount;
        var uN = new double[U]; var uP = new double[U]; var iN = new double[V]; var iP = new double[V];
        double gN = 0, gP = 0;
        for (int u = 0; u < U; u++)
            for (int r = _offsets[u]; r < _offsets[u] + _beforeTest[u]; r++)
            {
                double y = _labels[r];
                uN[u]++; uP[u] += y; iN[_items[r]]++; iP[_items[r]] += y; gN++; gP += y;
            }
        double g = HistoryFeatures.Prior(gP, gN);
        var user = new float[U * 2]; var item = new float[V * 2];
        for (int u = 0; u < U; u++) { user[2 * u] = (float)HistoryFeatures.Rate(uP[u], uN[u], g, alpha); user[2 * u + 1] = (float)HistoryFeatures.LogCount(uN[u]); }
        for (int i = 0; i < V; i++) { item[2 * i] = (float)HistoryFeatures.Rate(iP[i], iN[i], g, alpha); item[2 * i + 1] = (float)HistoryFeatures.LogCount(iN[i]); }
        return (user, item);
    }

    private UserRows Slice(int user, int start, int end) => new(user,
        _items.AsSpan(start, end - start), _labels.AsSpan(start, end - start), _timestamps.AsSpan(start, end - start), _parts.AsSpan(start, end - start));

    /// <summary>The window of <paramref name="data"/>: its train, validation and test examples minus the sampled negatives.</summary>
    public static EvalWindow FromDataset(RecDataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return FromSets(data.Catalog, data.Train, data.Validation, data.Test);
    }

    /// <summary>The validation analogue of <see cref="FromDataset"/>: the validation set plays the test window, so a
    /// user's history is the training rows and <see cref="TestUsers"/> are the users with a validation positive. For
    /// choosing hyper-parameters by full ranking without looking at the test split.</summary>
    public static EvalWindow ForValidation(ItemCatalog catalog, ExampleSet train, ExampleSet validation)
    {
        ArgumentNullException.ThrowIfNull(train);
        return FromSets(catalog, train, train.Subset([], "validation"), validation);
    }

    /// <summary>The window of three example sets sharing a catalogue and users (sampled negatives are left out). The sets
    /// must be in time order (as <see cref="RecDataset"/> builds them) and each later set no earlier than the one before.</summary>
    public static EvalWindow FromSets(ItemCatalog catalog, ExampleSet train, ExampleSet validation, ExampleSet test)
    {
        ArgumentNullException.ThrowIfNull(catalog); ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(validation); ArgumentNullException.ThrowIfNull(test);
        if (!ReferenceEquals(train.UserIds, validation.UserIds) || !ReferenceEquals(train.UserIds, test.UserIds))
            throw new ArgumentException("the train, validation and test sets must share their user ids (build them from one RecDataset)");
        var sets = new[] { train, validation, test };
        int U = train.UserIds.Length, V = catalog.Count;
        var counts = new int[U + 1];
        foreach (var s in sets)
            for (int i = 0; i < s.Count; i++)
                if (!s.Sampled[i])
                {
                    if ((uint)s.Items[i] >= (uint)V) throw new ArgumentException($"the {s.Name} set holds item index {s.Items[i]}, outside the catalogue of {V}");
                    counts[s.Users[i] + 1]++;
                }
        for (int u = 0; u < U; u++) counts[u + 1] += counts[u];
        int R = counts[U];
        var items = new int[R]; var labels = new float[R]; var ts = new long[R]; var parts = new SplitPart[R];
        var next = counts[..U];
        for (int p = 0; p < sets.Length; p++)
        {
            var s = sets[p];
            for (int i = 0; i < s.Count; i++)
            {
                if (s.Sampled[i]) continue;
                int r = next[s.Users[i]]++;
                items[r] = s.Items[i]; labels[r] = s.Labels[i]; ts[r] = s.Timestamps[i]; parts[r] = (SplitPart)p;
            }
        }
        for (int u = 0; u < U; u++)
            for (int r = counts[u] + 1; r < counts[u + 1]; r++)
                if (ts[r] < ts[r - 1])
                    throw new ArgumentException($"user '{train.UserIds[u]}': interactions are not in time order across the sets (build them with a temporal split)");
        return new EvalWindow(catalog, train.UserIds, counts, items, labels, ts, parts);
    }
}

/// <summary>A run of one user's interactions in time order.</summary>
public readonly ref struct UserRows(int user, ReadOnlySpan<int> items, ReadOnlySpan<float> labels, ReadOnlySpan<long> timestamps, ReadOnlySpan<SplitPart> parts)
{
    /// <summary>The user index.</summary>
    public int User { get; } = user;
    /// <summary>Item per interaction.</summary>
    public ReadOnlySpan<int> Items { get; } = items;
    /// <summary>Label per interaction (positive when &gt;= 0.5).</summary>
    public ReadOnlySpan<float> Labels { get; } = labels;
    /// <summary>Timestamp per interaction, non-decreasing.</summary>
    public ReadOnlySpan<long> Timestamps { get; } = timestamps;
    /// <summary>Split per interaction.</summary>
    public ReadOnlySpan<SplitPart> Parts { get; } = parts;
    /// <summary>Number of interactions.</summary>
    public int Count => Items.Length;
}

/// <summary>
/// A model that scores every catalogue item for a user at the start of the test window: the interface of full-ranking
/// evaluation. Implementations are fitted beforehand on the training window; they read a user's observed history from
/// <see cref="EvalWindow.HistoryBeforeTest"/>. Higher scores rank first; scores must be finite.
/// </summary>
public interface IItemScorer
{
    /// <summary>Short name for reports.</summary>
    string Name { get; }
    /// <summary>Writes scores (users.Length, V) row-major into <paramref name="scores"/> for every item of the catalogue,
    /// for each user of <paramref name="users"/>. Called from one thread at a time; may use the CPU pool inside.</summary>
    void ScoreItems(EvalWindow window, ReadOnlySpan<int> users, Span<float> scores);
}
