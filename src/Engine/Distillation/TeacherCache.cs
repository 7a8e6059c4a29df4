// Per-example cache of teacher outputs, bounded in memory: beyond the budget entries spill to a file or are refused (and say so).
using System.Globalization;
using Microsoft.Win32.SafeHandles;

namespace FastRec.Engine.Distillation;

/// <summary>
/// Teacher outputs per example id (a float record: the logit, then the mapped hidden states and attention probabilities of the
/// example's valid tokens), computed once and read back in later epochs. Up to <see cref="BudgetBytes"/> of records live in
/// memory; past the budget a record spills to a temporary file in the spill directory (deleted on dispose) or, without one, is
/// refused: the caller recomputes it whenever it is needed. The first spill and the first refusal are announced through the
/// log callback, and <see cref="Describe"/> reports the state. Not thread-safe (one training loop owns it).
/// </summary>
public sealed class TeacherCache : IDisposable
{
    private readonly float[]?[] _memory;
    private readonly long[] _spillOffset;      // -1 = not spilled
    private readonly int[] _spillLength;
    private readonly bool[] _refused;
    private readonly string? _spillDir;
    private readonly Action<string>? _log;
    private FileStream? _spill;
    private SafeFileHandle? _handle;
    private long _spillEnd;
    private bool _announcedSpill, _announcedRefusal;

    /// <summary>Examples the cache can hold (ids in [0, Capacity)).</summary>
    public int Capacity => _memory.Length;
    /// <summary>Bytes of records allowed in memory.</summary>
    public long BudgetBytes { get; }
    /// <summary>Bytes of records in memory.</summary>
    public long BytesInMemory { get; private set; }
    /// <summary>Bytes of records in the spill file.</summary>
    public long BytesSpilled => _spillEnd;
    /// <summary>Examples whose record is in memory.</summary>
    public int InMemory { get; private set; }
    /// <summary>Examples whose record is in the spill file.</summary>
    public int Spilled { get; private set; }
    /// <summary>Distinct examples refused for lack of memory (no spill directory): recomputed when needed.</summary>
    public int Refused { get; private set; }
    /// <summary>Records served from the cache.</summary>
    public long Hits { get; private set; }
    /// <summary>The spill file, or null while nothing has spilled.</summary>
    public string? SpillPath => _spill?.Name;

    /// <summary>A cache for example ids in [0, <paramref name="capacity"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">capacity or budget negative.</exception>
    /// <exception cref="DirectoryNotFoundException">the spill directory does not exist.</exception>
    public TeacherCache(int capacity, long budgetBytes, string? spillDirectory = null, Action<string>? log = null)
    {
        if (capacity < 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"capacity must be >= 0, got {capacity}");
        if (budgetBytes < 0) throw new ArgumentOutOfRangeException(nameof(budgetBytes), budgetBytes, $"budget must be >= 0 bytes, got {budgetBytes}");
        if (spillDirectory is not null && !Directory.Exists(spillDirectory))
            throw new DirectoryNotFoundException($"teacher cache spill directory '{spillDirectory}' does not exist");
        _memory = new float[capacity][];
        _spillOffset = new long[capacity];
        Array.Fill(_spillOffset, -1L);
        _spillLength = new int[capacity];
        _refused = new bool[capacity];
        BudgetBytes = budgetBytes;
        _spillDir = spillDirectory;
        _log = log;
    }

    private void CheckId(int id)
    {
        if ((uint)id >= (uint)_memory.Length)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"example id {id} is outside the cache's [0, {_memory.Length})");
    }

    /// <summary>Whether example <paramref name="id"/>'s record is cached (in memory or spilled).</summary>
    public bool Contains(int id)
    {
        CheckId(id);
        return _memory[id] is not null || _spillOffset[id] >= 0;
    }

    /// <summary>Floats in example <paramref name="id"/>'s record (it must be cached).</summary>
    public int Length(int id)
    {
        CheckId(id);
        if (_memory[id] is { } m) return m.Length;
        if (_spillOffset[id] >= 0) return _spillLength[id];
        throw new KeyNotFoundException($"example {id} is not in the teacher cache");
    }

    /// <summary>Copies example <paramref name="id"/>'s record into <paramref name="dst"/> (exactly <see cref="Length"/> floats).</summary>
    public void Read(int id, Span<float> dst)
    {
        int n = Length(id);
        if (dst.Length != n) throw new ArgumentException($"dst: example {id}'s record holds {n} floats, got a span of {dst.Length}", nameof(dst));
        if (_memory[id] is { } m) m.CopyTo(dst);
        else
        {
            var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(dst);
            int got = RandomAccess.Read(_handle!, bytes, _spillOffset[id]);
            if (got != bytes.Length) throw new IOException($"teacher cache spill file '{SpillPath}': short read of example {id} ({got} of {bytes.Length} bytes)");
        }
        Hits++;
    }

    /// <summary>
    /// Stores example <paramref name="id"/>'s record (replacing none: a cached id is left as is). In memory while the budget
    /// allows, else spilled, else refused. Returns whether it is now cached.
    /// </summary>
    public bool Store(int id, ReadOnlySpan<float> record)
    {
        CheckId(id);
        if (Contains(id)) return true;
        long bytes = (long)record.Length * sizeof(float);
        if (BytesInMemory + bytes <= BudgetBytes)
        {
            _memory[id] = record.ToArray();
            BytesInMemory += bytes;
            InMemory++;
            return true;
        }
        if (_spillDir is not null)
        {
            if (_spill is null)
            {
                string path = Path.Combine(_spillDir, $"fastrec-teacher-{Environment.ProcessId}-{Guid.NewGuid():N}.cache");
                _spill = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose | FileOptions.RandomAccess);
                _handle = _spill.SafeFileHandle;
            }
            if (!_announcedSpill)
            {
                _announcedSpill = true;
                _log?.Invoke($"teacher cache: the memory budget of {Mib(BudgetBytes)} is full after {InMemory:N0} examples; " +
                             $"further teacher outputs spill to {_spill.Name}");
            }
            RandomAccess.Write(_handle!, System.Runtime.InteropServices.MemoryMarshal.AsBytes(record), _spillEnd);
            _spillOffset[id] = _spillEnd;
            _spillLength[id] = record.Length;
            _spillEnd += bytes;
            Spilled++;
            return true;
        }
        if (!_refused[id])
        {
            _refused[id] = true;
            Refused++;
        }
        if (!_announcedRefusal)
        {
            _announcedRefusal = true;
            _log?.Invoke($"teacher cache: the memory budget of {Mib(BudgetBytes)} is full after {InMemory:N0} examples and no spill " +
                         "directory is set; the teacher is re-run for batches with uncached examples (raise the budget or set a spill directory)");
        }
        return false;
    }

    private static string Mib(long bytes) => (bytes / 1048576.0).ToString("0.#", CultureInfo.InvariantCulture) + " MiB";

    /// <summary>One line: examples in memory / spilled / refused, bytes, hits.</summary>
    public string Describe() =>
        $"teacher cache: {InMemory:N0} examples in memory ({Mib(BytesInMemory)} of {Mib(BudgetBytes)}), {Spilled:N0} spilled" +
        (Spilled > 0 ? $" ({Mib(BytesSpilled)} in {SpillPath})" : "") + $", {Refused:N0} refused, {Hits:N0} hits";

    /// <summary>Drops every record and deletes the spill file.</summary>
    public void Dispose()
    {
        _spill?.Dispose();
        _spill = null;
        _handle = null;
        Array.Clear(_memory);
    }
}
