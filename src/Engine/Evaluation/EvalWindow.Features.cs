// The four history features of any (user, item, time), not only of the logged rows: what a model that scores unrated
// items (sampled negatives, the whole catalogue) feeds its dense inputs.
using FastRec.Engine.Data;

namespace FastRec.Engine.Evaluation;

public sealed partial class EvalWindow
{
    private ItemTimeline? _timeline;
    private object? _timelineLock;

    private ItemTimeline Timeline => LazyInitializer.EnsureInitialized(ref _timeline, ref _timelineLock, () => new ItemTimeline(this));

    /// <summary>
    /// Writes the four <see cref="HistoryFeatures"/> ([hist_user_rate, hist_user_log_count, hist_item_rate,
    /// hist_item_log_count], the same formula and α) of user <paramref name="history"/>.User and <paramref name="item"/>
    /// at time <paramref name="timestamp"/>, over every interaction of the window strictly before it: for a logged row
    /// they equal what <see cref="HistoryFeatures.Append"/> gave it. <paramref name="history"/> must be
    /// <see cref="Before"/>(user, timestamp). (4) floats.
    /// </summary>
    public void HistoryFeaturesAt(UserRows history, int item, long timestamp, Span<float> features, double alpha = HistoryFeatures.DefaultAlpha)
    {
        if ((uint)item >= (uint)ItemCount) throw new ArgumentOutOfRangeException(nameof(item), item, $"item index outside the catalogue of {ItemCount}");
        if (features.Length != HistoryFeatures.Names.Length) throw new ArgumentException($"features: expected {HistoryFeatures.Names.Length} floats, got {features.Length}");
        double uN = history.Count, uP = 0;
        foreach (float y in history.Labels) uP += y;
        var (iN, iP) = ItemHistoryBefore(item, timestamp);
        double g = PriorBefore(timestamp);
        features[0] = (float)HistoryFeatures.Rate(uP, uN, g, alpha);
        features[1] = (float)HistoryFeatures.LogCount(uN);
        features[2] = (float)HistoryFeatures.Rate(iP, iN, g, alpha);
        features[3] = (float)HistoryFeatures.LogCount(iN);
    }

    /// <summary>The interactions with <paramref name="item"/> strictly before <paramref name="timestamp"/> and the sum of
    /// their labels (its positives).</summary>
    public (double Interactions, double Positives) ItemHistoryBefore(int item, long timestamp)
    {
        if ((uint)item >= (uint)ItemCount) throw new ArgumentOutOfRangeException(nameof(item), item, $"item index outside the catalogue of {ItemCount}");
        return Timeline.ItemBefore(item, timestamp);
    }

    /// <summary>The running prior g = <see cref="HistoryFeatures.Prior"/> over every interaction strictly before <paramref name="timestamp"/>.</summary>
    public double PriorBefore(long timestamp)
    {
        var (n, p) = Timeline.GlobalBefore(timestamp);
        return HistoryFeatures.Prior(p, n);
    }

    /// <summary>The earliest timestamp of the test window (<see cref="long.MaxValue"/> when it is empty).</summary>
    public long TestStart
    {
        get
        {
            long t = long.MaxValue;
            for (int r = 0; r < _items.Length; r++) if (_parts[r] == SplitPart.Test) t = Math.Min(t, _timestamps[r]);
            return t;
        }
    }

    /// <summary>One past the latest timestamp of the window: "now" after its last interaction.</summary>
    public long End => _timestamps.Length == 0 ? 0 : _timestamps.Max() + 1;

    /// <summary>Every interaction of the window in time order, per item and overall, with running sums of the labels,
    /// for counting what happened strictly before a time by bisection.</summary>
    private sealed class ItemTimeline
    {
        private readonly int[] _itemOffsets;      // (V + 1) CSR over items
        private readonly long[] _itemTimes;       // (R) per item, ascending
        private readonly double[] _itemPositives; // (R + V) per item: positives of its first k rows, k = 0..n
        private readonly long[] _times;           // (R) all rows, ascending
        private readonly double[] _positives;     // (R + 1) positives of the first k rows

        public ItemTimeline(EvalWindow w)
        {
            int V = w.ItemCount, R = w._items.Length;
            _itemOffsets = new int[V + 1];
            foreach (int i in w._items) _itemOffsets[i + 1]++;
            for (int i = 0; i < V; i++) _itemOffsets[i + 1] += _itemOffsets[i];
            var rows = new int[R];
            var next = _itemOffsets[..V];
            for (int r = 0; r < R; r++) rows[next[w._items[r]]++] = r;
            _itemTimes = new long[R];
            _itemPositives = new double[R + V];
            for (int i = 0; i < V; i++)
            {
                int s = _itemOffsets[i], e = _itemOffsets[i + 1];
                Array.Sort(rows, s, e - s, Comparer<int>.Create((a, b) => w._timestamps[a] != w._timestamps[b] ? w._timestamps[a].CompareTo(w._timestamps[b]) : a.CompareTo(b)));
                double p = 0;
                for (int k = s; k < e; k++)
                {
                    _itemTimes[k] = w._timestamps[rows[k]];
                    _itemPositives[k + i] = p;
                    p += w._labels[rows[k]];
                }
                _itemPositives[e + i] = p;
            }
            var all = new int[R];
            for (int r = 0; r < R; r++) all[r] = r;
            Array.Sort(all, (a, b) => w._timestamps[a] != w._timestamps[b] ? w._timestamps[a].CompareTo(w._timestamps[b]) : a.CompareTo(b));
            _times = new long[R]; _positives = new double[R + 1];
            for (int k = 0; k < R; k++) { _times[k] = w._timestamps[all[k]]; _positives[k + 1] = _positives[k] + w._labels[all[k]]; }
        }

        public (double N, double Positives) GlobalBefore(long t)
        {
            int k = LowerBound(_times, 0, _times.Length, t);
            return (k, _positives[k]);
        }

        public (double N, double Positives) ItemBefore(int item, long t)
        {
            int s = _itemOffsets[item], k = LowerBound(_itemTimes, s, _itemOffsets[item + 1], t);
            return (k - s, _itemPositives[k + item]);
        }

        /// <summary>The first index in [lo, hi) whose time is >= t (hi when none).</summary>
        private static int LowerBound(long[] times, int lo, int hi, long t)
        {
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (times[mid] < t) lo = mid + 1; else hi = mid;
            }
            return lo;
        }
    }
}
