// The `gemm` benchmark: CpuGemm vs LibTorch (TorchSharp) on the GEMM shapes of a MiniLM train step, same thread count.
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text.Json;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Bench.Fair;
using TorchSharp;

namespace FastRec.Bench;

/// <summary>
/// <c>gemm [--threads N] [--reps R] [--kernel NAME|all] [--shapes fwd|nn|tn|att|all] [--m M] [--t T] [--no-torch] [--min] [--cpu-time] [--json]
/// [--tuned] [--block-reps R] [--in-process]</c>
/// (--min reports the fastest rep instead of the median, --cpu-time times the calling thread's CPU time instead of the
/// wall clock: both steadier on a shared box while comparing kernel variants at 1 thread).
/// Shapes: M = B·T tokens, (in, out) ∈ {384, 1536}²: forward y = x·Wᵀ (NT), backward δx = δy·W (NN) and
/// δW += δyᵀ·x (TN, accumulate). FastRec and LibTorch each run in their own worker process (<see cref="FairRun"/>),
/// LibTorch at its default OpenMP wait policy (--tuned: PASSIVE, labelled "tuned"); the parent asks them in turn for blocks
/// of R reps (--block-reps, default 1), so a noisy neighbour hits both alike and neither runs beside the other's spinning
/// threads; the median is reported, with a measured FMA peak of the same threads as the floor. --in-process: the old
/// method (both in this process, alternating rep by rep; LibTorch's wait policy is this process's OMP_WAIT_POLICY).
/// </summary>
internal static class GemmBench
{
    private sealed record Shape(string Form, int M, int N, int K, bool TransA, bool TransB, bool Accumulate, int Batch = 1)
    {
        public double Flops => 2.0 * M * N * K * Batch;
        public string Name => (Batch > 1 ? $"{Form} {Batch}x" : $"{Form} ") + $"({M},{N},{K},{(TransA ? "T" : "N")},{(TransB ? "T" : "N")})";
    }

    /// <summary>One shape's result. PairedRatio is the median over reps of (torch time / our time) within the same rep,
    /// where the two ran back to back: on a shared machine it is steadier than the ratio of the medians.</summary>
    private sealed record Row(Shape Shape, string Kernel, double OursMs, double TorchMatmulMs, double TorchInPlaceMs, double PairedRatio);

    public static int Run(string[] args)
    {
        int threads = 2, reps = 7, m = 2048;
        bool json = false, torchOn = true;
        s_useMin = false;
        string kernelArg = "auto", shapesArg = "all";
        HarnessOptions h;
        try { h = HarnessOptions.Extract(args); }
        catch (ArgumentException e) { Console.Error.WriteLine($"gemm: {e.Message}"); return 2; }
        args = h.Args;
        for (int i = 1; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"gemm: {args[i]} needs a value");
            switch (args[i])
            {
                case "--threads": threads = int.Parse(Next()); break;
                case "--reps": reps = int.Parse(Next()); break;
                case "--m": m = int.Parse(Next()); break;
                case "--t": s_seq = int.Parse(Next()); break;
                case "--kernel": kernelArg = Next(); break;
                case "--shapes": shapesArg = Next(); break;
                case "--no-torch": torchOn = false; break;
                case "--json": json = true; break;
                case "--min": s_useMin = true; break;
                case "--cpu-time": s_cpuTime = true; break;
                default: Console.Error.WriteLine($"gemm: unknown option '{args[i]}'"); return 2;
            }
        }

        CpuParallel.Threads = threads;
        List<GemmKernel> kernels = kernelArg == "all"
            ? Enum.GetValues<GemmKernel>().Where(k => k != GemmKernel.Auto && k != GemmKernel.Scalar4x4 && CpuGemm.IsSupported(k)).ToList()
            : [Enum.Parse<GemmKernel>(kernelArg, ignoreCase: true)];
        List<Shape> shapes = Shapes(m).Where(s => shapesArg == "all" || s.Form.Equals(shapesArg, StringComparison.OrdinalIgnoreCase)).ToList();
        if (h.Worker is not null) return WorkerHost.RunWorker(() => new GemmEngine(h.Worker, shapes, threads, h.InProcess));

