// The one tensor schema of the model: the module tree (embeddings, encoder layers, pooler, head) names every tensor
// once, with its shape, weight-decay flag and layer. Everything else is derived from it: the flat parameter layout
// (ParameterLayout), the named views (ParameterTensors), checkpoint validation, loading and saving (BertCheckpoint),
// the ONNX converter's expectations. As in candle, where `BertLayer::load(vb.pp("attention"))` makes the module tree
// the weight schema; unlike candle, the tree is data (a list of TensorSpec) as well as typed names, so the layout, the
// checkpoint walk and the tests iterate it instead of repeating it.
namespace FastRec.Engine.Model;

/// <summary>One tensor of the schema.</summary>
/// <param name="Name">Hugging Face state-dict name, e.g. <c>encoder.layer.3.output.dense.weight</c>.</param>
/// <param name="Shape">Row-major shape; Linear weights are [out, in] (HF).</param>
/// <param name="Decay">Whether AdamW applies weight decay: everything except biases and LayerNorm weights/biases (the HF
/// Trainer / torch convention: no_decay = ["bias", "LayerNorm.weight"]); embeddings are decayed.</param>
/// <param name="Layer"><see cref="ParameterLayout.EmbeddingsLayer"/> (−1), the encoder layer index i, L for the pooler,
/// L + 1 for the head.</param>
/// <param name="Block">Tensors with the same non-null block are stored adjacent in the flat buffer, in schema order
/// (a layer's query|key|value weights form one (3C, C) block, their biases one (3C) block, read in place by the fused
/// QKV Linear).</param>
public sealed record TensorSpec(string Name, int[] Shape, bool Decay, int Layer, string? Block = null)
{
    /// <summary>Number of elements.</summary>
    public int Length => Shape.Aggregate(1, (a, b) => a * b);

    /// <summary>The shape as "[a, b]".</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>The names of a Linear's tensors (<c>{prefix}.weight</c> [out, in], <c>{prefix}.bias</c> [out]).</summary>
public sealed record LinearNames(string Prefix)
{
    /// <summary><c>{prefix}.weight</c>.</summary>
    public string Weight => Prefix + ".weight";
    /// <summary><c>{prefix}.bias</c>.</summary>
    public string Bias => Prefix + ".bias";
}

/// <summary>The names of a LayerNorm's tensors (<c>{prefix}.weight</c>, <c>{prefix}.bias</c>, both [C]).</summary>
public sealed record LayerNormNames(string Prefix)
{
    /// <summary><c>{prefix}.weight</c> (γ).</summary>
    public string Weight => Prefix + ".weight";
    /// <summary><c>{prefix}.bias</c> (β).</summary>
    public string Bias => Prefix + ".bias";
}

/// <summary>The modules of one encoder layer, <c>encoder.layer.{i}</c>.</summary>
public sealed class BertLayerSchema
{
    /// <summary>Layer index.</summary>
    public required int Index { get; init; }
    /// <summary><c>attention.self.query</c>, <c>.key</c>, <c>.value</c>.</summary>
    public required LinearNames Query { get; init; }
    /// <inheritdoc cref="Query"/>
    public required LinearNames Key { get; init; }
    /// <inheritdoc cref="Query"/>
    public required LinearNames Value { get; init; }
    /// <summary><c>attention.output.dense</c>.</summary>
    public required LinearNames AttentionOutput { get; init; }
    /// <summary><c>attention.output.LayerNorm</c> (after the attention residual).</summary>
    public required LayerNormNames AttentionLayerNorm { get; init; }
    /// <summary><c>intermediate.dense</c> (C → F).</summary>
    public required LinearNames Intermediate { get; init; }
    /// <summary><c>output.dense</c> (F → C).</summary>
    public required LinearNames Output { get; init; }
    /// <summary><c>output.LayerNorm</c> (after the feed-forward residual).</summary>
    public required LayerNormNames OutputLayerNorm { get; init; }

    /// <summary>The layer's six Linears in HF order: Q, K, V, attention output, intermediate, output.</summary>
    public IReadOnlyList<LinearNames> Linears => [Query, Key, Value, AttentionOutput, Intermediate, Output];
}

/// <summary>
/// The tensors of a Hugging Face <c>BertModel</c> (embeddings, encoder layers, optional pooler) and, when built with an
/// <see cref="AdapterConfig"/>, FastRec's head (<c>head.dense.{j}</c>, <c>head.out</c>): typed names for code that
/// addresses one module, and <see cref="Tensors"/> for code that visits them all.
/// </summary>
public sealed class BertSchema
{
    /// <summary>Embedding tensors and the embedding LayerNorm.</summary>
    public const string WordEmbeddings = "embeddings.word_embeddings.weight",
        PositionEmbeddings = "embeddings.position_embeddings.weight",
        TokenTypeEmbeddings = "embeddings.token_type_embeddings.weight";

    /// <summary><c>embeddings.LayerNorm</c>.</summary>
    public static readonly LayerNormNames EmbeddingLayerNorm = new("embeddings.LayerNorm");

    /// <summary><c>pooler.dense</c> (present when <see cref="BertConfig.AddPoolingLayer"/>).</summary>
    public static readonly LinearNames PoolerDense = new("pooler.dense");

