// A TowerScorer with random weights and items of any size: latency benchmarks (1M items) and serving tests without training.
using FastRec.Kernels;

namespace FastRec.Engine.Representations;

public sealed partial class TowerScorer
{
    /// <summary>
    /// A scorer of the shape a <see cref="TowerModel"/> with <paramref name="shape"/> (d, H, N and whether it has the "rated"
    /// output) over <paramref name="encodingDim"/>-wide encodings would freeze, with random weights, <paramref name="items"/>
    /// random item vectors (about unit norm) and random item features (one item in eight never interacted with). Its scores
    /// mean nothing; it costs exactly what a trained scorer of that shape costs, so it stands in for one in latency
    /// benchmarks and in tests of serving code. Deterministic for a <paramref name="seed"/>.
    /// </summary>
    public static TowerScorer Random(int items, int encodingDim, TowerModelOptions? shape = null, ulong seed = 42)
    {
        var o = shape ?? new TowerModelOptions();
        o.Validate();
        if (items < 0 || (long)items * o.Dim > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(items), items, $"items must be in [0, {Array.MaxLength / o.Dim}]");
        if (encodingDim < 1 || encodingDim > 65536) throw new ArgumentOutOfRangeException(nameof(encodingDim), encodingDim, "encoding width must be in [1, 65536]");
        int d = o.Dim, D = encodingDim, H = o.Hidden, N = o.HistoryLength, O = o.Negatives > 0 ? 2 : 1, In = TowerMath.InputWidth(d);
        ulong stream = 0;
        float[] Normal(long n, float scale)
        {
            ulong s = seed ^ (0x5E41_0000UL + stream++);
            var a = new float[n];
            for (long i = 0; i < n; i++) a[i] = Rng.Normal(s, (ulong)i) * scale;
            return a;
        }
        var proj = Normal((long)d * D, 1f / MathF.Sqrt(D)); var projBias = Normal(d, 0.1f); var e = Normal(2 * d, 0.1f);
        var w1 = Normal((long)H * In, 1f / MathF.Sqrt(In)); var b1 = Normal(H, 0.1f); var w2 = Normal(O * H, 1f / MathF.Sqrt(H));
        var b2 = Normal(O, 0.1f); var ww = Normal(O * F, 0.3f); var bw = Normal(O, 0.1f);
        var vall = Normal((long)items * d, 1f / MathF.Sqrt(d));
        var feat = new float[(long)items * ItemF];
        ulong fs = seed ^ 0x5E41_FEA7UL;
        for (long i = 0; i < items; i++)
        {
            bool cold = Rng.Hash(fs, (ulong)i) % 8 == 0;
            feat[i * ItemF] = 0.2f + 0.6f * Rng.Uniform(fs + 1, (ulong)i);                            // positive rate
            for (int c = 1; c < ItemF; c++) feat[i * ItemF + c] = cold ? 0 : 4f * Rng.Uniform(fs + (ulong)c + 1, (ulong)i) / c;   // log-counts
        }
        var mean = new double[F]; var std = new double[F];
        Array.Fill(mean, 0.5); Array.Fill(std, 1.0);
        var shared = new Shared(d, D, H, O, N, proj, projBias, e, w1, b1, w2, b2, ww, bw, mean, std, prior: 0.5);
        return new TowerScorer(shared, vall, feat);
    }
}
