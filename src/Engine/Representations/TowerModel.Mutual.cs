// Deep mutual learning of two item-tower models over two views of the items (e.g. the text encoder's vectors and item
// ids alone): trained side by side on the same rows, each also fits the other's softened predictions.
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Kernels;

namespace FastRec.Engine.Representations;

/// <summary>The peer's softened probabilities σ(z_peer/T) (R, O) for the mutual-learning term, its weight α and T.</summary>
internal sealed record SoftTargets(float[] Probabilities, float Weight, float Temperature);

/// <summary>Options of <see cref="TowerModel.FitMutual"/>.</summary>
public sealed record MutualOptions
{
    /// <summary>α: weight of the term fitting the peer's predictions (the hard labels keep weight 1).</summary>
    public float Weight { get; init; } = 0.5f;
    /// <summary>T: both models' logits are divided by T in that term; the term is scaled by T².</summary>
    public float Temperature { get; init; } = 2f;

    internal void Validate()
    {
        if (!(Weight >= 0 && float.IsFinite(Weight))) throw new ArgumentOutOfRangeException(nameof(Weight), Weight, "the mutual-learning weight must be finite and >= 0");
        if (!(Temperature > 0 && float.IsFinite(Temperature))) throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "the temperature must be finite and > 0");
    }
}

public sealed partial class TowerModel
{
    /// <summary>
    /// Deep mutual learning (Zhang et al. 2018) of two item-tower models, one per view of the items: <paramref name="vectorsA"/>
    /// and <paramref name="vectorsB"/> (an item-id-only view is <see cref="IdOnlyVectors"/>: every item the same zero vector,
    /// so only its residual, an id embedding, tells items apart). Both see the same ratings and sampled items in the same
    /// order (same seed); at every step each computes its logits, then each takes an AdamW step on its own labels plus
    /// α·T²·BCE(σ(z/T), σ(z_peer/T)) on both outputs, with the peer's logits of before the step. Each keeps its own best
    /// epoch by validation; the run ends when both have run out of patience.
    /// </summary>
    public static (TowerModel A, TowerModel B) FitMutual(string nameA, ItemVectors vectorsA, string nameB, ItemVectors vectorsB, EvalWindow window,
        ExampleSet train, ExampleSet validation, IBackend backend, TowerModelOptions? options = null, MutualOptions? mutual = null,
        Action<string>? log = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(window); ArgumentNullException.ThrowIfNull(train); ArgumentNullException.ThrowIfNull(validation);
        ArgumentNullException.ThrowIfNull(vectorsA); ArgumentNullException.ThrowIfNull(vectorsB); ArgumentNullException.ThrowIfNull(backend);
        var o = options ?? new TowerModelOptions();
        var mo = mutual ?? new MutualOptions();
        o.Validate(); mo.Validate();
        foreach (var v in new[] { vectorsA, vectorsB })
            if (v.Count != window.ItemCount) throw new ArgumentException($"the item vectors '{v.Name}' cover {v.Count} items but the catalogue has {window.ItemCount}");
        var rated = Rated(train); var ratedValidation = Rated(validation);
        if (rated.Length == 0) throw new ArgumentException($"the training set '{train.Name}' has no rated (non-sampled) rows");
        if (ratedValidation.Length == 0) throw new ArgumentException($"the validation set '{validation.Name}' has no rated (non-sampled) rows");
        var a = new TowerModel(nameA, backend, window, vectorsA, o);
        TowerModel? b = null;
        try
        {
            b = new TowerModel(nameB, backend, window, vectorsB, o);
            using var ra = new Run(a, train, rated, validation, ratedValidation, log);
            using var rb = new Run(b, train, rated, validation, ratedValidation, log);
            for (int epoch = 1; epoch <= o.Epochs && !(ra.Stopped && rb.Stopped); epoch++)
            {
                ra.Shuffle(epoch); rb.Shuffle(epoch);
                for (int s = 0; s < ra.Steps; s++)
                {
                    ct.ThrowIfCancellationRequested();
                    ra.Rows(s, epoch); rb.Rows(s, epoch);
                    var za = ra.Logits(); var zb = rb.Logits();
                    ra.Step(ra.ForwardBackward(new SoftTargets(Soften(zb, mo.Temperature), mo.Weight, mo.Temperature)), epoch);
                    rb.Step(rb.ForwardBackward(new SoftTargets(Soften(za, mo.Temperature), mo.Weight, mo.Temperature)), epoch);
                }
                if (!ra.Stopped) ra.EndEpoch(epoch);
                if (!rb.Stopped) rb.EndEpoch(epoch);
            }
            ra.Finish(); rb.Finish();
            return (a, b);
        }
        catch
        {
            a.Dispose(); b?.Dispose();
            throw;
        }
    }

    /// <summary>σ(z/T) of every logit.</summary>
    private static float[] Soften(float[] z, float temperature)
    {
        var p = new float[z.Length];
        for (int k = 0; k < z.Length; k++) p[k] = 1f / (1f + MathF.Exp(-z[k] / temperature));
        return p;
    }

    /// <summary>The item-id view: V items, one zero vector each (D = 1). A <see cref="TowerModel"/> over it tells items apart
    /// only by its per-item residual (an id embedding); items without training interactions all look alike.</summary>
    public static ItemVectors IdOnlyVectors(int items) => new("item ids only", items, 1, new float[items]);
}
