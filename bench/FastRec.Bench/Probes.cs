// Measurement probes on the real data (moved here from tests/, where they ran as [Explicit] NUnit tests): sizing the
// demo and tuning the strong baselines by hand on the validation window. Ranking goes through the evaluation core
// (FullRanking.Evaluate), the same code the demo reports with. Never used for a reported figure on the test split
// except `probe baselines`, which prints the test metrics the demo also prints.
//   FastRec.Bench probe baselines [--model DIR]     every strong baseline: fit time, validation AUC, test AUC/GAUC/log loss, HR/NDCG@10
//   FastRec.Bench probe tune-bpr                     BPR grid on the validation window (GRID_LR, GRID_L2, GRID_EPOCHS, GRID_SEED, GRID_DIM)
//   FastRec.Bench probe tune-knn                     ItemKNN grid on the validation window (GRID_K, GRID_SHRINK)
//   FastRec.Bench probe demo-throughput --model DIR  MiniLM encode / frozen-layer cache / evaluation / training rates on 512 examples
using System.Diagnostics;
using System.Globalization;
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Metrics;
using FastRec.Engine.Model;
using FastRec.Engine.Representations;
using FastRec.Engine.Text;
using FastRec.Engine.Training;
using FastRec.Kernels.Cpu;

namespace FastRec.Bench;

public static class Probes
{
    private const string Usage = "usage: FastRec.Bench probe <baselines [--model DIR] | tune-bpr | tune-knn | demo-throughput --model DIR>";

    public static int Run(string[] args)
    {
        string? model = null;
        for (int i = 2; i < args.Length; i++)
        {
            if (args[i] == "--model" && i + 1 < args.Length) model = args[++i];
            else { Console.Error.WriteLine($"unknown option '{args[i]}'\n{Usage}"); return 2; }
        }
        if (model is not null && !Directory.Exists(model)) { Console.Error.WriteLine($"--model {model}: not a directory"); return 2; }
        switch (args.Length > 1 ? args[1] : "")
        {
            case "baselines": Baselines(model); return 0;
            case "tune-bpr": TuneBpr(); return 0;
            case "tune-knn": TuneKnn(); return 0;
            case "demo-throughput":
                if (model is null) { Console.Error.WriteLine($"demo-throughput needs --model DIR (a converted MiniLM)\n{Usage}"); return 2; }
                DemoThroughput(model); return 0;
            default: Console.Error.WriteLine(Usage); return 2;
        }
    }

    private static (RecDataset Data, EvalWindow Window) Load()
    {
        var table = HistoryFeatures.Append(MovieTweetings.Load(MovieTweetings.FindVendoredDirectory()));
        var data = RecDataset.Build(table, new ExampleOptions { NegativesPerPositive = 0 });
        return (data, EvalWindow.FromDataset(data));
    }

    private static RankingSummary Rank(EvalWindow window, IItemScorer scorer) => FullRanking.Evaluate(window, scorer).Overall;

    private static void Baselines(string? model)
    {
        var sw = Stopwatch.StartNew();
        var (data, window) = Load();
        Console.WriteLine($"data {sw.Elapsed.TotalSeconds:0.0}s train {data.Train.Count} val {data.Validation.Count} test {data.Test.Count} users {window.UserCount} items {window.ItemCount} test users {window.TestUsers.Length}");
        using var backend = new CpuSimdBackend();
        ItemVectors? vectors = null;
        if (model is not null)
        {
            sw.Restart();
            vectors = EncoderItemVectors.Compute(model, backend, data.Catalog, new EncoderItemVectorOptions(), Console.WriteLine);
            Console.WriteLine($"text vectors {sw.Elapsed.TotalSeconds:0.0}s");
        }
        var fitted = StrongBaselines.FitAll(window, data.Train, data.Validation, backend, vectors, new StrongBaselineOptions { Bpr = BprFromEnv() });
        var test = data.Test;
        foreach (var f in fitted)
        {
            var p = f.Model.Predict(test);
            var r = MetricsReport.Compute(test.Labels, p, test.Users, test.Items, new MetricsOptions { ItemCount = window.ItemCount });
            var rank = Rank(window, f.Model);
            Console.WriteLine($"{f.Name,-45} fit {f.FitSeconds,6:0.00}s  val AUC {f.ValidationAuc:0.0000}  test AUC {r.Auc:0.0000}  GAUC {r.Gauc.Value:0.0000}  logloss {r.LogLoss:0.0000}  HR@10 {rank.HitRateAt(10):0.0000}  NDCG@10 {rank.NdcgAt(10):0.0000}");
        }
    }

    /// <summary>The validation window as the "test": fitted on train, ranked on validation.</summary>
    private static (RecDataset Data, EvalWindow Validation) ValidationWindow()
    {
        var (data, _) = Load();
        return (data, EvalWindow.FromSets(data.Catalog, data.Train, data.Validation.Subset([], "validation"), data.Validation));
    }

