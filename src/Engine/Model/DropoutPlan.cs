// Dropout specs for every dropout site of the model, a pure function of (dropout seed, step, site).
using FastRec.Kernels;

namespace FastRec.Engine.Model;

/// <summary>
/// Hands out the <see cref="DropoutSpec"/> of each dropout site for one forward/backward. The RNG seed is
/// <c>Rng.Hash(dropoutSeed, step)</c> and each site owns the counter range [site·2⁴⁰, (site+1)·2⁴⁰), so masks
/// never overlap and a whole training run is a pure function of (seed, step).
/// Sites: 0 embeddings; encoder layer l: 1 + 3l attention probabilities, 2 + 3l attention output, 3 + 3l
/// feed-forward output; head hidden layer j: 1 + 3L + j.
/// </summary>
internal readonly struct DropoutPlan
{
    private readonly bool _on;
    private readonly ulong _seed;
    private readonly int _numLayers;

    /// <summary>Evaluation: every site off.</summary>
    public static DropoutPlan Eval => default;

    public DropoutPlan(ulong dropoutSeed, int step, int numLayers)
    {
        _on = true;
        _seed = Rng.Hash(dropoutSeed, unchecked((ulong)(long)step));
        _numLayers = numLayers;
    }

    private DropoutSpec Site(int site, double p)
        => _on && p > 0 ? new DropoutSpec((float)p, _seed, (ulong)site << 40) : DropoutSpec.Off;

    public DropoutSpec Embeddings(double p) => Site(0, p);
    public DropoutSpec AttentionProbs(int layer, double p) => Site(1 + 3 * layer, p);
    public DropoutSpec AttentionOutput(int layer, double p) => Site(2 + 3 * layer, p);
    public DropoutSpec FeedForwardOutput(int layer, double p) => Site(3 + 3 * layer, p);
    public DropoutSpec Head(int j, double p) => Site(1 + 3 * _numLayers + j, p);
}
