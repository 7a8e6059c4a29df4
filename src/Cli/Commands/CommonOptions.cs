// Options shared by train/eval/predict: the data files and their columns, example building, and the backend.
using System.CommandLine;
using System.Globalization;
using FastRec.Engine.Data;
using FastRec.Engine.Training;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Kernels.Gpu;
using FastRec.Kernels.Reference;

namespace FastRec.Cli.Commands;

/// <summary>The data options of a command: files, column mapping, example building. Parsed into Engine options.</summary>
internal sealed class DataOptions
{
    public readonly Option<string?> Interactions = new("--interactions") { Description = "Interactions CSV/TSV with a header (or ratings.dat with --preset movietweetings)" };
    public readonly Option<string?> Items = new("--items") { Description = "Items CSV/TSV with a header: an id column and text columns (or movies.dat with the preset)" };
    public readonly Option<string?> Preset = new("--preset") { Description = "movietweetings: read the .dat format (default data when no files are given)" };
    public readonly Option<string?> UserCol = new("--user-col") { Description = "User id column (default: user)" };
    public readonly Option<string?> ItemCol = new("--item-col") { Description = "Item id column of the interactions (default: item)" };
    public readonly Option<string?> LabelCol = new("--label-col") { Description = "Label column, values in [0,1] (default: label)" };
    public readonly Option<string?> RatingCol = new("--rating-col") { Description = "Rating column; label = rating >= --positive-threshold" };
    public readonly Option<double?> PositiveThreshold = new("--positive-threshold") { Description = "Ratings at or above this are positives" };
    public readonly Option<bool> Implicit = new("--implicit") { Description = "No label column: every row is a positive (use --negatives)" };
    public readonly Option<string?> TimestampCol = new("--timestamp-col") { Description = "Timestamp column, integer or ISO-8601 (default: timestamp; 'none' = row order)" };
    public readonly Option<string?> WeightCol = new("--weight-col") { Description = "Optional example weight column" };
    public readonly Option<string[]> DenseCols = new("--dense-cols") { Description = "Dense numeric feature columns (comma separated)", AllowMultipleArgumentsPerToken = true };
    public readonly Option<string?> ItemIdCol = new("--item-id-col") { Description = "Item id column of the items file (default: item)" };
    public readonly Option<string[]> TextCols = new("--text-cols") { Description = "Text columns of the items file (default: title)", AllowMultipleArgumentsPerToken = true };
    public readonly Option<string?> MissingText = new("--missing-item-text") { Description = "refuse (default) | empty: items with no text" };
    public readonly Option<int?> ContextSize = new("--context-size") { Description = "K: the user's last K positive items form segment A (1..128, default 5)" };
    public readonly Option<string?> SplitKind = new("--split-kind") { Description = "How examples are split into train/validation/test: temporal (default) | random" };
    public readonly Option<double?> TrainFraction = new("--train-fraction") { Description = "Fraction of examples that train (default 0.8)" };
    public readonly Option<double?> ValFraction = new("--val-fraction") { Description = "Fraction that validates (default 0.1)" };
    public readonly Option<int?> Negatives = new("--negatives") { Description = "Sampled negatives per positive (default 0)" };
    public readonly Option<ulong?> DataSeed = new("--data-seed") { Description = "Seed of the random split and negative sampling (default 42)" };
    public readonly Option<bool> History = new("--history-features") { Description = "Add leak-free user/item positive rates and counts (from strictly earlier rows) as dense features" };
    public readonly Option<bool> AllowResplit = new("--allow-resplit")
    {
        Description = "Evaluate under split options (--split-kind, --train-fraction, --val-fraction, a random split's --data-seed) other than the checkpoint's: " +
                      "the test examples may then overlap the training period",
    };

