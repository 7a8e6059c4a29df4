// A tiny allocation-free pool of persistent worker threads running struct jobs over a static, deterministic split.
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace FastRec.Kernels.Cpu;

/// <summary>A job run for every index of a range by <see cref="CpuParallel.For{TJob}"/>.
/// <see cref="Execute"/> runs concurrently on several threads: it must only write state that belongs to its index.</summary>
public interface IParallelJob
{
    /// <summary>Does the work of one index.</summary>
    void Execute(int index);
}

/// <summary>A job run once per part of a range by <see cref="CpuParallel.ForRange{TJob}"/>: part p always covers
/// <see cref="CpuParallel.Partition"/>(count, parts, p), whichever thread runs it, so per-part partial results
/// (combined in part order) are deterministic for a given number of parts.</summary>
public interface IParallelRangeJob
{
    /// <summary>Does the work of indices [<paramref name="start"/>, <paramref name="end"/>), the part number <paramref name="part"/>.</summary>
    void Execute(int start, int end, int part);
}

/// <summary>
/// Persistent worker threads for the CPU kernels. <see cref="Threads"/> threads in all (the caller's thread plus
/// <see cref="Threads"/> − 1 workers); the default is the FASTREC_THREADS environment variable or else
/// <see cref="Environment.ProcessorCount"/>. Work is split statically into contiguous parts, one per thread; no
/// managed allocation happens per call. A call made while the pool is busy (from inside a job, or from a second
/// thread at the same time) runs its parts one after another on the calling thread, with the same split.
/// </summary>
public static unsafe class CpuParallel
{
    private static int s_threads = DefaultThreads();
    private static readonly object s_gate = new();
    private static Worker[] s_workers = [];

    // The job being run; written by the caller before the workers are released (the release is a full fence).
    private static delegate*<void*, int, int, int, void> s_invoke; // (job, count, parts, part)
    private static void* s_job;
    private static int s_count, s_parts;
    private static int s_pending;
    private static int s_busy;
    private static Exception? s_error;
    private static readonly ManualResetEventSlim s_done = new(false, SpinCount);
    private static int s_generation;                  // incremented per parallel region: the tickets handed to the workers
    private static long s_spinTicks = SpinTicksFrom(DefaultSpinMicroseconds());

    private const int SpinCount = 200;

    /// <summary>
    /// How long, in microseconds, the workers keep spinning after a parallel region before they block, and the caller spins
    /// before it blocks waiting for them (default 0: the ManualResetEventSlim's brief spin only, then block; or the
    /// FASTREC_SPIN_US environment variable). A forward at batch 1 runs some fifty short parallel regions; waking a blocked
    /// worker costs microseconds each, so a latency-critical host (the serving host, `PredictorOptions` users) may trade
    /// idle CPU for latency, as ONNX Runtime does by default (its intra-op threads spin). Batch work gains nothing from it.
    /// Process-wide, like the pool. At most 100,000 (0.1 s).
    /// </summary>
    public static int SpinMicroseconds
    {
        get => (int)(Volatile.Read(ref s_spinTicks) * 1_000_000 / System.Diagnostics.Stopwatch.Frequency);
        set
        {
            if (value < 0 || value > 100_000)
                throw new ArgumentOutOfRangeException(nameof(value), value, $"CpuParallel.SpinMicroseconds must be in [0, 100000], got {value}");
            Volatile.Write(ref s_spinTicks, SpinTicksFrom(value));
        }
    }

    private static long SpinTicksFrom(int microseconds) => (long)microseconds * System.Diagnostics.Stopwatch.Frequency / 1_000_000;

    private static int DefaultSpinMicroseconds()
    {
        string? env = Environment.GetEnvironmentVariable("FASTREC_SPIN_US");
        return env is not null && int.TryParse(env, out int us) && us >= 0 && us <= 100_000 ? us : 0;
    }

    /// <summary>Spins while (<paramref name="field"/> == <paramref name="value"/>) == <paramref name="whileEqual"/>, at most
    /// <see cref="SpinMicroseconds"/>; returns at once when the budget is 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SpinWhile(ref int field, int value, bool whileEqual)
    {
        long ticks = Volatile.Read(ref s_spinTicks);
        if (ticks <= 0) return;
        long end = System.Diagnostics.Stopwatch.GetTimestamp() + ticks;
        while ((Volatile.Read(ref field) == value) == whileEqual && System.Diagnostics.Stopwatch.GetTimestamp() < end)
            Thread.SpinWait(8);
    }

    /// <summary>Number of threads used by parallel loops (the calling thread included), at least 1.</summary>
    public static int Threads
    {
        get => Volatile.Read(ref s_threads);
        set
        {
            if (value < 1 || value > 1024)
                throw new ArgumentOutOfRangeException(nameof(value), $"CpuParallel.Threads must be in [1, 1024], got {value}");
            Volatile.Write(ref s_threads, value);
        }
    }

    /// <summary>The number of parts <see cref="ForRange{TJob}"/> will use for <paramref name="count"/> indices:
    /// min(count, Threads, maxThreads when positive).</summary>
    public static int PartsFor(int count, int maxThreads = 0)
    {
        int t = Threads;
        if (maxThreads > 0 && maxThreads < t) t = maxThreads;
        return count < t ? Math.Max(count, 0) : t;
    }

