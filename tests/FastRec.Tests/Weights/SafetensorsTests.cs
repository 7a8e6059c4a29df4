// Safetensors reader/writer: round trip, F16/BF16 decoding, every malformed-file case, and a header fuzz.
using System.Buffers.Binary;
using System.Text;
using FastRec.Engine.Weights;
using FastRec.Tests.Kernels;

namespace FastRec.Tests.Weights;

public class SafetensorsTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("fastrec-st-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    /// <summary>A file: 8-byte length, the JSON text as given, then <paramref name="data"/>.</summary>
    internal static byte[] RawFile(string json, byte[] data, ulong? headerLength = null)
    {
        var h = Encoding.UTF8.GetBytes(json);
        var f = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(f, headerLength ?? (ulong)h.Length);
        h.CopyTo(f, 8);
        data.CopyTo(f, 8 + h.Length);
        return f;
    }

    private string Write(string name, byte[] bytes) { var p = PathOf(name); File.WriteAllBytes(p, bytes); return p; }

    private static SafetensorsFormatException OpenFails(string path)
    {
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose())!;
        Assert.That(e.Message, Does.Contain(path), "the message names the file");
        return e;
    }

    [Test]
    public void RoundTripIsBitIdenticalIncludingSpecialValues()
    {
        var a = TestUtil.Random(7 * 33, 1);
        a[0] = float.NaN; a[1] = float.NegativeInfinity; a[2] = -0f; a[3] = float.Epsilon; a[4] = float.MaxValue;
        var b = TestUtil.Random(5, 2);
        var p = PathOf("m.safetensors");
        SafetensorsWriter.Write(p,
            [new("layer.a", [7, 33], () => a), new("b", [5], () => b), new("empty", [0, 3], () => Array.Empty<float>())],
            new Dictionary<string, string> { ["format"] = "pt", ["note"] = "x" });
        using var f = SafetensorsFile.Open(p);
        Assert.That(f.Tensors.Select(t => t.Name), Is.EqualTo(new[] { "layer.a", "b", "empty" }));
        Assert.That(f.Info("layer.a").Shape, Is.EqualTo(new long[] { 7, 33 }));
        Assert.That(f.Metadata["note"], Is.EqualTo("x"));
        Assert.That(f.Header.DataStart % 8, Is.EqualTo(0), "header padded to 8 bytes");
        var ra = f.ReadF32("layer.a");
        for (int i = 0; i < a.Length; i++)
            Assert.That(BitConverter.SingleToInt32Bits(ra[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(a[i])), $"element {i}");
        Assert.That(f.ReadF32("b"), Is.EqualTo(b));
        Assert.That(f.ReadF32("empty"), Is.Empty);
        Assert.That(Directory.GetFiles(_dir), Has.Length.EqualTo(1), "no temp file left behind");
    }

    [Test]
    public void F16AndBF16DecodeToTheExactFloatValues()
    {
        // Hand-written bit patterns, so the test does not depend on our own encoder.
        ushort[] f16 = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00, 0x3555, 0x8000];
        float[] f16Want = [1f, -2f, 65504f, MathF.Pow(2, -24), float.PositiveInfinity, 0.333251953125f, -0f];
        ushort[] bf16 = [0x3F80, 0xC049, 0x0001, 0xFF80, 0x4780];
        float[] bf16Want = [1f, -3.140625f, BitConverter.Int32BitsToSingle(0x00010000), float.NegativeInfinity, 65536f];
        var data = new byte[2 * (f16.Length + bf16.Length)];
        for (int i = 0; i < f16.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(2 * i), f16[i]);
        for (int i = 0; i < bf16.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(2 * (f16.Length + i)), bf16[i]);
        string json = $"{{\"h\":{{\"dtype\":\"F16\",\"shape\":[{f16.Length}],\"data_offsets\":[0,{2 * f16.Length}]}}," +
                      $"\"bf\":{{\"dtype\":\"BF16\",\"shape\":[{bf16.Length}],\"data_offsets\":[{2 * f16.Length},{data.Length}]}}}}";
        using var f = SafetensorsFile.Open(Write("half.safetensors", RawFile(json, data)));
        var h = f.ReadF32("h");
        for (int i = 0; i < f16.Length; i++)
            Assert.That(BitConverter.SingleToInt32Bits(h[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(f16Want[i])), $"F16 0x{f16[i]:X4}");
        Assert.That(f.ReadF32("bf"), Is.EqualTo(bf16Want));
    }

    [Test]
    public void WriterRoundsToF16AndBF16NearestEven()
    {
        float[] v = [1f, 1.00048828125f /* 1 + 2^-11: F16 tie -> even (1.0) */, 1.00390625f /* 1 + 2^-8: BF16 tie -> even (1.0) */, 3.3f, -0.1f];
        var p = PathOf("r.safetensors");
        SafetensorsWriter.Write(p, [new("h", [5], () => v, SafetensorsDType.F16), new("b", [5], () => v, SafetensorsDType.BF16)]);
        using var f = SafetensorsFile.Open(p);
        Assert.That(f.Info("h").DType, Is.EqualTo(SafetensorsDType.F16));
        Assert.That(f.ReadF32("h"), Is.EqualTo(v.Select(x => (float)(Half)x).ToArray()));
        Assert.That(f.ReadF32("h")[1], Is.EqualTo(1f));
        var b = f.ReadF32("b");
        Assert.That(b[2], Is.EqualTo(1f));
        Assert.That(b[3], Is.EqualTo(3.296875f));   // 0x4053
        Assert.That(b[4], Is.EqualTo(-0.10009765625f)); // 0xBDCD
    }

    [Test]
    public void SymlinkedFileIsReadThroughTheLink()
    {
        // Hugging Face hub caches are links into a blob store: the size is the target's, not the link's.
        var v = TestUtil.Random(300, 3);
        string target = PathOf("blob");
        SafetensorsWriter.Write(target, [new("w", [300], () => v)]);
        string link = PathOf("model.safetensors");
        File.CreateSymbolicLink(link, target);
        Assert.That(new FileInfo(link).Length, Is.LessThan(new FileInfo(target).Length), "the link itself is shorter than the file");
        using var f = SafetensorsFile.Open(link);
        Assert.That(f.ReadF32("w"), Is.EqualTo(v));
        // A dangling link is a missing file.
        File.Delete(target);
        Assert.Throws<FileNotFoundException>(() => SafetensorsFile.Open(link).Dispose());
    }

    [Test]
    public void TruncatedFileIsRefused()
    {
        var e = OpenFails(Write("t.safetensors", [1, 0, 0]));
        Assert.That(e.Message, Does.Contain("truncated"));
    }

    [Test]
    public void HeaderLengthLargerThanFileIsRefused()
    {
        var e = OpenFails(Write("h.safetensors", RawFile("{}", [], headerLength: 1000)));
        Assert.That(e.Message, Does.Contain("header length 1000").And.Contain("larger than the file"));
    }

    [Test]
    public void TruncatedDataIsRefusedNamingTheTensor()
    {
        var full = RawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[16]);
        var e = OpenFails(Write("d.safetensors", full[..^4]));
        Assert.That(e.TensorName, Is.EqualTo("w"));
        Assert.That(e.Message, Does.Contain("'w'").And.Contain("outside the data section of 12 bytes"));
    }

    [Test]
    public void MalformedJsonIsRefused()
    {
        var e = OpenFails(Write("j.safetensors", RawFile("{\"w\":{\"dtype\":\"F32\",", new byte[4])));
        Assert.That(e.Message, Does.Contain("not valid JSON"));
        var e2 = OpenFails(Write("j2.safetensors", RawFile("[1,2]", [])));
        Assert.That(e2.Message, Does.Contain("must be an object"));
    }

    [Test]
    public void OffsetsOutsideTheDataAreRefused()
    {
        var e = OpenFails(Write("o.safetensors", RawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", new byte[8])));
        Assert.That(e.Message, Does.Contain("'w'").And.Contain("[8, 16)").And.Contain("outside"));
    }

    [Test]
    public void OverlappingOffsetsAreRefused()
    {
        string json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        var e = OpenFails(Write("ov.safetensors", RawFile(json, new byte[12])));
        Assert.That(e.Message, Does.Contain("overlap").And.Contain("'a'").And.Contain("'b'"));
    }

    [Test]
    public void UnknownDtypeIsRefused()
    {
        var e = OpenFails(Write("u.safetensors", RawFile("{\"w\":{\"dtype\":\"F24\",\"shape\":[1],\"data_offsets\":[0,3]}}", new byte[3])));
        Assert.That(e.Message, Does.Contain("unknown dtype 'F24'").And.Contain("'w'"));
    }

    [Test]
    public void SizeThatDisagreesWithShapeIsRefused()
    {
        var e = OpenFails(Write("s.safetensors", RawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8])));
        Assert.That(e.Message, Does.Contain("hold 8 bytes").And.Contain("needs 12"));
    }

    [Test]
    public void DuplicateTensorIsRefused()
    {
        string json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        var e = OpenFails(Write("dup.safetensors", RawFile(json, new byte[8])));
        Assert.That(e.Message, Does.Contain("'w'").And.Contain("twice"));
    }

    [Test]
    public void IntegerTensorCannotBeReadAsWeights()
    {
        using var f = SafetensorsFile.Open(Write("i.safetensors", RawFile("{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", new byte[16])));
        var e = Assert.Throws<SafetensorsFormatException>(() => f.ReadF32("ids"))!;
        Assert.That(e.Message, Does.Contain("'ids'").And.Contain("I64").And.Contain("cannot be loaded"));
        var m = Assert.Throws<SafetensorsFormatException>(() => f.ReadF32("nope"))!;
        Assert.That(m.Message, Does.Contain("'nope'").And.Contain("missing"));
    }

    [Test]
    public void WriterRefusesDataThatDisagreesWithShapeAndLeavesNoFile()
    {
        var p = PathOf("bad.safetensors");
        var e = Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(p, [new("w", [2, 2], () => new float[3])]))!;
        Assert.That(e.Message, Does.Contain("'w'").And.Contain("needs 4 values, got 3"));
        Assert.That(Directory.GetFiles(_dir), Is.Empty, "neither the target nor a temp file");
    }

    /// <summary>Parses a whole file held in memory exactly as <see cref="SafetensorsFile.Open"/> does, then touches every tensor's bytes.</summary>
    private static void ParseAndRead(byte[] file)
    {
        long n = SafetensorsHeader.ReadHeaderLength(file, file.Length, "fuzz");
        var h = SafetensorsHeader.Parse(file.AsSpan(8, (int)n), file.Length - 8 - n, "fuzz");
        foreach (var t in h.Tensors)
        {
            // Slicing throws ArgumentOutOfRangeException (a test failure) if the validated offsets were out of range.
            var bytes = file.AsSpan((int)(h.DataStart + t.Begin), (int)(t.End - t.Begin));
            var dst = new float[t.ElementCount];
            switch (t.DType)
            {
                case SafetensorsDType.F32: FloatFormats.BytesToF32(bytes, dst); break;
                case SafetensorsDType.F16: FloatFormats.F16ToF32(bytes, dst); break;
                case SafetensorsDType.BF16: FloatFormats.BF16ToF32(bytes, dst); break;
            }
        }
    }

    [Test]
    public void FuzzedHeadersOnlyEverThrowTheFormatException()
    {
        string json = "{\"__metadata__\":{\"format\":\"pt\"},\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}," +
                      "\"a.bias\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[24,30]},\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[30,32]}}";
        var seed = RawFile(json, new byte[32]);
        ParseAndRead(seed);   // the unmutated file is valid
        var rng = new Random(12345);
        byte[] interesting = "{}[]\",:0123456789-.eE \\u\0\xff"u8.ToArray();
        int accepted = 0, refused = 0;
        for (int iter = 0; iter < 4000; iter++)
        {
            var f = (byte[])seed.Clone();
            var list = f.ToList();
            int edits = 1 + rng.Next(4);
            for (int k = 0; k < edits; k++)
            {
                int kind = rng.Next(6);
                if (list.Count == 0) list.Add(0);
                int at = rng.Next(list.Count);
                switch (kind)
                {
                    case 0: list[at] = (byte)rng.Next(256); break;                                      // random byte
                    case 1: list[at] = interesting[rng.Next(interesting.Length)]; break;                // JSON-significant byte
                    case 2: list.Insert(at, interesting[rng.Next(interesting.Length)]); break;          // insertion
                    case 3: if (list.Count > 1) list.RemoveAt(at); break;                               // deletion
                    case 4: list.RemoveRange(at, list.Count - at); break;                               // truncation
                    default:                                                                            // header length field
                        var len = new byte[8];
                        BinaryPrimitives.WriteUInt64LittleEndian(len, rng.Next(3) switch
                        {
                            0 => (ulong)rng.Next(0, 400),
                            1 => ulong.MaxValue - (ulong)rng.Next(16),
                            _ => (ulong)rng.NextInt64(),
                        });
                        while (list.Count < 8) list.Add(0);
                        for (int b = 0; b < 8; b++) list[b] = len[b];
                        break;
                }
            }
            f = list.ToArray();
            try { ParseAndRead(f); accepted++; }
            catch (SafetensorsFormatException) { refused++; }
            catch (Exception e) { Assert.Fail($"iteration {iter}: {e.GetType().Name} escaped: {e.Message}\nfile: {Convert.ToHexString(f)}"); }
        }
        Assert.That(refused, Is.GreaterThan(1000), "most mutations are caught");
        Assert.That(accepted, Is.GreaterThan(0), "some mutations (e.g. in padding or data bytes) stay valid");
    }

    [Test]
    public void FuzzedFilesOnDiskOnlyEverThrowTheFormatException()
    {
        // The memory-mapped path, on a smaller sample (file system round trips).
        var seed = RawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8]);
        var rng = new Random(7);
        for (int iter = 0; iter < 200; iter++)
        {
            var f = (byte[])seed.Clone();
            int cut = rng.Next(3) == 0 ? rng.Next(f.Length) : f.Length;
            f[rng.Next(f.Length)] = (byte)rng.Next(256);
            var p = Write($"f{iter}.safetensors", f[..cut]);
            try
            {
                using var st = SafetensorsFile.Open(p);
                foreach (var t in st.Tensors) if (t.DType is SafetensorsDType.F32) st.ReadF32(t.Name);
            }
            catch (SafetensorsFormatException) { }
            catch (Exception e) { Assert.Fail($"iteration {iter}: {e.GetType().Name} escaped: {e.Message}"); }
        }
    }
}
