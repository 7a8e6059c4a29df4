// Serving checks of a trained model: batch-1 request latency of two predictors, fp32 against int16 precision.
using System.Diagnostics;
using FastRec.Engine.Data;
using FastRec.Engine.Metrics;
using FastRec.Engine.Training;

namespace FastRec.Engine.Serving;

/// <summary>One model served in fp32 and in <see cref="ServingPrecision.Int16"/> on the same <paramref name="Examples"/> test
/// examples, one request each (the two predictors alternating).</summary>
/// <param name="Name">Model name.</param>
/// <param name="Examples">Test examples scored.</param>
/// <param name="AucFloat32">AUC of the fp32 Predictor's scores (NaN when the examples hold one class only).</param>
/// <param name="AucInt16">AUC of the int16 Predictor's scores.</param>
/// <param name="MaxAbsDiff">max |p_int16 − p_fp32|.</param>
/// <param name="MeanAbsDiff">mean |p_int16 − p_fp32|.</param>
/// <param name="P50Float32Ms">Median request latency, fp32.</param>
/// <param name="P50Int16Ms">Median request latency, int16.</param>
public sealed record PrecisionCheck(string Name, int Examples, double AucFloat32, double AucInt16, double MaxAbsDiff, double MeanAbsDiff,
                                    double P50Float32Ms, double P50Int16Ms);

/// <summary>Batch-1 serving measurements through <see cref="Predictor"/>s: latency (<see cref="Latency"/>) and the effect of
/// <see cref="ServingPrecision.Int16"/> (<see cref="CheckPrecision"/>); used by the distillation and co-training reports.</summary>
public static class ServingChecks
{
    /// <summary>
    /// Batch-1 latency (p50, p99 in ms) of <see cref="Predictor"/>s on <paramref name="a"/> and <paramref name="b"/>: one
    /// request per test example (cycling over the first 64), the two models alternating, after 10 warm-up requests each.
    /// </summary>
    public static (double P50A, double P99A, double P50B, double P99B) Latency(Recommender a, Recommender b, ExampleSet test, int requests)
    {
        ArgumentNullException.ThrowIfNull(a); ArgumentNullException.ThrowIfNull(b); ArgumentNullException.ThrowIfNull(test);
        var encoder = a.EncoderFor(test.Catalog);
        var sample = Experiment.First(test, Math.Min(64, test.Count));
        var enc = encoder.Encode(sample);
        using var pa = new Predictor(a.Model, ServingOptions(a, encoder));
        using var pb = new Predictor(b.Model, ServingOptions(b, encoder));
        var (ta, tb, _, _) = Alternate(sample, enc, pa, pb, requests);
        return (Pct(ta, 0.5), Pct(ta, 0.99), Pct(tb, 0.5), Pct(tb, 0.99));
    }

    /// <summary>
    /// Scores the first <paramref name="examples"/> test examples one request at a time through an fp32 and an int16
    /// <see cref="Predictor"/> of <paramref name="r"/> (alternating, after 10 warm-up requests each): AUC of each, the score
    /// differences, and the median latency of each.
    /// </summary>
    public static PrecisionCheck CheckPrecision(Recommender r, string name, ExampleSet test, int examples)
    {
        ArgumentNullException.ThrowIfNull(r); ArgumentNullException.ThrowIfNull(test);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(examples);
        var encoder = r.EncoderFor(test.Catalog);
        int n = Math.Min(examples, test.Count);
        var sample = Experiment.First(test, n);
        var enc = encoder.Encode(sample);
        var opts = ServingOptions(r, encoder);
        using var f32 = new Predictor(r.Model, opts);
        using var i16 = new Predictor(r.Model, opts with { Precision = ServingPrecision.Int16 });
        var (tf, tq, pf, pq) = Alternate(sample, enc, f32, i16, n);
        float[] labels = sample.Labels.ToArray();
        bool both = labels.Any(y => y > 0.5f) && labels.Any(y => y < 0.5f);
        double maxDiff = 0, sumDiff = 0;
        for (int i = 0; i < n; i++) { double d = Math.Abs((double)pq[i] - pf[i]); maxDiff = Math.Max(maxDiff, d); sumDiff += d; }
        return new PrecisionCheck(name, n, both ? RocAuc.Compute(labels, pf) : double.NaN, both ? RocAuc.Compute(labels, pq) : double.NaN,
                                  maxDiff, sumDiff / n, Pct(tf, 0.5), Pct(tq, 0.5));
    }

    /// <summary>Batch-1 Predictor options for <paramref name="r"/>: its text length, the tokenizer's special ids, its scaler.</summary>
    private static PredictorOptions ServingOptions(Recommender r, ExampleEncoder encoder) => new()
    {
        MaxLength = r.Text.MaxLength, MaxBatch = 1, ClsId = encoder.Tokenizer.ClsId, SepId = encoder.Tokenizer.SepId,
        DenseMean = r.Scaler.Names.Length > 0 ? r.Scaler.Mean : null, DenseStd = r.Scaler.Names.Length > 0 ? r.Scaler.Std : null,
    };

    /// <summary>
    /// One (context, candidate) request per round on example r mod n of <paramref name="sample"/>, through <paramref name="pa"/>
    /// and <paramref name="pb"/> in alternating order; 10 warm-up rounds, then <paramref name="rounds"/> timed ones. Returns each
    /// predictor's request times and its score of every example (from the timed rounds).
    /// </summary>
    private static (List<double> TimesA, List<double> TimesB, float[] ScoresA, float[] ScoresB) Alternate(ExampleSet sample,
        EncodedExamples enc, Predictor pa, Predictor pb, int rounds)
    {
        int n = sample.Count;
        var ta = new List<double>(); var tb = new List<double>();
        var sa = new float[n]; var sb = new float[n];
        var sw = new Stopwatch();
        for (int r = 0; r < 10 + rounds; r++)
        {
            int i = r % n;
            var row = enc.Row(i);
            int ts = enc.TypeStart[i];
            var ctx = row[1..(ts - 1)];
            var cand = row[ts..^1];
            var dense = sample.DenseRow(i);
            for (int k = 0; k < 2; k++)
            {
                bool first = (k + r) % 2 == 0;
                sw.Restart();
                float p = (first ? pa : pb).Score(ctx, cand, dense);
                sw.Stop();
                if (r < 10) continue;
                (first ? sa : sb)[i] = p;
                (first ? ta : tb).Add(sw.Elapsed.TotalMilliseconds);
            }
        }
        return (ta, tb, sa, sb);
    }

    private static double Pct(List<double> xs, double q)
    {
        if (xs.Count == 0) return double.NaN;
        var s = xs.Order().ToArray();
        double pos = q * (s.Length - 1);
        int lo = (int)pos, hi = Math.Min(lo + 1, s.Length - 1);
        return s[lo] + (s[hi] - s[lo]) * (pos - lo);
    }
}
