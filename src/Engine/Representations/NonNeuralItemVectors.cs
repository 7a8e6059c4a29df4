// Item vectors without a neural network: genre multi-hot, year (decade one-hot + standardised scalar), hashed title words.
using System.Text;
using FastRec.Engine.Data;

namespace FastRec.Engine.Representations;

/// <summary>How <see cref="NonNeuralItemVectors"/> builds its vectors.</summary>
public sealed record NonNeuralOptions
{
    /// <summary>H: buckets of the signed word hashing, in [1, 1048576]. Default 256.</summary>
    public int HashBuckets { get; init; } = 256;
    /// <summary>Weight of the (unit) genre block, finite and &gt;= 0 (0 drops the block). Default 1.</summary>
    public float GenreWeight { get; init; } = 1f;
    /// <summary>Weight of the (unit) year block. Default 1.</summary>
    public float YearWeight { get; init; } = 1f;
    /// <summary>Weight of the (unit) title-words block (the only block of a generic catalogue). Default 1.</summary>
    public float TitleWeight { get; init; } = 1f;
}

/// <summary>
/// Fixed item vectors from the item text alone. A MovieTweetings catalogue (every non-empty text "Title (Year)" or
/// "Title (Year) | Genre, Genre", see <see cref="ItemText.TryParseMovie"/>) gives, per item,
/// [genres (G) | decades (K) | year z (1) | title words (H)]:
/// <list type="bullet">
/// <item>genres: multi-hot over the catalogue's genres (ordinal order);</item>
/// <item>year: one-hot of the decade (the catalogue's first to last decade) and z = (year − mean) / std over the catalogue's
/// items (population std; 0 when every year is the same);</item>
/// <item>title words: lower-cased runs of letters and digits of the title (year excluded), signed feature hashing with
/// 32-bit FNV-1a of the UTF-8 bytes (<see cref="Fnv1a"/>): bucket = (h &amp; 0x7FFFFFFF) mod H, sign + when bit 31 of h is 0.</item>
/// </list>
/// Each block is L2-normalised (an all-zero block stays zero) and multiplied by its weight, then the whole vector is
/// L2-normalised. Any other catalogue gives the hashed words of the whole text only (H). An item with empty text, or with
/// nothing to represent, gets a zero row.
/// </summary>
public static class NonNeuralItemVectors
{
    /// <summary>The vectors of every item of <paramref name="catalog"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">an option is out of range (the message names it).</exception>
    public static ItemVectors Compute(ItemCatalog catalog, NonNeuralOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        var o = options ?? new NonNeuralOptions();
        Validate(o);
        int V = catalog.Count, H = o.HashBuckets;
        var movies = new MovieText?[V];
        bool movieLayout = V > 0;
        for (int i = 0; i < V && movieLayout; i++)
        {
            string text = catalog.Text(i);
            if (string.IsNullOrWhiteSpace(text)) continue;
            if (ItemText.TryParseMovie(text, out var m)) movies[i] = m;
            else movieLayout = false;
        }
        if (!movieLayout || movies.All(m => m is null)) return WordsOnly(catalog, o);

        var genres = movies.Where(m => m is not null).SelectMany(m => m!.Genres).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var genreIndex = genres.Select((g, k) => (g, k)).ToDictionary(p => p.g, p => p.k, StringComparer.Ordinal);
        var years = movies.Where(m => m is not null).Select(m => (double)m!.Year).ToArray();
        double mean = years.Average(), std = Math.Sqrt(years.Sum(y => (y - mean) * (y - mean)) / years.Length);
        int firstDecade = Decade(years.Min()), K = (Decade(years.Max()) - firstDecade) / 10 + 1;
        int G = genres.Length, D = G + K + 1 + H;
        var values = new float[(long)V * D];   // (V, D)
        var row = new double[D];
        for (int i = 0; i < V; i++)
        {
            if (movies[i] is not { } m) continue;
            Array.Clear(row);
            var genreBlock = row.AsSpan(0, G);
            foreach (var g in m.Genres) genreBlock[genreIndex[g]] = 1;
            var yearBlock = row.AsSpan(G, K + 1);
            yearBlock[(Decade(m.Year) - firstDecade) / 10] = 1;
            yearBlock[K] = std > 0 ? (m.Year - mean) / std : 0;
            var titleBlock = row.AsSpan(G + K + 1, H);
            HashWords(m.Title, titleBlock);
            Scale(genreBlock, o.GenreWeight);
            Scale(yearBlock, o.YearWeight);
            Scale(titleBlock, o.TitleWeight);
            Store(row, values.AsSpan(i * D, D));
        }
        return new ItemVectors($"genre{G}+decade{K}+year+title-hash{H}", V, D, values);
    }

