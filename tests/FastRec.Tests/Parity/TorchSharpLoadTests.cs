// TorchSharp loads on this machine (the build weakened libLibTorchSharp.so's GLIBCXX_3.4.32 need) and the patch is idempotent and strict.
using System.Diagnostics;
using TorchSharp;

namespace FastRec.Tests.Parity;

public class TorchSharpLoadTests
{
    private const string Version = "GLIBCXX_3.4.32";

    [Test]
    public void TorchMatmulRunsAndIsCorrect()
    {
        using var a = torch.tensor(new float[] { 1, 2, 3, 4, 5, 6 }, new long[] { 2, 3 });
        using var b = torch.tensor(new float[] { 7, 8, 9, 10, 11, 12 }, new long[] { 3, 2 });
        using var c = torch.matmul(a, b);
        Assert.That(c.shape, Is.EqualTo(new long[] { 2, 2 }));
        Assert.That(c.data<float>().ToArray(), Is.EqualTo(new float[] { 58, 64, 139, 154 }));
    }

    [Test]
    public void OutputCopyOfLibTorchSharpHasTheVersionNeedWeak()
    {
        string lib = OutputLibTorchSharp();
        Assert.That(Elf.FindVernauxFlags(File.ReadAllBytes(lib), Version).Flags & 2, Is.EqualTo(2), $"{lib}: {Version} should carry VER_FLG_WEAK");
    }

    [Test]
    public void PatchIsIdempotentAndChangesOnlyTheFlag()
    {
        byte[] patched = File.ReadAllBytes(OutputLibTorchSharp());
        var (offset, _) = Elf.FindVernauxFlags(patched, Version);
        byte[] pristine = (byte[])patched.Clone();
        pristine[offset] &= unchecked((byte)~2); // clear VER_FLG_WEAK: what the NuGet package ships

        string dir = Directory.CreateTempSubdirectory("fastrec-elf-").FullName;
        try
        {
            string copy = Path.Combine(dir, "libLibTorchSharp.so");
            File.WriteAllBytes(copy, pristine);

            var (rc1, out1) = RunWeakenTarget(copy);
            Assert.That(rc1, Is.EqualTo(0), out1);
            Assert.That(out1, Does.Contain("set VER_FLG_WEAK on " + Version));
            byte[] once = File.ReadAllBytes(copy);
            Assert.That(once, Is.EqualTo(patched), "the first run must produce exactly the build's patched file");
            int differing = 0;
            for (int i = 0; i < once.Length; i++) if (once[i] != pristine[i]) differing++;
            Assert.That(differing, Is.EqualTo(1), "only the one flags byte may change");

            var (rc2, out2) = RunWeakenTarget(copy);
            Assert.That(rc2, Is.EqualTo(0), out2);
            Assert.That(out2, Does.Contain("already weak"));
            Assert.That(File.ReadAllBytes(copy), Is.EqualTo(once), "a second run must not change the file");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void PatchFailsTheBuildOnANonElfFile()
    {
        string dir = Directory.CreateTempSubdirectory("fastrec-elf-").FullName;
        try
        {
            string bogus = Path.Combine(dir, "libLibTorchSharp.so");
            File.WriteAllText(bogus, "this is not a shared library, just some text long enough to pass the size check........");
            var (rc, output) = RunWeakenTarget(bogus);
            Assert.That(rc, Is.Not.EqualTo(0), output);
            Assert.That(output, Does.Contain("not an ELF file"));
            Assert.That(output, Does.Contain(bogus));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void PatchFailsTheBuildWhenTheVersionIsAbsent()
    {
        string dir = Directory.CreateTempSubdirectory("fastrec-elf-").FullName;
        try
        {
            string copy = Path.Combine(dir, "libLibTorchSharp.so");
            File.Copy(OutputLibTorchSharp(), copy);
            var (rc, output) = RunWeakenTarget(copy, "GLIBCXX_9.9.99");
            Assert.That(rc, Is.Not.EqualTo(0), output);
            Assert.That(output, Does.Contain("no version need named 'GLIBCXX_9.9.99'"));
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>libLibTorchSharp.so as the build copied (and patched) it next to the tests.</summary>
    private static string OutputLibTorchSharp()
    {
        string baseDir = AppContext.BaseDirectory;
        foreach (string candidate in new[] { Path.Combine(baseDir, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"), Path.Combine(baseDir, "libLibTorchSharp.so") })
            if (File.Exists(candidate)) return candidate;
        Assert.Fail($"libLibTorchSharp.so not found under {baseDir}");
        return "";
    }

    /// <summary>Runs build/TorchSharp.targets' FastRecWeakenFiles target on one file; returns exit code and output.</summary>
    private static (int ExitCode, string Output) RunWeakenTarget(string file, string? version = null)
    {
        string targets = RepoFile("build/TorchSharp.targets");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        var psi = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { "msbuild", targets, "-t:FastRecWeakenFiles", "-p:FastRecWeakenFiles=" + file, "-nologo", "-nodeReuse:false", "-v:n" })
            psi.ArgumentList.Add(arg);
        if (version != null) psi.ArgumentList.Add("-p:FastRecWeakVersionNeed=" + version);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout + stderr.Result);
    }

    private static string RepoFile(string relative)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            string f = Path.Combine(d.FullName, relative);
            if (File.Exists(f)) return f;
        }
        Assert.Fail($"{relative} not found above {AppContext.BaseDirectory}");
        return "";
    }

    /// <summary>A second, minimal ELF64 reader (independent of the build task) to locate a Vernaux's flags.</summary>
    private static class Elf
    {
        public static (int Offset, int Flags) FindVernauxFlags(byte[] f, string name)
        {
            Assert.That(f[0] == 0x7f && f[1] == 'E' && f[2] == 'L' && f[3] == 'F' && f[4] == 2 && f[5] == 1, "ELF64 LE");
            long shoff = BitConverter.ToInt64(f, 0x28);
            int shnum = BitConverter.ToUInt16(f, 0x3C);
            for (int i = 0; i < shnum; i++)
            {
                int h = (int)(shoff + i * 64);
                if (BitConverter.ToUInt32(f, h + 4) != 0x6ffffffe) continue; // SHT_GNU_verneed
                long off = BitConverter.ToInt64(f, h + 0x18);
                int link = BitConverter.ToInt32(f, h + 0x28), count = BitConverter.ToInt32(f, h + 0x2C);
                long strOff = BitConverter.ToInt64(f, (int)(shoff + link * 64) + 0x18);
                long vn = off;
                for (int n = 0; n < count; n++)
                {
                    long aux = vn + BitConverter.ToUInt32(f, (int)vn + 8);
                    for (int k = 0; k < BitConverter.ToUInt16(f, (int)vn + 2); k++)
                    {
                        int s = (int)(strOff + BitConverter.ToUInt32(f, (int)aux + 8)), e = s;
                        while (f[e] != 0) e++;
                        if (System.Text.Encoding.ASCII.GetString(f, s, e - s) == name)
                            return ((int)aux + 4, BitConverter.ToUInt16(f, (int)aux + 4));
                        aux += BitConverter.ToUInt32(f, (int)aux + 12);
                    }
                    vn += BitConverter.ToUInt32(f, (int)vn + 12);
                }
            }
            Assert.Fail($"no Vernaux named {name}");
            return (0, 0);
        }
    }
}
