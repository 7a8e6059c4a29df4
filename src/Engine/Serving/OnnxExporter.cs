// Exports a fine-tuned (or distilled) recommender, encoder + head, as one ONNX graph that ONNX Runtime, Triton or a browser runs.
using FastRec.Engine.Model;
using FastRec.Engine.Training;
using FastRec.Engine.Weights;
using FastRec.Kernels;
using Google.Protobuf;
using Onnx;

namespace FastRec.Engine.Serving;

/// <summary>
/// Writes a <see cref="Recommender"/>'s model as one ONNX graph (opset 17, standard operators only) that computes what
/// <see cref="Predictor.ScoreLogits"/> and <c>Recommender.PredictLogits</c> compute, in evaluation mode (no dropout):
/// <list type="bullet">
/// <item>inputs <c>input_ids</c>, <c>attention_mask</c>, <c>token_type_ids</c>: int64 [batch, sequence], the standard BERT
/// inputs ([CLS] context [SEP] candidate [SEP], token types 0 then 1, mask 1 on real tokens, padding anywhere the mask is 0);
/// and, when the head takes D dense features, <c>dense_features</c>: float [batch, D] RAW values (the graph standardises them
/// with the training set's mean and std, as the Predictor does);</item>
/// <item>output <c>logits</c>: float [batch], the head's output before σ (probability = 1 / (1 + exp(−logit))).</item>
/// </list>
/// <para>The graph: embeddings (word + position + token type, LayerNormalization), per layer Q/K/V MatMuls, scaled dot
/// products with masked keys at −1e9 (so they get exactly 0 after Softmax, as in the engine), the output projection, post-LN
/// residuals, the erf GELU (or ReLU) feed-forward; then the head input (pooler tanh(W·h_CLS + b), h_CLS, or the attention-masked
/// mean Σ mask·h / max(Σ mask, 1e-9)), [vector | standardised dense], the MLP and the logit. Weights keep their Hugging Face
/// names and [out, in] layout (a Transpose feeds each MatMul; ONNX Runtime folds it at load). One file holds at most 2 GiB.</para>
/// <para>Model metadata (<c>metadata_props</c>): <c>fastrec.max_length</c>, <c>fastrec.dense_features</c> (names in order),
/// <c>fastrec.head_input</c>, <c>fastrec.lower_case</c>.</para>
/// </summary>
public static class OnnxExporter
{
    /// <summary>The ONNX operator set the graph uses.</summary>
    public const int Opset = 17;
    /// <summary>Input and output names.</summary>
    public const string InputIds = "input_ids", AttentionMask = "attention_mask", TokenTypeIds = "token_type_ids",
        DenseFeatures = "dense_features", Logits = "logits";

    private const long MaxBytes = int.MaxValue - (16L << 20);   // protobuf's 2 GiB message limit, less room for the graph

    /// <summary>Writes <paramref name="rec"/>'s graph to <paramref name="path"/> (atomically: a failed write leaves no partial file).</summary>
    /// <exception cref="InvalidDataException">the model cannot be exported (unsupported activation or head input, or too large);
    /// the message names the field.</exception>
    public static void Save(Recommender rec, string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var model = Build(rec);
        AtomicFile.Write(path, s => model.WriteTo(s));
    }

    /// <summary>The serialised ONNX model of <paramref name="rec"/>.</summary>
    /// <exception cref="InvalidDataException">see <see cref="Save"/>.</exception>
    public static byte[] Export(Recommender rec) => Build(rec).ToByteArray();

