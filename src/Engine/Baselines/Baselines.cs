// Non-text baselines on the same split: smoothed item popularity, a user + item bias logistic model, dense logistic.
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;

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
/// As an <see cref="IItemScorer"/> every user gets the same ranking: items by p(i).
/// </summary>
public sealed class PopularityBaseline : IRankingBaseline
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

    /// <summary>Writes p(i) for every item into each user's row. (users.Length, V)</summary>
    public void ScoreItems(EvalWindow window, ReadOnlySpan<int> users, Span<float> scores)
    {
        ScorerArgs.Check(window, users, scores, _rate.Length);
        for (int b = 0; b < users.Length; b++) _rate.CopyTo(scores.Slice(b * _rate.Length, _rate.Length));
    }
}

/// <summary>
/// Logistic regression on a global bias plus a user bias and an item bias: p = σ(b₀ + b_u + b_i), fitted on the training
/// split by minimising the weighted BCE sum + (λ/2)(Σ b_u² + Σ b_i²), with alternating diagonal Newton steps (users, items,
/// global) until the largest change is below 1e-6 or <see cref="Iterations"/> passes. Unknown users or items get bias 0.
/// As an <see cref="IItemScorer"/> a user's items rank by the item bias (the row holds the full logit b₀ + b_u + b_i).
/// </summary>
public sealed class BiasBaseline : IRankingBaseline
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

    /// <summary>Writes the logit b₀ + b_u + b_i of every item into each user's row. (users.Length, V)</summary>
    public void ScoreItems(EvalWindow window, ReadOnlySpan<int> users, Span<float> scores)
    {
        int V = _bi.Length;
        ScorerArgs.Check(window, users, scores, V);
        for (int b = 0; b < users.Length; b++)
        {
            int u = users[b];
            double c = _b0 + (u < _bu.Length ? _bu[u] : 0);
            var row = scores.Slice(b * V, V);
            for (int i = 0; i < V; i++) row[i] = (float)(c + _bi[i]);
        }
    }
}

/// <summary>
/// Logistic regression on the examples' dense features (standardised with the training mean and deviation), fitted by
/// Newton's method on the weighted BCE + (λ/2)‖w‖² (the intercept unpenalised). With <see cref="Data.HistoryFeatures"/>
/// this is the "history only" reference: what the text model adds beyond user and item rates.
/// </summary>
public sealed class DenseLogisticBaseline : IBaseline
{
    private readonly double[] _w;   // (F + 1): F weights, then the intercept
    private readonly double[] _mean, _std;

    /// <inheritdoc/>
    public string Name { get; }

    /// <summary>Names of the F features the model reads, in order.</summary>
    public IReadOnlyList<string> FeatureNames { get; }

    private DenseLogisticBaseline(string name, string[] featureNames, double[] w, double[] mean, double[] std)
    { Name = name; FeatureNames = featureNames; _w = w; _mean = mean; _std = std; }

    /// <summary>Fits on <paramref name="train"/>'s dense features (at least one).</summary>
    public static DenseLogisticBaseline Fit(ExampleSet train, double lambda = 1, int iterations = 25, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (train.DenseCount == 0) throw new ArgumentException("the examples have no dense features");
        if (train.Count == 0) throw new ArgumentException("the training set is empty");
        return Fit(name ?? $"logistic on {string.Join(", ", train.DenseNames)}", train.DenseNames, train.Dense, train.Labels, train.Weights, lambda, iterations);
    }

