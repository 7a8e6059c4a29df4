// Starts a program under `mpirun -np N` from a test: finds mpirun, sets the environment, bounds the wait, captures output.
using System.Diagnostics;
using System.Text;

namespace FastRec.Tests.Kernels.Distributed;

/// <summary>What an mpirun job did.</summary>
internal sealed record MpiJob(int Code, string Output, TimeSpan Elapsed)
{
    public override string ToString() => $"exit {Code} after {Elapsed.TotalSeconds:0.0} s:\n{Output}";
}

/// <summary>Runs .NET programs of the test output folder (fastrec.dll, fastrec-mpi-probe.dll) as the ranks of an mpirun job.</summary>
internal static class Mpirun
{
    /// <summary>The mpirun on PATH, or null.</summary>
    public static string? Find()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(dir, "mpirun");
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Ignores the calling test, saying why, when mpirun is not installed.</summary>
    public static string Require()
        => Find() ?? throw new IgnoreException("mpirun is not installed here (apt-get install openmpi-bin; .ci/run installs it): the 2-rank test cannot run");

    /// <summary>
    /// <c>mpirun -np <paramref name="ranks"/> --oversubscribe dotnet DLL ARGS</c> in <paramref name="workDir"/>; waits at most
    /// <paramref name="limit"/> (then kills the job and fails the test). <paramref name="started"/> sees mpirun's process.
    /// </summary>
    public static MpiJob Run(int ranks, string dll, IEnumerable<string> args, TimeSpan limit, string? workDir = null, Action<Process>? started = null)
    {
        var psi = new ProcessStartInfo(Require())
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true,
            WorkingDirectory = workDir ?? Environment.CurrentDirectory,
        };
        foreach (var a in new[] { "-np", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture), "--oversubscribe" }) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet");
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, dll));
        foreach (var a in args) psi.ArgumentList.Add(a);
        // CI and containers may run as root, which mpirun refuses unless told; and containers often forbid the cross-memory
        // attach that Open MPI's shared-memory transport uses for large messages (plain copies instead).
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        psi.Environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none";
        psi.Environment["OMPI_MCA_rmaps_base_oversubscribe"] = "1";
        var output = new StringBuilder();
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        started?.Invoke(p);
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            Assert.Fail($"the mpirun job did not end within {limit.TotalSeconds} s:\n{output}");
        }
        p.WaitForExit();
        string text;
        lock (output) text = output.ToString();
        var job = new MpiJob(p.ExitCode, text, clock.Elapsed);
        TestContext.Out.WriteLine(job.ToString());
        return job;
    }

    /// <summary>The pid of rank <paramref name="rank"/> among the children of mpirun <paramref name="mpirun"/> (from
    /// OMPI_COMM_WORLD_RANK in its /proc environment), or null while it has not started.</summary>
    public static int? RankPid(Process mpirun, int rank)
    {
        string want = $"OMPI_COMM_WORLD_RANK={rank}";
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (fields.Length < 2 || fields[1] != mpirun.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)) continue;
                var env = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0');
                if (env.Contains(want)) return pid;
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return null;
    }
}
