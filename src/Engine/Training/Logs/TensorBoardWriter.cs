// A TensorBoard event file of scalars: TFRecord framing (length, masked CRC-32C) around Event protos (Google.Protobuf).
using System.Buffers.Binary;
using FastRec.Engine.Training.TensorBoardProto;
using Google.Protobuf;

namespace FastRec.Engine.Training;

/// <summary>
/// Writes scalars to a TensorBoard event file, <c>events.out.tfevents.&lt;unix seconds&gt;.&lt;host&gt;.&lt;pid&gt;</c> in a log
/// directory, so <c>tensorboard --logdir DIR</c> shows them. The file is a sequence of TFRecords, each
/// <c>uint64 length | uint32 masked CRC-32C(length bytes) | data | uint32 masked CRC-32C(data)</c> (little-endian, see
/// <see cref="Crc32C.Mask"/>), whose data is a serialised <c>Event</c>: the first one carries <c>file_version =
/// "brain.Event:2"</c>, the others a <c>Summary</c> of <c>simple_value</c> scalars with their tag and step. Each event is
/// flushed, so TensorBoard sees a running job's curves. Not thread-safe.
/// </summary>
public sealed class TensorBoardWriter : IDisposable
{
    /// <summary>The file_version string of the first event.</summary>
    public const string FileVersion = "brain.Event:2";
    /// <summary>The prefix TensorBoard looks for in a log directory's file names.</summary>
    public const string FilePrefix = "events.out.tfevents.";

    private readonly FileStream _file;
    private bool _disposed;

    /// <summary>The event file being written.</summary>
    public string FilePath { get; }

    /// <summary>
    /// Creates <paramref name="directory"/> if needed and a new event file in it (a name already taken gets a ".1", ".2" ...
    /// suffix), and writes the file_version event.
    /// </summary>
    /// <exception cref="IOException">the directory cannot be created or written (the message names it).</exception>
    public TensorBoardWriter(string directory)
    {
        if (string.IsNullOrWhiteSpace(directory)) throw new ArgumentException("directory is empty; give the TensorBoard log directory", nameof(directory));
        var now = DateTimeOffset.UtcNow;
        string host = string.Concat(Environment.MachineName.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '_'));
        string baseName = $"{FilePrefix}{now.ToUnixTimeSeconds()}.{host}.{Environment.ProcessId}";
        try
        {
            Directory.CreateDirectory(directory);
            string path = Path.Combine(directory, baseName);
            for (int i = 1; ; i++)
            {
                try
                {
                    _file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read, 1 << 12);
                    break;
                }
                catch (IOException) when (File.Exists(path) && i < 1000) { path = Path.Combine(directory, $"{baseName}.{i}"); }
            }
            FilePath = path;
            Write(new Event { WallTime = Seconds(now), FileVersion = FileVersion });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _file?.Dispose();
            throw new IOException($"{directory}: cannot write a TensorBoard event file there ({e.Message})", e);
        }
    }

    private static double Seconds(DateTimeOffset t) => t.ToUnixTimeMilliseconds() / 1000.0;

    /// <summary>One event at <paramref name="step"/> holding every (tag, value) pair of <paramref name="scalars"/> as a
    /// float32 <c>simple_value</c> (NaN and infinities are written as they are: TensorBoard shows them).</summary>
    public void Scalars(long step, IEnumerable<(string Tag, double Value)> scalars)
    {
        ArgumentNullException.ThrowIfNull(scalars);
        var summary = new Summary();
        foreach (var (tag, value) in scalars)
        {
            if (string.IsNullOrEmpty(tag)) throw new ArgumentException("a scalar's tag is empty", nameof(scalars));
            summary.Value.Add(new Summary.Types.Value { Tag = tag, SimpleValue = (float)value });
        }
        if (summary.Value.Count == 0) return;
        Write(new Event { WallTime = Seconds(DateTimeOffset.UtcNow), Step = step, Summary = summary });
    }

    /// <summary>One scalar at <paramref name="step"/>.</summary>
    public void Scalar(string tag, double value, long step) => Scalars(step, [(tag, value)]);

    private void Write(Event e)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _file.Write(Record(e.ToByteArray()));
        _file.Flush();
    }

    /// <summary>One TFRecord: uint64 length | uint32 masked CRC-32C of those 8 bytes | data | uint32 masked CRC-32C of data
    /// (little-endian).</summary>
    internal static byte[] Record(ReadOnlySpan<byte> data)
    {
        var r = new byte[12 + data.Length + 4];
        BinaryPrimitives.WriteUInt64LittleEndian(r, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(8), Crc32C.Masked(r.AsSpan(0, 8)));
        data.CopyTo(r.AsSpan(12));
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(12 + data.Length), Crc32C.Masked(data));
        return r;
    }

    /// <summary>Closes the file.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _file.Dispose();
    }
}
