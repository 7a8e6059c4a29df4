// `fastrec demo`: the main job. Until the fine-tuning demo exists it runs the train-step benchmark.
using System.CommandLine;

namespace FastRec.Cli.Commands;

internal static class DemoCommand
{
    public static Command Build()
    {
        var cmd = new Command("demo", "The main job on the embedded default (for now: the MiniLM train-step benchmark vs LibTorch)");
        cmd.SetAction(_ => BenchForwarder.Run(["train-step"]));
        return cmd;
    }
}
