// Test helpers for the data pipeline: a temporary folder of small files, and asserting an error's type and message.
namespace FastRec.Tests.Data;

/// <summary>A temporary folder deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("fastrec-data-").FullName;

    /// <summary>Writes <paramref name="lines"/> to <paramref name="name"/> and returns the full path.</summary>
    public string Write(string name, params string[] lines)
    {
        string p = System.IO.Path.Combine(Path, name);
        File.WriteAllText(p, string.Join("\n", lines) + "\n");
        return p;
    }

    public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }
}

internal static class DataAssert
{
    /// <summary>Asserts <paramref name="call"/> throws <typeparamref name="T"/> whose message contains every fragment.</summary>
    public static T Throws<T>(TestDelegate call, params string[] fragments) where T : Exception
    {
        var ex = Assert.Throws<T>(call)!;
        TestContext.Out.WriteLine($"{typeof(T).Name}: {ex.Message}");
        foreach (string f in fragments) Assert.That(ex.Message, Does.Contain(f));
        return ex;
    }
}
