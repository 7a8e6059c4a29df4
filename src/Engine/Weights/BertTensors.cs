// The Hugging Face BertModel tensor names and shapes implied by a config.json, in checkpoint order.
using FastRec.Engine.Model;

namespace FastRec.Engine.Weights;

/// <summary>One tensor a BERT checkpoint must hold.</summary>
/// <param name="Name">Hugging Face name, e.g. <c>encoder.layer.3.output.dense.weight</c>.</param>
/// <param name="Shape">Hugging Face shape ([out, in] for weights).</param>
public sealed record BertTensorSpec(string Name, int[] Shape)
{
    /// <summary>Number of elements.</summary>
    public int Length => Shape.Aggregate(1, (a, b) => a * b);

    /// <summary>The shape as "[a, b]".</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>The tensors of a Hugging Face <c>BertModel</c> (embeddings, encoder layers, optional pooler).</summary>
public static class BertTensors
{
    /// <summary>The suffixes of one encoder layer's tensors, in HF order (Q, K, V, attention output, intermediate, output).</summary>
    public static readonly string[] LayerLinears =
    [
        "attention.self.query", "attention.self.key", "attention.self.value",
        "attention.output.dense", "intermediate.dense", "output.dense",
    ];

    /// <summary>Every tensor the config implies, in checkpoint order (C hidden, F feed-forward, V vocab, P positions).</summary>
    public static IReadOnlyList<BertTensorSpec> Expected(BertConfig c)
    {
        int C = c.HiddenSize, F = c.IntermediateSize, V = c.VocabSize, P = c.MaxPositionEmbeddings, TV = c.TypeVocabSize;
        var list = new List<BertTensorSpec>
        {
            new("embeddings.word_embeddings.weight", [V, C]),
            new("embeddings.position_embeddings.weight", [P, C]),
            new("embeddings.token_type_embeddings.weight", [TV, C]),
            new("embeddings.LayerNorm.weight", [C]),
            new("embeddings.LayerNorm.bias", [C]),
        };
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            string l = $"encoder.layer.{i}.";
            foreach (string q in (string[])["query", "key", "value"])
            {
                list.Add(new(l + $"attention.self.{q}.weight", [C, C]));
                list.Add(new(l + $"attention.self.{q}.bias", [C]));
            }
            list.Add(new(l + "attention.output.dense.weight", [C, C]));
            list.Add(new(l + "attention.output.dense.bias", [C]));
            list.Add(new(l + "attention.output.LayerNorm.weight", [C]));
            list.Add(new(l + "attention.output.LayerNorm.bias", [C]));
            list.Add(new(l + "intermediate.dense.weight", [F, C]));
            list.Add(new(l + "intermediate.dense.bias", [F]));
            list.Add(new(l + "output.dense.weight", [C, F]));
            list.Add(new(l + "output.dense.bias", [C]));
            list.Add(new(l + "output.LayerNorm.weight", [C]));
            list.Add(new(l + "output.LayerNorm.bias", [C]));
        }
        if (c.AddPoolingLayer)
        {
            list.Add(new("pooler.dense.weight", [C, C]));
            list.Add(new("pooler.dense.bias", [C]));
        }
        return list;
    }
}
