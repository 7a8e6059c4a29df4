// Started by the tests under `mpirun -np 2`: runs MpiCollective's operations and writes what each rank ends with, or stages a fault.
using System.Globalization;
using System.Text.Json;
using FastRec.Kernels;
using FastRec.Kernels.Distributed;
using FastRec.Kernels.Gpu;
using FastRec.Kernels.Reference;

namespace FastRec.MpiProbe;

/// <summary>
/// <c>fastrec-mpi-probe collective DIR</c>: every operation on rank-dependent data; rank r writes DIR/rank{r}.json (the tests
/// hold the expected values). <c>hang SECONDS</c>: rank 1 never joins an all-reduce; rank 0 must time out, report and abort.
/// <c>die</c>: rank 1 is killed (SIGKILL) before an all-reduce; rank 0 must not wait forever.
/// <c>null-reference</c>: a NullReferenceException after MPI_Init is still an exception (MPI's signal handlers do not eat it).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length == 0) { Console.Error.WriteLine("usage: fastrec-mpi-probe collective DIR | hang SECONDS | die | null-reference"); return 2; }
        double seconds = args.Length > 1 && args[0] == "hang" ? double.Parse(args[1], CultureInfo.InvariantCulture) : 30;
        using var mpi = MpiCollective.Create(TimeSpan.FromSeconds(seconds));
        try
        {
            switch (args[0])
            {
                case "collective": Semantics(mpi, args[1]); break;
                case "hang": Hang(mpi); break;
                case "die": Die(mpi); break;
                case "null-reference": NullReference(mpi); break;
                default: Console.Error.WriteLine($"unknown mode '{args[0]}'"); return 2;
            }
            return 0;
        }
        catch (Exception e) when (e is CollectiveTimeoutException or CollectiveException)
        {
            Console.Error.WriteLine($"rank {mpi.Rank}: {e.GetType().Name}: {e.Message}");
            mpi.Abort(3);
            return 3;
        }
    }

    private static float[] Ramp(int n, Func<int, float> f) => Enumerable.Range(0, n).Select(f).ToArray();

    /// <summary>Rank r holds x[i] = (r + 1)·(i + 1) + 0.25·r before each sum; broadcasts send rank r's r·1000 + i.</summary>
    private static void Semantics(ICollective c, string dir)
    {
        int r = c.Rank;
        var result = new Dictionary<string, object> { ["rank"] = r, ["size"] = c.Size };
        foreach (int n in new[] { 1, 7, 33, 127, 1_000_003 })
        {
            var x = Ramp(n, i => (r + 1) * (i + 1) + 0.25f * r);
            c.AllReduceSum(x);
            result[$"sum{n}"] = n <= 127 ? x : new[] { x[0], x[1], x[n / 2], x[n - 1] };
        }
        var empty = Array.Empty<float>();
        c.AllReduceSum(empty);
        c.AllReduceSum(Span<float>.Empty);

        // Views: a CPU slice is reduced in place and nothing around it moves; a device view (ILGPU's CPU accelerator) is staged.
        using (var cpu = new ReferenceBackend())
        {
            var buf = cpu.Allocate<float>(40);
            cpu.Upload(buf.All, Ramp(40, i => (r + 1) * (i + 1) + 0.25f * r));
            c.AllReduceSum(buf.Slice(3, 33));
            c.AllReduceSum(buf.Slice(5, 0));
            var host = new float[40];
            cpu.Download(buf.All, host);
            result["cpuView"] = host;
            cpu.Upload(buf.All, Ramp(40, i => r * 1000 + i));
            c.Broadcast(buf.Slice(2, 9), root: 1);
            var host2 = new float[40];
            cpu.Download(buf.All, host2);
            result["cpuViewBroadcast"] = host2;
        }
        using (var gpu = IlgpuBackend.CreateCpuAccelerator())
        {
            var buf = gpu.Allocate<float>(13);
            gpu.Upload(buf.All, Ramp(13, i => (r + 1) * (i + 1) + 0.25f * r));
            c.AllReduceSum(buf.All);
            var host = new float[13];
            gpu.Download(buf.All, host);
            result["deviceView"] = host;
        }

        var b = Ramp(33, i => r * 1000 + i);
        c.Broadcast(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.AsSpan()), root: 1);
        result["broadcast33"] = b;
        var bytes = new byte[] { (byte)(10 + r), (byte)(20 + r), (byte)(30 + r) };
        c.Broadcast(bytes, root: 0);
        result["broadcastBytes"] = bytes.Select(v => (int)v).ToArray();
        c.Broadcast(Span<byte>.Empty, root: 0);
        c.Barrier();
        try { c.Broadcast(bytes, root: c.Size); result["badRoot"] = "accepted"; }
        catch (ArgumentOutOfRangeException e) { result["badRoot"] = e.Message; }
        try { c.AllReduceSum(View<float>.None); result["absentView"] = "accepted"; }
        catch (ArgumentException e) { result["absentView"] = e.Message; }
        c.Barrier();
        File.WriteAllText(Path.Combine(dir, $"rank{r}.json"), JsonSerializer.Serialize(result));
    }

    private static void Hang(ICollective c)
    {
        if (c.Rank == 1) { Thread.Sleep(TimeSpan.FromMinutes(10)); return; }
        var x = new float[5];
        c.AllReduceSum(x);
    }

    private static void Die(ICollective c)
    {
        c.Barrier();
        if (c.Rank == 1) System.Diagnostics.Process.GetCurrentProcess().Kill();
        var x = new float[5];
        c.AllReduceSum(x);
        c.AllReduceSum(x);
    }

    private static void NullReference(ICollective c)
    {
        string? s = c.Rank >= 0 ? null : "x";
        try { Console.WriteLine(s!.Length); }
        catch (NullReferenceException) { Console.WriteLine($"rank {c.Rank}: NullReferenceException caught"); }
        c.Barrier();
    }
}
