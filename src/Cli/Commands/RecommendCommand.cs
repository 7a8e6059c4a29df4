// `fastrec recommend`: the top-k catalogue items for a rated history, from a scorer saved by fastrec tower.
using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using FastRec.Engine.Serving;
using FastRec.Kernels.Cpu;

namespace FastRec.Cli.Commands;

internal static class RecommendCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "Scorer file from fastrec tower", Required = true };
        var history = new Option<string>("--history")
        {
            Description = "The user's rated items, oldest first, comma separated: ID (liked) or ID:LABEL with LABEL 1 = liked, 0 = disliked " +
                          "(any value in [0, 1]; an id that itself ends in ':<number>' needs an explicit label). Empty = a new user. " +
                          "Example: \"0111161,0068646:1,0120737:0\". Unknown ids are refused, with the list",
            DefaultValueFactory = _ => "",
        };
        var exclude = new Option<string>("--exclude") { Description = "Item ids never to recommend, comma separated (the history items never are)", DefaultValueFactory = _ => "" };
        var k = new Option<int>("--k") { Description = "How many items", DefaultValueFactory = _ => 10 };
        var threads = new Option<int?>("--threads") { Description = "CPU threads (default: all cores)" };
        var json = new Option<bool>("--json") { Description = "Print the items as JSON on stdout" };
        CliRun.AtLeast(k, 1); CliRun.AtLeast(threads, 1);
        var cmd = new Command("recommend", "The k best catalogue items for a user's rated history (exact top-k over the whole catalogue; history items never recommended)");
        foreach (var o in new Option[] { model, history, exclude, k, threads, json }) cmd.Options.Add(o);
        cmd.SetAction(r => CliRun.Guard(() =>
        {
            if (r.GetValue(threads) is { } t) CpuParallel.Threads = t;
            var (ids, labels) = ParseHistory(r.GetValue(history)!);
            var excluded = r.GetValue(exclude)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            string path = r.GetValue(model)!;
            var rec = CatalogRecommender.Load(path);
            Recommendation[] top;
            try { top = rec.TopK(ids, labels, r.GetValue(k), excluded); }
            catch (ArgumentException e) when (e.ParamName is "historyIds" or "exclude" or "k")
            {
                string flag = e.ParamName switch { "historyIds" => "--history", "exclude" => "--exclude", _ => "--k" };
                string m = CliRun.OneLine(e);
                bool named = m.StartsWith(e.ParamName + ":", StringComparison.Ordinal) || m.StartsWith(e.ParamName + " ", StringComparison.Ordinal);
                throw new ArgumentException(flag + (named ? m[e.ParamName.Length..] : ": " + m), e);
            }
            if (r.GetValue(json))
            {
                var items = new JsonArray();
                for (int q = 0; q < top.Length; q++)
                    items.Add(new JsonObject { ["rank"] = q + 1, ["id"] = top[q].Id, ["text"] = top[q].Text, ["score"] = top[q].Score });
                var hist = new JsonArray();
                for (int j = 0; j < ids.Length; j++) hist.Add(new JsonObject { ["id"] = ids[j], ["label"] = labels[j] });
                CliRun.EmitJson(new JsonObject { ["model"] = Path.GetFullPath(path), ["catalogue_items"] = rec.ItemCount, ["history"] = hist, ["k"] = r.GetValue(k), ["items"] = items });
            }
            else
            {
                int liked = labels.Count(x => x >= 0.5f);
                Console.WriteLine(ids.Length == 0
                    ? $"top {top.Length} of {rec.ItemCount:N0} items for a new user (no history):"
                    : $"top {top.Length} of {rec.ItemCount:N0} items for a history of {ids.Length} rated items ({liked} liked):");
                int w = Math.Max(2, top.Length == 0 ? 2 : top.Max(x => x.Id.Length));
                for (int q = 0; q < top.Length; q++)
                    Console.WriteLine($"{q + 1,4}  {top[q].Id.PadRight(w)}  {top[q].Score.ToString("0.0000", CultureInfo.InvariantCulture),9}  {top[q].Text}");
            }
            return 0;
        }, r.GetValue(json)));
        return cmd;
    }

    /// <summary>"ID,ID:LABEL,..." into ids and labels (1 when no label is given); a label must be a number in [0, 1].</summary>
    internal static (string[] Ids, float[] Labels) ParseHistory(string text)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var ids = new string[parts.Length]; var labels = new float[parts.Length];
        for (int j = 0; j < parts.Length; j++)
        {
            string p = parts[j];
            int colon = p.LastIndexOf(':');
            labels[j] = 1;
            ids[j] = p;
            if (colon >= 0 && float.TryParse(p.AsSpan(colon + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out float y))
            {
                if (!(y >= 0 && y <= 1)) throw new ArgumentException($"--history: '{p}': the label {p[(colon + 1)..]} is outside [0, 1] (1 = liked, 0 = disliked)");
                ids[j] = p[..colon].Trim();
                labels[j] = y;
            }
            if (ids[j].Length == 0) throw new ArgumentException($"--history: '{p}' has no item id before the label");
        }
        return (ids, labels);
    }
}
