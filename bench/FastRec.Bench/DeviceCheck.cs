// `device`: the one-shot GPU check: every op and a full train step vs the CPU backend (PASS/FAIL), then GEMM, train-step and latency timings.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using FastRec.Engine.Model;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Kernels.Gpu;
using FastRec.Tests.Shared;

namespace FastRec.Bench;

/// <summary>
/// The device check run by bench/device-check.sh on the lent GPU machine (and, with <c>--backend ilgpu-cpu --tiny</c>,
/// here, to test its CPU parts). Stages, each guarded so a failure prints its error and the next stage still runs:
/// <list type="number">
/// <item>parity of every op on the target backend against <see cref="CpuSimdBackend"/> on fresh random data, ILGPU kernels
/// only (fp32 tolerances), then again with the native cuBLASLt GEMM when it is loaded (TF32 tolerances);</item>
/// <item>a full train step (forward, backward, clip, AdamW) of a MiniLM-shaped model vs CpuSimd;</item>
/// <item>timings (median after warm-up, with synchronisation): GEMM ILGPU vs cuBLASLt, the MiniLM train step at
/// (B, T) = (32, 128), batch-1 latency; CpuSimd latency for a ratio.</item>
/// </list>
/// Prints <c>PASS</c>/<c>FAIL</c> lines and writes everything to <c>--out DIR/fastrec_device.json</c>.
/// <para>Tolerances (max|a−b| / max(max|b|, floor)): fp32 GEMM-based ops 1e-4, pointwise 1e-5, reductions 1e-4,
/// TF32 GEMM-based ops 5e-3 (10-bit mantissa inputs), train-step gradients 2e-3 fp32 / 3e-2 TF32.</para>
/// <para>Options: --backend cuda|ilgpu-cpu|auto (cuda), --tiny (small shapes: for the CPU accelerator), --out DIR (.),
/// --steps N (10), --no-timing, --no-parity.</para>
/// </summary>
public static class DeviceCheck
{
    private sealed record Options(string Backend, bool Tiny, string Out, int Steps, bool Timing, bool Parity);

    private static readonly JsonObject Report = new();
    private static int s_pass, s_fail;

    /// <summary>Runs the check; <paramref name="args"/>[0] is "device". Exit code 0 when every parity check passed.</summary>
    public static int Run(string[] args)
    {
        Options o;
        try { o = Parse(args); }
        catch (ArgumentException e) { Console.Error.WriteLine($"device: {e.Message}"); return 2; }
        Directory.CreateDirectory(o.Out);
        s_outPath = Path.Combine(o.Out, "fastrec_device.json");
        Report["started"] = DateTime.UtcNow.ToString("o");
        Report["options"] = JsonSerializer.SerializeToNode(o);

        IBackend? target = null;
        Stage("backend", () =>
        {
            target = BackendFactory.Create(o.Backend);
            var info = new JsonObject { ["name"] = target.Name, ["description"] = target.ToString() };
            if (target is IlgpuBackend g)
            {
                info["device"] = g.Accelerator.Name;
                info["memory_gib"] = Math.Round(g.Accelerator.MemorySize / (1024.0 * 1024 * 1024), 1);
                info["multiprocessors"] = g.Accelerator.NumMultiprocessors;
                info["native"] = g.NativeStatus;
            }
            Report["backend"] = info;
            Console.WriteLine($"backend: {info.ToJsonString()}");
            // smoke: one upload, kernel and download before anything larger
            using var x = target.Allocate<float>(1000);
            target.Upload(x.All, Rand(1000, 7));
            target.ActivationForward(Activation.Relu, x.All, x.All);
            var back = new float[1000];
            target.Download(x.All, back);
            if (back.Any(v => v < 0 || !float.IsFinite(v))) throw new InvalidOperationException("smoke test: ReLU left negative or non-finite values");
            Console.WriteLine("smoke test (upload, ReLU kernel, download): ok");
        });
        if (target is null) { Finish(o); return 1; }

        CpuParallel.Threads = Math.Clamp(Environment.ProcessorCount, 1, 64);   // the CPU oracle (and CPU latency) on every core
        Report["cpu_threads"] = CpuParallel.Threads;
        using var cpu = new CpuSimdBackend();
        var gpu = target as IlgpuBackend;
        if (o.Parity)
        {
            if (gpu is not null) gpu.NativeGemmEnabled = false;
            Stage("parity (the CI cases of tests/Shared/ParitySuite.cs, ILGPU kernels vs Reference)", () => SharedParity(target, "parity_shared"));
            Stage("parity (ILGPU kernels, fp32, large shapes)", () => OpParity(target, cpu, o.Tiny, tf32: false, "parity_ilgpu"));
            Stage("train-step parity (ILGPU kernels)", () => ModelParity(target, cpu, o.Tiny, tf32: false, "model_ilgpu"));
            if (gpu is { UsesNativeGemm: true })
            {
                gpu.NativeGemmEnabled = true;
                int before = s_fail;
                Stage("parity (native cuBLASLt GEMM, TF32)", () => OpParity(target, cpu, o.Tiny, tf32: true, "parity_native"));
                bool opsFailed = s_fail > before;   // a wrong op is a bug: keep the native path out of the timings
                Stage("train-step parity (native GEMM)", () => ModelParity(target, cpu, o.Tiny, tf32: true, "model_native"));
                if (opsFailed)
                {
                    Console.WriteLine("native GEMM failed parity: it stays off for the timings");
                    Report["native_disabled_after_parity"] = true;
                }
            }
        }
        if (o.Timing)
        {
            Stage("timing: GEMM", () => TimeGemm(target, o));
            Stage("timing: train step", () => TimeTrainStep(target, o));
            Stage("timing: latency", () => TimeLatency(target, cpu, o));
        }
        target.Dispose();
        Finish(o);
        return s_fail == 0 ? 0 : 1;
    }

