// Little-endian binary files that end in the SHA-256 of everything before it: a writer that hashes as it writes, a
// bounds-checked reader, and the check of the trailing hash. The tower scorer file and the tower training checkpoint use them.
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace FastRec.Engine.Weights;

/// <summary>The trailing SHA-256 of a checksummed file.</summary>
internal static class ChecksummedFile
{
    /// <summary>Bytes of the trailing hash.</summary>
    public const int HashBytes = 32;

    /// <summary>Whether the last <see cref="HashBytes"/> of <paramref name="b"/> are the SHA-256 of the rest.</summary>
    public static bool Verify(byte[] b) =>
        b.Length >= HashBytes && SHA256.HashData(b.AsSpan(0, b.Length - HashBytes)).AsSpan().SequenceEqual(b.AsSpan(b.Length - HashBytes));
}

/// <summary>Bounds-checked little-endian reads of a checked buffer; every failure is an <see cref="InvalidDataException"/>.</summary>
internal sealed class ChecksummedReader(byte[] b, int position)
{
    public int Position { get; private set; } = position;

    private ReadOnlySpan<byte> Take(long n, string what)
    {
        if (n < 0 || n > b.Length - ChecksummedFile.HashBytes - Position)
            throw new InvalidDataException($"{what} ({n} bytes at offset {Position}) runs past the end of the data");
        var s = b.AsSpan(Position, (int)n);
        Position += (int)n;
        return s;
    }

    /// <summary>The next <paramref name="n"/> bytes.</summary>
    public ReadOnlySpan<byte> Bytes(int n, string what) => Take(n, what);

    public int Int() => BinaryPrimitives.ReadInt32LittleEndian(Take(4, "an int32"));
    public double Double() => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, "a float64"));

    /// <summary>n float32 values, each finite.</summary>
    public float[] Floats(long n, string what)
    {
        var a = new float[n];
        FloatFormats.BytesToF32(Take(4 * n, what), a);
        for (long i = 0; i < n; i++)
            if (!float.IsFinite(a[i])) throw new InvalidDataException($"{what}[{i}] is {a[i]}; every stored value must be finite");
        return a;
    }

    public string String(string what)
    {
        int n = Int();
        try { return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(Take(n, what)); }
        catch (DecoderFallbackException) { throw new InvalidDataException($"{what} is not valid UTF-8"); }
    }
}

/// <summary>Writes little-endian values to a stream and hashes them; <see cref="Finish"/> appends the SHA-256.</summary>
internal sealed class ChecksummedWriter(Stream s) : IDisposable
{
    private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly byte[] _buf = new byte[1 << 16];

    public void Bytes(ReadOnlySpan<byte> x) { _sha.AppendData(x); s.Write(x); }
    public void Int(int x) { Span<byte> t = stackalloc byte[4]; BinaryPrimitives.WriteInt32LittleEndian(t, x); Bytes(t); }
    public void Double(double x) { Span<byte> t = stackalloc byte[8]; BinaryPrimitives.WriteDoubleLittleEndian(t, x); Bytes(t); }

    public void Floats(ReadOnlySpan<float> x)
    {
        for (int at = 0; at < x.Length; at += _buf.Length / 4)
        {
            int n = Math.Min(_buf.Length / 4, x.Length - at);
            FloatFormats.F32ToBytes(x.Slice(at, n), _buf);
            Bytes(_buf.AsSpan(0, 4 * n));
        }
    }

    public void String(string x)
    {
        var bytes = Encoding.UTF8.GetBytes(x);
        Int(bytes.Length);
        Bytes(bytes);
    }

    public void Finish() => s.Write(_sha.GetHashAndReset());

    public void Dispose() => _sha.Dispose();
}
