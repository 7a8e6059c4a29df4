// Markdown and plain-text tables of the evaluation: full ranking, sampled ranking, slices, lifts. Pure: strings in, string out.
using System.Globalization;
using System.Text;
using FastRec.Engine.Evaluation;

namespace FastRec.Cli.Reporting;

/// <summary>How a table is rendered.</summary>
public enum TableFormat
{
    /// <summary>A GitHub markdown table.</summary>
    Markdown,
    /// <summary>Plain text, columns padded to align (first column left, numbers right).</summary>
    Console,
}

/// <summary>Renders evaluation results as tables. Numbers use the invariant culture; an undefined (NaN) value prints "n/a".</summary>
public static class EvaluationTables
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>One row per model: HR, Recall and NDCG at each K, MRR, users; then, separately labelled, the sampled table
    /// (when the results hold it) and the notes of every result.</summary>
    public static string FullRankingTable(IReadOnlyList<FullRankingResult> results, TableFormat format)
    {
        ArgumentNullException.ThrowIfNull(results);
        if (results.Count == 0) throw new ArgumentException("no results to tabulate", nameof(results));
        var ks = results[0].Ks;
        foreach (var r in results)
            if (!r.Ks.SequenceEqual(ks))
                throw new ArgumentException($"'{r.Scorer}' was evaluated at K = {string.Join(", ", r.Ks)} but '{results[0].Scorer}' at {string.Join(", ", ks)}", nameof(results));
        string[] header = ["model", .. ks.Select(k => $"HR@{k}"), .. ks.Select(k => $"Recall@{k}"), .. ks.Select(k => $"NDCG@{k}"), "MRR", "users"];
        var rows = results.Select(r =>
        {
            var o = r.Overall;
            return (string[])[r.Scorer, .. o.HitRate.Select(Num), .. o.Recall.Select(Num), .. o.Ndcg.Select(Num), Num(o.Mrr), Count(o.Users)];
        }).ToList();
        var sb = new StringBuilder();
        sb.Append(Title("Full ranking (every candidate item; ties averaged over random orders)", format));
        sb.Append(Table(header, rows, format));
        if (results.Any(r => r.Overall.Sampled is not null))
        {
            sb.AppendLine();
            sb.Append(SampledTable(results, format));
        }
        // Each distinct note once, prefixed by the models it concerns unless it concerns all of them.
        var notes = results.SelectMany(r => r.Notes).Distinct().Select(n =>
        {
            var models = results.Where(r => r.Notes.Contains(n)).Select(r => r.Scorer).ToList();
            return models.Count == results.Count ? n : $"{string.Join(", ", models)}: {n}";
        }).ToList();
        if (notes.Count > 0)
        {
            sb.AppendLine();
            foreach (string n in notes) sb.AppendLine(format == TableFormat.Markdown ? $"- {n}" : $"note: {n}");
        }
        return sb.ToString();
    }

    /// <summary>The sampled-ranking table, labelled as such: one row per model with HR@K, NDCG@K and the pairs ranked.</summary>
    public static string SampledTable(IReadOnlyList<FullRankingResult> results, TableFormat format)
    {
        ArgumentNullException.ThrowIfNull(results);
        var sampled = results.Where(r => r.Overall.Sampled is not null).ToList();
        if (sampled.Count == 0) throw new ArgumentException("no result holds the sampled variant (SampledNegatives was 0)", nameof(results));
        var first = sampled[0].Overall.Sampled!;
        foreach (var r in sampled)
            if (r.Overall.Sampled!.Negatives != first.Negatives || r.Overall.Sampled.K != first.K)
                throw new ArgumentException($"'{r.Scorer}' was sampled with {r.Overall.Sampled.Negatives} negatives at K = {r.Overall.Sampled.K}, '{sampled[0].Scorer}' with {first.Negatives} at K = {first.K}", nameof(results));
        string[] header = ["model", $"HR@{first.K}", $"NDCG@{first.K}", "pairs"];
        var rows = sampled.Select(r => (string[])[r.Scorer, Num(r.Overall.Sampled!.HitRate), Num(r.Overall.Sampled.Ndcg), Count(r.Overall.Sampled.Pairs)]).ToList();
        return Title($"Sampled ranking (each positive among {first.Negatives} sampled negatives; not full ranking)", format) + Table(header, rows, format);
    }

    /// <summary>Full-ranking metrics per slice: one row per slice (as <see cref="Slices.Ranking"/> lists them) with its users,
    /// then NDCG@K and HR@K of each model at the first K.</summary>
    public static string RankingSliceTable(IReadOnlyList<(string Model, IReadOnlyList<RankingSummary> Slices)> models, TableFormat format)
    {
        var first = FirstOfSameSlices(models, s => s.Name);
        int k = first[0].Ks[0];
        string[] header = ["slice", "users", .. models.Select(m => $"NDCG@{k} {m.Model}"), .. models.Select(m => $"HR@{k} {m.Model}")];
        var rows = first.Select((s, i) => (string[])[s.Name, Count(s.Users),
            .. models.Select(m => Num(m.Slices[i].Ndcg[0])), .. models.Select(m => Num(m.Slices[i].HitRate[0]))]).ToList();
        return Title($"Full ranking by slice (users with a relevant item of the slice; @{k})", format) + Table(header, rows, format);
    }

    /// <summary>Per-example metrics per slice: slice, rows, share, then AUC, GAUC and log loss of each model.</summary>
    public static string SliceTable(IReadOnlyList<(string Model, IReadOnlyList<SliceMetrics> Slices)> models, TableFormat format)
    {
        var first = FirstOfSameSlices(models, s => s.Name);
        string[] header = ["slice", "rows", "share",
            .. models.Select(m => $"AUC {m.Model}"), .. models.Select(m => $"GAUC {m.Model}"), .. models.Select(m => $"log loss {m.Model}")];
        var rows = first.Select((s, i) => (string[])[s.Name, Count(s.Rows), Percent(s.Share),
            .. models.Select(m => Num(m.Slices[i].Auc)), .. models.Select(m => Num(m.Slices[i].Gauc)), .. models.Select(m => Num(m.Slices[i].LogLoss))]).ToList();
        return Title("Per-example metrics by slice (GAUC needs >= 20 users with both classes)", format) + Table(header, rows, format);
    }

    /// <summary>One row per comparison: model, baseline, metric, and the lift text ("lift +0.0123 [+0.0050, +0.0190]").</summary>
    public static string LiftTable(IReadOnlyList<LiftRow> lifts, TableFormat format)
    {
        ArgumentNullException.ThrowIfNull(lifts);
        if (lifts.Count == 0) throw new ArgumentException("no lifts to tabulate", nameof(lifts));
        var rows = lifts.Select(l => (string[])[l.Model, l.Baseline, l.Metric, l.Lift.ToString()]).ToList();
        return Title("Lift over the baseline (paired bootstrap over users, 95 % percentile interval)", format)
            + Table(["model", "baseline", "metric", "lift"], rows, format, leftColumns: 4);
    }

    /// <summary>A metric with 4 decimals; NaN prints "n/a".</summary>
    public static string Num(double v) => double.IsNaN(v) ? "n/a" : v.ToString("0.0000", Inv);

    private static string Percent(double v) => double.IsNaN(v) ? "n/a" : (100 * v).ToString("0.0", Inv) + " %";
    private static string Count(long n) => n.ToString("#,0", Inv);

    private static string Title(string title, TableFormat format)
        => format == TableFormat.Markdown ? $"**{title}**\n\n" : $"{title}\n";

    /// <summary>The first model's slices, after checking that there is a model and that every model lists the same slices.</summary>
    private static IReadOnlyList<T> FirstOfSameSlices<T>(IReadOnlyList<(string Model, IReadOnlyList<T> Slices)> models, Func<T, string> name)
    {
        ArgumentNullException.ThrowIfNull(models);
        if (models.Count == 0) throw new ArgumentException("no models to tabulate", nameof(models));
        var names = models[0].Slices.Select(name).ToArray();
        foreach (var (model, slices) in models)
            if (!slices.Select(name).SequenceEqual(names))
                throw new ArgumentException($"'{model}' has slices [{string.Join(", ", slices.Select(name))}] but '{models[0].Model}' has [{string.Join(", ", names)}]", nameof(models));
        return models[0].Slices;
    }

    /// <summary>The table: markdown with a header rule, or plain text with padded columns (the first
    /// <paramref name="leftColumns"/> left-aligned, the rest right-aligned).</summary>
    internal static string Table(string[] header, List<string[]> rows, TableFormat format, int leftColumns = 1)
    {
        var sb = new StringBuilder();
        if (format == TableFormat.Markdown)
        {
            sb.Append("| ").Append(string.Join(" | ", header)).AppendLine(" |");
            sb.Append('|').Append(string.Concat(header.Select((_, c) => c < leftColumns ? "---|" : "---:|"))).AppendLine();
            foreach (var r in rows) sb.Append("| ").Append(string.Join(" | ", r)).AppendLine(" |");
            return sb.ToString();
        }
        var width = header.Select((h, c) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[c].Length))).ToArray();
        string Line(string[] cells) => string.Join("  ", cells.Select((x, c) => c < leftColumns ? x.PadRight(width[c]) : x.PadLeft(width[c]))).TrimEnd();
        sb.AppendLine(Line(header));
        sb.AppendLine(string.Join("  ", width.Select(w => new string('-', w))));
        foreach (var r in rows) sb.AppendLine(Line(r));
        return sb.ToString();
    }
}
