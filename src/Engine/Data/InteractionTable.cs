// Raw interactions as struct-of-arrays (user, item, label, weight, timestamp, dense), read from CSV/TSV with Sep.
using nietras.SeparatedValues;

namespace FastRec.Engine.Data;

/// <summary>Interactions in file order, N rows, F dense features. User and item ids are mapped to dense indices
/// (<see cref="UserIds"/>, <see cref="Items"/>). Every value is validated on the way in.</summary>
public sealed class InteractionTable
{
    internal InteractionTable(string source, ItemCatalog items, string[] userIds, string[] denseNames,
        int[] user, int[] item, float[] label, float[] weight, long[] timestamp, float[] dense, int[] line,
        int itemsWithoutText, int interactionsWithoutText, int invalidUtf8Rows = 0, int firstInvalidUtf8Line = 0)
    {
        Source = source; Catalog = items; UserIds = userIds; DenseNames = denseNames;
        _user = user; _item = item; _label = label; _weight = weight; _timestamp = timestamp; _dense = dense; _line = line;
        ItemsWithoutText = itemsWithoutText; InteractionsWithoutText = interactionsWithoutText;
        InvalidUtf8Rows = invalidUtf8Rows; FirstInvalidUtf8Line = firstInvalidUtf8Line;
    }

    private readonly int[] _user, _item, _line;   // (N)
    private readonly float[] _label, _weight;     // (N)
    private readonly long[] _timestamp;           // (N)
    private readonly float[] _dense;              // (N, F)

    /// <summary>The interactions file (for messages).</summary>
    public string Source { get; }
    /// <summary>The items; every <see cref="Items"/> value indexes into it.</summary>
    public ItemCatalog Catalog { get; }
    /// <summary>User id of each user index, in order of first appearance.</summary>
    public string[] UserIds { get; }
    /// <summary>Names of the F dense feature columns.</summary>
    public string[] DenseNames { get; }
    /// <summary>N.</summary>
    public int Count => _user.Length;
    /// <summary>Distinct items referenced by interactions that have no text: absent from the items file (under
    /// <see cref="MissingItemText.EmptyText"/> they are appended to <see cref="Catalog"/> with empty text) or with empty
    /// text there. Under <see cref="MissingItemText.Refuse"/> loading fails instead and the catalog is left unchanged.</summary>
    public int ItemsWithoutText { get; }
    /// <summary>Interactions whose item has no text.</summary>
    public int InteractionsWithoutText { get; }
    /// <summary>Rows whose user or item id holds U+FFFD: bytes that were not valid UTF-8, replaced on reading (a legitimate
    /// U+FFFD in the file counts too). Callers should warn: such ids may not match the items file or other data.</summary>
    public int InvalidUtf8Rows { get; }
    /// <summary>Line of the first row counted in <see cref="InvalidUtf8Rows"/> (1-based), or 0 when none.</summary>
    public int FirstInvalidUtf8Line { get; }

    /// <summary>User index per row. (N)</summary>
    public ReadOnlySpan<int> Users => _user;
    /// <summary>Item index per row. (N)</summary>
    public ReadOnlySpan<int> Items => _item;
    /// <summary>Label in [0, 1] per row. (N)</summary>
    public ReadOnlySpan<float> Labels => _label;
    /// <summary>Example weight &gt;= 0 per row. (N)</summary>
    public ReadOnlySpan<float> Weights => _weight;
    /// <summary>Timestamp per row. (N)</summary>
    public ReadOnlySpan<long> Timestamps => _timestamp;
    /// <summary>Dense features, row-major. (N, F)</summary>
    public ReadOnlySpan<float> Dense => _dense;
    /// <summary>Line of the file each row came from (1-based). (N)</summary>
    public ReadOnlySpan<int> Lines => _line;

    /// <summary>A table of rows <paramref name="rows"/> of this one (in the order given; keep it increasing to keep file
    /// order), sharing the catalogue and the user ids (users absent from the subset keep their index).</summary>
    public InteractionTable Subset(ReadOnlySpan<int> rows)
    {
        int n = rows.Length, F = DenseNames.Length;
        var u = new int[n]; var it = new int[n]; var l = new float[n]; var w = new float[n]; var t = new long[n]; var d = new float[(long)n * F]; var ln = new int[n];
        for (int q = 0; q < n; q++)
        {
            int r = rows[q];
            if ((uint)r >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(rows), r, $"row {r} is outside [0, {Count})");
            u[q] = _user[r]; it[q] = _item[r]; l[q] = _label[r]; w[q] = _weight[r]; t[q] = _timestamp[r]; ln[q] = _line[r];
            _dense.AsSpan(r * F, F).CopyTo(d.AsSpan(q * F, F));
        }
        return new InteractionTable(Source, Catalog, UserIds, DenseNames, u, it, l, w, t, d, ln, ItemsWithoutText, InteractionsWithoutText);
    }

