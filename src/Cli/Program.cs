// Entry point of the `fastrec` command: registers one verb per file under Commands/.
using System.CommandLine;
using FastRec.Cli.Commands;

var root = new RootCommand("FastRec: fine-tune, distill and serve BERT recommenders in .NET");
root.Subcommands.Add(BenchCommand.Build());
root.Subcommands.Add(DemoCommand.Build());
root.Subcommands.Add(ConvertCommand.Build());
root.Subcommands.Add(EncodeCommand.Build());
return root.Parse(args).Invoke();
