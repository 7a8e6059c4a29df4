// Opening CSV/TSV files with Sep: separator choice, header column lookup and number parsing with file:line errors.
using System.Globalization;
using nietras.SeparatedValues;

namespace FastRec.Engine.Data;

/// <summary>Shared plumbing of the CSV/TSV readers. Every error is an <see cref="InvalidDataException"/> that names the
/// file, and the line where a row is at fault.</summary>
internal static class CsvFiles
{
    /// <summary>Opens <paramref name="path"/> with a header row; quotes are unescaped.</summary>
    public static SepReader Open(string path, char? separator)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        char? sep = separator ?? Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".tsv" or ".tab" => '\t',
            ".csv" => ',',
            _ => null,
        };
        try
        {
            var reader = Sep.Reader(o => o with { Sep = sep is char c ? new Sep(c) : null, HasHeader = true, Unescape = true }).FromFile(path);
            if (reader.Header.IsEmpty) { reader.Dispose(); throw new InvalidDataException($"{path}: the file is empty; expected a header row"); }
            return reader;
        }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: cannot read the header: {e.Message}", e); }
    }

    /// <summary>Index of column <paramref name="name"/> (the option <paramref name="option"/> names it); otherwise an
    /// error naming the column and listing the columns present.</summary>
    public static int Column(SepReader reader, string path, string name, string option)
    {
        if (string.IsNullOrEmpty(name)) throw new ArgumentException($"{option} is empty; give a column name");
        if (reader.Header.TryIndexOf(name, out int index)) return index;
        var present = string.Join(", ", reader.Header.ColNames.Select(c => $"'{c}'"));
        throw new InvalidDataException($"{path}: column '{name}' ({option}) not found; the columns present are {present}");
    }

    /// <summary>Parses a finite-or-not double; unparseable text is an error naming the file, line and column.</summary>
    public static double Number(ReadOnlySpan<char> text, string path, int line, string column)
    {
        if (double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v)) return v;
        throw new InvalidDataException($"{path}:{line}: column '{column}': cannot parse '{text}' as a number");
    }

    /// <summary>An integer timestamp, or an ISO-8601 date-time read as UTC and returned as Unix seconds.</summary>
    public static long Timestamp(ReadOnlySpan<char> text, string path, int line, string column)
    {
        text = text.Trim();
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long t)) return t;
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var d)) return d.ToUnixTimeSeconds();
        throw new InvalidDataException($"{path}:{line}: column '{column}': cannot parse '{text}' as a timestamp (integer or ISO-8601 date-time)");
    }

    /// <summary>Runs <paramref name="body"/> and rewrites Sep's own parse errors (e.g. a row with the wrong number of
    /// columns, an unterminated quote) so they name the file.</summary>
    public static T Wrap<T>(string path, Func<T> body)
    {
        try { return body(); }
        catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{path}: unparseable row: {e.Message}", e);
        }
    }
}
