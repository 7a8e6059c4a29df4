// Device check of the distillation and serving work: MSE + a distillation step on CUDA vs CpuSimd, Predictor latency grid.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FastRec.Engine.Distillation;
using FastRec.Engine.Model;
using FastRec.Engine.Serving;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;

// Usage: FastRec.DistillCheck [--backend cuda|ilgpu-cpu] [--latency-only] [--no-latency] [--requests R] [--out FILE.json]
string backendName = "cuda", outPath = "distill_check.json";
bool latency = true, parity = true;
int requests = 200;
for (int i = 0; i < args.Length; i++)
    switch (args[i])
    {
        case "--backend": backendName = args[++i]; break;
        case "--latency-only": parity = false; break;
        case "--no-latency": latency = false; break;
        case "--requests": requests = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--out": outPath = args[++i]; break;
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
var report = new Dictionary<string, object?> { ["date"] = DateTime.UtcNow.ToString("o"), ["cores"] = Environment.ProcessorCount };
int fails = 0;
void Line(string s) { Console.WriteLine(s); }
double MaxRel(float[] a, float[] b)
{
    double md = 0, mr = 1e-30;
    for (int i = 0; i < a.Length; i++) { md = Math.Max(md, Math.Abs((double)a[i] - b[i])); mr = Math.Max(mr, Math.Abs((double)b[i])); }
    return double.IsNaN(md) ? double.PositiveInfinity : md / mr;
}
void Verdict(string what, double err, double tol)
{
    bool ok = err <= tol;
    if (!ok) fails++;
    Line($"{(ok ? "PASS" : "FAIL")} {what}: max rel err {err:E2} (tol {tol:E0})");
    report[what] = err;
}
float[] Rand(int n, ulong seed, float lo = -1f, float hi = 1f) { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = lo + (hi - lo) * Rng.Uniform(seed, (ulong)i); return a; }

if (parity)
{
    try
    {
        using var gpu = BackendFactory.Create(backendName);
        using var cpu = new CpuSimdBackend();
        report["backend"] = gpu.Name;
        Line($"backend {gpu.Name}");
        foreach (int N in new[] { 1, 1000, 6_291_456 })
            foreach (bool acc in new[] { false, true })
            {
                var p = Rand(N, 1, -3, 3); var t = Rand(N, 2, -3, 3); var g0 = Rand(N, 3);
                float[] Run(IBackend be, out float loss)
                {
                    using var pb = be.Allocate<float>(N); using var tb = be.Allocate<float>(N); using var gb = be.Allocate<float>(N); using var lb = be.Allocate<float>(1);
                    be.Upload(pb.All, p); be.Upload(tb.All, t); be.Upload(gb.All, g0);
                    be.MseForwardBackward(lb.All, gb.All, pb.All, tb.All, N, 0.7f, acc);
                    var g = new float[N]; be.Download(gb.All, g); var l = new float[1]; be.Download(lb.All, l); loss = l[0];
                    return g;
                }
                var gg = Run(gpu, out float lg); var gc = Run(cpu, out float lc);
                Line($"  loss {gpu.Name} {lg:R} cpu {lc:R}");
                Verdict($"MSE N={N} accumulate={acc} loss", Math.Abs(lg - lc) / Math.Abs(lc), 1e-4);
                Verdict($"MSE N={N} accumulate={acc} dPred", MaxRel(gg, gc), 1e-6);
            }

        // one distillation step (hidden + attention transfer through a learned projection) on both backends
        var tb2 = new BertConfig { VocabSize = 200, HiddenSize = 64, NumHiddenLayers = 4, NumAttentionHeads = 4, IntermediateSize = 128, MaxPositionEmbeddings = 64 };
        var head = new AdapterConfig { HiddenSizes = [16], Dropout = 0.1f };
        var sb = Student.Derive(tb2, new StudentConfig { Layers = 2, Hidden = 32 });
        const int B = 8, T = 24;
        var ids = new int[B * T]; var mask = new float[B * T]; var labels = new float[B];
        for (int b = 0; b < B; b++)
        {
            int n = T - 2 * (b % 4);
            for (int x = 0; x < T; x++) { ids[b * T + x] = x < n ? 1 + (int)(Rng.Hash(5, (ulong)(b * T + x)) % 199) : 0; mask[b * T + x] = x < n ? 1 : 0; }
            labels[b] = b % 2;
        }
        var batch = new RecBatch { B = B, T = T, InputIds = ids, AttentionMask = mask, Labels = labels };
        var opts = new DistillOptions { Alpha = 0.5f, Temperature = 2f, HiddenWeight = 1f, AttentionWeight = 1f, Optimizer = new AdamWOptions { Lr = 1e-3f } };
        (DistillLoss Loss, float[] Grads, float[] Params) Step(IBackend be)
        {
            using var teacher = new RecModel(be, tb2, head); teacher.InitRandom(1);
            using var student = new RecModel(be, sb, head); student.InitRandom(2);
            using var d = new Distiller(student, [teacher], opts, B);
            var l = d.Step(batch, Enumerable.Range(0, B).ToArray(), 1);
            var g = new float[student.Layout.TotalSize]; be.Download(student.Grads.All, g);
            var p = new float[student.Layout.TotalSize]; be.Download(student.Params.All, p);
            return (l, g, p);
        }
        var sg = Step(gpu); var sc = Step(cpu);
        Line($"distill step losses {gpu.Name}: {sg.Loss}  cpu: {sc.Loss}");
        Verdict("distill step total loss", Math.Abs(sg.Loss.Total - sc.Loss.Total) / Math.Abs(sc.Loss.Total), 1e-4);
        Verdict("distill step hidden loss", Math.Abs(sg.Loss.Hidden - sc.Loss.Hidden) / Math.Abs(sc.Loss.Hidden), 1e-4);
        Verdict("distill step attention loss", Math.Abs(sg.Loss.Attention - sc.Loss.Attention) / Math.Abs(sc.Loss.Attention), 1e-3);
        Verdict("distill step student gradients", MaxRel(sg.Grads, sc.Grads), 2e-3);
        Verdict("distill step student parameters after AdamW", MaxRel(sg.Params, sc.Params), 1e-4);
    }
    catch (Exception e) { fails++; Line($"FAIL parity stage: {e.GetType().Name}: {e.Message}"); }
}

if (latency)
{
    // MiniLM-L6 shape (all-MiniLM-L6-v2), random weights: timing only; 2 threads like the ORT peer
    CpuParallel.Threads = 2;
    var bert = new BertConfig { VocabSize = 30522, HiddenSize = 384, NumHiddenLayers = 6, NumAttentionHeads = 12, IntermediateSize = 1536, MaxPositionEmbeddings = 512 };
    var adapter = new AdapterConfig { HiddenSizes = [], Input = AdapterInput.Pooler, Dropout = 0f };
    using var be = new CpuSimdBackend();
    using var teacher = new RecModel(be, bert, adapter); teacher.InitRandom(1);
    using var student = new RecModel(be, Student.Derive(bert, new StudentConfig { Layers = 3 }), adapter);
    Student.InitializeFrom(student, teacher, 2);
    var po = new PredictorOptions { MaxLength = 128, MaxBatch = 16 };
    using var pt = new Predictor(teacher, po);
    using var ps = new Predictor(student, po);
    var rows = new List<Dictionary<string, object>>();
    foreach (int T in new[] { 32, 64, 128 })
        foreach (int B in new[] { 1, 16 })
        {
            int a = (T - 3) / 2, c = T - 3 - a;
            var ctx = Enumerable.Range(0, a).Select(i => 1000 + (int)(Rng.Hash(1, (ulong)i) % 28000)).ToArray();
            var cands = Enumerable.Range(0, B * c).Select(i => 1000 + (int)(Rng.Hash(2, (ulong)i) % 28000)).ToArray();
            var offsets = Enumerable.Range(0, B + 1).Select(i => i * c).ToArray();
            var scores = new float[B];
            foreach (var (name, p) in new[] { ("fastrec", pt), ("student", ps) })
            {
                var times = new List<double>();
                var sw = new Stopwatch();
                for (int r = 0; r < 20 + requests; r++)
                {
                    sw.Restart(); p.ScoreCandidates(ctx, cands, offsets, scores); sw.Stop();
                    if (r >= 20) times.Add(sw.Elapsed.TotalMilliseconds);
                }
                times.Sort();
                double P(double q) { double pos = q * (times.Count - 1); int lo = (int)pos, hi = Math.Min(lo + 1, times.Count - 1); return times[lo] + (times[hi] - times[lo]) * (pos - lo); }
                rows.Add(new() { ["engine"] = name, ["batch"] = B, ["seq"] = T, ["p50_ms"] = Math.Round(P(0.5), 3), ["p99_ms"] = Math.Round(P(0.99), 3) });
                Line($"latency {name,-8} B {B,2} T {T,3}: p50 {P(0.5),8:F3} ms  p99 {P(0.99),8:F3} ms");
            }
        }
    report["latency"] = rows;
}
File.WriteAllText(outPath, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
Line($"{(fails == 0 ? "ALL PASS" : $"{fails} FAIL")}; wrote {outPath}");
return fails == 0 ? 0 : 1;
