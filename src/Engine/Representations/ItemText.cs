// Item text for fixed item representations: MovieTweetings' "Title (Year) | Genre, Genre" taken apart and rewritten as a sentence.
using System.Text.RegularExpressions;

namespace FastRec.Engine.Representations;

/// <summary>A MovieTweetings item text taken apart: "Aliens (1986) | Action, Sci-Fi" is ("Aliens", 1986, [Action, Sci-Fi]).</summary>
/// <param name="Title">The title without the year.</param>
/// <param name="Year">The year in brackets at the end of the title.</param>
/// <param name="Genres">The genres after " | ", in the given order (empty when the item has none).</param>
public sealed record MovieText(string Title, int Year, string[] Genres);

/// <summary>The text an item encoder reads (<see cref="Format"/>) and the MovieTweetings parser behind it (<see cref="TryParseMovie"/>).</summary>
public static partial class ItemText
{
    // "title (yyyy)" optionally followed by " | genre, genre" (MovieTweetings.LoadItems joins the genres with ", ").
    [GeneratedRegex(@"^(?<title>.*?\S)\s*\((?<year>[0-9]{4})\)(?:\s*\|\s*(?<genres>.*))?$", RegexOptions.Singleline | RegexOptions.CultureInvariant)]
    private static partial Regex MovieRegex();

    /// <summary>Parses a MovieTweetings item text "Title (Year)" or "Title (Year) | Genre, Genre" (genres trimmed, empty ones
    /// dropped); false for any other text (also for an empty one).</summary>
    public static bool TryParseMovie(string text, out MovieText movie)
    {
        ArgumentNullException.ThrowIfNull(text);
        var m = MovieRegex().Match(text.Trim());
        if (!m.Success) { movie = null!; return false; }
        var genres = m.Groups["genres"].Success
            ? m.Groups["genres"].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            : [];
        movie = new MovieText(m.Groups["title"].Value, int.Parse(m.Groups["year"].Value, System.Globalization.CultureInfo.InvariantCulture), genres);
        return true;
    }

    /// <summary>
    /// The sentence an encoder reads for an item: "Title (Year). Genres: a, b" for a MovieTweetings text with genres
    /// ("Aliens (1986) | Action, Sci-Fi" becomes "Aliens (1986). Genres: Action, Sci-Fi"); any other text, a movie without
    /// genres included, unchanged.
    /// </summary>
    public static string Format(string catalogText)
    {
        ArgumentNullException.ThrowIfNull(catalogText);
        if (!TryParseMovie(catalogText, out var movie) || movie.Genres.Length == 0) return catalogText;
        return $"{movie.Title} ({movie.Year}). Genres: {string.Join(", ", movie.Genres)}";
    }
}
