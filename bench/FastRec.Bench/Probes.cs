// Measurement probes on the real data (moved here from tests/, where they ran as [Explicit] NUnit tests): sizing the
// demo and tuning the strong baselines by hand on the validation window. Ranking goes through the evaluation core
// (FullRanking.Evaluate), the same code the demo reports with. Never used for a reported figure on the test split
// except `probe baselines`, which prints the test metrics the demo also prints.
//   FastRec.Bench probe baselines [--model DIR]     every strong baseline: fit time, validation AUC, test AUC/GAUC/log loss, HR/NDCG@10
//   FastRec.Bench probe tune-bpr                     BPR grid on the validation window (GRID_LR, GRID_L2, GRID_EPOCHS, GRID_SEED, GRID_DIM)
//   FastRec.Bench probe tune-knn                     ItemKNN grid on the validation window (GRID_K, GRID_SHRINK)
//   FastRec.Bench probe demo-throughput --model DIR  MiniLM encode / frozen-layer cache / evaluation / training rates on 512 examples
//   FastRec.Bench probe serving-loop --model DIR     Predictor requests in a loop for a profiler (SEQ, BATCH, SECONDS, INT16=1)
//   FastRec.Bench probe serving-split --model DIR    Predictor fp32 per request with PackedLinear's Vector512 tiles on and off
//                                                    (interleaved), the encoder's Linears alone at the same shapes (their share), int16
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
using FastRec.Engine.Serving;
using FastRec.Engine.Weights;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;

namespace FastRec.Bench;

public static class Probes
{
    private const string Usage = "usage: FastRec.Bench probe <baselines [--model DIR] | tune-bpr | tune-knn | demo-throughput --model DIR | serving-split --model DIR | serving-loop --model DIR>";

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
            case "serving-loop":
                if (model is null) { Console.Error.WriteLine($"serving-loop needs --model DIR (a converted MiniLM)\n{Usage}"); return 2; }
                ServingLoop(model); return 0;
            case "serving-split":
                if (model is null) { Console.Error.WriteLine($"serving-split needs --model DIR (a converted MiniLM)\n{Usage}"); return 2; }
                ServingSplit(model); return 0;
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

