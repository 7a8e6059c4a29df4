// Runs the side-by-side peer harness (bench/FastRec.Bench), which holds the TorchSharp / ONNX Runtime peers.
using System.Diagnostics;

namespace FastRec.Cli.Commands;

/// <summary>The peers (LibTorch, ONNX Runtime) stay out of src/; `fastrec bench` launches the bench project.</summary>
internal static class BenchForwarder
{
    public static int Run(IEnumerable<string> args)
    {
        string? root = FindRepoRoot();
        if (root is null)
        {
            Console.Error.WriteLine("fastrec bench: cannot find FastRec.sln above the current directory; run it from the repository.");
            return 2;
        }
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, WorkingDirectory = root };
        foreach (var a in new[] { "run", "-c", "Release", "--project", Path.Combine(root, "bench", "FastRec.Bench"), "--" }) psi.ArgumentList.Add(a);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet");
        p.WaitForExit();
        return p.ExitCode;
    }

    private static string? FindRepoRoot()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "FastRec.sln"))) return d.FullName;
        return null;
    }
}