    private static ItemVectors WordsOnly(ItemCatalog catalog, NonNeuralOptions o)
    {
        int V = catalog.Count, H = o.HashBuckets;
        var values = new float[(long)V * H];   // (V, H)
        var row = new double[H];
        for (int i = 0; i < V; i++)
        {
            Array.Clear(row);
            HashWords(catalog.Text(i), row);
            Scale(row, o.TitleWeight);
            Store(row, values.AsSpan(i * H, H));
        }
        return new ItemVectors($"word-hash{H}", V, H, values);
    }

    private static void Validate(NonNeuralOptions o)
    {
        if (o.HashBuckets < 1 || o.HashBuckets > 1 << 20)
            throw new ArgumentOutOfRangeException(nameof(NonNeuralOptions.HashBuckets), o.HashBuckets, $"NonNeuralOptions.HashBuckets must be in [1, 1048576], got {o.HashBuckets}");
        foreach (var (name, w) in new[] { ("GenreWeight", o.GenreWeight), ("YearWeight", o.YearWeight), ("TitleWeight", o.TitleWeight) })
            if (!(w >= 0 && float.IsFinite(w)))
                throw new ArgumentOutOfRangeException(name, w, $"NonNeuralOptions.{name} must be finite and >= 0, got {w}");
    }

    private static int Decade(double year) => (int)Math.Floor(year / 10) * 10;

    /// <summary>The word tokens of <paramref name="text"/>: maximal runs of letters and digits, lower-cased (invariant culture).</summary>
    public static IReadOnlyList<string> Words(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var words = new List<string>();
        int start = -1;
        for (int i = 0; i <= text.Length; i++)
        {
            bool inWord = i < text.Length && char.IsLetterOrDigit(text[i]);
            if (inWord && start < 0) start = i;
            else if (!inWord && start >= 0)
            {
                words.Add(text[start..i].ToLowerInvariant());
                start = -1;
            }
        }
        return words;
    }

    /// <summary>32-bit FNV-1a of the UTF-8 bytes of <paramref name="word"/> (offset basis 2166136261, prime 16777619):
    /// stable across processes and platforms, unlike <see cref="string.GetHashCode()"/>.</summary>
    public static uint Fnv1a(string word)
    {
        ArgumentNullException.ThrowIfNull(word);
        uint h = 2166136261;
        foreach (byte b in Encoding.UTF8.GetBytes(word)) h = (h ^ b) * 16777619;
        return h;
    }

    /// <summary>Adds ±1 per word of <paramref name="text"/> into <paramref name="block"/> (H buckets).</summary>
    private static void HashWords(string text, Span<double> block)
    {
        foreach (var w in Words(text))
        {
            uint h = Fnv1a(w);
            block[(int)((h & 0x7FFFFFFF) % (uint)block.Length)] += (h >> 31) == 0 ? 1 : -1;
        }
    }

    /// <summary>block = weight · block / ‖block‖ (an all-zero block stays zero).</summary>
    private static void Scale(Span<double> block, float weight)
    {
        double norm = 0;
        foreach (double x in block) norm += x * x;
        if (norm == 0) return;
        double f = weight / Math.Sqrt(norm);
        for (int j = 0; j < block.Length; j++) block[j] *= f;
    }

    /// <summary>dst = row / ‖row‖ as floats (zeros when the row is zero).</summary>
    private static void Store(double[] row, Span<float> dst)
    {
        Scale(row, 1f);
        for (int j = 0; j < row.Length; j++) dst[j] = (float)row[j];
    }
}
