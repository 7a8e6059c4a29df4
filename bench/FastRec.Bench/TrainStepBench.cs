// `train-step`: full fine-tune step (forward, backward, clip, AdamW) of the MiniLM-shaped model, FastRec CpuSimd vs LibTorch, examples/s.
using System.Globalization;
using System.Text.Json;
using FastRec.Bench.Fair;
using FastRec.Engine.Model;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Peers;
using TorchSharp;

namespace FastRec.Bench;

/// <summary>
/// Times one training step of the same model (MiniLM-L6 shape: L 6, C 384, NH 12, F 1536, V 30522; head 64 + 2 dense
/// features; dropout 0.1 as in the MiniLM config) on FastRec's <see cref="CpuSimdBackend"/> and on LibTorch via
/// <see cref="TorchBert"/>, with the same thread count for both. Each engine runs in its own worker process
/// (<see cref="FairRun"/>), LibTorch at its default OpenMP wait policy (OMP_WAIT_POLICY removed from its environment;
/// --tuned sets PASSIVE there, labelled "tuned"); the parent asks them in turn for blocks of R steps (--block-reps,
/// default 1), so load on the machine hits both alike and neither runs beside the other's spinning threads. After the
/// warm-up the median step time gives examples/s = B / median. The process CPU time of each step is reported beside it.
/// --in-process: the old method (both in this process, alternating step by step; LibTorch's wait policy is then this
/// process's OMP_WAIT_POLICY).
/// <para>Options: --threads N (default 2), --batch B (32), --seq T (64), --warmup W (1), --steps S (3), --vocab V (30522),
/// --sdpa (torch attention via scaled_dot_product_attention instead of HF eager), --no-torch, --json, plus --tuned,
/// --block-reps R, --in-process. With --ranks N the data-parallel scaling benchmark runs instead (<see cref="DataParallelBench"/>).</para>
/// </summary>
public static class TrainStepBench
{
    private sealed record Options(int Threads, int Batch, int Seq, int Warmup, int Steps, int Vocab, bool Sdpa, bool Torch, bool Json);

    /// <summary>Runs the benchmark; <paramref name="args"/>[0] is "train-step". Returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        if (DataParallelBench.Wanted(args)) return DataParallelBench.Run(args);
        HarnessOptions h;
        Options o;
        try { h = HarnessOptions.Extract(args); o = Parse(h.Args); }
        catch (ArgumentException e) { Console.Error.WriteLine($"train-step: {e.Message}"); return 2; }

        CpuParallel.Threads = o.Threads;
        if (h.Worker is not null) return WorkerHost.RunWorker(() => CreateEngine(h.Worker, o, h.InProcess));

