// Converts a BERT encoder exported to ONNX into Hugging Face tensors and config by following the graph.
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using FastRec.Engine.Model;
using Google.Protobuf;
using Onnx;

namespace FastRec.Engine.Weights;

/// <summary>A BERT encoder recovered from an ONNX graph: HF config, HF-named tensors in HF layout, and what was done.</summary>
public sealed class ConvertedBert
{
    /// <summary>The derived config.json.</summary>
    public required BertConfig Config { get; init; }
    /// <summary>Tensors in <see cref="BertSchema.EncoderTensors"/> order, HF names and [out, in] layout.</summary>
    public required IReadOnlyList<(TensorSpec Spec, float[] Data)> Tensors { get; init; }
    /// <summary>Human-readable notes (how weights were named, the opset, what was ignored).</summary>
    public required IReadOnlyList<string> Notes { get; init; }
    /// <summary>Graph outputs of the ONNX model (e.g. last_hidden_state and the pooler's output).</summary>
    public required IReadOnlyList<string> GraphOutputs { get; init; }
}

/// <summary>
/// Reads an ONNX BERT encoder (PyTorch/HF export, opsets 11 to 17, with or without pooler) and recovers the Hugging Face
/// checkpoint: initializers that keep HF names are taken by name; the usually anonymous MatMul weights (stored [in, out])
/// are named by following the graph to the Add whose bias has the HF name (falling back to the Q, K, V, attention output,
/// intermediate, output order inside a layer) and transposed to [out, in]. The config is derived from the tensor shapes,
/// the attention Reshape constants (heads), and the LayerNorm epsilon constant.
/// </summary>
public static partial class OnnxBertConverter
{
    private const int FloatType = (int)TensorProto.Types.DataType.Float;

    /// <summary>Converts the ONNX file at <paramref name="path"/>.</summary>
    public static ConvertedBert Convert(string path) => Convert(File.ReadAllBytes(path), path);

    /// <summary>Converts ONNX bytes; <paramref name="sourceName"/> names the source in messages.</summary>
    public static ConvertedBert Convert(byte[] onnx, string sourceName)
    {
        ModelProto model;
        try { model = ModelProto.Parser.ParseFrom(onnx); }
        catch (InvalidProtocolBufferException e) { throw new OnnxFormatException(sourceName, null, $"not an ONNX model: {e.Message}", e); }
        if (model.Graph is null) throw new OnnxFormatException(sourceName, null, "not an ONNX model: no graph");
        return new GraphReader(model, sourceName).Convert();
    }

    [GeneratedRegex(@"^encoder\.layer\.(\d+)\.")]
    private static partial Regex LayerIndex();

    private sealed class GraphReader
    {
        private readonly ModelProto _model;
        private readonly GraphProto _g;
        private readonly string _src;
        private readonly Dictionary<string, TensorProto> _consts = new(StringComparer.Ordinal);
        private readonly Dictionary<string, NodeProto> _producer = new(StringComparer.Ordinal);
        private readonly Dictionary<string, List<NodeProto>> _consumers = new(StringComparer.Ordinal);
        private readonly List<string> _notes = [];
        private string _prefix = "";

        public GraphReader(ModelProto model, string src)
        {
            _model = model; _g = model.Graph; _src = src;
            foreach (var t in _g.Initializer) _consts[t.Name] = t;
            foreach (var n in _g.Node)
            {
                foreach (var o in n.Output) _producer[o] = n;
                foreach (var i in n.Input)
                {
                    if (!_consumers.TryGetValue(i, out var l)) _consumers[i] = l = [];
                    l.Add(n);
                }
                if (n.OpType == "Constant" && n.Output.Count == 1)
                {
                    var v = n.Attribute.FirstOrDefault(a => a.Name == "value");
                    if (v?.T is not null) _consts[n.Output[0]] = v.T;
                }
            }
        }

