// The int8 peer model: MiniLM's model.onnx rewritten as quantize_dynamic rewrites it, run by ONNX Runtime against the fp32
// original; the per-column weight quantisation by hand; bad input.
using FastRec.Engine.Serving;
using FastRec.Engine.Weights;
using FastRec.Kernels;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;

namespace FastRec.Tests.Serving;

public class OnnxDynamicQuantizerTests
{
    [Test]
    public void PerColumnWeightsAreSymmetricInt8ByHand()
    {
        // W [K = 3, N = 2]: column 0 max 2 -> scale 2/127, column 1 all zero -> scale 1, q 0.
        float[] w = [1f, 0f, -2f, 0f, 0.5f, 0f];
        var (q, s) = OnnxDynamicQuantizer.QuantizePerColumn(w, 3, 2, "w");
        Assert.That(s, Is.EqualTo(new[] { 2f / 127f, 1f }));
        Assert.That(q, Is.EqualTo(new sbyte[] { 64, 0, -127, 0, 32, 0 }));   // 63.5 -> 64 (nearest even), 31.75 -> 32
        var e = Assert.Throws<InvalidDataException>(() => OnnxDynamicQuantizer.QuantizePerColumn([1f, float.NaN], 1, 2, "dense"))!;
        Assert.That(e.Message, Does.Contain("dense[0, 1]").And.Contain("not finite"));
    }

    [Test]
    public void MiniLmInt8RunsInOnnxRuntimeCloseToFp32()
    {
        var fp32 = MiniLmPackage.ReadOnnx();
        var r = OnnxDynamicQuantizer.Quantize(fp32);
        Assert.That(r.QuantizedMatMuls, Is.EqualTo(6 * 6), "the six Linears of each layer (the pooler is a Gemm node and stays fp32)");
        Assert.That(r.WeightBytesAfter, Is.LessThan(r.WeightBytesBefore / 3));
        var graph = ModelProto.Parser.ParseFrom(r.Model).Graph;
        Assert.That(graph.Node.Count(n => n.OpType == "MatMulInteger"), Is.EqualTo(36));
        Assert.That(graph.Node.Count(n => n.OpType == "Gemm"), Is.EqualTo(1), "the pooler");
        Assert.That(graph.Node.Count(n => n.OpType == "MatMul"), Is.EqualTo(12), "the attention products stay fp32");

        using var so = new SessionOptions { IntraOpNumThreads = 1 };
        using var a = new InferenceSession(fp32, so);
        using var b = new InferenceSession(r.Model, so);
        const int B = 2, T = 12;
        var ids = new long[B * T]; var mask = new long[B * T]; var types = new long[B * T];
        for (int i = 0; i < ids.Length; i++) { ids[i] = i % T == 0 ? 101 : i % T == T - 1 ? 102 : 1000 + (long)(Rng.Hash(3, (ulong)i) % 20000); mask[i] = 1; }
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids, [B, T])),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(mask, [B, T])),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(types, [B, T])),
        };
        float[] Hidden(InferenceSession s)
        {
            using var outs = s.Run(inputs);
            return outs.First(o => o.Name == "last_hidden_state").AsTensor<float>().ToArray();
        }
        var h32 = Hidden(a); var h8 = Hidden(b);
        double dot = 0, n32 = 0, n8 = 0, maxErr = 0, rms = Math.Sqrt(h32.Average(x => (double)x * x));
        for (int i = 0; i < h32.Length; i++)
        {
            dot += (double)h32[i] * h8[i]; n32 += (double)h32[i] * h32[i]; n8 += (double)h8[i] * h8[i];
            maxErr = Math.Max(maxErr, Math.Abs((double)h32[i] - h8[i]));
        }
        double cos = dot / Math.Sqrt(n32 * n8);
        Assert.That(cos, Is.GreaterThan(0.98), "int8 hidden states point where the fp32 ones do");
        Assert.That(maxErr, Is.GreaterThan(0), "int8 is an approximation: zero error would mean nothing was quantised");
        TestContext.Out.WriteLine($"int8 vs fp32 last_hidden_state: cosine {cos:F5}, max |diff| / rms {maxErr / rms:E2}");
    }

    [Test]
    public void WhatIsNotAQuantisableModelIsRefused()
    {
        var e = Assert.Throws<InvalidDataException>(() => OnnxDynamicQuantizer.Quantize([1, 2, 3, 4, 5]))!;
        Assert.That(e.Message, Does.Contain("ONNX"));
        var empty = new ModelProto { Graph = new GraphProto { Name = "g" } };
        empty.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        e = Assert.Throws<InvalidDataException>(() => OnnxDynamicQuantizer.Quantize(empty.ToByteArray()))!;
        Assert.That(e.Message, Does.Contain("no MatMul"));
    }
}
