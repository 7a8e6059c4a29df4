// Explicit (never in CI): measures MiniLM throughput on MovieTweetings to size the demo.
using System.Diagnostics;
using FastRec.Engine.Data;
using FastRec.Engine.Model;
using FastRec.Engine.Training;
using FastRec.Kernels.Cpu;

namespace FastRec.Tests.Training;

[Explicit("measurement probe for sizing the demo")]
public class DemoProbe
{
    [Test]
    public void MiniLmThroughput()
    {
        var sw = Stopwatch.StartNew();
        var data = RecDataset.LoadMovieTweetings(examples: new ExampleOptions { ContextSize = 5 });
        TestContext.Out.WriteLine($"data {sw.Elapsed.TotalSeconds:0.0}s train {data.Train.Count} val {data.Validation.Count} test {data.Test.Count}");
        string dir = Weights.MiniLm.Dir;
        using var backend = new CpuSimdBackend();
        using var rec = Recommender.FromPretrained(dir, backend, new AdapterConfig { HiddenSizes = [64], Input = AdapterInput.Pooler }, new TextOptions { MaxLength = 64 });
        var sub = data.Train.Subset(Enumerable.Range(data.Train.Count - 512, 512).ToArray());
        sw.Restart();
        var enc = rec.EncoderFor(data.Catalog).Encode(sub);
        double meanLen = enc.Ids.Length / (double)enc.Count;
        TestContext.Out.WriteLine($"encode {sw.Elapsed.TotalSeconds:0.00}s mean len {meanLen:0.0} truncated {enc.Truncated}");
        rec.Model.SetTrainable(Freeze.TopK, 2);
        sw.Restart();
        var cache = ActivationCache.Build(rec.Model, sub, enc, 4, 64, 0, rec.Scaler);
        double c = sw.Elapsed.TotalSeconds;
        TestContext.Out.WriteLine($"cache 4 layers: {c:0.00}s = {512 / c:0.0} ex/s");
        sw.Restart();
        var logits = rec.PredictLogits(sub, enc, 64, cache);
        double e = sw.Elapsed.TotalSeconds;
        TestContext.Out.WriteLine($"eval top 2 over cache: {e:0.00}s = {512 / e:0.0} ex/s");
        var t = new Trainer(rec, new TrainerOptions { Epochs = 1, BatchSize = 32, Freeze = Freeze.TopK, TopK = 2, LearningRate = 5e-5f });
        sw.Restart();
        var r = t.Fit(sub, null);
        TestContext.Out.WriteLine($"fit 1 epoch (incl. cache again {r.CacheSeconds:0.0}s): train {r.TrainSeconds:0.00}s = {512 / r.TrainSeconds:0.0} ex/s");
    }
}
