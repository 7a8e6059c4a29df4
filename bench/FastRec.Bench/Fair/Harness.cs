// The fair peer harness (issue 12, item 1): every engine of a peer comparison runs in its own worker process at its users'
// default settings, and the parent asks the workers in turn for blocks of R timed repetitions.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace FastRec.Bench.Fair;

/// <summary>
/// Harness flags shared by the peer benchmarks (gemm, train-step, latency), taken out of the argument list before the
/// benchmark parses its own options:
/// <list type="bullet">
/// <item><c>--in-process</c>: the old method, all engines alternating inside one process (for comparison only; labelled
/// "in-process" in the output);</item>
/// <item><c>--tuned</c>: peers at tuned settings (ONNX Runtime intra-op spinning off, <c>OMP_WAIT_POLICY=PASSIVE</c> for
/// LibTorch), labelled "tuned", never the headline; <c>--ort-no-spin</c> is the old spelling;</item>
/// <item><c>--block-reps R</c>: repetitions per block (each bench has its default);</item>
/// <item><c>--worker ENGINE</c> (hidden): run as the worker process of one engine, speaking <see cref="WorkerHost"/>'s protocol.</item>
/// </list>
/// </summary>
internal sealed record HarnessOptions(bool InProcess, bool Tuned, int? BlockReps, string? Worker, string[] Args)
{
    public static HarnessOptions Extract(string[] args)
    {
        bool inProcess = false, tuned = false;
        int? blockReps = null;
        string? worker = null;
        var rest = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--in-process": inProcess = true; break;
                case "--tuned": case "--ort-no-spin": tuned = true; break;
                case "--block-reps":
                    string v = Next();
                    if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int r) || r <= 0)
                        throw new ArgumentException($"--block-reps needs a positive integer, got '{v}'");
                    blockReps = r;
                    break;
                case "--worker": worker = Next(); break;
                default: rest.Add(args[i]); break;
            }
        }
        return new HarnessOptions(inProcess, tuned, blockReps, worker, rest.ToArray());
    }

    /// <summary>"separate-processes, interleaved blocks of R" or "in-process".</summary>
    public string Method(int blockReps) => InProcess ? "in-process" : $"separate-processes, interleaved blocks of {blockReps}";

    /// <summary>"default" (the peers as their users run them) or "tuned".</summary>
    public string PeerSettings => Tuned ? "tuned" : "default";

    /// <summary>The arguments a worker of <paramref name="engine"/> is started with: the benchmark's own options (so it builds
    /// the same cases), then the worker flag and, when asked for, the tuned flag.</summary>
    public string[] WorkerArgs(string engine) => [.. Args.Where(a => a != "--json"), "--worker", engine, .. Tuned ? new[] { "--tuned" } : []];
}

/// <summary>One engine of a comparison (FastRec, LibTorch, ONNX Runtime, ...), as built in a worker process (or, with
/// --in-process, in the parent).</summary>
internal interface IBenchEngine : IDisposable
{
    string Name { get; }

    /// <summary>What its users would need to know to reproduce it: threads, spinning / wait policy, precision, version.</summary>
    IReadOnlyDictionary<string, string> Settings { get; }

    /// <summary>Builds one case (a GEMM shape, a batch x sequence, a train step) once; the harness times its Run.</summary>
    BenchCase Prepare(string caseId);
}

/// <summary>A timed request and, optionally, figures that go with it (a loss, an accuracy), read after each block.</summary>
internal sealed class BenchCase(Action run, Func<Dictionary<string, double>>? extra = null)
{
    public Action Run { get; } = run;
    public Func<Dictionary<string, double>>? Extra { get; } = extra;
}

/// <summary>One block's timings: wall, process CPU and calling-thread CPU time per repetition (ms), plus the case's figures.</summary>
internal sealed record BlockResult(string Case, double[] WallMs, double[] CpuMs, double[] ThreadCpuMs, Dictionary<string, double> Extra);

/// <summary>Times blocks of one engine's cases (shared by the worker and the in-process client).</summary>
internal sealed class CaseRunner(IBenchEngine engine)
{
    private readonly Dictionary<string, BenchCase> _cases = new();
    private static readonly Process s_self = Process.GetCurrentProcess();

    public BlockResult Run(string caseId, int reps, int warmup)
    {
        if (!_cases.TryGetValue(caseId, out BenchCase? c)) _cases[caseId] = c = engine.Prepare(caseId);
        for (int w = 0; w < warmup; w++) c.Run();
        var wall = new double[reps]; var cpu = new double[reps]; var tcpu = new double[reps];
        for (int r = 0; r < reps; r++)
        {
            double c0 = ProcessCpuMs(); long t0 = Clocks.ThreadCpuNs(); long w0 = Stopwatch.GetTimestamp();
            c.Run();
            wall[r] = Stopwatch.GetElapsedTime(w0).TotalMilliseconds;
            tcpu[r] = (Clocks.ThreadCpuNs() - t0) / 1e6;
            cpu[r] = ProcessCpuMs() - c0;
        }
        return new BlockResult(caseId, wall, cpu, tcpu, c.Extra?.Invoke() ?? new());
    }

