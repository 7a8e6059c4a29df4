// `train-step --ranks N`: data-parallel scaling of the MiniLM-shaped training step over MPI ranks: ex/s, efficiency, all-reduce time.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FastRec.Engine.Model;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Kernels.Distributed;

namespace FastRec.Bench;

/// <summary>
/// Weak scaling of one data-parallel training step: each rank runs forward + backward on its own batch of B examples
/// (MiniLM-L6 shape, as <see cref="TrainStepBench"/>), all-reduces the whole gradient buffer (22.7 M floats) through
/// <see cref="MpiCollective"/>, and applies AdamW. The harness starts <c>mpirun -np n</c> for n = 1 and n = N (each rank
/// <c>--threads</c> threads, default 1; <c>--bind-to none</c>, so a shared machine's scheduler places them) and reports, per
/// n: the median step time, examples/s = n·B / median step, efficiency = ex/s(n) / (n · ex/s(1)), the median all-reduce
/// time per step (after a barrier: the transfer and the summing alone) and the median wait at that barrier for the slowest
/// rank (load imbalance); each the largest over the ranks.
/// <para>Options: --ranks N (2), --threads T (1), --batch B (16, per rank), --seq T (64), --warmup W (1), --steps S (4),
/// --vocab V (30522), --json. Internal: --rank-worker (one rank, started by the harness).</para>
/// </summary>
public static class DataParallelBench
{
    private sealed record Options(int Ranks, int Threads, int Batch, int Seq, int Warmup, int Steps, int Vocab, bool Json, bool Worker);

    /// <summary>True when <paramref name="args"/> ask for this benchmark (train-step with --ranks or --rank-worker).</summary>
    public static bool Wanted(string[] args) => args.Contains("--ranks") || args.Contains("--rank-worker");

