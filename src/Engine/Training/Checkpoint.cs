// FastRec checkpoints: HF model dir + adapter tensors + fastrec.json + training state, written atomically as a directory.
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using FastRec.Engine.Model;
using FastRec.Engine.Weights;
using FastRec.Kernels;

namespace FastRec.Engine.Training;

/// <summary>What <see cref="Checkpoint.Load"/> returns.</summary>
public sealed class LoadedCheckpoint
{
    /// <summary>The model with its text options, scaler and schema (weights loaded; Adam moments too when a state exists).</summary>
    public required Recommender Recommender { get; init; }
    /// <summary>The training state, or null for a checkpoint without one.</summary>
    public TrainingState? State { get; init; }
    /// <summary>The "metrics" object of fastrec.json (empty when none).</summary>
    public required JsonObject Metrics { get; init; }
    /// <summary>The directory actually read (the backup when the directory itself was missing after an interrupted save).</summary>
    public required string Directory { get; init; }
}

/// <summary>
/// A FastRec checkpoint directory:
/// <list type="bullet">
/// <item><c>config.json</c>, <c>model.safetensors</c>, <c>vocab.txt</c>, <c>tokenizer_config.json</c>: the encoder as a Hugging Face
/// model directory (see <see cref="BertCheckpoint"/>), readable by HF tools;</item>
/// <item><c>adapter.safetensors</c>: the head's tensors (<c>head.*</c>);</item>
/// <item><c>fastrec.json</c>: format version, adapter config, tokenizer settings, dense-feature scaler, data schema, trainer
/// options, metrics;</item>
/// <item><c>training_state.safetensors</c> (optional): Adam moments <c>m.NAME</c>/<c>v.NAME</c> and best weights
/// <c>best.NAME</c> of the trainable tensors, with the <see cref="TrainingState"/> as JSON in the metadata.</item>
/// </list>
/// <para>Atomicity: everything is written to <c>DIR.tmp</c> (each file itself atomically), then the old <c>DIR</c> is renamed to
/// <c>DIR.bak</c>, <c>DIR.tmp</c> to <c>DIR</c>, and <c>DIR.bak</c> deleted. A crash leaves either the old or the new
/// checkpoint complete; if it strikes between the two renames, <see cref="Load"/> reads <c>DIR.bak</c>.</para>
/// </summary>
public static class Checkpoint
{
    /// <summary>File names.</summary>
    public const string InfoFile = "fastrec.json", AdapterFile = "adapter.safetensors", StateFile = "training_state.safetensors";
    /// <summary>Version of the fastrec.json format.</summary>
    public const int FormatVersion = 1;

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>
    /// Writes <paramref name="rec"/> (and, when given, the resumable <paramref name="state"/> with the model's Adam moments)
    /// to <paramref name="dir"/> atomically. <paramref name="metrics"/> goes into fastrec.json as is.
    /// </summary>
    public static void Save(Recommender rec, string dir, TrainingState? state = null, TrainerOptions? options = null, JsonObject? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(rec); ArgumentNullException.ThrowIfNull(dir);
        string full = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar);
        string tmp = full + ".tmp", bak = full + ".bak";
        if (System.IO.Directory.Exists(tmp)) System.IO.Directory.Delete(tmp, recursive: true);
        var model = rec.Model;
        BertCheckpoint.Save(model, tmp, rec.VocabPath, rec.Text.LowerCase);   // reads the vocab before anything moves (it may live in DIR)

        var head = model.Layout.Tensors.Where(t => t.Layer == model.Layout.HeadLayer)
            .Select(t => new SafetensorsEntry(t.Name, t.Shape, () => model.GetParameter(t.Name))).ToList();
        SafetensorsWriter.Write(Path.Combine(tmp, AdapterFile), head, new Dictionary<string, string> { ["format"] = "pt" });

        if (state is not null)
        {
            var trainable = model.Layout.Tensors.Where(t => model.IsTrainable(t.Name)).ToList();
            var entries = new List<SafetensorsEntry>();
            foreach (var t in trainable)
            {
                entries.Add(new SafetensorsEntry("m." + t.Name, t.Shape, () => Read(model, model.M, t)));
                entries.Add(new SafetensorsEntry("v." + t.Name, t.Shape, () => Read(model, model.V, t)));
            }
            foreach (var (name, values) in state.BestWeights)
                entries.Add(new SafetensorsEntry("best." + name, model.Layout[name].Shape, () => values));
            SafetensorsWriter.Write(Path.Combine(tmp, StateFile), entries,
                new Dictionary<string, string> { ["fastrec_state"] = JsonSerializer.Serialize(state, Json) });
        }

