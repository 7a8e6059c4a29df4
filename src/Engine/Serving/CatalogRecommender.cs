// Top-k recommendations over the whole catalogue from a TowerScorer: pooled buffers (allocation-free, thread-safe calls),
// item ids, and new items added from their text without retraining.
using FastRec.Engine.Representations;
using FastRec.Kernels.Cpu;
using Select = FastRec.Engine.Evaluation.TopK;

namespace FastRec.Engine.Serving;

/// <summary>One recommended item: its index in the catalogue, id, text and score (higher = better).</summary>
public sealed record Recommendation(int Item, string Id, string Text, float Score);

/// <summary>
/// Serves the item-tower model (<see cref="TowerModel"/> frozen as a <see cref="TowerScorer"/>): for a user's rated history
/// it scores every catalogue item (the user vector once, the head over the catalogue in chunks) and returns the exact top k,
/// never an item of the history or of the caller's exclusions. No user id: an empty history is a new user.
/// <para>Thread-safe: calls may run on any number of threads at once. The index-based <see cref="TopK(ReadOnlySpan{int}, ReadOnlySpan{float}, int, Span{int}, ReadOnlySpan{int}, Span{float})"/>
/// allocates nothing after warm-up: each call rents a workspace, a score row (V) and an exclusion mask (V) from a lock-free
/// pool. <see cref="AddItems"/> swaps in a scorer with the new items atomically; a call sees the catalogue before or
/// after, never a mix. Results are deterministic: the same request gives bit-identical results on any thread.</para>
/// </summary>
public sealed class CatalogRecommender
{
    /// <summary>The catalogue at a point in time; replaced whole by <see cref="AddItems"/>.</summary>
    private sealed class State(TowerScorer scorer, string[] ids, string[] texts, Dictionary<string, int> index)
    {
        public readonly TowerScorer Scorer = scorer;
        public readonly string[] Ids = ids, Texts = texts;
        public readonly Dictionary<string, int> Index = index;
    }

    /// <summary>One caller's buffers: a scorer workspace, the scores (V) and the exclusion mask (V, all false between calls).</summary>
    private sealed class Lease(TowerScorer scorer)
    {
        public TowerWorkspace Workspace = scorer.CreateWorkspace();
        public float[] Scores = new float[scorer.ItemCount];
        public bool[] Mask = new bool[scorer.ItemCount];
    }

    private volatile State _state;
    private readonly Lease?[] _pool = new Lease?[Math.Max(8, 2 * Environment.ProcessorCount)];
    private readonly object _addGate = new();
    private readonly string? _encoderDir;
    private readonly EncoderItemVectorOptions _encoderOptions;

    /// <summary>
    /// A recommender over <paramref name="scorer"/>'s items, item i having id <paramref name="itemIds"/>[i] (unique) and text
    /// <paramref name="itemTexts"/>[i] (empty texts when null). <paramref name="encoderDir"/> (optional) is the encoder the
    /// item vectors were made with (e.g. models/minilm), read by <see cref="AddItems"/> with <paramref name="encoderOptions"/>
    /// (default: <see cref="EncoderItemVectors"/>' defaults, as <c>fastrec tower</c> uses).
    /// </summary>
    public CatalogRecommender(TowerScorer scorer, IReadOnlyList<string> itemIds, IReadOnlyList<string>? itemTexts = null,
        string? encoderDir = null, EncoderItemVectorOptions? encoderOptions = null)
    {
        ArgumentNullException.ThrowIfNull(scorer); ArgumentNullException.ThrowIfNull(itemIds);
        int V = scorer.ItemCount;
        if (itemIds.Count != V) throw new ArgumentException($"itemIds: {itemIds.Count} ids for the scorer's {V} items", nameof(itemIds));
        if (itemTexts is not null && itemTexts.Count != V) throw new ArgumentException($"itemTexts: {itemTexts.Count} texts for the scorer's {V} items", nameof(itemTexts));
        if (encoderDir is { Length: 0 }) throw new ArgumentException("encoderDir is empty; give the encoder's folder or null", nameof(encoderDir));
        var ids = new string[V]; var texts = new string[V];
        var index = new Dictionary<string, int>(V, StringComparer.Ordinal);
        for (int i = 0; i < V; i++)
        {
            ids[i] = itemIds[i] ?? throw new ArgumentException($"itemIds[{i}] is null", nameof(itemIds));
            texts[i] = itemTexts is null ? "" : itemTexts[i] ?? throw new ArgumentException($"itemTexts[{i}] is null", nameof(itemTexts));
            if (!index.TryAdd(ids[i], i)) throw new ArgumentException($"itemIds: the id '{ids[i]}' is given twice (items {index[ids[i]]} and {i})", nameof(itemIds));
        }
        _state = new State(scorer, ids, texts, index);
        _encoderDir = encoderDir;
        _encoderOptions = encoderOptions ?? new EncoderItemVectorOptions();
    }

