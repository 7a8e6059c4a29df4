// Reads a safetensors file through a memory map: validates the header on open, then decodes one tensor at a time to F32.
using System.IO.MemoryMappedFiles;

namespace FastRec.Engine.Weights;

/// <summary>
/// A safetensors file opened by memory map. The header is parsed and validated on <see cref="Open"/>; tensor data is
/// read from the mapped pages on demand, so the model is never held twice in memory.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _base;          // start of the file in memory
    private readonly long _length;

    /// <summary>The file's path as given to <see cref="Open"/>.</summary>
    public string Path { get; }
    /// <summary>The validated header.</summary>
    public SafetensorsHeader Header { get; }
    /// <summary>Tensors in file order.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors => Header.Tensors;
    /// <summary>The <c>__metadata__</c> strings.</summary>
    public IReadOnlyDictionary<string, string> Metadata => Header.Metadata;

    private SafetensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePtr, long length)
    {
        Path = path; _map = map; _view = view; _base = basePtr; _length = length;
        try
        {
            long n = SafetensorsHeader.ReadHeaderLength(new ReadOnlySpan<byte>(_base, (int)Math.Min(8, length)), length, path);
            Header = SafetensorsHeader.Parse(new ReadOnlySpan<byte>(_base + 8, (int)n), length - 8 - n, path);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Opens and validates <paramref name="path"/>; throws <see cref="SafetensorsFormatException"/> if malformed.
    /// A symbolic link (as in Hugging Face hub caches) is followed: the size is the opened file's, not the link's.</summary>
    public static SafetensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: safetensors file not found", path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            long length = stream.Length;   // of the opened handle: a link's target
            if (length < 8)
                throw new SafetensorsFormatException(path, null, $"truncated file: {length} bytes, shorter than the 8-byte header length");
            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            return new SafetensorsFile(path, map, view, p + view.PointerOffset, length);
        }
        catch
        {
            view?.Dispose();
            if (map is null) stream.Dispose();
            else map.Dispose();
            throw;
        }
    }

    /// <summary>True when the file has a tensor of that name.</summary>
    public bool Contains(string name) => Header.ByName.ContainsKey(name);

    /// <summary>The header entry of <paramref name="name"/>; throws naming the tensor and file when absent.</summary>
    public SafetensorsTensorInfo Info(string name) =>
        Header.ByName.TryGetValue(name, out var t) ? t : throw new SafetensorsFormatException(Path, name, "missing from the file");

    /// <summary>The tensor's bytes as stored (little-endian, its own dtype). Valid until <see cref="Dispose"/>.</summary>
    public ReadOnlySpan<byte> RawBytes(string name)
    {
        var t = Info(name);
        ObjectDisposedException.ThrowIf(_base == null, this);
        long size = t.End - t.Begin;
        if (size > int.MaxValue) throw new SafetensorsFormatException(Path, name, $"tensor of {size} bytes exceeds 2 GiB");
        return new ReadOnlySpan<byte>(_base + Header.DataStart + t.Begin, (int)size);
    }

    /// <summary>Decodes tensor <paramref name="name"/> (F32, F16 or BF16) into <paramref name="dst"/> (exactly its element count).</summary>
    public void ReadF32(string name, Span<float> dst)
    {
        var t = Info(name);
        if (dst.Length != t.ElementCount)
            throw new SafetensorsFormatException(Path, name, $"has {t.ElementCount} elements {t.ShapeText}, destination holds {dst.Length}");
        var raw = RawBytes(name);
        switch (t.DType)
        {
            case SafetensorsDType.F32: FloatFormats.BytesToF32(raw, dst); break;
            case SafetensorsDType.F16: FloatFormats.F16ToF32(raw, dst); break;
            case SafetensorsDType.BF16: FloatFormats.BF16ToF32(raw, dst); break;
            default: throw new SafetensorsFormatException(Path, name, $"dtype {t.DType} cannot be loaded as weights (F32, F16 or BF16 expected)");
        }
    }

    /// <summary>Decodes tensor <paramref name="name"/> into a new array.</summary>
    public float[] ReadF32(string name)
    {
        var t = Info(name);
        if (t.ElementCount > Array.MaxLength) throw new SafetensorsFormatException(Path, name, $"{t.ElementCount} elements exceed an array");
        var a = new float[t.ElementCount];
        ReadF32(name, a);
        return a;
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        if (_base != null) { _view!.SafeMemoryMappedViewHandle.ReleasePointer(); _base = null; }
        _view?.Dispose();
        _map?.Dispose();
    }
}
