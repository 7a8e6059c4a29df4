// The /recommend request and response, and the request's validation: every problem named by its JSON field; the
// validated input lives in buffers rented from the shared array pool (returned on Dispose), so a request allocates little.
using System.Buffers;
using System.Text.Json;
using FastRec.Engine.Serving;

namespace FastRec.Serving;

/// <summary>A <c>POST /recommend</c> body (the OpenAPI schema; the host validates the raw JSON itself so that every error
/// names its field).</summary>
/// <param name="History">The user's rated item ids, oldest first (the recommender reads the last N, its history length);
/// may be empty: a new user.</param>
/// <param name="Labels">One label in [0, 1] per history item (liked = ≥ 0.5); omit (or null) when every history item was liked.</param>
/// <param name="K">How many items to return, in [1, the catalogue's size].</param>
/// <param name="Exclude">Item ids never to return (besides the history's, which never are); optional.</param>
public sealed record RecommendRequest(string[] History, float[]? Labels, int K, string[]? Exclude);

/// <summary>One recommended item.</summary>
/// <param name="Id">The item id.</param>
/// <param name="Text">The item's text in the recommender's catalogue (empty when it was saved without texts).</param>
/// <param name="Score">The recommender's score (higher = better; comparable within one answer).</param>
public sealed record RecommendedItem(string Id, string Text, float Score);

/// <summary>A <c>POST /recommend</c> answer.</summary>
/// <param name="Items">The top k items, best first (fewer when the history and exclusions leave fewer).</param>
public sealed record RecommendResponse(RecommendedItem[] Items);

/// <summary>A validated recommend request: catalogue indices and labels in rented buffers (<see cref="Dispose"/> returns them).</summary>
public sealed class RecommendInput : IDisposable
{
    private int[] _history, _exclude;
    private float[] _labels;
    private readonly int _historyCount, _excludeCount;

    internal RecommendInput(int[] history, float[] labels, int historyCount, int[] exclude, int excludeCount, int k)
    {
        _history = history; _labels = labels; _historyCount = historyCount; _exclude = exclude; _excludeCount = excludeCount; K = k;
    }

    /// <summary>(H) catalogue indices of the history items, oldest first.</summary>
    public ReadOnlySpan<int> History => _history.AsSpan(0, _historyCount);
    /// <summary>(H) their labels in [0, 1].</summary>
    public ReadOnlySpan<float> Labels => _labels.AsSpan(0, _historyCount);
    /// <summary>Catalogue indices never to return.</summary>
    public ReadOnlySpan<int> Exclude => _exclude.AsSpan(0, _excludeCount);
    /// <summary>How many items to return.</summary>
    public int K { get; }

    /// <summary>Returns the buffers to the pool.</summary>
    public void Dispose()
    {
        if (_history.Length > 0) ArrayPool<int>.Shared.Return(_history);
        if (_labels.Length > 0) ArrayPool<float>.Shared.Return(_labels);
        if (_exclude.Length > 0) ArrayPool<int>.Shared.Return(_exclude);
        _history = _exclude = []; _labels = [];
    }
}

/// <summary>Turns a parsed JSON body into a <see cref="RecommendInput"/>, collecting one message per bad field (keys as
/// JSON paths: <c>history</c>, <c>history[2]</c>, <c>labels</c>, <c>labels[1]</c>, <c>k</c>, <c>exclude</c>,
/// <c>exclude[0]</c>, <c>body</c>). Unknown ids are refused, not skipped (a typo or a stale id would silently change the
/// user): all of a field's unknown ids are listed in one message under the field.</summary>
public static class RecommendRequestReader
{
    private static readonly string[] Fields = ["history", "labels", "k", "exclude"];
    private const int Listed = 20;   // unknown ids listed in a message; more are counted

