// TeacherCache: memory budget, spill file round trip, refusal with a notice, bad ids.
using FastRec.Engine.Distillation;

namespace FastRec.Tests.Distillation;

public class TeacherCacheTests
{
    private static float[] Rec(int n, float v) => Enumerable.Range(0, n).Select(i => v + i).ToArray();

    [Test]
    public void RecordsRoundTripInMemoryUntilTheBudget()
    {
        var log = new List<string>();
        using var c = new TeacherCache(4, budgetBytes: 80, log: log.Add);   // 20 floats
        Assert.That(c.Store(0, Rec(10, 1)), Is.True);
        Assert.That(c.Store(1, Rec(10, 2)), Is.True);
        Assert.That(c.Store(2, Rec(1, 3)), Is.False, "over budget without a spill directory: refused");
        Assert.That((c.InMemory, c.Refused, c.BytesInMemory), Is.EqualTo((2, 1, 80L)));
        Assert.That(c.Contains(1) && !c.Contains(2), Is.True);
        var dst = new float[10];
        c.Read(1, dst);
        Assert.That(dst, Is.EqualTo(Rec(10, 2)));
        Assert.That(log, Has.Count.EqualTo(1).And.Some.Contains("80 B").Or.Some.Contains("MiB"));
        c.Store(3, Rec(2, 0));
        Assert.That(log, Has.Count.EqualTo(1), "the refusal is announced once");
        Assert.That(c.Describe(), Does.Contain("2 refused"));
    }

    [Test]
    public void BeyondTheBudgetRecordsSpillToAFileAndReadBack()
    {
        string dir = Path.Combine(Path.GetTempPath(), "fastrec-cache-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var log = new List<string>();
            string? path;
            using (var c = new TeacherCache(3, budgetBytes: 40, dir, log.Add))
            {
                c.Store(0, Rec(10, 1));
                c.Store(1, Rec(7, 5));
                c.Store(2, Rec(3, 9));
                Assert.That((c.InMemory, c.Spilled, c.BytesSpilled), Is.EqualTo((1, 2, 40L)));
                path = c.SpillPath;
                Assert.That(File.Exists(path), Is.True);
                Assert.That(log.Single(), Does.Contain("spill").And.Contain(path!));
                var a = new float[7]; c.Read(1, a);
                var b = new float[3]; c.Read(2, b);
                Assert.That(a, Is.EqualTo(Rec(7, 5)));
                Assert.That(b, Is.EqualTo(Rec(3, 9)));
                Assert.That(c.Hits, Is.EqualTo(2));
            }
            Assert.That(File.Exists(path), Is.False, "deleted on dispose");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void BadArgumentsNameTheProblem()
    {
        using var c = new TeacherCache(2, 100);
        Assert.That(() => c.Contains(2), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("example id 2"));
        Assert.That(() => c.Length(0), Throws.TypeOf<KeyNotFoundException>().With.Message.Contains("example 0"));
        c.Store(0, Rec(3, 0));
        Assert.That(() => c.Read(0, new float[2]), Throws.ArgumentException.With.Message.Contains("3 floats"));
        Assert.That(() => new TeacherCache(1, -1), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("budget"));
        Assert.That(() => new TeacherCache(1, 1, "/no/such/dir/fastrec"), Throws.TypeOf<DirectoryNotFoundException>().With.Message.Contains("/no/such/dir"));
    }
}
