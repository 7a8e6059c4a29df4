// The disk format of cached item vectors: a small header naming the inputs' hash and the shape, raw floats, a SHA-256 trailer.
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using FastRec.Engine.Weights;

namespace FastRec.Engine.Representations;

/// <summary>
/// One <see cref="ItemVectors"/> on disk, little-endian:
/// "FRIV" | version (int32) | key (32 bytes, the hash of everything the vectors depend on) | V (int32) | D (int32) |
/// name length (int32) | name (UTF-8) | V·D float32 | SHA-256 of all the bytes before it (32).
/// Written atomically; <see cref="TryRead"/> accepts a file only when every field, the length and the checksum agree.
/// </summary>
internal static class ItemVectorFile
{
    private static ReadOnlySpan<byte> Magic => "FRIV"u8;
    private const int Version = 1, KeyBytes = 32, HashBytes = 32, MaxNameBytes = 4096;
    private const int FixedHeader = 4 + 4 + KeyBytes + 4 + 4 + 4;   // everything before the name

    /// <summary>Writes <paramref name="vectors"/> under <paramref name="key"/> to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, ReadOnlySpan<byte> key, ItemVectors vectors)
    {
        if (key.Length != KeyBytes) throw new ArgumentException($"key: expected {KeyBytes} bytes, got {key.Length}", nameof(key));
        var name = Encoding.UTF8.GetBytes(vectors.Name);
        if (name.Length > MaxNameBytes) throw new ArgumentException($"vectors.Name is {name.Length} UTF-8 bytes, more than {MaxNameBytes}");
        var header = new byte[FixedHeader + name.Length];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(4), Version);
        key.CopyTo(header.AsSpan(8));
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8 + KeyBytes), vectors.Count);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(12 + KeyBytes), vectors.Dim);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(16 + KeyBytes), name.Length);
        name.CopyTo(header.AsSpan(FixedHeader));
        var payload = new byte[4L * vectors.Values.LongLength];
        FloatFormats.F32ToBytes(vectors.Values, payload);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(header);
        sha.AppendData(payload);
        var checksum = sha.GetHashAndReset();
        AtomicFile.Write(path, s => { s.Write(header); s.Write(payload); s.Write(checksum); });
    }

    /// <summary>
    /// The vectors in <paramref name="path"/> when it is a complete, uncorrupted file made for <paramref name="key"/> with
    /// <paramref name="count"/> x <paramref name="dim"/> values; otherwise null and <paramref name="problem"/> says why.
    /// </summary>
    public static ItemVectors? TryRead(string path, ReadOnlySpan<byte> key, int count, int dim, out string? problem)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { problem = $"cannot be read ({e.Message})"; return null; }
        problem = Check(bytes, key, count, dim, out int nameLength);
        if (problem is not null) return null;
        string name = Encoding.UTF8.GetString(bytes, FixedHeader, nameLength);
        var values = new float[(long)count * dim];
        FloatFormats.BytesToF32(bytes.AsSpan(FixedHeader + nameLength, 4 * values.Length), values);
        try { return new ItemVectors(name, count, dim, values); }
        catch (ArgumentException e) { problem = $"holds invalid vectors ({e.Message})"; return null; }
    }

    private static string? Check(byte[] b, ReadOnlySpan<byte> key, int count, int dim, out int nameLength)
    {
        nameLength = 0;
        if (b.Length < FixedHeader + HashBytes) return $"is truncated: {b.Length} bytes, shorter than the smallest valid file ({FixedHeader + HashBytes})";
        if (!b.AsSpan(0, 4).SequenceEqual(Magic)) return "is not an item-vector cache file (bad magic)";
        int version = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(4));
        if (version != Version) return $"has format version {version}, expected {Version}";
        if (!b.AsSpan(8, KeyBytes).SequenceEqual(key)) return "was made for other inputs (its key differs from its name's)";
        int v = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(8 + KeyBytes)), d = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(12 + KeyBytes));
        if (v != count || d != dim) return $"holds {v} x {d} vectors, expected {count} x {dim}";
        nameLength = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(16 + KeyBytes));
        if (nameLength < 0 || nameLength > MaxNameBytes) return $"has a name length of {nameLength} bytes, outside [0, {MaxNameBytes}]";
        long expected = FixedHeader + nameLength + 4L * count * dim + HashBytes;
        if (b.LongLength != expected) return $"is {b.LongLength} bytes, expected {expected} (truncated or extended)";
        var stored = b.AsSpan(b.Length - HashBytes);
        if (!SHA256.HashData(b.AsSpan(0, b.Length - HashBytes)).AsSpan().SequenceEqual(stored)) return "fails its SHA-256 checksum (corrupt)";
        return null;
    }
}