    public void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { Interactions, Items, Preset, UserCol, ItemCol, LabelCol, RatingCol, PositiveThreshold, Implicit, TimestampCol,
                     WeightCol, DenseCols, ItemIdCol, TextCols, MissingText, ContextSize, SplitKind, TrainFraction, ValFraction, Negatives, DataSeed, History })
            cmd.Options.Add(o);
    }

    /// <summary>Also registers --allow-resplit (verbs that score a checkpoint's held-out split: eval, distill).</summary>
    public void AddResplitGuardTo(Command cmd) => cmd.Options.Add(AllowResplit);

    /// <summary>The flag that sets each field of <see cref="DataSchema.Differences"/> (null: no flag).</summary>
    private Option? FlagOf(string field) => field switch
    {
        "kind" => Preset,
        "positive_threshold" or "interactions.positive_threshold" => PositiveThreshold,
        "history_features" => History,
        "interactions.user_column" => UserCol,
        "interactions.item_column" => ItemCol,
        "interactions.label_column" => LabelCol,
        "interactions.rating_column" => RatingCol,
        "interactions.timestamp_column" => TimestampCol,
        "interactions.weight_column" => WeightCol,
        "interactions.dense_columns" => DenseCols,
        "interactions.missing_item_text" => MissingText,
        "items.id_column" => ItemIdCol,
        "items.text_columns" => TextCols,
        "examples.context_size" => ContextSize,
        "examples.split" => SplitKind,
        "examples.train_fraction" => TrainFraction,
        "examples.validation_fraction" => ValFraction,
        "examples.negatives_per_positive" => Negatives,
        "examples.seed" => DataSeed,
        _ => null,
    };

    private string Describe(IEnumerable<(string Field, string Value, string Other)> diffs, string dir)
        => string.Join("; ", diffs.Select(d => $"{FlagOf(d.Field)?.Name ?? d.Field} is {d.Other} but the checkpoint in {dir} has {d.Value} ({d.Field})"));

    /// <summary>A resumed run must read its data exactly as the interrupted one did: any difference is refused by flag.</summary>
    public void CheckResume(DataSchema schema, DataSchema stored, string dir)
    {
        var diffs = stored.Differences(schema);
        if (diffs.Count > 0)
            throw new ArgumentException($"--resume: {Describe(diffs, dir)}; a resumed run reads its data as the interrupted run did: " +
                                        "drop the changed flags, or start a new run with --overwrite");
    }

    /// <summary>Refuses split options that differ from the checkpoint's (its test split would then overlap its training
    /// data) unless --allow-resplit; with it, a warning.</summary>
    public void CheckSplit(ParseResult r, DataSchema schema, DataSchema stored, string dir)
    {
        var diffs = stored.SplitDifferences(schema);
        if (diffs.Count == 0) return;
        if (!r.GetValue(AllowResplit))
            throw new ArgumentException($"{Describe(diffs, dir)}: a re-split puts examples the model trained on into the evaluated split " +
                                        "and inflates its metrics; add --allow-resplit to do it anyway");
        CliRun.Warn($"re-split: {Describe(diffs, dir)}; the evaluated examples may include ones the model trained on");
    }

    private static string[] Split_(string[]? values) => values is null ? [] : values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray();

    /// <summary>The schema given on the command line, on top of <paramref name="basis"/> (a checkpoint's) when given.</summary>
    public DataSchema Schema(ParseResult r, DataSchema? basis = null)
    {
        string? interPath = r.GetValue(Interactions), itemsPath = r.GetValue(Items);
        bool anyFile = interPath is not null || itemsPath is not null;
        string? preset = r.GetValue(Preset);
        if (preset is not null && !preset.Equals("movietweetings", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"--preset: unknown preset '{preset}' (known: movietweetings)");
        string kind = preset is not null ? "movietweetings" : anyFile ? "files" : basis?.Kind ?? "movietweetings";
        var inter = basis?.Interactions ?? new InteractionFileOptions();
        if (r.GetValue(UserCol) is { } u) inter = inter with { UserColumn = u };
        if (r.GetValue(ItemCol) is { } i) inter = inter with { ItemColumn = i };
        if (r.GetValue(LabelCol) is { } l) inter = inter with { LabelColumn = l, RatingColumn = null };
        if (r.GetValue(RatingCol) is { } rc) inter = inter with { RatingColumn = rc, LabelColumn = null };
        if (r.GetValue(PositiveThreshold) is { } pt) inter = inter with { PositiveThreshold = pt };
        if (r.GetValue(Implicit)) inter = inter with { LabelColumn = null, RatingColumn = null };
        if (r.GetValue(TimestampCol) is { } tc) inter = inter with { TimestampColumn = tc.Equals("none", StringComparison.OrdinalIgnoreCase) ? null : tc };
        if (r.GetValue(WeightCol) is { } wc) inter = inter with { WeightColumn = wc };
        var dense = Split_(r.GetValue(DenseCols));
        if (dense.Length > 0) inter = inter with { DenseColumns = dense };
        if (r.GetValue(MissingText) is { } mt)
            inter = inter with
            {
                MissingItemText = mt.ToLowerInvariant() switch
                {
                    "refuse" => MissingItemText.Refuse,
                    "empty" => MissingItemText.EmptyText,
                    _ => throw new ArgumentException($"--missing-item-text: '{mt}' is not refuse or empty"),
                },
            };
        var items = basis?.Items ?? new ItemFileOptions();
        if (r.GetValue(ItemIdCol) is { } ic) items = items with { IdColumn = ic };
        var text = Split_(r.GetValue(TextCols));
        if (text.Length > 0) items = items with { TextColumns = text };
        var ex = basis?.Examples ?? new ExampleOptions();
        if (r.GetValue(ContextSize) is { } k) ex = ex with { ContextSize = k };
        if (r.GetValue(SplitKind) is { } s)
            ex = ex with
            {
                Split = s.ToLowerInvariant() switch
                {
                    "temporal" => Engine.Data.SplitKind.Temporal,
                    "random" => Engine.Data.SplitKind.Random,
                    _ => throw new ArgumentException($"--split-kind: '{s}' is not temporal or random"),
                },
            };
        if (r.GetValue(TrainFraction) is { } tf) ex = ex with { TrainFraction = tf };
        if (r.GetValue(ValFraction) is { } vf) ex = ex with { ValidationFraction = vf };
        if (r.GetValue(Negatives) is { } n) ex = ex with { NegativesPerPositive = n };
        if (r.GetValue(DataSeed) is { } ds) ex = ex with { Seed = ds };
        CliRun.InFlagWords(ex.Validate, new Dictionary<string, Option>
        {
            [nameof(ExampleOptions.ContextSize)] = ContextSize, [nameof(ExampleOptions.TrainFraction)] = TrainFraction,
            [nameof(ExampleOptions.ValidationFraction)] = ValFraction, [nameof(ExampleOptions.NegativesPerPositive)] = Negatives,
        });
        if (!anyFile && basis is not null && basis.Kind == kind) (interPath, itemsPath) = (basis.InteractionsPath, basis.ItemsPath);
        return new DataSchema
        {
            InteractionsPath = interPath is null ? null : Path.GetFullPath(interPath), ItemsPath = itemsPath is null ? null : Path.GetFullPath(itemsPath),
            Kind = kind, Interactions = inter, Items = items, Examples = ex, HistoryFeatures = r.GetValue(History) || (basis?.HistoryFeatures ?? false),
            PositiveThreshold = kind == "movietweetings" ? r.GetValue(PositiveThreshold) ?? basis?.PositiveThreshold ?? MovieTweetings.DefaultPositiveThreshold : basis?.PositiveThreshold ?? MovieTweetings.DefaultPositiveThreshold,
        };
    }

    /// <summary>The interaction table of <paramref name="schema"/>: the files named on the command line, else the
    /// checkpoint's own (stored in its schema), else the vendored MovieTweetings. Invalid UTF-8 is a warning.</summary>
    public InteractionTable Table(ParseResult r, DataSchema schema)
    {
        var table = RawTable(r, schema);
        foreach (var (source, rows, line) in new[] { (table.Catalog.Source, table.Catalog.InvalidUtf8Rows, table.Catalog.FirstInvalidUtf8Line),
                                                     (table.Source, table.InvalidUtf8Rows, table.FirstInvalidUtf8Line) })
            if (rows > 0)
                CliRun.Warn($"{source}: {rows:N0} rows hold bytes that are not valid UTF-8 (read as U+FFFD), the first on line {line}; ids and titles there may not match");
        return schema.Prepare(table);
    }

    private InteractionTable RawTable(ParseResult r, DataSchema schema)
    {
        string? interPath = schema.InteractionsPath, itemsPath = schema.ItemsPath;
        if (r.GetValue(Interactions) is null && r.GetValue(Items) is null)
            foreach (string? p in new[] { interPath, itemsPath })
                if (p is not null && !File.Exists(p))
                    throw new FileNotFoundException($"{p}: file not found: the checkpoint's data file (stored in its fastrec.json); give --interactions and --items", p);
        if (schema.Kind == "movietweetings")
        {
            if ((interPath is null) != (itemsPath is null))
                throw new ArgumentException("--preset movietweetings: give both --interactions (ratings.dat) and --items (movies.dat), or neither for the vendored data");
            if (interPath is null) return MovieTweetings.Load(MovieTweetings.FindVendoredDirectory(), schema.PositiveThreshold);
            return MovieTweetings.LoadRatings(interPath, schema.LoadItems(), schema.PositiveThreshold);
        }
        if (interPath is null) throw new ArgumentException("--interactions is required (or use --preset movietweetings)");
        if (itemsPath is null) throw new ArgumentException("--items is required with --interactions");
        return InteractionTable.Load(interPath, schema.LoadItems(), schema.Interactions);
    }
}

