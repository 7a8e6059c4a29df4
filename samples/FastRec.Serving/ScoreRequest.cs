// The /score request and response, and the request's validation: every problem named by its JSON field.
using System.Text.Json;

namespace FastRec.Serving;

/// <summary>A <c>POST /score</c> body (the OpenAPI schema; the host validates the raw JSON itself so that every error
/// names its field).</summary>
/// <param name="History">The user's liked item ids, most recent first (the model reads the first K, its context size); may be empty.</param>
/// <param name="Candidate">The item id to score.</param>
/// <param name="Dense">The raw dense features by name (every feature the model takes, none other); omit when it takes none.</param>
public sealed record ScoreRequest(string[] History, string Candidate, Dictionary<string, double>? Dense);

/// <summary>A <c>POST /score</c> answer.</summary>
/// <param name="Candidate">The candidate item id, echoed.</param>
/// <param name="Probability">σ(logit): the probability that the user engages with the candidate.</param>
public sealed record ScoreResponse(string Candidate, float Probability);

/// <summary>A validated score request: catalogue indices and the dense features in the head's order.</summary>
/// <param name="History">(H) catalogue indices of the history items, most recent first.</param>
/// <param name="Candidate">Catalogue index of the candidate.</param>
/// <param name="CandidateId">The candidate's id as sent.</param>
/// <param name="Dense">(D) raw dense features in <see cref="ScoringModel.DenseFeatures"/> order.</param>
public sealed record ScoreInput(int[] History, int Candidate, string CandidateId, float[] Dense);

/// <summary>Turns a parsed JSON body into a <see cref="ScoreInput"/>, collecting one message per bad field (keys as JSON
/// paths: <c>history</c>, <c>history[2]</c>, <c>candidate</c>, <c>dense.hist_user_rate</c>, <c>body</c>).</summary>
public static class ScoreRequestReader
{
    private static readonly string[] Fields = ["history", "candidate", "dense"];

    /// <summary>The validated input, or null with <paramref name="errors"/> filled (field -> messages).</summary>
    public static ScoreInput? Read(JsonElement body, ScoringModel model, out Dictionary<string, string[]> errors)
    {
        ArgumentNullException.ThrowIfNull(model);
        var e = new Dictionary<string, string[]>();
        errors = e;
        void Add(string field, string message) => e[field] = e.TryGetValue(field, out var m) ? [.. m, message] : [message];

        if (body.ValueKind != JsonValueKind.Object)
        {
            Add("body", $"must be a JSON object with {string.Join(", ", Fields)}, got {Kind(body)}");
            return null;
        }
        foreach (var p in body.EnumerateObject())
            if (!Fields.Contains(p.Name))
                Add(p.Name, $"is not a field of a score request (expected {string.Join(", ", Fields)})");

        var history = new List<int>();
        if (!body.TryGetProperty("history", out var h))
            Add("history", "is required: the user's liked item ids, most recent first (an empty array for a user without history)");
        else if (h.ValueKind != JsonValueKind.Array)
            Add("history", $"must be an array of item id strings, got {Kind(h)}");
        else
        {
            int i = 0;
            foreach (var item in h.EnumerateArray())
            {
                if (Item(item, model, $"history[{i}]", Add) is int index) history.Add(index);
                i++;
            }
        }

        int candidate = -1;
        string candidateId = "";
        if (!body.TryGetProperty("candidate", out var c)) Add("candidate", "is required: the item id to score");
        else if (Item(c, model, "candidate", Add) is int index) { candidate = index; candidateId = c.GetString()!; }

        var names = model.DenseFeatures;
        var dense = new float[names.Count];
        bool hasDense = body.TryGetProperty("dense", out var d) && d.ValueKind != JsonValueKind.Null;
        if (!hasDense)
        {
            if (names.Count > 0) Add("dense", $"is required: an object with the raw dense features {string.Join(", ", names)}");
        }
        else if (d.ValueKind != JsonValueKind.Object)
            Add("dense", $"must be an object of feature name -> number, got {Kind(d)}");
        else
        {
            var seen = new bool[names.Count];
            foreach (var f in d.EnumerateObject())
            {
                int k = IndexOf(names, f.Name);
                string field = "dense." + f.Name;
                if (k < 0)
                    Add(field, names.Count == 0 ? "is not a feature of this model (it takes no dense features)"
                                                : $"is not a feature of this model (it takes {string.Join(", ", names)})");
                else if (f.Value.ValueKind != JsonValueKind.Number)
                    Add(field, $"must be a number, got {Kind(f.Value)}");
                else if (!f.Value.TryGetDouble(out double x) || !float.IsFinite((float)x))
                    Add(field, $"must be a finite number in float range, got {f.Value.GetRawText()}");
                else { dense[k] = (float)x; seen[k] = true; }
            }
            for (int k = 0; k < names.Count; k++)
                if (!seen[k] && !e.ContainsKey("dense." + names[k])) Add("dense." + names[k], "is required");
        }
        return e.Count == 0 ? new ScoreInput([.. history], candidate, candidateId, dense) : null;
    }

    private static int? Item(JsonElement v, ScoringModel model, string field, Action<string, string> add)
    {
        if (v.ValueKind != JsonValueKind.String) { add(field, $"must be an item id string, got {Kind(v)}"); return null; }
        string id = v.GetString()!;
        int index = model.Catalog.IndexOf(id);
        if (index < 0) { add(field, $"unknown item id '{Shorten(id)}': not in the model's item catalogue ({model.Catalog.Count:N0} items)"); return null; }
        return index;
    }

    private static int IndexOf(IReadOnlyList<string> names, string name)
    {
        for (int i = 0; i < names.Count; i++) if (names[i] == name) return i;
        return -1;
    }

    internal static string Kind(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => $"the number {v.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => v.GetRawText(),
        _ => "null",
    };

    internal static string Shorten(string s) => s.Length <= 64 ? s : s[..64] + "...";
}
