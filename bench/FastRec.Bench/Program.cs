// Entry point of the peer harness: `gemm`, `train-step`, `latency`, `micro` (BenchmarkDotNet).
namespace FastRec.Bench;

public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length == 0) { Console.Error.WriteLine("usage: FastRec.Bench <gemm|train-step|latency|micro> [--json] [--threads N]"); return 2; }
        if (args[0] == "gemm") return GemmBench.Run(args);
        Console.Error.WriteLine($"unknown benchmark '{args[0]}'");
        return 2;
    }
}
