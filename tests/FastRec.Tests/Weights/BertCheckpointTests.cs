// Model directories: save/load round trips (synthetic and MiniLM), prefixes, and every bad-checkpoint case named.
using System.Text;
using FastRec.Engine.Model;
using FastRec.Engine.Weights;
using FastRec.Kernels.Reference;

namespace FastRec.Tests.Weights;

public class BertCheckpointTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("fastrec-ckpt-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static BertConfig Tiny(bool pooler = true) => new()
    {
        VocabSize = 12, HiddenSize = 8, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 16,
        MaxPositionEmbeddings = 10, TypeVocabSize = 2, AddPoolingLayer = pooler,
    };

    private static string Vocab(int n) =>
        string.Join("\n", new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }.Concat(Enumerable.Range(0, n - 5).Select(i => $"tok{i}"))) + "\n";

    /// <summary>A synthetic checkpoint in <paramref name="dir"/>, tensors with distinct values, written by our writer.</summary>
    private static Dictionary<string, float[]> WriteTiny(string dir, BertConfig c, Func<TensorSpec, SafetensorsEntry>? entry = null)
    {
        var values = BertSchema.Of(c).EncoderTensors.ToDictionary(t => t.Name, t => OnnxTestGraphs.Hf(t.Name, t.Shape));
        var entries = BertSchema.Of(c).EncoderTensors.Select(t => entry?.Invoke(t) ?? new SafetensorsEntry(t.Name, t.Shape, () => values[t.Name])).ToList();
        BertCheckpoint.Write(dir, c, entries, Vocab(c.VocabSize), lowerCase: true);
        return values;
    }

    private static void Rewrite(string path, IReadOnlyList<SafetensorsEntry> entries) => SafetensorsWriter.Write(path, entries);

    private string WeightsPath => Path.Combine(_dir, BertCheckpoint.WeightsFile);

    [Test]
    public void TheWrittenFileHoldsExactlyTheSchemasEncoderTensors()
    {
        var c = Tiny();
        WriteTiny(_dir, c);
        using var f = SafetensorsFile.Open(WeightsPath);
        var expected = BertSchema.Of(c).EncoderTensors.ToList();
        Assert.That(f.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal), Is.EqualTo(expected.Select(t => t.Name).Order(StringComparer.Ordinal)));
        foreach (var t in expected) Assert.That(f.Tensors.Single(x => x.Name == t.Name).Shape, Is.EqualTo(t.Shape.Select(d => (long)d)), t.Name);
    }

    [Test]
    public void SaveLoadRoundTripIsBitIdentical()
    {
        var c = Tiny();
        var values = WriteTiny(_dir, c);
        using var backend = new ReferenceBackend();
        using var model = BertCheckpoint.Load(_dir, backend);
        foreach (var (name, v) in values) Assert.That(model.GetParameter(name), Is.EqualTo(v), name);
        string again = Path.Combine(_dir, "again");
        BertCheckpoint.Save(model, again, Path.Combine(_dir, BertCheckpoint.VocabFile));
        using var a = SafetensorsFile.Open(WeightsPath);
        using var b = SafetensorsFile.Open(Path.Combine(again, BertCheckpoint.WeightsFile));
        Assert.That(b.Tensors.Select(t => t.Name), Is.EqualTo(a.Tensors.Select(t => t.Name)));
        foreach (var t in a.Tensors) Assert.That(b.RawBytes(t.Name).SequenceEqual(a.RawBytes(t.Name)), Is.True, t.Name);
        Assert.That(File.ReadAllText(Path.Combine(again, BertCheckpoint.ConfigFile)), Is.EqualTo(File.ReadAllText(Path.Combine(_dir, BertCheckpoint.ConfigFile))));
    }

    [Test]
    public void HalfPrecisionCheckpointsLoadAsTheirExactFloatValues()
    {
        var c = Tiny();
        var dtypes = new[] { SafetensorsDType.F16, SafetensorsDType.BF16 };
        int k = 0;
        var values = WriteTiny(_dir, c, t => new SafetensorsEntry(t.Name, t.Shape, () => OnnxTestGraphs.Hf(t.Name, t.Shape), dtypes[k++ % 2]));
        using var f = SafetensorsFile.Open(WeightsPath);
        using var backend = new ReferenceBackend();
        using var model = BertCheckpoint.Load(_dir, backend);
        foreach (var t in f.Tensors)
        {
            var want = values[t.Name].Select(x => t.DType == SafetensorsDType.F16
                ? (float)(Half)x : BitConverter.Int32BitsToSingle(FloatFormats.ToBF16Bits(x) << 16)).ToArray();
            Assert.That(model.GetParameter(t.Name), Is.EqualTo(want), $"{t.Name} ({t.DType})");
        }
    }

    [Test]
    public void BertPrefixAndMissingPoolerLoad()
    {
        var c = Tiny(pooler: false);
        var values = WriteTiny(_dir, c);
        using (var f = SafetensorsFile.Open(WeightsPath))
        {
            var entries = f.Tensors.Select(t => new SafetensorsEntry("bert." + t.Name, t.Shape.Select(d => (int)d).ToArray(), () => f.ReadF32(t.Name))).ToList();
            Rewrite(WeightsPath + ".new", entries);
        }
        File.Move(WeightsPath + ".new", WeightsPath, overwrite: true);
        // config.json says nothing about the pooler (HF's default is a pooler) but the file has none: load without it.
        var cfg = File.ReadAllText(Path.Combine(_dir, BertCheckpoint.ConfigFile)).Replace("\"add_pooling_layer\": false,", "");
        File.WriteAllText(Path.Combine(_dir, BertCheckpoint.ConfigFile), cfg);
        var info = BertCheckpoint.Open(_dir);
        Assert.That(info.Prefix, Is.EqualTo("bert."));
        Assert.That(info.Config.AddPoolingLayer, Is.False);
        using var backend = new ReferenceBackend();
        using var model = BertCheckpoint.Load(_dir, backend);
        Assert.That(model.GetParameter("encoder.layer.1.output.dense.weight"), Is.EqualTo(values["encoder.layer.1.output.dense.weight"]));
    }

    [Test]
    public void MissingTensorIsNamedWithTheFile()
    {
        var c = Tiny();
        WriteTiny(_dir, c);
        using (var f = SafetensorsFile.Open(WeightsPath))
            Rewrite(WeightsPath + ".new", f.Tensors.Where(t => t.Name != "encoder.layer.1.attention.self.key.bias")
                .Select(t => new SafetensorsEntry(t.Name, t.Shape.Select(d => (int)d).ToArray(), () => f.ReadF32(t.Name))).ToList());
        File.Move(WeightsPath + ".new", WeightsPath, overwrite: true);
        var e = Assert.Throws<SafetensorsFormatException>(() => BertCheckpoint.Open(_dir))!;
        Assert.That(e.Message, Does.Contain(WeightsPath).And.Contain("'encoder.layer.1.attention.self.key.bias'").And.Contain("missing").And.Contain("[8]"));
    }

    [Test]
    public void WrongShapeIsNamedWithTheFile()
    {
        var c = Tiny();
        WriteTiny(_dir, c);
        // Our writer refuses such a model, so write the file directly: the FFN weight stored [in, out] instead of [out, in].
        Rewrite(WeightsPath, BertSchema.Of(c).EncoderTensors.Select(t => t.Name == "encoder.layer.0.intermediate.dense.weight"
            ? new SafetensorsEntry(t.Name, [8, 16], () => new float[128]) : new SafetensorsEntry(t.Name, t.Shape, () => OnnxTestGraphs.Hf(t.Name, t.Shape))).ToList());
        var e = Assert.Throws<SafetensorsFormatException>(() => BertCheckpoint.Open(_dir))!;
        Assert.That(e.Message, Does.Contain(WeightsPath).And.Contain("'encoder.layer.0.intermediate.dense.weight'")
            .And.Contain("shape [8, 16] does not match config.json, expected [16, 8]"));
    }

    [Test]
    public void IntegerDtypeIsNamed()
    {
        var c = Tiny();
        WriteTiny(_dir, c);
        // Replace the file with one whose embeddings LayerNorm bias is I32 (same byte size as F32).
        using (var f = SafetensorsFile.Open(WeightsPath))
        {
            string json = "{" + string.Join(",", f.Tensors.Select(t =>
                $"\"{t.Name}\":{{\"dtype\":\"{(t.Name == "embeddings.LayerNorm.bias" ? "I32" : "F32")}\",\"shape\":[{string.Join(",", t.Shape)}],\"data_offsets\":[{t.Begin},{t.End}]}}")) + "}";
            var data = new byte[f.Tensors.Max(t => t.End)];
            File.WriteAllBytes(WeightsPath + ".new", SafetensorsTests.RawFile(json, data));
        }
        File.Move(WeightsPath + ".new", WeightsPath, overwrite: true);
        var e = Assert.Throws<SafetensorsFormatException>(() => BertCheckpoint.Open(_dir))!;
        Assert.That(e.Message, Does.Contain("'embeddings.LayerNorm.bias'").And.Contain("dtype I32"));
    }

    [Test]
    public void VocabSizeDifferentFromConfigIsRefused()
    {
        WriteTiny(_dir, Tiny());
        File.AppendAllText(Path.Combine(_dir, BertCheckpoint.VocabFile), "extra\n");
        var e = Assert.Throws<InvalidDataException>(() => BertCheckpoint.Open(_dir))!;
        Assert.That(e.Message, Does.Contain("vocab.txt").And.Contain("13 tokens").And.Contain("vocab_size 12"));
    }

    [Test]
    public void PytorchBinAloneIsRefusedExplainingSafetensors()
    {
        WriteTiny(_dir, Tiny());
        File.Move(WeightsPath, Path.Combine(_dir, "pytorch_model.bin"));
        var e = Assert.Throws<SafetensorsFormatException>(() => ModelConversion.FromHfDirectory(_dir, Path.Combine(_dir, "out")))!;
        Assert.That(e.Message, Does.Contain("pytorch_model.bin").And.Contain("model.safetensors is required"));
    }

    [Test]
    public void HfDirectoryIsValidatedAndCopied()
    {
        var values = WriteTiny(_dir, Tiny());
        string outDir = Path.Combine(_dir, "copy");
        var info = ModelConversion.FromHfDirectory(_dir, outDir);
        Assert.That(info.Directory, Is.EqualTo(outDir));
        using var f = SafetensorsFile.Open(Path.Combine(outDir, BertCheckpoint.WeightsFile));
        Assert.That(f.ReadF32("pooler.dense.bias"), Is.EqualTo(values["pooler.dense.bias"]));
    }

    [Test]
    public void ModelBuiltWithAnotherConfigIsRefused()
    {
        WriteTiny(_dir, Tiny());
        var other = Tiny();
        other.IntermediateSize = 32;
        using var backend = new ReferenceBackend();
        using var model = new RecModel(backend, other, new AdapterConfig());
        var e = Assert.Throws<InvalidDataException>(() => BertCheckpoint.LoadInto(model, _dir))!;
        Assert.That(e.Message, Does.Contain("intermediate_size is 16 but the model was built with 32"));
    }

    [Test]
    public void MiniLmConvertSaveLoadIsBitIdentical()
    {
        using var f = SafetensorsFile.Open(Path.Combine(MiniLm.Dir, BertCheckpoint.WeightsFile));
        foreach (var (spec, data) in MiniLm.Converted.Tensors)
        {
            var back = f.ReadF32(spec.Name);
            Assert.That(back.AsSpan().SequenceEqual(data), Is.True, spec.Name);
        }
        Assert.That(f.Metadata["fastrec_source_sha256"], Has.Length.EqualTo(64));
        Assert.That(File.ReadAllText(Path.Combine(MiniLm.Dir, BertCheckpoint.VocabFile)), Does.Not.Contain("\r"), "vocab written with LF endings");
        Assert.That(MiniLm.Info.VocabCount, Is.EqualTo(30522));
    }
}
