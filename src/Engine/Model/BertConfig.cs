// The BERT encoder's hyper-parameters, read from and written to a Hugging Face config.json.
using System.Text.Json;
using System.Text.Json.Serialization;
using FastRec.Kernels;

namespace FastRec.Engine.Model;

/// <summary>
/// Hugging Face <c>BertConfig</c> (config.json field names). Unknown fields of a loaded file are kept in
/// <see cref="Extra"/> and written back by <see cref="ToJson"/>, so a user's config round-trips.
/// </summary>
public sealed class BertConfig
{
    /// <summary>V: rows of the word-embedding table.</summary>
    [JsonPropertyName("vocab_size")] public int VocabSize { get; set; } = 30522;
    /// <summary>C: hidden width.</summary>
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; set; } = 768;
    /// <summary>L: number of encoder layers.</summary>
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; set; } = 12;
    /// <summary>NH: attention heads; must divide <see cref="HiddenSize"/>.</summary>
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; set; } = 12;
    /// <summary>F: feed-forward width.</summary>
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; set; } = 3072;
    /// <summary>Feed-forward activation: "gelu" (erf form) or "relu".</summary>
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; set; } = "gelu";
    /// <summary>Dropout after the embeddings, the attention output and the feed-forward output.</summary>
    [JsonPropertyName("hidden_dropout_prob")] public double HiddenDropoutProb { get; set; } = 0.1;
    /// <summary>Dropout on the attention probabilities.</summary>
    [JsonPropertyName("attention_probs_dropout_prob")] public double AttentionProbsDropoutProb { get; set; } = 0.1;
    /// <summary>Rows of the position-embedding table: the longest sequence T the model accepts.</summary>
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; set; } = 512;
    /// <summary>Rows of the token-type (segment) embedding table.</summary>
    [JsonPropertyName("type_vocab_size")] public int TypeVocabSize { get; set; } = 2;
    /// <summary>LayerNorm epsilon.</summary>
    [JsonPropertyName("layer_norm_eps")] public double LayerNormEps { get; set; } = 1e-12;
    /// <summary>Padding token id; its word-embedding row is zeroed by random initialisation (HF _init_weights).</summary>
    [JsonPropertyName("pad_token_id")] public int PadTokenId { get; set; }
    /// <summary>Only "absolute" is supported.</summary>
    [JsonPropertyName("position_embedding_type")] public string PositionEmbeddingType { get; set; } = "absolute";
    /// <summary>HF model_type; "bert".</summary>
    [JsonPropertyName("model_type")] public string ModelType { get; set; } = "bert";
    /// <summary>Whether the model has the pooler (tanh(W·h_CLS + b)); HF's <c>add_pooling_layer</c> argument. Default true.</summary>
    [JsonPropertyName("add_pooling_layer")] public bool AddPoolingLayer { get; set; } = true;

    /// <summary>Fields of config.json this class does not model (architectures, torch_dtype, ...), kept verbatim.</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }

    /// <summary>HS = C / NH.</summary>
    [JsonIgnore] public int HeadSize => HiddenSize / NumAttentionHeads;

    /// <summary>The feed-forward activation as a kernel enum.</summary>
    [JsonIgnore]
    public Activation FeedForwardActivation => HiddenAct switch
    {
        "gelu" => Activation.Gelu,
        "relu" => Activation.Relu,
        _ => throw new InvalidDataException($"BertConfig.hidden_act: \"{HiddenAct}\" is not supported (use \"gelu\" or \"relu\")"),
    };

    private static readonly JsonSerializerOptions s_json = new() { WriteIndented = true };

    /// <summary>Reads and validates a Hugging Face config.json.</summary>
    /// <exception cref="InvalidDataException">the file is not valid JSON or a field is out of range; the message names the file and the field.</exception>
    public static BertConfig FromJson(string path)
    {
        BertConfig? c;
        try { c = JsonSerializer.Deserialize<BertConfig>(File.ReadAllText(path), s_json); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a valid BERT config.json: {e.Message}", e); }
        if (c is null) throw new InvalidDataException($"{path}: empty BERT config.json");
        try { c.Validate(); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
        return c;
    }

    /// <summary>Parses config.json text (no validation).</summary>
    public static BertConfig Parse(string json)
        => JsonSerializer.Deserialize<BertConfig>(json, s_json) ?? throw new InvalidDataException("empty BERT config JSON");

    /// <summary>The config as indented Hugging Face JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, s_json);

    /// <summary>Checks every field; throws <see cref="InvalidDataException"/> naming the field and its value.</summary>
    /// <summary>The first field that changes the tensor shapes (vocab, widths, layers, heads, positions, token types,
    /// pooler) on which this config and <paramref name="other"/> differ, as (HF field name, this value, other value);
    /// null when their tensors have the same shapes.</summary>
    public (string Field, object Mine, object Theirs)? ShapeDifference(BertConfig other)
    {
        (string, object, object)[] fields =
        [
            ("vocab_size", VocabSize, other.VocabSize),
            ("hidden_size", HiddenSize, other.HiddenSize),
            ("num_hidden_layers", NumHiddenLayers, other.NumHiddenLayers),
            ("num_attention_heads", NumAttentionHeads, other.NumAttentionHeads),
            ("intermediate_size", IntermediateSize, other.IntermediateSize),
            ("max_position_embeddings", MaxPositionEmbeddings, other.MaxPositionEmbeddings),
            ("type_vocab_size", TypeVocabSize, other.TypeVocabSize),
            ("add_pooling_layer", AddPoolingLayer, other.AddPoolingLayer),
        ];
        foreach (var f in fields)
            if (!f.Item2.Equals(f.Item3)) return f;
        return null;
    }

    public void Validate()
    {
        static void Positive(string name, int v)
        {
            if (v <= 0) throw new InvalidDataException($"BertConfig.{name} must be positive, got {v}");
        }
        static void Probability(string name, double p)
        {
            if (!(p >= 0 && p < 1)) throw new InvalidDataException($"BertConfig.{name} must be in [0, 1), got {p}");
        }
        Positive("vocab_size", VocabSize);
        Positive("hidden_size", HiddenSize);
        Positive("num_hidden_layers", NumHiddenLayers);
        Positive("num_attention_heads", NumAttentionHeads);
        Positive("intermediate_size", IntermediateSize);
        Positive("max_position_embeddings", MaxPositionEmbeddings);
        Positive("type_vocab_size", TypeVocabSize);
        if (HiddenSize % NumAttentionHeads != 0)
            throw new InvalidDataException($"BertConfig.hidden_size ({HiddenSize}) must be a multiple of num_attention_heads ({NumAttentionHeads})");
        Probability("hidden_dropout_prob", HiddenDropoutProb);
        Probability("attention_probs_dropout_prob", AttentionProbsDropoutProb);
        if (!(LayerNormEps > 0 && double.IsFinite(LayerNormEps)))
            throw new InvalidDataException($"BertConfig.layer_norm_eps must be positive, got {LayerNormEps}");
        if (PadTokenId < 0 || PadTokenId >= VocabSize)
            throw new InvalidDataException($"BertConfig.pad_token_id ({PadTokenId}) must be in [0, vocab_size = {VocabSize})");
        if (PositionEmbeddingType != "absolute")
            throw new InvalidDataException($"BertConfig.position_embedding_type \"{PositionEmbeddingType}\" is not supported (only \"absolute\")");
        _ = FeedForwardActivation;
    }
}
