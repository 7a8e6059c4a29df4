// Parses and validates a safetensors header (8-byte length, JSON, then raw data): dtypes, shapes, offsets.
using System.Buffers.Binary;
using System.Text.Json;

namespace FastRec.Engine.Weights;

/// <summary>Element types of the safetensors format. Only F32, F16 and BF16 can be read as float.</summary>
public enum SafetensorsDType
{
    /// <summary>IEEE binary32.</summary>
    F32,
    /// <summary>IEEE binary16.</summary>
    F16,
    /// <summary>bfloat16 (the top half of a binary32).</summary>
    BF16,
    /// <summary>IEEE binary64 (recognised for validation; not loadable).</summary>
    F64,
    /// <summary>Integers and booleans (recognised for validation; not loadable as weights).</summary>
    I64, I32, I16, I8, U64, U32, U16, U8, BOOL,
    /// <summary>8-bit floats (recognised for validation; not loadable).</summary>
    F8_E4M3, F8_E5M2,
}

/// <summary>One tensor entry of the header. Offsets are relative to the start of the data section.</summary>
/// <param name="Name">Tensor name, e.g. <c>encoder.layer.0.attention.self.query.weight</c>.</param>
/// <param name="DType">Element type as stored.</param>
/// <param name="Shape">Dimensions (may be empty: a scalar).</param>
/// <param name="Begin">First byte in the data section.</param>
/// <param name="End">One past the last byte.</param>
public sealed record SafetensorsTensorInfo(string Name, SafetensorsDType DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements (product of the shape; 1 for a scalar).</summary>
    public long ElementCount
    {
        get { long n = 1; foreach (long d in Shape) n *= d; return n; }
    }

    /// <summary>The shape as "[a, b]".</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>The parsed header: tensors in file order, optional string metadata, and where the data section starts.</summary>
public sealed class SafetensorsHeader
{
    /// <summary>The spec's limit on the JSON header (100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>Tensors in the order of the header.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors { get; }
    /// <summary>Tensors by name.</summary>
    public IReadOnlyDictionary<string, SafetensorsTensorInfo> ByName { get; }
    /// <summary>The <c>__metadata__</c> object (string to string); empty when absent.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Byte offset of the data section in the file (8 + header length).</summary>
    public long DataStart { get; }

    private SafetensorsHeader(List<SafetensorsTensorInfo> tensors, Dictionary<string, SafetensorsTensorInfo> byName,
                              Dictionary<string, string> metadata, long dataStart)
    {
        Tensors = tensors; ByName = byName; Metadata = metadata; DataStart = dataStart;
    }

    /// <summary>Bytes per element of <paramref name="t"/>.</summary>
    public static int ElementSize(SafetensorsDType t) => t switch
    {
        SafetensorsDType.F64 or SafetensorsDType.I64 or SafetensorsDType.U64 => 8,
        SafetensorsDType.F32 or SafetensorsDType.I32 or SafetensorsDType.U32 => 4,
        SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.I16 or SafetensorsDType.U16 => 2,
        _ => 1,
    };

    /// <summary>
    /// Reads the 8-byte little-endian header length from <paramref name="prefix"/> and checks it against the file length.
    /// Returns the JSON length.
    /// </summary>
    public static long ReadHeaderLength(ReadOnlySpan<byte> prefix, long fileLength, string path)
    {
        if (fileLength < 8 || prefix.Length < 8)
            throw new SafetensorsFormatException(path, null, $"truncated file: {fileLength} bytes, shorter than the 8-byte header length");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > (ulong)(fileLength - 8))
            throw new SafetensorsFormatException(path, null, $"header length {n} is larger than the file allows ({fileLength - 8} bytes after the length field): truncated or not a safetensors file");
        if (n > MaxHeaderBytes)
            throw new SafetensorsFormatException(path, null, $"header length {n} exceeds the format's limit of {MaxHeaderBytes} bytes");
        if (n < 2)
            throw new SafetensorsFormatException(path, null, $"header length {n} is too small for a JSON object");
        return (long)n;
    }

    /// <summary>
    /// Parses and validates the JSON header. <paramref name="dataLength"/> is the size of the data section
    /// (file length - 8 - header length). Every failure is a <see cref="SafetensorsFormatException"/>.
    /// </summary>
    public static SafetensorsHeader Parse(ReadOnlySpan<byte> json, long dataLength, string path)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw new SafetensorsFormatException(path, null, $"header is not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            try
            {
                return Build(doc.RootElement, dataLength, 8 + json.Length, path);
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException or JsonException)
            {
                // Invalid UTF-8 inside a string, or a JSON value of an unexpected kind that slipped past the checks.
                throw new SafetensorsFormatException(path, null, $"header JSON is malformed: {e.Message}", e);
            }
        }
    }

    private static SafetensorsHeader Build(JsonElement root, long dataLength, long dataStart, string path)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(path, null, $"header JSON must be an object, got {root.ValueKind}");
        var tensors = new List<SafetensorsTensorInfo>();
        var byName = new Dictionary<string, SafetensorsTensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        bool sawMetadata = false;
        foreach (var prop in root.EnumerateObject())
        {
            string name = prop.Name;
            if (name == "__metadata__")
            {
                if (sawMetadata) throw new SafetensorsFormatException(path, null, "header has two __metadata__ entries");
                sawMetadata = true;
                if (prop.Value.ValueKind != JsonValueKind.Object)
                    throw new SafetensorsFormatException(path, null, "__metadata__ must be an object of strings");
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String)
                        throw new SafetensorsFormatException(path, null, $"__metadata__ entry '{m.Name}' must be a string, got {m.Value.ValueKind}");
                    metadata[m.Name] = m.Value.GetString()!;
                }
                continue;
            }
            var info = ParseTensor(name, prop.Value, dataLength, path);
            if (!byName.TryAdd(name, info))
                throw new SafetensorsFormatException(path, name, "appears twice in the header");
            tensors.Add(info);
        }

        // No two tensors may share bytes.
        var sorted = tensors.Where(t => t.End > t.Begin).OrderBy(t => t.Begin).ToArray();
        for (int i = 1; i < sorted.Length; i++)
            if (sorted[i].Begin < sorted[i - 1].End)
                throw new SafetensorsFormatException(path, sorted[i].Name,
                    $"data_offsets [{sorted[i].Begin}, {sorted[i].End}) overlap tensor '{sorted[i - 1].Name}' [{sorted[i - 1].Begin}, {sorted[i - 1].End})");
        return new SafetensorsHeader(tensors, byName, metadata, dataStart);
    }

    private static SafetensorsTensorInfo ParseTensor(string name, JsonElement e, long dataLength, string path)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(path, name, $"header entry must be an object, got {e.ValueKind}");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new SafetensorsFormatException(path, name, "header entry has no string 'dtype'");
        string dtypeText = dt.GetString()!;
        if (!TryParseDType(dtypeText, out var dtype))
            throw new SafetensorsFormatException(path, name, $"unknown dtype '{dtypeText}'");

        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new SafetensorsFormatException(path, name, "header entry has no 'shape' array");
        var shape = new long[sh.GetArrayLength()];
        long count = 1;
        int k = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0)
                throw new SafetensorsFormatException(path, name, $"shape entry {k} is not a non-negative integer: {d.GetRawText()}");
            shape[k++] = v;
            // Saturate instead of overflowing; the size check below then fails cleanly.
            count = v == 0 || count == 0 ? 0 : (count > long.MaxValue / v ? long.MaxValue : count * v);
        }

        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new SafetensorsFormatException(path, name, "header entry has no 'data_offsets' pair [begin, end]");
        long begin = ReadOffset(off[0], name, path), end = ReadOffset(off[1], name, path);
        if (end < begin)
            throw new SafetensorsFormatException(path, name, $"data_offsets [{begin}, {end}) end before they begin");
        if (end > dataLength)
            throw new SafetensorsFormatException(path, name, $"data_offsets [{begin}, {end}) lie outside the data section of {dataLength} bytes (truncated file?)");
        int size = ElementSize(dtype);
        long bytes = count > long.MaxValue / size ? long.MaxValue : count * size;
        if (bytes != end - begin)
            throw new SafetensorsFormatException(path, name,
                $"data_offsets [{begin}, {end}) hold {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtype} needs {(bytes == long.MaxValue ? "too many" : bytes.ToString())}");
        return new SafetensorsTensorInfo(name, dtype, shape, begin, end);
    }

    private static long ReadOffset(JsonElement v, string name, string path)
    {
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long x) || x < 0)
            throw new SafetensorsFormatException(path, name, $"data_offsets entry is not a non-negative integer: {v.GetRawText()}");
        return x;
    }

    /// <summary>Maps the header's dtype text ("F32", "BF16", ...) to the enum; false for anything else.</summary>
    public static bool TryParseDType(string text, out SafetensorsDType dtype)
    {
        // Enum.TryParse would also accept numbers and other casings; the format names are exact.
        foreach (var v in Enum.GetValues<SafetensorsDType>())
            if (v.ToString() == text) { dtype = v; return true; }
        dtype = default;
        return false;
    }
}