    /// <summary>Runs the harness or, with --rank-worker, one rank. Returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        Options o;
        try { o = Parse(args); }
        catch (ArgumentException e) { Console.Error.WriteLine($"train-step --ranks: {e.Message}"); return 2; }
        return o.Worker ? Worker(o) : Harness(o);
    }

    private static int Harness(Options o)
    {
        string? mpirun = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);
        if (mpirun is null) { Console.Error.WriteLine("train-step --ranks: mpirun not found (apt-get install openmpi-bin)"); return 2; }
        var rows = new List<Dictionary<string, object>>();
        foreach (int n in o.Ranks == 1 ? new[] { 1 } : new[] { 1, o.Ranks })
        {
            var psi = new ProcessStartInfo(mpirun) { UseShellExecute = false, RedirectStandardOutput = true };
            foreach (var a in new[] { "-np", n.ToString(CultureInfo.InvariantCulture), "--oversubscribe", "--bind-to", "none", "dotnet", typeof(DataParallelBench).Assembly.Location,
                         "train-step", "--rank-worker", "--threads", Str(o.Threads), "--batch", Str(o.Batch), "--seq", Str(o.Seq), "--warmup", Str(o.Warmup),
                         "--steps", Str(o.Steps), "--vocab", Str(o.Vocab) })
                psi.ArgumentList.Add(a);
            psi.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
            psi.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
            psi.Environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none";
            if (!o.Json) Console.Error.WriteLine($"  mpirun -np {n} ...");
            using var p = Process.Start(psi)!;
            string output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) { Console.Error.WriteLine($"train-step --ranks: the {n}-rank job failed (exit {p.ExitCode})"); return 1; }
            // (a terminal escape sequence may precede the line: .NET writes one when stdin is a terminal)
            var line = output.Split('\n').LastOrDefault(l => l.Contains("{\"ranks\"", StringComparison.Ordinal))
                       ?? throw new InvalidDataException($"the {n}-rank job printed no result:\n{output}");
            line = line[line.IndexOf('{')..];
            rows.Add(JsonSerializer.Deserialize<Dictionary<string, object>>(line)!);
        }
        static double Get(Dictionary<string, object> r, string k) => r[k] is JsonElement e ? e.GetDouble() : Convert.ToDouble(r[k], CultureInfo.InvariantCulture);
        double eps1 = Get(rows[0], "examples_per_s");
        foreach (var r in rows) r["efficiency"] = Math.Round(Get(r, "examples_per_s") / (Get(r, "ranks") * eps1), 3);
        string machine = $"{MachineInfo.CpuModel()}, {Environment.ProcessorCount} logical cores, load average {MachineInfo.LoadAverage()}";
        string date = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        if (o.Json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["benchmark"] = "train-step-data-parallel", ["date"] = date, ["machine"] = machine, ["threads_per_rank"] = o.Threads,
                ["batch_per_rank"] = o.Batch, ["seq"] = o.Seq, ["steps"] = o.Steps, ["warmup"] = o.Warmup, ["runs"] = rows,
            }, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        Console.WriteLine($"train-step data parallel  MiniLM-L6 shape (V {o.Vocab}), B {o.Batch} per rank x T {o.Seq}, {o.Threads} thread(s) per rank, MPI all-reduce of {Get(rows[0], "gradient_floats") / 1e6:0.0} M floats, median of {o.Steps} after {o.Warmup} warm-up");
        Console.WriteLine($"machine     {machine}; {date}");
        Console.WriteLine("ranks   step ms   examples/s   efficiency   all-reduce ms/step   wait for slowest rank ms/step");
        foreach (var r in rows)
            Console.WriteLine($"{Get(r, "ranks"),5:0}  {Get(r, "median_step_ms"),8:F1}  {Get(r, "examples_per_s"),11:F2}  {Get(r, "efficiency"),11:F3}  {Get(r, "median_allreduce_ms"),18:F1}  {Get(r, "median_wait_ms"),29:F1}");
        return 0;
    }

    private static string Str(int v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>One rank: the same model on every rank (seed 1), its own batch (keyed by the rank), B examples per step.</summary>
    private static int Worker(Options o)
    {
        using var comm = MpiCollective.Create(TimeSpan.FromMinutes(5));
        CpuParallel.Threads = o.Threads;
        var bert = new BertConfig
        {
            VocabSize = o.Vocab, HiddenSize = 384, NumHiddenLayers = 6, NumAttentionHeads = 12, IntermediateSize = 1536,
            MaxPositionEmbeddings = 512, TypeVocabSize = 2, HiddenDropoutProb = 0.1, AttentionProbsDropoutProb = 0.1,
        };
        var adapter = new AdapterConfig { HiddenSizes = [64], Activation = Activation.Gelu, Dropout = 0.1f, DenseFeatures = 2, Input = AdapterInput.Pooler };
        var batch = TrainStepBench.MakeBatch(o.Batch, o.Seq, o.Vocab, adapter.DenseFeatures, salt: (ulong)comm.Rank);
        var opt = new AdamWOptions { Lr = 2e-5f, WeightDecay = 0.01f, MaxGradNorm = 1.0f };
        using var backend = new CpuSimdBackend();
        using var model = new RecModel(backend, bert, adapter);
        model.InitRandom(1);
        var steps = new List<double>();
        var reduces = new List<double>();
        var waits = new List<double>();
        for (int step = 1; step <= o.Warmup + o.Steps; step++)
        {
            comm.Barrier();   // every rank starts the step together
            var sw = Stopwatch.StartNew();
            model.ZeroGrad();
            model.ForwardBackward(batch, dropoutSeed: 7 + (ulong)comm.Rank, step: step, lossScale: 1f / comm.Size);
            double computed = sw.Elapsed.TotalMilliseconds;
            comm.Barrier();   // separates the wait for the slowest rank from the transfer
            double arrived = sw.Elapsed.TotalMilliseconds;
            comm.AllReduceSum(model.Grads.All);
            double reduced = sw.Elapsed.TotalMilliseconds;
            model.Step(opt, step);
            if (step > o.Warmup) { steps.Add(sw.Elapsed.TotalMilliseconds); waits.Add(arrived - computed); reduces.Add(reduced - arrived); }
        }
        // The slowest rank sets the pace: take each rank's median and keep the largest.
        var all = new float[3 * comm.Size];
        all[3 * comm.Rank] = (float)TrainStepBench.Median(steps);
        all[3 * comm.Rank + 1] = (float)TrainStepBench.Median(reduces);
        all[3 * comm.Rank + 2] = (float)TrainStepBench.Median(waits);
        comm.AllReduceSum(all);
        if (comm.Rank == 0)
        {
            double stepMs = 0, reduceMs = 0, waitMs = 0;
            for (int r = 0; r < comm.Size; r++) { stepMs = Math.Max(stepMs, all[3 * r]); reduceMs = Math.Max(reduceMs, all[3 * r + 1]); waitMs = Math.Max(waitMs, all[3 * r + 2]); }
            Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["ranks"] = comm.Size, ["median_step_ms"] = Math.Round(stepMs, 2), ["median_allreduce_ms"] = Math.Round(reduceMs, 2),
                ["median_wait_ms"] = Math.Round(waitMs, 2),
                ["examples_per_s"] = Math.Round(comm.Size * o.Batch / (stepMs / 1000), 3), ["gradient_floats"] = model.Layout.TotalSize,
            }));
        }
        return 0;
    }

    private static Options Parse(string[] args)
    {
        var n = new Dictionary<string, int> { ["--ranks"] = 2, ["--threads"] = 1, ["--batch"] = 16, ["--seq"] = 64, ["--warmup"] = 1, ["--steps"] = 4, ["--vocab"] = 30522 };
        bool json = false, worker = false;
        for (int i = 1; i < args.Length; i++)
        {
            if (args[i] == "--json") json = true;
            else if (args[i] == "--rank-worker") worker = true;
            else if (n.ContainsKey(args[i]) && i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0) n[args[i++]] = v;
            else if (n.ContainsKey(args[i])) throw new ArgumentException($"{args[i]} needs a positive integer");
            else throw new ArgumentException($"unknown option '{args[i]}' ({string.Join(" ", n.Keys.Select(k => k + " N"))} --json)");
        }
        if (n["--seq"] > 512) throw new ArgumentException($"--seq {n["--seq"]} exceeds max_position_embeddings 512");
        return new Options(n["--ranks"], n["--threads"], n["--batch"], n["--seq"], n["--warmup"], n["--steps"], n["--vocab"], json, worker);
    }
}
