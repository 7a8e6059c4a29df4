// The collective seam of data-parallel training: rank, size, in-place all-reduce, broadcast, barrier, with a timeout.
namespace FastRec.Kernels.Distributed;

/// <summary>
/// The collective operations data-parallel training needs, over the processes of one job (the "ranks", numbered
/// 0 .. <see cref="Size"/> − 1). Every rank must make the same calls in the same order with the same lengths; a call
/// returns once every rank has made it (or throws <see cref="CollectiveTimeoutException"/> after <see cref="Timeout"/>).
/// Implementations: <see cref="LocalCollective"/> (one process, no-ops: the default), <see cref="MpiCollective"/>
/// (Open MPI between processes or nodes), <see cref="NcclCollective"/> (NCCL between GPUs).
/// <para>After any exception the collective is unusable: the caller reports the error and calls <see cref="Abort"/>, which
/// ends every rank of the job (a rank that just returned would leave the others waiting for it).</para>
/// </summary>
public interface ICollective : IDisposable
{
    /// <summary>Short name: "local", "mpi", "nccl".</summary>
    string Name { get; }
    /// <summary>This process's rank, in [0, <see cref="Size"/>).</summary>
    int Rank { get; }
    /// <summary>Number of ranks (≥ 1).</summary>
    int Size { get; }
    /// <summary>Longest wait of one operation for the other ranks; past it the operation throws
    /// <see cref="CollectiveTimeoutException"/>. Must be positive.</summary>
    TimeSpan Timeout { get; set; }

    /// <summary>In place: every rank's <paramref name="data"/> becomes the element-wise sum over the ranks (float32, the
    /// summation order is the library's). Backend memory: a CPU view is reduced where it lies, a device view is staged
    /// through host memory unless the implementation reduces device memory directly (NCCL). A zero-length view is a no-op.</summary>
    void AllReduceSum(View<float> data);
    /// <summary>As <see cref="AllReduceSum(View{float})"/> on host memory.</summary>
    void AllReduceSum(Span<float> data);
    /// <summary>Every rank's <paramref name="data"/> becomes rank <paramref name="root"/>'s.</summary>
    void Broadcast(View<float> data, int root);
    /// <summary>As <see cref="Broadcast(View{float}, int)"/> on host bytes.</summary>
    void Broadcast(Span<byte> data, int root);
    /// <summary>Returns once every rank has called it.</summary>
    void Barrier();
    /// <summary>Ends every rank of the job with <paramref name="errorCode"/> (MPI_Abort); a no-op for one process.</summary>
    void Abort(int errorCode);
}

/// <summary>A collective operation waited longer than <see cref="ICollective.Timeout"/> for the other ranks.</summary>
public sealed class CollectiveTimeoutException(string message) : TimeoutException(message);

/// <summary>The collective library reported an error (the message names the operation, the library's code and text).</summary>
public sealed class CollectiveException(string message) : Exception(message);

/// <summary>Argument checks and names shared by the implementations.</summary>
public static class Collective
{
    /// <summary>Default <see cref="ICollective.Timeout"/>: long enough for rank 0 to write a checkpoint while the others wait.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(5);

    /// <summary>The names <see cref="Create"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["local", "mpi"];

    /// <summary>Creates the collective called <paramref name="name"/>: "local" (<see cref="LocalCollective"/>) or "mpi"
    /// (<see cref="MpiCollective.Create"/>; the process must have been started by mpirun). NCCL needs a GPU backend:
    /// see <see cref="NcclCollective.Create"/>.</summary>
    public static ICollective Create(string name, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(name);
        CheckTimeout(timeout);
        return name.Trim().ToLowerInvariant() switch
        {
            "local" => new LocalCollective { Timeout = timeout },
            "mpi" => MpiCollective.Create(timeout),
            _ => throw new ArgumentException($"collective: unknown kind '{name}'; choose one of {string.Join(", ", Names)}", nameof(name)),
        };
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> unless <paramref name="timeout"/> is positive and finite.</summary>
    public static void CheckTimeout(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero || timeout == System.Threading.Timeout.InfiniteTimeSpan || timeout.TotalDays > 1)
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, $"the collective timeout must be in (0, 1 day], got {timeout}");
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> unless <paramref name="root"/> is a rank of <paramref name="size"/>.</summary>
    public static void CheckRoot(int root, int size)
    {
        if (root < 0 || root >= size)
            throw new ArgumentOutOfRangeException(nameof(root), root, $"root must be a rank in [0, {size}), got {root}");
    }

    /// <summary>Throws <see cref="ArgumentException"/> for an absent view (a zero-length view is fine).</summary>
    public static void CheckView(View<float> data, string name = "data")
    {
        if (data.IsNone) throw new ArgumentException($"{name}: the view is absent (View.None); pass a view of the buffer to reduce", name);
    }
}