    /// <summary>Process CPU time (all threads) in ms: on a loaded machine it stretches far less than wall time.</summary>
    public static double ProcessCpuMs() { s_self.Refresh(); return s_self.TotalProcessorTime.TotalMilliseconds; }
}

internal static class Clocks
{
    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec { public long Sec, Nsec; }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGettime(int clock, out Timespec ts);

    /// <summary>CPU time of the calling thread in ns (CLOCK_THREAD_CPUTIME_ID); a descheduled thread does not count.</summary>
    public static long ThreadCpuNs()
    {
        const int ClockThreadCpuTimeId = 3;
        ClockGettime(ClockThreadCpuTimeId, out Timespec ts);
        return ts.Sec * 1_000_000_000 + ts.Nsec;
    }
}

/// <summary>
/// The worker side of the protocol, one line per message. The worker builds its engine, then writes
/// <c>@@fastrec ready {"Engine":..,"Settings":{..},"Pid":..}</c>; for each <c>block CASE R WARMUP</c> read on stdin it runs
/// WARMUP untimed and R timed repetitions of CASE and answers <c>@@fastrec block {BlockResult}</c>; <c>quit</c> or the end of
/// stdin ends it. A failure is answered <c>@@fastrec error MESSAGE</c> and ends the worker. Between blocks the worker is
/// blocked on the read, so its engine's threads park (after their own spin window). Other output of the worker (libraries,
/// logging) goes to stderr; lines on stdout without the prefix are passed through by the parent, never parsed.
/// </summary>
internal static class WorkerHost
{
    public const string Prefix = "@@fastrec";

    internal sealed record ReadyMessage(string Engine, Dictionary<string, string> Settings, int Pid);

    /// <summary>Runs the worker of one engine on this process's stdin/stdout. Returns the exit code.</summary>
    public static int RunWorker(Func<IBenchEngine> create)
    {
        var protocol = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
        Console.SetOut(Console.Error);   // nothing else may write protocol lines
        IBenchEngine engine;
        try { engine = create(); }
        catch (Exception e)
        {
            protocol.WriteLine($"{Prefix} error {OneLine(e)}");
            return 1;
        }
        using (engine) return Serve(engine, Console.In, protocol);
    }

    public static int Serve(IBenchEngine engine, TextReader input, TextWriter output)
    {
        var runner = new CaseRunner(engine);
        output.WriteLine($"{Prefix} ready {JsonSerializer.Serialize(new ReadyMessage(engine.Name, new(engine.Settings), Environment.ProcessId))}");
        output.Flush();
        while (input.ReadLine() is string line)
        {
            string[] p = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (p.Length == 0) continue;
            if (p[0] == "quit") return 0;
            try
            {
                if (p[0] != "block" || p.Length != 4) throw new FormatException($"unknown request '{line}' (block CASE R WARMUP | quit)");
                int reps = int.Parse(p[2], CultureInfo.InvariantCulture), warmup = int.Parse(p[3], CultureInfo.InvariantCulture);
                BlockResult r = runner.Run(p[1], reps, warmup);
                output.WriteLine($"{Prefix} block {JsonSerializer.Serialize(r)}");
                output.Flush();
            }
            catch (Exception e)
            {
                output.WriteLine($"{Prefix} error {OneLine(e)}");
                output.Flush();
                return 1;
            }
        }
        return 0;
    }

    internal static string OneLine(Exception e) => $"{e.GetType().Name}: {e.Message}".ReplaceLineEndings(" ");
}

/// <summary>The parent's handle on one engine: a worker process, or (with --in-process) the engine itself.</summary>
internal interface IEngineClient : IDisposable
{
    string Engine { get; }
    IReadOnlyDictionary<string, string> Settings { get; }

    /// <summary>The worker's process id; null in-process.</summary>
    int? Pid { get; }

    BlockResult RunBlock(string caseId, int reps, int warmup);
}

/// <summary>An engine built in the parent process (the old, in-process method).</summary>
internal sealed class InProcessClient(IBenchEngine engine) : IEngineClient
{
    private readonly CaseRunner _runner = new(engine);
    public string Engine => engine.Name;
    public IReadOnlyDictionary<string, string> Settings => engine.Settings;
    public int? Pid => null;
    public BlockResult RunBlock(string caseId, int reps, int warmup) => _runner.Run(caseId, reps, warmup);
    public void Dispose() => engine.Dispose();
}

/// <summary>A worker failed: it exited, reported an error, or did not answer. The message names the engine.</summary>
internal sealed class WorkerException(string message) : Exception(message);

