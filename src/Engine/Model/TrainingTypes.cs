// The small types of a training step: optimiser options, freezing modes, the non-finite-loss error.
namespace FastRec.Engine.Model;

/// <summary>torch.optim.AdamW hyper-parameters plus global-norm clipping (defaults = torch's, clip 1.0).</summary>
public record struct AdamWOptions()
{
    /// <summary>Learning rate of this step (the trainer applies its schedule).</summary>
    public float Lr { get; init; } = 1e-4f;
    public float Beta1 { get; init; } = 0.9f;
    public float Beta2 { get; init; } = 0.999f;
    /// <summary>torch's default 1e-8.</summary>
    public float Eps { get; init; } = 1e-8f;
    /// <summary>Decoupled weight decay for tensors with <see cref="ParamInfo.Decay"/> (not biases, not LayerNorm).</summary>
    public float WeightDecay { get; init; } = 0.01f;
    /// <summary>Global L2 norm clip (torch.nn.utils.clip_grad_norm_); 0 = off.</summary>
    public float MaxGradNorm { get; init; } = 1.0f;
}

/// <summary>Which tensors <see cref="RecModel.SetTrainable"/> leaves trainable; the rest are frozen
/// (no gradient computed, untouched by AdamW).</summary>
public enum Freeze
{
    /// <summary>Only the head (head.*); the encoder and the pooler are frozen.</summary>
    AdapterOnly,
    /// <summary>The head, the pooler and the top k encoder layers; the embeddings and lower layers are frozen.</summary>
    TopK,
    /// <summary>Nothing frozen: full fine-tuning (the default).</summary>
    All,
}

/// <summary>The loss (or gradient norm) of a step is NaN or infinite; the message names the step.
/// The gradients of that step are garbage: call <see cref="RecModel.ZeroGrad"/> before continuing.</summary>
public sealed class NonFiniteLossException(int step, float value, string what = "loss")
    : Exception($"non-finite {what} {value} at step {step}")
{
    /// <summary>The step that produced it.</summary>
    public int Step { get; } = step;
    /// <summary>The offending value.</summary>
    public float Value { get; } = value;
}

/// <summary>The encoder's outputs for a batch (host copies). B batch, T sequence, C hidden.</summary>
public sealed class EncoderOutput
{
    public required int B { get; init; }
    public required int T { get; init; }
    public required int C { get; init; }
    /// <summary>(B, T, C) the last layer's hidden states.</summary>
    public required float[] LastHiddenState { get; init; }
    /// <summary>(B, C) tanh(W·h_CLS + b), or null when the model has no pooler.</summary>
    public float[]? PoolerOutput { get; init; }
}