    private static void Finish(Options o)
    {
        Report["finished"] = DateTime.UtcNow.ToString("o");
        Save();
        Console.WriteLine($"device check: {s_pass} passed, {s_fail} failed; results in {s_outPath}");
    }

    private static string s_outPath = "fastrec_device.json";

    /// <summary>Writes the report so far (after every stage: a later hang or crash still leaves the earlier results).</summary>
    private static void Save()
    {
        Report["pass"] = s_pass;
        Report["fail"] = s_fail;
        try { File.WriteAllText(s_outPath, Report.ToJsonString(new JsonSerializerOptions { WriteIndented = true })); }
        catch (IOException e) { Console.WriteLine($"could not write {s_outPath}: {e.Message}"); }
    }

    private static void Stage(string name, Action body)
    {
        Console.WriteLine($"=== {name}");
        var sw = Stopwatch.StartNew();
        try { body(); }
        catch (Exception e)
        {
            s_fail++;
            Console.WriteLine($"FAIL stage '{name}': {e.GetType().Name}: {e.Message}");
            Console.WriteLine(e.StackTrace);
            ((Report["stage_errors"] ??= new JsonArray()) as JsonArray)!.Add($"{name}: {e.GetType().Name}: {e.Message}");
        }
        Console.WriteLine($"    ({name}: {sw.Elapsed.TotalSeconds:F1} s)");
        Save();
    }

    // ================================================================ parity helpers

    private static float[] Rand(int n, ulong seed, float lo = -1f, float hi = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = lo + (hi - lo) * Rng.Uniform(seed, (ulong)i);
        return a;
    }

    /// <summary>The same tensor on the target (T) and on the CPU (C).</summary>
    private sealed class Pair<TE>(IBackend t, IBackend c, TE[] data) : IDisposable where TE : unmanaged
    {
        public DeviceBuffer<TE> T { get; } = Up(t, data);
        public DeviceBuffer<TE> C { get; } = Up(c, data);
        public void Dispose() { T.Dispose(); C.Dispose(); }
        private static DeviceBuffer<TE> Up(IBackend b, TE[] d) { var x = b.Allocate<TE>(d.Length); if (d.Length > 0) b.Upload(x.All, d); return x; }
    }

    private static float[] Down(IBackend b, View<float> v) { var a = new float[v.Length]; b.Download(v, a); return a; }

    /// <summary>max|a−b| / max(max|b|, floor).</summary>
    private static double RelErr(float[] a, float[] b, double floor = 1e-30)
    {
        double d = 0, m = floor;
        for (int i = 0; i < a.Length; i++)
        {
            double x = Math.Abs((double)a[i] - b[i]);
            if (!(x <= d)) d = double.IsNaN(x) ? double.PositiveInfinity : x;
            m = Math.Max(m, Math.Abs((double)b[i]));
        }
        return d / m;
    }

    private static void Verdict(JsonArray into, string op, double err, double tol)
    {
        bool ok = err <= tol;
        if (ok) s_pass++; else s_fail++;
        Console.WriteLine($"{(ok ? "PASS" : "FAIL")} {op,-44} err {err:E2}  tol {tol:E1}");
        into.Add(new JsonObject { ["op"] = op, ["err"] = double.IsFinite(err) ? err : -1, ["tol"] = tol, ["pass"] = ok });
    }

    private static void Compare(JsonArray into, string op, IBackend t, IBackend c, Pair<float> p, double tol, double floor = 1e-30)
        => Verdict(into, op, RelErr(Down(t, p.T.All), Down(c, p.C.All), floor), tol);

    /// <summary>Runs one op check; an exception is a FAIL of that op, and the next op still runs.</summary>
    private static void Guard(JsonArray into, string op, Action body)
    {
        try { body(); }
        catch (Exception e)
        {
            s_fail++;
            Console.WriteLine($"FAIL {op,-44} {e.GetType().Name}: {e.Message}");
            into.Add(new JsonObject { ["op"] = op, ["error"] = $"{e.GetType().Name}: {e.Message}", ["pass"] = false });
        }
    }

    // ================================================================ the shared parity cases (the ones CI runs)

    /// <summary>Records each case of <see cref="ParitySuite"/>: a mismatch is that case's FAIL line, the next case still runs.</summary>
    private sealed class Recording : IParityReport
    {
        public string? Failure;
        public double ToleranceScale => 1;
        public void Fail(string message) => Failure ??= message;
    }

    /// <summary>Every case BackendParityTests runs in CI (tests/Shared/ParitySuite.cs), here with the device backend as
    /// the candidate and the Reference backend as the oracle: CUDA runs the same cases as ILGPU's CPU accelerator.</summary>
    private static void SharedParity(IBackend t, string key)
    {
        var res = new JsonArray();
        Report[key] = res;
        using var reference = new FastRec.Kernels.Reference.ReferenceBackend();
        int failed = 0, cases = 0;
        foreach (var c in ParitySuite.Cases())
        {
            cases++;
            var report = new Recording();
            try { c.Run(new ParitySuite(t, reference, report, t.Name)); }
            catch (Exception e) { report.Failure ??= $"{e.GetType().Name}: {e.Message}"; }
            if (report.Failure is null) { s_pass++; continue; }
            s_fail++; failed++;
            Console.WriteLine($"FAIL {c.Name}: {report.Failure}");
            res.Add(new JsonObject { ["op"] = c.Name, ["error"] = report.Failure, ["pass"] = false });
        }
        Console.WriteLine($"shared parity cases: {cases - failed} of {cases} passed");
        res.Add(new JsonObject { ["cases"] = cases, ["failed"] = failed });
    }

