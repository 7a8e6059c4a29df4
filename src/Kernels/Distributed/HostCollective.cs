// Base of the collectives that move host memory: backend views reduced in place (CPU) or staged through the host (GPU).
namespace FastRec.Kernels.Distributed;

/// <summary>
/// An <see cref="ICollective"/> whose transport works on host memory (MPI, or nothing at all for one process). A view of a
/// CPU buffer is handed to the transport where it lies (the CPU backends' arrays are pinned); a view of device memory is
/// downloaded into a reused host array, reduced, and uploaded back.
/// </summary>
public abstract class HostCollective : ICollective
{
    private TimeSpan _timeout = Collective.DefaultTimeout;
    private float[] _staging = [];

    /// <inheritdoc/>
    public abstract string Name { get; }
    /// <inheritdoc/>
    public abstract int Rank { get; }
    /// <inheritdoc/>
    public abstract int Size { get; }

    /// <inheritdoc/>
    public TimeSpan Timeout
    {
        get => _timeout;
        set { Collective.CheckTimeout(value); _timeout = value; }
    }

    /// <inheritdoc/>
    public abstract void AllReduceSum(Span<float> data);
    /// <inheritdoc/>
    public abstract void Broadcast(Span<byte> data, int root);
    /// <inheritdoc/>
    public abstract void Barrier();
    /// <inheritdoc/>
    public abstract void Abort(int errorCode);

    /// <summary>As <see cref="Broadcast(Span{byte}, int)"/> on floats.</summary>
    protected abstract void BroadcastFloats(Span<float> data, int root);

    /// <inheritdoc/>
    public void AllReduceSum(View<float> data)
    {
        Collective.CheckView(data);
        if (data.Length == 0 || Size == 1) return;
        if (data.Buffer is CpuBuffer<float>) { AllReduceSum(data.Span); return; }
        var host = Stage(data);
        AllReduceSum(host);
        data.Buffer!.Owner.Upload(data, host);
    }

    /// <inheritdoc/>
    public void Broadcast(View<float> data, int root)
    {
        Collective.CheckView(data);
        Collective.CheckRoot(root, Size);
        if (data.Length == 0 || Size == 1) return;
        if (data.Buffer is CpuBuffer<float>) { BroadcastFloats(data.Span, root); return; }
        var host = Stage(data);
        BroadcastFloats(host, root);
        data.Buffer!.Owner.Upload(data, host);
    }

    private Span<float> Stage(View<float> data)
    {
        if (_staging.Length < data.Length) _staging = GC.AllocateUninitializedArray<float>(data.Length, pinned: true);
        var host = _staging.AsSpan(0, data.Length);
        data.Buffer!.Owner.Download(data, host);
        return host;
    }

    /// <summary>Releases the transport.</summary>
    public abstract void Dispose();
}

/// <summary>One process, no transport: every operation is a no-op (the sum over one rank is the data itself). The default
/// collective, so single-process training is unchanged.</summary>
public sealed class LocalCollective : HostCollective
{
    /// <inheritdoc/>
    public override string Name => "local";
    /// <inheritdoc/>
    public override int Rank => 0;
    /// <inheritdoc/>
    public override int Size => 1;
    /// <inheritdoc/>
    public override void AllReduceSum(Span<float> data) { }
    /// <inheritdoc/>
    public override void Broadcast(Span<byte> data, int root) => Collective.CheckRoot(root, 1);
    /// <inheritdoc/>
    protected override void BroadcastFloats(Span<float> data, int root) { }
    /// <inheritdoc/>
    public override void Barrier() { }
    /// <inheritdoc/>
    public override void Abort(int errorCode) { }
    /// <inheritdoc/>
    public override void Dispose() { }
}
