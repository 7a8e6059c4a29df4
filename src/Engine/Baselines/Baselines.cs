// Non-text baselines on the same split: smoothed item popularity and a user + item bias logistic model.
using FastRec.Engine.Data;

namespace FastRec.Engine.Baselines;

/// <summary>A model that scores examples with a probability, fitted on a training split.</summary>
public interface IBaseline
{
    /// <summary>Short name for reports.</summary>
    string Name { get; }
    /// <summary>P(label = 1) of every example of <paramref name="set"/> (which must share the training set's catalog and users).</summary>
    float[] Predict(ExampleSet set);
}

/// <summary>
/// Global item popularity as a smoothed positive rate: p(i) = (Σ w·y over i's training examples + α·p̄) / (Σ w + α),
/// with p̄ the weighted positive rate of the whole training set (an item never seen in training gets p̄).
/// </summary>
public sealed class PopularityBaseline : IBaseline
{
    private readonly float[] _rate;
    private readonly float _prior;

    /// <inheritdoc/>
    public string Name => "popularity";
    /// <summary>α, the pseudo-count pulling rare items to the global rate.</summary>
    public double Smoothing { get; }
    /// <summary>p̄, the training set's positive rate.</summary>
    public double Prior => _prior;

    private PopularityBaseline(float[] rate, float prior, double smoothing) { _rate = rate; _prior = prior; Smoothing = smoothing; }

    /// <summary>Fits on <paramref name="train"/> (labels may be soft; example weights count).</summary>
    public static PopularityBaseline Fit(ExampleSet train, double smoothing = 10)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (train.Count == 0) throw new ArgumentException("the training set is empty");
        if (!(smoothing > 0 && double.IsFinite(smoothing))) throw new ArgumentOutOfRangeException(nameof(smoothing), smoothing, $"smoothing must be finite and > 0, got {smoothing}");
        int V = train.Catalog.Count;
        var pos = new double[V]; var n = new double[V];
        double allPos = 0, all = 0;
        for (int k = 0; k < train.Count; k++)
        {
            double w = train.Weights[k], y = train.Labels[k];
            pos[train.Items[k]] += w * y; n[train.Items[k]] += w;
            allPos += w * y; all += w;
        }
        if (!(all > 0)) throw new ArgumentException("the training examples' weights sum to 0");
        double prior = allPos / all;
        var rate = new float[V];
        for (int i = 0; i < V; i++) rate[i] = (float)((pos[i] + smoothing * prior) / (n[i] + smoothing));
        return new PopularityBaseline(rate, (float)prior, smoothing);
    }

    /// <inheritdoc/>
    public float[] Predict(ExampleSet set)
    {
        var p = new float[set.Count];
        for (int k = 0; k < p.Length; k++) { int i = set.Items[k]; p[k] = i < _rate.Length ? _rate[i] : _prior; }
        return p;
    }
}

/// <summary>
/// Logistic regression on a global bias plus a user bias and an item bias: p = σ(b₀ + b_u + b_i), fitted on the training
/// split by minimising the weighted BCE sum + (λ/2)(Σ b_u² + Σ b_i²), with alternating diagonal Newton steps (users, items,
/// global) until the largest change is below 1e-6 or <see cref="Iterations"/> passes. Unknown users or items get bias 0.
/// </summary>
public sealed class BiasBaseline : IBaseline
{
    private readonly double _b0;
    private readonly double[] _bu, _bi;

    /// <inheritdoc/>
    public string Name => "user+item bias";
    /// <summary>λ, the L2 penalty on each bias (a Gaussian prior of variance 1/λ).</summary>
    public double Lambda { get; }
    /// <summary>Passes made.</summary>
    public int Iterations { get; }
    /// <summary>The global bias b₀.</summary>
    public double GlobalBias => _b0;

    private BiasBaseline(double b0, double[] bu, double[] bi, double lambda, int iterations) { _b0 = b0; _bu = bu; _bi = bi; Lambda = lambda; Iterations = iterations; }

    /// <summary>Fits on <paramref name="train"/>.</summary>
    public static BiasBaseline Fit(ExampleSet train, double lambda = 2, int maxIterations = 100)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (train.Count == 0) throw new ArgumentException("the training set is empty");
        if (!(lambda > 0 && double.IsFinite(lambda))) throw new ArgumentOutOfRangeException(nameof(lambda), lambda, $"lambda must be finite and > 0, got {lambda}");
        if (maxIterations < 1) throw new ArgumentOutOfRangeException(nameof(maxIterations), maxIterations, $"iterations must be >= 1, got {maxIterations}");
        int U = train.UserIds.Length, V = train.Catalog.Count, N = train.Count;
        var bu = new double[U]; var bi = new double[V];
        var g = new double[Math.Max(U, V)]; var h = new double[Math.Max(U, V)];
        double sw = 0, swy = 0;
        for (int k = 0; k < N; k++) { sw += train.Weights[k]; swy += train.Weights[k] * train.Labels[k]; }
        if (!(sw > 0)) throw new ArgumentException("the training examples' weights sum to 0");
        double prior = Math.Clamp(swy / sw, 1e-6, 1 - 1e-6);
        double b0 = Math.Log(prior / (1 - prior));
        int it = 0;
        for (; it < maxIterations; it++)
        {
            double change = 0;
            change = Math.Max(change, Pass(train, b0, bu, bi, g, h, lambda, users: true));
            change = Math.Max(change, Pass(train, b0, bu, bi, g, h, lambda, users: false));
            // Global bias (unpenalised).
            double gg = 0, hh = 0;
            for (int k = 0; k < N; k++)
            {
                double p = Sigmoid(b0 + bu[train.Users[k]] + bi[train.Items[k]]), w = train.Weights[k];
                gg += w * (p - train.Labels[k]); hh += w * p * (1 - p);
            }
            double d = gg / Math.Max(hh, 1e-12);
            b0 -= d;
            change = Math.Max(change, Math.Abs(d));
            if (change < 1e-6) { it++; break; }
        }
        return new BiasBaseline(b0, bu, bi, lambda, it);
    }

    private static double Pass(ExampleSet train, double b0, double[] bu, double[] bi, double[] g, double[] h, double lambda, bool users)
    {
        var b = users ? bu : bi;
        Array.Clear(g, 0, b.Length); Array.Clear(h, 0, b.Length);
        for (int k = 0; k < train.Count; k++)
        {
            int j = users ? train.Users[k] : train.Items[k];
            double p = Sigmoid(b0 + bu[train.Users[k]] + bi[train.Items[k]]), w = train.Weights[k];
            g[j] += w * (p - train.Labels[k]); h[j] += w * p * (1 - p);
        }
        double change = 0;
        for (int j = 0; j < b.Length; j++)
        {
            double d = (g[j] + lambda * b[j]) / (h[j] + lambda);
            b[j] -= d;
            change = Math.Max(change, Math.Abs(d));
        }
        return change;
    }

    private static double Sigmoid(double z) => 1.0 / (1.0 + Math.Exp(-z));

    /// <inheritdoc/>
    public float[] Predict(ExampleSet set)
    {
        var p = new float[set.Count];
        for (int k = 0; k < p.Length; k++)
        {
            int u = set.Users[k], i = set.Items[k];
            p[k] = (float)Sigmoid(_b0 + (u < _bu.Length ? _bu[u] : 0) + (i < _bi.Length ? _bi[i] : 0));
        }
        return p;
    }
}
