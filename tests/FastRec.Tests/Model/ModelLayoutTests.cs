// ParameterLayout names/offsets/decay flags and BertConfig's Hugging Face JSON round trip.
using FastRec.Engine.Model;
using static FastRec.Tests.Model.ModelTestUtil;

namespace FastRec.Tests.Model;

[TestFixture]
public class ModelLayoutTests
{
    [Test]
    public void LayoutHasHfNamesInOrderWithQkvBlocksAdjacent()
    {
        var layout = new ParameterLayout(TinyBert(), TinyHead());
        var names = layout.Tensors.Select(t => t.Name).ToList();
        Assert.That(names.Take(5), Is.EqualTo(new[]
        {
            "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight", "embeddings.token_type_embeddings.weight",
            "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias",
        }));
        Assert.That(names.Skip(5).Take(6), Is.EqualTo(new[]
        {
            "encoder.layer.0.attention.self.query.weight", "encoder.layer.0.attention.self.key.weight", "encoder.layer.0.attention.self.value.weight",
            "encoder.layer.0.attention.self.query.bias", "encoder.layer.0.attention.self.key.bias", "encoder.layer.0.attention.self.value.bias",
        }));
        Assert.That(names.TakeLast(6), Is.EqualTo(new[]
        {
            "pooler.dense.weight", "pooler.dense.bias", "head.dense.0.weight", "head.dense.0.bias", "head.out.weight", "head.out.bias",
        }));
        Assert.That(names, Has.Count.EqualTo(5 + 16 * 2 + 2 + 2 + 2));
        for (int i = 0; i < layout.Tensors.Count; i++)
        {
            var t = layout.Tensors[i];
            Assert.That(t.Offset, Is.EqualTo(i == 0 ? 0 : layout.Tensors[i - 1].Offset + layout.Tensors[i - 1].Length), t.Name);
            Assert.That(t.Length, Is.EqualTo(t.Shape.Aggregate(1, (a, b) => a * b)), t.Name);
            Assert.That(t.Index, Is.EqualTo(i));
            Assert.That(t.Decay, Is.EqualTo(!t.Name.EndsWith(".bias") && !t.Name.Contains("LayerNorm")), t.Name);
        }
        Assert.That(layout["encoder.layer.1.intermediate.dense.weight"].Shape, Is.EqualTo(new[] { 64, 32 }));
        Assert.That(layout["encoder.layer.1.output.dense.weight"].Shape, Is.EqualTo(new[] { 32, 64 }));
        Assert.That(layout["head.dense.0.weight"].Shape, Is.EqualTo(new[] { 16, 34 }));
        Assert.That(layout["head.out.weight"].Shape, Is.EqualTo(new[] { 1, 16 }));
        Assert.That(layout["embeddings.word_embeddings.weight"].Layer, Is.EqualTo(ParameterLayout.EmbeddingsLayer));
        Assert.That(layout["encoder.layer.1.output.LayerNorm.bias"].Layer, Is.EqualTo(1));
        Assert.That(layout["pooler.dense.weight"].Layer, Is.EqualTo(layout.PoolerLayer));
        Assert.That(layout["head.out.bias"].Layer, Is.EqualTo(layout.HeadLayer));
        int C = 32, F = 64, V = 50, P = 16;
        int perLayer = 4 * C * C + 4 * C + 2 * C * F + F + C + 4 * C;
        Assert.That(layout.TotalSize, Is.EqualTo(V * C + P * C + 2 * C + 2 * C + 2 * perLayer + C * C + C + 16 * 34 + 16 + 16 + 1));
    }