    /// <summary>Fits on N rows of F = <paramref name="featureNames"/>.Length features: <paramref name="dense"/> (N, F),
    /// <paramref name="labels"/> (N), <paramref name="weights"/> (N, or empty for weight 1).</summary>
    internal static DenseLogisticBaseline Fit(string name, string[] featureNames, ReadOnlySpan<float> dense, ReadOnlySpan<float> labels,
        ReadOnlySpan<float> weights, double lambda = 1, int iterations = 25)
    {
        int F = featureNames.Length, N = labels.Length, P = F + 1;
        if (F == 0) throw new ArgumentException("the examples have no dense features");
        if (N == 0) throw new ArgumentException("the training set is empty");
        if (dense.Length != N * F) throw new ArgumentException($"dense: expected {N} x {F} = {N * F} values, got {dense.Length}");
        if (!weights.IsEmpty && weights.Length != N) throw new ArgumentException($"weights: expected {N} values, got {weights.Length}");
        var mean = new double[F]; var std = new double[F];
        for (int k = 0; k < N; k++) for (int f = 0; f < F; f++) mean[f] += dense[k * F + f];
        for (int f = 0; f < F; f++) mean[f] /= N;
        for (int k = 0; k < N; k++) for (int f = 0; f < F; f++) { double d = dense[k * F + f] - mean[f]; std[f] += d * d; }
        for (int f = 0; f < F; f++) { std[f] = Math.Sqrt(std[f] / N); if (std[f] < 1e-12) std[f] = 1; }
        var w = new double[P];
        var x = new double[P];
        for (int it = 0; it < iterations; it++)
        {
            var g = new double[P];
            var h = new double[P * P];
            for (int k = 0; k < N; k++)
            {
                Row(dense.Slice(k * F, F), mean, std, x);
                double z = 0;
                for (int j = 0; j < P; j++) z += w[j] * x[j];
                double p = 1 / (1 + Math.Exp(-z)), sw = weights.IsEmpty ? 1 : weights[k], r = sw * (p - labels[k]), c = sw * p * (1 - p);
                for (int a = 0; a < P; a++)
                {
                    g[a] += r * x[a];
                    for (int b = 0; b < P; b++) h[a * P + b] += c * x[a] * x[b];
                }
            }
            for (int j = 0; j < F; j++) { g[j] += lambda * w[j]; h[j * P + j] += lambda; }
            h[F * P + F] += 1e-9;
            var step = Solve(h, g, P);
            double change = 0;
            for (int j = 0; j < P; j++) { w[j] -= step[j]; change = Math.Max(change, Math.Abs(step[j])); }
            if (change < 1e-9) break;
        }
        return new DenseLogisticBaseline(name, featureNames, w, mean, std);
    }

    private static void Row(ReadOnlySpan<float> dense, double[] mean, double[] std, double[] x)
    {
        for (int f = 0; f < mean.Length; f++) x[f] = (dense[f] - mean[f]) / std[f];
        x[mean.Length] = 1;
    }

    /// <summary>Solves H·s = g (H symmetric positive definite, small) by Gaussian elimination with partial pivoting.</summary>
    private static double[] Solve(double[] h, double[] g, int n)
    {
        var a = (double[])h.Clone(); var b = (double[])g.Clone();
        for (int c = 0; c < n; c++)
        {
            int piv = c;
            for (int r = c + 1; r < n; r++) if (Math.Abs(a[r * n + c]) > Math.Abs(a[piv * n + c])) piv = r;
            if (piv != c)
            {
                for (int k = 0; k < n; k++) (a[c * n + k], a[piv * n + k]) = (a[piv * n + k], a[c * n + k]);
                (b[c], b[piv]) = (b[piv], b[c]);
            }
            double d = a[c * n + c];
            if (Math.Abs(d) < 1e-300) continue;
            for (int r = c + 1; r < n; r++)
            {
                double m = a[r * n + c] / d;
                if (m == 0) continue;
                for (int k = c; k < n; k++) a[r * n + k] -= m * a[c * n + k];
                b[r] -= m * b[c];
            }
        }
        var s = new double[n];
        for (int r = n - 1; r >= 0; r--)
        {
            double v = b[r];
            for (int k = r + 1; k < n; k++) v -= a[r * n + k] * s[k];
            s[r] = Math.Abs(a[r * n + r]) < 1e-300 ? 0 : v / a[r * n + r];
        }
        return s;
    }

    /// <summary>The fitted weights on the standardised features (F), then the intercept: logit = Σ w_f·(x_f − mean_f)/std_f + w_F.</summary>
    public ReadOnlySpan<double> Coefficients => _w;
    /// <summary>The training mean of each feature (F).</summary>
    public ReadOnlySpan<double> FeatureMean => _mean;
    /// <summary>The training standard deviation of each feature (F; 1 where a feature is constant).</summary>
    public ReadOnlySpan<double> FeatureStd => _std;
    /// <summary>The logit z = w·standardise(x) + b of one row of the F features (in <see cref="FeatureNames"/> order).</summary>
    public double Logit(ReadOnlySpan<float> dense)
    {
        if (dense.Length != _mean.Length) throw new ArgumentException($"dense: the model reads {_mean.Length} features, the row has {dense.Length}", nameof(dense));
        double z = 0;
        for (int f = 0; f < _mean.Length; f++) z += _w[f] * ((dense[f] - _mean[f]) / _std[f]);
        return z + _w[_mean.Length];   // the intercept last, as in the fit's sum
    }

    /// <inheritdoc/>
    public float[] Predict(ExampleSet set)
    {
        if (set.DenseCount != _mean.Length) throw new ArgumentException($"the '{set.Name}' examples have {set.DenseCount} dense features, the model {_mean.Length}");
        var p = new float[set.Count];
        for (int k = 0; k < p.Length; k++) p[k] = (float)(1 / (1 + Math.Exp(-Logit(set.DenseRow(k)))));
        return p;
    }
}
