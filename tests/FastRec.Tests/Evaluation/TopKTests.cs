// TopK.Select: hand cases, a brute-force sort on random data with ties and exclusions, no allocation, bad inputs.
using FastRec.Engine.Evaluation;
using FastRec.Kernels;
using FastRec.Tests.Data;

namespace FastRec.Tests.Evaluation;

public class TopKTests
{
    [Test]
    public void TiesRankByLowerIndex()
    {
        var idx = new int[3];
        Assert.That(TopK.Select([3f, 1f, 3f, 2f], 3, idx), Is.EqualTo(3));
        Assert.That(idx, Is.EqualTo(new[] { 0, 2, 3 }));
        Assert.That(TopK.Select([3f, 1f, 3f, 2f], 3, idx, [true, false, false, false]), Is.EqualTo(3));
        Assert.That(idx, Is.EqualTo(new[] { 2, 3, 1 }));
    }

    [Test]
    public void FewerEligibleItemsThanK()
    {
        var idx = new int[5];
        Assert.That(TopK.Select([1f, 2f, 0f], 5, idx, [false, true, false]), Is.EqualTo(2));
        Assert.That(idx[..2], Is.EqualTo(new[] { 0, 2 }));
        Assert.That(TopK.Select([1f, 2f], 0, idx), Is.EqualTo(0));
        Assert.That(TopK.Select([], 3, idx), Is.EqualTo(0));
    }

    [Test]
    public void MatchesABruteForceSortOnRandomDataWithTies()
    {
        for (ulong seed = 1; seed <= 40; seed++)
        {
            int n = 1 + (int)(Rng.Hash(seed, 1) % 300);   // lengths that are and are not multiples of 8
            int levels = 1 + (int)(Rng.Hash(seed, 2) % 12); // few distinct values: many ties
            var s = new float[n]; var ex = new bool[n];
            for (int i = 0; i < n; i++)
            {
                s[i] = (int)(Rng.Uniform(seed, (ulong)i) * levels) - levels / 2f;
                ex[i] = Rng.Uniform(seed + 9, (ulong)i) < 0.3f;
            }
            if (seed % 5 == 0) s[n / 2] = float.PositiveInfinity;
            if (seed % 7 == 0) s[0] = float.NegativeInfinity;
            foreach (int k in new[] { 1, 2, 7, 8, 50, n, n + 3 })
            {
                var got = new int[k];
                int c = TopK.Select(s, k, got);
                Assert.That(got[..c], Is.EqualTo(Brute(s, null, k)), $"seed {seed} n {n} k {k}");
                c = TopK.Select(s, k, got, ex);
                Assert.That(got[..c], Is.EqualTo(Brute(s, ex, k)), $"seed {seed} n {n} k {k} excluded");
            }
        }
    }

    private static int[] Brute(float[] s, bool[]? ex, int k)
        => Enumerable.Range(0, s.Length).Where(i => ex is null || !ex[i])
            .OrderByDescending(i => s[i]).ThenBy(i => i).Take(k).ToArray();

    [Test]
    public void SelectAllocatesNothing()
    {
        var s = new float[10_000]; var ex = new bool[10_000];
        for (int i = 0; i < s.Length; i++) { s[i] = Rng.Uniform(5, (ulong)i); ex[i] = i % 3 == 0; }
        var idx = new int[50];
        TopK.Select(s, 50, idx, ex); // warm up (JIT)
        long before = GC.GetAllocatedBytesForCurrentThread();
        TopK.Select(s, 50, idx, ex);
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.EqualTo(0));
    }

    [Test]
    public void BadInputsAreErrors()
    {
        DataAssert.Throws<ArgumentException>(() => TopK.Select([1f, float.NaN], 1, new int[1]), "scores[1] is NaN");
        DataAssert.Throws<ArgumentOutOfRangeException>(() => TopK.Select([1f], -1, new int[1]), "k must be >= 0");
        DataAssert.Throws<ArgumentException>(() => TopK.Select([1f, 2f], 2, new int[1]), "indices holds 1 slots but k is 2");
        DataAssert.Throws<ArgumentException>(() => TopK.Select([1f, 2f], 1, new int[1], [true]), "exclude has 1 elements but scores has 2");
    }
}
