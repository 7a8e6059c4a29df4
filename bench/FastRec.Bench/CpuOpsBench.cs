// The `cpu-ops` benchmark: CpuSimdBackend's non-GEMM ops vs LibTorch (TorchSharp) on MiniLM train-step shapes, same threads.
using System.Diagnostics;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using TorchSharp;
using static TorchSharp.torch;

namespace FastRec.Bench;

/// <summary>
/// <c>cpu-ops [--threads N] [--reps R] [--b B] [--t T] [--params P] [--only NAME] [--cpu-time]</c>.
/// Shapes of one MiniLM-L12-H384 layer at batch B (8) and sequence T (128): C 384, NH 12, F 1536, and an AdamW step over
/// P parameters (22M). Each op runs ours and LibTorch's equivalent alternately rep by rep (a noisy neighbour hits both
/// alike) and reports the medians, the ratio torch/ours (&gt; 1: ours is faster) and the memory-traffic floor at the
/// measured copy bandwidth (tensors of a few MB stay in cache and can beat it). Ops LibTorch has no single call for
/// print ours only.
/// </summary>
internal static class CpuOpsBench
{
    private static bool s_cpuTime;

    public static int Run(string[] args)
    {
        int threads = 1, reps = 15, B = 8, T = 128, P = 22_000_000;
        string only = "";
        for (int i = 1; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"cpu-ops: {args[i]} needs a value");
            switch (args[i])
            {
                case "--threads": threads = int.Parse(Next()); break;
                case "--reps": reps = int.Parse(Next()); break;
                case "--b": B = int.Parse(Next()); break;
                case "--t": T = int.Parse(Next()); break;
                case "--params": P = int.Parse(Next()); break;
                case "--only": only = Next(); break;
                case "--cpu-time": s_cpuTime = true; break;
                default: Console.Error.WriteLine($"cpu-ops: unknown option '{args[i]}'"); return 2;
            }
        }
        const int C = 384, NH = 12, F = 1536;
        int N = B * T, HS = C / NH;
        CpuParallel.Threads = threads;
        string? torchError = null;
        try { torch.set_num_threads(threads); }
        catch (Exception e) { torchError = $"{e.GetType().Name}: {(e.InnerException ?? e).Message.Split('\n')[0]}"; }
        bool torchOn = torchError is null;
        using var be = new CpuSimdBackend();

        View<float> R(int n, ulong seed, float lo = -1f, float hi = 1f)
        {
            var buf = be.Allocate<float>(n);
            var a = new float[n];
            for (int i = 0; i < n; i++) a[i] = lo + (hi - lo) * Rng.Uniform(seed, (ulong)i);
            be.Upload(buf.All, a);
            return buf.All;
        }
        View<float> Z(int n) => be.Allocate<float>(n).All;
        Tensor? Tt(View<float> v, params long[] shape) => torchOn ? torch.tensor(v.Span.ToArray(), shape) : null;
        Action? Torch(Action a) => torchOn ? a : null;

        var maskHost = new float[N];
        for (int i = 0; i < N; i++) maskHost[i] = i % T < T - T / 4 ? 1f : 0f;   // last quarter of each sequence is padding
        var mask = be.Allocate<float>(N); be.Upload(mask.All, maskHost);
        var drop = new DropoutSpec(0.1f, 1, 0);

        // Copy bandwidth: the floor for memory-bound ops is bytes moved / this.
        var big = R(16 << 20, 99); var big2 = Z(16 << 20);
        double copyMs = Median(reps, () => be.Copy(big2, big));
        double gbps = 2.0 * 4 * (16 << 20) / (copyMs * 1e6);
        Console.WriteLine($"cpu-ops: {threads} thread(s), B {B}, T {T}, C {C}, NH {NH}, F {F}, {Environment.ProcessorCount} CPUs, " +
                          $"copy bandwidth {gbps:F1} GB/s, {(s_cpuTime ? "CPU time" : "wall clock")}, median of {reps}");
        if (torchError is not null) Console.WriteLine($"torch unavailable (ours only): {torchError}");
        Console.WriteLine($"{"op",-34} {"floor ms",9} {"ours ms",9} {"torch ms",9} {"ratio",6}");

