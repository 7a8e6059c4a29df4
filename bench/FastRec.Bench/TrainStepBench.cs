// `train-step`: full fine-tune step (forward, backward, clip, AdamW) of the MiniLM-shaped model, FastRec CpuSimd vs LibTorch, examples/s.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FastRec.Engine.Model;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Peers;
using TorchSharp;

namespace FastRec.Bench;

/// <summary>
/// Times one training step of the same model (MiniLM-L6 shape: L 6, C 384, NH 12, F 1536, V 30522; head 64 + 2 dense
/// features; dropout 0.1 as in the MiniLM config) on FastRec's <see cref="CpuSimdBackend"/> and on LibTorch via
/// <see cref="TorchBert"/>, with the same thread count for both. Steps of the two engines alternate, so load on the machine
/// hits both alike; after the warm-up the median step time gives examples/s = B / median. The process CPU time of each
/// step is reported beside it (on a loaded machine the wall time stretches; CPU time much less, though it counts spinning).
/// <para>On a shared, oversubscribed machine run with <c>OMP_WAIT_POLICY=PASSIVE</c>: LibTorch's OpenMP threads otherwise
/// spin at every barrier while the other thread is descheduled, which inflates torch's wall and CPU time (measured 2.5x on
/// the 2-core dev box). The variable must be in the process environment before start; the result records it.</para>
/// <para>Options: --threads N (default 2), --batch B (32), --seq T (64), --warmup W (1), --steps S (3), --vocab V (30522),
/// --sdpa (torch attention via scaled_dot_product_attention instead of HF eager), --no-torch, --json. With --ranks N the
/// data-parallel scaling benchmark runs instead (<see cref="DataParallelBench"/>).</para>
/// </summary>
public static class TrainStepBench
{
    private sealed record Options(int Threads, int Batch, int Seq, int Warmup, int Steps, int Vocab, bool Sdpa, bool Torch, bool Json);

    /// <summary>Runs the benchmark; <paramref name="args"/>[0] is "train-step". Returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        if (DataParallelBench.Wanted(args)) return DataParallelBench.Run(args);
        Options o;
        try { o = Parse(args); }
        catch (ArgumentException e) { Console.Error.WriteLine($"train-step: {e.Message}"); return 2; }

        CpuParallel.Threads = o.Threads;
        if (o.Torch) { torch.set_num_threads(o.Threads); torch.set_num_interop_threads(1); }

        var bert = new BertConfig
        {
            VocabSize = o.Vocab, HiddenSize = 384, NumHiddenLayers = 6, NumAttentionHeads = 12, IntermediateSize = 1536,
            MaxPositionEmbeddings = 512, TypeVocabSize = 2, HiddenDropoutProb = 0.1, AttentionProbsDropoutProb = 0.1,
        };
        var adapter = new AdapterConfig { HiddenSizes = [64], Activation = Activation.Gelu, Dropout = 0.1f, DenseFeatures = 2, Input = AdapterInput.Pooler };
        var batch = MakeBatch(o.Batch, o.Seq, o.Vocab, adapter.DenseFeatures);
        var opt = new AdamWOptions { Lr = 2e-5f, WeightDecay = 0.01f, MaxGradNorm = 1.0f };

        using var backend = new CpuSimdBackend();
        using var model = new RecModel(backend, bert, adapter);
        model.InitRandom(1);
        using TorchBert? peer = o.Torch ? TorchBert.FromModel(model) : null;
        if (peer != null)
        {
            peer.UseSdpa = o.Sdpa;
            peer.ConfigureOptimizer(lr: opt.Lr, weightDecay: opt.WeightDecay, maxGradNorm: opt.MaxGradNorm);
        }