    [Test]
    public void TheLayoutIsThePermutedSchemaAndTheTypedNamesAreItsTensors()
    {
        var bert = TinyBert(); var head = TinyHead();
        var schema = BertSchema.Of(bert, head);
        var layout = new ParameterLayout(bert, head);
        // Same tensors, shapes, decay flags and layers; only the order differs (QKV blocks).
        Assert.That(layout.Tensors.Select(t => (t.Name, string.Join("x", t.Shape), t.Decay, t.Layer)).Order(),
            Is.EqualTo(schema.Tensors.Select(t => (t.Name, string.Join("x", t.Shape), t.Decay, t.Layer)).Order()));
        // The schema is in checkpoint order: a layer's Linears weight then bias, Q before K before V.
        Assert.That(schema.Tensors.Skip(5).Take(4).Select(t => t.Name), Is.EqualTo(new[]
        {
            "encoder.layer.0.attention.self.query.weight", "encoder.layer.0.attention.self.query.bias",
            "encoder.layer.0.attention.self.key.weight", "encoder.layer.0.attention.self.key.bias",
        }));
        // The encoder part is what a Hugging Face checkpoint holds: everything but head.*.
        Assert.That(schema.EncoderTensors.Select(t => t.Name), Is.EqualTo(schema.Tensors.Where(t => !t.Name.StartsWith("head.")).Select(t => t.Name)));
        Assert.That(schema.Tensors.Count - schema.EncoderTensors.Count(), Is.EqualTo(4));
        // Every typed name addresses a tensor of the layout (a typo in the schema's names would fail here).
        var typed = new List<string> { BertSchema.WordEmbeddings, BertSchema.PositionEmbeddings, BertSchema.TokenTypeEmbeddings,
            BertSchema.EmbeddingLayerNorm.Weight, BertSchema.EmbeddingLayerNorm.Bias, BertSchema.PoolerDense.Weight, BertSchema.PoolerDense.Bias,
            BertSchema.HeadDense(0).Weight, BertSchema.HeadOut.Weight, BertSchema.HeadOut.Bias };
        foreach (var l in schema.Layers)
        {
            typed.AddRange(l.Linears.SelectMany(x => new[] { x.Weight, x.Bias }));
            typed.AddRange([l.AttentionLayerNorm.Weight, l.AttentionLayerNorm.Bias, l.OutputLayerNorm.Weight, l.OutputLayerNorm.Bias]);
        }
        Assert.That(typed.Distinct().Count(), Is.EqualTo(layout.Tensors.Count - 1), "every tensor but head.dense.0.bias is named above");
        foreach (string n in typed) Assert.That(layout.Contains(n), n);
        // The QKV block is contiguous in the layout: (3C, C) weights, (3C) biases.
        var l0 = schema.Layers[0];
        Assert.That(layout[l0.Key.Weight].Offset, Is.EqualTo(layout[l0.Query.Weight].Offset + layout[l0.Query.Weight].Length));
        Assert.That(layout[l0.Value.Bias].Offset, Is.EqualTo(layout[l0.Key.Bias].Offset + layout[l0.Key.Bias].Length));
    }

    [Test]
    public void ASchemaWithoutAdapterHasNoHead()
    {
        var schema = BertSchema.Of(TinyBert(pooler: false));
        Assert.That(schema.HasHead, Is.False);
        Assert.That(schema.HasPooler, Is.False);
        Assert.That(schema.Tensors.Select(t => t.Name), Is.EqualTo(schema.EncoderTensors.Select(t => t.Name)));
        Assert.That(schema.Tensors.Select(t => t.Name), Has.None.StartsWith("pooler.").And.None.StartsWith("head."));
        Assert.That(schema.Tensors, Has.Count.EqualTo(5 + 16 * 2));
    }

    [Test]
    public void LayoutWithoutPoolerOrHiddenLayers()
    {
        var layout = new ParameterLayout(TinyBert(pooler: false), TinyHead(dense: 0, input: AdapterInput.Cls, hidden: []));
        Assert.That(layout.Contains("pooler.dense.weight"), Is.False);
        Assert.That(layout["head.out.weight"].Shape, Is.EqualTo(new[] { 1, 32 }));
        var e = Assert.Throws<KeyNotFoundException>(() => _ = layout["pooler.dense.weight"])!;
        Assert.That(e.Message, Does.Contain("pooler.dense.weight"));
    }