        void Row(string name, double bytes, Action ours, Action? theirs)
        {
            if (only != "" && !name.Contains(only, StringComparison.OrdinalIgnoreCase)) return;
            for (int w = 0; w < 40; w++) ours();   // past tier-0 JIT
            if (theirs is not null) for (int w = 0; w < 3; w++) theirs();
            var a = new double[reps]; var b = new double[reps];
            for (int r = 0; r < reps; r++)
            {
                a[r] = Time(ours);
                b[r] = theirs is null ? double.NaN : Time(theirs);
            }
            double ma = Med(a), mb = Med(b);
            Console.WriteLine($"{name,-34} {bytes / (gbps * 1e6),9:F3} {ma,9:F3} {(theirs is null ? "-" : mb.ToString("F3")),9} " +
                              $"{(theirs is null ? "-" : (mb / ma).ToString("F2")),6}");
        }

        // GELU (N, F)
        {
            var x = R(N * F, 1, -4f, 4f); var y = Z(N * F); var dy = R(N * F, 2); var dx = Z(N * F);
            using var tx = Tt(x, N, F);
            Row("gelu fwd (N,F)", 8.0 * N * F, () => be.ActivationForward(Activation.Gelu, y, x), Torch(() => { using var r = nn.functional.gelu(tx!); }));
            Row("gelu bwd (N,F)", 12.0 * N * F, () => be.ActivationBackward(Activation.Gelu, dx, dy, x), null);
            Row("tanh fwd (N,F)", 8.0 * N * F, () => be.ActivationForward(Activation.Tanh, y, x), Torch(() => { using var r = tx!.tanh(); }));
        }
        // residual + LayerNorm (N, C)
        {
            var a = R(N * C, 3); var b = R(N * C, 4); var g = R(C, 5, 0.5f, 1.5f); var bt = R(C, 6);
            var o = Z(N * C); var s = Z(N * C); var mu = Z(N); var rs = Z(N); var dy = R(N * C, 7); var dx = Z(N * C);
            var dg = Z(C); var db = Z(C);
            using var ta = Tt(a, N, C); using var tb = Tt(b, N, C); using var tg = Tt(g, C); using var tbt = Tt(bt, C);
            Row("add+layernorm fwd (N,C)", 16.0 * N * C, () => be.AddLayerNormForward(o, s, mu, rs, a, b, g, bt, N, C, 1e-12f),
                Torch(() => { using var x = ta! + tb!; using var r = nn.functional.layer_norm(x, [C], tg, tbt, 1e-12); }));
            Row("layernorm bwd (N,C)", 12.0 * N * C, () => be.AddLayerNormBackward(dx, dg, db, dy, s, g, mu, rs, N, C), null);
        }
        // masked softmax (B, NH, T, T)
        {
            int n = B * NH * T * T;
            var sc = R(n, 8, -4f, 4f); var p = Z(n); var dp = R(n, 9); var ds = Z(n);
            using var ts = Tt(sc, B, NH, T, T);
            using var tmask = torchOn ? torch.tensor(maskHost.Select(m => m == 0f ? float.NegativeInfinity : 0f).ToArray(), [B, 1, 1, T]) : null;
            float scale = 1f / MathF.Sqrt(HS);
            Row("softmax fwd masked (B,NH,T,T)", 8.0 * n, () => be.SoftmaxForward(p, sc, mask.All, B, NH, T, scale),
                Torch(() => { using var x = ts! * scale; using var xm = x + tmask!; using var r = xm.softmax(-1); }));
            Row("softmax bwd (B,NH,T,T)", 12.0 * n, () => be.SoftmaxBackward(ds, dp, p, B, NH, T, scale), null);
            Row("dropout fwd (B,NH,T,T)", 8.0 * n, () => be.DropoutForward(p, sc, drop),
                Torch(() => { using var r = nn.functional.dropout(ts!, 0.1, true); }));
        }
        // attention (B, T, 3C) -> (B, T, C)
        {
            var qkv = R(N * 3 * C, 10); var o = Z(N * C); var perm = Z(3 * N * C); var probs = Z(B * NH * T * T);
            var ws = Z((int)Check.AttentionWorkspace(B, T, C, NH)); var dq = Z(N * 3 * C); var dy = R(N * C, 11);
            using var tq = Tt(qkv, B, T, 3, NH, HS)?.permute(2, 0, 3, 1, 4).contiguous();   // (3, B, NH, T, HS)
            using var q = tq?[0]; using var k = tq?[1]; using var v = tq?[2];
            using var tmask = torchOn ? torch.tensor(maskHost.Select(m => m == 0f ? float.NegativeInfinity : 0f).ToArray(), [B, 1, 1, T]) : null;
            double attnBytes = 4.0 * (6 * N * C + 2 * B * NH * T * T);
            Row("attention fwd, no dropout", attnBytes, () => be.AttentionForward(o, perm, probs, ws, qkv, mask.All, B, T, C, NH, DropoutSpec.Off),
                Torch(() => { using var r = nn.functional.scaled_dot_product_attention(q!, k!, v!, tmask); }));
            Row("attention fwd, dropout 0.1", attnBytes, () => be.AttentionForward(o, perm, probs, ws, qkv, mask.All, B, T, C, NH, drop), null);
            Row("attention bwd, dropout 0.1", attnBytes * 2, () => be.AttentionBackward(dq, dy, perm, probs, ws, mask.All, B, T, C, NH, drop), null);
        }
        // optimiser over P parameters
        {
            var p = R(P, 12); var g = R(P, 13, -1e-3f, 1e-3f); var m = Z(P); var v = Z(P); var norm = Z(1);
            var segs = be.Allocate<AdamSegment>(1); be.Upload(segs.All, [new AdamSegment(0, P, 1f, 0.01f)]);
            be.GlobalNorm(norm, g);
            // Parameter(t) takes over t's native handle: keep using the parameter, not t.
            using var tp = torchOn ? new TorchSharp.Modules.Parameter(Tt(p, P)!) : null;
            if (tp is not null) tp.grad = Tt(g, P);
            var opt = tp is null ? null : torch.optim.AdamW([tp], lr: 1e-4, weight_decay: 0.01);
            Row("global norm (P)", 4.0 * P, () => be.GlobalNorm(norm, g), Torch(() => { using var r = torch.linalg.vector_norm(tp!.grad!); }));
            Row("adamw step (P)", 28.0 * P, () => be.AdamW(p, g, m, v, segs.All, norm, 1f, 1e-4f, 0.9f, 0.999f, 1e-8f, 3), Torch(() => opt!.step()));
        }
        return 0;
    }

    private static double Median(int reps, Action f)
    {
        f();
        var t = new double[reps];
        for (int r = 0; r < reps; r++) t[r] = Time(f);
        return Med(t);
    }

    private static double Med(double[] a)
    {
        var s = (double[])a.Clone();
        Array.Sort(s);
        return s[s.Length / 2];
    }

    private static double Time(Action f)
    {
        if (s_cpuTime)
        {
            var pr = Process.GetCurrentProcess();
            TimeSpan t0 = pr.TotalProcessorTime;
            f();
            pr.Refresh();
            return (pr.TotalProcessorTime - t0).TotalMilliseconds;
        }
        long s = Stopwatch.GetTimestamp();
        f();
        return Stopwatch.GetElapsedTime(s).TotalMilliseconds;
    }
}
