// A Hugging Face BERT model directory (config.json, model.safetensors, vocab.txt): validate, write, copy.
using System.Text.Json;
using System.Text.Json.Nodes;
using FastRec.Engine.Model;
using FastRec.Kernels;

namespace FastRec.Engine.Weights;

/// <summary>What <see cref="BertCheckpoint.Open"/> found in a model directory.</summary>
public sealed class BertCheckpointInfo
{
    /// <summary>The directory.</summary>
    public required string Directory { get; init; }
    /// <summary>config.json, validated; <see cref="BertConfig.AddPoolingLayer"/> reflects whether the file has a pooler.</summary>
    public required BertConfig Config { get; init; }
    /// <summary>Prefix in front of the HF names in the file ("" or e.g. "bert.").</summary>
    public required string Prefix { get; init; }
    /// <summary>Tokens in vocab.txt.</summary>
    public required int VocabCount { get; init; }
    /// <summary>Whether the tokenizer lower-cases (tokenizer_config.json do_lower_case; true when absent).</summary>
    public required bool LowerCase { get; init; }
    /// <summary>Path of model.safetensors.</summary>
    public string WeightsPath => Path.Combine(Directory, BertCheckpoint.WeightsFile);
    /// <summary>Path of vocab.txt.</summary>
    public string VocabPath => Path.Combine(Directory, BertCheckpoint.VocabFile);
}

/// <summary>
/// The model directory format: Hugging Face <c>config.json</c>, <c>model.safetensors</c> (HF names, [out, in]),
/// <c>vocab.txt</c>, and <c>tokenizer_config.json</c>. What FastRec writes loads in HF tools and a user's own HF
/// checkpoint loads here as it is. Every write is atomic (temp file in the same folder, flush, rename).
/// </summary>
public static class BertCheckpoint
{
    /// <summary>File names inside a model directory.</summary>
    public const string ConfigFile = "config.json", WeightsFile = "model.safetensors", VocabFile = "vocab.txt",
        TokenizerConfigFile = "tokenizer_config.json";

