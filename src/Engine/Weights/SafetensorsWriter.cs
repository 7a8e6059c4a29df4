// Writes a safetensors file atomically, streaming one tensor at a time (F32 by default; F16/BF16 on request).
using System.Text.Json;

namespace FastRec.Engine.Weights;

/// <summary>One tensor to write. <paramref name="Data"/> is called once, when that tensor's bytes are written.</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="Shape">Dimensions; their product must equal the data length.</param>
/// <param name="Data">Produces the values (so a model's tensors need not all be in memory at once).</param>
/// <param name="DType">Stored type: F32 (default), F16 or BF16 (rounded to nearest even).</param>
public sealed record SafetensorsEntry(string Name, int[] Shape, Func<ReadOnlyMemory<float>> Data, SafetensorsDType DType = SafetensorsDType.F32);

/// <summary>Writes safetensors files.</summary>
public static class SafetensorsWriter
{
    /// <summary>
    /// Writes <paramref name="tensors"/> (in order) and optional metadata to <paramref name="path"/> atomically
    /// (temp file in the same folder, flush, rename). The JSON header is padded with spaces to a multiple of 8 bytes.
    /// </summary>
    public static void Write(string path, IReadOnlyList<SafetensorsEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var header = new MemoryStream();
        using (var j = new Utf8JsonWriter(header))
        {
            j.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                j.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) j.WriteString(k, v);
                j.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in tensors)
            {
                if (t.Name == "__metadata__" || !names.Add(t.Name)) throw new ArgumentException($"tensor name '{t.Name}' is reserved or repeated");
                if (t.DType is not (SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16))
                    throw new ArgumentException($"tensor '{t.Name}': only F32, F16 and BF16 can be written, not {t.DType}");
                long count = 1;
                foreach (int d in t.Shape)
                {
                    if (d < 0) throw new ArgumentException($"tensor '{t.Name}': negative dimension in [{string.Join(", ", t.Shape)}]");
                    count *= d;
                }
                long bytes = count * SafetensorsHeader.ElementSize(t.DType);
                j.WriteStartObject(t.Name);
                j.WriteString("dtype", t.DType.ToString());
                j.WriteStartArray("shape");
                foreach (int d in t.Shape) j.WriteNumberValue(d);
                j.WriteEndArray();
                j.WriteStartArray("data_offsets");
                j.WriteNumberValue(offset);
                j.WriteNumberValue(offset + bytes);
                j.WriteEndArray();
                j.WriteEndObject();
                offset += bytes;
            }
            j.WriteEndObject();
        }
        int pad = (int)((8 - header.Length % 8) % 8);
        for (int i = 0; i < pad; i++) header.WriteByte((byte)' ');

        AtomicFile.Write(path, s =>
        {
            Span<byte> len = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            s.Write(len);
            header.Position = 0;
            header.CopyTo(s);
            var chunk = new byte[1 << 16];
            foreach (var t in tensors)
            {
                var data = t.Data().Span;
                long count = 1;
                foreach (int d in t.Shape) count *= d;
                if (data.Length != count)
                    throw new ArgumentException($"tensor '{t.Name}': shape [{string.Join(", ", t.Shape)}] needs {count} values, got {data.Length}");
                int size = SafetensorsHeader.ElementSize(t.DType);
                int per = chunk.Length / size;
                for (int i = 0; i < data.Length; i += per)
                {
                    var part = data.Slice(i, Math.Min(per, data.Length - i));
                    var dst = chunk.AsSpan(0, part.Length * size);
                    switch (t.DType)
                    {
                        case SafetensorsDType.F32: FloatFormats.F32ToBytes(part, dst); break;
                        case SafetensorsDType.F16: FloatFormats.F32ToF16(part, dst); break;
                        default: FloatFormats.F32ToBF16(part, dst); break;
                    }
                    s.Write(dst);
                }
            }
        });
    }
}