    /// <summary>Where a batch-1 request's time goes: the Predictor (fp32, one-logit head on the pooler, the latency bench's
    /// inputs) per (B, T), with PackedLinear's Vector512 pair tiles on and off in alternating blocks; then the encoder's 24
    /// Linears alone (random inputs, the same packed shapes) with the tiles on, so the rest (embeddings, attention, LayerNorm,
    /// head, the parallel regions' overheads) is the difference. Medians of wall time; one process, nothing else running.</summary>
    private static void ServingSplit(string modelDir)
    {
        using var backend = new CpuSimdBackend();
        var adapter = new AdapterConfig { HiddenSizes = [], DenseFeatures = 0, Input = AdapterInput.Pooler, Dropout = 0f };
        using var m = BertCheckpoint.Load(modelDir, backend, adapter, seed: 1);
        int width = m.Layout["head.out.weight"].Length;
        m.SetParameter("head.out.weight", Enumerable.Range(0, width).Select(i => 0.01f * (i % 7)).ToArray());
        (int B, int T)[] cases = [(1, 32), (1, 64), (1, 128), (16, 128)];
        var popts = new PredictorOptions { MaxLength = 128, MaxBatch = 16, ClsId = 101, SepId = 102 };
        using var p = new Predictor(m, popts);
        using var q = new Predictor(m, popts with { Precision = ServingPrecision.Int16 });
        int C = m.Bert.HiddenSize, F = m.Bert.IntermediateSize, L = m.Bert.NumHiddenLayers;
        var rng = new Random(3);
        float[] Rand(int n) { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() - 0.5); return a; }
        using var wQkv = new PackedWeight(Rand(3 * C * C), 3 * C, C);
        using var wO = new PackedWeight(Rand(C * C), C, C);
        using var wI = new PackedWeight(Rand(F * C), F, C);
        using var wOut = new PackedWeight(Rand(C * F), C, F);
        float[] bC = Rand(C), b3 = Rand(3 * C), bF = Rand(F);
        Console.WriteLine($"threads {CpuParallel.Threads}, Vector512 tiles available: {PackedLinear.Vector512Enabled}, load {File.ReadAllText("/proc/loadavg").Trim()}");
        foreach (var (B, T) in cases)
        {
            var (ctx, cands, offsets, _) = LatencyBench.Inputs(B, T);   // the latency bench's requests
            var scores = new float[B];
            int reps = B == 1 ? 40 : 6;
            var on = new List<double>(); var off = new List<double>();
            bool saved = PackedLinear.Vector512Enabled;
            for (int w = 0; w < 3; w++) p.ScoreCandidates(ctx, cands, offsets, scores);
            for (int block = 0; block < 6; block++)
            {
                PackedLinear.Vector512Enabled = saved && block % 2 == 0;
                var list = PackedLinear.Vector512Enabled ? on : off;
                for (int r = 0; r < reps; r++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    p.ScoreCandidates(ctx, cands, offsets, scores);
                    list.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                }
            }
            PackedLinear.Vector512Enabled = saved;
            var i16 = new List<double>();
            for (int w = 0; w < 3; w++) q.ScoreCandidates(ctx, cands, offsets, scores);
            for (int r = 0; r < 3 * reps; r++)
            {
                long t0 = Stopwatch.GetTimestamp();
                q.ScoreCandidates(ctx, cands, offsets, scores);
                i16.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
            // the encoder's Linears alone: QKV, attention output, intermediate (GELU), output per layer; the last layer's
            // output-side Linears see only the [CLS] rows (B) as in the Predictor
            int M = B * T;
            float[] x = Rand(M * F), y = new float[M * F];
            var lin = new List<double>();
            for (int r = 0; r < reps * 3; r++)
            {
                long t0 = Stopwatch.GetTimestamp();
                for (int l = 0; l < L; l++)
                {
                    int rows = l == L - 1 ? B : M;
                    PackedLinear.Forward(x.AsSpan(0, M * C), M, wQkv, b3, y.AsSpan(0, M * 3 * C));
                    PackedLinear.Forward(x.AsSpan(0, rows * C), rows, wO, bC, y.AsSpan(0, rows * C));
                    PackedLinear.Forward(x.AsSpan(0, rows * C), rows, wI, bF, y.AsSpan(0, rows * F), Activation.Gelu);
                    PackedLinear.Forward(x.AsSpan(0, rows * F), rows, wOut, bC, y.AsSpan(0, rows * C));
                }
                if (r >= 2) lin.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
            double Med(List<double> v) { v.Sort(); return v[v.Count / 2]; }
            double mOn = Med(on), mOff = off.Count > 0 ? Med(off) : double.NaN, mLin = Med(lin);
            double flops = 2.0 * L * ((double)M * 3 * C * C) + 2.0 * (L - 1) * ((double)M * (C * C + 2.0 * C * F)) + 2.0 * B * (C * C + 2.0 * C * F);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"B {B,2} T {T,3}: Predictor fp32 p50 {mOn,8:0.00} ms (Vector512 tiles) {mOff,8:0.00} ms (256-bit tiles)   Linears alone {mLin,8:0.00} ms = {flops / mLin / 1e6,5:0} GFLOP/s, {100 * mLin / mOn,3:0} % of the request;  int16 Predictor p50 {Med(i16),8:0.00} ms"));
        }
    }

    /// <summary>Predictor requests (the latency bench's inputs) in a loop for SECONDS (default 15), for `perf record`; BATCH, SEQ
    /// (default 1, 32), INT16=1 for the int16 Linears. Prints the median.</summary>
    private static void ServingLoop(string modelDir)
    {
        int Env(string name, int dflt) => int.TryParse(Environment.GetEnvironmentVariable(name), out int v) ? v : dflt;
        int B = Env("BATCH", 1), T = Env("SEQ", 32), seconds = Env("SECONDS", 15);
        using var backend = new CpuSimdBackend();
        var adapter = new AdapterConfig { HiddenSizes = [], DenseFeatures = 0, Input = AdapterInput.Pooler, Dropout = 0f };
        using var m = BertCheckpoint.Load(modelDir, backend, adapter, seed: 1);
        var popts = new PredictorOptions { MaxLength = T, MaxBatch = B, ClsId = 101, SepId = 102 };
        using var p = new Predictor(m, Env("INT16", 0) == 1 ? popts with { Precision = ServingPrecision.Int16 } : popts);
        var (ctx, cands, offsets, _) = LatencyBench.Inputs(B, T);
        var scores = new float[B];
        var times = new List<double>();
        var all = Stopwatch.StartNew();
        while (all.Elapsed.TotalSeconds < seconds)
        {
            long t0 = Stopwatch.GetTimestamp();
            p.ScoreCandidates(ctx, cands, offsets, scores);
            times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        times.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"B {B} T {T}: {times.Count} requests, p50 {times[times.Count / 2]:0.000} ms"));
    }
}
