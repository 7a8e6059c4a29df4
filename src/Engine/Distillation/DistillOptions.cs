// Options of knowledge distillation and co-training: loss weights, temperature, layer mapping, teacher cache bounds.
using FastRec.Engine.Model;

namespace FastRec.Engine.Distillation;

/// <summary>How hidden states of different widths are compared.</summary>
public enum HiddenProjection
{
    /// <summary>Identity when the student's width equals the teacher's, else a learned Linear (TinyBERT's W_h).</summary>
    Auto,
    /// <summary>Always a learned Linear (C_s → C_t), initialised normal(0, 0.02), zero bias.</summary>
    Learned,
}

/// <summary>
/// Loss and training options of <see cref="Distiller"/> and <see cref="MutualLearning"/>. The loss per batch is
/// <c>(1−α)·BCE(y, s) + α·T²·BCE(σ(t/T), σ(s/T)) + HiddenWeight·mean_m MSE(proj(h_s[m]), h_t[g(m)])
/// + AttentionWeight·mean_m MSE(A_s[m], A_t[g(m)])</c> with TinyBERT's uniform layer map g (see <see cref="LayerMap"/>).
/// MSEs are means over the valid (non-padding) positions; the attention MSE over the valid (query, key) pairs of every head.
/// </summary>
public sealed record DistillOptions
{
    /// <summary>α ∈ [0, 1]: weight of the soft (teacher) term against the hard (label) term.</summary>
    public float Alpha { get; init; } = 0.5f;
    /// <summary>T &gt; 0: softmax (sigmoid) temperature of the soft term.</summary>
    public float Temperature { get; init; } = 2f;
    /// <summary>Weight of the hidden-state MSE (0 = off).</summary>
    public float HiddenWeight { get; init; }
    /// <summary>Weight of the attention-probability MSE (0 = off; needs the student's heads = the teacher's).</summary>
    public float AttentionWeight { get; init; }
    /// <summary>Also match the embedding layers' outputs (hidden state 0), as TinyBERT does.</summary>
    public bool MatchEmbeddings { get; init; } = true;
    /// <summary>How hidden states of different widths are compared.</summary>
    public HiddenProjection Projection { get; init; } = HiddenProjection.Auto;
    /// <summary>Optimiser of the student (and of the projection).</summary>
    public AdamWOptions Optimizer { get; init; } = new() { Lr = 1e-4f };
    /// <summary>Dropout seed of the student(s).</summary>
    public ulong Seed { get; init; } = 42;
    /// <summary>Cache the teacher's outputs per example (computed once, then read back).</summary>
    public bool UseCache { get; init; } = true;
    /// <summary>Bytes of teacher outputs the cache keeps in memory. Default 512 MiB.</summary>
    public long CacheBudgetBytes { get; init; } = 512L << 20;
    /// <summary>Where cache entries beyond the budget spill (a temporary file, deleted on dispose); null = they are not
    /// kept and the teacher is re-run for batches that contain them.</summary>
    public string? SpillDirectory { get; init; }
    /// <summary>Receives notices (cache spilling or refusing, student initialisation).</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first bad field.</summary>
    public void Validate()
    {
        if (!(Alpha >= 0 && Alpha <= 1)) throw new ArgumentOutOfRangeException(nameof(Alpha), Alpha, $"DistillOptions.Alpha must be in [0, 1], got {Alpha}");
        if (!(Temperature > 0) || !float.IsFinite(Temperature))
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, $"DistillOptions.Temperature must be finite and > 0, got {Temperature}");
        if (!(HiddenWeight >= 0) || !float.IsFinite(HiddenWeight))
            throw new ArgumentOutOfRangeException(nameof(HiddenWeight), HiddenWeight, $"DistillOptions.HiddenWeight must be finite and >= 0, got {HiddenWeight}");
        if (!(AttentionWeight >= 0) || !float.IsFinite(AttentionWeight))
            throw new ArgumentOutOfRangeException(nameof(AttentionWeight), AttentionWeight, $"DistillOptions.AttentionWeight must be finite and >= 0, got {AttentionWeight}");
        if (CacheBudgetBytes < 0)
            throw new ArgumentOutOfRangeException(nameof(CacheBudgetBytes), CacheBudgetBytes, $"DistillOptions.CacheBudgetBytes must be >= 0, got {CacheBudgetBytes}");
        if (!(Optimizer.Lr >= 0) || !float.IsFinite(Optimizer.Lr))
            throw new ArgumentOutOfRangeException(nameof(Optimizer), Optimizer.Lr, $"DistillOptions.Optimizer.Lr must be finite and >= 0, got {Optimizer.Lr}");
    }
}

/// <summary>TinyBERT's uniform layer map between a student of L_s layers and a teacher of L_t layers.</summary>
public static class LayerMap
{
    /// <summary>Teacher hidden-state index g(m) = round(m·L_t/L_s) for student hidden-state index m ∈ [0, L_s]
    /// (0 = embeddings ↔ embeddings, L_s ↔ L_t).</summary>
    public static int Hidden(int m, int studentLayers, int teacherLayers)
    {
        if (m < 0 || m > studentLayers) throw new ArgumentOutOfRangeException(nameof(m), m, $"hidden-state index must be in [0, {studentLayers}], got {m}");
        return (int)Math.Round((double)m * teacherLayers / studentLayers, MidpointRounding.AwayFromZero);
    }

    /// <summary>Teacher layer of student layer l ∈ [0, L_s): the layer whose output is hidden state g(l + 1), i.e. g(l + 1) − 1.</summary>
    public static int Attention(int l, int studentLayers, int teacherLayers)
    {
        if (l < 0 || l >= studentLayers) throw new ArgumentOutOfRangeException(nameof(l), l, $"layer must be in [0, {studentLayers}), got {l}");
        return Hidden(l + 1, studentLayers, teacherLayers) - 1;
    }
}