    /// <summary><c>head.out</c>: the head's last Linear (→ one logit).</summary>
    public static readonly LinearNames HeadOut = new("head.out");

    /// <summary><c>head.dense.{j}</c>: the head's j-th hidden Linear.</summary>
    public static LinearNames HeadDense(int j) => new($"head.dense.{j}");

    /// <summary>The modules of encoder layer <paramref name="i"/>.</summary>
    public static BertLayerSchema Layer(int i)
    {
        string p = $"encoder.layer.{i}.";
        return new BertLayerSchema
        {
            Index = i,
            Query = new(p + "attention.self.query"), Key = new(p + "attention.self.key"), Value = new(p + "attention.self.value"),
            AttentionOutput = new(p + "attention.output.dense"), AttentionLayerNorm = new(p + "attention.output.LayerNorm"),
            Intermediate = new(p + "intermediate.dense"), Output = new(p + "output.dense"), OutputLayerNorm = new(p + "output.LayerNorm"),
        };
    }

    private readonly List<TensorSpec> _tensors = [];

    /// <summary>The encoder layers' modules.</summary>
    public IReadOnlyList<BertLayerSchema> Layers { get; }
    /// <summary>Whether the schema has the pooler.</summary>
    public bool HasPooler { get; }
    /// <summary>The head's hidden Linears (empty without an adapter or for a single-Linear head).</summary>
    public IReadOnlyList<LinearNames> HeadHidden { get; }
    /// <summary>Whether the schema includes the head.</summary>
    public bool HasHead { get; }
    /// <summary>Width of the head's input, C + D (0 without a head).</summary>
    public int HeadInputSize { get; }

    /// <summary>Every tensor in Hugging Face checkpoint order: embeddings, layers (Q, K, V, attention output, its
    /// LayerNorm, intermediate, output, its LayerNorm; weight before bias), pooler, then the head.</summary>
    public IReadOnlyList<TensorSpec> Tensors => _tensors;

    /// <summary>The tensors a Hugging Face BERT checkpoint holds: <see cref="Tensors"/> without the head.</summary>
    public IEnumerable<TensorSpec> EncoderTensors => _tensors.Where(t => !IsHead(t.Name));

    /// <summary>True for the names of FastRec's head (<c>head.*</c>), which HF checkpoints do not hold.</summary>
    public static bool IsHead(string name) => name.StartsWith("head.", StringComparison.Ordinal);

    /// <summary>The schema of <paramref name="bert"/> (validated), with the head of <paramref name="adapter"/> when given.</summary>
    public static BertSchema Of(BertConfig bert, AdapterConfig? adapter = null) => new(bert, adapter);

    private BertSchema(BertConfig bert, AdapterConfig? adapter)
    {
        bert.Validate();
        adapter?.Validate(bert);
        int C = bert.HiddenSize, F = bert.IntermediateSize, L = bert.NumHiddenLayers, emb = ParameterLayout.EmbeddingsLayer;
        Add(WordEmbeddings, emb, true, bert.VocabSize, C);
        Add(PositionEmbeddings, emb, true, bert.MaxPositionEmbeddings, C);
        Add(TokenTypeEmbeddings, emb, true, bert.TypeVocabSize, C);
        LayerNorm(EmbeddingLayerNorm, emb, C);
        var layers = new BertLayerSchema[L];
        for (int i = 0; i < L; i++)
        {
            var l = layers[i] = Layer(i);
            string qkv = $"encoder.layer.{i}.attention.self.qkv";
            foreach (var lin in (LinearNames[])[l.Query, l.Key, l.Value]) Linear(lin, i, C, C, qkv);
            Linear(l.AttentionOutput, i, C, C);
            LayerNorm(l.AttentionLayerNorm, i, C);
            Linear(l.Intermediate, i, F, C);
            Linear(l.Output, i, C, F);
            LayerNorm(l.OutputLayerNorm, i, C);
        }
        Layers = layers;
        HasPooler = bert.AddPoolingLayer;
        if (HasPooler) Linear(PoolerDense, L, C, C);

        var hidden = new List<LinearNames>();
        if (adapter is not null)
        {
            HasHead = true;
            int width = HeadInputSize = C + adapter.DenseFeatures;
            for (int j = 0; j < adapter.HiddenSizes.Length; j++)
            {
                var d = HeadDense(j);
                hidden.Add(d);
                Linear(d, L + 1, adapter.HiddenSizes[j], width);
                width = adapter.HiddenSizes[j];
            }
            Linear(HeadOut, L + 1, 1, width);
        }
        HeadHidden = hidden;
    }

    private void Linear(LinearNames n, int layer, int outF, int inF, string? block = null)
    {
        Add(n.Weight, layer, true, [outF, inF], block is null ? null : block + ".weight");
        Add(n.Bias, layer, false, [outF], block is null ? null : block + ".bias");
    }

    private void LayerNorm(LayerNormNames n, int layer, int c)
    {
        Add(n.Weight, layer, false, c);
        Add(n.Bias, layer, false, c);
    }

    private void Add(string name, int layer, bool decay, params int[] shape) => Add(name, layer, decay, shape, null);

    private void Add(string name, int layer, bool decay, int[] shape, string? block)
        => _tensors.Add(new TensorSpec(name, shape, decay, layer, block));
}