/// <summary>--backend auto|cpu|cuda|reference|ilgpu-cpu (default: $FASTREC_BACKEND, else auto) and --threads.</summary>
internal sealed class BackendOptions
{
    public readonly Option<string?> Backend = new("--backend")
    {
        Description = "auto | cpu | cuda | reference | ilgpu-cpu (default: $FASTREC_BACKEND, else auto = CUDA when a device is present, else cpu)",
    };
    public readonly Option<int?> Threads = new("--threads") { Description = "CPU threads (default: all cores)" };

    public void AddTo(Command cmd)
    {
        CliRun.AtLeast(Threads, 1);
        cmd.Options.Add(Backend); cmd.Options.Add(Threads);
    }

    public IBackend Create(ParseResult r)
    {
        if (r.GetValue(Threads) is { } t) CpuParallel.Threads = t;
        return Create(r.GetValue(Backend));
    }

    /// <summary>The backend by name through <see cref="BackendFactory"/>; errors name the option.</summary>
    public static IBackend Create(string? name)
    {
        try { return BackendFactory.Create(name); }
        catch (ArgumentException e) { throw new ArgumentException("--" + e.Message.Split(" (Parameter")[0]); }
        catch (CudaUnavailableException e) { throw new InvalidOperationException($"--backend {name ?? Environment.GetEnvironmentVariable(BackendFactory.EnvironmentVariable)}: {e.Message}"); }
    }
}

/// <summary>Small parsing helpers.</summary>
internal static class Parse
{
    public static int[] IntList(string? text, string option)
    {
        if (string.IsNullOrWhiteSpace(text) || text == "none") return [];
        try { return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray(); }
        catch (FormatException) { throw new ArgumentException($"{option}: '{text}' is not a comma-separated list of integers"); }
    }
}
