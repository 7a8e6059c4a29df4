// The recommendation head's shape: input source, dense features, hidden layers, activation, dropout.
using FastRec.Kernels;

namespace FastRec.Engine.Model;

/// <summary>Which encoder output feeds the head.</summary>
public enum AdapterInput
{
    /// <summary>The pooler output tanh(W·h_CLS + b) (needs <see cref="BertConfig.AddPoolingLayer"/>).</summary>
    Pooler,
    /// <summary>The raw last hidden state of the [CLS] token (position 0).</summary>
    Cls,
    /// <summary>The attention-masked mean of the last hidden state over the real tokens,
    /// Σ_t mask[b,t]·h[b,t,:] / max(Σ_t mask[b,t], 1e-9): the pooling all-MiniLM-L6-v2 was trained with. Not L2-normalised
    /// (sentence-transformers normalises its embeddings; the head takes the raw mean). Padding does not change it.</summary>
    Mean,
}

/// <summary>
/// The MLP head on top of the encoder: input = [encoder vector (C) | dense features (D)], then for each
/// entry of <see cref="HiddenSizes"/> Linear → <see cref="Activation"/> → dropout, then Linear to one logit.
/// </summary>
public sealed class AdapterConfig
{
    /// <summary>Widths of the hidden layers (may be empty: a single Linear to the logit).</summary>
    public int[] HiddenSizes { get; init; } = [];
    /// <summary>Activation after each hidden Linear.</summary>
    public Activation Activation { get; init; } = Activation.Gelu;
    /// <summary>Dropout probability after each hidden activation.</summary>
    public float Dropout { get; init; } = 0.1f;
    /// <summary>D: numeric features concatenated to the encoder vector (0 = none).</summary>
    public int DenseFeatures { get; init; }
    /// <summary>Pooler output, raw [CLS] hidden state or masked mean of the last hidden state.</summary>
    public AdapterInput Input { get; init; } = AdapterInput.Pooler;

    /// <summary>Checks the head against <paramref name="bert"/>; throws <see cref="InvalidDataException"/> naming the field.</summary>
    public void Validate(BertConfig bert)
    {
        for (int j = 0; j < HiddenSizes.Length; j++)
            if (HiddenSizes[j] <= 0)
                throw new InvalidDataException($"AdapterConfig.HiddenSizes[{j}] must be positive, got {HiddenSizes[j]}");
        if (!(Dropout >= 0 && Dropout < 1))
            throw new InvalidDataException($"AdapterConfig.Dropout must be in [0, 1), got {Dropout}");
        if (DenseFeatures < 0)
            throw new InvalidDataException($"AdapterConfig.DenseFeatures must be >= 0, got {DenseFeatures}");
        if (!Enum.IsDefined(Input))
            throw new InvalidDataException($"AdapterConfig.Input must be Pooler, Cls or Mean, got {Input}");
        if (Input == AdapterInput.Pooler && !bert.AddPoolingLayer)
            throw new InvalidDataException("AdapterConfig.Input is Pooler but the BERT config has no pooler (add_pooling_layer = false); use AdapterInput.Cls");
    }
}
