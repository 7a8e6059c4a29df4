// CpuParallel: every index once, the static split, nesting, exceptions, the thread-count knob, no allocation.
using FastRec.Kernels.Cpu;

namespace FastRec.Tests.Kernels;

[NonParallelizable]
public class CpuParallelTests
{
    private int _savedThreads;

    [SetUp]
    public void SaveThreads() => _savedThreads = CpuParallel.Threads;

    [TearDown]
    public void RestoreThreads()
    {
        CpuParallel.Threads = _savedThreads;
        CpuParallel.SpinMicroseconds = 0;
    }

    private unsafe struct CountJob : IParallelJob
    {
        public int* Hits;
        public int* ThreadIds;
        public readonly void Execute(int index)
        {
            Interlocked.Increment(ref Hits[index]);
            ThreadIds[index] = Environment.CurrentManagedThreadId;
        }
    }

    [TestCase(1, 1)]
    [TestCase(2, 1)]
    [TestCase(2, 1000)]
    [TestCase(3, 7)]
    [TestCase(4, 2)]
    public unsafe void ForRunsEveryIndexExactlyOnce(int threads, int count)
    {
        CpuParallel.Threads = threads;
        var hits = new int[count];
        var ids = new int[count];
        fixed (int* h = hits, t = ids)
        {
            var job = new CountJob { Hits = h, ThreadIds = t };
            CpuParallel.For(count, ref job);
        }
        Assert.That(hits, Is.All.EqualTo(1));
        if (threads >= 2 && count >= 2)
            Assert.That(ids.Distinct().Count(), Is.GreaterThan(1), "more than one thread did the work");
    }

    [TestCase(0)]
    [TestCase(2000)]
    public unsafe void SpinningWorkersRunEveryRegionOnceWhateverItsPartCount(int spinMicroseconds)
    {
        // Workers that spin between regions must run only the regions they are handed: four threads (more than this box's
        // cores), regions of 1..4 parts one after another, so a spinning worker sees regions it is not part of.
        CpuParallel.Threads = 4;
        CpuParallel.SpinMicroseconds = spinMicroseconds;
        Assert.That(CpuParallel.SpinMicroseconds, Is.EqualTo(spinMicroseconds).Within(1));
        var hits = new int[7];
        var ids = new int[7];
        fixed (int* h = hits, t = ids)
            for (int round = 0; round < 2000; round++)
            {
                int count = 1 + round % 7;
                var job = new CountJob { Hits = h, ThreadIds = t };
                CpuParallel.For(count, ref job, maxThreads: 1 + round % 4);
                for (int i = 0; i < 7; i++)
                {
                    Assert.That(hits[i], Is.EqualTo(i < count ? 1 : 0), $"round {round}: index {i} of {count}");
                    hits[i] = 0;
                }
            }
    }

    [Test]
    public void SpinMicrosecondsRefusesOutOfRangeValues()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CpuParallel.SpinMicroseconds = -1)!;
        Assert.That(e.Message, Does.Contain("SpinMicroseconds").And.Contain("-1"));
        Assert.Throws<ArgumentOutOfRangeException>(() => CpuParallel.SpinMicroseconds = 100_001);
    }

    private unsafe struct RangeJob : IParallelRangeJob
    {
        public int* Starts, Ends;
        public readonly void Execute(int start, int end, int part) { Starts[part] = start; Ends[part] = end; }
    }

    [Test]
    public unsafe void ForRangeUsesTheStaticSplit()
    {
        CpuParallel.Threads = 3;
        Assert.That(CpuParallel.PartsFor(10), Is.EqualTo(3));
        Assert.That(CpuParallel.PartsFor(10, maxThreads: 2), Is.EqualTo(2));
        Assert.That(CpuParallel.PartsFor(2), Is.EqualTo(2));
        int[] starts = [-1, -1, -1], ends = [-1, -1, -1];
        fixed (int* s = starts, e = ends)
        {
            var job = new RangeJob { Starts = s, Ends = e };
            CpuParallel.ForRange(10, ref job);
        }
        Assert.That(starts, Is.EqualTo(new[] { 0, 3, 6 }));
        Assert.That(ends, Is.EqualTo(new[] { 3, 6, 10 }));
        for (int p = 0; p < 3; p++) Assert.That(CpuParallel.Partition(10, 3, p), Is.EqualTo((starts[p], ends[p])));
    }

    private unsafe struct NestedJob : IParallelJob
    {
        public int* Hits;
        public readonly void Execute(int index)
        {
            var inner = new CountJob { Hits = Hits + index * 5, ThreadIds = Hits + 100 };
            CpuParallel.For(5, ref inner); // the pool is busy: runs on this thread, same result
        }
    }

    [Test]
    public unsafe void NestedCallsRunInlineAndComplete()
    {
        CpuParallel.Threads = 2;
        var hits = new int[200];
        fixed (int* h = hits)
        {
            var job = new NestedJob { Hits = h };
            CpuParallel.For(4, ref job);
        }
        Assert.That(hits.AsSpan(0, 20).ToArray(), Is.All.EqualTo(1));
    }

    private struct ThrowingJob : IParallelJob
    {
        public readonly void Execute(int index)
        {
            if (index == 7) throw new InvalidOperationException("job failed at index 7");
        }
    }

    [Test]
    public void AnExceptionInAWorkerReachesTheCallerAndThePoolKeepsWorking()
    {
        CpuParallel.Threads = 2;
        var job = new ThrowingJob();
        var e = Assert.Throws<InvalidOperationException>(() => CpuParallel.For(10, ref job)); // index 7 is in part 1 (a worker)
        Assert.That(e!.Message, Does.Contain("index 7"));
        ForRunsEveryIndexExactlyOnce(2, 100);
    }

    [Test]
    public void ThreadsRefusesNonPositiveCounts()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CpuParallel.Threads = 0);
        Assert.That(e!.Message, Does.Contain("CpuParallel.Threads").And.Contain("got 0"));
    }

    [Test]
    public unsafe void NoManagedAllocationAfterWarmUp()
    {
        CpuParallel.Threads = 2;
        var hits = new int[64];
        var ids = new int[64];
        fixed (int* h = hits, t = ids)
        {
            var job = new CountJob { Hits = h, ThreadIds = t };
            CpuParallel.For(64, ref job);
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 20; i++) CpuParallel.For(64, ref job);
            Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
        }
        Assert.That(hits, Is.All.EqualTo(21));
    }
}