    /// <summary>Reads an interactions CSV/TSV (see <see cref="InteractionFileOptions"/>) against an item catalog.
    /// Errors are <see cref="InvalidDataException"/> naming the file (and line for a row): a missing column (listing the
    /// columns present), an unparseable value, NaN/Inf in a feature or weight, a negative weight, a label outside [0, 1],
    /// items without text under <see cref="MissingItemText.Refuse"/>; bad options are <see cref="ArgumentException"/>.</summary>
    public static InteractionTable Load(string path, ItemCatalog items, InteractionFileOptions? options = null)
    {
        options ??= new InteractionFileOptions();
        ArgumentNullException.ThrowIfNull(items);
        if (options.RatingColumn is not null && options.LabelColumn is not null)
            throw new ArgumentException($"both a label column ('{options.LabelColumn}') and a rating column ('{options.RatingColumn}') are set; set LabelColumn to null to derive the label from the rating");
        if (options.RatingColumn is not null && options.PositiveThreshold is null)
            throw new ArgumentException($"rating column '{options.RatingColumn}' needs a PositiveThreshold (ratings >= threshold are positives)");
        if (options.PositiveThreshold is double pt && !double.IsFinite(pt))
            throw new ArgumentException($"PositiveThreshold must be finite, got {pt}");

        using var reader = CsvFiles.Open(path, options.Separator);
        int userCol = CsvFiles.Column(reader, path, options.UserColumn, "user column");
        int itemCol = CsvFiles.Column(reader, path, options.ItemColumn, "item column");
        int labelCol = options.LabelColumn is null ? -1 : CsvFiles.Column(reader, path, options.LabelColumn, "label column");
        int ratingCol = options.RatingColumn is null ? -1 : CsvFiles.Column(reader, path, options.RatingColumn, "rating column");
        int tsCol = options.TimestampColumn is null ? -1 : CsvFiles.Column(reader, path, options.TimestampColumn, "timestamp column");
        int weightCol = options.WeightColumn is null ? -1 : CsvFiles.Column(reader, path, options.WeightColumn, "weight column");
        int[] denseCols = options.DenseColumns.Select(c => CsvFiles.Column(reader, path, c, "dense feature column")).ToArray();
        double threshold = options.PositiveThreshold ?? 0;

        var b = new InteractionTableBuilder(path, items, options.DenseColumns.ToArray(), options.MissingItemText);
        var dense = new float[denseCols.Length];
        return CsvFiles.Wrap(path, () =>
        {
            foreach (SepReader.Row row in reader)
            {
                int line = row.LineNumberFrom;
                double label = 1;
                if (labelCol >= 0) label = CsvFiles.Number(row[labelCol].Span, path, line, options.LabelColumn!);
                else if (ratingCol >= 0)
                {
                    double rating = CsvFiles.Number(row[ratingCol].Span, path, line, options.RatingColumn!);
                    if (!double.IsFinite(rating)) throw new InvalidDataException($"{path}:{line}: column '{options.RatingColumn}': rating is {rating}");
                    label = rating >= threshold ? 1 : 0;
                }
                double weight = weightCol >= 0 ? CsvFiles.Number(row[weightCol].Span, path, line, options.WeightColumn!) : 1;
                long ts = tsCol >= 0 ? CsvFiles.Timestamp(row[tsCol].Span, path, line, options.TimestampColumn!) : b.Count;
                for (int f = 0; f < denseCols.Length; f++)
                {
                    double v = CsvFiles.Number(row[denseCols[f]].Span, path, line, options.DenseColumns[f]);
                    if (!double.IsFinite(v)) throw new InvalidDataException($"{path}:{line}: dense feature '{options.DenseColumns[f]}' is {v}; features must be finite");
                    if (Math.Abs(v) > float.MaxValue) throw new InvalidDataException($"{path}:{line}: dense feature '{options.DenseColumns[f]}' = {v} overflows float");
                    dense[f] = (float)v;
                }
                b.Add(row[userCol].Span, row[itemCol].Span, label, weight, ts, dense, line);
            }
            return b.Build();
        });
    }
}

/// <summary>Accumulates validated rows of any source (CSV, MovieTweetings .dat) into an <see cref="InteractionTable"/>.</summary>
internal sealed class InteractionTableBuilder
{
    private readonly string _path;
    private readonly ItemCatalog _items;
    private readonly string[] _denseNames;
    private readonly MissingItemText _policy;
    private readonly Dictionary<string, int> _users = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _userLookup;
    private readonly List<string> _userIds = [];
    private readonly List<int> _user = [], _item = [], _line = [];
    private readonly List<float> _label = [], _weight = [], _dense = [];
    private readonly List<long> _timestamp = [];
    private readonly int _catalogCount;                       // items with a row in the items file
    private readonly Dictionary<int, int> _noTextUse = [];    // item index -> interactions, for items without text
    private readonly Dictionary<string, int> _absent = new(StringComparer.Ordinal); // id -> provisional index >= _catalogCount
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _absentLookup;
    private readonly List<string> _absentIds = [];
    private int _invalidUtf8Rows, _firstInvalidUtf8Line;

