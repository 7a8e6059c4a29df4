// `selftest`: the fair harness with trivial engines (a short busy loop), for its tests and as a quick check that worker
// processes start, answer and stop on this machine. Hidden from the usage line.
using System.Globalization;
using System.Text.Json;

namespace FastRec.Bench.Fair;

/// <summary>
/// <c>selftest [--engines a,b] [--reps N] [--warmup W] [--crash ENGINE] [--json]</c> plus the harness flags
/// (<see cref="HarnessOptions"/>). Each engine's request is a busy loop of ~0.1 ms; <c>--crash ENGINE</c> makes that
/// engine's worker exit with code 3 when it builds its first case (a crash in the middle of the protocol).
/// </summary>
internal static class SelfTestBench
{
    public const int CrashExitCode = 3;

    public static int Run(string[] args)
    {
        HarnessOptions h;
        string[] engines = ["a", "b"];
        int reps = 6, warmup = 1;
        string? crash = null;
        bool json = false;
        try
        {
            h = HarnessOptions.Extract(args);
            var a = h.Args;
            for (int i = 1; i < a.Length; i++)
            {
                string Next() => i + 1 < a.Length ? a[++i] : throw new ArgumentException($"{a[i]} needs a value");
                switch (a[i])
                {
                    case "--engines": engines = Next().Split(',', StringSplitOptions.RemoveEmptyEntries); break;
                    case "--reps": reps = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--warmup": warmup = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--crash": crash = Next(); break;
                    case "--json": json = true; break;
                    default: throw new ArgumentException($"unknown option '{a[i]}'");
                }
            }
        }
        catch (Exception e) when (e is ArgumentException or FormatException) { Console.Error.WriteLine($"selftest: {e.Message}"); return 2; }

        if (h.Worker is not null) return WorkerHost.RunWorker(() => new BusyEngine(h.Worker, h.Worker == crash));

        int blockReps = h.BlockReps ?? 3;
        try
        {
            using var run = FairRun.Start(h, blockReps, engines.Select(e => new EngineSpec(e, () => new BusyEngine(e, e == crash))).ToList());
            var slots = engines.Select(e => new Slot(e, e, "busy")).ToList();
            var res = run.Run(slots, reps, warmup);
            run.Finish();
            if (json)
            {
                var result = new Dictionary<string, object?> { ["benchmark"] = "selftest" };
                foreach (var kv in run.Meta()) result[kv.Key] = kv.Value;
                result["rows"] = engines.Select(e => new Dictionary<string, object?>
                {
                    ["engine"] = e, ["reps"] = res[e].WallMs.Count, ["wall_ms"] = res[e].WallMs.Select(x => Math.Round(x, 4)).ToArray(),
                }).ToArray();
                Console.WriteLine(JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
            }
            else
            {
                foreach (string line in run.Header()) Console.WriteLine(line);
                foreach (string e in engines) Console.WriteLine($"{e,-8} {res[e].WallMs.Count} reps, median {TrainStepBench.Median(res[e].WallMs):F3} ms");
            }
            return 0;
        }
        catch (WorkerException e) { Console.Error.WriteLine($"selftest: {e.Message}"); return 1; }
    }

    private sealed class BusyEngine(string name, bool crash) : IBenchEngine
    {
        public string Name => name;
        public IReadOnlyDictionary<string, string> Settings { get; } = new Dictionary<string, string> { ["threads"] = "1", ["spinning"] = "none", ["precision"] = "fp64" };

        public BenchCase Prepare(string caseId)
        {
            if (crash) Environment.Exit(CrashExitCode);
            double sink = 0;
            return new BenchCase(() => { for (int i = 0; i < 20_000; i++) sink += Math.Sqrt(i); },
                                 () => new Dictionary<string, double> { ["sink"] = sink });
        }

        public void Dispose() { }
    }
}
