// Builds small synthetic BERT-shaped ONNX graphs (two export styles) and a non-BERT graph for converter tests.
using FastRec.Engine.Weights;
using Google.Protobuf;
using Onnx;

namespace FastRec.Tests.Weights;

internal static class OnnxTestGraphs
{
    public const int V = 10, C = 4, NH = 2, F = 8, P = 6, TV = 2, L = 2;

    /// <summary>The HF value of element [r, c] of tensor <paramref name="name"/>: distinct per tensor and position.</summary>
    public static float Value(string name, int r, int c) => (name.GetHashCode(StringComparison.Ordinal) % 1000) * 1e-3f + r * 0.01f + c * 0.0001f;

    /// <summary>HF-layout data of a tensor with <paramref name="shape"/>.</summary>
    public static float[] Hf(string name, int[] shape)
    {
        int rows = shape.Length == 2 ? shape[0] : 1, cols = shape[^1];
        var a = new float[rows * cols];
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) a[r * cols + c] = Value(name, r, c);
        return a;
    }

    private static TensorProto Floats(string name, float[] data, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        var bytes = new byte[4 * data.Length];
        FloatFormats.F32ToBytes(data, bytes);
        t.RawData = ByteString.CopyFrom(bytes);
        return t;
    }

    private static TensorProto Longs(string name, params long[] v)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.Add(v.Length);
        t.Int64Data.AddRange(v);
        return t;
    }

    private static NodeProto Node(string op, string[] inputs, string output, params AttributeProto[] attrs)
    {
        var n = new NodeProto { OpType = op, Name = op + "_" + output };
        n.Input.AddRange(inputs);
        n.Output.Add(output);
        n.Attribute.AddRange(attrs);
        return n;
    }

    private static AttributeProto Int(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };
    private static AttributeProto Float(string name, float v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v };

    /// <summary>
    /// A BERT-shaped graph in one of two export styles.
    /// <para>pytorch (opset 13): HF-named embeddings and biases, anonymous MatMul weights stored [in, out], decomposed
    /// LayerNorm with eps 1e-12, Reshape shapes from Concat(dynamic, dynamic, NH, HS), Gemm pooler with transB = 1.</para>
    /// <para>optimum (opset 17): prefix "bert.", LayerNormalization nodes (eps 1e-5), Transpose(weight [out, in]) → MatMul,
    /// anonymous biases (named by graph order), a constant Reshape shape [0, 0, NH, HS], no pooler.</para>
    /// </summary>
    public static byte[] Bert(bool optimumStyle)
    {
        var g = new GraphProto { Name = "bert" };
        string pre = optimumStyle ? "bert." : "";
        int anon = 100;
        string x = "x";
        g.Input.Add(new ValueInfoProto { Name = "input_ids" });
        void Init(TensorProto t) => g.Initializer.Add(t);
        foreach (var (n, rows) in new[] { ("word_embeddings", V), ("position_embeddings", P), ("token_type_embeddings", TV) })
            Init(Floats($"{pre}embeddings.{n}.weight", Hf($"embeddings.{n}.weight", [rows, C]), rows, C));
        g.Node.Add(Node("Gather", [$"{pre}embeddings.word_embeddings.weight", "input_ids"], x));
        Init(Floats($"{pre}embeddings.position_ids", [0, 1, 2, 3, 4, 5], 1, P));   // an HF buffer the converter must skip
        x = LayerNorm(x, "embeddings.LayerNorm");

        string LayerNorm(string input, string hf)
        {
            Init(Floats(pre + hf + ".weight", Hf(hf + ".weight", [C]), C));
            Init(Floats(pre + hf + ".bias", Hf(hf + ".bias", [C]), C));
            string o = "ln_" + hf;
            if (optimumStyle)
            {
                g.Node.Add(Node("LayerNormalization", [input, pre + hf + ".weight", pre + hf + ".bias"], o, Float("epsilon", 1e-5f), Int("axis", -1)));
                return o;
            }
            g.Node.Add(Node("ReduceMean", [input], o + "_mean"));
            g.Node.Add(Node("Sub", [input, o + "_mean"], o + "_d"));
            g.Node.Add(Node("Pow", [o + "_d", "two"], o + "_sq"));
            g.Node.Add(Node("ReduceMean", [o + "_sq"], o + "_var"));
            var eps = new NodeProto { OpType = "Constant", Name = "eps_" + o };
            eps.Output.Add(o + "_eps");
            eps.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = Floats("", [1e-12f]) });
            g.Node.Add(eps);
            g.Node.Add(Node("Add", [o + "_var", o + "_eps"], o + "_ve"));
            g.Node.Add(Node("Sqrt", [o + "_ve"], o + "_std"));
            g.Node.Add(Node("Div", [o + "_d", o + "_std"], o + "_n"));
            g.Node.Add(Node("Mul", [o + "_n", pre + hf + ".weight"], o + "_s"));
            g.Node.Add(Node("Add", [o + "_s", pre + hf + ".bias"], o));
            return o;
        }

        string Linear(string input, string hf, int outF, int inF)
        {
            var w = Hf(hf + ".weight", [outF, inF]);
            string wName, matIn;
            if (optimumStyle)
            {
                wName = $"onnx::W_{anon++}";
                Init(Floats(wName, w, outF, inF));              // [out, in], transposed in the graph
                g.Node.Add(Node("Transpose", [wName], wName + "_t"));
                matIn = wName + "_t";
            }
            else
            {
                wName = $"onnx::MatMul_{anon++}";
                var t = new float[w.Length];
                for (int o = 0; o < outF; o++) for (int i = 0; i < inF; i++) t[i * outF + o] = w[o * inF + i];
                Init(Floats(wName, t, inF, outF));              // [in, out]: what constant folding stores
                matIn = wName;
            }
            string bName = optimumStyle ? $"onnx::Add_{anon++}" : pre + hf + ".bias";
            Init(Floats(bName, Hf(hf + ".bias", [outF]), outF));
            g.Node.Add(Node("MatMul", [input, matIn], "mm_" + hf));
            g.Node.Add(optimumStyle ? Node("Add", ["mm_" + hf, bName], "lin_" + hf) : Node("Add", [bName, "mm_" + hf], "lin_" + hf));
            return "lin_" + hf;
        }

        Init(new TensorProto { Name = "two", DataType = (int)TensorProto.Types.DataType.Float, FloatData = { 2f } });
        Init(Longs("heads", NH));
        Init(Longs("head_size", C / NH));
        Init(Longs("shape4", 0, 0, NH, C / NH));
        for (int l = 0; l < L; l++)
        {
            string p = $"encoder.layer.{l}.";
            var q = Linear(x, p + "attention.self.query", C, C);
            var k = Linear(x, p + "attention.self.key", C, C);
            var v = Linear(x, p + "attention.self.value", C, C);
            foreach (var t in new[] { q, k, v })
            {
                if (optimumStyle) g.Node.Add(Node("Reshape", [t, "shape4"], t + "_r"));
                else
                {
                    g.Node.Add(Node("Shape", [t], t + "_shape"));
                    g.Node.Add(Node("Concat", [t + "_shape", t + "_shape", "heads", "head_size"], t + "_cat", Int("axis", 0)));
                    g.Node.Add(Node("Reshape", [t, t + "_cat"], t + "_r"));
                }
            }
            g.Node.Add(Node("MatMul", [q + "_r", k + "_r"], p + "scores"));    // activation x activation: not a linear layer
            g.Node.Add(Node("Softmax", [p + "scores"], p + "probs"));
            g.Node.Add(Node("MatMul", [p + "probs", v + "_r"], p + "ctx"));
            var ao = Linear(p + "ctx", p + "attention.output.dense", C, C);
            g.Node.Add(Node("Add", [ao, x], p + "res1"));
            var h = LayerNorm(p + "res1", p + "attention.output.LayerNorm");
            var inter = Linear(h, p + "intermediate.dense", F, C);
            g.Node.Add(Node("Erf", [inter], inter + "_erf"));
            var o = Linear(inter + "_erf", p + "output.dense", C, F);
            g.Node.Add(Node("Add", [o, h], p + "res2"));
            x = LayerNorm(p + "res2", p + "output.LayerNorm");
        }
        g.Output.Add(new ValueInfoProto { Name = x });
        if (!optimumStyle)
        {
            Init(Floats("pooler.dense.weight", Hf("pooler.dense.weight", [C, C]), C, C));
            Init(Floats("pooler.dense.bias", Hf("pooler.dense.bias", [C]), C));
            g.Node.Add(Node("Gather", [x, "zero"], "cls", Int("axis", 1)));
            g.Node.Add(Node("Gemm", ["cls", "pooler.dense.weight", "pooler.dense.bias"], "pooled", Int("transB", 1)));
            g.Node.Add(Node("Tanh", ["pooled"], "pooler_output"));
            g.Output.Add(new ValueInfoProto { Name = "pooler_output" });
        }
        var m = new ModelProto { IrVersion = 8, ProducerName = "fastrec-tests", Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = optimumStyle ? 17 : 13 });
        return m.ToByteArray();
    }

    /// <summary>A small MLP graph: MatMul + Add + Relu, nothing BERT about it.</summary>
    public static byte[] NotBert()
    {
        var g = new GraphProto { Name = "mlp" };
        g.Initializer.Add(Floats("fc.weight", new float[6], 2, 3));
        g.Initializer.Add(Floats("fc.bias", new float[3], 3));
        g.Node.Add(Node("MatMul", ["x", "fc.weight"], "h"));
        g.Node.Add(Node("Add", ["h", "fc.bias"], "z"));
        g.Node.Add(Node("Relu", ["z"], "y"));
        var m = new ModelProto { IrVersion = 8, Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Version = 13 });
        return m.ToByteArray();
    }
}