    /// <summary>The validated input, or null with <paramref name="errors"/> filled (field -> messages).</summary>
    public static RecommendInput? Read(JsonElement body, CatalogRecommender recommender, out Dictionary<string, string[]> errors)
    {
        ArgumentNullException.ThrowIfNull(recommender);
        var e = new Dictionary<string, string[]>();
        errors = e;
        void Add(string field, string message) => e[field] = e.TryGetValue(field, out var m) ? [.. m, message] : [message];

        if (body.ValueKind != JsonValueKind.Object)
        {
            Add("body", $"must be a JSON object with {string.Join(", ", Fields)}, got {ScoreRequestReader.Kind(body)}");
            return null;
        }
        foreach (var p in body.EnumerateObject())
            if (!Fields.Contains(p.Name))
                Add(p.Name, $"is not a field of a recommend request (expected {string.Join(", ", Fields)})");

        int V = recommender.ItemCount;
        int[] history = [], exclude = [];
        float[] labels = [];
        int historyCount = -1, excludeCount = 0;   // historyCount −1: no valid history array
        try
        {
            if (!body.TryGetProperty("history", out var h))
                Add("history", "is required: the user's rated item ids, oldest first (an empty array for a new user)");
            else if (Ids(h, "history", recommender, ref history, Add) is int n) historyCount = n;

            if (body.TryGetProperty("labels", out var l) && l.ValueKind != JsonValueKind.Null)
            {
                if (l.ValueKind != JsonValueKind.Array) Add("labels", $"must be an array of numbers in [0, 1], one per history item, got {ScoreRequestReader.Kind(l)}");
                else
                {
                    int count = l.GetArrayLength();
                    if (historyCount >= 0 && count != historyCount)
                        Add("labels", $"has {count} label{(count == 1 ? "" : "s")} for {historyCount} history item{(historyCount == 1 ? "" : "s")}: give one per history item, or omit labels when all were liked");
                    labels = count == 0 ? [] : ArrayPool<float>.Shared.Rent(count);
                    int i = 0;
                    foreach (var x in l.EnumerateArray())
                    {
                        if (x.ValueKind != JsonValueKind.Number) Add($"labels[{i}]", $"must be a number in [0, 1], got {ScoreRequestReader.Kind(x)}");
                        else if (!x.TryGetDouble(out double v) || !(v >= 0 && v <= 1)) Add($"labels[{i}]", $"must be in [0, 1] (liked = 1, disliked = 0), got {x.GetRawText()}");
                        else labels[i] = (float)v;
                        i++;
                    }
                }
            }
            else if (historyCount > 0)
            {
                labels = ArrayPool<float>.Shared.Rent(historyCount);
                labels.AsSpan(0, historyCount).Fill(1f);   // every history item liked
            }

            int k = 0;
            if (!body.TryGetProperty("k", out var kv)) Add("k", $"is required: how many items to return, in [1, {V}]");
            else if (kv.ValueKind != JsonValueKind.Number) Add("k", $"must be an integer in [1, {V}], got {ScoreRequestReader.Kind(kv)}");
            else if (!kv.TryGetInt32(out k) || k < 1 || k > V) Add("k", $"must be an integer in [1, {V}] (the recommender's catalogue has {V} items), got {kv.GetRawText()}");

            if (body.TryGetProperty("exclude", out var x2) && x2.ValueKind != JsonValueKind.Null && Ids(x2, "exclude", recommender, ref exclude, Add) is int m)
                excludeCount = m;

            if (e.Count > 0) { Return(history, labels, exclude); return null; }
            return new RecommendInput(history, labels, Math.Max(historyCount, 0), exclude, excludeCount, k);
        }
        catch
        {
            Return(history, labels, exclude);
            throw;
        }
    }

    /// <summary>Reads an array of item ids into a rented buffer of catalogue indices: its length, or null after adding the
    /// errors (a non-array, non-string elements by index, every unknown id listed once under the field).</summary>
    private static int? Ids(JsonElement v, string field, CatalogRecommender recommender, ref int[] buffer, Action<string, string> add)
    {
        if (v.ValueKind != JsonValueKind.Array) { add(field, $"must be an array of item id strings, got {ScoreRequestReader.Kind(v)}"); return null; }
        int n = v.GetArrayLength();
        buffer = n == 0 ? [] : ArrayPool<int>.Shared.Rent(n);
        List<string>? unknown = null;
        bool ok = true;
        int i = 0;
        foreach (var item in v.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String) { add($"{field}[{i}]", $"must be an item id string, got {ScoreRequestReader.Kind(item)}"); ok = false; }
            else
            {
                string id = item.GetString()!;
                int index = recommender.IndexOf(id);
                if (index >= 0) buffer[i] = index;
                else
                {
                    unknown ??= [];
                    if (!unknown.Contains(id, StringComparer.Ordinal)) unknown.Add(id);
                    ok = false;
                }
            }
            i++;
        }
        if (unknown is not null)
            add(field, $"{unknown.Count} unknown item id{(unknown.Count == 1 ? "" : "s")} (not in the recommender's catalogue of {recommender.ItemCount:N0} items; refused, not skipped): " +
                       string.Join(", ", unknown.Take(Listed).Select(x => $"'{ScoreRequestReader.Shorten(x)}'")) + (unknown.Count > Listed ? $", ... ({unknown.Count - Listed} more)" : ""));
        return ok ? n : null;
    }

    private static void Return(int[] history, float[] labels, int[] exclude)
    {
        if (history.Length > 0) ArrayPool<int>.Shared.Return(history);
        if (labels.Length > 0) ArrayPool<float>.Shared.Return(labels);
        if (exclude.Length > 0) ArrayPool<int>.Shared.Return(exclude);
    }
}