    /// <summary>A recommender from a file saved with its catalogue (<see cref="Save"/>, <c>fastrec tower</c>).</summary>
    /// <exception cref="InvalidDataException">not a valid scorer file, or one saved without item ids (the message names the file).</exception>
    public static CatalogRecommender Load(string path, string? encoderDir = null, EncoderItemVectorOptions? encoderOptions = null)
    {
        var f = TowerScorer.LoadFile(path);
        if (f.ItemIds is null) throw new InvalidDataException($"{path}: the scorer was saved without its catalogue's item ids; save it with them to serve it");
        return new CatalogRecommender(f.Scorer, f.ItemIds, f.ItemTexts, encoderDir, encoderOptions);
    }

    /// <summary>Saves the current scorer with the catalogue's ids and texts (see <see cref="TowerScorer.Save(string, IReadOnlyList{string}?, IReadOnlyList{string}?, string?)"/>).</summary>
    public void Save(string path, string? info = null)
    {
        var s = _state;
        s.Scorer.Save(path, s.Ids, s.Texts, info);
    }

    /// <summary>The scorer of the current catalogue.</summary>
    public TowerScorer Scorer => _state.Scorer;
    /// <summary>V, the items of the current catalogue.</summary>
    public int ItemCount => _state.Ids.Length;
    /// <summary>Item <paramref name="item"/>'s id.</summary>
    public string ItemId(int item) => _state.Ids[item];
    /// <summary>Item <paramref name="item"/>'s text (empty when none was given).</summary>
    public string ItemText(int item) => _state.Texts[item];
    /// <summary>The index of the item with id <paramref name="id"/>, or −1.</summary>
    public int IndexOf(string id) => _state.Index.TryGetValue(id, out int i) ? i : -1;

    /// <summary>
    /// The <paramref name="k"/> best items for a user whose rated history is <paramref name="historyItems"/> (item indices,
    /// oldest first; the scorer reads the last <see cref="TowerScorer.HistoryLength"/>) with <paramref name="historyLabels"/>
    /// (in [0, 1]; liked = ≥ 0.5), over the whole catalogue: exact top k, best first, equal scores by lower item index.
    /// History items and <paramref name="exclude"/>d items (indices; repeats allowed) are never returned. An empty history is
    /// a new user. Writes the items into <paramref name="result"/>[..count] and, when <paramref name="resultScores"/> is not
    /// empty, their scores into it; returns count = min(k, the items neither in the history nor excluded). Allocates nothing
    /// after warm-up; thread-safe.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> ≤ 0 or above the catalogue's size; an item index
    /// outside the catalogue; a label outside [0, 1] (each message names the argument and the value).</exception>
    /// <exception cref="ArgumentException">lengths that do not match, or a result span shorter than k.</exception>
    public int TopK(ReadOnlySpan<int> historyItems, ReadOnlySpan<float> historyLabels, int k, Span<int> result,
        ReadOnlySpan<int> exclude = default, Span<float> resultScores = default)
        => TopK(_state, historyItems, historyLabels, k, result, exclude, resultScores);

