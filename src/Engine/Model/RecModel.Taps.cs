// Distillation taps of RecModel: a kept-activation forward exposing hidden states, attention and logits, and a backward from them.
using FastRec.Kernels;

namespace FastRec.Engine.Model;

public sealed partial class RecModel
{
    private long _prepared;           // incremented by every Prepare: tap views are valid only for the latest forward
    private ActivationTensors? _tapActs;
    private View<int> _tapTypeIds;
    private DropoutPlan _tapDrop;
    private long _tapStamp = -1;

    /// <summary>
    /// Forward for distillation and co-training: runs the model on <paramref name="batch"/> (with dropout keyed by
    /// (<paramref name="dropoutSeed"/>, <paramref name="step"/>) when <paramref name="training"/>, else evaluation mode) and
    /// keeps every layer's activations, so that <see cref="TapHidden"/>, <see cref="TapAttentionProbs"/>,
    /// <see cref="TapLogits"/> can be read (on the backend, no download) and <see cref="BackwardTaps"/> can run.
    /// Labels and weights are uploaded when the batch has them (<see cref="TapLabels"/>, <see cref="TapWeights"/>).
    /// The views stay valid until the next call that runs the model.
    /// </summary>
    public void ForwardTaps(RecBatch batch, bool training, ulong dropoutSeed = 0, int step = 0)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var a = Prepare(batch, requireLabels: batch.Labels is { Length: > 0 }, inference: false);
        var drop = training ? new DropoutPlan(dropoutSeed, step, Layout.NumLayers) : DropoutPlan.Eval;
        RunForward(a, batch, drop);
        _tapActs = a;
        _tapTypeIds = TypeIds(a, batch);
        _tapDrop = drop;
        _tapStamp = _prepared;
        HasTapWeights = batch.Weights is not null;
        HasTapLabels = batch.Labels is { Length: > 0 };
    }

    private ActivationTensors Taps
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_tapActs is null || _tapStamp != _prepared)
                throw new InvalidOperationException("no current ForwardTaps: call ForwardTaps first (another call has run the model since)");
            return _tapActs;
        }
    }

    /// <summary>B of the current <see cref="ForwardTaps"/>.</summary>
    public int TapBatch => Taps.B;
    /// <summary>T of the current <see cref="ForwardTaps"/>.</summary>
    public int TapSeq => Taps.T;
    /// <summary>Whether the current tap batch came with labels / weights.</summary>
    public bool HasTapLabels { get; private set; }
    /// <inheritdoc cref="HasTapLabels"/>
    public bool HasTapWeights { get; private set; }
    /// <summary>Logits (B) of the current <see cref="ForwardTaps"/>.</summary>
    public View<float> TapLogits => Taps.Logits;
    /// <summary>δlogits (B): the caller writes the loss gradient here (e.g. <see cref="IBackend.BceForwardBackward"/>,
    /// accumulating several terms) before <see cref="BackwardTaps"/>.</summary>
    public View<float> TapLogitsGrad => Taps.DLogits;
    /// <summary>The uploaded labels (B) of the tap batch (see <see cref="HasTapLabels"/>).</summary>
    public View<float> TapLabels => Taps.Labels;
    /// <summary>The uploaded weights (B), or None when the batch had none.</summary>
    public View<float> TapWeights => HasTapWeights ? Taps.Weights : View<float>.None;

    /// <summary>Hidden state <paramref name="index"/> (B, T, C) as Hugging Face's <c>hidden_states</c>: 0 = the embeddings'
    /// output (after their dropout in training), i = encoder layer i−1's output; <paramref name="index"/> in [0, L].</summary>
    public View<float> TapHidden(int index)
    {
        var a = Taps;
        if (index < 0 || index > Layout.NumLayers)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"hidden state index must be in [0, num_hidden_layers = {Layout.NumLayers}], got {index}");
        return index == 0 ? a.Emb : a.Layers[index - 1].H2;
    }

    /// <summary>Attention probabilities (B, NH, T, T) of encoder layer <paramref name="layer"/> in [0, L), before attention
    /// dropout (padding keys exactly 0).</summary>
    public View<float> TapAttentionProbs(int layer)
    {
        var a = Taps;
        if (layer < 0 || layer >= Layout.NumLayers)
            throw new ArgumentOutOfRangeException(nameof(layer), layer, $"layer must be in [0, num_hidden_layers = {Layout.NumLayers}), got {layer}");
        return a.Layers[layer].Probs;
    }

    /// <summary>
    /// Backward of the current <see cref="ForwardTaps"/> from <see cref="TapLogitsGrad"/> plus optional extra gradients:
    /// <paramref name="dHidden"/>[i] (B, T, C) of hidden state i and <paramref name="dProbs"/>[l] (B, NH, T, T) of layer l's
    /// attention probabilities (entries None or past the span's end = none). ACCUMULATES parameter gradients into
    /// <see cref="Grads"/> as <see cref="ForwardBackward"/> does; frozen parts are skipped, and a tap below the lowest trainable
    /// layer has no effect.
    /// </summary>
    public void BackwardTaps(ReadOnlySpan<View<float>> dHidden = default, ReadOnlySpan<View<float>> dProbs = default)
    {
        var a = Taps;
        int L = Layout.NumLayers, C = Bert.HiddenSize, NH = Bert.NumAttentionHeads;
        if (dHidden.Length > L + 1) throw new ShapeException($"dHidden: at most L + 1 = {L + 1} hidden states, got {dHidden.Length}");
        if (dProbs.Length > L) throw new ShapeException($"dProbs: at most L = {L} layers, got {dProbs.Length}");
        for (int i = 0; i < dHidden.Length; i++)
            if (!dHidden[i].IsNone && dHidden[i].Length != (long)a.B * a.T * C)
                throw new ShapeException($"dHidden[{i}]: expected (B={a.B}, T={a.T}, C={C}) = {(long)a.B * a.T * C} elements, got {dHidden[i].Length}");
        for (int l = 0; l < dProbs.Length; l++)
            if (!dProbs[l].IsNone && dProbs[l].Length != (long)a.B * NH * a.T * a.T)
                throw new ShapeException($"dProbs[{l}]: expected (B={a.B}, NH={NH}, T={a.T}, T={a.T}) = {(long)a.B * NH * a.T * a.T} elements, got {dProbs[l].Length}");
        if (_lowest != int.MaxValue) RunBackward(a, _tapTypeIds, _tapDrop, dHidden, dProbs);
    }
}
