// A fixed representation of every catalogue item: one row of D floats per item, in one buffer.
namespace FastRec.Engine.Representations;

/// <summary>V items x D floats, row-major: item i's vector is <see cref="Row"/>(i). What produced it is in
/// <see cref="Name"/> (e.g. "all-MiniLM-L6-v2 mean-pooled", "random-init MiniLM", "genre+year+title hash").
/// A row of zeros means "no representation" (e.g. an item without text).</summary>
public sealed class ItemVectors
{
    /// <summary>Wraps <paramref name="values"/> (V·D floats, not copied).</summary>
    public ItemVectors(string name, int count, int dim, float[] values)
    {
        ArgumentNullException.ThrowIfNull(name); ArgumentNullException.ThrowIfNull(values);
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be >= 0");
        if (dim < 1) throw new ArgumentOutOfRangeException(nameof(dim), dim, "dim must be >= 1");
        if (values.LongLength != (long)count * dim) throw new ArgumentException($"values: expected {count} x {dim} = {(long)count * dim} floats, got {values.LongLength}");
        for (long i = 0; i < values.LongLength; i++)
            if (!float.IsFinite(values[i])) throw new ArgumentException($"values[{i}] (item {i / dim}, column {i % dim}) is {values[i]}; item vectors must be finite");
        Name = name; Count = count; Dim = dim; Values = values;
    }

    /// <summary>What the vectors are.</summary>
    public string Name { get; }
    /// <summary>V, the number of items.</summary>
    public int Count { get; }
    /// <summary>D, the width of a vector.</summary>
    public int Dim { get; }
    /// <summary>(V, D) row-major.</summary>
    public float[] Values { get; }
    /// <summary>Item <paramref name="item"/>'s vector. (D)</summary>
    public ReadOnlySpan<float> Row(int item) => Values.AsSpan(item * Dim, Dim);
}
