// `fastrec bench <gemm|train-step|latency|ranking|topk> [--json]`: side-by-side benchmarks against the peers. The peer
// comparisons (gemm, train-step, latency) run each engine in its own worker process, at its users' default settings, and
// interleave blocks of R repetitions across the processes; --in-process (old method) and --tuned (tuned peers) are labelled.
using System.CommandLine;

namespace FastRec.Cli.Commands;

internal static class BenchCommand
{
    public static Command Build()
    {
        var what = new Argument<string>("what") { Description = "gemm | train-step | latency | ranking (full-ranking evaluation speed) | topk (serving latency of one top-10 over 10k and 1M items) | micro" };
        var rest = new Argument<string[]>("options") { Description = "passed to the harness (--json, --threads N, ...; gemm/train-step/latency: --block-reps R, --tuned (peers tuned: ORT spinning off, OMP_WAIT_POLICY=PASSIVE), --in-process (old one-process method); train-step --ranks N: data-parallel scaling over mpirun)", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("bench", "Benchmarks FastRec side by side with LibTorch / ONNX Runtime (runs bench/FastRec.Bench)") { what, rest };
        cmd.TreatUnmatchedTokensAsErrors = false;
        cmd.SetAction(r => BenchForwarder.Run(new[] { r.GetValue(what)! }.Concat(r.GetValue(rest) ?? []).Concat(r.UnmatchedTokens)));
        return cmd;
    }
}