    // ================================================================ op parity

    private static void OpParity(IBackend t, IBackend c, bool tiny, bool tf32, string key)
    {
        var res = new JsonArray();
        Report[key] = res;
        double gemmTol = tf32 ? 5e-3 : 1e-4, pointTol = 1e-5, redTol = 1e-4;
        int s = tiny ? 1 : 8;   // shape multiplier

        foreach (var (ta, tb) in new[] { (false, false), (true, false), (false, true), (true, true) })
            Guard(res, $"Gemm ta={ta} tb={tb} batch 3", () =>
            {
                int M = 37 * s + 3, N = 33 * s + 1, K = 17 * s, batch = 3;
                int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
                long sa = (long)(ta ? K : M) * lda, sb = (long)(tb ? N : K) * ldb, sc = (long)M * ldc;
                using var a = new Pair<float>(t, c, Rand((int)(sa * batch), 1));
                using var b = new Pair<float>(t, c, Rand((int)(sb * batch), 2));
                using var cc = new Pair<float>(t, c, Rand((int)(sc * batch), 3));
                foreach (var (be, side) in new[] { (t, 0), (c, 1) })
                    be.Gemm(ta, tb, M, N, K, 0.5f, side == 0 ? a.T.All : a.C.All, lda, side == 0 ? b.T.All : b.C.All, ldb, true,
                            side == 0 ? cc.T.All : cc.C.All, ldc, batch, sa, sb, sc);
                Compare(res, $"Gemm ta={ta} tb={tb} batch 3", t, c, cc, gemmTol);
            });

        if (t is IlgpuBackend g128 && !tf32)
            foreach (var (ta, tb) in new[] { (false, false), (true, true) })
                Guard(res, $"Gemm 128x128 tiles ta={ta} tb={tb}", () =>
                {
                    int M = tiny ? 130 : 1000, N = tiny ? 129 : 777, K = tiny ? 20 : 333;
                    using var a = new Pair<float>(t, c, Rand(M * K, 6));
                    using var b = new Pair<float>(t, c, Rand(K * N, 7));
                    using var cc = new Pair<float>(t, c, new float[M * N]);
                    g128.GemmTile = 128;
                    try { t.Gemm(ta, tb, M, N, K, 1f, a.T.All, 0, b.T.All, 0, false, cc.T.All, 0); }
                    finally { g128.GemmTile = 0; }
                    c.Gemm(ta, tb, M, N, K, 1f, a.C.All, 0, b.C.All, 0, false, cc.C.All, 0);
                    Compare(res, $"Gemm 128x128 tiles ta={ta} tb={tb}", t, c, cc, gemmTol);
                });

        Guard(res, "Gemm 1024^3", () =>
        {
            int n = tiny ? 100 : 1024;
            using var a = new Pair<float>(t, c, Rand(n * n, 4));
            using var b = new Pair<float>(t, c, Rand(n * n, 5));
            using var cc = new Pair<float>(t, c, new float[n * n]);
            t.Gemm(false, false, n, n, n, 1f, a.T.All, 0, b.T.All, 0, false, cc.T.All, 0);
            c.Gemm(false, false, n, n, n, 1f, a.C.All, 0, b.C.All, 0, false, cc.C.All, 0);
            Compare(res, "Gemm 1024^3", t, c, cc, gemmTol);
        });

        Guard(res, "Linear fwd+bwd", () =>
        {
            int N = 64 * s, IC = 48 * s, OC = 192 * s;
            using var x = new Pair<float>(t, c, Rand(N * IC, 10));
            using var w = new Pair<float>(t, c, Rand(OC * IC, 11, -0.1f, 0.1f));
            using var bias = new Pair<float>(t, c, Rand(OC, 12));
            using var y = new Pair<float>(t, c, new float[N * OC]);
            t.LinearForward(y.T.All, x.T.All, w.T.All, bias.T.All, N, IC, OC);
            c.LinearForward(y.C.All, x.C.All, w.C.All, bias.C.All, N, IC, OC);
            Compare(res, "LinearForward", t, c, y, gemmTol);
            using var dy = new Pair<float>(t, c, Rand(N * OC, 13));
            using var dx = new Pair<float>(t, c, new float[N * IC]);
            using var dw = new Pair<float>(t, c, Rand(OC * IC, 14));
            using var db = new Pair<float>(t, c, Rand(OC, 15));
            t.LinearBackward(dx.T.All, dw.T.All, db.T.All, dy.T.All, x.T.All, w.T.All, N, IC, OC);
            c.LinearBackward(dx.C.All, dw.C.All, db.C.All, dy.C.All, x.C.All, w.C.All, N, IC, OC);
            Compare(res, "LinearBackward dInput", t, c, dx, gemmTol);
            Compare(res, "LinearBackward dWeight", t, c, dw, gemmTol);
            Compare(res, "LinearBackward dBias", t, c, db, redTol);
        });

        if (!tf32)
        {
            foreach (var act in Enum.GetValues<Activation>())
                Guard(res, $"Activation {act}", () =>
                {
                    int n = tiny ? 1000 : 1 << 20;
                    using var x = new Pair<float>(t, c, Rand(n, 20, -8f, 8f));
                    using var y = new Pair<float>(t, c, new float[n]);
                    t.ActivationForward(act, y.T.All, x.T.All);
                    c.ActivationForward(act, y.C.All, x.C.All);
                    Compare(res, $"ActivationForward {act}", t, c, y, pointTol);
                    using var dy = new Pair<float>(t, c, Rand(n, 21));
                    t.ActivationBackward(act, y.T.All, dy.T.All, x.T.All);
                    c.ActivationBackward(act, y.C.All, dy.C.All, x.C.All);
                    Compare(res, $"ActivationBackward {act}", t, c, y, pointTol);
                });

            Guard(res, "AddLayerNorm fwd+bwd", () =>
            {
                int N = tiny ? 70 : 4096, C = tiny ? 40 : 384;
                using var a = new Pair<float>(t, c, Rand(N * C, 30, -2f, 2f));
                using var b = new Pair<float>(t, c, Rand(N * C, 31));
                using var g = new Pair<float>(t, c, Rand(C, 32, 0.5f, 1.5f));
                using var be = new Pair<float>(t, c, Rand(C, 33));
                using var y = new Pair<float>(t, c, new float[N * C]);
                using var sum = new Pair<float>(t, c, new float[N * C]);
                using var mean = new Pair<float>(t, c, new float[N]);
                using var rstd = new Pair<float>(t, c, new float[N]);
                t.AddLayerNormForward(y.T.All, sum.T.All, mean.T.All, rstd.T.All, a.T.All, b.T.All, g.T.All, be.T.All, N, C, 1e-12f);
                c.AddLayerNormForward(y.C.All, sum.C.All, mean.C.All, rstd.C.All, a.C.All, b.C.All, g.C.All, be.C.All, N, C, 1e-12f);
                Compare(res, "AddLayerNormForward out", t, c, y, redTol);
                Compare(res, "AddLayerNormForward rstd", t, c, rstd, redTol);
                using var dy = new Pair<float>(t, c, Rand(N * C, 34));
                using var dx = new Pair<float>(t, c, new float[N * C]);
                using var dg = new Pair<float>(t, c, Rand(C, 35));
                using var db = new Pair<float>(t, c, Rand(C, 36));
                t.AddLayerNormBackward(dx.T.All, dg.T.All, db.T.All, dy.T.All, sum.T.All, g.T.All, mean.T.All, rstd.T.All, N, C);
                c.AddLayerNormBackward(dx.C.All, dg.C.All, db.C.All, dy.C.All, sum.C.All, g.C.All, mean.C.All, rstd.C.All, N, C);
                Compare(res, "AddLayerNormBackward dx", t, c, dx, redTol);
                Compare(res, "AddLayerNormBackward dGamma", t, c, dg, redTol);
                Compare(res, "AddLayerNormBackward dBeta", t, c, db, redTol);
            });

            Guard(res, "Embedding fwd+bwd", () =>
            {
                int B = tiny ? 3 : 32, T = tiny ? 50 : 128, C = tiny ? 8 : 384, V = tiny ? 50 : 30522, P = 512;
                var idsH = new int[B * T];
                var typesH = new int[B * T];
                for (int i = 0; i < idsH.Length; i++)
                {
                    int tpos = i % T;
                    idsH[i] = tpos > T / 2 ? 0 : (int)(Rng.Hash(40, (ulong)i) % (ulong)V);   // half padding: a long id-0 chain
                    typesH[i] = tpos > T / 4 ? 1 : 0;
                }
                using var ids = new Pair<int>(t, c, idsH);
                using var types = new Pair<int>(t, c, typesH);
                using var w = new Pair<float>(t, c, Rand(V * C, 41));
                using var p = new Pair<float>(t, c, Rand(P * C, 42));
                using var ty = new Pair<float>(t, c, Rand(2 * C, 43));
                using var y = new Pair<float>(t, c, new float[B * T * C]);
                t.EmbeddingForward(y.T.All, ids.T.All, types.T.All, w.T.All, p.T.All, ty.T.All, B, T, C);
                c.EmbeddingForward(y.C.All, ids.C.All, types.C.All, w.C.All, p.C.All, ty.C.All, B, T, C);
                Compare(res, "EmbeddingForward", t, c, y, pointTol);
                using var dy = new Pair<float>(t, c, Rand(B * T * C, 44));
                t.EmbeddingBackward(w.T.All, p.T.All, ty.T.All, dy.T.All, ids.T.All, types.T.All, B, T, C);
                c.EmbeddingBackward(w.C.All, p.C.All, ty.C.All, dy.C.All, ids.C.All, types.C.All, B, T, C);
                Compare(res, "EmbeddingBackward dWord", t, c, w, redTol);
                Compare(res, "EmbeddingBackward dPos", t, c, p, redTol);
                Compare(res, "EmbeddingBackward dType", t, c, ty, redTol);
            });

            Guard(res, "Softmax fwd+bwd", () =>
            {
                int B = tiny ? 2 : 4, NH = tiny ? 2 : 12, T = tiny ? 20 : 128, n = B * NH * T * T;
                var maskH = new float[B * T];
                for (int i = 0; i < maskH.Length; i++) maskH[i] = i % T < T - (i / T) * 7 ? 1f : 0f;
                using var mask = new Pair<float>(t, c, maskH);
                using var sc = new Pair<float>(t, c, Rand(n, 50, -5f, 5f));
                using var pr = new Pair<float>(t, c, new float[n]);
                t.SoftmaxForward(pr.T.All, sc.T.All, mask.T.All, B, NH, T, 0.125f);
                c.SoftmaxForward(pr.C.All, sc.C.All, mask.C.All, B, NH, T, 0.125f);
                Compare(res, "SoftmaxForward", t, c, pr, redTol);
                using var dp = new Pair<float>(t, c, Rand(n, 51));
                t.SoftmaxBackward(sc.T.All, dp.T.All, pr.T.All, B, NH, T, 0.125f);
                c.SoftmaxBackward(sc.C.All, dp.C.All, pr.C.All, B, NH, T, 0.125f);
                Compare(res, "SoftmaxBackward", t, c, sc, redTol);
            });

            Guard(res, "Dropout", () =>
            {
                int n = tiny ? 1000 : 1 << 20;
                var d = new DropoutSpec(0.1f, 77, 5);
                using var x = new Pair<float>(t, c, Rand(n, 60));
                using var y = new Pair<float>(t, c, new float[n]);
                t.DropoutForward(y.T.All, x.T.All, d);
                c.DropoutForward(y.C.All, x.C.All, d);
                Compare(res, "DropoutForward (same counter RNG)", t, c, y, pointTol);
                t.DropoutBackward(y.T.All, x.T.All, d);
                c.DropoutBackward(y.C.All, x.C.All, d);
                Compare(res, "DropoutBackward", t, c, y, pointTol);
            });

            Guard(res, "Copy2D", () =>
            {
                int rows = 32 * s, cols = 48 * s, ldD = cols + 7, ldS = cols + 13;
                using var src = new Pair<float>(t, c, Rand(rows * ldS, 70));
                using var dst = new Pair<float>(t, c, Rand(rows * ldD, 71));
                t.Copy2D(dst.T.All, ldD, 5, src.T.All, ldS, 9, rows, cols, true);
                c.Copy2D(dst.C.All, ldD, 5, src.C.All, ldS, 9, rows, cols, true);
                Compare(res, "Copy2D accumulate", t, c, dst, pointTol);
            });

            Guard(res, "BCE", () =>
            {
                int N = tiny ? 100 : 4096;
                var z = Rand(N, 80, -6f, 6f);
                z[0] = 150f; z[1] = -150f;
                using var logits = new Pair<float>(t, c, z);
                using var y = new Pair<float>(t, c, Rand(N, 81, 0f, 1f));
                using var w = new Pair<float>(t, c, Rand(N, 82, 0.1f, 2f));
                using var loss = new Pair<float>(t, c, new float[1]);
                using var d = new Pair<float>(t, c, new float[N]);
                t.BceForwardBackward(loss.T.All, d.T.All, logits.T.All, y.T.All, w.T.All, N, 2f, 0.5f);
                c.BceForwardBackward(loss.C.All, d.C.All, logits.C.All, y.C.All, w.C.All, N, 2f, 0.5f);
                Compare(res, "BceForwardBackward loss", t, c, loss, redTol);
                Compare(res, "BceForwardBackward dLogits", t, c, d, redTol);
            });

            Guard(res, "GlobalNorm + AdamW", () =>
            {
                int n = tiny ? 5000 : 5_000_000;
                using var p = new Pair<float>(t, c, Rand(n, 90));
                using var g = new Pair<float>(t, c, Rand(n, 91, -0.01f, 0.01f));
                using var m = new Pair<float>(t, c, Rand(n, 92, -0.001f, 0.001f));
                using var v = new Pair<float>(t, c, Rand(n, 93, 0f, 1e-5f));
                using var norm = new Pair<float>(t, c, new float[1]);
                AdamSegment[] segs = [new(0, n / 2, 1f, 0.01f), new(n / 2, n / 4, 0f, 0.01f), new(n / 2 + n / 4, n / 4 - 10, 1f, 0f)];
                using var sg = new Pair<AdamSegment>(t, c, segs);
                t.GlobalNorm(norm.T.All, g.T.All);
                c.GlobalNorm(norm.C.All, g.C.All);
                Compare(res, "GlobalNorm", t, c, norm, redTol);
                t.AdamW(p.T.All, g.T.All, m.T.All, v.T.All, sg.T.All, norm.T.All, 0.5f, 1e-3f, 0.9f, 0.999f, 1e-8f, 3);
                c.AdamW(p.C.All, g.C.All, m.C.All, v.C.All, sg.C.All, norm.C.All, 0.5f, 1e-3f, 0.9f, 0.999f, 1e-8f, 3);
                Compare(res, "AdamW param", t, c, p, pointTol);
                Compare(res, "AdamW m", t, c, m, redTol);
                Compare(res, "AdamW v", t, c, v, redTol);
            });
        }

        Guard(res, "Attention fwd+bwd", () =>
        {
            int B = tiny ? 2 : 4, T = tiny ? 9 : 128, C = tiny ? 8 : 384, NH = tiny ? 2 : 12;
            var drop = new DropoutSpec(0.1f, 123, 1000);
            var maskH = new float[B * T];
            for (int i = 0; i < maskH.Length; i++) maskH[i] = i % T < T - (i / T) * 3 ? 1f : 0f;
            using var mask = new Pair<float>(t, c, maskH);
            using var qkv = new Pair<float>(t, c, Rand(B * T * 3 * C, 100));
            using var y = new Pair<float>(t, c, new float[B * T * C]);
            using var perm = new Pair<float>(t, c, new float[3 * B * T * C]);
            using var probs = new Pair<float>(t, c, new float[B * NH * T * T]);
            using var ws = new Pair<float>(t, c, new float[Check.AttentionWorkspace(B, T, C, NH)]);
            t.AttentionForward(y.T.All, perm.T.All, probs.T.All, ws.T.All, qkv.T.All, mask.T.All, B, T, C, NH, drop);
            c.AttentionForward(y.C.All, perm.C.All, probs.C.All, ws.C.All, qkv.C.All, mask.C.All, B, T, C, NH, drop);
            Compare(res, "AttentionForward probs", t, c, probs, tf32 ? gemmTol : redTol);
            Compare(res, "AttentionForward out", t, c, y, tf32 ? gemmTol : redTol);
            using var dy = new Pair<float>(t, c, Rand(B * T * C, 101));
            using var dqkv = new Pair<float>(t, c, new float[B * T * 3 * C]);
            t.AttentionBackward(dqkv.T.All, dy.T.All, perm.T.All, probs.T.All, ws.T.All, mask.T.All, B, T, C, NH, drop);
            c.AttentionBackward(dqkv.C.All, dy.C.All, perm.C.All, probs.C.All, ws.C.All, mask.C.All, B, T, C, NH, drop);
            Compare(res, "AttentionBackward dQkv", t, c, dqkv, tf32 ? gemmTol : redTol);
        });

        Guard(res, "Pooler fwd+bwd", () =>
        {
            int B = tiny ? 3 : 32, T = tiny ? 4 : 128, C = tiny ? 24 : 384;
            using var h = new Pair<float>(t, c, Rand(B * T * C, 110));
            using var w = new Pair<float>(t, c, Rand(C * C, 111, -0.05f, 0.05f));
            using var bias = new Pair<float>(t, c, Rand(C, 112));
            using var pooled = new Pair<float>(t, c, new float[B * C]);
            t.PoolerForward(pooled.T.All, h.T.All, w.T.All, bias.T.All, B, T, C);
            c.PoolerForward(pooled.C.All, h.C.All, w.C.All, bias.C.All, B, T, C);
            Compare(res, "PoolerForward", t, c, pooled, gemmTol);
            using var dp = new Pair<float>(t, c, Rand(B * C, 113));
            using var dh = new Pair<float>(t, c, Rand(B * T * C, 114));
            using var dw = new Pair<float>(t, c, Rand(C * C, 115));
            using var db = new Pair<float>(t, c, Rand(C, 116));
            using var ws = new Pair<float>(t, c, new float[B * C]);
            t.PoolerBackward(dh.T.All, dw.T.All, db.T.All, dp.T.All, pooled.T.All, h.T.All, w.T.All, ws.T.All, B, T, C);
            c.PoolerBackward(dh.C.All, dw.C.All, db.C.All, dp.C.All, pooled.C.All, h.C.All, w.C.All, ws.C.All, B, T, C);
            Compare(res, "PoolerBackward dHidden", t, c, dh, gemmTol);
            Compare(res, "PoolerBackward dWeight", t, c, dw, gemmTol);
            Compare(res, "PoolerBackward dBias", t, c, db, redTol);
        });
    }

