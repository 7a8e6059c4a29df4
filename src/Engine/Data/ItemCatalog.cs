// The items: string ids mapped to dense indices 0..V-1 and the text of each item (segment B of an example).
using System.Text;

namespace FastRec.Engine.Data;

/// <summary>Items by dense index: <see cref="Id"/> and <see cref="Text"/>. Lookups by id take a span, so reading an
/// interactions file does not allocate a string per row.</summary>
public sealed class ItemCatalog
{
    private readonly List<string> _ids = [];
    private readonly List<string> _texts = [];
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    /// <summary>An empty catalog; fill it with <see cref="Add"/>.</summary>
    public ItemCatalog() { _lookup = _index.GetAlternateLookup<ReadOnlySpan<char>>(); }

    /// <summary>Number of items.</summary>
    public int Count => _ids.Count;
    /// <summary>The file this catalog was read from (for messages), or null.</summary>
    public string? Source { get; internal init; }
    /// <summary>Rows of the file whose id or text holds U+FFFD: bytes that were not valid UTF-8, replaced on reading (a
    /// legitimate U+FFFD counts too). Callers should warn.</summary>
    public int InvalidUtf8Rows { get; private set; }
    /// <summary>Line of the first row counted in <see cref="InvalidUtf8Rows"/> (1-based), or 0 when none.</summary>
    public int FirstInvalidUtf8Line { get; private set; }

    /// <summary>U+FFFD, what a decoder puts in place of invalid UTF-8.</summary>
    internal const char Replacement = '\uFFFD';

    /// <summary>Counts row <paramref name="line"/> in <see cref="InvalidUtf8Rows"/> when <paramref name="id"/> or
    /// <paramref name="text"/> holds U+FFFD.</summary>
    internal void CheckUtf8(ReadOnlySpan<char> id, ReadOnlySpan<char> text, int line)
    {
        if (!id.Contains(Replacement) && !text.Contains(Replacement)) return;
        if (InvalidUtf8Rows++ == 0) FirstInvalidUtf8Line = line;
    }
    /// <summary>Id of item <paramref name="index"/>.</summary>
    public string Id(int index) => _ids[index];
    /// <summary>Text of item <paramref name="index"/> (may be empty under <see cref="MissingItemText.EmptyText"/>).</summary>
    public string Text(int index) => _texts[index];

    /// <summary>Index of the item with id <paramref name="id"/>, or -1.</summary>
    public int IndexOf(ReadOnlySpan<char> id) => _lookup.TryGetValue(id, out int i) ? i : -1;

    /// <summary>Adds an item and returns its index; a duplicate id is an <see cref="ArgumentException"/>.</summary>
    public int Add(string id, string text)
    {
        ArgumentNullException.ThrowIfNull(id); ArgumentNullException.ThrowIfNull(text);
        if (!_index.TryAdd(id, _ids.Count)) throw new ArgumentException($"item '{id}' is already in the catalog");
        _ids.Add(id); _texts.Add(text);
        return _ids.Count - 1;
    }

    internal void SetText(int index, string text) => _texts[index] = text;

    /// <summary>Reads an items CSV/TSV with a header (see <see cref="ItemFileOptions"/>). Errors name the file and line:
    /// a missing column, an empty or duplicate id, a malformed row.</summary>
    public static ItemCatalog Load(string path, ItemFileOptions? options = null)
    {
        options ??= new ItemFileOptions();
        if (options.TextColumns.Count == 0) throw new ArgumentException("ItemFileOptions.TextColumns is empty; name at least one text column");
        using var reader = CsvFiles.Open(path, options.Separator);
        int idCol = CsvFiles.Column(reader, path, options.IdColumn, "item id column");
        int[] textCols = options.TextColumns.Select(c => CsvFiles.Column(reader, path, c, "item text column")).ToArray();
        var catalog = new ItemCatalog { Source = path };
        var sb = new StringBuilder();
        return CsvFiles.Wrap(path, () =>
        {
            foreach (var row in reader)
            {
                int line = row.LineNumberFrom;
                var id = row[idCol].Span.Trim();
                if (id.IsEmpty) throw new InvalidDataException($"{path}:{line}: empty item id (column '{options.IdColumn}')");
                sb.Clear();
                foreach (int c in textCols)
                {
                    var t = row[c].Span.Trim();
                    if (t.IsEmpty) continue;
                    if (sb.Length > 0) sb.Append(options.TextJoiner);
                    sb.Append(t);
                }
                string idText = id.ToString(), text = sb.ToString();
                if (catalog.IndexOf(id) >= 0) throw new InvalidDataException($"{path}:{line}: duplicate item id '{idText}'");
                catalog.CheckUtf8(idText, text, line);
                catalog.Add(idText, text);
            }
            return catalog;
        });
    }
}
