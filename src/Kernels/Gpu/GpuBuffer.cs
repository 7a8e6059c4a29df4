// Device memory of the ILGPU backend: a DeviceBuffer<T> over one ILGPU MemoryBuffer1D.
using ILGPU;
using ILGPU.Runtime;

namespace FastRec.Kernels.Gpu;

/// <summary>A block of accelerator memory (CUDA device memory, or host memory on ILGPU's CPU accelerator)
/// owned by an <see cref="IlgpuBackend"/>. Allocate it through <see cref="IBackend.Allocate{T}"/>.</summary>
public sealed class GpuBuffer<T> : DeviceBuffer<T> where T : unmanaged
{
    private readonly IlgpuBackend _owner;
    private MemoryBuffer1D<T, Stride1D.Dense>? _memory;

    internal GpuBuffer(IlgpuBackend owner, MemoryBuffer1D<T, Stride1D.Dense> memory, long length)
    {
        _owner = owner;
        _memory = memory;
        Length = length;   // the allocation holds at least one element, so a 0-length buffer is still valid memory
        // Index and segment buffers (never written by kernels) keep a host copy, so ids and AdamW segments are
        // validated without a device round-trip.
        if (typeof(T) != typeof(float)) Mirror = new T[length];
    }

    /// <summary>Host copy of the contents for non-float buffers (kept in step by Upload), else null.</summary>
    internal T[]? Mirror { get; }

    /// <inheritdoc/>
    public override long Length { get; }

    /// <inheritdoc/>
    public override IBackend Owner => _owner;

    /// <summary>The ILGPU buffer; throws once disposed.</summary>
    public MemoryBuffer1D<T, Stride1D.Dense> Memory =>
        _memory ?? throw new ObjectDisposedException(nameof(GpuBuffer<T>), "the GPU buffer was disposed");

    /// <summary>Raw device address of element 0 (for the native CUDA library).</summary>
    public IntPtr NativePtr => Memory.NativePtr;

    /// <summary>The elements [offset, offset + length) as an ILGPU view.</summary>
    internal ArrayView<T> ViewOf(long offset, long length) => ((ArrayView<T>)Memory.View).SubView(offset, length);

    /// <inheritdoc/>
    public override void Dispose()
    {
        _memory?.Dispose();
        _memory = null;
    }
}