        var info = new JsonObject
        {
            ["format"] = "fastrec-checkpoint",
            ["version"] = FormatVersion,
            ["base_model"] = rec.BaseModel,
            ["adapter"] = JsonSerializer.SerializeToNode(AdapterJson.From(model.Adapter), Json),
            ["tokenizer"] = JsonSerializer.SerializeToNode(rec.Text, Json),
            ["features"] = JsonSerializer.SerializeToNode(rec.Scaler, Json),
            ["data"] = JsonSerializer.SerializeToNode(rec.Schema.RelativeTo(full), Json),
            ["trainer"] = options is null ? null : JsonSerializer.SerializeToNode(options.Fingerprint().ToDictionary(p => p.Name, p => p.Value), Json),
            ["training"] = state is null ? null : new JsonObject
            {
                ["step"] = state.Step, ["total_steps"] = state.TotalSteps, ["finished"] = state.Finished,
                ["early_stopped"] = state.EarlyStopped, ["best_step"] = state.BestStep,
                ["best_validation_auc"] = double.IsNaN(state.BestAuc) ? null : state.BestAuc,
            },
            ["metrics"] = metrics?.DeepClone() ?? new JsonObject(),
        };
        AtomicFile.WriteText(Path.Combine(tmp, InfoFile), info.ToJsonString(Json) + "\n");

        // Swap directories.
        if (System.IO.Directory.Exists(full))
        {
            if (System.IO.Directory.Exists(bak)) System.IO.Directory.Delete(bak, recursive: true);
            System.IO.Directory.Move(full, bak);
        }
        System.IO.Directory.Move(tmp, full);
        // A model loaded from DIR.bak (after a crash between the renames) reads its vocabulary there, and DIR.bak goes
        // next: from now on it reads the copy just written.
        if (Path.GetFullPath(rec.VocabPath).StartsWith(bak + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            rec.VocabPath = Path.Combine(full, BertCheckpoint.VocabFile);
        if (System.IO.Directory.Exists(bak)) System.IO.Directory.Delete(bak, recursive: true);
    }

    private static float[] Read(RecModel model, DeviceBuffer<float> buf, ParamInfo t)
    {
        var a = new float[t.Length];
        model.Backend.Download(buf.Slice(t.Offset, t.Length), a);
        return a;
    }

    /// <summary>True when <paramref name="dir"/> (or its backup) holds a FastRec checkpoint.</summary>
    public static bool Exists(string dir)
        => File.Exists(Path.Combine(dir, InfoFile)) || File.Exists(Path.Combine(Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar) + ".bak", InfoFile));

