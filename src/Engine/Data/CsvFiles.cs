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
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: cannot read the header: {e.Message.ReplaceLineEndings(" ")}", e); }
        catch (NotSupportedException e) { throw new InvalidDataException(TooLong(path), e); }
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

    /// <summary>Runs <paramref name="body"/> and rewrites Sep's own errors so they name the file and fit on one line: a
    /// row with the wrong number of columns (an unterminated quote swallows the lines after it: the message keeps the
    /// first line of the row only) and a row over Sep's 16 MiB limit (a <see cref="NotSupportedException"/>).</summary>
    public static T Wrap<T>(string path, Func<T> body)
    {
        try { return body(); }
        catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
        {
            throw new InvalidDataException(RowError(path, e.Message), e);
        }
        catch (NotSupportedException e)
        {
            throw new InvalidDataException(TooLong(path), e);
        }
    }

    /// <summary>Sep's limit on a row (and its read buffer), in characters.</summary>
    public const int MaxRowChars = 16 << 20;

    private static string TooLong(string path)
        => $"{path}: a row is longer than {MaxRowChars:N0} characters (16 MiB, the reader's limit); if no row should be that long, look for a quote (\") that is never closed";

    /// <summary>One line from Sep's message "Found 2 column(s) on row 2/lines [3..2005]:'TEXT'\nExpected 4 column(s) ...".</summary>
    private static string RowError(string path, string sep)
    {
        var m = System.Text.RegularExpressions.Regex.Match(sep, @"lines \[(\d+)\.\.(\d+)\]");
        int nl = sep.IndexOf('\n');
        string first = nl < 0 ? sep : sep[..nl].TrimEnd('\r');
        if (first.Length > 200) first = first[..200] + " ...";
        var expected = System.Text.RegularExpressions.Regex.Match(sep, @"Expected \d+ column\(s\)");
        var sb = new System.Text.StringBuilder(path);
        if (m.Success) sb.Append(':').Append(m.Groups[1].Value);
        sb.Append(": unparseable row: ").Append(first);
        if (expected.Success) sb.Append("; ").Append(char.ToLowerInvariant(expected.Value[0])).Append(expected.Value.AsSpan(1)).Append(" as in the header");
        if (m.Success && m.Groups[1].Value != m.Groups[2].Value)
            sb.Append($"; the row runs from line {m.Groups[1].Value} to line {m.Groups[2].Value}: is a quote (\") left open on line {m.Groups[1].Value}?");
        return sb.ToString();
    }
}