        double peak = MeasureFmaPeak(threads);   // before the workers start
        int blockReps = h.BlockReps ?? 1;
        EngineSpec Spec(string name) => new(name, () => new GemmEngine(name, shapes, threads, h.InProcess),
            name == "torch" ? new Dictionary<string, string?> { ["OMP_WAIT_POLICY"] = h.Tuned ? "PASSIVE" : null } : null);
        string? torchError = null;
        FairRun run;
        try { run = FairRun.Start(h, blockReps, torchOn ? [Spec("fastrec"), Spec("torch")] : [Spec("fastrec")]); }
        catch (Exception e) when (torchOn && e is WorkerException or TypeInitializationException or DllNotFoundException)
        {
            torchError = e.Message; torchOn = false;
            try { run = FairRun.Start(h, blockReps, [Spec("fastrec")]); }
            catch (WorkerException e2) { Console.Error.WriteLine($"gemm: {e2.Message}"); return 1; }
        }
        using (run)
        {
            if (!json)
            {
                Console.WriteLine($"gemm: {threads} thread(s), {reps} reps ({(s_useMin ? "min" : "median")}, {(s_cpuTime ? "thread CPU time" : "wall clock")}), " +
                                  $"measured FMA peak {peak:F1} GFLOP/s");
                if (torchError is not null) Console.WriteLine($"torch unavailable: {torchError}");
            }
            var rows = new List<Row>();
            try
            {
                bool headed = false;
                for (int si = 0; si < shapes.Count; si++)
                    foreach (GemmKernel k in kernels)
                    {
                        Row r = Measure(run, si, shapes[si], k, reps, torchOn);
                        rows.Add(r);
                        if (json) continue;
                        if (!headed)
                        {
                            Console.WriteLine($"{"shape (M,N,K,tA,tB)",-32} {"kernel",-12} {"floor ms",9} {"ours ms",9} {"GFLOP/s",8} {"%peak",6} " +
                                              $"{"torch mm",9} {"addmm_",9} {"t GFLOP/s",9} {"ratio",6} {"paired",6}");
                            headed = true;
                        }
                        Print(r, peak);
                    }
            }
            catch (WorkerException e) { Console.Error.WriteLine($"gemm: {e.Message}"); return 1; }
            run.Finish();
            if (!json)
            {
                double ours = rows.Sum(r => r.OursMs), theirs = rows.Sum(r => BestTorch(r));
                Console.WriteLine($"total: ours {ours:F1} ms" + (torchOn ? $", torch {theirs:F1} ms, ratio (torch time / ours) {theirs / ours:F2}, " +
                    $"median paired ratio {MedianOf(rows.Select(r => r.PairedRatio).ToArray()):F2}" : ""));
                foreach (string line in run.Header()) Console.WriteLine(line);
            }
            else WriteJson(rows, threads, reps, peak, torchError, run);
        }
        return 0;
    }

    private static IEnumerable<Shape> Shapes(int m)
    {
        int[] dims = [384, 1536];
        foreach (int inF in dims)
            foreach (int outF in dims)
                yield return new Shape("fwd", m, outF, inF, false, true, false);     // y(M,out) = x(M,in)·W(out,in)ᵀ
        foreach (int inF in dims)
            foreach (int outF in dims)
                yield return new Shape("nn", m, inF, outF, false, false, false);     // δx(M,in) = δy(M,out)·W(out,in)
        foreach (int inF in dims)
            foreach (int outF in dims)
                yield return new Shape("tn", outF, inF, m, true, false, true);       // δW(out,in) += δy(M,out)ᵀ·x(M,in)
        // Attention, batched over B·NH heads (T = 128 or --t, NH = 12, HS = 32, B = M / T).
        const int NH = 12, HS = 32;
        int T = s_seq;
        int bh = Math.Max(1, m / T) * NH;
        yield return new Shape("att", T, T, HS, false, true, false, bh);   // scores = Q·Kᵀ, δprobs = δout·Vᵀ
        yield return new Shape("att", T, HS, T, false, false, false, bh);  // out = probs·V, δQ = δscores·K
        yield return new Shape("att", T, HS, T, true, false, false, bh);   // δV = probsᵀ·δout, δK = δscoresᵀ·Q
    }

    private static double BestTorch(Row r) => Math.Min(r.TorchMatmulMs, r.TorchInPlaceMs);

    private static Row Measure(FairRun run, int si, Shape s, GemmKernel kernel, int reps, bool torchOn)
    {
        var slots = new List<Slot> { new("ours", "fastrec", $"{si}:{kernel}") };
        if (torchOn) { slots.Add(new("mm", "torch", $"{si}:mm")); slots.Add(new("ip", "torch", $"{si}:ip")); }
        var res = run.Run(slots, reps, warmup: 2);
        double[] T(string key) => (s_cpuTime ? res[key].ThreadCpuMs : res[key].WallMs).ToArray();
        double[] ours = T("ours"), mm = torchOn ? T("mm") : [], ip = torchOn ? T("ip") : [];
        double paired = torchOn ? MedianOf(Enumerable.Range(0, reps).Select(r => Math.Min(mm[r], ip[r]) / ours[r]).ToArray()) : double.NaN;
        return new Row(s, kernel.ToString(), Median(ours), torchOn ? Median(mm) : double.NaN, torchOn ? Median(ip) : double.NaN, paired);
    }

    /// <summary>One side of the comparison: "fastrec" (CpuGemm, case "SHAPE:KERNEL") or "torch" (LibTorch, case "SHAPE:mm" for
    /// torch.matmul, "SHAPE:ip" for the in-place addmm_ / baddbmm).</summary>
    private sealed class GemmEngine : IBenchEngine
    {
        private readonly List<Shape> _shapes;
        private readonly List<IDisposable> _tensors = new();
        public string Name { get; }
        public IReadOnlyDictionary<string, string> Settings { get; }

        public GemmEngine(string name, List<Shape> shapes, int threads, bool inProcess)
        {
            if (name is not ("fastrec" or "torch")) throw new ArgumentException($"gemm: no engine '{name}' (fastrec, torch)");
            Name = name; _shapes = shapes;
            if (name == "torch")
            {
                torch.set_num_threads(threads);
                string omp = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "unset";
                Settings = new Dictionary<string, string>
                {
                    ["engine"] = $"LibTorch via TorchSharp {typeof(torch).Assembly.GetName().Version} (torch.matmul and addmm_/baddbmm)",
                    ["threads"] = $"intra-op {torch.get_num_threads()} (set_num_threads)",
                    ["spinning"] = $"OpenMP, OMP_WAIT_POLICY {omp}{(omp == "PASSIVE" ? " (tuned)" : omp == "unset" ? " (default: threads spin at barriers)" : "")}" +
                                   (inProcess ? ", in-process (inherited from the parent)" : ""),
                    ["precision"] = "fp32",
                };
            }
            else
                Settings = new Dictionary<string, string>
                {
                    ["engine"] = "FastRec CpuGemm",
                    ["threads"] = $"{threads} (CpuParallel)",
                    ["spinning"] = MachineInfo.FastRecSpinning(),
                    ["precision"] = "fp32",
                    ["vector512"] = $"{(Vector512.IsHardwareAccelerated ? "accelerated" : "not accelerated")}",
                };
        }

        public BenchCase Prepare(string caseId)
        {
            string[] p = caseId.Split(':');
            Shape s = _shapes[int.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture)];
            int aRows = s.TransA ? s.K : s.M, aCols = s.TransA ? s.M : s.K;
            int bRows = s.TransB ? s.N : s.K, bCols = s.TransB ? s.K : s.N;
            int batch = s.Batch;
            long sa = (long)aRows * aCols, sb = (long)bRows * bCols, sc = (long)s.M * s.N;
            float[] a = Data((int)(sa * batch), 1), b = Data((int)(sb * batch), 2), c = Data((int)(sc * batch), 3);
            if (Name == "fastrec")
            {
                var kernel = Enum.Parse<GemmKernel>(p[1], ignoreCase: true);
                return new BenchCase(() =>
                {
                    CpuGemm.Kernel = kernel;
                    if (batch == 1) CpuGemm.Sgemm(s.TransA, s.TransB, s.M, s.N, s.K, 1f, a, aCols, b, bCols, s.Accumulate, c, s.N);
                    else CpuGemm.SgemmBatched(s.TransA, s.TransB, s.M, s.N, s.K, 1f, a, aCols, b, bCols, s.Accumulate, c, s.N, batch, sa, sb, sc);
                });
            }
            long[] Dims(int r, int cl) => batch == 1 ? [r, cl] : [batch, r, cl];
            torch.Tensor ta = torch.tensor(a, Dims(aRows, aCols)), tb = torch.tensor(b, Dims(bRows, bCols)), tc = torch.tensor(c, Dims(s.M, s.N));
            // op(A), op(B): the transposes are views (LibTorch passes them to its BLAS as transpose flags).
            torch.Tensor opA = s.TransA ? ta.transpose(-2, -1) : ta, opB = s.TransB ? tb.transpose(-2, -1) : tb;
            _tensors.AddRange([ta, tb, tc, opA, opB]);
            if (p[1] == "mm")
                return new BenchCase(() =>
                {
                    using var prod = torch.matmul(opA, opB);
                    if (s.Accumulate) tc.add_(prod);
                });
            float beta = s.Accumulate ? 1 : 0;
            return new BenchCase(() =>
            {
                if (batch == 1) tc.addmm_(opA, opB, beta: beta, alpha: 1);
                else { using var prod = opA.baddbmm(opB, tc, beta: beta, alpha: 1); } // TorchSharp: batch1.baddbmm(batch2, input); no in-place form
            });
        }

        public void Dispose()
        {
            foreach (var t in _tensors) t.Dispose();
        }
    }

    private static bool s_cpuTime;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec { public long Sec, Nsec; }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGettime(int clock, out Timespec ts);

    private static long ThreadCpuNs()
    {
        const int ClockThreadCpuTimeId = 3;
        ClockGettime(ClockThreadCpuTimeId, out Timespec ts);
        return ts.Sec * 1_000_000_000 + ts.Nsec;
    }

    private static bool s_useMin;
    private static int s_seq = 128;

    private static double Median(double[] x) => s_useMin ? x.Min() : MedianOf(x);

    private static double MedianOf(double[] x)
    {
        var s = (double[])x.Clone();
        Array.Sort(s);
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }

    private static float[] Data(int n, ulong seed)
    {
        var r = new float[n];
        for (int i = 0; i < n; i++) r[i] = 2f * Rng.Uniform(seed, (ulong)i) - 1f;
        return r;
    }

    private static void Print(Row r, double peak)
    {
        double floorMs = r.Shape.Flops / (peak * 1e9) * 1e3;
        double g = r.Shape.Flops / (r.OursMs * 1e6);
        double t = r.Shape.Flops / (BestTorch(r) * 1e6);
        Console.WriteLine($"{r.Shape.Name,-32} {r.Kernel,-12} {floorMs,9:F2} {r.OursMs,9:F2} {g,8:F1} {100 * g / peak,5:F0}% " +
                          $"{r.TorchMatmulMs,9:F2} {r.TorchInPlaceMs,9:F2} {t,9:F1} {g / t,6:F2} {r.PairedRatio,6:F2}");
    }

    private static void WriteJson(List<Row> rows, int threads, int reps, double peak, string? torchError, FairRun run)
    {
        using var w = new Utf8JsonWriter(Console.OpenStandardOutput(), new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("bench", "gemm");
        w.WriteNumber("threads", threads);
        w.WriteNumber("reps", reps);
        w.WriteNumber("fmaPeakGflops", Math.Round(peak, 2));
        w.WriteString("statistic", s_useMin ? "min" : "median");
        w.WriteString("clock", s_cpuTime ? "thread-cpu" : "wall");
        if (torchError is not null) w.WriteString("torchError", torchError);
        foreach (var kv in run.Meta())
        {
            w.WritePropertyName(kv.Key);
            JsonSerializer.Serialize(w, kv.Value);
        }
        w.WriteStartArray("shapes");
        foreach (Row r in rows)
        {
            double g = r.Shape.Flops / (r.OursMs * 1e6), t = r.Shape.Flops / (BestTorch(r) * 1e6);
            w.WriteStartObject();
            w.WriteString("form", r.Shape.Form);
            w.WriteNumber("M", r.Shape.M); w.WriteNumber("N", r.Shape.N); w.WriteNumber("K", r.Shape.K);
            w.WriteBoolean("transA", r.Shape.TransA); w.WriteBoolean("transB", r.Shape.TransB);
            w.WriteBoolean("accumulate", r.Shape.Accumulate);
            w.WriteString("kernel", r.Kernel);
            w.WriteNumber("floorMs", Math.Round(r.Shape.Flops / (peak * 1e9) * 1e3, 3));
            w.WriteNumber("oursMs", Math.Round(r.OursMs, 3));
            w.WriteNumber("oursGflops", Math.Round(g, 2));
            if (!double.IsNaN(t))
            {
                w.WriteNumber("torchMatmulMs", Math.Round(r.TorchMatmulMs, 3));
                w.WriteNumber("torchAddmmInPlaceMs", Math.Round(r.TorchInPlaceMs, 3));
                w.WriteNumber("torchGflops", Math.Round(t, 2));
                w.WriteNumber("ratio", Math.Round(g / t, 3));
                w.WriteNumber("pairedRatio", Math.Round(r.PairedRatio, 3));
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.Flush();
        Console.WriteLine();
    }

    // ------------------------------------------------------------------ FMA peak (the floor)

    private struct PeakJob : IParallelRangeJob
    {
        public long Iterations;
        public unsafe double* Sink;
        public readonly unsafe void Execute(int start, int end, int part)
        {
            // 12 independent FMA chains: enough to cover the FMA latency on two pipes. Vector512 where it is accelerated
            // (Zen 5 runs 512-bit FMAs at full width: a Vector256 probe would measure half its peak).
            if (Vector512.IsHardwareAccelerated)
            {
                var x5 = Vector512.Create(1.0000001f); var y5 = Vector512.Create(0.9999999f);
                Vector512<float> b0 = x5, b1 = x5, b2 = x5, b3 = x5, b4 = x5, b5 = x5, b6 = x5, b7 = x5, b8 = x5, b9 = x5, b10 = x5, b11 = x5;
                for (long i = 0; i < Iterations; i++)
                {
                    b0 = Vector512.FusedMultiplyAdd(b0, y5, x5); b1 = Vector512.FusedMultiplyAdd(b1, y5, x5);
                    b2 = Vector512.FusedMultiplyAdd(b2, y5, x5); b3 = Vector512.FusedMultiplyAdd(b3, y5, x5);
                    b4 = Vector512.FusedMultiplyAdd(b4, y5, x5); b5 = Vector512.FusedMultiplyAdd(b5, y5, x5);
                    b6 = Vector512.FusedMultiplyAdd(b6, y5, x5); b7 = Vector512.FusedMultiplyAdd(b7, y5, x5);
                    b8 = Vector512.FusedMultiplyAdd(b8, y5, x5); b9 = Vector512.FusedMultiplyAdd(b9, y5, x5);
                    b10 = Vector512.FusedMultiplyAdd(b10, y5, x5); b11 = Vector512.FusedMultiplyAdd(b11, y5, x5);
                }
                Sink[part] = Vector512.Sum(b0 + b1 + b2 + b3 + b4 + b5 + b6 + b7 + b8 + b9 + b10 + b11);
                return;
            }
            var x = Vector256.Create(1.0000001f); var y = Vector256.Create(0.9999999f);
            Vector256<float> a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x, a8 = x, a9 = x, a10 = x, a11 = x;
            for (long i = 0; i < Iterations; i++)
            {
                a0 = Vector256.FusedMultiplyAdd(a0, y, x); a1 = Vector256.FusedMultiplyAdd(a1, y, x);
                a2 = Vector256.FusedMultiplyAdd(a2, y, x); a3 = Vector256.FusedMultiplyAdd(a3, y, x);
                a4 = Vector256.FusedMultiplyAdd(a4, y, x); a5 = Vector256.FusedMultiplyAdd(a5, y, x);
                a6 = Vector256.FusedMultiplyAdd(a6, y, x); a7 = Vector256.FusedMultiplyAdd(a7, y, x);
                a8 = Vector256.FusedMultiplyAdd(a8, y, x); a9 = Vector256.FusedMultiplyAdd(a9, y, x);
                a10 = Vector256.FusedMultiplyAdd(a10, y, x); a11 = Vector256.FusedMultiplyAdd(a11, y, x);
            }
            Sink[part] = Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
        }
    }

    /// <summary>GFLOP/s of independent FMA chains on <paramref name="threads"/> threads (best of a few short runs).</summary>
    private static unsafe double MeasureFmaPeak(int threads)
    {
        double* sink = stackalloc double[threads];
        double best = 0;
        for (int trial = 0; trial < 5; trial++)
        {
            var job = new PeakJob { Iterations = 2_000_000, Sink = sink };
            long t0 = Stopwatch.GetTimestamp(), c0 = ThreadCpuNs();
            CpuParallel.ForRange(threads, ref job, threads);
            double s = s_cpuTime && threads == 1 ? (ThreadCpuNs() - c0) / 1e9 : Stopwatch.GetElapsedTime(t0).TotalSeconds;
            best = Math.Max(best, threads * job.Iterations * 12.0 * (Vector512.IsHardwareAccelerated ? 32 : 16) / s / 1e9);
        }
        return best;
    }
}
