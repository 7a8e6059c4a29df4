// Preset for the MovieTweetings `.dat` format (`user::item::rating::timestamp`, `item::title (year)::genre|genre`).
namespace FastRec.Engine.Data;

/// <summary>Reads MovieTweetings: movies.dat (item text = "title (year) | genre, genre") and ratings.dat (ratings
/// 0-10, label = rating &gt;= <c>positiveThreshold</c>, 8 by default, which makes about half the ratings positive).
/// The 100k snapshot is vendored at data/movietweetings-100k (MIT licence, see its README). Sep cannot split on the
/// two-character "::", so this is a small span-based reader; errors name the file and line.</summary>
public static class MovieTweetings
{
    /// <summary>Default positive threshold on the 0-10 rating.</summary>
    public const double DefaultPositiveThreshold = 8;
    /// <summary>Folder of the vendored snapshot, relative to the repository root.</summary>
    public const string VendoredFolder = "data/movietweetings-100k";

    /// <summary>The vendored data folder: looked for from the current directory upward (a clone of the repository), then
    /// next to the application and upward from there (the `fastrec` .NET tool carries it beside its assembly). Throws
    /// <see cref="DirectoryNotFoundException"/> when neither has it.</summary>
    public static string FindVendoredDirectory() => FindVendoredDirectory(Directory.GetCurrentDirectory(), AppContext.BaseDirectory);

    /// <summary><see cref="FindVendoredDirectory()"/> from explicit starting folders, in order (each folder, then its parents).</summary>
    internal static string FindVendoredDirectory(params string[] starts)
    {
        foreach (string start in starts)
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, VendoredFolder);
                if (File.Exists(Path.Combine(candidate, "ratings.dat"))) return candidate;
            }
        throw new DirectoryNotFoundException($"{VendoredFolder}/ratings.dat not found in or above {string.Join(" or ", starts)}");
    }

    /// <summary>Reads movies.dat and ratings.dat from <paramref name="directory"/>.</summary>
    public static InteractionTable Load(string directory, double positiveThreshold = DefaultPositiveThreshold,
        MissingItemText missingItemText = MissingItemText.Refuse)
    {
        var items = LoadItems(Path.Combine(directory, "movies.dat"));
        return LoadRatings(Path.Combine(directory, "ratings.dat"), items, positiveThreshold, missingItemText);
    }

    /// <summary>Reads a movies.dat: <c>id::title (year)::genre|genre</c> per line (the genres may be empty).</summary>
    public static ItemCatalog LoadItems(string path)
    {
        string text = ReadAll(path);
        var catalog = new ItemCatalog { Source = path };
        int line = 0;
        foreach (var raw in text.AsSpan().EnumerateLines())
        {
            line++;
            var l = raw.TrimEnd('\r');
            if (l.IsWhiteSpace()) continue;
            int first = l.IndexOf("::"), last = l.LastIndexOf("::");
            if (first < 0 || last <= first) throw new InvalidDataException($"{path}:{line}: expected 'id::title (year)::genre|genre', got '{l}'");
            var id = l[..first].Trim();
            var title = l[(first + 2)..last].Trim();
            var genres = l[(last + 2)..].Trim();
            if (id.IsEmpty) throw new InvalidDataException($"{path}:{line}: empty item id");
            if (catalog.IndexOf(id) >= 0) throw new InvalidDataException($"{path}:{line}: duplicate item id '{id}'");
            catalog.CheckUtf8(l, [], line);
            string t = genres.IsEmpty ? title.ToString() : string.Concat(title, " | ", genres.ToString().Replace("|", ", "));
            catalog.Add(id.ToString(), t);
        }
        return catalog;
    }

    /// <summary>Reads a ratings.dat: <c>user::item::rating::timestamp</c> per line.</summary>
    public static InteractionTable LoadRatings(string path, ItemCatalog items, double positiveThreshold = DefaultPositiveThreshold,
        MissingItemText missingItemText = MissingItemText.Refuse)
    {
        if (!double.IsFinite(positiveThreshold)) throw new ArgumentException($"positiveThreshold must be finite, got {positiveThreshold}");
        string text = ReadAll(path);
        var b = new InteractionTableBuilder(path, items, [], missingItemText, capacity: Math.Max(1024, text.Length / 24));
        Span<Range> parts = stackalloc Range[5];
        int line = 0;
        foreach (var raw in text.AsSpan().EnumerateLines())
        {
            line++;
            var l = raw.TrimEnd('\r');
            if (l.IsWhiteSpace()) continue;
            int n = l.Split(parts, "::");
            if (n != 4) throw new InvalidDataException($"{path}:{line}: expected 'user::item::rating::timestamp', got '{l}'");
            double rating = CsvFiles.Number(l[parts[2]], path, line, "rating");
            if (!double.IsFinite(rating)) throw new InvalidDataException($"{path}:{line}: column 'rating': rating is {rating}");
            long ts = CsvFiles.Timestamp(l[parts[3]], path, line, "timestamp");
            b.Add(l[parts[0]], l[parts[1]], rating >= positiveThreshold ? 1 : 0, 1, ts, [], line);
        }
        return b.Build();
    }

    private static string ReadAll(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        return File.ReadAllText(path);
    }
}