    private const string MiniLmConfig = """
    {
      "_name_or_path": "nreimers/MiniLM-L6-H384-uncased",
      "architectures": ["BertModel"],
      "attention_probs_dropout_prob": 0.1,
      "gradient_checkpointing": false,
      "hidden_act": "gelu",
      "hidden_dropout_prob": 0.1,
      "hidden_size": 384,
      "initializer_range": 0.02,
      "intermediate_size": 1536,
      "layer_norm_eps": 1e-12,
      "max_position_embeddings": 512,
      "model_type": "bert",
      "num_attention_heads": 12,
      "num_hidden_layers": 6,
      "pad_token_id": 0,
      "position_embedding_type": "absolute",
      "transformers_version": "4.8.2",
      "type_vocab_size": 2,
      "use_cache": true,
      "vocab_size": 30522
    }
    """;

    [Test]
    public void HfConfigJsonRoundTripsKeepingUnknownFields()
    {
        string dir = Path.Combine(Path.GetTempPath(), "fastrec-model-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "config.json");
            File.WriteAllText(path, MiniLmConfig);
            var c = BertConfig.FromJson(path);
            Assert.That((c.VocabSize, c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.IntermediateSize, c.HeadSize),
                Is.EqualTo((30522, 384, 6, 12, 1536, 32)));
            Assert.That(c.LayerNormEps, Is.EqualTo(1e-12));
            Assert.That(c.AddPoolingLayer, Is.True);
            var again = BertConfig.Parse(c.ToJson());
            Assert.That(again.ToJson(), Is.EqualTo(c.ToJson()));
            Assert.That(again.Extra!.Keys, Does.Contain("architectures").And.Contain("transformers_version"));
            Assert.That(c.ToJson(), Does.Contain("\"initializer_range\": 0.02"));

            File.WriteAllText(path, MiniLmConfig.Replace("\"num_attention_heads\": 12", "\"num_attention_heads\": 7"));
            var e = Assert.Throws<InvalidDataException>(() => BertConfig.FromJson(path))!;
            Assert.That(e.Message, Does.Contain(path).And.Contain("num_attention_heads (7)"));
            File.WriteAllText(path, "{ not json");
            e = Assert.Throws<InvalidDataException>(() => BertConfig.FromJson(path))!;
            Assert.That(e.Message, Does.Contain(path).And.Contain("not a valid BERT config.json"));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Test]
    public void InitRandomIsHfInitAndPureFunctionOfSeed()
    {
        using var backend = new FastRec.Kernels.Reference.ReferenceBackend();
        using var a = new RecModel(backend, TinyBert(), TinyHead());
        using var b = new RecModel(backend, TinyBert(), TinyHead());
        a.InitRandom(5); b.InitRandom(5);
        Assert.That(AllParams(a), Is.EqualTo(AllParams(b)));
        Assert.That(a.GetParameter("encoder.layer.0.attention.output.LayerNorm.weight"), Is.All.EqualTo(1f));
        Assert.That(a.GetParameter("encoder.layer.0.attention.output.LayerNorm.bias"), Is.All.EqualTo(0f));
        Assert.That(a.GetParameter("encoder.layer.0.intermediate.dense.bias"), Is.All.EqualTo(0f));
        Assert.That(a.GetParameter("embeddings.word_embeddings.weight").Take(32), Is.All.EqualTo(0f), "pad row");
        var w = a.GetParameter("encoder.layer.1.intermediate.dense.weight");
        double mean = w.Average(x => (double)x), std = Math.Sqrt(w.Average(x => (x - mean) * (x - mean)));
        Assert.That(std, Is.EqualTo(0.02).Within(0.002));
        Assert.That(mean, Is.EqualTo(0).Within(0.002));
        b.InitRandom(6);
        Assert.That(AllParams(b), Is.Not.EqualTo(AllParams(a)));
    }
}
