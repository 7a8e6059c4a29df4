// Atomic file writes: write a temp file in the same folder, flush it to disk, then rename over the target.
namespace FastRec.Engine.Weights;

/// <summary>Writes files so that a reader sees either the old file or the complete new one, never a half-written one.</summary>
public static class AtomicFile
{
    /// <summary>
    /// Calls <paramref name="write"/> on a temp file next to <paramref name="path"/>, flushes it to disk and renames it
    /// over <paramref name="path"/>. On failure the temp file is deleted and the target is untouched.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>Atomically writes <paramref name="text"/> (UTF-8, no BOM).</summary>
    public static void WriteText(string path, string text) =>
        Write(path, s => { var bytes = new System.Text.UTF8Encoding(false).GetBytes(text); s.Write(bytes); });

    /// <summary>Atomically copies <paramref name="source"/> to <paramref name="path"/>.</summary>
    public static void Copy(string source, string path) =>
        Write(path, s => { using var src = File.OpenRead(source); src.CopyTo(s); });
}
