// The int8 peer for serving comparisons: an fp32 ONNX model rewritten as ONNX Runtime's quantize_dynamic rewrites it
// (per-channel int8 weights, activations quantised to uint8 per tensor at run time), written with the project's own
// ONNX code (Google.Protobuf + the onnx.proto classes), no Python.
using Google.Protobuf;
using Onnx;

namespace FastRec.Engine.Serving;

/// <summary>
/// Rewrites every <c>MatMul</c> whose second input is a rank-2 float initializer W [K, N] (a Linear's weight; the biases stay
/// in their <c>Add</c> nodes) into
/// <c>DynamicQuantizeLinear(x) → (x_q uint8, s_x, z_x)</c>, <c>MatMulInteger(x_q, W_q, z_x, 0)</c> (int32),
/// <c>Cast</c> to float, <c>Mul</c> by s_x·s_w[n]: what onnxruntime.quantization.quantize_dynamic emits with
/// <c>per_channel=True, weight_type=QInt8</c> (W_q[k, n] = round(W[k, n] / s_w[n]) with s_w[n] = max_k |W[k, n]| / 127,
/// symmetric, zero point 0; the activations asymmetric uint8 over the tensor's [min(0, min), max(0, max)]).
/// Matrix products of two activations (attention) stay fp32, as in quantize_dynamic's default. ONNX Runtime fuses the
/// pattern into its MatMulIntegerToFloat kernel at the default optimisation level.
/// </summary>
public static class OnnxDynamicQuantizer
{
    /// <summary>What <see cref="Quantize(byte[])"/> did.</summary>
    /// <param name="Model">The int8 model (serialised ONNX).</param>
    /// <param name="QuantizedMatMuls">MatMul nodes rewritten.</param>
    /// <param name="WeightBytesBefore">Bytes of their fp32 weights.</param>
    /// <param name="WeightBytesAfter">Bytes of the int8 weights and their scales.</param>
    public sealed record Result(byte[] Model, int QuantizedMatMuls, long WeightBytesBefore, long WeightBytesAfter);

