// `topk`: p50/p99 latency of one top-10 request over the whole catalogue (CatalogRecommender), 10,506 and 1M items.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FastRec.Engine.Representations;
using FastRec.Engine.Serving;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;

namespace FastRec.Bench;

/// <summary>
/// Latency of <see cref="CatalogRecommender.TopK(ReadOnlySpan{int}, ReadOnlySpan{float}, int, Span{int}, ReadOnlySpan{int}, Span{float})"/>:
/// one request = the user vector from a 50-item rated history, the head over every catalogue item, exact top 10 (history
/// excluded). Catalogues: the scorer saved by <c>fastrec tower</c> (--model, default out/tower.frts: the trained model over
/// the 10,506 MovieTweetings items; without the file, <see cref="TowerScorer.Random"/> of the default shape over 10,506
/// items), and the same scorer grown to --large items (1,000,000) by <see cref="TowerScorer.WithItems"/> with random
/// encodings (the cost of an item does not depend on its vector). Each at every --threads count (1,2): the threads one
/// request's scoring is split over. Histories: 16 random ones of 50 items, cycled. p50 and p99 of the wall time per
/// request after --warmup requests, the process CPU time per request, and the bytes allocated per request. Options:
/// --model FILE, --large N, --threads 1,2, --requests R (200; 20 for the large catalogue), --warmup W (5), --json.
/// </summary>
public static class TopKBench
{
    private sealed record Row(string Catalogue, int Items, int Threads, int Requests, double P50, double P99, double Mean, double CpuMs, double BytesPerCall);

    public static int Run(string[] args)
    {
        string model = "out/tower.frts";
        int large = 1_000_000, requests = 200, warmup = 5;
        int[] threads = [1, 2];
        bool json = args.Contains("--json");
        for (int i = 1; i < args.Length - 1; i++)
        {
            string v = args[i + 1];
            switch (args[i])
            {
                case "--model": model = v; break;
                case "--large": large = int.Parse(v, CultureInfo.InvariantCulture); break;
                case "--requests": requests = int.Parse(v, CultureInfo.InvariantCulture); break;
                case "--warmup": warmup = int.Parse(v, CultureInfo.InvariantCulture); break;
                case "--threads": threads = v.Split(',').Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToArray(); break;
            }
        }
        TowerScorer scorer;
        string what;
        if (File.Exists(model)) { scorer = TowerScorer.Load(model); what = $"trained ({Path.GetFileName(model)})"; }
        else { scorer = TowerScorer.Random(10_506, 384); what = "synthetic weights (no --model file)"; }
        Log(json, $"catalogue: {what}, {scorer.ItemCount:N0} items, d {scorer.Dim}, D {scorer.EncodingDim}, history {scorer.HistoryLength}");

        var rows = new List<Row>();
        Measure(rows, what, scorer, threads, requests, warmup, json);
        if (large > scorer.ItemCount)
        {
            var sw = Stopwatch.StartNew();
            int added = large - scorer.ItemCount;
            var grown = Grow(scorer, added);
            Log(json, $"grown to {grown.ItemCount:N0} items with random encodings in {sw.Elapsed.TotalSeconds:0.0} s");
            Measure(rows, what + $" + {added:N0} random items", grown, threads, Math.Max(10, requests / 10), Math.Min(warmup, 2), json);
        }

        string machine = $"{MachineInfo.CpuModel()}, load {MachineInfo.LoadAverage()}";
        if (json)
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                machine, history = 50, k = 10,
                rows = rows.Select(r => new
                {
                    catalogue = r.Catalogue, items = r.Items, threads = r.Threads, requests = r.Requests, p50_ms = Math.Round(r.P50, 3),
                    p99_ms = Math.Round(r.P99, 3), mean_ms = Math.Round(r.Mean, 3), cpu_ms = Math.Round(r.CpuMs, 3), bytes_per_call = r.BytesPerCall,
                }),
            }, new JsonSerializerOptions { WriteIndented = true }));
        else
        {
            Console.WriteLine($"top-10 over the whole catalogue, history 50; {machine}");
            Console.WriteLine($"{"items",10} {"threads",7} {"requests",8} {"p50 ms",9} {"p99 ms",9} {"mean ms",9} {"cpu ms",9} {"B/call",7}");
            foreach (var r in rows)
                Console.WriteLine($"{r.Items,10:N0} {r.Threads,7} {r.Requests,8} {r.P50,9:F2} {r.P99,9:F2} {r.Mean,9:F2} {r.CpuMs,9:F2} {r.BytesPerCall,7:0}");
        }
        return 0;
    }

    private static void Log(bool json, string text) => (json ? Console.Error : Console.Out).WriteLine(text);

    /// <summary><paramref name="scorer"/> with <paramref name="m"/> items of random encodings appended, 65,536 at a time.</summary>
    private static TowerScorer Grow(TowerScorer scorer, int m)
    {
        int D = scorer.EncodingDim;
        const int Chunk = 65_536;
        var enc = new float[(long)Chunk * D];
        for (int s = 0; s < m; s += Chunk)
        {
            int n = Math.Min(Chunk, m - s);
            for (long i = 0; i < (long)n * D; i++) enc[i] = Rng.Normal(0xB16C, (ulong)((long)s * D + i));
            scorer = scorer.WithItems(enc.AsSpan(0, n * D));
        }
        return scorer;
    }

    private static void Measure(List<Row> rows, string what, TowerScorer scorer, int[] threadCounts, int requests, int warmup, bool json)
    {
        int V = scorer.ItemCount;
        var rec = new CatalogRecommender(scorer, Enumerable.Range(0, V).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray());
        var histories = new (int[] Items, float[] Labels)[16];
        for (int h = 0; h < histories.Length; h++)
        {
            var items = new int[50]; var labels = new float[50];
            for (int j = 0; j < 50; j++)
            {
                items[j] = (int)(Rng.Hash(0x70C0 + (ulong)h, (ulong)j) % (ulong)V);
                labels[j] = Rng.Uniform(0x70C1 + (ulong)h, (ulong)j) < 0.6f ? 1 : 0;
            }
            histories[h] = (items, labels);
        }
        var top = new int[10];
        int saved = CpuParallel.Threads;
        try
        {
            foreach (int t in threadCounts)
            {
                CpuParallel.Threads = t;
                for (int w = 0; w < warmup; w++) rec.TopK(histories[w % 16].Items, histories[w % 16].Labels, 10, top);
                var ms = new double[requests];
                double cpu0 = LatencyBench.CpuMs();   // (reading the process CPU time allocates: outside the byte count)
                long bytes = GC.GetAllocatedBytesForCurrentThread();
                for (int q = 0; q < requests; q++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    rec.TopK(histories[q % 16].Items, histories[q % 16].Labels, 10, top);
                    ms[q] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                }
                bytes = GC.GetAllocatedBytesForCurrentThread() - bytes;
                double cpu = (LatencyBench.CpuMs() - cpu0) / requests;
                Array.Sort(ms);
                var row = new Row(what, V, t, requests, LatencyBench.Percentile(ms, 0.5), LatencyBench.Percentile(ms, 0.99), ms.Average(), cpu, (double)bytes / requests);
                rows.Add(row);
                Log(json, $"  {V:N0} items, {t} threads: p50 {row.P50:F2} ms, p99 {row.P99:F2} ms (load {MachineInfo.LoadAverage()})");
            }
        }
        finally { CpuParallel.Threads = saved; }
    }
}
