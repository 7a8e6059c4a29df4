// CRC-32C (Castagnoli) by table, and the masked form TFRecord files (TensorBoard event files) store.
namespace FastRec.Engine.Training;

/// <summary>
/// CRC-32C, the Castagnoli polynomial (reflected 0x82F63B78, initial value and final xor 0xFFFFFFFF), one byte per table
/// step. Check value: CRC-32C("123456789") = 0xE3069283. (System.IO.Hashing 10 has CRC-32 and CRC-64 but not this
/// polynomial; an event file's records are short, so a byte-wise table is fast enough.)
/// </summary>
public static class Crc32C
{
    private static readonly uint[] s_table = Table();

    private static uint[] Table()
    {
        var t = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0x82F63B78u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }

    /// <summary>CRC-32C of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data) c = s_table[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    /// <summary>The masked CRC of TFRecord framing: ((crc &gt;&gt; 15) | (crc &lt;&lt; 17)) + 0xA282EAD8 (mod 2^32), so a CRC stored
    /// inside checksummed data does not checksum to a fixed value.</summary>
    public static uint Mask(uint crc) => unchecked(((crc >> 15) | (crc << 17)) + 0xA282EAD8u);

    /// <summary><see cref="Mask"/> of <see cref="Compute"/>.</summary>
    public static uint Masked(ReadOnlySpan<byte> data) => Mask(Compute(data));
}