/// <summary>How to start this bench program again as a worker: the apphost, or dotnet + the bench dll.</summary>
internal sealed record WorkerCommand(string FileName, string[] PrefixArgs)
{
    public static WorkerCommand Self()
    {
        string proc = Environment.ProcessPath ?? "dotnet";
        return Path.GetFileNameWithoutExtension(proc).Equals("dotnet", StringComparison.OrdinalIgnoreCase)
            ? new WorkerCommand(proc, [typeof(WorkerCommand).Assembly.Location])
            : new WorkerCommand(proc, []);
    }
}

/// <summary>A worker process of one engine, asked over stdin/stdout lines (see <see cref="WorkerHost"/>).</summary>
internal sealed class ProcessClient : IEngineClient
{
    private readonly Process _p;
    private readonly Queue<string> _stderrTail = new();
    private readonly TimeSpan _timeout;
    private string _doing = "start-up";

    public string Engine { get; }
    public IReadOnlyDictionary<string, string> Settings { get; private set; } = new Dictionary<string, string>();
    public int? Pid => _p.Id;

    /// <param name="env">variables to set in the worker's environment (null value: remove it).</param>
    public ProcessClient(WorkerCommand cmd, string engine, IEnumerable<string> args, IReadOnlyDictionary<string, string?> env, TimeSpan timeout)
    {
        Engine = engine;
        _timeout = timeout;
        var psi = new ProcessStartInfo(cmd.FileName)
        {
            UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        foreach (string a in cmd.PrefixArgs.Concat(args)) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env)
            if (v is null) psi.Environment.Remove(k);
            else psi.Environment[k] = v;
        _p = Process.Start(psi) ?? throw new WorkerException($"engine '{engine}': could not start worker {cmd.FileName}");
        _p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_stderrTail)
            {
                _stderrTail.Enqueue(e.Data);
                while (_stderrTail.Count > 15) _stderrTail.Dequeue();
            }
            Console.Error.WriteLine($"  [{engine} worker] {e.Data}");
        };
        _p.BeginErrorReadLine();
        try
        {
            string ready = Read("ready");
            var msg = JsonSerializer.Deserialize<WorkerHost.ReadyMessage>(ready) ?? throw Failed("sent an empty ready message");
            Settings = msg.Settings;
        }
        catch
        {
            Dispose();   // a worker that never became ready is not left behind
            throw;
        }
    }

    public BlockResult RunBlock(string caseId, int reps, int warmup)
    {
        _doing = $"block '{caseId}'";
        try
        {
            _p.StandardInput.WriteLine($"block {caseId} {reps} {warmup}");
            _p.StandardInput.Flush();
        }
        catch (IOException) { throw Exited(); }
        var r = JsonSerializer.Deserialize<BlockResult>(Read("block")) ?? throw Failed("sent an empty block reply");
        if (r.WallMs.Length != reps) throw Failed($"answered {r.WallMs.Length} timings for a block of {reps}");
        return r;
    }

    private string Read(string kind)
    {
        while (true)
        {
            Task<string?> t = _p.StandardOutput.ReadLineAsync();
            if (!t.Wait(_timeout)) throw Failed($"did not answer within {_timeout.TotalSeconds:F0} s");
            string? line = t.Result;
            if (line is null) throw Exited();
            if (!line.StartsWith(WorkerHost.Prefix + " ", StringComparison.Ordinal)) { Console.Error.WriteLine($"  [{Engine} worker] {line}"); continue; }
            string body = line[(WorkerHost.Prefix.Length + 1)..];
            int sp = body.IndexOf(' ');
            string k = sp < 0 ? body : body[..sp], rest = sp < 0 ? "" : body[(sp + 1)..];
            if (k == "error") throw Failed($"reported an error: {rest}");
            if (k != kind) throw Failed($"sent '{k}' where '{kind}' was expected");
            return rest;
        }
    }

    private WorkerException Failed(string what) =>
        new($"engine '{Engine}' worker (pid {_p.Id}) {what} during {_doing}{StderrTail()}");

    private WorkerException Exited()
    {
        _p.WaitForExit(10_000);
        string code = _p.HasExited ? $"exited with code {_p.ExitCode}" : "closed its output";
        return new WorkerException($"engine '{Engine}' worker (pid {_p.Id}) {code} during {_doing}{StderrTail()}");
    }

    private string StderrTail()
    {
        lock (_stderrTail) return _stderrTail.Count == 0 ? "" : "; its last stderr lines: " + string.Join(" | ", _stderrTail);
    }

    public void Dispose()
    {
        try
        {
            if (!_p.HasExited)
            {
                _p.StandardInput.WriteLine("quit");
                _p.StandardInput.Close();
                if (!_p.WaitForExit(10_000)) _p.Kill(entireProcessTree: true);
            }
        }
        catch (Exception e) when (e is IOException or InvalidOperationException) { }
        _p.Dispose();
    }
}
