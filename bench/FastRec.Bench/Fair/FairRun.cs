// The parent side of the fair harness: starts one worker per engine, asks them in turn for blocks, records the machine.
using System.Globalization;

namespace FastRec.Bench.Fair;

/// <summary>An engine to compare: its name, how to build it (in a worker, or in-process), and its worker's environment
/// changes (a null value removes the variable).</summary>
internal sealed record EngineSpec(string Name, Func<IBenchEngine> Create, IReadOnlyDictionary<string, string?>? Env = null);

/// <summary>One timed series: <paramref name="Key"/> names it in the results, <paramref name="Case"/> is the engine's case.</summary>
internal sealed record Slot(string Key, string Engine, string Case);

/// <summary>The timings of one slot over all its blocks, and the case's figures after the last block.</summary>
internal sealed class SlotResult
{
    public List<double> WallMs { get; } = new();
    public List<double> CpuMs { get; } = new();
    public List<double> ThreadCpuMs { get; } = new();
    public Dictionary<string, double> Extra { get; set; } = new();
}

/// <summary>The machine just before a block: system-wide idle fraction (/proc/stat) and the CPU the other workers used
/// (cores, from their threads' schedstat) over ~50 ms, after <paramref name="Waits"/> extra windows spent waiting for them to stop.</summary>
internal sealed record IdleSample(string Engine, string Case, double SystemIdle, double OthersCpuCores, int Waits);

/// <summary>
/// One comparison run. Separate-process mode (the default): one worker process per engine, all kept alive, each asked in
/// turn (the order rotating every round) for a block of R repetitions; before each block the parent samples the machine
/// for ~50 ms and, while another worker still burns CPU (a peer's spin window), waits for it (up to 2 s). In-process mode:
/// the engines are built in this process and alternate block by block with no wait (the old method, for comparison).
/// </summary>
internal sealed class FairRun : IDisposable
{
    private static readonly TimeSpan Window = TimeSpan.FromMilliseconds(50);
    private const double SpinThresholdCores = 0.10;
    private const int MaxWaits = 40;

    private readonly List<IEngineClient> _clients;
    public HarnessOptions Options { get; }
    public int BlockReps { get; }
    public string LoadBefore { get; }
    public string? LoadAfter { get; private set; }
    public DateTime Started { get; }
    public List<IdleSample> Samples { get; } = new();
    public IReadOnlyList<IEngineClient> Clients => _clients;

    private FairRun(HarnessOptions h, int blockReps, List<IEngineClient> clients, string loadBefore, DateTime started)
    {
        Options = h; BlockReps = blockReps; _clients = clients; LoadBefore = loadBefore; Started = started;
    }

    /// <summary>Builds the engines: in-process, or one worker process each (started together, each awaited until ready).</summary>
    public static FairRun Start(HarnessOptions h, int blockReps, IReadOnlyList<EngineSpec> engines, WorkerCommand? cmd = null, TimeSpan? timeout = null)
    {
        string loadBefore = MachineInfo.LoadAverage();
        DateTime started = DateTime.UtcNow;
        var clients = new List<IEngineClient>();
        if (h.InProcess)
        {
            foreach (EngineSpec e in engines) clients.Add(new InProcessClient(e.Create()));
            return new FairRun(h, blockReps, clients, loadBefore, started);
        }
        cmd ??= WorkerCommand.Self();
        var tasks = engines.Select(e => Task.Run(() => (IEngineClient)new ProcessClient(cmd, e.Name, h.WorkerArgs(e.Name),
            e.Env ?? new Dictionary<string, string?>(), timeout ?? TimeSpan.FromMinutes(10)))).ToArray();
        try { Task.WaitAll(tasks); }
        catch (AggregateException)
        {
            foreach (var t in tasks) if (t.IsCompletedSuccessfully) t.Result.Dispose();
            var first = tasks.Select(t => t.Exception?.InnerException).First(x => x is not null)!;
            throw first is WorkerException ? first : new WorkerException($"starting the workers failed: {first.Message}");
        }
        clients.AddRange(tasks.Select(t => t.Result));
        return new FairRun(h, blockReps, clients, loadBefore, started);
    }

