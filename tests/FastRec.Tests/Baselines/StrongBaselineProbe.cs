// Explicit (never in CI): every strong baseline on MovieTweetings: test AUC, GAUC, log loss, fit time, hit@10, NDCG@10.
using System.Diagnostics;
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Metrics;
using FastRec.Engine.Representations;
using FastRec.Engine.Text;
using FastRec.Kernels.Cpu;

namespace FastRec.Tests.Baselines;

/// <summary>Temporal split, history features, no sampled negatives. The full-ranking check masks the items of each test
/// user's history and breaks ties by item index (a sanity check, not the evaluation core's metric). PROBE_TEXT=1 adds
/// the zero-shot baseline on MiniLM title vectors (cached in the temp folder); BPR_* and GRID_* variables set BPR options.</summary>
[Explicit("measurement probe on the real data")]
public class StrongBaselineProbe
{
    private static (RecDataset Data, EvalWindow Window) Load()
    {
        var table = HistoryFeatures.Append(MovieTweetings.Load(MovieTweetings.FindVendoredDirectory()));
        var data = RecDataset.Build(table, new ExampleOptions { NegativesPerPositive = 0 });
        return (data, EvalWindow.FromDataset(data));
    }

    /// <summary>MiniLM mean-pooled title vectors, cached under the temp folder.</summary>
    private static ItemVectors MiniLmVectors(ItemCatalog catalog)
    {
        string path = Path.Combine(Path.GetTempPath(), $"fastrec-probe-minilm-{catalog.Count}.bin");
        int D = 384;
        if (File.Exists(path))
        {
            var bytes = File.ReadAllBytes(path);
            var cached = new float[bytes.Length / 4];
            Buffer.BlockCopy(bytes, 0, cached, 0, bytes.Length);
            return new ItemVectors("all-MiniLM-L6-v2 mean-pooled", catalog.Count, D, cached);
        }
        using var backend = new CpuSimdBackend();
        using var enc = new TextEncoder(Weights.MiniLm.Dir, backend, 64);
        var values = new float[catalog.Count * D];
        for (int i = 0; i < catalog.Count; i++) enc.Encode(catalog.Text(i)).SentenceEmbedding.CopyTo(values, i * D);
        var b = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, b, 0, b.Length);
        File.WriteAllBytes(path, b);
        return new ItemVectors("all-MiniLM-L6-v2 mean-pooled", catalog.Count, D, values);
    }

    [Test]
    public void AllOnMovieTweetings()
    {
        var sw = Stopwatch.StartNew();
        var (data, window) = Load();
        TestContext.Out.WriteLine($"data {sw.Elapsed.TotalSeconds:0.0}s train {data.Train.Count} val {data.Validation.Count} test {data.Test.Count} users {window.UserCount} items {window.ItemCount} test users {window.TestUsers.Length}");
        ItemVectors? vectors = null;
        if (Environment.GetEnvironmentVariable("PROBE_TEXT") == "1")
        {
            sw.Restart();
            vectors = MiniLmVectors(data.Catalog);
            TestContext.Out.WriteLine($"text vectors {sw.Elapsed.TotalSeconds:0.0}s");
        }
        using var backend = new CpuSimdBackend();
        var options = new StrongBaselineOptions { Bpr = BprFromEnv() };
        var fitted = StrongBaselines.FitAll(window, data.Train, data.Validation, backend, vectors, options);
        var test = data.Test;
        foreach (var f in fitted)
        {
            var p = f.Model.Predict(test);
            var r = MetricsReport.Compute(test.Labels, p, test.Users, test.Items, new MetricsOptions { ItemCount = window.ItemCount });
            var (hit, ndcg) = FullRanking(f.Model, window);
            TestContext.Out.WriteLine($"{f.Name,-45} fit {f.FitSeconds,6:0.00}s  val AUC {f.ValidationAuc:0.0000}  test AUC {r.Auc:0.0000}  GAUC {r.Gauc.Value:0.0000}  logloss {r.LogLoss:0.0000}  hit@10 {hit:0.0000}  NDCG@10 {ndcg:0.0000}");
            if (f.Model is BprBaseline bpr) TestContext.Out.WriteLine($"   BPR epoch losses {string.Join(" ", bpr.EpochLosses.Select(l => l.ToString("0.000")))}");
        }
    }

    /// <summary>BPR grid on the validation window (train → validation as the "test"): hit@10, NDCG@10, val AUC, log loss.</summary>
    [Test]
    public void TuneBprOnValidation()
    {
        var (data, _) = Load();
        var empty = data.Validation.Subset([], "validation");
        var val = EvalWindow.FromSets(data.Catalog, data.Train, empty, data.Validation);
        using var backend = new CpuSimdBackend();
        var baseOpt = BprFromEnv();
        var pop = MostPopularBaseline.Fit(val);
        var (ph, pn) = FullRanking(pop, val);
        TestContext.Out.WriteLine($"most popular: hit@10 {ph:0.0000} NDCG@10 {pn:0.0000}");
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
                    var (h, n) = FullRanking(m, val);
                    var p = m.Predict(data.Validation);
                    var r = MetricsReport.Compute(data.Validation.Labels, p, data.Validation.Users, data.Validation.Items);
                    TestContext.Out.WriteLine($"lr {lr} l2 {l2} epochs {e} seed {seed} dim {dim}: {secs:0.0}s hit@10 {h:0.0000} NDCG@10 {n:0.0000} AUC {r.Auc:0.0000} GAUC {r.Gauc.Value:0.0000} logloss {r.LogLoss:0.0000} last loss {m.EpochLosses[^1]:0.000}");
                }
    }

    /// <summary>ItemKNN grid on the validation window: hit@10, NDCG@10.</summary>
    [Test]
    public void TuneKnnOnValidation()
    {
        var (data, _) = Load();
        var val = EvalWindow.FromSets(data.Catalog, data.Train, data.Validation.Subset([], "validation"), data.Validation);
        foreach (float k in Floats("GRID_K", 100))
            foreach (float shrink in Floats("GRID_SHRINK", 10))
            {
                var m = ItemKnnBaseline.Fit(val, (int)k, shrink);
                var (h, n) = FullRanking(m, val);
                TestContext.Out.WriteLine($"knn k {k} shrink {shrink}: hit@10 {h:0.0000} NDCG@10 {n:0.0000}");
            }
    }

    private static float[] Floats(string name, float fallback)
        => Environment.GetEnvironmentVariable(name) is { } v ? v.Split(',').Select(float.Parse).ToArray() : [fallback];

    private static BprOptions BprFromEnv()
    {
        var o = new BprOptions();
        if (Environment.GetEnvironmentVariable("BPR_LR") is { } lr) o = o with { LearningRate = float.Parse(lr) };
        if (Environment.GetEnvironmentVariable("BPR_L2") is { } l2) o = o with { L2 = float.Parse(l2) };
        if (Environment.GetEnvironmentVariable("BPR_EPOCHS") is { } e) o = o with { Epochs = int.Parse(e) };
        if (Environment.GetEnvironmentVariable("BPR_BATCH") is { } b) o = o with { BatchSize = int.Parse(b) };
        return o;
    }

    /// <summary>Mean over test users of (a test positive in the top 10) and NDCG@10, items of the history masked.</summary>
    private static (double Hit, double Ndcg) FullRanking(IItemScorer scorer, EvalWindow window)
    {
        var users = window.TestUsers.ToArray();
        int V = window.ItemCount, batch = 256;
        var scores = new float[batch * V];
        double hit = 0, ndcg = 0;
        var order = new int[V];
        for (int s = 0; s < users.Length; s += batch)
        {
            int n = Math.Min(batch, users.Length - s);
            scorer.ScoreItems(window, users.AsSpan(s, n), scores.AsSpan(0, n * V));
            for (int b = 0; b < n; b++)
            {
                var row = scores.AsSpan(b * V, V);
                var h = window.HistoryBeforeTest(users[s + b]);
                foreach (int i in h.Items) row[i] = float.NegativeInfinity;
                var t = window.TestRows(users[s + b]);
                var pos = new HashSet<int>();
                for (int r = 0; r < t.Count; r++) if (t.Labels[r] >= 0.5f) pos.Add(t.Items[r]);
                // Top 10 by (score desc, item asc): insertion into a sorted array of 10.
                int m = 0;
                for (int i = 0; i < V; i++)
                {
                    float x = row[i];
                    if (m == 10 && !(x > row[order[9]])) continue;
                    int k = Math.Min(m, 9);
                    while (k > 0 && x > row[order[k - 1]]) { order[k] = order[k - 1]; k--; }
                    order[k] = i;
                    if (m < 10) m++;
                }
                double dcg = 0, idcg = 0; bool any = false;
                for (int k = 0; k < 10; k++)
                {
                    if (pos.Contains(order[k])) { dcg += 1 / Math.Log2(k + 2); any = true; }
                    if (k < pos.Count) idcg += 1 / Math.Log2(k + 2);
                }
                hit += any ? 1 : 0; ndcg += dcg / idcg;
            }
        }
        return (hit / users.Length, ndcg / users.Length);
    }
}
