// The fair peer harness of bench/FastRec.Bench (issue 12, item 1): worker protocol, JSON fields, a crashing worker.
// Runs FastRec.Bench.dll's `selftest` (trivial engines) as real processes; no test asserts a timing.
extern alias bench;

using System.Diagnostics;
using System.Text.Json;
using bench::FastRec.Bench.Fair;

namespace FastRec.Tests.Bench;

[NonParallelizable]
public class FairHarnessTests
{
    private static readonly string BenchDll = Path.Combine(AppContext.BaseDirectory, "FastRec.Bench.dll");

    private static ProcessStartInfo Dotnet(params string[] args)
    {
        Assert.That(File.Exists(BenchDll), Is.True, $"{BenchDll} (built with the tests)");
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        psi.ArgumentList.Add(BenchDll);
        foreach (string a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    /// <summary>Runs the bench program to its end: exit code, stdout, stderr.</summary>
    private static (int Code, string Out, string Err) RunBench(params string[] args)
    {
        using var p = Process.Start(Dotnet(args))!;
        p.StandardInput.Close();
        var err = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        Assert.That(p.WaitForExit(120_000), Is.True, "the bench did not finish within 2 minutes");
        return (p.ExitCode, stdout, err.Result);
    }

    [Test]
    public void WorkerProcess_AnswersABlockRequest_WithRTimings()
    {
        using var p = Process.Start(Dotnet("selftest", "--worker", "a"))!;
        string ready = p.StandardOutput.ReadLine()!;
        Assert.That(ready, Does.StartWith("@@fastrec ready "));
        using (var doc = JsonDocument.Parse(ready["@@fastrec ready ".Length..]))
        {
            Assert.That(doc.RootElement.GetProperty("Engine").GetString(), Is.EqualTo("a"));
            Assert.That(doc.RootElement.GetProperty("Pid").GetInt32(), Is.EqualTo(p.Id));
            Assert.That(doc.RootElement.GetProperty("Settings").GetProperty("threads").GetString(), Is.EqualTo("1"));
        }
        foreach (int r in new[] { 5, 2 })
        {
            p.StandardInput.WriteLine($"block busy {r} 1");
            p.StandardInput.Flush();
            string reply = p.StandardOutput.ReadLine()!;
            Assert.That(reply, Does.StartWith("@@fastrec block "));
            var block = JsonSerializer.Deserialize<BlockResult>(reply["@@fastrec block ".Length..])!;
            Assert.That(block.Case, Is.EqualTo("busy"));
            Assert.That(block.WallMs, Has.Length.EqualTo(r));
            Assert.That(block.CpuMs, Has.Length.EqualTo(r));
            Assert.That(block.ThreadCpuMs, Has.Length.EqualTo(r));
            Assert.That(block.WallMs, Has.All.GreaterThanOrEqualTo(0));
            Assert.That(block.Extra.ContainsKey("sink"), Is.True);
        }
        p.StandardInput.WriteLine("quit");
        p.StandardInput.Flush();
        Assert.That(p.WaitForExit(30_000), Is.True);
        Assert.That(p.ExitCode, Is.EqualTo(0));
    }

    private sealed class CountingEngine : IBenchEngine
    {
        public int Runs;
        public string Name => "count";
        public IReadOnlyDictionary<string, string> Settings { get; } = new Dictionary<string, string> { ["threads"] = "1" };
        public BenchCase Prepare(string caseId) =>
            caseId == "bad" ? throw new InvalidOperationException("no such case") : new BenchCase(() => Runs++, () => new() { ["runs"] = Runs });
        public void Dispose() { }
    }

    [Test]
    public void Serve_RunsWarmupAndReps_ThenAnswersErrorsOnOneLine()
    {
        var engine = new CountingEngine();
        var output = new StringWriter();
        int code = WorkerHost.Serve(engine, new StringReader("block c 3 2\nblock c 4 0\nquit\n"), output);
        Assert.That(code, Is.EqualTo(0));
        string[] lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(3));
        var b1 = JsonSerializer.Deserialize<BlockResult>(lines[1]["@@fastrec block ".Length..])!;
        var b2 = JsonSerializer.Deserialize<BlockResult>(lines[2]["@@fastrec block ".Length..])!;
        Assert.That(b1.WallMs, Has.Length.EqualTo(3));
        Assert.That(b2.WallMs, Has.Length.EqualTo(4));
        Assert.That(engine.Runs, Is.EqualTo(2 + 3 + 4));
        Assert.That(b2.Extra["runs"], Is.EqualTo(9));

        output = new StringWriter();
        code = WorkerHost.Serve(new CountingEngine(), new StringReader("block bad 1 0\n"), output);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(output.ToString(), Does.Contain("@@fastrec error InvalidOperationException: no such case"));
    }

    [Test]
    public void HarnessOptions_TakeTheirFlags_AndBuildTheWorkerCommandLine()
    {
        var h = HarnessOptions.Extract(["latency", "--seq", "32", "--ort-no-spin", "--block-reps", "4", "--json"]);
        Assert.That(h.Tuned, Is.True);
        Assert.That(h.InProcess, Is.False);
        Assert.That(h.BlockReps, Is.EqualTo(4));
        Assert.That(h.Method(4), Is.EqualTo("separate-processes, interleaved blocks of 4"));
        Assert.That(h.PeerSettings, Is.EqualTo("tuned"));
        Assert.That(h.WorkerArgs("ort"), Is.EqualTo(new[] { "latency", "--seq", "32", "--worker", "ort", "--tuned" }));
        var old = HarnessOptions.Extract(["gemm", "--in-process"]);
        Assert.That(old.Method(1), Is.EqualTo("in-process"));
        Assert.That(old.PeerSettings, Is.EqualTo("default"));
        Assert.Throws<ArgumentException>(() => HarnessOptions.Extract(["gemm", "--block-reps", "0"]));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Json_RecordsMethodSettingsMachineLoadIdleAndDate(bool inProcess)
    {
        var args = new List<string> { "selftest", "--json", "--reps", "4", "--block-reps", "2" };
        if (inProcess) args.Add("--in-process");
        var (code, stdout, stderr) = RunBench([.. args]);
        Assert.That(code, Is.EqualTo(0), stderr);
        using var doc = JsonDocument.Parse(stdout);
        JsonElement root = doc.RootElement;
        Assert.That(root.GetProperty("method").GetString(), Is.EqualTo(inProcess ? "in-process" : "separate-processes, interleaved blocks of 2"));
        Assert.That(root.GetProperty("peer_settings").GetString(), Is.EqualTo("default"));
        foreach (string e in new[] { "a", "b" })
        {
            JsonElement s = root.GetProperty("engines").GetProperty(e);
            foreach (string key in new[] { "threads", "spinning", "precision" })
                Assert.That(s.GetProperty(key).GetString(), Is.Not.Empty, $"{e}.{key}");
        }
        Assert.That(root.GetProperty("cpu_model").GetString(), Is.Not.Empty);
        Assert.That(root.GetProperty("isa").GetArrayLength(), Is.GreaterThan(0));
        Assert.That(root.GetProperty("load_average_before").GetString(), Is.Not.Empty);
        Assert.That(root.GetProperty("load_average_after").GetString(), Is.Not.Empty);
        Assert.That(root.TryGetProperty("idle_fraction_before_blocks", out JsonElement idle), Is.True);
        if (inProcess) Assert.That(idle.ValueKind, Is.EqualTo(JsonValueKind.Null));
        else Assert.That(idle.GetProperty("blocks").GetInt32(), Is.EqualTo(4));   // 2 engines x 2 blocks of 2
        Assert.That(DateTime.TryParse(root.GetProperty("date").GetString()!.Replace(" UTC", ""), out _), Is.True);
        foreach (JsonElement row in root.GetProperty("rows").EnumerateArray())
            Assert.That(row.GetProperty("wall_ms").GetArrayLength(), Is.EqualTo(4));
    }

    [Test]
    public void CrashingWorker_GivesAClearErrorNamingTheEngine()
    {
        var (code, _, stderr) = RunBench("selftest", "--crash", "b");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stderr, Does.Contain("engine 'b' worker"));
        Assert.That(stderr, Does.Contain($"exited with code {SelfTestBench.CrashExitCode}"));
        Assert.That(stderr, Does.Contain("during block 'busy'"));
    }

    [Test]
    public void WorkerFailingAtStartUp_GivesAClearErrorNamingTheEngine()
    {
        var cmd = new WorkerCommand(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet", [BenchDll]);
        var e = Assert.Throws<WorkerException>(() => new ProcessClient(cmd, "nosuch", ["latency", "--no-ort", "--worker", "nosuch"],
            new Dictionary<string, string?>(), TimeSpan.FromMinutes(2)))!;
        Assert.That(e.Message, Does.Contain("engine 'nosuch' worker"));
        Assert.That(e.Message, Does.Contain("reported an error"));
        Assert.That(e.Message, Does.Contain("during start-up"));
    }
}