    // ================================================================ model parity

    /// <summary>MiniLM-L6 shape (or a tiny config), head 64 + 2 dense features, dropout 0.1.</summary>
    private static (BertConfig, AdapterConfig) ModelConfig(bool tiny) => tiny
        ? (new BertConfig
        {
            VocabSize = 40, HiddenSize = 16, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 32,
            MaxPositionEmbeddings = 16, TypeVocabSize = 2, HiddenDropoutProb = 0.1, AttentionProbsDropoutProb = 0.1,
        }, new AdapterConfig { HiddenSizes = [8], Activation = Activation.Gelu, Dropout = 0.1f, DenseFeatures = 2 })
        : (new BertConfig
        {
            VocabSize = 30522, HiddenSize = 384, NumHiddenLayers = 6, NumAttentionHeads = 12, IntermediateSize = 1536,
            MaxPositionEmbeddings = 512, TypeVocabSize = 2, HiddenDropoutProb = 0.1, AttentionProbsDropoutProb = 0.1,
        }, new AdapterConfig { HiddenSizes = [64], Activation = Activation.Gelu, Dropout = 0.1f, DenseFeatures = 2 });

    /// <summary>A batch with padding (row b keeps T − 5b tokens), token types, dense features, labels and weights.</summary>
    internal static RecBatch MakeBatch(int B, int T, int vocab, int dense, ulong seed = 1)
    {
        var ids = new int[B * T];
        var types = new int[B * T];
        var mask = new float[B * T];
        var labels = new float[B];
        var weights = new float[B];
        for (int b = 0; b < B; b++)
        {
            int len = Math.Max(2, T - 5 * (b % Math.Max(1, T / 5)));
            for (int t = 0; t < T; t++)
            {
                int i = b * T + t;
                mask[i] = t < len ? 1f : 0f;
                ids[i] = t == 0 ? Math.Min(101, vocab - 1) : t < len ? 1 + (int)(Rng.Hash(seed, (ulong)i) % (ulong)(vocab - 1)) : 0;
                types[i] = t >= len / 2 && t < len ? 1 : 0;
            }
            labels[b] = Rng.Uniform(seed + 1, (ulong)b) < 0.5f ? 1f : 0f;
            weights[b] = 0.5f + Rng.Uniform(seed + 2, (ulong)b);
        }
        return new RecBatch
        {
            B = B, T = T, InputIds = ids, TokenTypeIds = types, AttentionMask = mask,
            Dense = dense > 0 ? Rand(B * dense, seed + 3) : null, Labels = labels, Weights = weights,
        };
    }