        var specs = new List<EngineSpec> { new("fastrec", () => CreateEngine("fastrec", o, h.InProcess)) };
        if (o.Torch)
            specs.Add(new("torch", () => CreateEngine("torch", o, h.InProcess),
                new Dictionary<string, string?> { ["OMP_WAIT_POLICY"] = h.Tuned ? "PASSIVE" : null }));
        int blockReps = h.BlockReps ?? 1;
        Dictionary<string, SlotResult> res;
        FairRun? run = null;
        try
        {
            run = FairRun.Start(h, blockReps, specs);
            res = run.Run(specs.Select(e => new Slot(e.Name, e.Name, "step")).ToList(), o.Steps, o.Warmup);
            run.Finish();
        }
        catch (WorkerException e) { Console.Error.WriteLine($"train-step: {e.Message}"); run?.Dispose(); return 1; }
        using (run)
        {
            var fast = res["fastrec"];
            var tor = o.Torch ? res["torch"] : null;
            double fastMed = Median(fast.WallMs), torchMed = tor != null ? Median(tor.WallMs) : double.NaN;
            double fastEps = o.Batch / (fastMed / 1000), torchEps = o.Batch / (torchMed / 1000);
            double ratio = fastEps / torchEps;
            var fastSettings = run.Client("fastrec").Settings;

            if (o.Json)
            {
                var result = new Dictionary<string, object?>
                {
                    ["benchmark"] = "train-step",
                    ["threads"] = o.Threads,
                    ["batch"] = o.Batch,
                    ["seq"] = o.Seq,
                    ["vocab"] = o.Vocab,
                    ["warmup"] = o.Warmup,
                    ["steps"] = o.Steps,
                };
                foreach (var kv in run.Meta()) result[kv.Key] = kv.Value;
                result["fastrec"] = new Dictionary<string, object> { ["backend"] = fastSettings["engine"], ["median_ms"] = Round(fastMed), ["examples_per_s"] = Round(fastEps), ["step_ms"] = fast.WallMs.Select(Round).ToArray(), ["median_cpu_ms"] = Round(Median(fast.CpuMs)), ["loss"] = Round(fast.Extra.GetValueOrDefault("loss", double.NaN)) };
                result["torch"] = tor == null ? null : new Dictionary<string, object>
                {
                    ["attention"] = o.Sdpa ? "sdpa" : "eager", ["median_ms"] = Round(torchMed), ["examples_per_s"] = Round(torchEps), ["step_ms"] = tor.WallMs.Select(Round).ToArray(),
                    ["median_cpu_ms"] = Round(Median(tor.CpuMs)), ["loss"] = Round(tor.Extra.GetValueOrDefault("loss", double.NaN)),
                };
                result["ratio_fastrec_over_torch"] = tor == null ? null : Math.Round(ratio, 3);
                Console.WriteLine(JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
            }
            else
            {
                Console.WriteLine($"train-step  MiniLM-L6 shape (V {o.Vocab}), B {o.Batch} x T {o.Seq}, {o.Threads} thread(s), median of {o.Steps} after {o.Warmup} warm-up");
                foreach (string line in run.Header()) Console.WriteLine(line);
                Console.WriteLine($"fastrec     {fastMed,9:F1} ms/step  {fastEps,8:F2} examples/s  cpu {Median(fast.CpuMs),9:F1} ms/step  ({fastSettings["engine"]}, loss {fast.Extra.GetValueOrDefault("loss", double.NaN):F4})");
                if (tor != null)
                {
                    Console.WriteLine($"torch       {torchMed,9:F1} ms/step  {torchEps,8:F2} examples/s  cpu {Median(tor.CpuMs),9:F1} ms/step  (LibTorch {(o.Sdpa ? "sdpa" : "eager")} attention, loss {tor.Extra.GetValueOrDefault("loss", double.NaN):F4})");
                    Console.WriteLine($"ratio       {ratio:F3}  (fastrec / torch examples/s; > 1 = FastRec faster)");
                    if (h.InProcess && (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "unset") == "unset")
                        Console.WriteLine("note        in-process with OMP_WAIT_POLICY unset: LibTorch's spinning OpenMP threads run beside FastRec's steps here");
                }
            }
        }
        return 0;
    }

    private static IBenchEngine CreateEngine(string name, Options o, bool inProcess) => name switch
    {
        "fastrec" => new StepEngine(o, torch: false, inProcess),
        "torch" => new StepEngine(o, torch: true, inProcess),
        _ => throw new ArgumentException($"train-step: no engine '{name}' (fastrec, torch)"),
    };

    /// <summary>One engine's train step (zero grad, forward + backward, clip + AdamW) on the same randomly initialised model
    /// (LibTorch's copied from a FastRec model of seed 1) and the same batch; the step counter runs on across blocks.</summary>
    private sealed class StepEngine : IBenchEngine
    {
        private readonly CpuSimdBackend _backend = new();
        private readonly RecModel _model;
        private readonly TorchBert? _peer;
        private readonly RecBatch _batch;
        private readonly AdamWOptions _opt = new() { Lr = 2e-5f, WeightDecay = 0.01f, MaxGradNorm = 1.0f };
        private int _step;
        private float _loss;
        public string Name { get; }
        public IReadOnlyDictionary<string, string> Settings { get; }

        public StepEngine(Options o, bool torch, bool inProcess)
        {
            Name = torch ? "torch" : "fastrec";
            if (torch) { TorchSharp.torch.set_num_threads(o.Threads); TorchSharp.torch.set_num_interop_threads(1); }
            var bert = new BertConfig
            {
                VocabSize = o.Vocab, HiddenSize = 384, NumHiddenLayers = 6, NumAttentionHeads = 12, IntermediateSize = 1536,
                MaxPositionEmbeddings = 512, TypeVocabSize = 2, HiddenDropoutProb = 0.1, AttentionProbsDropoutProb = 0.1,
            };
            var adapter = new AdapterConfig { HiddenSizes = [64], Activation = Activation.Gelu, Dropout = 0.1f, DenseFeatures = 2, Input = AdapterInput.Pooler };
            _batch = MakeBatch(o.Batch, o.Seq, o.Vocab, adapter.DenseFeatures);
            _model = new RecModel(_backend, bert, adapter);
            _model.InitRandom(1);
            if (torch)
            {
                _peer = TorchBert.FromModel(_model);
                _peer.UseSdpa = o.Sdpa;
                _peer.ConfigureOptimizer(lr: _opt.Lr, weightDecay: _opt.WeightDecay, maxGradNorm: _opt.MaxGradNorm);
                string omp = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "unset";
                Settings = new Dictionary<string, string>
                {
                    ["engine"] = $"LibTorch via TorchSharp {typeof(TorchSharp.torch).Assembly.GetName().Version}, {(o.Sdpa ? "sdpa" : "eager")} attention",
                    ["threads"] = $"intra-op {TorchSharp.torch.get_num_threads()} (set_num_threads), inter-op 1",
                    ["spinning"] = $"OpenMP, OMP_WAIT_POLICY {omp}{(omp == "PASSIVE" ? " (tuned)" : omp == "unset" ? " (default: threads spin at barriers)" : "")}" +
                                   (inProcess ? ", in-process (inherited from the parent)" : ""),
                    ["precision"] = "fp32",
                };
            }
            else
            {
                Settings = new Dictionary<string, string>
                {
                    ["engine"] = _backend.Name,
                    ["threads"] = $"{o.Threads} (CpuParallel)",
                    ["spinning"] = MachineInfo.FastRecSpinning(),
                    ["precision"] = "fp32",
                };
            }
        }

