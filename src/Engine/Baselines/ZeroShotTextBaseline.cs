// Zero-shot text: a user's profile is the mean of the item vectors they liked; items rank by cosine to it.
using System.Numerics.Tensors;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Representations;
using FastRec.Kernels.Cpu;

namespace FastRec.Engine.Baselines;

/// <summary>
/// No training: with v̂_i the L2-normalised item vectors (a zero vector stays zero), a user's profile is the mean of v̂_j
/// over the distinct items j liked (label &gt;= 0.5) in the history, and s(i) = cosine(profile, v_i). A user without a liked
/// item (or whose liked items have no vector) scores 0 for every item (all ties); so does an item without a vector.
/// Full ranking is one GEMM (users, D)·(V, D)ᵀ per batch of users, history = <see cref="EvalWindow.HistoryBeforeTest"/>.
/// As an <see cref="IBaseline"/> s is calibrated on the training rows (<see cref="CalibratedBaseline"/>; nothing was
/// trained, so nothing is left out).
/// </summary>
public sealed class ZeroShotTextBaseline : CalibratedBaseline
{
    private readonly float[] _unit;     // (V, D) v̂
    private readonly int _dim;
    private readonly LikedHistory _liked;
    private readonly float[] _sum, _profile;   // (D) Σ v̂_j over the current liked items; the normalised profile
    private float[] _profiles = [];             // (users, D) scratch of ScoreItems

    /// <inheritdoc/>
    public override string Name { get; }
    /// <summary>The item vectors scored with.</summary>
    public ItemVectors Vectors { get; }

    private ZeroShotTextBaseline(EvalWindow window, ItemVectors vectors) : base(window)
    {
        Vectors = vectors; _dim = vectors.Dim; Name = $"zero-shot text ({vectors.Name})";
        _unit = (float[])vectors.Values.Clone();
        for (int i = 0; i < vectors.Count; i++) Normalise(_unit.AsSpan(i * _dim, _dim));
        _liked = new LikedHistory(vectors.Count);
        _sum = new float[_dim]; _profile = new float[_dim];
    }

    /// <summary>Binds <paramref name="vectors"/> (one per catalogue item of <paramref name="window"/>) and calibrates.</summary>
    public static ZeroShotTextBaseline Fit(EvalWindow window, ItemVectors vectors)
    {
        ArgumentNullException.ThrowIfNull(window); ArgumentNullException.ThrowIfNull(vectors);
        if (vectors.Count != window.ItemCount)
            throw new ArgumentException($"vectors: {vectors.Count} item vectors for a catalogue of {window.ItemCount} items", nameof(vectors));
        var m = new ZeroShotTextBaseline(window, vectors);
        m.Calibrate();
        return m;
    }

    private static void Normalise(Span<float> v)
    {
        float norm = TensorPrimitives.Norm(v);
        if (norm > 0) TensorPrimitives.Divide(v, norm, v);
    }

    /// <summary>The mean of the liked items' v̂ written normalised into <paramref name="profile"/> (zeros when there is none).</summary>
    private void Profile(IReadOnlyList<int> liked, int from, Span<float> sum, Span<float> profile)
    {
        if (from == 0) sum.Clear();
        for (int k = from; k < liked.Count; k++) TensorPrimitives.Add(sum, _unit.AsSpan(liked[k] * _dim, _dim), sum);
        sum.CopyTo(profile);
        Normalise(profile);   // the mean and the sum have the same direction
    }

    /// <inheritdoc/>
    protected internal override double RawScore(int user, int item, UserRows history, bool leaveOut)
    {
        int from = _liked.Advance(history);
        if (from < _liked.Items.Count || from == 0) Profile(_liked.Items, from, _sum, _profile);
        return TensorPrimitives.Dot(_profile, _unit.AsSpan(item * _dim, _dim));
    }

    /// <summary>Writes cosine(profile_u, v_i) for every item by one GEMM. (users.Length, V)</summary>
    public override void ScoreItems(EvalWindow window, ReadOnlySpan<int> users, Span<float> scores)
    {
        int V = Vectors.Count, D = _dim;
        ScorerArgs.Check(window, users, scores, V);
        if (users.Length == 0) return;
        if (_profiles.Length < users.Length * D) _profiles = new float[users.Length * D];
        var liked = new LikedHistory(V);
        var sum = new float[D];
        for (int b = 0; b < users.Length; b++)
        {
            liked.Advance(window.HistoryBeforeTest(users[b]));
            Profile(liked.Items, 0, sum, _profiles.AsSpan(b * D, D));
        }
        CpuGemm.Sgemm(false, true, users.Length, V, D, 1f, _profiles, D, _unit, D, false, scores, V);
    }
}
