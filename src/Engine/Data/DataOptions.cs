// Options of the data pipeline: column mapping of the interactions and items files, and how examples are built and split.
namespace FastRec.Engine.Data;

/// <summary>What to do with interactions whose item has no text (absent from the items file, or all text columns empty).</summary>
public enum MissingItemText
{
    /// <summary>Refuse the data: an <see cref="System.IO.InvalidDataException"/> counts the items and interactions and
    /// names a few of the items (the default: a silent empty text usually means the two files do not match).</summary>
    Refuse,
    /// <summary>Keep the interactions; such items get the empty string as their text (segment B is then empty).</summary>
    EmptyText,
}

/// <summary>How examples are assigned to train, validation and test.</summary>
public enum SplitKind
{
    /// <summary>Global temporal split: the earliest fraction of examples (by timestamp) trains, the next validates, the
    /// latest tests. Examples with equal timestamps never straddle a boundary, so every validation timestamp is strictly
    /// greater than every train timestamp, and every test timestamp strictly greater than every validation one.</summary>
    Temporal,
    /// <summary>Seeded random split of the interactions (exact fractions, a Fisher-Yates shuffle keyed by the seed).</summary>
    Random,
}

/// <summary>Column mapping of an interactions CSV/TSV file with a header row.
/// The label is one of: <see cref="LabelColumn"/> (values in [0, 1]); <see cref="RatingColumn"/> with
/// <see cref="PositiveThreshold"/> (label = rating &gt;= threshold ? 1 : 0, set LabelColumn to null); or neither
/// (implicit feedback: every row is a positive, label 1; use negative sampling to get negatives).</summary>
public sealed record InteractionFileOptions
{
    /// <summary>Field separator; null = tab for .tsv/.tab files, comma for .csv, otherwise detected from the header.</summary>
    public char? Separator { get; init; }
    /// <summary>User id column (any string).</summary>
    public string UserColumn { get; init; } = "user";
    /// <summary>Item id column (matches the items file's id column).</summary>
    public string ItemColumn { get; init; } = "item";
    /// <summary>Label column, values in [0, 1]; null when the label comes from a rating or the data is implicit.</summary>
    public string? LabelColumn { get; init; } = "label";
    /// <summary>Rating column; the label is rating &gt;= <see cref="PositiveThreshold"/>. Requires LabelColumn = null.</summary>
    public string? RatingColumn { get; init; }
    /// <summary>Ratings at or above this value are positives (required with <see cref="RatingColumn"/>).</summary>
    public double? PositiveThreshold { get; init; }
    /// <summary>Timestamp column: an integer (e.g. Unix seconds) or an ISO-8601 date-time (read as UTC, stored as Unix
    /// seconds). null = the row number is the time, so file order is time order.</summary>
    public string? TimestampColumn { get; init; } = "timestamp";
    /// <summary>Optional example-weight column: finite and &gt;= 0. Absent = weight 1.</summary>
    public string? WeightColumn { get; init; }
    /// <summary>Optional dense numeric feature columns, finite values, kept in this order.</summary>
    public IReadOnlyList<string> DenseColumns { get; init; } = [];
    /// <summary>Policy for items with no text; see <see cref="Data.MissingItemText"/>.</summary>
    public MissingItemText MissingItemText { get; init; } = MissingItemText.Refuse;
}

/// <summary>Column mapping of an items CSV/TSV file with a header row: an id column and one or more text columns.</summary>
public sealed record ItemFileOptions
{
    /// <summary>Field separator; null = tab for .tsv/.tab files, comma for .csv, otherwise detected from the header.</summary>
    public char? Separator { get; init; }
    /// <summary>Item id column.</summary>
    public string IdColumn { get; init; } = "item";
    /// <summary>Text columns, joined in this order with <see cref="TextJoiner"/> (empty values are left out).</summary>
    public IReadOnlyList<string> TextColumns { get; init; } = ["title"];
    /// <summary>Placed between the non-empty text columns of an item.</summary>
    public string TextJoiner { get; init; } = " | ";
}

/// <summary>How interactions become examples.</summary>
public sealed record ExampleOptions
{
    /// <summary>Largest allowed <see cref="ContextSize"/>.</summary>
    public const int MaxContextSize = 128;

    /// <summary>K: segment A holds the user's last K positive items strictly before the example's timestamp. In [1, 128].</summary>
    public int ContextSize { get; init; } = 5;
    /// <summary>Temporal (default) or seeded random split.</summary>
    public SplitKind Split { get; init; } = SplitKind.Temporal;
    /// <summary>Fraction of examples that train, in (0, 1).</summary>
    public double TrainFraction { get; init; } = 0.8;
    /// <summary>Fraction that validates, in (0, 1); the test set gets the rest, which must be positive.</summary>
    public double ValidationFraction { get; init; } = 0.1;
    /// <summary>Temporal split at fixed times instead of fractions: when set (with <see cref="TestStart"/>), examples with
    /// timestamp &lt; ValidationStart train, those in [ValidationStart, TestStart) validate, the rest test. Used to keep the
    /// validation and test rows fixed while the training window changes (learning curves, cold-item holdouts).</summary>
    public long? ValidationStart { get; init; }
    /// <summary>First timestamp of the test split when <see cref="ValidationStart"/> is set.</summary>
    public long? TestStart { get; init; }
    /// <summary>Sampled negatives per positive interaction (0 = none, at most 100): items the user never interacted
    /// with, label 0, drawn uniformly from the catalog with the counter RNG keyed by <see cref="Seed"/>.</summary>
    public int NegativesPerPositive { get; init; }
    /// <summary>Seed of the random split and of negative sampling.</summary>
    public ulong Seed { get; init; } = 42;

    /// <summary>Checks every field; throws <see cref="ArgumentOutOfRangeException"/> whose ParamName is the property
    /// (what <see cref="RecDataset.Build"/> checks first).</summary>
    public void Validate() => RecDataset.Validate(this);
}
