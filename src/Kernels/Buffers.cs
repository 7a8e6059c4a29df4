// Backend-owned memory: typed buffers and the (buffer, offset, length) views every kernel takes.
using System.Runtime.InteropServices;

namespace FastRec.Kernels;

/// <summary>A block of backend memory holding <see cref="Length"/> elements of <typeparamref name="T"/>.
/// CPU backends hold a managed array; GPU backends hold device memory. Allocate through <see cref="IBackend.Allocate{T}"/>.</summary>
public abstract class DeviceBuffer<T> : IDisposable where T : unmanaged
{
    /// <summary>Number of elements.</summary>
    public abstract long Length { get; }
    /// <summary>The backend that owns the memory; kernels refuse buffers of another backend.</summary>
    public abstract IBackend Owner { get; }
    /// <summary>A view of the whole buffer.</summary>
    public View<T> All => new(this, 0, checked((int)Length));
    /// <summary>A view of <paramref name="length"/> elements from <paramref name="offset"/>.</summary>
    public View<T> Slice(long offset, int length) => All.Slice(offset, length);
    public abstract void Dispose();
}

/// <summary>CPU memory: a managed array (pinned-free; spans are taken per call).</summary>
public sealed class CpuBuffer<T> : DeviceBuffer<T> where T : unmanaged
{
    private readonly IBackend _owner;
    /// <summary>The backing array; exposed so CPU kernels can take spans without copies.</summary>
    public T[] Array { get; }
    public CpuBuffer(IBackend owner, long length)
    {
        _owner = owner;
        Array = GC.AllocateUninitializedArray<T>(checked((int)length), pinned: true);
        System.Array.Clear(Array);
    }
    public override long Length => Array.LongLength;
    public override IBackend Owner => _owner;
    public override void Dispose() { }
}

/// <summary>A contiguous range of a <see cref="DeviceBuffer{T}"/>. Value type, no allocation.
/// All kernels take views; a view of length 0 with a null buffer is "absent" (optional arguments).</summary>
public readonly struct View<T> where T : unmanaged
{
    public readonly DeviceBuffer<T>? Buffer;
    public readonly long Offset;
    public readonly int Length;

    public View(DeviceBuffer<T> buffer, long offset, int length)
    {
        if (offset < 0 || length < 0 || offset + length > buffer.Length)
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"view [{offset}, {offset + length}) is outside a buffer of {buffer.Length} elements");
        Buffer = buffer; Offset = offset; Length = length;
    }

    /// <summary>The absent view (for optional arguments such as "no weights" or "no mask").</summary>
    public static View<T> None => default;
    public bool IsNone => Buffer is null;

    public View<T> Slice(long offset, int length)
    {
        if (Buffer is null) throw new InvalidOperationException("cannot slice an absent view");
        if (offset < 0 || length < 0 || offset + length > Length)
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"slice [{offset}, {offset + length}) is outside a view of {Length} elements");
        return new View<T>(Buffer, Offset + offset, length);
    }

    /// <summary>CPU backends only: the elements as a span (throws for device memory).</summary>
    public Span<T> Span
    {
        get
        {
            if (Buffer is null) return Span<T>.Empty;
            if (Buffer is CpuBuffer<T> cpu) return cpu.Array.AsSpan(checked((int)Offset), Length);
            throw new InvalidOperationException($"a {Buffer.GetType().Name} is device memory and has no host span");
        }
    }

    public override string ToString() => IsNone ? "View(none)" : $"View<{typeof(T).Name}>[{Offset}..{Offset + Length})";
}

/// <summary>One tensor's range in the flat parameter buffer, for the multi-tensor AdamW step.
/// LrScale multiplies the step's learning rate (0 = frozen: parameter and moments are left untouched);
/// WeightDecay is this tensor's decoupled weight decay (0 for biases and LayerNorm).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct AdamSegment
{
    public int Offset;
    public int Length;
    public float LrScale;
    public float WeightDecay;
    public AdamSegment(int offset, int length, float lrScale, float weightDecay)
    { Offset = offset; Length = length; LrScale = lrScale; WeightDecay = weightDecay; }
}

/// <summary>Dropout description. P = 0 means identity (no RNG drawn). The keep decision for element i is
/// <c>Rng.Uniform(Seed, Offset + i) &gt;= P</c>, and kept values are scaled by 1/(1-P) (as torch).</summary>
public readonly record struct DropoutSpec(float P, ulong Seed, ulong Offset)
{
    public static DropoutSpec Off => new(0f, 0, 0);
    public bool IsOn => P > 0f;
}