    internal static ModelProto Build(Recommender rec)
    {
        ArgumentNullException.ThrowIfNull(rec);
        var m = rec.Model;
        var bert = m.Bert;
        var head = m.Adapter;
        // Everything that cannot be expressed is refused before any tensor is copied.
        var ffn = bert.FeedForwardActivation;
        if (!Enum.IsDefined(head.Input))
            throw new InvalidDataException($"the head's input {head.Input} cannot be exported to ONNX (supported: Pooler, Cls, Mean)");
        if (head.Activation is not (Activation.Gelu or Activation.Relu or Activation.Tanh or Activation.Identity))
            throw new InvalidDataException($"the head's activation {head.Activation} cannot be exported to ONNX (supported: Gelu, Relu, Tanh, Identity)");
        if (rec.Scaler.Names.Length != head.DenseFeatures)
            throw new InvalidDataException($"the head takes {head.DenseFeatures} dense features but the scaler has {rec.Scaler.Names.Length}");
        long bytes = 4L * m.Layout.TotalSize;
        if (bytes > MaxBytes)
            throw new InvalidDataException($"the model has {bytes / (1 << 20)} MiB of weights, more than one ONNX file holds (2 GiB)");

        var g = new GraphBuilder(m);
        int C = bert.HiddenSize, NH = bert.NumAttentionHeads, HS = bert.HeadSize, D = head.DenseFeatures;
        g.Input(InputIds, TensorProto.Types.DataType.Int64, "batch", "sequence");
        g.Input(AttentionMask, TensorProto.Types.DataType.Int64, "batch", "sequence");
        g.Input(TokenTypeIds, TensorProto.Types.DataType.Int64, "batch", "sequence");
        if (D > 0) g.Input(DenseFeatures, TensorProto.Types.DataType.Float, "batch", D);

        // Embeddings: (word[id] + pos[t]) + type[tt], then LayerNorm.                                              (B, T, C)
        string seqLen = g.Node("Shape", [InputIds], "seq_len", GraphBuilder.Int("start", 1), GraphBuilder.Int("end", 2));   // [T]
        string pos = g.Node("Slice", [g.Param("embeddings.position_embeddings.weight"), g.Longs("zero_1d", [0]), seqLen, g.Longs("zero_1d", [0])], "pos_emb");
        string word = g.Node("Gather", [g.Param(BertSchema.WordEmbeddings), InputIds], "word_emb");
        string type = g.Node("Gather", [g.Param("embeddings.token_type_embeddings.weight"), TokenTypeIds], "type_emb");
        string x = g.Node("Add", [g.Node("Add", [word, pos], "word_pos"), type], "emb_sum");
        x = g.LayerNorm(x, "embeddings.LayerNorm", "emb");

        // Additive key mask (B, 1, 1, T): 0 on real tokens, −1e9 on padding.
        string maskF = g.Node("Cast", [AttentionMask], "mask_f", GraphBuilder.Int("to", (long)TensorProto.Types.DataType.Float));   // (B, T)
        string negMask = g.Node("Mul", [g.Node("Sub", [g.Scalar("one", 1f), maskF], "mask_inv"), g.Scalar("neg_big", -1e9f)], "mask_add");
        string keyMask = g.Node("Unsqueeze", [negMask, g.Longs("axes_1_2", [1, 2])], "key_mask");
        string heads4 = g.Longs("shape_heads", [0, 0, NH, HS]), merged3 = g.Longs("shape_merged", [0, 0, C]);
        string scale = g.Scalar("attn_scale", 1f / MathF.Sqrt(HS));

        for (int l = 0; l < bert.NumHiddenLayers; l++)
        {
            var s = BertSchema.Layer(l);
            string n = $"l{l}_";
            string Heads(LinearNames lin, string name, int[] perm) => g.Node("Transpose", [g.Node("Reshape", [g.Linear(x, lin.Prefix, n + name), heads4], n + name + "_4d")],
                n + name + "_heads", GraphBuilder.Ints("perm", perm));
            string q = Heads(s.Query, "query", [0, 2, 1, 3]);                                                        // (B, NH, T, HS)
            string k = Heads(s.Key, "key", [0, 2, 3, 1]);                                                            // (B, NH, HS, T)
            string v = Heads(s.Value, "value", [0, 2, 1, 3]);                                                        // (B, NH, T, HS)
            string scores = g.Node("Add", [g.Node("Mul", [g.Node("MatMul", [q, k], n + "qk"), scale], n + "qk_scaled"), keyMask], n + "scores");   // (B, NH, T, T)
            string probs = g.Node("Softmax", [scores], n + "probs", GraphBuilder.Int("axis", -1));
            string ctx = g.Node("Transpose", [g.Node("MatMul", [probs, v], n + "ctx_heads")], n + "ctx_t", GraphBuilder.Ints("perm", [0, 2, 1, 3]));
            ctx = g.Node("Reshape", [ctx, merged3], n + "ctx");                                                      // (B, T, C)
            string attnOut = g.Linear(ctx, s.AttentionOutput.Prefix, n + "attn_out");
            string h1 = g.LayerNorm(g.Node("Add", [x, attnOut], n + "res1"), s.AttentionLayerNorm.Prefix, n + "h1");
            string inter = g.Activation(g.Linear(h1, s.Intermediate.Prefix, n + "inter"), ffn, n + "inter_act");  // (B, T, F)
            string output = g.Linear(inter, s.Output.Prefix, n + "ffn_out");
            x = g.LayerNorm(g.Node("Add", [h1, output], n + "res2"), s.OutputLayerNorm.Prefix, n + "h2");              // (B, T, C)
        }

        // Head input (B, C).
        string vec;
        switch (head.Input)
        {
            case AdapterInput.Pooler:
                vec = g.Node("Tanh", [g.Linear(g.Cls(x), BertSchema.PoolerDense.Prefix, "pooler")], "pooled");
                break;
            case AdapterInput.Cls:
                vec = g.Cls(x);
                break;
            default:   // Mean: w[b, t] = mask / max(Σ_t mask, 1e-9); pooled = w·h                                  (B, 1, T)·(B, T, C)
                string count = g.Node("Max", [g.Node("ReduceSum", [maskF, g.Longs("axes_1", [1])], "mask_count", GraphBuilder.Int("keepdims", 1)), g.Scalar("tiny", 1e-9f)], "mask_count_safe");
                string w = g.Node("Unsqueeze", [g.Node("Div", [maskF, count], "mean_w"), g.Longs("axes_1", [1])], "mean_w_3d");
                vec = g.Node("Squeeze", [g.Node("MatMul", [w, x], "mean_3d"), g.Longs("axes_1", [1])], "mean_pooled");
                break;
        }
        string hx = vec;
        if (D > 0)
        {
            string std = g.Node("Div", [g.Node("Sub", [DenseFeatures, g.Floats("dense.mean", rec.Scaler.Mean, D)], "dense_centered"), g.Floats("dense.std", rec.Scaler.Std, D)], "dense_std");
            hx = g.Node("Concat", [vec, std], "head_in", GraphBuilder.Int("axis", 1));                               // (B, C + D)
        }
        for (int j = 0; j < head.HiddenSizes.Length; j++)
            hx = g.Activation(g.Linear(hx, BertSchema.HeadDense(j).Prefix, $"head_{j}"), head.Activation, $"head_{j}_act");    // (B, H_j)
        string logit = g.Linear(hx, BertSchema.HeadOut.Prefix, "head_out");                                                        // (B, 1)
        g.Node("Squeeze", [logit, g.Longs("axes_1", [1])], Logits);                                                  // (B)
        g.Output(Logits, TensorProto.Types.DataType.Float, "batch");

        var model = new ModelProto
        {
            IrVersion = 8, ProducerName = "FastRec", ProducerVersion = EngineInfo.Version, Graph = g.Graph,
            DocString = $"FastRec recommender: BERT encoder (L={bert.NumHiddenLayers}, C={C}, NH={NH}) + head ({head.Input}, hidden [{string.Join(", ", head.HiddenSizes)}], D={D}) -> logits",
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        void Meta(string key, string value) => model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        Meta("fastrec.max_length", rec.Text.MaxLength.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Meta("fastrec.dense_features", string.Join(",", rec.Scaler.Names));
        Meta("fastrec.head_input", head.Input.ToString());
        Meta("fastrec.lower_case", rec.Text.LowerCase ? "true" : "false");
        return model;
    }

    /// <summary>Nodes, initializers and value infos of the graph being built; each initializer is added once.</summary>
    private sealed class GraphBuilder(RecModel model)
    {
        public GraphProto Graph { get; } = new() { Name = "fastrec" };
        private readonly HashSet<string> _inits = new(StringComparer.Ordinal);

        public static AttributeProto Int(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };
        public static AttributeProto Ints(string name, int[] v)
        {
            var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
            foreach (int i in v) a.Ints.Add(i);
            return a;
        }
        private static AttributeProto Float(string name, float v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v };

        /// <summary>Adds a node with one output named <paramref name="output"/>; returns it.</summary>
        public string Node(string op, string[] inputs, string output, params AttributeProto[] attrs)
        {
            var n = new NodeProto { OpType = op, Name = output + "/" + op };
            n.Input.AddRange(inputs);
            n.Output.Add(output);
            n.Attribute.AddRange(attrs);
            Graph.Node.Add(n);
            return output;
        }

        private string Init(string name, TensorProto.Types.DataType type, ByteString raw, long[] dims)
        {
            if (!_inits.Add(name)) return name;
            var t = new TensorProto { Name = name, DataType = (int)type, RawData = raw };
            t.Dims.AddRange(dims);
            Graph.Initializer.Add(t);
            return name;
        }

        public string Floats(string name, float[] data, params long[] dims)
        {
            var bytes = new byte[4 * data.Length];
            FloatFormats.F32ToBytes(data, bytes);
            return Init(name, TensorProto.Types.DataType.Float, UnsafeByteOperations.UnsafeWrap(bytes), dims);
        }

        public string Scalar(string name, float value) => Floats(name, [value]);

        public string Longs(string name, long[] values)
        {
            var bytes = new byte[8 * values.Length];
            for (int i = 0; i < values.Length; i++) System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(8 * i), values[i]);
            return Init(name, TensorProto.Types.DataType.Int64, UnsafeByteOperations.UnsafeWrap(bytes), [values.Length]);
        }

        /// <summary>The model's tensor <paramref name="name"/> under its Hugging Face name and shape.</summary>
        public string Param(string name)
        {
            var info = model.Layout[name];
            return Floats(name, model.GetParameter(name), [.. info.Shape.Select(d => (long)d)]);
        }

        /// <summary>y = x·Wᵀ + b for the model's <paramref name="prefix"/>.weight [out, in] and .bias [out].</summary>
        public string Linear(string x, string prefix, string output)
        {
            string wt = Node("Transpose", [Param(prefix + ".weight")], prefix + ".weight_t", Ints("perm", [1, 0]));   // [in, out]
            return Node("Add", [Node("MatMul", [x, wt], output + "_mm"), Param(prefix + ".bias")], output);
        }

        public string LayerNorm(string x, string prefix, string output)
            => Node("LayerNormalization", [x, Param(prefix + ".weight"), Param(prefix + ".bias")], output,
                    Int("axis", -1), Float("epsilon", (float)model.Bert.LayerNormEps));

        /// <summary>h[:, 0, :] (B, C).</summary>
        public string Cls(string hidden) => Node("Gather", [hidden, ScalarLong("index_0", 0)], "cls", Int("axis", 1));

        private string ScalarLong(string name, long v)
        {
            var bytes = BitConverter.GetBytes(v);
            if (!BitConverter.IsLittleEndian) Array.Reverse(bytes);
            return Init(name, TensorProto.Types.DataType.Int64, UnsafeByteOperations.UnsafeWrap(bytes), []);
        }

        public string Activation(string x, Activation act, string output) => act switch
        {
            Kernels.Activation.Gelu => Node("Mul", [Node("Mul", [x, Node("Add", [Node("Erf", [Node("Div", [x, Scalar("sqrt2", MathF.Sqrt(2f))], output + "_div")], output + "_erf"), Scalar("one", 1f)], output + "_1p")], output + "_x1p"), Scalar("half", 0.5f)], output),
            Kernels.Activation.Relu => Node("Relu", [x], output),
            Kernels.Activation.Tanh => Node("Tanh", [x], output),
            Kernels.Activation.Identity => x,
            _ => throw new InvalidDataException($"activation {act} cannot be exported to ONNX"),
        };

        private static TypeProto Tensor(TensorProto.Types.DataType type, object[] dims)
        {
            var shape = new TensorShapeProto();
            foreach (var d in dims)
                shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d, System.Globalization.CultureInfo.InvariantCulture) });
            return new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } };
        }

        public void Input(string name, TensorProto.Types.DataType type, params object[] dims) => Graph.Input.Add(new ValueInfoProto { Name = name, Type = Tensor(type, dims) });
        public void Output(string name, TensorProto.Types.DataType type, params object[] dims) => Graph.Output.Add(new ValueInfoProto { Name = name, Type = Tensor(type, dims) });
    }
}
