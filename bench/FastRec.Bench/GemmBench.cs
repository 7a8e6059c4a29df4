// The `gemm` benchmark: CpuGemm vs LibTorch (TorchSharp) on the GEMM shapes of a MiniLM train step, same thread count.
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text.Json;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using TorchSharp;

namespace FastRec.Bench;

/// <summary>
/// <c>gemm [--threads N] [--reps R] [--kernel NAME|all] [--shapes fwd|nn|tn|att|all] [--m M] [--t T] [--no-torch] [--min] [--cpu-time] [--json]</c>
/// (--min reports the fastest rep instead of the median, --cpu-time times the calling thread's CPU time instead of the
/// wall clock: both steadier on a shared box while comparing kernel variants at 1 thread).
/// Shapes: M = B·T tokens, (in, out) ∈ {384, 1536}²: forward y = x·Wᵀ (NT), backward δx = δy·W (NN) and
/// δW += δyᵀ·x (TN, accumulate). Each shape is timed with the peers alternating rep by rep (so a noisy neighbour hits
/// both alike) and the median reported, with a measured FMA peak of the same threads as the floor. On a loaded machine
/// run with OMP_WAIT_POLICY=PASSIVE, so LibTorch's idle OpenMP threads do not spin through our turns (it is printed).
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

        string? torchError = null;
        if (torchOn)
        {
            try { torch.set_num_threads(threads); }
            catch (Exception e) { torchError = $"{e.GetType().Name}: {e.Message}"; torchOn = false; }
        }

        double peak = MeasureFmaPeak(threads);
        string ompWait = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "unset";
        if (!json)
        {
            Console.WriteLine($"gemm: {threads} thread(s), {reps} reps ({(s_useMin ? "min" : "median")}, {(s_cpuTime ? "thread CPU time" : "wall clock")}), " +
                              $"{Environment.ProcessorCount} CPUs, Vector512 {(Vector512.IsHardwareAccelerated ? "yes" : "no")}, " +
                              $"measured FMA peak {peak:F1} GFLOP/s, OMP_WAIT_POLICY {ompWait}");
            if (torchError is not null) Console.WriteLine($"torch unavailable: {torchError}");
            Console.WriteLine($"{"shape (M,N,K,tA,tB)",-32} {"kernel",-12} {"floor ms",9} {"ours ms",9} {"GFLOP/s",8} {"%peak",6} " +
                              $"{"torch mm",9} {"addmm_",9} {"t GFLOP/s",9} {"ratio",6} {"paired",6}");
        }

        var rows = new List<Row>();
        foreach (Shape s in shapes)
            foreach (GemmKernel k in kernels)
            {
                Row r = Measure(s, k, reps, torchOn);
                rows.Add(r);
                if (!json) Print(r, peak);
            }
        if (!json)
        {
            double ours = rows.Sum(r => r.OursMs), theirs = rows.Sum(r => BestTorch(r));
            Console.WriteLine($"total: ours {ours:F1} ms" + (torchOn ? $", torch {theirs:F1} ms, ratio (torch time / ours) {theirs / ours:F2}, " +
                $"median paired ratio {MedianOf(rows.Select(r => r.PairedRatio).ToArray()):F2}" : ""));
        }
        else WriteJson(rows, threads, reps, peak, torchError, ompWait);
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

    private static Row Measure(Shape s, GemmKernel kernel, int reps, bool torchOn)
    {
        CpuGemm.Kernel = kernel;
        int aRows = s.TransA ? s.K : s.M, aCols = s.TransA ? s.M : s.K;
        int bRows = s.TransB ? s.N : s.K, bCols = s.TransB ? s.K : s.N;
        int batch = s.Batch;
        long sa = (long)aRows * aCols, sb = (long)bRows * bCols, sc = (long)s.M * s.N;
        float[] a = Data((int)(sa * batch), 1), b = Data((int)(sb * batch), 2), c = Data((int)(sc * batch), 3);
        void Ours()
        {
            if (batch == 1) CpuGemm.Sgemm(s.TransA, s.TransB, s.M, s.N, s.K, 1f, a, aCols, b, bCols, s.Accumulate, c, s.N);
            else CpuGemm.SgemmBatched(s.TransA, s.TransB, s.M, s.N, s.K, 1f, a, aCols, b, bCols, s.Accumulate, c, s.N, batch, sa, sb, sc);
        }

        torch.Tensor? ta = null, tb = null, tc = null;
        if (torchOn)
        {
            long[] Dims(int r, int cl) => batch == 1 ? [r, cl] : [batch, r, cl];
            ta = torch.tensor(a, Dims(aRows, aCols)); tb = torch.tensor(b, Dims(bRows, bCols)); tc = torch.tensor(c, Dims(s.M, s.N));
        }
        // op(A), op(B): the transposes are views (LibTorch passes them to its BLAS as transpose flags).
        torch.Tensor? taT = torchOn && s.TransA ? ta!.transpose(-2, -1) : null, tbT = torchOn && s.TransB ? tb!.transpose(-2, -1) : null;
        void TorchMatmul()
        {
            using var p = torch.matmul(taT ?? ta!, tbT ?? tb!);
            if (s.Accumulate) tc!.add_(p);
        }
        void TorchInPlace()
        {
            float beta = s.Accumulate ? 1 : 0;
            if (batch == 1) tc!.addmm_(taT ?? ta!, tbT ?? tb!, beta: beta, alpha: 1);
            else { using var p = (taT ?? ta!).baddbmm(tbT ?? tb!, tc!, beta: beta, alpha: 1); } // TorchSharp: batch1.baddbmm(batch2, input); no in-place form
        }

        // Warm-up: JIT, scratch, worker threads, LibTorch's pools.
        Ours(); Ours();
        if (torchOn) { TorchMatmul(); TorchInPlace(); }
        var ours = new double[reps]; var mm = new double[reps]; var ip = new double[reps];
        for (int r = 0; r < reps; r++)
        {
            ours[r] = Time(Ours);
            if (torchOn) { mm[r] = Time(TorchMatmul); ip[r] = Time(TorchInPlace); }
        }
        taT?.Dispose(); tbT?.Dispose(); ta?.Dispose(); tb?.Dispose(); tc?.Dispose();
        double paired = torchOn ? MedianOf(Enumerable.Range(0, reps).Select(r => Math.Min(mm[r], ip[r]) / ours[r]).ToArray()) : double.NaN;
        return new Row(s, kernel.ToString(), Median(ours), torchOn ? Median(mm) : double.NaN, torchOn ? Median(ip) : double.NaN, paired);
    }

    private static bool s_cpuTime;

    private static double Time(Action f)
    {
        if (s_cpuTime)
        {
            // CPU time of this thread: a descheduled thread does not count (1-thread comparisons on a busy box).
            long c0 = ThreadCpuNs();
            f();
            return (ThreadCpuNs() - c0) / 1e6;
        }
        long t0 = Stopwatch.GetTimestamp();
        f();
        return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }

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

    private static void WriteJson(List<Row> rows, int threads, int reps, double peak, string? torchError, string ompWait)
    {
        using var w = new Utf8JsonWriter(Console.OpenStandardOutput(), new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("bench", "gemm");
        w.WriteNumber("threads", threads);
        w.WriteNumber("reps", reps);
        w.WriteNumber("fmaPeakGflops", Math.Round(peak, 2));
        w.WriteString("statistic", s_useMin ? "min" : "median");
        w.WriteString("clock", s_cpuTime ? "thread-cpu" : "wall");
        w.WriteString("ompWaitPolicy", ompWait);
        if (torchError is not null) w.WriteString("torchError", torchError);
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
            // 12 independent FMA chains of Vector256: enough to cover the FMA latency on two pipes.
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
            best = Math.Max(best, threads * job.Iterations * 12.0 * 16 / s / 1e9);
        }
        return best;
    }
}
