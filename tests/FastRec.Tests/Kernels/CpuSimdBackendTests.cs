// CpuSimdBackend-specific guarantees: no managed allocation in steady state, erf accuracy, address-independent results.
using System.Runtime.Intrinsics;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Kernels.Reference;

namespace FastRec.Tests.Kernels;

public sealed class CpuSimdBackendTests
{
    [Test]
    public void ErfIsAccurateTo2e7Relative()
    {
        // Fitted for 1.7e-7 (≈1.5 ulp); checked on a dense grid over [-7, 7] and on tiny arguments, scalar and Vector256.
        var xs = new List<float>();
        for (int i = -70000; i <= 70000; i++) xs.Add(i * 1e-4f);
        for (float x = 1e-30f; x < 1f; x *= 1.37f) { xs.Add(x); xs.Add(-x); }
        double worstScalar = 0, worstVector = 0;
        float atScalar = 0, atVector = 0;
        Span<float> lane = stackalloc float[8];
        for (int i = 0; i < xs.Count; i += 8)
        {
            for (int k = 0; k < 8; k++) lane[k] = xs[Math.Min(i + k, xs.Count - 1)];
            Vector256<float> v = SimdMath.Erf(Vector256.Create<float>(lane));
            for (int k = 0; k < 8; k++)
            {
                double exact = RefMath.Erf(lane[k]);
                double denom = Math.Max(Math.Abs(exact), 1e-300);
                double es = Math.Abs(SimdMath.Erf(lane[k]) - exact) / denom;
                double ev = Math.Abs(v.GetElement(k) - exact) / denom;
                if (exact == 0) { es = SimdMath.Erf(lane[k]) == 0 ? 0 : 1; ev = v.GetElement(k) == 0 ? 0 : 1; }
                if (es > worstScalar) { worstScalar = es; atScalar = lane[k]; }
                if (ev > worstVector) { worstVector = ev; atVector = lane[k]; }
            }
        }
        Assert.That(worstScalar, Is.LessThanOrEqualTo(2e-7), $"scalar erf worst at x = {atScalar:R}");
        Assert.That(worstVector, Is.LessThanOrEqualTo(2e-7), $"vector erf worst at x = {atVector:R}");
    }

