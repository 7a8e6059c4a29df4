// The learning-rate schedule: linear warmup from 0 to the peak, then linear decay to 0 after the last step.
namespace FastRec.Engine.Training;

/// <summary>
/// Linear warmup + linear decay. Optimizer steps count from 1 to <see cref="TotalSteps"/> (S), warmup W steps:
/// lr(s) = peak · s / W for s ≤ W, and peak · (S − s + 1) / (S − W) for s &gt; W, so the first step is already non-zero,
/// the peak is reached at s = W (and at s = W + 1) and the rate would reach 0 one step after the last.
/// W = 0 means no warmup (lr(1) = peak).
/// </summary>
public readonly record struct LrSchedule
{
    /// <summary>The peak learning rate.</summary>
    public float Peak { get; }
    /// <summary>S, the number of optimizer steps of the run (≥ 1).</summary>
    public int TotalSteps { get; }
    /// <summary>W, the warmup steps, in [0, S].</summary>
    public int WarmupSteps { get; }

    /// <summary>Creates the schedule; bad values throw <see cref="ArgumentOutOfRangeException"/> naming them.</summary>
    public LrSchedule(float peak, int totalSteps, int warmupSteps)
    {
        if (!(peak > 0 && float.IsFinite(peak))) throw new ArgumentOutOfRangeException(nameof(peak), peak, $"learning rate must be finite and > 0, got {peak}");
        if (totalSteps < 1) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, $"total steps must be >= 1, got {totalSteps}");
        if (warmupSteps < 0 || warmupSteps > totalSteps)
            throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, $"warmup steps must be in [0, total steps = {totalSteps}], got {warmupSteps}");
        Peak = peak; TotalSteps = totalSteps; WarmupSteps = warmupSteps;
    }

    /// <summary>The learning rate of optimizer step <paramref name="step"/> (1-based, ≤ S).</summary>
    public float At(int step)
    {
        if (step < 1 || step > TotalSteps) throw new ArgumentOutOfRangeException(nameof(step), step, $"step must be in [1, {TotalSteps}], got {step}");
        if (step <= WarmupSteps) return (float)((double)Peak * step / WarmupSteps);
        return (float)((double)Peak * (TotalSteps - step + 1) / (TotalSteps - WarmupSteps));
    }

    /// <summary>Warmup steps for a fraction of the run: round(fraction · S) (halves away from zero), clamped to [0, S].</summary>
    public static int WarmupFor(double fraction, int totalSteps)
    {
        if (!(fraction >= 0 && fraction <= 1)) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, $"warmup fraction must be in [0, 1], got {fraction}");
        return (int)Math.Clamp(Math.Round(fraction * totalSteps, MidpointRounding.AwayFromZero), 0, totalSteps);
    }
}
