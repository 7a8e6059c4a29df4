// `--distributed local|mpi|nccl` and `--collective-timeout` of `fastrec train`: joins the job's ranks, with one-line errors.
using System.CommandLine;
using System.Globalization;
using FastRec.Kernels;
using FastRec.Kernels.Distributed;

namespace FastRec.Cli.Commands;

/// <summary>Data-parallel training options: which collective joins the ranks, and how long a rank waits for the others.</summary>
internal sealed class DistributedOptions
{
    public readonly Option<string> Distributed = new("--distributed")
    {
        Description = "local (this process alone) | mpi (data parallel over the ranks of `mpirun -np N fastrec train ... --distributed mpi`) | " +
                      "nccl (the same with gradients reduced in GPU memory by NCCL: --backend cuda, one GPU per rank)",
        DefaultValueFactory = _ => "local",
    };
    public readonly Option<double> Timeout = new("--collective-timeout")
    {
        Description = "Seconds a rank waits for the others in one collective before the job stops with an error",
        DefaultValueFactory = _ => Collective.DefaultTimeout.TotalSeconds,
    };

    public readonly Option<bool> Verify = new("--verify-ranks")
    {
        Description = "Debug: after every optimizer step check that all ranks hold bit-identical weights (stops naming the step if not)",
    };

    public void AddTo(Command cmd)
    {
        Timeout.Validators.Add(v =>
        {
            double s = v.GetValueOrDefault<double>();
            if (!(s > 0 && s <= 86_400)) v.AddError($"--collective-timeout must be in (0, 86400] seconds, got {s.ToString(CultureInfo.InvariantCulture)}");
        });
        cmd.Options.Add(Distributed); cmd.Options.Add(Timeout); cmd.Options.Add(Verify);
    }

    /// <summary>The collective named by --distributed; a launcher or library problem is one <see cref="ArgumentException"/>
    /// line naming the flag.</summary>
    public ICollective Open(ParseResult r)
    {
        string name = (r.GetValue(Distributed) ?? "local").Trim().ToLowerInvariant();
        var timeout = TimeSpan.FromSeconds(r.GetValue(Timeout));
        try { return Collective.Create(name == "nccl" ? "mpi" : name, timeout); }   // NCCL's ranks meet through MPI
        catch (ArgumentException e) when (e.ParamName == "name") { throw new ArgumentException($"--distributed: '{name}' is not local, mpi or nccl"); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or InvalidOperationException or CollectiveException)
        {
            throw new ArgumentException($"--distributed {name}: {CliRun.OneLine(e)}", e);
        }
    }

    /// <summary>With --distributed nccl: NCCL between the ranks of <paramref name="mpi"/> on <paramref name="backend"/>'s GPU
    /// (dispose it before <paramref name="mpi"/>); otherwise null. Problems are one line naming the flag.</summary>
    public NcclCollective? Nccl(ParseResult r, ICollective mpi, IBackend backend)
    {
        if (!string.Equals(r.GetValue(Distributed)?.Trim(), "nccl", StringComparison.OrdinalIgnoreCase)) return null;
        try { return NcclCollective.Create(mpi, backend, TimeSpan.FromSeconds(r.GetValue(Timeout))); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or ArgumentException or CollectiveException)
        {
            throw new ArgumentException($"--distributed nccl: {CliRun.OneLine(e)}", e);
        }
    }

    /// <summary>Runs <paramref name="body"/> as one rank of the job --distributed names: ranks above 0 print nothing but
    /// errors; a failure on any rank aborts the whole job (the other ranks would otherwise wait for it until the timeout).</summary>
    public int Run(ParseResult r, bool json, Func<ICollective, int> body)
    {
        ICollective? comm = null;
        var stdout = Console.Out;
        int code = CliRun.Guard(() =>
        {
            comm = Open(r);
            if (comm.Rank > 0) Console.SetOut(TextWriter.Null);
            return body(comm);
        }, json);
        if (comm is null) return code;
        if (comm.Rank > 0) Console.SetOut(stdout);
        if (code != 0 && comm.Size > 1)
        {
            Console.Error.WriteLine($"rank {comm.Rank} of {comm.Size}: stopping the job");
            comm.Abort(code);
        }
        comm.Dispose();
        return code;
    }
}