    private static void TuneBpr()
    {
        var (data, val) = ValidationWindow();
        using var backend = new CpuSimdBackend();
        var baseOpt = BprFromEnv();
        var pop = Rank(val, MostPopularBaseline.Fit(val));
        Console.WriteLine($"most popular: HR@10 {pop.HitRateAt(10):0.0000} NDCG@10 {pop.NdcgAt(10):0.0000}");
        foreach (float lr in Floats("GRID_LR", baseOpt.LearningRate))
            foreach (float l2 in Floats("GRID_L2", baseOpt.L2))
                foreach (float e in Floats("GRID_EPOCHS", baseOpt.Epochs))
                    foreach (float seed in Floats("GRID_SEED", baseOpt.Seed))
                        foreach (float dim in Floats("GRID_DIM", baseOpt.Dim))
                        {
                            var o = baseOpt with { LearningRate = lr, L2 = l2, Epochs = (int)e, Seed = (ulong)seed, Dim = (int)dim };
                            var sw = Stopwatch.StartNew();
                            var m = BprBaseline.Fit(val, backend, o);
                            double secs = sw.Elapsed.TotalSeconds;
                            var rank = Rank(val, m);
                            var p = m.Predict(data.Validation);
                            var r = MetricsReport.Compute(data.Validation.Labels, p, data.Validation.Users, data.Validation.Items);
                            Console.WriteLine($"lr {lr} l2 {l2} epochs {e} seed {seed} dim {dim}: {secs:0.0}s HR@10 {rank.HitRateAt(10):0.0000} NDCG@10 {rank.NdcgAt(10):0.0000} AUC {r.Auc:0.0000} GAUC {r.Gauc.Value:0.0000} logloss {r.LogLoss:0.0000} last loss {m.EpochLosses[^1]:0.000}");
                        }
    }

    private static void TuneKnn()
    {
        var (_, val) = ValidationWindow();
        foreach (float k in Floats("GRID_K", 100))
            foreach (float shrink in Floats("GRID_SHRINK", 10))
            {
                var rank = Rank(val, ItemKnnBaseline.Fit(val, (int)k, shrink));
                Console.WriteLine($"knn k {k} shrink {shrink}: HR@10 {rank.HitRateAt(10):0.0000} NDCG@10 {rank.NdcgAt(10):0.0000}");
            }
    }

    private static void DemoThroughput(string dir)
    {
        var sw = Stopwatch.StartNew();
        var data = RecDataset.LoadMovieTweetings(examples: new ExampleOptions { ContextSize = 5 });
        Console.WriteLine($"data {sw.Elapsed.TotalSeconds:0.0}s train {data.Train.Count} val {data.Validation.Count} test {data.Test.Count}");
        using var backend = new CpuSimdBackend();
        using var rec = Recommender.FromPretrained(dir, backend, new AdapterConfig { HiddenSizes = [64], Input = AdapterInput.Pooler }, new TextOptions { MaxLength = 64 });
        var sub = data.Train.Subset(Enumerable.Range(data.Train.Count - 512, 512).ToArray());
        sw.Restart();
        var enc = rec.EncoderFor(data.Catalog).Encode(sub);
        Console.WriteLine($"encode {sw.Elapsed.TotalSeconds:0.00}s mean len {enc.Ids.Length / (double)enc.Count:0.0} truncated {enc.Truncated}");
        rec.Model.SetTrainable(Freeze.TopK, 2);
        sw.Restart();
        var cache = ActivationCache.Build(rec.Model, sub, enc, 4, 64, 0, rec.Scaler);
        double c = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"cache 4 layers: {c:0.00}s = {512 / c:0.0} ex/s");
        sw.Restart();
        rec.PredictLogits(sub, enc, 64, cache);
        double e = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"eval top 2 over cache: {e:0.00}s = {512 / e:0.0} ex/s");
        var t = new Trainer(rec, new TrainerOptions { Epochs = 1, BatchSize = 32, Freeze = Freeze.TopK, TopK = 2, LearningRate = 5e-5f });
        var r = t.Fit(sub, null);
        Console.WriteLine($"fit 1 epoch (incl. cache again {r.CacheSeconds:0.0}s): train {r.TrainSeconds:0.00}s = {512 / r.TrainSeconds:0.0} ex/s");
    }

    private static float[] Floats(string name, float fallback)
        => Environment.GetEnvironmentVariable(name) is { } v ? v.Split(',').Select(x => float.Parse(x, CultureInfo.InvariantCulture)).ToArray() : [fallback];

    private static BprOptions BprFromEnv()
    {
        var o = new BprOptions();
        if (Environment.GetEnvironmentVariable("BPR_LR") is { } lr) o = o with { LearningRate = float.Parse(lr, CultureInfo.InvariantCulture) };
        if (Environment.GetEnvironmentVariable("BPR_L2") is { } l2) o = o with { L2 = float.Parse(l2, CultureInfo.InvariantCulture) };
        if (Environment.GetEnvironmentVariable("BPR_EPOCHS") is { } e) o = o with { Epochs = int.Parse(e, CultureInfo.InvariantCulture) };
        if (Environment.GetEnvironmentVariable("BPR_BATCH") is { } b) o = o with { BatchSize = int.Parse(b, CultureInfo.InvariantCulture) };
        return o;
    }
}