    private static void ModelParity(IBackend t, IBackend c, bool tiny, bool tf32, string key)
    {
        var res = new JsonArray();
        Report[key] = res;
        var (bert, adapter) = ModelConfig(tiny);
        int B = tiny ? 3 : 8, T = tiny ? 8 : 64;
        using var mt = new RecModel(t, bert, adapter);
        using var mc = new RecModel(c, bert, adapter);
        mt.InitRandom(5);
        mc.InitRandom(5);
        var batch = MakeBatch(B, T, bert.VocabSize, adapter.DenseFeatures);
        double gradTol = tf32 ? 3e-2 : 2e-3, logitTol = tf32 ? 1e-2 : 1e-4;
        string tag = tf32 ? " (TF32)" : "";

        Verdict(res, "eval logits" + tag, RelErr(mt.Forward(batch), mc.Forward(batch)), logitTol);
        var opt = new AdamWOptions { Lr = 1e-3f, MaxGradNorm = 1f };
        for (int step = 1; step <= 2; step++)
        {
            mt.ZeroGrad();
            mc.ZeroGrad();
            float lt = mt.ForwardBackward(batch, dropoutSeed: 9, step);
            float lc = mc.ForwardBackward(batch, dropoutSeed: 9, step);
            Verdict(res, $"step {step} loss{tag}", Math.Abs(lt - lc) / Math.Max(Math.Abs(lc), 1e-6), logitTol);
            double gMax = mc.Layout.Tensors.Max(p => mc.GetGradient(p.Name).Max(x => Math.Abs((double)x)));
            double worst = 0;
            string worstName = "";
            foreach (var p in mc.Layout.Tensors)
            {
                double e = RelErr(mt.GetGradient(p.Name), mc.GetGradient(p.Name), 1e-3 * gMax);
                if (e > worst) { worst = e; worstName = p.Name; }
            }
            Verdict(res, $"step {step} gradients, worst {worstName}{tag}", worst, gradTol);
            float nt = mt.Step(opt, step), nc = mc.Step(opt, step);
            Verdict(res, $"step {step} grad norm{tag}", Math.Abs(nt - nc) / Math.Max(nc, 1e-12f), logitTol);
        }
        // Adam normalises each element's step, so where the gradient is rounding noise (|g| below 1e-3 of the model's largest
        // gradient, e.g. attention.self.key.bias, whose gradient is zero by construction) the direction of the move is noise
        // too and a TF32/fp32 pair may move by up to 2·lr in opposite directions. Those elements are left out of this check
        // (their gradients were compared above); it is reported with the tensor it comes from. The H200 run of 2026-11-28
        // used the unmasked version and failed it in TF32 (0.94); this masked version has not yet run on a GPU.
        double gFloor = 1e-3 * mc.Layout.Tensors.Max(p => mc.GetGradient(p.Name).Max(x => Math.Abs((double)x)));
        double pWorst = 0;
        string pWorstName = "";
        foreach (var p in mc.Layout.Tensors)
        {
            var a = mt.GetParameter(p.Name);
            var b = mc.GetParameter(p.Name);
            var g = mc.GetGradient(p.Name);
            double d = 0;
            for (int i = 0; i < a.Length; i++)
                if (Math.Abs(g[i]) >= gFloor) d = Math.Max(d, Math.Abs((double)a[i] - b[i]));
            if (d / (2 * opt.Lr) > pWorst) { pWorst = d / (2 * opt.Lr); pWorstName = p.Name; }   // in units of the two steps' largest possible Adam move
        }
        Verdict(res, $"parameters after 2 AdamW steps (|Δ| / 2·lr, |g| ≥ 1e-3·max), worst {pWorstName}{tag}", pWorst, tf32 ? 0.5 : 0.05);
    }