    private int TopK(State s, ReadOnlySpan<int> historyItems, ReadOnlySpan<float> historyLabels, int k, Span<int> result,
        ReadOnlySpan<int> exclude, Span<float> resultScores)
    {
        int V = s.Ids.Length;
        CheckK(k, V);
        if (result.Length < k) throw new ArgumentException($"result holds {result.Length} slots but k is {k}", nameof(result));
        if (!resultScores.IsEmpty && resultScores.Length < k) throw new ArgumentException($"resultScores holds {resultScores.Length} slots but k is {k}", nameof(resultScores));
        if (historyItems.Length != historyLabels.Length)
            throw new ArgumentException($"historyLabels: {historyLabels.Length} labels for {historyItems.Length} history items", nameof(historyLabels));
        for (int j = 0; j < historyItems.Length; j++)
        {
            if ((uint)historyItems[j] >= (uint)V) throw new ArgumentOutOfRangeException(nameof(historyItems), historyItems[j], $"historyItems[{j}] = {historyItems[j]} is outside the catalogue's {V} items");
            if (!(historyLabels[j] >= 0 && historyLabels[j] <= 1)) throw new ArgumentOutOfRangeException(nameof(historyLabels), historyLabels[j], $"historyLabels[{j}] = {historyLabels[j]} is outside [0, 1]");
        }
        for (int j = 0; j < exclude.Length; j++)
            if ((uint)exclude[j] >= (uint)V) throw new ArgumentOutOfRangeException(nameof(exclude), exclude[j], $"exclude[{j}] = {exclude[j]} is outside the catalogue's {V} items");

        var lease = Rent(s.Scorer);
        try
        {
            s.Scorer.Score(historyItems, historyLabels, lease.Scores, lease.Workspace);
            foreach (int i in historyItems) lease.Mask[i] = true;
            foreach (int i in exclude) lease.Mask[i] = true;
            int count = Select.Select(lease.Scores, k, result, lease.Mask);
            if (!resultScores.IsEmpty)
                for (int q = 0; q < count; q++) resultScores[q] = lease.Scores[result[q]];
            return count;
        }
        finally
        {
            foreach (int i in historyItems) lease.Mask[i] = false;
            foreach (int i in exclude) lease.Mask[i] = false;
            Return(lease);
        }
    }

    /// <summary>
    /// Convenience by item id (allocates): the <paramref name="k"/> best items for a history of ids (oldest first) with
    /// <paramref name="historyLabels"/> (null = every history item liked), never a history item or one of
    /// <paramref name="exclude"/>. Unknown ids are refused, not skipped: a typo or a stale id would silently change the
    /// user, so the <see cref="ArgumentException"/> gives how many ids are unknown and lists them.
    /// </summary>
    /// <exception cref="ArgumentException">unknown ids in the history or the exclusions (counted and listed); mismatched lengths.</exception>
    /// <exception cref="ArgumentOutOfRangeException">k ≤ 0 or above the catalogue's size; a label outside [0, 1].</exception>
    public Recommendation[] TopK(IReadOnlyList<string> historyIds, IReadOnlyList<float>? historyLabels, int k, IReadOnlyList<string>? exclude = null)
    {
        ArgumentNullException.ThrowIfNull(historyIds);
        var s = _state;
        if (historyLabels is not null && historyLabels.Count != historyIds.Count)
            throw new ArgumentException($"historyLabels: {historyLabels.Count} labels for {historyIds.Count} history ids", nameof(historyLabels));
        var items = Indices(s, historyIds, nameof(historyIds), "history");
        var excluded = Indices(s, exclude ?? [], nameof(exclude), "exclusions");
        var labels = new float[items.Length];
        for (int j = 0; j < labels.Length; j++) labels[j] = historyLabels?[j] ?? 1f;
        CheckK(k, s.Ids.Length);
        var top = new int[k]; var scores = new float[k];
        int count = TopK(s, items, labels, k, top, excluded, scores);
        var r = new Recommendation[count];
        for (int q = 0; q < count; q++) r[q] = new Recommendation(top[q], s.Ids[top[q]], s.Texts[top[q]], scores[q]);
        return r;
    }