    public IEngineClient Client(string engine) => _clients.First(c => c.Engine == engine);

    /// <summary>Runs <paramref name="reps"/> timed repetitions of every slot (after <paramref name="warmup"/> untimed ones in
    /// its first block), in blocks of <see cref="BlockReps"/>, the slot order rotating every round.</summary>
    public Dictionary<string, SlotResult> Run(IReadOnlyList<Slot> slots, int reps, int warmup)
    {
        var results = slots.ToDictionary(s => s.Key, _ => new SlotResult());
        int done = 0;
        for (int round = 0; done < reps; round++)
        {
            int n = Math.Min(BlockReps, reps - done);
            for (int k = 0; k < slots.Count; k++)
            {
                Slot s = slots[(k + round) % slots.Count];
                IEngineClient client = Client(s.Engine);
                if (!Options.InProcess) WaitForQuiet(client, s.Case);
                BlockResult b = client.RunBlock(s.Case, n, round == 0 ? warmup : 0);
                SlotResult r = results[s.Key];
                r.WallMs.AddRange(b.WallMs); r.CpuMs.AddRange(b.CpuMs); r.ThreadCpuMs.AddRange(b.ThreadCpuMs);
                r.Extra = b.Extra;
            }
            done += n;
        }
        return results;
    }

    private void WaitForQuiet(IEngineClient next, string caseId)
    {
        int[] others = _clients.Where(c => c != next && c.Pid is not null).Select(c => c.Pid!.Value).ToArray();
        int waits = 0;
        var (idle, othersCpu) = IdleProbe.Sample(Window, others);
        while (othersCpu > SpinThresholdCores && waits < MaxWaits)
        {
            waits++;
            (idle, othersCpu) = IdleProbe.Sample(Window, others);
        }
        Samples.Add(new IdleSample(next.Engine, caseId, idle, othersCpu, waits));
    }

    /// <summary>Call when the timing is over: records the load average after.</summary>
    public void Finish() => LoadAfter = MachineInfo.LoadAverage();

    /// <summary>The fields every peer benchmark's JSON carries (method, engines' settings, machine, load, idle fraction, date).</summary>
    public Dictionary<string, object?> Meta()
    {
        var idle = Samples.Where(s => !double.IsNaN(s.SystemIdle)).Select(s => s.SystemIdle).Order().ToArray();
        return new Dictionary<string, object?>
        {
            ["method"] = Options.Method(BlockReps),
            ["block_reps"] = BlockReps,
            ["peer_settings"] = Options.PeerSettings,
            ["engines"] = _clients.ToDictionary(c => c.Engine, c => c.Settings),
            ["cpu_model"] = MachineInfo.CpuModel(),
            ["logical_cores"] = Environment.ProcessorCount,
            ["isa"] = MachineInfo.Isa(),
            ["load_average_before"] = LoadBefore,
            ["load_average_after"] = LoadAfter ?? MachineInfo.LoadAverage(),
            ["idle_fraction_before_blocks"] = Options.InProcess ? null : new Dictionary<string, object?>
            {
                ["window_ms"] = Window.TotalMilliseconds,
                ["blocks"] = Samples.Count,
                ["median"] = idle.Length == 0 ? null : Math.Round(idle[idle.Length / 2], 3),
                ["min"] = idle.Length == 0 ? null : Math.Round(idle[0], 3),
                ["mean"] = idle.Length == 0 ? null : Math.Round(idle.Average(), 3),
                ["blocks_that_waited_for_a_spinning_worker"] = Samples.Count(s => s.Waits > 0),
                ["max_wait_ms"] = Samples.Count == 0 ? 0 : Samples.Max(s => s.Waits) * Window.TotalMilliseconds,
            },
            ["date"] = Started.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
        };
    }

