// The one flat parameter buffer's map, derived from BertSchema: every tensor's HF name, shape, offset, decay flag and layer.
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
    /// <summary>Whether AdamW applies weight decay (<see cref="TensorSpec.Decay"/>).</summary>
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

    /// <summary>The schema the layout is derived from.</summary>
    public BertSchema Schema { get; }

    /// <summary>Builds the layout of <paramref name="bert"/> plus the head of <paramref name="adapter"/> (both validated):
    /// the tensors of <see cref="BertSchema"/> in schema order, except that the tensors of one
    /// <see cref="TensorSpec.Block"/> are placed together where the block's first tensor is.</summary>
    public ParameterLayout(BertConfig bert, AdapterConfig adapter)
    {
        Schema = BertSchema.Of(bert, adapter);
        NumLayers = bert.NumHiddenLayers;
        HeadInputSize = Schema.HeadInputSize;
        var placed = new HashSet<string>(StringComparer.Ordinal);
        var specs = Schema.Tensors;
        for (int i = 0; i < specs.Count; i++)
        {
            var t = specs[i];
            if (t.Block is null) { Add(t); continue; }
            if (!placed.Add(t.Block)) continue;
            for (int j = i; j < specs.Count; j++)
                if (specs[j].Block == t.Block) Add(specs[j]);
        }
    }

    /// <summary>The tensor named <paramref name="name"/>; throws <see cref="KeyNotFoundException"/> naming it.</summary>
    public ParamInfo this[string name]
        => _byName.TryGetValue(name, out var p) ? p
           : throw new KeyNotFoundException($"the model has no parameter tensor named \"{name}\"");

    /// <summary>True when the layout holds <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    private void Add(TensorSpec t)
    {
        long n = t.Shape.Aggregate(1L, (a, b) => a * b);
        if (TotalSize + n > int.MaxValue)
            throw new InvalidDataException($"the model's parameters exceed {int.MaxValue} floats at {t.Name}");
        var info = new ParamInfo { Name = t.Name, Shape = t.Shape, Offset = TotalSize, Length = (int)n, Decay = t.Decay, Layer = t.Layer, Index = _tensors.Count };
        _tensors.Add(info);
        _byName.Add(t.Name, info);
        TotalSize += (int)n;
    }
}
