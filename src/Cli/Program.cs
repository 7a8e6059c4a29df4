// Entry point of the `fastrec` command: registers one verb per file under Commands/.
using System.CommandLine;
using FastRec.Cli.Commands;

return FastRec.Cli.CliApp.Run(args);

namespace FastRec.Cli
{
    /// <summary>The command tree (separate so tests can parse command lines without running them).</summary>
    public static class CliApp
    {
        /// <summary>The root command with every verb.</summary>
        public static RootCommand Root()
        {
            var root = new RootCommand("FastRec: fine-tune, distill and serve BERT recommenders in .NET");
            root.Subcommands.Add(BenchCommand.Build());
            root.Subcommands.Add(DemoCommand.Build());
            root.Subcommands.Add(ConvertCommand.Build());
            root.Subcommands.Add(EncodeCommand.Build());
            root.Subcommands.Add(TrainCommand.Build());
            root.Subcommands.Add(EvalCommand.Build());
            root.Subcommands.Add(PredictCommand.Build());
            root.Subcommands.Add(ExportCommand.Build());
            root.Subcommands.Add(DistillCommand.Build());
            root.Subcommands.Add(CotrainCommand.Build());
            root.Subcommands.Add(StudyCommand.Build());
            root.Subcommands.Add(TowerCommand.Build());
            root.Subcommands.Add(RecommendCommand.Build());
            return root;
        }

        /// <summary>Parses and runs a command line. A parse error (unknown flag, bad value, missing required flag) is one
        /// line on stderr and exit code 2, like every other expected failure; with --json, stdout is {"error": ...}.</summary>
        public static int Run(string[] args)
        {
            var parse = Root().Parse(args);
            return parse.Errors.Count > 0 ? CliRun.ParseErrors(parse, args) : parse.Invoke();
        }
    }
}
