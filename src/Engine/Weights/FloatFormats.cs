// Conversions between the stored float formats (F16, BF16) and F32, elementwise over spans.
using System.Buffers.Binary;

namespace FastRec.Engine.Weights;

/// <summary>F16/BF16 to and from F32 over little-endian byte spans.</summary>
public static class FloatFormats
{
    /// <summary>dst[i] = (float)half(src[2i..2i+2]); exact (every binary16 is a binary32).</summary>
    public static void F16ToF32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        if (src.Length != 2 * dst.Length) throw new ArgumentException($"F16 source has {src.Length} bytes, expected {2 * dst.Length}");
        for (int i = 0; i < dst.Length; i++)
            dst[i] = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(src.Slice(2 * i)));
    }

    /// <summary>dst[i] = bits(src[2i..2i+2]) &lt;&lt; 16 as a binary32; exact.</summary>
    public static void BF16ToF32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        if (src.Length != 2 * dst.Length) throw new ArgumentException($"BF16 source has {src.Length} bytes, expected {2 * dst.Length}");
        for (int i = 0; i < dst.Length; i++)
            dst[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src.Slice(2 * i)) << 16);
    }

    /// <summary>dst = F32 little-endian bytes of src.</summary>
    public static void F32ToBytes(ReadOnlySpan<float> src, Span<byte> dst)
    {
        for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(dst.Slice(4 * i), src[i]);
    }

    /// <summary>dst = little-endian F32 bytes decoded.</summary>
    public static void BytesToF32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        if (src.Length != 4 * dst.Length) throw new ArgumentException($"F32 source has {src.Length} bytes, expected {4 * dst.Length}");
        if (BitConverter.IsLittleEndian) { System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(src).CopyTo(dst); return; }
        for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src.Slice(4 * i));
    }

    /// <summary>Rounds to binary16 (nearest even, as System.Half does).</summary>
    public static void F32ToF16(ReadOnlySpan<float> src, Span<byte> dst)
    {
        for (int i = 0; i < src.Length; i++)
            BinaryPrimitives.WriteUInt16LittleEndian(dst.Slice(2 * i), BitConverter.HalfToUInt16Bits((Half)src[i]));
    }

    /// <summary>Rounds to bfloat16 (nearest even; NaN stays a quiet NaN).</summary>
    public static void F32ToBF16(ReadOnlySpan<float> src, Span<byte> dst)
    {
        for (int i = 0; i < src.Length; i++)
            BinaryPrimitives.WriteUInt16LittleEndian(dst.Slice(2 * i), ToBF16Bits(src[i]));
    }

    /// <summary>One float to bfloat16 bits, round to nearest even.</summary>
    public static ushort ToBF16Bits(float x)
    {
        uint u = BitConverter.SingleToUInt32Bits(x);
        if (float.IsNaN(x)) return (ushort)((u >> 16) | 0x0040);
        uint rounding = 0x7FFF + ((u >> 16) & 1);
        return (ushort)((u + rounding) >> 16);
    }
}