    private static void CheckK(int k, int V)
    {
        if (k <= 0 || k > V) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be in [1, {V}] (the catalogue's items), got {k}");
    }

    private static int[] Indices(State s, IReadOnlyList<string> ids, string argument, string what)
    {
        var r = new int[ids.Count];
        List<string>? unknown = null;
        for (int j = 0; j < r.Length; j++)
        {
            string id = ids[j] ?? throw new ArgumentException($"{argument}[{j}] is null", argument);
            if (s.Index.TryGetValue(id, out r[j])) continue;
            (unknown ??= []).Add(id);
        }
        if (unknown is not null)
        {
            var distinct = unknown.Distinct(StringComparer.Ordinal).ToList();
            string list = string.Join(", ", distinct.Take(20).Select(x => $"'{x}'")) + (distinct.Count > 20 ? $", ... ({distinct.Count - 20} more)" : "");
            throw new ArgumentException($"{argument}: {distinct.Count} unknown item id{(distinct.Count == 1 ? "" : "s")} in the {what} (not in the catalogue of {s.Ids.Length} items; refused, not skipped): {list}", argument);
        }
        return r;
    }

    /// <summary>
    /// Adds items from their ids and texts without retraining: the texts are encoded by the recommender's encoder as the
    /// catalogue's were (<see cref="EncoderItemVectors.ComputeTexts"/>: loads the encoder on each call), projected by the
    /// model's item tower (<see cref="TowerScorer.WithItems"/>: cold items, no residual) and appended as items
    /// V..V+m−1; the new catalogue replaces the old one atomically. Calls already running finish on the old catalogue.
    /// </summary>
    /// <exception cref="InvalidOperationException">the recommender was made without an encoder folder.</exception>
    /// <exception cref="ArgumentException">a null or duplicate id (within the new items or already in the catalogue), a
    /// null text or one that tokenises to nothing, or an encoder whose width is not the model's (each named).</exception>
    public void AddItems(IReadOnlyList<(string Id, string Text)> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (_encoderDir is null)
            throw new InvalidOperationException("AddItems: this recommender has no encoder; create it with the encoder folder the item vectors were made with");
        if (items.Count == 0) return;
        CheckNew(_state, items);
        var texts = items.Select(x => x.Text).ToArray();
        ItemVectors vectors;
        using (var backend = new CpuSimdBackend()) vectors = EncoderItemVectors.ComputeTexts(_encoderDir, backend, texts, _encoderOptions);
        lock (_addGate)
        {
            var s = _state;
            CheckNew(s, items);   // again: another AddItems may have run meanwhile
            if (vectors.Dim != s.Scorer.EncodingDim)
                throw new ArgumentException($"the encoder in {_encoderDir} makes {vectors.Dim}-wide vectors but the model was trained on {s.Scorer.EncodingDim}-wide ones; give the encoder the model was trained with");
            var scorer = s.Scorer.WithItems(vectors.Values);
            var index = new Dictionary<string, int>(s.Index, StringComparer.Ordinal);
            for (int q = 0; q < items.Count; q++) index.Add(items[q].Id, s.Ids.Length + q);
            _state = new State(scorer, [.. s.Ids, .. items.Select(x => x.Id)], [.. s.Texts, .. texts], index);
        }
    }

    private static void CheckNew(State s, IReadOnlyList<(string Id, string Text)> items)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var dup = new List<string>();
        for (int q = 0; q < items.Count; q++)
        {
            var (id, text) = items[q];
            if (id is null) throw new ArgumentException($"items[{q}].Id is null", nameof(items));
            if (text is null) throw new ArgumentException($"items[{q}].Text is null", nameof(items));
            if (s.Index.ContainsKey(id) || !seen.Add(id)) dup.Add(id);
        }
        if (dup.Count > 0)
            throw new ArgumentException($"items: {dup.Count} duplicate id{(dup.Count == 1 ? "" : "s")} (already in the catalogue or given twice): " +
                                        string.Join(", ", dup.Distinct().Take(20).Select(x => $"'{x}'")), nameof(items));
    }

    private Lease Rent(TowerScorer scorer)
    {
        var pool = _pool;
        Lease? lease = null;
        for (int i = 0; i < pool.Length && lease is null; i++) lease = Interlocked.Exchange(ref pool[i], null);
        if (lease is null) return new Lease(scorer);
        if (lease.Scores.Length != scorer.ItemCount) { lease.Scores = new float[scorer.ItemCount]; lease.Mask = new bool[scorer.ItemCount]; }
        if (lease.Workspace.Parts < CpuParallel.Threads) lease.Workspace = scorer.CreateWorkspace();
        return lease;
    }

    private void Return(Lease lease)
    {
        var pool = _pool;
        for (int i = 0; i < pool.Length; i++)
            if (Interlocked.CompareExchange(ref pool[i], lease, null) is null) return;
        // pool full: this lease is dropped for the GC
    }
}
