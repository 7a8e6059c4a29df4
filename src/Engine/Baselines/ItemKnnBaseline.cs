// ItemKNN (RecBole): shrunk item-item cosine over co-likes in the training window, top neighbours kept sparse.
using FastRec.Engine.Evaluation;

namespace FastRec.Engine.Baselines;

/// <summary>
/// Item-based nearest neighbours. With U_i the users with a training-window positive (label &gt;= 0.5) on item i:
/// sim(j, i) = |U_i ∩ U_j| / (sqrt(|U_i|·|U_j|) + shrink) for j ≠ i; each item i keeps its <see cref="Neighbours"/> most
/// similar items j (ties: lower item index first), the others count 0. A user's score for item i is
/// s(i) = Σ over the distinct items j the user liked in the history of sim(j, i) (RecBole's ItemKNN:
/// interaction row · pruned similarity matrix). Full ranking accumulates each liked item's sparse row into the user's
/// V-row; history = <see cref="EvalWindow.HistoryBeforeTest"/>. Items never liked in training, and users with no like,
/// score 0. As an <see cref="IBaseline"/> s is calibrated (<see cref="CalibratedBaseline"/>); on a calibration row that
/// is a training like, the pair counts are taken without it: (|U_i ∩ U_j| − 1) / (sqrt((|U_i| − 1)·|U_j|) + shrink).
/// </summary>
public sealed class ItemKnnBaseline : CalibratedBaseline
{
    private readonly int[] _userCount;            // (V) |U_i|
    // Per target item i, its kept neighbours j (CSR, most similar first): what s(i) sums over.
    private readonly int[] _nOffsets, _nItems, _nCommon;
    private readonly float[] _nSim;
    // The transpose, per liked item j: the targets i that keep j, with sim(j, i), ascending i (full-ranking accumulation).
    private readonly int[] _tOffsets, _tItems;
    private readonly float[] _tSim;
    private readonly double _shrink;
    private readonly LikedHistory _liked;

    /// <inheritdoc/>
    public override string Name => "ItemKNN";
    /// <summary>The neighbours kept per item.</summary>
    public int Neighbours { get; }
    /// <summary>The shrinkage added to the cosine's denominator.</summary>
    public double Shrink => _shrink;

    private ItemKnnBaseline(EvalWindow window, int neighbours, double shrink, int[] userCount,
        int[] nOffsets, int[] nItems, int[] nCommon, float[] nSim) : base(window)
    {
        Neighbours = neighbours; _shrink = shrink; _userCount = userCount;
        _nOffsets = nOffsets; _nItems = nItems; _nCommon = nCommon; _nSim = nSim;
        int V = userCount.Length;
        _tOffsets = new int[V + 1];
        foreach (int j in nItems) _tOffsets[j + 1]++;
        for (int j = 0; j < V; j++) _tOffsets[j + 1] += _tOffsets[j];
        _tItems = new int[nItems.Length]; _tSim = new float[nItems.Length];
        var next = _tOffsets[..V];
        for (int i = 0; i < V; i++)
            for (int e = nOffsets[i]; e < nOffsets[i + 1]; e++)
            {
                int t = next[nItems[e]]++;
                _tItems[t] = i; _tSim[t] = nSim[e];
            }
        _liked = new LikedHistory(V);
    }

    /// <summary>The kept neighbours of <paramref name="item"/> and their similarities, most similar first.</summary>
    public (int[] Items, float[] Similarities) NeighboursOf(int item)
    {
        if ((uint)item >= (uint)_userCount.Length) throw new ArgumentOutOfRangeException(nameof(item), item, $"item index {item} is outside [0, {_userCount.Length})");
        int s = _nOffsets[item], e = _nOffsets[item + 1];
        return (_nItems[s..e], _nSim[s..e]);
    }