    /// <summary>The contiguous range [start, end) of part <paramref name="part"/> when <paramref name="count"/>
    /// indices are split into <paramref name="parts"/> parts (sizes differ by at most one).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (int Start, int End) Partition(int count, int parts, int part) =>
        ((int)((long)count * part / parts), (int)((long)count * (part + 1) / parts));

    /// <summary>Runs <c>job.Execute(i)</c> for every i in [0, <paramref name="count"/>), split into
    /// <see cref="PartsFor"/> contiguous parts run in parallel. The job is copied once; it is read-only while it runs.</summary>
    public static void For<TJob>(int count, ref TJob job, int maxThreads = 0)
        where TJob : struct, IParallelJob, allows ref struct
    {
        TJob local = job;
        Run(count, PartsFor(count, maxThreads), Unsafe.AsPointer(ref local), &InvokeEach<TJob>);
    }

    /// <summary>Runs <c>job.Execute(start, end, part)</c> once per part of [0, <paramref name="count"/>), with
    /// <see cref="PartsFor"/> parts run in parallel. The job is copied once; it is read-only while it runs.</summary>
    public static void ForRange<TJob>(int count, ref TJob job, int maxThreads = 0)
        where TJob : struct, IParallelRangeJob, allows ref struct
    {
        TJob local = job;
        Run(count, PartsFor(count, maxThreads), Unsafe.AsPointer(ref local), &InvokeRange<TJob>);
    }

    private static void InvokeEach<TJob>(void* job, int count, int parts, int part)
        where TJob : struct, IParallelJob, allows ref struct
    {
        ref TJob j = ref Unsafe.AsRef<TJob>(job);
        var (start, end) = Partition(count, parts, part);
        for (int i = start; i < end; i++) j.Execute(i);
    }

    private static void InvokeRange<TJob>(void* job, int count, int parts, int part)
        where TJob : struct, IParallelRangeJob, allows ref struct
    {
        var (start, end) = Partition(count, parts, part);
        if (start < end) Unsafe.AsRef<TJob>(job).Execute(start, end, part);
    }

    private static void Run(int count, int parts, void* job, delegate*<void*, int, int, int, void> invoke)
    {
        if (count <= 0) return;
        if (parts <= 1 || Interlocked.CompareExchange(ref s_busy, 1, 0) != 0)
        {
            for (int p = 0; p < parts; p++) invoke(job, count, parts, p);
            return;
        }
        try
        {
            Worker[] workers = EnsureWorkers(parts - 1);
            s_invoke = invoke; s_job = job; s_count = count; s_parts = parts; s_error = null;
            s_done.Reset();
            Volatile.Write(ref s_pending, parts - 1);
            int ticket = Interlocked.Increment(ref s_generation);   // full fence: the job's fields are written before any ticket
            for (int w = 0; w < parts - 1; w++)
            {
                Volatile.Write(ref workers[w].Ticket, ticket);            // what a spinning worker watches
                workers[w].Go.Set();                                      // what a blocked one waits on
            }
            Exception? mine = null;
            try { invoke(job, count, parts, 0); }
            catch (Exception e) { mine = e; }
            SpinWhile(ref s_pending, 0, whileEqual: false);
            s_done.Wait();
            Exception? error = mine ?? s_error;
            s_invoke = null; s_job = null; s_error = null;
            if (error is not null) ExceptionDispatchInfo.Throw(error);
        }
        finally
        {
            Volatile.Write(ref s_busy, 0);
        }
    }

    private static Worker[] EnsureWorkers(int n)
    {
        Worker[] ws = s_workers;
        if (ws.Length >= n) return ws;
        lock (s_gate)
        {
            ws = s_workers;
            if (ws.Length >= n) return ws;
            var grown = new Worker[n];
            Array.Copy(ws, grown, ws.Length);
            for (int i = ws.Length; i < n; i++) grown[i] = new Worker(i + 1);
            s_workers = grown;
            return grown;
        }
    }

    private static int DefaultThreads()
    {
        string? env = Environment.GetEnvironmentVariable("FASTREC_THREADS");
        if (env is not null && int.TryParse(env, out int t) && t >= 1 && t <= 1024) return t;
        return Math.Max(1, Environment.ProcessorCount);
    }

    private sealed class Worker
    {
        public readonly ManualResetEventSlim Go = new(false, SpinCount);
        /// <summary>The region this worker is asked to run (a generation number), written by the caller before <see cref="Go"/>.</summary>
        public int Ticket;
        private readonly int _part;

        public Worker(int part)
        {
            _part = part;
            var thread = new Thread(Loop, 1 << 20) { IsBackground = true, Name = $"FastRec worker {part}" };
            thread.Start();
        }

        private void Loop()
        {
            int seen = 0;
            while (true)
            {
                // Wait for this worker's next ticket: spin for the budget (SpinMicroseconds), then block. Go may be left set
                // by a region this worker already took while spinning; the ticket, re-read after every wake-up, decides.
                int t;
                SpinWhile(ref Ticket, seen, whileEqual: true);
                while ((t = Volatile.Read(ref Ticket)) == seen)
                {
                    Go.Wait();
                    Go.Reset();
                }
                seen = t;
                try { s_invoke(s_job, s_count, s_parts, _part); }
                catch (Exception e) { Interlocked.CompareExchange(ref s_error, e, null); }
                if (Interlocked.Decrement(ref s_pending) == 0) s_done.Set();
            }
        }
    }
}