        var fast = new List<double>();
        var tor = new List<double>();
        var fastCpu = new List<double>();
        var torCpu = new List<double>();
        using var self = Process.GetCurrentProcess();
        double CpuMs() { self.Refresh(); return self.TotalProcessorTime.TotalMilliseconds; }
        float fastLoss = 0, torchLoss = 0;
        int total = o.Warmup + o.Steps;
        for (int step = 1; step <= total; step++)
        {
            double cpu0 = CpuMs();
            var sw = Stopwatch.StartNew();
            model.ZeroGrad();
            fastLoss = model.ForwardBackward(batch, dropoutSeed: 7, step: step);
            model.Step(opt, step);
            double fastMs = sw.Elapsed.TotalMilliseconds, fastCpuMs = CpuMs() - cpu0;
            if (step > o.Warmup) { fast.Add(fastMs); fastCpu.Add(fastCpuMs); }

            double torchMs = double.NaN, torchCpuMs = double.NaN;
            if (peer != null)
            {
                cpu0 = CpuMs();
                sw.Restart();
                peer.ZeroGrad();
                torchLoss = peer.ForwardBackward(batch, training: true);
                peer.Step();
                torchMs = sw.Elapsed.TotalMilliseconds;
                torchCpuMs = CpuMs() - cpu0;
                if (step > o.Warmup) { tor.Add(torchMs); torCpu.Add(torchCpuMs); }
            }
            if (!o.Json)
                Console.Error.WriteLine($"  step {step}{(step <= o.Warmup ? " (warm-up)" : "")}: fastrec {fastMs,9:F1} ms, cpu {fastCpuMs,9:F1} ms (loss {fastLoss:F4})" +
                                        (peer != null ? $"   torch {torchMs,9:F1} ms, cpu {torchCpuMs,9:F1} ms (loss {torchLoss:F4})" : ""));
        }

        double fastMed = Median(fast), torchMed = peer != null ? Median(tor) : double.NaN;
        double fastEps = o.Batch / (fastMed / 1000), torchEps = o.Batch / (torchMed / 1000);
        double ratio = fastEps / torchEps;
        string machine = $"{MachineInfo.CpuModel()}, {Environment.ProcessorCount} logical cores, load average {MachineInfo.LoadAverage()}";
        string date = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        string ompWait = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "unset";

        if (o.Json)
        {
            var result = new Dictionary<string, object?>
            {
                ["benchmark"] = "train-step",
                ["date"] = date,
                ["machine"] = machine,
                ["threads"] = o.Threads,
                ["batch"] = o.Batch,
                ["seq"] = o.Seq,
                ["vocab"] = o.Vocab,
                ["warmup"] = o.Warmup,
                ["steps"] = o.Steps,
                ["omp_wait_policy"] = ompWait,
                ["fastrec"] = new Dictionary<string, object> { ["backend"] = backend.Name, ["median_ms"] = Round(fastMed), ["examples_per_s"] = Round(fastEps), ["step_ms"] = fast.Select(Round).ToArray(), ["median_cpu_ms"] = Round(Median(fastCpu)) },
                ["torch"] = peer == null ? null : new Dictionary<string, object>
                {
                    ["attention"] = o.Sdpa ? "sdpa" : "eager", ["median_ms"] = Round(torchMed), ["examples_per_s"] = Round(torchEps), ["step_ms"] = tor.Select(Round).ToArray(),
                    ["median_cpu_ms"] = Round(Median(torCpu)),
                },
                ["ratio_fastrec_over_torch"] = peer == null ? null : Math.Round(ratio, 3),
            };
            Console.WriteLine(JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
        }
        else
        {
            Console.WriteLine($"train-step  MiniLM-L6 shape (V {o.Vocab}), B {o.Batch} x T {o.Seq}, {o.Threads} thread(s), median of {o.Steps} after {o.Warmup} warm-up");
            Console.WriteLine($"machine     {machine}; {date}");
            Console.WriteLine($"fastrec     {fastMed,9:F1} ms/step  {fastEps,8:F2} examples/s  cpu {Median(fastCpu),9:F1} ms/step  ({backend.Name})");
            if (peer != null)
            {
                Console.WriteLine($"torch       {torchMed,9:F1} ms/step  {torchEps,8:F2} examples/s  cpu {Median(torCpu),9:F1} ms/step  (LibTorch {(o.Sdpa ? "sdpa" : "eager")} attention)");
                Console.WriteLine($"ratio       {ratio:F3}  (fastrec / torch examples/s; > 1 = FastRec faster)");
                if (ompWait == "unset")
                    Console.WriteLine("note        OMP_WAIT_POLICY is unset: on a loaded machine LibTorch's spinning OpenMP threads slow it down; OMP_WAIT_POLICY=PASSIVE is fairer there");
            }
        }
        return 0;
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
                default: throw new ArgumentException($"unknown option '{args[i]}' (--threads N --batch B --seq T --warmup W --steps S --vocab V --sdpa --no-torch --json)");
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
