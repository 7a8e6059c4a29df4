// Shape-checking prefix builder over a safetensors file (candle's VarBuilder): w.Pp("encoder").Pp("layer.0").Get("...", shape).
namespace FastRec.Engine.Weights;

/// <summary>
/// Reads tensors by Hugging Face name under a prefix, checking presence, dtype and shape, and naming the full tensor
/// name and the file in every error. <c>w.Pp("encoder").Pp($"layer.{i}")</c> narrows the prefix.
/// </summary>
public sealed class WeightBuilder
{
    private readonly SafetensorsFile _file;

    /// <summary>The prefix, ending with '.' unless empty.</summary>
    public string Prefix { get; }

    /// <summary>A builder at the root of <paramref name="file"/> (or under <paramref name="prefix"/>).</summary>
    public WeightBuilder(SafetensorsFile file, string prefix = "")
    {
        _file = file;
        Prefix = prefix.Length == 0 || prefix.EndsWith('.') ? prefix : prefix + ".";
    }

    /// <summary>The file being read.</summary>
    public SafetensorsFile File => _file;

    /// <summary>A builder one level deeper: prefix + <paramref name="name"/> + ".".</summary>
    public WeightBuilder Pp(string name) => new(_file, Prefix + name + ".");

    /// <summary>Full name of <paramref name="name"/> under this prefix.</summary>
    public string FullName(string name) => Prefix + name;

    /// <summary>True when the file has <paramref name="name"/> under this prefix.</summary>
    public bool Contains(string name) => _file.Contains(FullName(name));

    /// <summary>Checks that <paramref name="name"/> exists with a float dtype and exactly <paramref name="shape"/>; returns its entry.</summary>
    public SafetensorsTensorInfo Check(string name, ReadOnlySpan<int> shape)
    {
        string full = FullName(name);
        string want = "[" + string.Join(", ", shape.ToArray()) + "]";
        if (!_file.Header.ByName.TryGetValue(full, out var t))
            throw new SafetensorsFormatException(_file.Path, full, $"missing (config.json expects shape {want})");
        if (t.DType is not (SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16))
            throw new SafetensorsFormatException(_file.Path, full, $"dtype {t.DType} cannot be loaded as weights (F32, F16 or BF16 expected)");
        bool same = t.Shape.Length == shape.Length;
        for (int i = 0; same && i < shape.Length; i++) same = t.Shape[i] == shape[i];
        if (!same)
            throw new SafetensorsFormatException(_file.Path, full, $"shape {t.ShapeText} does not match config.json, expected {want}");
        return t;
    }

    /// <summary>Reads <paramref name="name"/> as F32 after checking it against <paramref name="shape"/>.</summary>
    public float[] Get(string name, params int[] shape)
    {
        Check(name, shape);
        return _file.ReadF32(FullName(name));
    }

    /// <summary>Reads <paramref name="name"/> into <paramref name="dst"/> after checking it against <paramref name="shape"/>.</summary>
    public void Get(string name, ReadOnlySpan<int> shape, Span<float> dst)
    {
        Check(name, shape);
        _file.ReadF32(FullName(name), dst);
    }
}