        public ConvertedBert Convert()
        {
            var opset = _model.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx");
            _notes.Add($"ONNX ir_version {_model.IrVersion}, opset {opset?.Version.ToString(CultureInfo.InvariantCulture) ?? "?"}, producer {_model.ProducerName} {_model.ProducerVersion}");
            if (opset is not null && (opset.Version < 11 || opset.Version > 17))
                _notes.Add($"opset {opset.Version} is outside the tested range 11..17");

            FindPrefix();
            var named = new Dictionary<string, float[]>(StringComparer.Ordinal);
            var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal);

            // 1. Initializers that keep their HF names (embeddings, biases, LayerNorms, sometimes the pooler).
            foreach (var t in _g.Initializer)
            {
                string? hf = HfName(t.Name);
                if (hf is null || hf.EndsWith("position_ids", StringComparison.Ordinal)) continue;
                if (LinearWeightUse(t.Name)) continue;   // a weight consumed by MatMul/Gemm: handled with its layout below
                named[hf] = Floats(t, hf);
                shapes[hf] = Dims(t, hf);
            }

            // 2. Linear layers: MatMul (weight [in, out]) or Gemm (transB decides), named by their bias.
            var linears = FindLinears();
            // Linears named outside BertModel (a task head such as FastRec's head.* or HF's classifier.*) are not the encoder's.
            var heads = linears.Where(l => IsOtherModule(l.WeightName) || (l.BiasName is not null && IsOtherModule(l.BiasName))).ToList();
            if (heads.Count > 0)
            {
                linears = linears.Except(heads).ToList();
                _notes.Add($"ignored {heads.Count} linear layers outside the encoder: {string.Join(", ", heads.Take(5).Select(h => h.WeightName))}");
            }
            var unnamed = new List<Linear>();
            foreach (var lin in linears)
            {
                string? weightName = null;
                if (lin.BiasName is not null && HfName(lin.BiasName) is { } hb && hb.EndsWith(".bias", StringComparison.Ordinal))
                    weightName = hb[..^".bias".Length] + ".weight";
                else if (HfName(lin.WeightName) is { } hw && hw.EndsWith(".weight", StringComparison.Ordinal))
                    weightName = hw;
                if (weightName is null) { unnamed.Add(lin); continue; }
                Put(weightName, lin);
            }
            int anonymous = linears.Count(l => HfName(l.WeightName) is null);
            if (anonymous > unnamed.Count) _notes.Add($"named {anonymous - unnamed.Count} anonymous MatMul/Gemm weights by the bias their output feeds");

            // 3. Structure: layers, then fall back to graph order for weights whose bias is anonymous too.
            int layers = 0;
            foreach (string k in named.Keys.Concat(linears.Where(l => l.BiasName is not null).Select(l => HfName(l.BiasName!) ?? "")))
            {
                var m = LayerIndex().Match(k);
                if (m.Success) layers = Math.Max(layers, int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) + 1);
            }
            // A BERT encoder at all? Refuse with everything that is missing.
            var required = new List<string>
            {
                BertSchema.WordEmbeddings, BertSchema.PositionEmbeddings, BertSchema.TokenTypeEmbeddings,
                BertSchema.EmbeddingLayerNorm.Weight, BertSchema.EmbeddingLayerNorm.Bias,
            };
            var lacking = required.Where(r => !named.ContainsKey(r)).ToList();
            if (layers == 0) lacking.Add("encoder.layer.0.* (no encoder layer)");
            if (lacking.Count > 0) throw Refuse($"missing {string.Join(", ", lacking)}");

