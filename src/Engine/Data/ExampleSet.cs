// One split of training examples as struct-of-arrays: user, item, label, weight, timestamp, context items, dense features.
namespace FastRec.Engine.Data;

/// <summary>N examples in time order. Example i is the text pair (segment A = texts of the items
/// <see cref="Context"/>(i), most recent first; segment B = <see cref="Catalog"/>.Text(<see cref="Items"/>[i])) plus F dense
/// features. Contexts are stored compressed (CSR): the items of example i are
/// ContextItems[ContextOffsets[i] .. ContextOffsets[i+1]], at most <see cref="ContextSize"/> of them.
/// A trainer should tokenise each item's text once and assemble segment A from the cached token ids, rather than
/// calling <see cref="SegmentA"/> (which allocates a string) per example.</summary>
public sealed class ExampleSet
{
    private readonly int[] _user, _item, _contextOffsets, _contextItems;
    private readonly float[] _label, _weight, _dense;
    private readonly long[] _timestamp;
    private readonly bool[] _sampled;

    internal ExampleSet(string name, ItemCatalog catalog, string[] userIds, string[] denseNames, int contextSize,
        int[] user, int[] item, float[] label, float[] weight, long[] timestamp, bool[] sampled,
        int[] contextOffsets, int[] contextItems, float[] dense)
    {
        Name = name; Catalog = catalog; UserIds = userIds; DenseNames = denseNames; ContextSize = contextSize;
        _user = user; _item = item; _label = label; _weight = weight; _timestamp = timestamp; _sampled = sampled;
        _contextOffsets = contextOffsets; _contextItems = contextItems; _dense = dense;
    }

    /// <summary>"train", "validation" or "test".</summary>
    public string Name { get; }
    /// <summary>The item catalog the item indices refer to (shared by every split).</summary>
    public ItemCatalog Catalog { get; }
    /// <summary>User id per user index (shared by every split).</summary>
    public string[] UserIds { get; }
    /// <summary>Names of the F dense features.</summary>
    public string[] DenseNames { get; }
    /// <summary>K, the most context items an example has.</summary>
    public int ContextSize { get; }
    /// <summary>N.</summary>
    public int Count => _user.Length;
    /// <summary>F.</summary>
    public int DenseCount => DenseNames.Length;

    /// <summary>User index per example. (N)</summary>
    public ReadOnlySpan<int> Users => _user;
    /// <summary>Candidate item index per example (segment B). (N)</summary>
    public ReadOnlySpan<int> Items => _item;
    /// <summary>Label in [0, 1] per example. (N)</summary>
    public ReadOnlySpan<float> Labels => _label;
    /// <summary>Example weight &gt;= 0. (N)</summary>
    public ReadOnlySpan<float> Weights => _weight;
    /// <summary>Timestamp, non-decreasing. (N)</summary>
    public ReadOnlySpan<long> Timestamps => _timestamp;
    /// <summary>True for negatives made by negative sampling. (N)</summary>
    public ReadOnlySpan<bool> Sampled => _sampled;
    /// <summary>CSR offsets into <see cref="ContextItems"/>. (N+1)</summary>
    public ReadOnlySpan<int> ContextOffsets => _contextOffsets;
    /// <summary>All context item indices, example after example, each most recent first. (sum of context lengths)</summary>
    public ReadOnlySpan<int> ContextItems => _contextItems;
    /// <summary>Dense features, row-major. (N, F)</summary>
    public ReadOnlySpan<float> Dense => _dense;

    /// <summary>Context item indices of example <paramref name="i"/>, most recent first (0..K of them).</summary>
    public ReadOnlySpan<int> Context(int i) => _contextItems.AsSpan(_contextOffsets[i], _contextOffsets[i + 1] - _contextOffsets[i]);
    /// <summary>Dense features of example <paramref name="i"/>. (F)</summary>
    public ReadOnlySpan<float> DenseRow(int i) => _dense.AsSpan(i * DenseCount, DenseCount);

    /// <summary>Segment A as text: the context items' texts joined with <paramref name="separator"/> (allocates).</summary>
    public string SegmentA(int i, string separator = " ; ")
    {
        var ctx = Context(i);
        var parts = new string[ctx.Length];
        for (int j = 0; j < ctx.Length; j++) parts[j] = Catalog.Text(ctx[j]);
        return string.Join(separator, parts);
    }

    /// <summary>Segment B as text: the candidate item's text.</summary>
    public string SegmentB(int i) => Catalog.Text(_item[i]);

    /// <summary>A new set holding examples <paramref name="indices"/> of this one, in the order given (keep it increasing
    /// to keep time order), with the same catalog, users and dense names. Used to train or evaluate on a sample.</summary>
    public ExampleSet Subset(ReadOnlySpan<int> indices, string? name = null)
    {
        int n = indices.Length, c = 0, F = DenseCount;
        foreach (int i in indices)
        {
            if ((uint)i >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), i, $"example index {i} is outside [0, {Count})");
            c += _contextOffsets[i + 1] - _contextOffsets[i];
        }
        var su = new int[n]; var si = new int[n]; var sl = new float[n]; var sw = new float[n]; var st = new long[n]; var ss = new bool[n];
        var so = new int[n + 1]; var sc = new int[c]; var sd = new float[n * F];
        for (int q = 0; q < n; q++)
        {
            int i = indices[q];
            su[q] = _user[i]; si[q] = _item[i]; sl[q] = _label[i]; sw[q] = _weight[i]; st[q] = _timestamp[i]; ss[q] = _sampled[i];
            var ctx = Context(i);
            ctx.CopyTo(sc.AsSpan(so[q]));
            so[q + 1] = so[q] + ctx.Length;
            DenseRow(i).CopyTo(sd.AsSpan(q * F, F));
        }
        return new ExampleSet(name ?? Name, Catalog, UserIds, DenseNames, ContextSize, su, si, sl, sw, st, ss, so, sc, sd);
    }

    /// <summary>Number of examples with label &gt;= 0.5.</summary>
    public int Positives
    {
        get { int n = 0; foreach (float y in _label) if (y >= 0.5f) n++; return n; }
    }
}
