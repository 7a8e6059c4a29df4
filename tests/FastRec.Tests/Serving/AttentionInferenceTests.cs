// CpuSimdBackend.AttentionInference (serving attention) against the Reference backend's AttentionForward; bad inputs.
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Kernels.Reference;
using FastRec.Tests.Kernels;

namespace FastRec.Tests.Serving;

public class AttentionInferenceTests
{
    private static float[] ReferenceOutput(float[] qkv, float[]? mask, int B, int T, int C, int NH)
    {
        using var r = new ReferenceBackend();
        using var x = TestUtil.Upload(r, qkv);
        using var m = mask is null ? null : TestUtil.Upload(r, mask);
        using var o = TestUtil.Poisoned(r, B * T * C);
        using var perm = r.Allocate<float>(3 * B * T * C);
        using var probs = r.Allocate<float>(B * NH * T * T);
        using var ws = r.Allocate<float>(Check.AttentionWorkspace(B, T, C, NH));
        r.AttentionForward(o.All, perm.All, probs.All, ws.All, x.All, m?.All ?? View<float>.None, B, T, C, NH, DropoutSpec.Off);
        return TestUtil.Download(r, o.All);
    }

    private static float[] PaddingMask(int B, int T)
    {
        var m = new float[B * T];
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) m[b * T + t] = t < T - b % 3 ? 1f : 0f;
        return m;
    }

    private static readonly (int B, int T, int C, int NH)[] Shapes =
        [(1, 1, 8, 1), (2, 7, 12, 3), (3, 33, 64, 2), (2, 40, 96, 3), (1, 9, 20, 5), (1, 20, 128, 2), (2, 9, 36, 3)];

    [Test]
    public void AllOnesMaskGivesTheBitsOfNoMask()
    {
        const int B = 2, T = 37, C = 64, NH = 2;
        var qkv = TestUtil.Random(B * T * 3 * C, 72, -2f, 2f);
        var none = new float[B * T * C]; var ones = new float[B * T * C];
        CpuSimdBackend.AttentionInference(qkv, default, none, B, T, C, NH, T);
        CpuSimdBackend.AttentionInference(qkv, Enumerable.Repeat(1f, B * T).ToArray(), ones, B, T, C, NH, T);
        Assert.That(ones, Is.EqualTo(none));
    }

    [Test]
    public void EveryRowMatchesTheReference([Range(0, 6)] int shape, [Values] bool masked, [Values(1, 2)] int threads)
    {
        var (B, T, C, NH) = Shapes[shape];
        var qkv = TestUtil.Random(B * T * 3 * C, 70, -2f, 2f);
        var mask = masked ? PaddingMask(B, T) : null;
        var expected = ReferenceOutput(qkv, mask, B, T, C, NH);
        var o = Enumerable.Repeat(float.NaN, B * T * C).ToArray();
        CpuSimdBackend.AttentionInference(qkv, mask, o, B, T, C, NH, T, threads);
        TestUtil.AssertClose(o, expected, 2e-6f * T, 1e-5f, $"attention B={B} T={T} C={C} NH={NH}");
    }

    [Test]
    public void OnlyTheFirstRowsWhenAsked([Values(1, 3)] int rows)
    {
        const int B = 3, T = 11, C = 32, NH = 4;
        var qkv = TestUtil.Random(B * T * 3 * C, 71, -2f, 2f);
        var mask = PaddingMask(B, T);
        var full = new float[B * T * C];
        CpuSimdBackend.AttentionInference(qkv, mask, full, B, T, C, NH, T);
        var part = new float[B * rows * C];
        CpuSimdBackend.AttentionInference(qkv, mask, part, B, T, C, NH, rows);
        for (int b = 0; b < B; b++)
            Assert.That(part.AsSpan(b * rows * C, rows * C).ToArray(), Is.EqualTo(full.AsSpan(b * T * C, rows * C).ToArray()),
                $"sequence {b}: the first {rows} rows, bit for bit");
    }

    [Test]
    public void BadInputsNameTheArgument()
    {
        Assert.That(() => CpuSimdBackend.AttentionInference(new float[3 * 2 * 8 - 1], default, new float[16], 1, 2, 8, 2, 2),
            Throws.TypeOf<ShapeException>().With.Message.Contains("qkv"));
        Assert.That(() => CpuSimdBackend.AttentionInference(new float[48], new float[3], new float[16], 1, 2, 8, 2, 2),
            Throws.TypeOf<ShapeException>().With.Message.Contains("mask"));
        Assert.That(() => CpuSimdBackend.AttentionInference(new float[48], default, new float[15], 1, 2, 8, 2, 2),
            Throws.TypeOf<ShapeException>().With.Message.Contains("output"));
        Assert.That(() => CpuSimdBackend.AttentionInference(new float[48], default, new float[24], 1, 2, 8, 2, 3),
            Throws.TypeOf<ShapeException>().With.Message.Contains("queryRows"));
        Assert.That(() => CpuSimdBackend.AttentionInference(new float[48], default, new float[16], 1, 2, 8, 3, 2),
            Throws.TypeOf<ShapeException>().With.Message.Contains("NH"));
    }
}
