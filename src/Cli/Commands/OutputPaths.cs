// Output paths checked before any work (so a finished run is never lost to a bad --out), and a save that says where the weights went.
using System.Text.Json.Nodes;
using FastRec.Engine.Training;

namespace FastRec.Cli.Commands;

internal static class OutputPaths
{
    /// <summary>A checkpoint directory to be (re)written: not a file, not a directory of other files (a save replaces
    /// the whole directory), and its parent writable (the save writes DIR.tmp beside it).</summary>
    public static void CheckpointDir(string path, string flag)
    {
        string full = Full(path, flag);
        if (File.Exists(full)) throw new ArgumentException($"{flag} {path}: is an existing file; give a directory for the checkpoint");
        if (Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any() && !File.Exists(Path.Combine(full, Checkpoint.InfoFile)))
            throw new ArgumentException($"{flag} {path}: the directory holds files but no FastRec checkpoint, and a save replaces the whole directory; give a new or empty directory");
        Writable(Path.GetDirectoryName(full) ?? full, path, flag);
    }

    /// <summary>A directory that files will be written into (a report): created now, and writable.</summary>
    public static void Dir(string path, string flag)
    {
        string full = Full(path, flag);
        if (File.Exists(full)) throw new ArgumentException($"{flag} {path}: is an existing file; give a directory");
        Writable(full, path, flag);
    }

    /// <summary>A file to be written: not a directory, its folder writable.</summary>
    public static void OutFile(string path, string flag)
    {
        string full = Full(path, flag);
        if (Directory.Exists(full)) throw new ArgumentException($"{flag} {path}: is a directory; give a file name");
        Writable(Path.GetDirectoryName(full) ?? full, path, flag);
    }

    private static string Full(string path, string flag)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException($"{flag} is empty; give a path");
        try { return Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new ArgumentException($"{flag} {path}: not a valid path ({CliRun.OneLine(e)})", e);
        }
    }

    /// <summary>Creates <paramref name="dir"/> if needed and writes (then deletes) a probe file in it.</summary>
    private static void Writable(string dir, string path, string flag)
    {
        try
        {
            Directory.CreateDirectory(dir);
            string probe = Path.Combine(dir, $".fastrec-write-test-{Environment.ProcessId}-{Guid.NewGuid():N}");
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"{flag} {path}: cannot write in {dir} ({CliRun.OneLine(e)})", e);
        }
    }

    /// <summary>
    /// <see cref="Checkpoint.Save"/> into <paramref name="dir"/>. When that fails after the work is done, the weights are
    /// not lost: a complete DIR.tmp is named, or else they are saved into a fresh folder under the temp directory; the
    /// <see cref="CheckpointSaveException"/> says where (and carries <paramref name="result"/> for --json).
    /// </summary>
    public static void SaveCheckpoint(Recommender rec, string dir, string flag, TrainingState? state, TrainerOptions? options, JsonObject? metrics, JsonObject? result = null)
    {
        var started = DateTime.UtcNow.AddSeconds(-2);   // file times are coarse on some file systems
        try { Checkpoint.Save(rec, dir, state, options, metrics); return; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            string tmp = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar) + ".tmp", tmpInfo = Path.Combine(tmp, Checkpoint.InfoFile);
            string where;
            // fastrec.json is written last: in DIR.tmp and written by this save, it marks a complete checkpoint.
            if (File.Exists(tmpInfo) && File.GetLastWriteTimeUtc(tmpInfo) >= started) where = $"the complete checkpoint is in {tmp} (move it to {dir})";
            else
            {
                string rescue = Path.Combine(Path.GetTempPath(), $"fastrec-rescue-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}");
                try
                {
                    Checkpoint.Save(rec, rescue, state, options, metrics);
                    where = $"the checkpoint was saved to {rescue} instead";
                }
                catch (Exception e2) when (e2 is IOException or UnauthorizedAccessException)
                {
                    where = $"saving it to {rescue} failed too ({CliRun.OneLine(e2)}); the weights are lost";
                }
            }
            throw new CheckpointSaveException($"{flag} {dir}: the checkpoint could not be saved ({CliRun.OneLine(e)}); {where}", result, e);
        }
    }
}