            if (unnamed.Count > 0)
            {
                var missing = new List<string>();
                for (int i = 0; i < layers; i++)
                    foreach (var lin in BertSchema.Layer(i).Linears)
                        if (!named.ContainsKey(lin.Weight)) missing.Add(lin.Weight);
                if (named.ContainsKey(BertSchema.PoolerDense.Bias) && !named.ContainsKey(BertSchema.PoolerDense.Weight)) missing.Add(BertSchema.PoolerDense.Weight);
                if (missing.Count != unnamed.Count)
                    throw Refuse($"{unnamed.Count} MatMul/Gemm weights could not be named by their bias ({string.Join(", ", unnamed.Take(4).Select(u => u.WeightName))}...) and the graph order does not fit the {missing.Count} missing HF weights");
                for (int i = 0; i < missing.Count; i++) Put(missing[i], unnamed[i]);
                _notes.Add($"named {missing.Count} weights by their order in the graph (Q, K, V, attention output, intermediate, output)");
            }

            void Put(string name, Linear lin)
            {
                if (named.ContainsKey(name)) throw Refuse($"two weights map to '{name}' ({lin.WeightName} and another)", name);
                var t = _consts[lin.WeightName];
                var d = Dims(t, name);
                if (d.Length != 2) throw Refuse($"linear weight {lin.WeightName} has {d.Length} dimensions, expected 2", name);
                var data = Floats(t, name);
                if (lin.StoredInOut) { data = Transpose(data, d[0], d[1]); d = [d[1], d[0]]; }
                named[name] = data;
                shapes[name] = d;
                // An anonymous bias (named here by its weight) is stored under the HF name too.
                string bias = name[..^".weight".Length] + ".bias";
                if (lin.BiasName is not null && !named.ContainsKey(bias))
                {
                    var bt = _consts[lin.BiasName];
                    named[bias] = Floats(bt, bias);
                    shapes[bias] = Dims(bt, bias);
                }
            }

            // 4. Config from shapes and constants.
            int V = shapes[BertSchema.WordEmbeddings][0], C = shapes[BertSchema.WordEmbeddings][1];
            string interBias = BertSchema.Layer(0).Intermediate.Bias;
            int F = named.TryGetValue(interBias, out var fb) ? fb.Length : throw Refuse($"missing {interBias} (feed-forward width)");
            var config = new BertConfig
            {
                VocabSize = V,
                HiddenSize = C,
                NumHiddenLayers = layers,
                NumAttentionHeads = FindHeads(C),
                IntermediateSize = F,
                HiddenAct = FindActivation(),
                MaxPositionEmbeddings = shapes[BertSchema.PositionEmbeddings][0],
                TypeVocabSize = shapes[BertSchema.TokenTypeEmbeddings][0],
                LayerNormEps = FindLayerNormEps(),
                AddPoolingLayer = named.ContainsKey(BertSchema.PoolerDense.Weight),
                Extra = new Dictionary<string, JsonElement>
                {
                    ["architectures"] = JsonSerializer.SerializeToElement(new[] { "BertModel" }),
                    ["torch_dtype"] = JsonSerializer.SerializeToElement("float32"),
                },
            };
            try { config.Validate(); }
            catch (InvalidDataException e) { throw Refuse($"derived config is invalid: {e.Message}"); }

