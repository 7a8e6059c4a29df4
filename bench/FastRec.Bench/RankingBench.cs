// `ranking`: how long full-ranking evaluation takes on the vendored MovieTweetings (every test user x every item).
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Kernels.Cpu;

namespace FastRec.Bench;

/// <summary>
/// Times <see cref="FullRanking.Evaluate"/> over the 2,896 test users with a test positive and the 10,506 catalogue items of
/// the vendored MovieTweetings (temporal split), for two scorers: most popular (scoring is a copy, so this times the
/// evaluation itself: history masking, SIMD rank counting, tie expectations) and BPR-MF (a (users x 64)·(64 x V) GEMM per
/// batch of users), each plain, with the three item-slice restrictions and the sampled-100 variant, and the 1,000-resample
/// paired bootstraps of AUC, GAUC and NDCG@10. Median of --repeats (5) after one warm-up. Options: --threads N, --json.
/// </summary>
public static class RankingBench
{
    public static int Run(string[] args)
    {
        int threads = 2, repeats = 5; bool json = args.Contains("--json");
        for (int i = 1; i < args.Length - 1; i++)
        {
            if (args[i] == "--threads") threads = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            if (args[i] == "--repeats") repeats = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
        }
        CpuParallel.Threads = threads;
        var data = RecDataset.Build(HistoryFeatures.Append(MovieTweetings.Load(MovieTweetings.FindVendoredDirectory())), new ExampleOptions { ContextSize = 1 });
        var window = EvalWindow.FromDataset(data);
        using var backend = new CpuSimdBackend();
        var popular = MostPopularBaseline.Fit(window);
        var bpr = BprBaseline.Fit(window, backend);
        var rows = new List<(string What, double Seconds)>();
        double Time(Action a)
        {
            a();   // warm-up
            var t = new double[repeats];
            for (int r = 0; r < repeats; r++) { var sw = Stopwatch.StartNew(); a(); t[r] = sw.Elapsed.TotalSeconds; }
            Array.Sort(t);
            return t[repeats / 2];
        }
        FullRankingResult? pr = null, br = null;
        foreach (var (name, scorer) in new (string, IItemScorer)[] { ("most popular", popular), ("BPR-MF", bpr) })
        {
            rows.Add(($"{name}: full ranking, K 10/20/50", Time(() => FullRanking.Evaluate(window, scorer, new FullRankingOptions { SampledNegatives = 0 }))));
            rows.Add(($"{name}: + 3 item slices + sampled-100", Time(() =>
            {
                var r = FullRanking.Evaluate(window, scorer, Slices.WithItemSlices(window, new FullRankingOptions()));
                if (name == "BPR-MF") br = r; else pr = r;
            })));
        }
        var pp = popular.Predict(data.Test); var pb = bpr.Predict(data.Test);
        rows.Add(("paired bootstrap AUC, 1,000 resamples", Time(() => PairedBootstrap.Auc(data.Test.Labels, data.Test.Users, pb, pp))));
        rows.Add(("paired bootstrap GAUC, 1,000 resamples", Time(() => PairedBootstrap.Gauc(data.Test.Labels, data.Test.Users, pb, pp))));
        rows.Add(("paired bootstrap NDCG@10, 1,000 resamples", Time(() => PairedBootstrap.Ndcg(br!, pr!))));
        string machine = $"{MachineInfo.CpuModel()}, load {MachineInfo.LoadAverage()}, {threads} threads";
        if (json)
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                machine, users = window.TestUsers.Length, items = window.ItemCount, repeats,
                rows = rows.Select(r => new { what = r.What, median_seconds = r.Seconds }),
            }, new JsonSerializerOptions { WriteIndented = true }));
        else
        {
            Console.WriteLine($"full-ranking evaluation, {window.TestUsers.Length:N0} users x {window.ItemCount:N0} items; {machine}; median of {repeats}");
            foreach (var (what, s) in rows) Console.WriteLine($"  {what,-48} {s,8:0.000} s");
        }
        return 0;
    }
}