    /// <summary>The header lines of the text output: method, peer settings, each engine's settings, machine and load.</summary>
    public IEnumerable<string> Header()
    {
        string label = Options.InProcess ? "in-process (old method, for comparison only: a spinning peer slows the engine after it)"
                                         : Options.Method(BlockReps) + " (one worker process per engine)";
        yield return $"method   {label}";
        yield return $"peers    {(Options.Tuned ? "TUNED settings (not the headline: peers as their users do not run them)" : "default settings (as their users run them)")}";
        foreach (var c in _clients)
            yield return $"engine   {c.Engine}: {string.Join(", ", c.Settings.Select(kv => $"{kv.Key} {kv.Value}"))}";
        yield return $"machine  {MachineInfo.CpuModel()}, {Environment.ProcessorCount} logical cores, {string.Join(" ", MachineInfo.Isa())}; " +
                     $"load average {LoadBefore} before, {LoadAfter ?? MachineInfo.LoadAverage()} after; {Started.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture)}";
        if (!Options.InProcess && Samples.Count > 0)
        {
            var idle = Samples.Select(s => s.SystemIdle).Where(x => !double.IsNaN(x)).Order().ToArray();
            if (idle.Length > 0)
                yield return $"idle     CPU idle fraction over 50 ms before each block: median {idle[idle.Length / 2]:F2}, min {idle[0]:F2} " +
                             $"({Samples.Count(s => s.Waits > 0)} of {Samples.Count} blocks waited for a spinning worker, at most {Samples.Max(s => s.Waits) * 50} ms)";
        }
    }

    public void Dispose()
    {
        foreach (var c in _clients) c.Dispose();
    }
}

/// <summary>Samples /proc: the system-wide idle fraction and the CPU time of given processes (all their threads).</summary>
internal static class IdleProbe
{
    /// <summary>Over <paramref name="window"/>: the fraction of all CPUs' time spent idle (NaN if /proc/stat is unreadable),
    /// and the cores' worth of CPU the processes <paramref name="pids"/> used.</summary>
    public static (double SystemIdle, double OthersCpuCores) Sample(TimeSpan window, IReadOnlyList<int> pids)
    {
        var s0 = ReadStat(); long p0 = pids.Sum(RunNs); long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        Thread.Sleep(window);
        var s1 = ReadStat(); long p1 = pids.Sum(RunNs); double secs = System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds;
        double idle = s0 is null || s1 is null || s1.Value.Total == s0.Value.Total ? double.NaN
            : (double)(s1.Value.Idle - s0.Value.Idle) / (s1.Value.Total - s0.Value.Total);
        return (idle, Math.Max(0, p1 - p0) / 1e9 / secs);
    }

    /// <summary>The "cpu" line of /proc/stat: idle + iowait, and the sum of all fields (jiffies).</summary>
    internal static (long Idle, long Total)? ReadStat()
    {
        try
        {
            string? line = File.ReadLines("/proc/stat").FirstOrDefault(l => l.StartsWith("cpu ", StringComparison.Ordinal));
            if (line is null) return null;
            long[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(x => long.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            long total = f.Take(8).Sum();   // user nice system idle iowait irq softirq steal (guest is inside user)
            return (f[3] + (f.Length > 4 ? f[4] : 0), total);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return null; }
    }

    /// <summary>Nanoseconds on CPU of all threads of a process (sum of /proc/PID/task/*/schedstat); 0 when unreadable.</summary>
    internal static long RunNs(int pid)
    {
        long sum = 0;
        try
        {
            foreach (string task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
            {
                try
                {
                    string s = File.ReadAllText(Path.Combine(task, "schedstat"));
                    int sp = s.IndexOf(' ');
                    if (sp > 0 && long.TryParse(s.AsSpan(0, sp), NumberStyles.None, CultureInfo.InvariantCulture, out long ns)) sum += ns;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }   // the thread ended
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return sum;
    }
}