    /// <summary>
    /// Opens and validates a model directory: config.json (fields), vocab.txt (token count = vocab_size),
    /// model.safetensors (header, then presence, dtype and shape of every tensor). A checkpoint without pooler
    /// tensors loads as a model without pooler. Errors name the file and, for tensors, the tensor.
    /// </summary>
    public static BertCheckpointInfo Open(string dir)
    {
        if (!System.IO.Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: model directory not found");
        string configPath = Path.Combine(dir, ConfigFile), weights = Path.Combine(dir, WeightsFile), vocab = Path.Combine(dir, VocabFile);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{configPath}: config.json missing: not a Hugging Face model directory", configPath);
        if (!File.Exists(weights))
        {
            if (File.Exists(Path.Combine(dir, "pytorch_model.bin")))
                throw new SafetensorsFormatException(Path.Combine(dir, "pytorch_model.bin"), null,
                    "PyTorch pickle checkpoints are not read (they can run code when loaded); model.safetensors is required: " +
                    "re-save with transformers' save_pretrained(dir, safe_serialization=True) or convert with the safetensors tools");
            throw new FileNotFoundException($"{weights}: model.safetensors missing", weights);
        }
        if (!File.Exists(vocab)) throw new FileNotFoundException($"{vocab}: vocab.txt missing (the WordPiece vocabulary)", vocab);

        var config = BertConfig.FromJson(configPath);
        if (config.ModelType != "bert")
            throw new InvalidDataException($"{configPath}: model_type \"{config.ModelType}\" is not supported (only \"bert\")");
        int vocabCount = CountVocab(vocab);
        if (vocabCount != config.VocabSize)
            throw new InvalidDataException($"{vocab}: has {vocabCount} tokens but {configPath} says vocab_size {config.VocabSize}");

        using var file = SafetensorsFile.Open(weights);
        string prefix = file.Contains(BertSchema.WordEmbeddings) ? ""
            : file.Contains("bert." + BertSchema.WordEmbeddings) ? "bert." : "";
        var root = new WeightBuilder(file, prefix);
        if (config.AddPoolingLayer && !root.Contains(BertSchema.PoolerDense.Weight) && !root.Contains(BertSchema.PoolerDense.Bias))
            config.AddPoolingLayer = false;
        foreach (var t in BertSchema.Of(config).EncoderTensors) root.Check(t.Name, t.Shape);
        return new BertCheckpointInfo
        {
            Directory = dir, Config = config, Prefix = prefix, VocabCount = vocabCount, LowerCase = ReadLowerCase(dir),
        };
    }

    /// <summary>Tokens in a vocab.txt (one per line, LF or CRLF; a final line without newline counts).</summary>
    public static int CountVocab(string vocabPath)
    {
        int n = 0;
        using var r = new StreamReader(vocabPath);
        while (r.ReadLine() is not null) n++;
        return n;
    }

    /// <summary>do_lower_case from tokenizer_config.json; true (uncased BERT) when the file or the field is absent.</summary>
    public static bool ReadLowerCase(string dir)
    {
        string p = Path.Combine(dir, TokenizerConfigFile);
        if (!File.Exists(p)) return true;
        try
        {
            var node = JsonNode.Parse(File.ReadAllText(p));
            return node?["do_lower_case"]?.GetValue<bool>() ?? true;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{p}: not valid JSON or do_lower_case not a boolean: {e.Message}", e);
        }
    }

    /// <summary>
    /// Writes a model directory: config.json, model.safetensors (F32), vocab.txt (LF line endings), tokenizer_config.json.
    /// Each file is written atomically; the tensors are checked against <see cref="BertSchema.EncoderTensors"/> first.
    /// </summary>
    public static void Write(string dir, BertConfig config, IReadOnlyList<SafetensorsEntry> tensors, string vocabText, bool lowerCase,
                             IReadOnlyDictionary<string, string>? metadata = null)
    {
        config.Validate();
        var expected = BertSchema.Of(config).EncoderTensors;
        var byName = tensors.ToDictionary(t => t.Name);
        foreach (var s in expected)
        {
            if (!byName.TryGetValue(s.Name, out var t)) throw new ArgumentException($"tensor '{s.Name}' {s.ShapeText} is missing from what is being saved");
            if (!t.Shape.SequenceEqual(s.Shape)) throw new ArgumentException($"tensor '{s.Name}': shape [{string.Join(", ", t.Shape)}] but the config needs {s.ShapeText}");
        }
        string vocab = vocabText.Replace("\r\n", "\n");
        if (!vocab.EndsWith('\n')) vocab += "\n";
        int vocabCount = vocab.Count(ch => ch == '\n');
        if (vocabCount != config.VocabSize) throw new ArgumentException($"vocab has {vocabCount} tokens but vocab_size is {config.VocabSize}");

        System.IO.Directory.CreateDirectory(dir);
        var meta = new Dictionary<string, string> { ["format"] = "pt" };
        if (metadata is not null) foreach (var (k, v) in metadata) meta[k] = v;
        SafetensorsWriter.Write(Path.Combine(dir, WeightsFile), tensors, meta);
        AtomicFile.WriteText(Path.Combine(dir, VocabFile), vocab);
        AtomicFile.WriteText(Path.Combine(dir, TokenizerConfigFile), new JsonObject
        {
            ["tokenizer_class"] = "BertTokenizer",
            ["do_lower_case"] = lowerCase,
            ["model_max_length"] = config.MaxPositionEmbeddings,
            ["unk_token"] = "[UNK]", ["sep_token"] = "[SEP]", ["pad_token"] = "[PAD]", ["cls_token"] = "[CLS]", ["mask_token"] = "[MASK]",
        }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        // config.json last: a directory with a config.json is complete.
        AtomicFile.WriteText(Path.Combine(dir, ConfigFile), config.ToJson() + "\n");
    }

    /// <summary>
    /// Loads the encoder (and pooler) of the checkpoint in <paramref name="dir"/> into <paramref name="model"/> by HF names,
    /// one tensor at a time through the memory map (the model is never held twice on the host). The model's BERT config
    /// must match config.json; the head (head.*) is left as it is.
    /// </summary>
    public static BertCheckpointInfo LoadInto(RecModel model, string dir)
    {
        var info = Open(dir);
        RequireSameShape(model.Bert, info.Config, Path.Combine(dir, ConfigFile));
        using var file = SafetensorsFile.Open(info.WeightsPath);
        var root = new WeightBuilder(file, info.Prefix);
        var tensors = BertSchema.Of(info.Config).EncoderTensors.ToList();
        var buf = new float[tensors.Max(t => t.Length)];
        foreach (var t in tensors)
        {
            var dst = buf.AsSpan(0, t.Length);
            root.Get(t.Name, t.Shape, dst);
            model.SetParameter(t.Name, dst);
        }
        return info;
    }

    /// <summary>
    /// A new model with the checkpoint's BERT config and <paramref name="adapter"/> (default: a single Linear on the pooler,
    /// or on [CLS] when the checkpoint has no pooler); the head is initialised randomly from <paramref name="seed"/>,
    /// the encoder loaded from <paramref name="dir"/>.
    /// </summary>
    public static RecModel Load(string dir, IBackend backend, AdapterConfig? adapter = null, ulong seed = 0)
    {
        var info = Open(dir);
        adapter ??= new AdapterConfig { Input = info.Config.AddPoolingLayer ? AdapterInput.Pooler : AdapterInput.Cls };
        var model = new RecModel(backend, info.Config, adapter);
        try
        {
            model.InitRandom(seed);
            LoadInto(model, dir);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Saves the model's encoder (and pooler) as a Hugging Face model directory, with <paramref name="vocabPath"/>'s tokens.
    /// Tensors are downloaded one at a time as the file is written.
    /// </summary>
    public static void Save(RecModel model, string dir, string vocabPath, bool lowerCase = true)
    {
        var entries = BertSchema.Of(model.Bert).EncoderTensors
            .Select(t => new SafetensorsEntry(t.Name, t.Shape, () => model.GetParameter(t.Name)))
            .ToList();
        Write(dir, model.Bert, entries, File.ReadAllText(vocabPath), lowerCase);
    }

    private static void RequireSameShape(BertConfig model, BertConfig file, string path)
    {
        if (model.ShapeDifference(file) is (string field, object a, object b))
            throw new InvalidDataException($"{path}: {(field == "add_pooling_layer" ? "add_pooling_layer (pooler tensors present)" : field)} is {b} but the model was built with {a}");
    }

    /// <summary>
    /// <c>fastrec convert --hf</c>: validates a Hugging Face checkpoint directory and copies its model files to <paramref name="outDir"/>
    /// (config.json, model.safetensors, vocab.txt, and tokenizer_config.json / special_tokens_map.json when present).
    /// </summary>
    public static BertCheckpointInfo CopyHf(string srcDir, string outDir)
    {
        var info = Open(srcDir);
        if (Path.GetFullPath(srcDir).TrimEnd('/') == Path.GetFullPath(outDir).TrimEnd('/'))
            return info;
        System.IO.Directory.CreateDirectory(outDir);
        foreach (string f in (string[])[WeightsFile, VocabFile, TokenizerConfigFile, "special_tokens_map.json", ConfigFile])
        {
            string src = Path.Combine(srcDir, f);
            if (File.Exists(src)) AtomicFile.Copy(src, Path.Combine(outDir, f));
        }
        return Open(outDir);
    }
}
