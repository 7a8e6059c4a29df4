// Shape validation shared by every backend: messages name the argument, the expected and the actual size.
using System.Runtime.CompilerServices;

namespace FastRec.Kernels;

/// <summary>Argument checks used at the top of every kernel entry point.</summary>
public static class Check
{
    /// <summary>Throws <see cref="ShapeException"/> unless <paramref name="view"/> holds exactly <paramref name="expected"/> elements.</summary>
    public static void Len<T>(View<T> view, long expected, string shape,
        [CallerArgumentExpression(nameof(view))] string name = "") where T : unmanaged
    {
        if (view.IsNone) throw new ShapeException($"{name}: required tensor is missing (expected {shape} = {expected} elements)");
        if (view.Length != expected)
            throw new ShapeException($"{name}: expected {shape} = {expected} elements, got {view.Length}");
    }

    /// <summary>As <see cref="Len{T}"/> but None is allowed.</summary>
    public static void LenOpt<T>(View<T> view, long expected, string shape,
        [CallerArgumentExpression(nameof(view))] string name = "") where T : unmanaged
    {
        if (!view.IsNone) Len(view, expected, shape, name);
    }

    /// <summary>At least <paramref name="expected"/> elements (workspaces, leading-dimension matrices).</summary>
    public static void MinLen<T>(View<T> view, long expected, string shape,
        [CallerArgumentExpression(nameof(view))] string name = "") where T : unmanaged
    {
        if (view.IsNone) throw new ShapeException($"{name}: required tensor is missing (expected at least {shape} = {expected} elements)");
        if (view.Length < expected)
            throw new ShapeException($"{name}: expected at least {shape} = {expected} elements, got {view.Length}");
    }

    /// <summary>Every dimension must be positive.</summary>
    public static void Dims(string what, params ReadOnlySpan<int> dims)
    {
        foreach (int d in dims)
            if (d <= 0) throw new ShapeException($"{what}: dimensions must be positive, got ({string.Join(", ", dims.ToArray())})");
    }

    /// <summary>Validates one GEMM operand stored [rows, cols] with leading dimension ld (0 = packed); returns the effective ld.</summary>
    public static int GemmOperand(View<float> m, int ld, int rows, int cols, int batch, long stride, string what, string ldName, string strideName)
    {
        if (ld < 0) throw new ShapeException($"{ldName}: leading dimension must be >= 0 (0 = packed), got {ld}");
        int eff = ld == 0 ? cols : ld;
        if (eff < cols) throw new ShapeException($"{ldName}: leading dimension {ld} is smaller than the row length {cols} of {what} stored [{rows},{cols}]");
        if (stride < 0) throw new ShapeException($"{strideName}: batch stride must be >= 0, got {stride}");
        long need = (batch - 1) * stride + (long)(rows - 1) * eff + cols;
        MinLen(m, need, $"{batch} batch(es) of {what} stored [{rows},{cols}] ({ldName} {eff}, {strideName} {stride})", what.ToLowerInvariant());
        return eff;
    }

    /// <summary>The argument checks every backend's AdamW makes (lengths, the norm scalar, step, betas).</summary>
    public static void AdamWArgs(View<float> param, View<float> grad, View<float> m, View<float> v, View<float> norm,
        float maxNorm, float beta1, float beta2, int step)
    {
        Len(param, param.Length, "(n)");
        Dims("AdamW (n = param.Length)", param.Length);
        int n = param.Length;
        Len(grad, n, "(n) = param.Length"); Len(m, n, "(n) = param.Length"); Len(v, n, "(n) = param.Length");
        if (maxNorm > 0f) Len(norm, 1, "(1)"); else LenOpt(norm, 1, "(1)");
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, $"step: counts from 1, got {step}");
        if (!(beta1 >= 0f && beta1 < 1f)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, $"beta1: must be in [0, 1), got {beta1}");
        if (!(beta2 >= 0f && beta2 < 1f)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, $"beta2: must be in [0, 1), got {beta2}");
    }

    /// <summary>Workspace floats needed by AttentionForward/Backward: 2·B·NH·T² + 4·B·T·C.</summary>
    public static long AttentionWorkspace(int B, int T, int C, int NH) => 2L * B * NH * T * T + 4L * B * T * C;
}