    /// <summary>Quantises <paramref name="onnx"/> (an fp32 model with its weights inside the file).</summary>
    /// <exception cref="InvalidDataException">the bytes are not an ONNX model, a weight is stored outside the file or is not
    /// finite, or the model has no MatMul with a weight to quantise.</exception>
    public static Result Quantize(byte[] onnx)
    {
        ArgumentNullException.ThrowIfNull(onnx);
        ModelProto model;
        try { model = ModelProto.Parser.ParseFrom(onnx); }
        catch (InvalidProtocolBufferException e) { throw new InvalidDataException($"not an ONNX model: {e.Message}", e); }
        var g = model.Graph ?? throw new InvalidDataException("the ONNX model has no graph");
        var inits = g.Initializer.ToDictionary(t => t.Name);
        var uses = new Dictionary<string, int>();
        foreach (var n in g.Node) foreach (var i in n.Input) uses[i] = uses.GetValueOrDefault(i) + 1;
        foreach (var o in g.Output) uses[o.Name] = uses.GetValueOrDefault(o.Name) + 1;

        var nodes = new List<NodeProto>();
        int count = 0;
        long before = 0, after = 0;
        foreach (var n in g.Node)
        {
            if (n.OpType != "MatMul" || n.Domain is not ("" or "ai.onnx") || n.Input.Count != 2
                || !inits.TryGetValue(n.Input[1], out var w) || w.Dims.Count != 2 || w.DataType != (int)TensorProto.Types.DataType.Float)
            {
                nodes.Add(n);
                continue;
            }
            int K = checked((int)w.Dims[0]), N = checked((int)w.Dims[1]);
            var data = ReadFloats(w, K * N);
            var (q, scale) = QuantizePerColumn(data, K, N, w.Name);
            string p = $"{(n.Name.Length > 0 ? n.Name : n.Output[0])}_int8";
            string wq = Init(g, $"{w.Name}_quantized", TensorProto.Types.DataType.Int8, ByteString.CopyFrom((byte[])(Array)q), K, N);
            string wz = Init(g, $"{w.Name}_zero_point", TensorProto.Types.DataType.Int8, ByteString.CopyFrom(new byte[N]), N);
            string ws = InitFloats(g, $"{w.Name}_scale", scale, N);
            string x = n.Input[0];
            nodes.Add(Node("DynamicQuantizeLinear", [x], [$"{p}_xq", $"{p}_xs", $"{p}_xz"], $"{p}_quant"));
            nodes.Add(Node("MatMulInteger", [$"{p}_xq", wq, $"{p}_xz", wz], [$"{p}_i32"], $"{p}_matmul"));
            nodes.Add(Node("Cast", [$"{p}_i32"], [$"{p}_f32"], $"{p}_cast", new AttributeProto
                { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)TensorProto.Types.DataType.Float }));
            nodes.Add(Node("Mul", [$"{p}_xs", ws], [$"{p}_scale"], $"{p}_scales"));
            nodes.Add(Node("Mul", [$"{p}_f32", $"{p}_scale"], [n.Output[0]], $"{p}_dequant"));
            count++;
            before += 4L * K * N;
            after += (long)K * N + 5L * N;
            if (uses.GetValueOrDefault(w.Name) == 1) g.Initializer.Remove(w);   // its only reader was this MatMul
        }
        if (count == 0) throw new InvalidDataException("the ONNX model has no MatMul with a float weight initializer: nothing to quantise");
        g.Node.Clear();
        g.Node.AddRange(nodes);
        if (!model.OpsetImport.Any(o => o.Domain is "" or "ai.onnx" && o.Version >= 11))
            throw new InvalidDataException("the ONNX model's opset is below 11 (DynamicQuantizeLinear needs 11)");
        return new Result(model.ToByteArray(), count, before, after);
    }

    /// <summary>W [K, N] → int8 per column n: q = round(W / s[n]) (to nearest even) with s[n] = max_k |W[k, n]| / 127
    /// (1 for an all-zero column).</summary>
    internal static (sbyte[] Q, float[] Scale) QuantizePerColumn(float[] w, int K, int N, string name)
    {
        var scale = new float[N];
        for (int i = 0; i < w.Length; i++)
        {
            if (!float.IsFinite(w[i])) throw new InvalidDataException($"weight {name}[{i / N}, {i % N}] = {w[i]} is not finite: it cannot be quantised");
            int n = i % N;
            scale[n] = MathF.Max(scale[n], MathF.Abs(w[i]));
        }
        for (int n = 0; n < N; n++) scale[n] = scale[n] > 0 ? scale[n] / 127f : 1f;
        var q = new sbyte[w.Length];
        for (int i = 0; i < w.Length; i++)
            q[i] = (sbyte)Math.Clamp(MathF.Round(w[i] / scale[i % N], MidpointRounding.ToEven), -127f, 127f);
        return (q, scale);
    }

    private static float[] ReadFloats(TensorProto t, int count)
    {
        if (t.DataLocation == TensorProto.Types.DataLocation.External)
            throw new InvalidDataException($"initializer {t.Name}: external data is not supported (keep the weights inside the .onnx file)");
        var a = new float[count];
        var raw = t.RawData.Span;
        if (raw.Length > 0)
        {
            if (raw.Length != 4L * count) throw new InvalidDataException($"initializer {t.Name}: {raw.Length} bytes for {count} floats");
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(raw).CopyTo(a);
        }
        else
        {
            if (t.FloatData.Count != count) throw new InvalidDataException($"initializer {t.Name}: {t.FloatData.Count} floats for [{string.Join(", ", t.Dims)}]");
            t.FloatData.CopyTo(a, 0);
        }
        return a;
    }

    private static string Init(GraphProto g, string name, TensorProto.Types.DataType type, ByteString bytes, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)type, RawData = bytes };
        t.Dims.AddRange(dims);
        g.Initializer.Add(t);
        return name;
    }

    private static string InitFloats(GraphProto g, string name, float[] data, params long[] dims)
    {
        var bytes = new byte[4 * data.Length];
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()).CopyTo(bytes);
        return Init(g, name, TensorProto.Types.DataType.Float, ByteString.CopyFrom(bytes), dims);
    }

    private static NodeProto Node(string op, string[] inputs, string[] outputs, string name, params AttributeProto[] attrs)
    {
        var n = new NodeProto { OpType = op, Name = name };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        n.Attribute.AddRange(attrs);
        return n;
    }
}