    public InteractionTableBuilder(string path, ItemCatalog items, string[] denseNames, MissingItemText policy, int capacity = 1024)
    {
        _path = path; _items = items; _denseNames = denseNames; _policy = policy;
        _userLookup = _users.GetAlternateLookup<ReadOnlySpan<char>>();
        _absentLookup = _absent.GetAlternateLookup<ReadOnlySpan<char>>();
        _catalogCount = items.Count;
        foreach (var l in new[] { _user, _item, _line }) l.Capacity = capacity;
        _label.Capacity = capacity; _weight.Capacity = capacity; _timestamp.Capacity = capacity;
    }

    public int Count => _user.Count;

    public void Add(ReadOnlySpan<char> userId, ReadOnlySpan<char> itemId, double label, double weight, long timestamp, ReadOnlySpan<float> dense, int line)
    {
        userId = userId.Trim(); itemId = itemId.Trim();
        if (userId.IsEmpty) throw new InvalidDataException($"{_path}:{line}: empty user id");
        if (itemId.IsEmpty) throw new InvalidDataException($"{_path}:{line}: empty item id");
        if (double.IsNaN(label)) throw new InvalidDataException($"{_path}:{line}: label is NaN; labels must be in [0, 1]");
        if (label < 0 || label > 1) throw new InvalidDataException($"{_path}:{line}: label {label} is outside [0, 1] (for ratings, map the rating column with a positive threshold)");
        if (!double.IsFinite(weight)) throw new InvalidDataException($"{_path}:{line}: weight is {weight}; weights must be finite");
        if (weight < 0) throw new InvalidDataException($"{_path}:{line}: weight {weight} is negative; weights must be >= 0");
        if (weight > float.MaxValue) throw new InvalidDataException($"{_path}:{line}: weight {weight} overflows float");
        if (dense.Length != _denseNames.Length) throw new ArgumentException($"expected {_denseNames.Length} dense values, got {dense.Length}");
        if (userId.Contains(ItemCatalog.Replacement) || itemId.Contains(ItemCatalog.Replacement))
        {
            if (_invalidUtf8Rows++ == 0) _firstInvalidUtf8Line = line;
        }

        if (!_userLookup.TryGetValue(userId, out int u))
        {
            u = _userIds.Count;
            string s = userId.ToString();
            _users.Add(s, u); _userIds.Add(s);
        }
        int it = _items.IndexOf(itemId);
        if (it < 0 && !_absentLookup.TryGetValue(itemId, out it))
        {
            // No row in the items file: a provisional index after the catalog's; added to it by Build under EmptyText.
            it = _catalogCount + _absentIds.Count;
            string s = itemId.ToString();
            _absent.Add(s, it); _absentIds.Add(s);
        }
        if (it >= _catalogCount || _items.Text(it).Length == 0)
            _noTextUse[it] = _noTextUse.GetValueOrDefault(it) + 1;
        _user.Add(u); _item.Add(it); _label.Add((float)label); _weight.Add((float)weight); _timestamp.Add(timestamp); _line.Add(line);
        foreach (float v in dense) _dense.Add(v);
    }

    public InteractionTable Build()
    {
        if (_user.Count == 0) throw new InvalidDataException($"{_path}: no interactions (the file has a header but no rows)");
        int interactions = _noTextUse.Values.Sum();
        if (_noTextUse.Count > 0 && _policy == MissingItemText.Refuse)
        {
            int absent = _absentIds.Count;
            var examples = string.Join(", ", _noTextUse.Keys.Order().Take(5).Select(i => $"'{(i < _catalogCount ? _items.Id(i) : _absentIds[i - _catalogCount])}'"));
            throw new InvalidDataException(
                $"{_path}: {_noTextUse.Count} items referenced by {interactions} interactions have no text " +
                $"({absent} are absent from the items file{(_items.Source is null ? "" : $" {_items.Source}")}, {_noTextUse.Count - absent} have empty text), " +
                $"e.g. {examples}; fix the files, or keep them with empty text (--missing-item-text empty on the command line, " +
                "MissingItemText.EmptyText in the library)");
        }
        if (_items.Count != _catalogCount) throw new InvalidOperationException("the item catalog changed while reading interactions");
        foreach (string id in _absentIds) _items.Add(id, "");
        return new InteractionTable(_path, _items, _userIds.ToArray(), _denseNames,
            _user.ToArray(), _item.ToArray(), _label.ToArray(), _weight.ToArray(), _timestamp.ToArray(), _dense.ToArray(), _line.ToArray(),
            _noTextUse.Count, interactions, _invalidUtf8Rows, _firstInvalidUtf8Line);
    }
}