            var expected = BertSchema.Of(config).EncoderTensors.ToList();
            var missingTensors = expected.Where(s => !named.ContainsKey(s.Name)).Select(s => s.Name).ToList();
            if (missingTensors.Count > 0)
                throw Refuse($"missing {missingTensors.Count} tensors: {string.Join(", ", missingTensors.Take(8))}{(missingTensors.Count > 8 ? ", ..." : "")}");
            var result = new List<(TensorSpec, float[])>(expected.Count);
            foreach (var s in expected)
            {
                if (!shapes[s.Name].SequenceEqual(s.Shape))
                    throw Refuse($"shape [{string.Join(", ", shapes[s.Name])}] does not fit the derived config, expected {s.ShapeText}", s.Name);
                result.Add((s, named[s.Name]));
            }
            var extra = named.Keys.Except(expected.Select(e => e.Name)).ToList();
            if (extra.Count > 0) _notes.Add($"ignored {extra.Count} tensors that are not part of BertModel: {string.Join(", ", extra.Take(5))}");
            return new ConvertedBert
            {
                Config = config,
                Tensors = result,
                Notes = _notes,
                GraphOutputs = _g.Output.Select(o => o.Name).ToArray(),
            };
        }

        private OnnxFormatException Refuse(string what, string? tensor = null) =>
            new(_src, tensor, $"not a BERT encoder this converter understands: {what}");

        /// <summary>Finds the prefix (e.g. "bert.") in front of the HF names, from the word-embedding initializer.</summary>
        private void FindPrefix()
        {
            const string key = BertSchema.WordEmbeddings;
            var hit = _g.Initializer.Select(t => t.Name).FirstOrDefault(n => n == key || n.EndsWith("." + key, StringComparison.Ordinal));
            if (hit is null) return;
            _prefix = hit[..^key.Length];
            if (_prefix.Length > 0) _notes.Add($"stripped the prefix '{_prefix}' from tensor names");
        }

        private string? HfName(string onnxName)
        {
            if (!onnxName.StartsWith(_prefix, StringComparison.Ordinal)) return null;
            string n = onnxName[_prefix.Length..];
            return n.StartsWith("embeddings.", StringComparison.Ordinal) || n.StartsWith("encoder.layer.", StringComparison.Ordinal)
                || n.StartsWith("pooler.", StringComparison.Ordinal) ? n : null;
        }

        /// <summary>A tensor named like a module's weight or bias (not an exporter's anonymous "onnx::..." or "/..." name) that
        /// is not one of BertModel's.</summary>
        private bool IsOtherModule(string onnxName)
            => HfName(onnxName) is null && !onnxName.Contains("::", StringComparison.Ordinal) && !onnxName.StartsWith('/')
               && (onnxName.EndsWith(".weight", StringComparison.Ordinal) || onnxName.EndsWith(".bias", StringComparison.Ordinal));

        private sealed record Linear(string WeightName, bool StoredInOut, string? BiasName);

        private bool LinearWeightUse(string name) =>
            _consumers.TryGetValue(name, out var users) && users.Any(u =>
                (u.OpType is "MatMul" or "Gemm" && u.Input.Count > 1 && u.Input[1] == name) ||
                (u.OpType == "Transpose" && _consumers.TryGetValue(u.Output[0], out var next) && next.Any(x => x.OpType is "MatMul" or "Gemm")));

        /// <summary>MatMul/Gemm nodes whose second input is a constant float matrix, in graph order, with the bias they add.</summary>
        private List<Linear> FindLinears()
        {
            var list = new List<Linear>();
            foreach (var n in _g.Node)
            {
                if (n.OpType is not ("MatMul" or "Gemm") || n.Input.Count < 2) continue;
                string b = n.Input[1];
                bool inOut;
                string weight;
                if (_consts.TryGetValue(b, out var t) && t.DataType == FloatType && t.Dims.Count == 2) { weight = b; inOut = true; }
                else if (_producer.TryGetValue(b, out var tr) && tr.OpType == "Transpose" && _consts.TryGetValue(tr.Input[0], out var tt)
                         && tt.DataType == FloatType && tt.Dims.Count == 2) { weight = tr.Input[0]; inOut = false; }
                else continue;   // activation x activation (attention scores)
                if (n.OpType == "Gemm")
                {
                    long transB = n.Attribute.FirstOrDefault(a => a.Name == "transB")?.I ?? 0;
                    if (transB != 0) inOut = !inOut;
                    string? gb = n.Input.Count > 2 && _consts.ContainsKey(n.Input[2]) ? n.Input[2] : null;
                    list.Add(new Linear(weight, inOut, gb ?? FollowingBias(n.Output[0])));
                }
                else list.Add(new Linear(weight, inOut, FollowingBias(n.Output[0])));
            }
            return list;
        }

        /// <summary>The 1-D float constant added to <paramref name="output"/> by the Add that consumes it, if any.</summary>
        private string? FollowingBias(string output)
        {
            if (!_consumers.TryGetValue(output, out var users)) return null;
            foreach (var u in users)
            {
                if (u.OpType != "Add" || u.Input.Count != 2) continue;
                string other = u.Input[0] == output ? u.Input[1] : u.Input[0];
                if (_consts.TryGetValue(other, out var t) && t.DataType == FloatType && t.Dims.Count == 1) return other;
            }
            return null;
        }

        /// <summary>NH from the attention Reshape to [B, T, NH, HS] (constant last two entries with NH·HS = C).</summary>
        private int FindHeads(int C)
        {
            var votes = new Dictionary<int, int>();
            foreach (var n in _g.Node.Where(n => n.OpType == "Reshape" && n.Input.Count == 2))
            {
                var shape = ShapeConstants(n.Input[1]);
                if (shape is null || shape.Count != 4 || shape[2] is not { } nh || shape[3] is not { } hs) continue;
                if (nh > 0 && hs > 0 && nh * hs == C) votes[(int)nh] = votes.GetValueOrDefault((int)nh) + 1;
            }
            foreach (var n in _g.Node.Where(n => n.OpType == "Attention" || n.OpType == "MultiHeadAttention"))
            {
                var a = n.Attribute.FirstOrDefault(x => x.Name == "num_heads");
                if (a is not null) votes[(int)a.I] = votes.GetValueOrDefault((int)a.I) + 1;
            }
            if (votes.Count == 0) throw Refuse($"no attention Reshape to [batch, seq, heads, head_size] with heads x head_size = {C}: cannot tell the number of heads");
            return votes.MaxBy(kv => kv.Value).Key;
        }

        /// <summary>The entries of a shape tensor: constants where known, null where computed at run time.</summary>
        private List<long?>? ShapeConstants(string name)
        {
            if (_consts.TryGetValue(name, out var t)) return Int64s(t)?.Select(v => (long?)v).ToList();
            if (!_producer.TryGetValue(name, out var p) || p.OpType != "Concat") return null;
            var list = new List<long?>();
            foreach (var i in p.Input)
            {
                if (_consts.TryGetValue(i, out var c) && Int64s(c) is { } vals) list.AddRange(vals.Select(v => (long?)v));
                else list.Add(null);   // e.g. Unsqueeze(Gather(Shape(x))): one dynamic entry
            }
            return list;
        }

        /// <summary>LayerNorm epsilon: the LayerNormalization attribute, or the constant added to the variance before Sqrt.</summary>
        private double FindLayerNormEps()
        {
            foreach (var n in _g.Node)
            {
                if (n.OpType == "LayerNormalization")
                {
                    var a = n.Attribute.FirstOrDefault(x => x.Name == "epsilon");
                    return Nice(a?.F ?? 1e-5f);
                }
                if (n.OpType != "Sqrt" || !_producer.TryGetValue(n.Input[0], out var add) || add.OpType != "Add") continue;
                for (int k = 0; k < 2; k++)
                {
                    if (!_consts.TryGetValue(add.Input[k], out var c) || !_producer.TryGetValue(add.Input[1 - k], out var rm) || rm.OpType != "ReduceMean") continue;
                    if (c.DataType == FloatType && ReadFloats(c) is { Length: 1 } eps) return Nice(eps[0]);
                }
            }
            throw Refuse("no LayerNormalization node and no ReduceMean -> Add(epsilon) -> Sqrt pattern: cannot tell the LayerNorm epsilon");

            // 1e-12 stored as float32 reads back as 9.99999996e-13; keep the shortest decimal that rounds to the same float.
            static double Nice(float f) => double.Parse(f.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        }

        private string FindActivation()
        {
            if (_g.Node.Any(n => n.OpType == "Erf" || (n.OpType == "Gelu" && n.Attribute.All(a => a.Name != "approximate" || a.S.ToStringUtf8() == "none"))))
                return "gelu";
            if (_g.Node.Any(n => n.OpType == "Relu")) return "relu";
            throw Refuse("no exact GELU (Erf) and no Relu in the feed-forward: only hidden_act gelu (erf form) or relu are supported");
        }

        private float[] Floats(TensorProto t, string name) =>
            t.DataType == FloatType || t.DataType == (int)TensorProto.Types.DataType.Float16 || t.DataType == (int)TensorProto.Types.DataType.Bfloat16
                ? ReadFloats(t) ?? throw new OnnxFormatException(_src, name, $"initializer {t.Name}: data missing or of the wrong length for [{string.Join(", ", t.Dims)}]")
                : throw new OnnxFormatException(_src, name, $"initializer {t.Name} has data type {(TensorProto.Types.DataType)t.DataType}, expected float");

        private int[] Dims(TensorProto t, string name)
        {
            var d = new int[t.Dims.Count];
            for (int i = 0; i < d.Length; i++)
                d[i] = t.Dims[i] is >= 0 and <= int.MaxValue ? (int)t.Dims[i] : throw new OnnxFormatException(_src, name, $"dimension {t.Dims[i]} out of range");
            return d;
        }

        /// <summary>Float data of a FLOAT/FLOAT16/BFLOAT16 tensor (raw_data or typed field); null if absent or inconsistent.</summary>
        private float[]? ReadFloats(TensorProto t)
        {
            if (t.DataLocation == TensorProto.Types.DataLocation.External)
                throw new OnnxFormatException(_src, t.Name, "external tensor data is not supported: export with the weights inside the .onnx file");
            long count = 1;
            foreach (long d in t.Dims) count *= d;
            var raw = t.RawData.Span;
            var dt = (TensorProto.Types.DataType)t.DataType;
            var a = new float[count];
            switch (dt)
            {
                case TensorProto.Types.DataType.Float:
                    if (raw.Length > 0) { if (raw.Length != 4 * count) return null; FloatFormats.BytesToF32(raw, a); }
                    else { if (t.FloatData.Count != count) return null; t.FloatData.CopyTo(a, 0); }
                    return a;
                case TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16:
                    byte[] bits;
                    if (raw.Length > 0) bits = raw.ToArray();
                    else { bits = new byte[2 * t.Int32Data.Count]; for (int i = 0; i < t.Int32Data.Count; i++) { bits[2 * i] = (byte)t.Int32Data[i]; bits[2 * i + 1] = (byte)(t.Int32Data[i] >> 8); } }
                    if (bits.Length != 2 * count) return null;
                    if (dt == TensorProto.Types.DataType.Float16) FloatFormats.F16ToF32(bits, a); else FloatFormats.BF16ToF32(bits, a);
                    return a;
                default: return null;
            }
        }

        private static long[]? Int64s(TensorProto t)
        {
            var raw = t.RawData.Span;
            switch ((TensorProto.Types.DataType)t.DataType)
            {
                case TensorProto.Types.DataType.Int64:
                    if (raw.Length > 0) { if (raw.Length % 8 != 0) return null; var a = new long[raw.Length / 8]; for (int i = 0; i < a.Length; i++) a[i] = BitConverter.ToInt64(raw.Slice(8 * i, 8)); return a; }
                    return t.Int64Data.ToArray();
                case TensorProto.Types.DataType.Int32:
                    if (raw.Length > 0) { if (raw.Length % 4 != 0) return null; var a = new long[raw.Length / 4]; for (int i = 0; i < a.Length; i++) a[i] = BitConverter.ToInt32(raw.Slice(4 * i, 4)); return a; }
                    return t.Int32Data.Select(v => (long)v).ToArray();
                default: return null;
            }
        }

        private static float[] Transpose(float[] a, int rows, int cols)
        {
            var t = new float[a.Length];
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                    t[c * rows + r] = a[r * cols + c];
            return t;
        }
    }
}