    /// <summary>Fits the similarities on <paramref name="window"/>'s training likes and calibrates.</summary>
    public static ItemKnnBaseline Fit(EvalWindow window, int neighbours = 100, double shrink = 10)
    {
        ArgumentNullException.ThrowIfNull(window);
        if (neighbours < 1) throw new ArgumentOutOfRangeException(nameof(neighbours), neighbours, $"neighbours must be >= 1, got {neighbours}");
        if (!(shrink >= 0 && double.IsFinite(shrink))) throw new ArgumentOutOfRangeException(nameof(shrink), shrink, $"shrink must be finite and >= 0, got {shrink}");
        int U = window.UserCount, V = window.ItemCount;
        // Distinct training likes per user (CSR by user) and per item (CSR by item).
        var liked = new LikedHistory(V);
        var uOffsets = new int[U + 1];
        var uItems = new List<int>();
        for (int u = 0; u < U; u++)
        {
            liked.Advance(window.TrainRows(u));
            uItems.AddRange(liked.Items);
            uOffsets[u + 1] = uItems.Count;
        }
        var userCount = new int[V];
        foreach (int i in uItems) userCount[i]++;
        var iOffsets = new int[V + 1];
        for (int i = 0; i < V; i++) iOffsets[i + 1] = iOffsets[i] + userCount[i];
        var iUsers = new int[uItems.Count];
        var next = iOffsets[..V];
        for (int u = 0; u < U; u++)
            for (int e = uOffsets[u]; e < uOffsets[u + 1]; e++) iUsers[next[uItems[e]]++] = u;

        // Per target item: co-like counts with every item sharing a user, then the top neighbours.
        var common = new int[V];
        var touched = new List<int>();
        var cand = new List<(float Sim, int Item)>();
        var nOffsets = new int[V + 1];
        var nItems = new List<int>(); var nCommon = new List<int>(); var nSim = new List<float>();
        for (int i = 0; i < V; i++)
        {
            touched.Clear();
            for (int e = iOffsets[i]; e < iOffsets[i + 1]; e++)
            {
                int u = iUsers[e];
                for (int f = uOffsets[u]; f < uOffsets[u + 1]; f++)
                {
                    int j = uItems[f];
                    if (j == i) continue;
                    if (common[j]++ == 0) touched.Add(j);
                }
            }
            cand.Clear();
            foreach (int j in touched)
                cand.Add(((float)(common[j] / (Math.Sqrt((double)userCount[i] * userCount[j]) + shrink)), j));
            cand.Sort((a, b) => a.Sim != b.Sim ? b.Sim.CompareTo(a.Sim) : a.Item.CompareTo(b.Item));
            for (int c = 0; c < Math.Min(neighbours, cand.Count); c++)
            {
                nItems.Add(cand[c].Item); nSim.Add(cand[c].Sim); nCommon.Add(common[cand[c].Item]);
            }
            foreach (int j in touched) common[j] = 0;
            nOffsets[i + 1] = nItems.Count;
        }
        var m = new ItemKnnBaseline(window, neighbours, shrink, userCount, nOffsets, [.. nItems], [.. nCommon], [.. nSim]);
        m.Calibrate();
        return m;
    }

    /// <inheritdoc/>
    protected internal override double RawScore(int user, int item, UserRows history, bool leaveOut)
    {
        _liked.Advance(history);
        double s = 0;
        for (int e = _nOffsets[item]; e < _nOffsets[item + 1]; e++)
        {
            int j = _nItems[e];
            if (!_liked.Contains(j)) continue;
            if (!leaveOut) s += _nSim[e];
            else if (_nCommon[e] > 1) s += (_nCommon[e] - 1) / (Math.Sqrt((double)(_userCount[item] - 1) * _userCount[j]) + _shrink);
        }
        return s;
    }

    /// <summary>Writes s(i) for every item: each liked history item's sparse row added into the user's row. (users.Length, V)</summary>
    public override void ScoreItems(EvalWindow window, ReadOnlySpan<int> users, Span<float> scores)
    {
        int V = _userCount.Length;
        ScorerArgs.Check(window, users, scores, V);
        var liked = new LikedHistory(V);
        for (int b = 0; b < users.Length; b++)
        {
            var row = scores.Slice(b * V, V);
            row.Clear();
            liked.Advance(window.HistoryBeforeTest(users[b]));
            foreach (int j in liked.Items)
                for (int e = _tOffsets[j]; e < _tOffsets[j + 1]; e++) row[_tItems[e]] += _tSim[e];
        }
    }
}