    /// <summary>
    /// Loads a checkpoint onto <paramref name="backend"/>. With <paramref name="expectBert"/> or <paramref name="expectAdapter"/>
    /// the checkpoint must match them (e.g. the base model and head requested with <c>--init-from</c>): a mismatch is an
    /// <see cref="InvalidDataException"/> naming the field and both values.
    /// </summary>
    public static LoadedCheckpoint Load(string dir, IBackend backend, BertConfig? expectBert = null, AdapterConfig? expectAdapter = null)
    {
        ArgumentNullException.ThrowIfNull(dir); ArgumentNullException.ThrowIfNull(backend);
        string full = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar);
        if (!File.Exists(Path.Combine(full, InfoFile)) && File.Exists(Path.Combine(full + ".bak", InfoFile))) full += ".bak";
        string infoPath = Path.Combine(full, InfoFile);
        if (!System.IO.Directory.Exists(full)) throw new DirectoryNotFoundException($"{dir}: checkpoint directory not found");
        if (!File.Exists(infoPath))
            throw new FileNotFoundException($"{infoPath}: fastrec.json missing: {dir} is not a FastRec checkpoint (a plain Hugging Face model directory goes to --model)", infoPath);
        JsonObject info;
        try { info = JsonNode.Parse(File.ReadAllText(infoPath)) as JsonObject ?? throw new InvalidDataException($"{infoPath}: not a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"{infoPath}: invalid JSON: {e.Message}", e); }
        if (info["format"]?.GetValue<string>() != "fastrec-checkpoint")
            throw new InvalidDataException($"{infoPath}: \"format\" is not \"fastrec-checkpoint\"");
        int version = info["version"]?.GetValue<int>() ?? 0;
        if (version != FormatVersion) throw new InvalidDataException($"{infoPath}: version {version} is not supported (this build reads {FormatVersion})");

        var hf = BertCheckpoint.Open(full);
        var adapter = (Get<AdapterJson>(info, "adapter", infoPath)).ToConfig();
        var text = Get<TextOptions>(info, "tokenizer", infoPath);
        var scaler = Get<FeatureScaler>(info, "features", infoPath);
        var schema = Get<DataSchema>(info, "data", infoPath).ResolvedFrom(full);
        if (expectBert is not null) CompareBert(expectBert, hf.Config, Path.Combine(full, BertCheckpoint.ConfigFile));
        if (expectAdapter is not null) CompareAdapter(expectAdapter, adapter, infoPath);

        var model = new RecModel(backend, hf.Config, adapter);
        try
        {
            model.InitRandom(0);
            BertCheckpoint.LoadInto(model, full);
            string adapterPath = Path.Combine(full, AdapterFile);
            if (!File.Exists(adapterPath)) throw new FileNotFoundException($"{adapterPath}: adapter tensors missing", adapterPath);
            using (var f = SafetensorsFile.Open(adapterPath))
                foreach (var t in model.Layout.Tensors.Where(t => t.Layer == model.Layout.HeadLayer))
                {
                    if (!f.Contains(t.Name)) throw new InvalidDataException($"{adapterPath}: tensor '{t.Name}' missing (the head in fastrec.json needs it)");
                    var ti = f.Info(t.Name);
                    if (!ti.Shape.SequenceEqual(t.Shape.Select(d => (long)d)))
                        throw new InvalidDataException($"{adapterPath}: tensor '{t.Name}' has shape [{string.Join(", ", ti.Shape)}] but the head needs [{string.Join(", ", t.Shape)}]");
                    model.SetParameter(t.Name, f.ReadF32(t.Name));
                }
            TrainingState? state = null;
            string statePath = Path.Combine(full, StateFile);
            if (File.Exists(statePath))
            {
                using var f = SafetensorsFile.Open(statePath);
                if (!f.Metadata.TryGetValue("fastrec_state", out var json)) throw new InvalidDataException($"{statePath}: no fastrec_state metadata");
                state = JsonSerializer.Deserialize<TrainingState>(json, Json) ?? throw new InvalidDataException($"{statePath}: empty fastrec_state");
                var m = new float[model.Layout.TotalSize];
                var v = new float[model.Layout.TotalSize];
                foreach (var t in model.Layout.Tensors)
                {
                    if (f.Contains("m." + t.Name)) f.ReadF32("m." + t.Name, m.AsSpan(t.Offset, t.Length));
                    if (f.Contains("v." + t.Name)) f.ReadF32("v." + t.Name, v.AsSpan(t.Offset, t.Length));
                    if (f.Contains("best." + t.Name)) state.BestWeights[t.Name] = f.ReadF32("best." + t.Name);
                }
                backend.Upload(model.M.All, m);
                backend.Upload(model.V.All, v);
            }
            var rec = new Recommender(model, hf.VocabPath, text, scaler, schema) { BaseModel = info["base_model"]?.GetValue<string>() ?? "" };
            return new LoadedCheckpoint { Recommender = rec, State = state, Metrics = info["metrics"] as JsonObject ?? [], Directory = full };
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static T Get<T>(JsonObject info, string key, string path)
    {
        var node = info[key] ?? throw new InvalidDataException($"{path}: \"{key}\" missing");
        try { return node.Deserialize<T>(Json) ?? throw new InvalidDataException($"{path}: \"{key}\" is null"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: \"{key}\" is not valid: {e.Message}", e); }
    }

    /// <summary>Refuses a checkpoint whose encoder differs from <paramref name="want"/> in shape.</summary>
    public static void CompareBert(BertConfig want, BertConfig have, string path)
    {
        if (want.ShapeDifference(have) is (string field, object a, object b))
            throw new InvalidDataException($"{path}: the checkpoint has {field} = {b} but the requested model has {a}; they do not match");
    }

    /// <summary>Refuses a checkpoint whose head differs from <paramref name="want"/>.</summary>
    public static void CompareAdapter(AdapterConfig want, AdapterConfig have, string path)
    {
        void Same(string field, string a, string b)
        {
            if (a != b) throw new InvalidDataException($"{path}: the checkpoint's adapter has {field} = {b} but {a} was requested; they do not match");
        }
        Same("hidden_sizes", $"[{string.Join(", ", want.HiddenSizes)}]", $"[{string.Join(", ", have.HiddenSizes)}]");
        Same("dense_features", want.DenseFeatures.ToString(System.Globalization.CultureInfo.InvariantCulture), have.DenseFeatures.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Same("input", want.Input.ToString(), have.Input.ToString());
        Same("activation", want.Activation.ToString(), have.Activation.ToString());
    }

    /// <summary>The adapter config as stored in fastrec.json.</summary>
    private sealed record AdapterJson(int[] HiddenSizes, Activation Activation, float Dropout, int DenseFeatures, AdapterInput Input)
    {
        public static AdapterJson From(AdapterConfig c) => new(c.HiddenSizes, c.Activation, c.Dropout, c.DenseFeatures, c.Input);
        public AdapterConfig ToConfig() => new() { HiddenSizes = HiddenSizes, Activation = Activation, Dropout = Dropout, DenseFeatures = DenseFeatures, Input = Input };
    }
}