    [Test]
    public void GeluAndItsGradientAreAccurateEverywhere()
    {
        // GELU goes through erfc (x·Φ(x) with Φ from the tail), so it keeps its relative accuracy for x ≪ 0 too:
        // within 5e-7 relative wherever the result is a normal float; the gradient Φ + x·φ within 5e-7·(|Φ| + |x·φ|)
        // (it crosses zero near x = −0.75, where only that absolute bound is meaningful).
        double worstG = 0, worstD = 0; float atG = 0, atD = 0;
        Span<float> lane = stackalloc float[8];
        for (int i = -120000; i < 120000; i += 8)
        {
            for (int k = 0; k < 8; k++) lane[k] = (i + k) * 1e-4f + 3.1e-6f;
            Vector256<float> vg = SimdMath.Gelu(Vector256.Create<float>(lane)), vd = SimdMath.GeluGrad(Vector256.Create<float>(lane));
            for (int k = 0; k < 8; k++)
            {
                double x = lane[k];
                double cdf = 0.5 * RefMath.Erfc(-x / Math.Sqrt(2)), pdf = Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);
                double gelu = x * cdf, grad = cdf + x * pdf;
                if (Math.Abs(gelu) > 1e-37)
                {
                    double e = Math.Max(Math.Abs(vg.GetElement(k) - gelu), Math.Abs(SimdMath.Gelu(lane[k]) - gelu)) / Math.Abs(gelu);
                    if (e > worstG) { worstG = e; atG = lane[k]; }
                }
                double scale = Math.Abs(cdf) + Math.Abs(x * pdf);
                if (scale > 1e-37)
                {
                    double e = Math.Max(Math.Abs(vd.GetElement(k) - grad), Math.Abs(SimdMath.GeluGrad(lane[k]) - grad)) / scale;
                    if (e > worstD) { worstD = e; atD = lane[k]; }
                }
            }
        }
        Assert.That(worstG, Is.LessThanOrEqualTo(5e-7), $"GELU worst {worstG:E2} at x = {atG:R}");
        Assert.That(worstD, Is.LessThanOrEqualTo(5e-7), $"GELU' worst {worstD:E2} at x = {atD:R}");
        Assert.That(SimdMath.Gelu(100f), Is.EqualTo(100f));
        Assert.That(SimdMath.Gelu(-100f), Is.EqualTo(0f).Or.EqualTo(-0f));
        Assert.That(float.IsNaN(SimdMath.Gelu(float.NaN)), Is.True);
        Assert.That(float.IsNaN(SimdMath.Gelu(Vector256.Create(float.NaN)).GetElement(0)), Is.True);
    }

    [Test]
    public void ErfSaturatesAndKeepsNaN()
    {
        Assert.That(SimdMath.Erf(50f), Is.EqualTo(1f));
        Assert.That(SimdMath.Erf(-50f), Is.EqualTo(-1f));
        Assert.That(SimdMath.Erf(float.PositiveInfinity), Is.EqualTo(1f));
        Assert.That(float.IsNaN(SimdMath.Erf(float.NaN)), Is.True);
        Vector256<float> v = SimdMath.Erf(Vector256.Create(50f, -50f, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f, 4f, -4f));
        Assert.That(new[] { v[0], v[1], v[2], v[3], v[4], v[6], v[7] }, Is.EqualTo(new[] { 1f, -1f, 1f, -1f, 0f, 1f, -1f }));
    }

    [Test]
    public void ExpIsAccurateTo1e7Relative()
    {
        // Fitted for 8.2e-8 (≈1 ulp) on [-87, 88]; flushes to exactly 0 below -87.33.
        double worst = 0; float at = 0;
        Span<float> lane = stackalloc float[8];
        for (int i = -87000; i <= 87990; i += 8)
        {
            for (int k = 0; k < 8; k++) lane[k] = (i + k) * 1e-3f + 1.7e-4f;
            Vector256<float> v = SimdMath.Exp(Vector256.Create<float>(lane));
            for (int k = 0; k < 8; k++)
            {
                double exact = Math.Exp(lane[k]);
                double e = Math.Max(Math.Abs(v.GetElement(k) - exact), Math.Abs(SimdMath.Exp(lane[k]) - exact)) / exact;
                if (e > worst) { worst = e; at = lane[k]; }
            }
        }
        Assert.That(worst, Is.LessThanOrEqualTo(1.2e-7), $"worst at x = {at:R}");
        Vector256<float> edge = SimdMath.Exp(Vector256.Create(-100f, float.NegativeInfinity, 0f, 1f, float.NaN, 200f, -87f, 88f));
        Assert.That(edge[0], Is.EqualTo(0f));
        Assert.That(edge[1], Is.EqualTo(0f));
        Assert.That(edge[2], Is.EqualTo(1f));
        Assert.That(edge[3], Is.EqualTo(MathF.E).Within(1).Ulps);
        Assert.That(float.IsNaN(edge[4]), Is.True);
        Assert.That(float.IsFinite(edge[5]), Is.True);
        Assert.That(edge[6], Is.GreaterThan(0f));
    }

    [Test]
    public void TanhIsAccurateTo2e7Relative()
    {
        double worst = 0; float at = 0;
        Span<float> lane = stackalloc float[8];
        var xs = new List<float>();
        for (int i = -100000; i <= 100000; i++) xs.Add(i * 1e-4f + 3e-6f);
        for (float x = 1e-30f; x < 1f; x *= 1.37f) { xs.Add(x); xs.Add(-x); }
        for (int i = 0; i + 8 <= xs.Count; i += 8)
        {
            for (int k = 0; k < 8; k++) lane[k] = xs[i + k];
            Vector256<float> v = SimdMath.Tanh(Vector256.Create<float>(lane));
            for (int k = 0; k < 8; k++)
            {
                double exact = Math.Tanh(lane[k]);
                double e = Math.Max(Math.Abs(v.GetElement(k) - exact), Math.Abs(SimdMath.Tanh(lane[k]) - exact)) / Math.Abs(exact);
                if (e > worst) { worst = e; at = lane[k]; }
            }
        }
        Assert.That(worst, Is.LessThanOrEqualTo(2.5e-7), $"worst at x = {at:R}");
        Vector256<float> edge = SimdMath.Tanh(Vector256.Create(100f, -100f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 0f, 20f, -0.5f));
        Assert.That(new[] { edge[0], edge[1], edge[2], edge[3], edge[5], edge[6] }, Is.EqualTo(new[] { 1f, -1f, 1f, -1f, 0f, 1f }));
        Assert.That(float.IsNaN(edge[4]), Is.True);
        Assert.That(float.IsNaN(SimdMath.Tanh(float.NaN)), Is.True);
    }

    [Test]
    public void VectorKeepMaskEqualsRngKeep()
    {
        // Every decision of the Vector256 SplitMix64 stream must equal Rng.Keep, including probabilities at the 2^-24 grid
        // and counters that wrap around 2^64.
        float[] ps = [1e-7f, 0.1f, 0.5f, 0.75f, 0.999999f, 1f / 16777216f * 3f];
        (ulong seed, ulong offset, long first)[] keys = [(0, 0, 0), (42, 5, 1000), (ulong.MaxValue, ulong.MaxValue - 10, 3), (7, 1UL << 40, 999_999)];
        foreach (float p in ps)
            foreach (var (seed, offset, first) in keys)
            {
                var d = new DropoutSpec(p, seed, offset);
                var stream = new SimdRng.KeepStream(d, first);
                for (int i = 0; i < 2048; i += 8)
                {
                    Vector256<float> m = stream.Next8();
                    for (int k = 0; k < 8; k++)
                    {
                        bool keep = BitConverter.SingleToUInt32Bits(m.GetElement(k)) == uint.MaxValue;
                        Assert.That(keep, Is.EqualTo(Rng.Keep(d, first + i + k)), $"p {p}, seed {seed}, offset {offset}, element {first + i + k}");
                        Assert.That(BitConverter.SingleToUInt32Bits(m.GetElement(k)), Is.AnyOf(0u, uint.MaxValue));
                    }
                }
            }
    }

    /// <summary>Results must not depend on where a tensor lives (TensorPrimitives' aggregations align to the address;
    /// ours use a fixed order): the same data at offsets 0..7 of a buffer gives bit-identical outputs.</summary>
    [Test]
    public void ReductionsDoNotDependOnTheAddress()
    {
        using var be = new CpuSimdBackend();
        const int N = 3, C = 100, n = N * C;
        float[] data = TestUtil.Random(n, 7, -3f, 3f);
        float[]? normRef = null, lnRef = null, smRef = null, dbRef = null;
        for (int shift = 0; shift < 8; shift++)
        {
            var buf = be.Allocate<float>(n + 8);
            var x = buf.Slice(shift, n);
            be.Upload(x, data);
            var norm = be.Allocate<float>(1);
            be.GlobalNorm(norm.All, x);
            var o = be.Allocate<float>(n); var sum = be.Allocate<float>(n); var mu = be.Allocate<float>(N); var rs = be.Allocate<float>(N);
            var g = TestUtil.Upload<float>(be, Enumerable.Repeat(1f, C).ToArray()); var b0 = be.Allocate<float>(C);
            be.AddLayerNormForward(o.All, sum.All, mu.All, rs.All, x, View<float>.None, g.All, b0.All, N, C, 1e-12f);
            var sm = be.Allocate<float>(n);
            be.SoftmaxForward(sm.All, x, View<float>.None, 3, 1, 10, 1f);
            var db = be.Allocate<float>(C);
            be.LinearBackward(View<float>.None, View<float>.None, db.All, x, be.Allocate<float>(N * 4).All, be.Allocate<float>(C * 4).All, N, 4, C);
            float[] nv = TestUtil.Download(be, norm.All), lv = TestUtil.Download(be, o.All), sv = TestUtil.Download(be, sm.All), dv = TestUtil.Download(be, db.All);
            if (shift == 0) { normRef = nv; lnRef = lv; smRef = sv; dbRef = dv; continue; }
            Assert.That(nv, Is.EqualTo(normRef), $"GlobalNorm at offset {shift}");
            Assert.That(lv, Is.EqualTo(lnRef), $"LayerNorm at offset {shift}");
            Assert.That(sv, Is.EqualTo(smRef), $"Softmax at offset {shift}");
            Assert.That(dv, Is.EqualTo(dbRef), $"dBias at offset {shift}");
        }
    }

    /// <summary>Steady state allocates nothing: after a warm-up call, 10 calls of every op allocate 0 managed bytes on the
    /// calling thread (small shapes run inline; large ones split across CpuParallel's workers).</summary>
    [Test]
    public void SteadyStateAllocatesNothing([Values] bool large)
    {
        using var be = new CpuSimdBackend();
        int B = large ? 8 : 2, T = large ? 64 : 7, C = large ? 128 : 12, NH = large ? 4 : 3, N = B * T, F = large ? 512 : 20;
        View<float> R(int n, ulong seed) => TestUtil.Upload(be, TestUtil.Random(n, seed)).All;
        View<float> Z(int n) => be.Allocate<float>(n).All;
        var ids = TestUtil.Upload(be, Enumerable.Range(0, N).Select(i => i % 5).ToArray()).All;
        var types = TestUtil.Upload(be, new int[N]).All;
        var mask = TestUtil.Upload(be, Enumerable.Range(0, N).Select(i => i % T < 5 ? 1f : 0f).ToArray()).All;
        var segs = TestUtil.Upload(be, new[] { new AdamSegment(0, 100, 1f, 0.01f), new AdamSegment(100, 50, 0f, 0f) }).All;
        var drop = new DropoutSpec(0.1f, 3, 0);
        View<float> x = R(N * C, 1), y = Z(N * C), w = R(F * C, 2), bias = R(F, 3), h = Z(N * F), dh = R(N * F, 4);
        View<float> dx = Z(N * C), dw = Z(F * C), db = Z(F), sum = Z(N * C), mu = Z(N), rs = Z(N), g = R(C, 5), bt = R(C, 6);
        View<float> qkv = R(N * 3 * C, 7), perm = Z(3 * N * C), probs = Z(B * NH * T * T), ws = Z((int)Check.AttentionWorkspace(B, T, C, NH));
        View<float> dqkv = Z(N * 3 * C), wEmb = R(5 * C, 8), pEmb = R(T * C, 9), tEmb = R(2 * C, 10);
        View<float> logits = R(N, 11), targets = R(N, 12), loss = Z(1), dlog = Z(N), norm = Z(1);
        View<float> p = R(150, 13), pg = R(150, 14), m = Z(150), v = Z(150), pooled = Z(B * C), pw = R(C * C, 15), cc = Z(2 * C * C);
        Action[] ops =
        [
            () => be.Gemm(false, true, N, F, C, 1f, x, 0, w, 0, false, h, 0),
            () => be.Gemm(true, false, C, C, T, 1f, x, 0, x, 0, true, cc, 0, 2, T * C, T * C, C * C),
            () => be.LinearForward(h, x, w, bias, N, C, F),
            () => be.LinearBackward(dx, dw, db, dh, x, w, N, C, F),
            () => be.ActivationForward(Activation.Gelu, dh, h),
            () => be.ActivationBackward(Activation.Gelu, dh, dh, h),
            () => be.ActivationForward(Activation.Tanh, dh, h),
            () => be.ActivationBackward(Activation.Tanh, dh, dh, h),
            () => be.ActivationBackward(Activation.Relu, dh, dh, h),
            () => be.AddLayerNormForward(y, sum, mu, rs, x, dx, g, bt, N, C, 1e-12f),
            () => be.AddLayerNormBackward(dx, g, bt, y, sum, g, mu, rs, N, C),
            () => be.EmbeddingForward(y, ids, types, wEmb, pEmb, tEmb, B, T, C),
            () => be.EmbeddingBackward(wEmb, pEmb, tEmb, y, ids, types, B, T, C),
            () => be.SoftmaxForward(probs, probs, mask, B, NH, T, 0.5f),
            () => be.SoftmaxBackward(probs, probs, probs, B, NH, T, 0.5f),
            () => be.AttentionForward(y, perm, probs, ws, qkv, mask, B, T, C, NH, drop),
            () => be.AttentionBackward(dqkv, y, perm, probs, ws, mask, B, T, C, NH, drop),
            () => be.DropoutForward(dx, x, drop),
            () => be.DropoutBackward(dx, dx, drop),
            () => be.Copy2D(pooled, C, 0, x, T * C, 0, B, C, false),
            () => be.Copy2D(dx, T * C, 0, pooled, C, 0, B, C, true),
            () => be.PoolerForward(pooled, x, pw, g, B, T, C),
            () => be.PoolerBackward(dx, pw, g, pooled, pooled, x, pw, ws, B, T, C),
            () => be.BceForwardBackward(loss, dlog, logits, targets, targets, N, 2f, 0.5f, true),
            () => be.GlobalNorm(norm, pg),
            () => be.AdamW(p, pg, m, v, segs, norm, 1f, 1e-3f, 0.9f, 0.999f, 1e-8f, 3),
            () => be.Zero(dx),
            () => be.Copy(dx, x),
        ];
        foreach (var op in ops) op();
        for (int k = 0; k < ops.Length; k++)
        {
            // Steady state = some window of 10 calls allocates nothing: an allocation per call shows in every window, while a
            // one-time lazy allocation inside the runtime shows in one window only (7,472 bytes in the first GEMM's window
            // once in a CI run on the 2-core box; not reproduced in isolation).
            long allocated = 0;
            for (int window = 0; window < 3; window++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0; i < 10; i++) ops[k]();
                allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                if (allocated == 0) break;
            }
            Assert.That(allocated, Is.Zero, $"op #{k} allocated {allocated} bytes in each of 3 windows of 10 calls");
        }
    }

    /// <summary>Every parallelised op gives bit-identical results with 1, 2 and 3 threads (shapes large enough to split).</summary>
    [Test]
    public void ResultsDoNotDependOnTheThreadCount()
    {
        int saved = CpuParallel.Threads;
        try
        {
            float[]? first = null;
            foreach (int threads in new[] { 1, 2, 3 })
            {
                CpuParallel.Threads = threads;
                float[] got = RunManyOps();
                if (first is null) first = got;
                else
                {
                    int bad = Enumerable.Range(0, got.Length).FirstOrDefault(i => BitConverter.SingleToInt32Bits(got[i]) != BitConverter.SingleToInt32Bits(first[i]), -1);
                    Assert.That(bad, Is.EqualTo(-1), $"{threads} threads: element {bad} differs from 1 thread");
                }
            }
        }
        finally { CpuParallel.Threads = saved; }
    }

    /// <summary>Runs every op that splits work across threads and returns all outputs concatenated.</summary>
    private static float[] RunManyOps()
    {
        using var be = new CpuSimdBackend();
        const int B = 8, T = 64, C = 128, NH = 4, N = B * T, F = 512, V = 50; // N·C = 64K: LN and the scatter split too
        View<float> R(int n, ulong seed) => TestUtil.Upload(be, TestUtil.Random(n, seed)).All;
        View<float> Z(int n) => be.Allocate<float>(n).All;
        var outs = new List<View<float>>();
        View<float> O(int n) { var v = Z(n); outs.Add(v); return v; }
        View<float> OR(int n, ulong seed) { var v = R(n, seed); outs.Add(v); return v; }

        var h = R(N * F, 1); var dh = R(N * F, 2);
        foreach (Activation act in Enum.GetValues<Activation>())
        {
            be.ActivationForward(act, O(N * F), h);
            be.ActivationBackward(act, O(N * F), dh, h);
        }
        var drop = new DropoutSpec(0.1f, 9, 4);
        be.DropoutForward(O(N * F), h, drop);
        var x = R(N * C, 3); var y = R(N * C, 4); var g = R(C, 5); var bt = R(C, 6);
        var sum = O(N * C); var mu = O(N); var rs = O(N);
        be.AddLayerNormForward(O(N * C), sum, mu, rs, x, y, g, bt, N, C, 1e-12f);
        be.AddLayerNormBackward(O(N * C), OR(C, 7), OR(C, 8), y, sum, g, mu, rs, N, C);
        var mask = TestUtil.Upload(be, Enumerable.Range(0, N).Select(i => i % T < 50 ? 1f : 0f).ToArray()).All;
        var qkv = R(N * 3 * C, 9); var perm = O(3 * N * C); var probs = O(B * NH * T * T);
        var ws = Z((int)Check.AttentionWorkspace(B, T, C, NH));
        var att = O(N * C);
        be.AttentionForward(att, perm, probs, ws, qkv, mask, B, T, C, NH, drop);
        be.AttentionBackward(O(N * 3 * C), x, perm, probs, ws, mask, B, T, C, NH, drop);
        be.SoftmaxForward(O(B * NH * T * T), R(B * NH * T * T, 10), mask, B, NH, T, 0.3f);
        be.SoftmaxBackward(O(B * NH * T * T), R(B * NH * T * T, 11), probs, B, NH, T, 0.3f);
        var ids = TestUtil.Upload(be, Enumerable.Range(0, N).Select(i => (i * 7) % 5).ToArray()).All; // repeated ids
        var types = TestUtil.Upload(be, Enumerable.Range(0, N).Select(i => i % 2).ToArray()).All;
        be.EmbeddingForward(O(N * C), ids, types, R(V * C, 12), R(T * C, 13), R(2 * C, 14), B, T, C);
        be.EmbeddingBackward(OR(V * C, 15), OR(T * C, 16), OR(2 * C, 17), x, ids, types, B, T, C);
        var w = R(F * C, 18);
        be.LinearBackward(O(N * C), OR(F * C, 19), OR(F, 20), dh, x, w, N, C, F);
        var grads = R(300_001, 21);
        var norm = O(1);
        be.GlobalNorm(norm, grads);
        var segs = TestUtil.Upload(be, new[] { new AdamSegment(0, 200_000, 1f, 0.01f), new AdamSegment(200_000, 100_001, 0.5f, 0f) }).All;
        be.AdamW(OR(300_001, 22), grads, OR(300_001, 23), OR(300_001, 24), segs, norm, 1f, 1e-3f, 0.9f, 0.999f, 1e-8f, 2);
        return outs.SelectMany(v => TestUtil.Download(be, v)).ToArray();
    }

    [Test]
    public void RepeatedCallsAreBitIdentical()
    {
        using var be = new CpuSimdBackend();
        const int B = 2, T = 33, C = 16, NH = 2;
        var qkv = TestUtil.Upload(be, TestUtil.Random(B * T * 3 * C, 1, -2f, 2f)).All;
        var mask = TestUtil.Upload(be, Enumerable.Range(0, B * T).Select(i => i < 50 ? 1f : 0f).ToArray()).All;
        var drop = new DropoutSpec(0.1f, 5, 17);
        float[]? first = null;
        for (int rep = 0; rep < 2; rep++)
        {
            var o = be.Allocate<float>(B * T * C); var perm = be.Allocate<float>(3 * B * T * C); var probs = be.Allocate<float>(B * NH * T * T);
            var ws = be.Allocate<float>(Check.AttentionWorkspace(B, T, C, NH)); var dq = be.Allocate<float>(B * T * 3 * C);
            be.AttentionForward(o.All, perm.All, probs.All, ws.All, qkv, mask, B, T, C, NH, drop);
            be.AttentionBackward(dq.All, o.All, perm.All, probs.All, ws.All, mask, B, T, C, NH, drop);
            float[] got = [.. TestUtil.Download(be, o.All), .. TestUtil.Download(be, dq.All)];
            if (first is null) first = got;
            else Assert.That(got, Is.EqualTo(first));
        }
    }
}
