// Entry point of the peer harness: `gemm`, `cpu-ops`, `train-step`, `device` (GPU check), `latency`, `ranking`, `topk`, `probe` (measurement probes on the real data), `micro` (BenchmarkDotNet).
namespace FastRec.Bench;

public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length == 0) { Console.Error.WriteLine("usage: FastRec.Bench <gemm|cpu-ops|train-step|device|latency|ranking|topk|probe|micro> [--json] [--threads N]\n  peer comparisons (gemm, train-step, latency): one worker process per engine by default; --in-process (old method), --tuned (tuned peers), --block-reps R"); return 2; }
        if (args[0] == "gemm") return GemmBench.Run(args);
        if (args[0] == "cpu-ops") return CpuOpsBench.Run(args);
        if (args[0] == "train-step") return TrainStepBench.Run(args);
        if (args[0] == "device") return DeviceCheck.Run(args);
        if (args[0] == "latency") return LatencyBench.Run(args);
        if (args[0] == "ranking") return RankingBench.Run(args);
        if (args[0] == "topk") return TopKBench.Run(args);
        if (args[0] == "probe") return Probes.Run(args);
        if (args[0] == "selftest") return Fair.SelfTestBench.Run(args);   // the fair harness with trivial engines (tests)
        Console.Error.WriteLine($"unknown benchmark '{args[0]}'");
        return 2;
    }
}