    // ================================================================ timing

    private static double Median(List<double> xs)
    {
        var s = xs.OrderBy(x => x).ToList();
        return s.Count == 0 ? double.NaN : s.Count % 2 == 1 ? s[s.Count / 2] : 0.5 * (s[s.Count / 2 - 1] + s[s.Count / 2]);
    }

    /// <summary>Median wall time (ms) of <paramref name="body"/> after warm-up, synchronising the backend around each run.</summary>
    private static double TimeIt(IBackend b, Action body, int warmup, int reps)
    {
        for (int i = 0; i < warmup; i++) body();
        b.Synchronize();
        var times = new List<double>();
        for (int i = 0; i < reps; i++)
        {
            var sw = Stopwatch.StartNew();
            body();
            b.Synchronize();
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        return Median(times);
    }

    private static void TimeGemm(IBackend t, Options o)
    {
        var res = new JsonArray();
        Report["gemm"] = res;
        var gpu = t as IlgpuBackend;
        (int M, int N, int K, string what)[] shapes = o.Tiny
            ? [(64, 64, 64, "tiny")]
            : [(4096, 384, 384, "QKV/out proj (B·T=4096)"), (4096, 1536, 384, "FFN up"), (4096, 384, 1536, "FFN down"),
               (2048, 2048, 2048, "square 2048")];
        int reps = o.Tiny ? 1 : 20;
        foreach (var (M, N, K, what) in shapes)
        {
            using var a = t.Allocate<float>((long)M * K);
            using var b = t.Allocate<float>((long)N * K);
            using var c = t.Allocate<float>((long)M * N);
            t.Upload(a.All, Rand(M * K, 1));
            t.Upload(b.All, Rand(N * K, 2));
            double flop = 2.0 * M * N * K;
            var row = new JsonObject { ["m"] = M, ["n"] = N, ["k"] = K, ["what"] = what };
            void Run() => t.Gemm(false, true, M, N, K, 1f, a.All, 0, b.All, 0, false, c.All, 0);   // x·Wᵀ as in Linear
            if (gpu is not null) gpu.NativeGemmEnabled = false;
            double ms = TimeIt(t, Run, 2, reps);
            row["ilgpu_ms"] = ms;
            row["ilgpu_tflops"] = flop / ms / 1e9;
            if (gpu is not null && !o.Tiny)
            {
                foreach (int tile in new[] { 64, 128 })
                {
                    gpu.GemmTile = tile;
                    double tms = TimeIt(t, Run, 2, reps);
                    row[$"ilgpu{tile}_ms"] = tms;
                    row[$"ilgpu{tile}_tflops"] = flop / tms / 1e9;
                }
                gpu.GemmTile = 0;
            }
            if (gpu is { UsesNativeGemm: true } && Report["native_disabled_after_parity"] is null)
            {
                gpu.NativeGemmEnabled = true;
                double nms = TimeIt(t, Run, 2, reps);
                row["native_ms"] = nms;
                row["native_tflops"] = flop / nms / 1e9;
            }
            res.Add(row);
            Console.WriteLine($"gemm {M}x{N}x{K} ({what}): " + string.Join("  ", row.Where(kv => kv.Key.EndsWith("ms") || kv.Key.EndsWith("tflops"))
                .Select(kv => $"{kv.Key} {((double)kv.Value!).ToString("F3", CultureInfo.InvariantCulture)}")));
        }
        if (gpu is not null) gpu.NativeGemmEnabled = Report["native_disabled_after_parity"] is null;
    }

    private static void TimeTrainStep(IBackend t, Options o)
    {
        var (bert, adapter) = ModelConfig(o.Tiny);
        int B = o.Tiny ? 2 : 32, T = o.Tiny ? 8 : 128;
        var batch = MakeBatch(B, T, bert.VocabSize, adapter.DenseFeatures);
        var opt = new AdamWOptions { Lr = 2e-5f, MaxGradNorm = 1f };
        var gpu = t as IlgpuBackend;
        var res = new JsonObject { ["B"] = B, ["T"] = T };
        Report["train_step"] = res;
        using var model = new RecModel(t, bert, adapter);
        model.InitRandom(1);
        int step = 0;
        void Step()
        {
            step++;
            model.ZeroGrad();
            model.ForwardBackward(batch, dropoutSeed: 3, step);
            model.Step(opt, step, downloadNorm: false);
        }
        int warm = o.Tiny ? 1 : 3, reps = o.Tiny ? 1 : o.Steps;
        var variants = new List<(string, bool)> { ("ilgpu", false) };
        if (gpu is { UsesNativeGemm: true } && Report["native_disabled_after_parity"] is null) variants.Add(("native", true));
        foreach (var (name, native) in variants)
        {
            if (gpu is not null) gpu.NativeGemmEnabled = native;
            double ms = TimeIt(t, Step, warm, reps);
            res[$"{name}_ms"] = ms;
            res[$"{name}_examples_per_s"] = B / (ms / 1000);
            Console.WriteLine($"train step B={B} T={T} [{name}]: {ms:F2} ms median of {reps} ({B / (ms / 1000):F0} examples/s)");
        }
        if (gpu is not null) gpu.NativeGemmEnabled = Report["native_disabled_after_parity"] is null;
    }

    private static void TimeLatency(IBackend t, IBackend cpu, Options o)
    {
        var (bert, adapter) = ModelConfig(o.Tiny);
        var res = new JsonObject();
        Report["latency"] = res;
        foreach (int T in o.Tiny ? new[] { 8 } : new[] { 32, 128 })
        {
            var batch = MakeBatch(1, T, bert.VocabSize, adapter.DenseFeatures);
            using (var model = new RecModel(t, bert, adapter))
            {
                model.InitRandom(1);
                double ms = TimeIt(t, () => model.Forward(batch), o.Tiny ? 1 : 5, o.Tiny ? 1 : 50);
                res[$"target_T{T}_ms"] = ms;
                Console.WriteLine($"latency batch 1, T={T} [{t.Name}]: {ms:F3} ms");
            }
            using (var model = new RecModel(cpu, bert, adapter))
            {
                model.InitRandom(1);
                double ms = TimeIt(cpu, () => model.Forward(batch), 1, o.Tiny ? 1 : 10);
                res[$"cpu_T{T}_ms"] = ms;
                Console.WriteLine($"latency batch 1, T={T} [cpu, {CpuParallel.Threads} threads]: {ms:F3} ms");
            }
        }
    }

    // ================================================================ options

    private static Options Parse(string[] args)
    {
        string backend = "cuda", outDir = ".";
        bool tiny = false, timing = true, parity = true;
        int steps = 10;
        for (int i = 1; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--backend": backend = Next(); break;
                case "--tiny": tiny = true; break;
                case "--out": outDir = Next(); break;
                case "--steps": steps = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--no-timing": timing = false; break;
                case "--no-parity": parity = false; break;
                default: throw new ArgumentException($"unknown option '{args[i]}' (--backend, --tiny, --out, --steps, --no-timing, --no-parity)");
            }
        }
        return new Options(backend, tiny, outDir, steps, timing, parity);
    }
}