        public BenchCase Prepare(string caseId)
        {
            if (caseId != "step") throw new ArgumentException($"train-step: no case '{caseId}' (step)");
            return new BenchCase(Step, () => new Dictionary<string, double> { ["loss"] = _loss, ["steps"] = _step });
        }

        private void Step()
        {
            _step++;
            if (_peer is not null)
            {
                _peer.ZeroGrad();
                _loss = _peer.ForwardBackward(_batch, training: true);
                _peer.Step();
            }
            else
            {
                _model.ZeroGrad();
                _loss = _model.ForwardBackward(_batch, dropoutSeed: 7, step: _step);
                _model.Step(_opt, _step);
            }
        }

        public void Dispose()
        {
            _peer?.Dispose(); _model.Dispose(); _backend.Dispose();
        }
    }

    private static double Round(double v) => Math.Round(v, 2);

    private static Options Parse(string[] args)
    {
        int threads = 2, batch = 32, seq = 64, warmup = 1, steps = 3, vocab = 30522;
        bool sdpa = false, useTorch = true, json = false;
        for (int i = 1; i < args.Length; i++)
        {
            int Int(string name)
            {
                if (i + 1 >= args.Length || !int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v <= 0)
                    throw new ArgumentException($"{name} needs a positive integer");
                i++;
                return v;
            }
            switch (args[i])
            {
                case "--threads": threads = Int("--threads"); break;
                case "--batch": batch = Int("--batch"); break;
                case "--seq": seq = Int("--seq"); break;
                case "--warmup": warmup = Int("--warmup"); break;
                case "--steps": steps = Int("--steps"); break;
                case "--vocab": vocab = Int("--vocab"); break;
                case "--sdpa": sdpa = true; break;
                case "--no-torch": useTorch = false; break;
                case "--json": json = true; break;
                default: throw new ArgumentException($"unknown option '{args[i]}' (--threads N --batch B --seq T --warmup W --steps S --vocab V --sdpa --no-torch --json --tuned --block-reps R --in-process)");
            }
        }
        if (seq > 512) throw new ArgumentException($"--seq {seq} exceeds max_position_embeddings 512");
        return new Options(threads, batch, seq, warmup, steps, vocab, sdpa, useTorch, json);
    }

    /// <summary>B examples of T tokens: [CLS]-like id 101, random ids, padding (id 0, mask 0) after a per-row length in [T/2, T].
    /// <paramref name="salt"/> draws another batch of the same kind (one per rank).</summary>
    internal static RecBatch MakeBatch(int B, int T, int V, int D, ulong salt = 0)
    {
        ulong k = salt * 100;
        var batch = new RecBatch
        {
            B = B, T = T, InputIds = new int[B * T], TokenTypeIds = new int[B * T], AttentionMask = new float[B * T],
            Dense = new float[B * D], Labels = new float[B], Weights = null,
        };
        for (int b = 0; b < B; b++)
        {
            int len = T / 2 + (int)(Rng.Uniform(k + 11, (ulong)b) * (T - T / 2 + 1));
            len = Math.Clamp(len, 1, T);
            for (int t = 0; t < T; t++)
            {
                int i = b * T + t;
                bool real = t < len;
                batch.InputIds[i] = !real ? 0 : t == 0 ? Math.Min(101, V - 1) : 1 + (int)(Rng.Uniform(k + 12, (ulong)i) * (V - 1)) % (V - 1);
                batch.AttentionMask[i] = real ? 1 : 0;
            }
            for (int d = 0; d < D; d++) batch.Dense![b * D + d] = 2 * Rng.Uniform(k + 13, (ulong)(b * D + d)) - 1;
            batch.Labels[b] = Rng.Uniform(k + 14, (ulong)b) < 0.5f ? 0 : 1;
        }
        return batch;
    }

    internal static double Median(List<double> xs)
    {
        if (xs.Count == 0) return double.NaN;
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}
