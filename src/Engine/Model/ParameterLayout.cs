// The one flat parameter buffer's map: every tensor's HF name, shape, offset, decay flag and layer.
namespace FastRec.Engine.Model;

/// <summary>One tensor of the flat parameter buffer (HF name, [out, in] shape for weights).</summary>
public sealed record ParamInfo
{
    /// <summary>Hugging Face state-dict name, e.g. <c>encoder.layer.0.attention.self.query.weight</c>.</summary>
    public required string Name { get; init; }
    /// <summary>Shape, row-major; Linear weights are [out, in].</summary>
    public required int[] Shape { get; init; }
    /// <summary>First element in the flat buffer.</summary>
    public required int Offset { get; init; }
    /// <summary>Number of elements (product of <see cref="Shape"/>).</summary>
    public required int Length { get; init; }
    /// <summary>Whether AdamW applies weight decay: everything except biases and LayerNorm weights/biases
    /// (the HF Trainer / torch convention: no_decay = ["bias", "LayerNorm.weight"]); embeddings ARE decayed.</summary>
    public required bool Decay { get; init; }
    /// <summary><see cref="ParameterLayout.EmbeddingsLayer"/> (-1), the encoder layer index i,
    /// <see cref="ParameterLayout.PoolerLayer"/> (L) or <see cref="ParameterLayout.HeadLayer"/> (L + 1).</summary>
    public required int Layer { get; init; }
    /// <summary>Index in <see cref="ParameterLayout.Tensors"/>.</summary>
    public required int Index { get; init; }

    public override string ToString() => $"{Name} ({string.Join(", ", Shape)}) @ {Offset}";
}

/// <summary>
/// Ordered tensors of the model in one contiguous float buffer (llm.c's ParameterTensors): embeddings,
/// encoder layers, pooler, head. The query/key/value weights of a layer are adjacent, forming one (3C, C)
/// block, and their biases one (3C) block, so the fused QKV Linear reads them in place.
/// Gradients and Adam moments use the same layout.
/// </summary>
public sealed class ParameterLayout
{
    /// <summary>Layer tag of the embedding tensors.</summary>
    public const int EmbeddingsLayer = -1;

    private readonly List<ParamInfo> _tensors = [];
    private readonly Dictionary<string, ParamInfo> _byName = new(StringComparer.Ordinal);

    /// <summary>All tensors in buffer order.</summary>
    public IReadOnlyList<ParamInfo> Tensors => _tensors;
    /// <summary>Total number of floats.</summary>
    public int TotalSize { get; private set; }
    /// <summary>L, the number of encoder layers.</summary>
    public int NumLayers { get; }
    /// <summary>Layer tag of the pooler tensors (= L).</summary>
    public int PoolerLayer => NumLayers;
    /// <summary>Layer tag of the head tensors (= L + 1).</summary>
    public int HeadLayer => NumLayers + 1;
    /// <summary>Width of the head's input: C + D.</summary>
    public int HeadInputSize { get; }

    /// <summary>Builds the layout of <paramref name="bert"/> plus the head of <paramref name="adapter"/> (both validated).</summary>
    public ParameterLayout(BertConfig bert, AdapterConfig adapter)
    {
        bert.Validate();
        adapter.Validate(bert);
        int V = bert.VocabSize, C = bert.HiddenSize, F = bert.IntermediateSize;
        NumLayers = bert.NumHiddenLayers;

        int e = EmbeddingsLayer;
        Add("embeddings.word_embeddings.weight", e, true, V, C);
        Add("embeddings.position_embeddings.weight", e, true, bert.MaxPositionEmbeddings, C);
        Add("embeddings.token_type_embeddings.weight", e, true, bert.TypeVocabSize, C);
        Add("embeddings.LayerNorm.weight", e, false, C);
        Add("embeddings.LayerNorm.bias", e, false, C);
        for (int i = 0; i < NumLayers; i++)
        {
            string p = $"encoder.layer.{i}.";
            Add(p + "attention.self.query.weight", i, true, C, C);   // \
            Add(p + "attention.self.key.weight", i, true, C, C);     //  } one (3C, C) block
            Add(p + "attention.self.value.weight", i, true, C, C);   // /
            Add(p + "attention.self.query.bias", i, false, C);       // \
            Add(p + "attention.self.key.bias", i, false, C);         //  } one (3C) block
            Add(p + "attention.self.value.bias", i, false, C);       // /
            Add(p + "attention.output.dense.weight", i, true, C, C);
            Add(p + "attention.output.dense.bias", i, false, C);
            Add(p + "attention.output.LayerNorm.weight", i, false, C);
            Add(p + "attention.output.LayerNorm.bias", i, false, C);
            Add(p + "intermediate.dense.weight", i, true, F, C);
            Add(p + "intermediate.dense.bias", i, false, F);
            Add(p + "output.dense.weight", i, true, C, F);
            Add(p + "output.dense.bias", i, false, C);
            Add(p + "output.LayerNorm.weight", i, false, C);
            Add(p + "output.LayerNorm.bias", i, false, C);
        }
        if (bert.AddPoolingLayer)
        {
            Add("pooler.dense.weight", PoolerLayer, true, C, C);
            Add("pooler.dense.bias", PoolerLayer, false, C);
        }
        int width = HeadInputSize = C + adapter.DenseFeatures;
        for (int j = 0; j < adapter.HiddenSizes.Length; j++)
        {
            int h = adapter.HiddenSizes[j];
            Add($"head.dense.{j}.weight", HeadLayer, true, h, width);
            Add($"head.dense.{j}.bias", HeadLayer, false, h);
            width = h;
        }
        Add("head.out.weight", HeadLayer, true, 1, width);
        Add("head.out.bias", HeadLayer, false, 1);
    }

    /// <summary>The tensor named <paramref name="name"/>; throws <see cref="KeyNotFoundException"/> naming it.</summary>
    public ParamInfo this[string name]
        => _byName.TryGetValue(name, out var p) ? p
           : throw new KeyNotFoundException($"the model has no parameter tensor named \"{name}\"");

    /// <summary>True when the layout holds <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    private void Add(string name, int layer, bool decay, params int[] shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        if (TotalSize + n > int.MaxValue)
            throw new InvalidDataException($"the model's parameters exceed {int.MaxValue} floats at {name}");
        var info = new ParamInfo { Name = name, Shape = shape, Offset = TotalSize, Length = (int)n, Decay = decay, Layer = layer, Index = _tensors.Count };
        _tensors.Add(info);
        _byName.Add(name, info);
        TotalSize += (int)n;
    }
}
