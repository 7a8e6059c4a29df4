// TowerScorer on disk: one little-endian binary file (header, weights, item table, optional catalogue ids and texts, SHA-256).
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using FastRec.Engine.Weights;

namespace FastRec.Engine.Representations;

/// <summary>What <see cref="TowerScorer.LoadFile"/> reads: the scorer, the catalogue's item ids and texts (null when saved
/// without them) and the free-text info saved with it (empty when none).</summary>
public sealed record TowerScorerFile(TowerScorer Scorer, string[]? ItemIds, string[]? ItemTexts, string Info);

public sealed partial class TowerScorer
{
    private static ReadOnlySpan<byte> FileMagic => "FRTS"u8;
    /// <summary>The format version <see cref="Save(string, IReadOnlyList{string}?, IReadOnlyList{string}?, string?)"/> writes and <see cref="Load"/> reads.</summary>
    public const int FileVersion = 1;
    private const int HashBytes = ChecksummedFile.HashBytes, HeaderInts = 7;
    private const int FixedHeader = 4 + 4 + 4 * HeaderInts;   // magic, version, (F, V, d, D, H, O, N)

    /// <summary>Writes the scorer alone (no catalogue ids or texts): see the overload.</summary>
    public void Save(string path) => Save(path, null, null, null);

    /// <summary>
    /// Writes the scorer to one file, atomically (a temp file beside <paramref name="path"/>, flushed, then renamed over
    /// it): little-endian "FRTS" | version (int32) | F, V, d, D, H, O, N (int32) | prior (float64) | feature mean, std
    /// (F float64 each) | the weights (float32: P (d, D), p_b (d), e (2, d), W₁ (H, In), b₁ (H), W₂ (O, H), b₂ (O),
    /// W_w (O, F), b_w (O)) | item vectors (V, d) | item features (V, F − 2) | catalogue count (int32: 0 or V) and per
    /// item its id and text (int32 byte length + UTF-8 each) | info (int32 byte length + UTF-8) | SHA-256 of all the
    /// bytes before it. Every value is stored bit for bit, so a loaded scorer's scores equal this one's exactly.
    /// </summary>
    /// <param name="path">The file to write (replaced when it exists; the caller decides whether that is allowed).</param>
    /// <param name="itemIds">The catalogue's item ids in item order (V of them), or null; needs <paramref name="itemTexts"/>.</param>
    /// <param name="itemTexts">The items' texts (V), or null (with <paramref name="itemIds"/> null).</param>
    /// <param name="info">Free text stored with the scorer (e.g. JSON saying how it was trained), or null.</param>
    public void Save(string path, IReadOnlyList<string>? itemIds, IReadOnlyList<string>? itemTexts, string? info = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        if ((itemIds is null) != (itemTexts is null)) throw new ArgumentException("itemIds and itemTexts: give both or neither");
        if (itemIds is not null && itemIds.Count != ItemCount) throw new ArgumentException($"itemIds: {itemIds.Count} ids for {ItemCount} items", nameof(itemIds));
        if (itemTexts is not null && itemTexts.Count != ItemCount) throw new ArgumentException($"itemTexts: {itemTexts.Count} texts for {ItemCount} items", nameof(itemTexts));
        if (itemIds is not null)
        {
            var seen = new HashSet<string>(ItemCount, StringComparer.Ordinal);
            for (int i = 0; i < ItemCount; i++)
            {
                if (itemIds[i] is not { } id) throw new ArgumentException($"itemIds[{i}] is null", nameof(itemIds));
                if (!seen.Add(id)) throw new ArgumentException($"itemIds: the id '{id}' appears twice (items {itemIds.ToList().IndexOf(id)} and {i})", nameof(itemIds));
                if (itemTexts![i] is null) throw new ArgumentException($"itemTexts[{i}] is null", nameof(itemTexts));
            }
        }
        var w = _w;
        AtomicFile.Write(path, stream =>
        {
            using var o = new ChecksummedWriter(stream);
            o.Bytes(FileMagic);
            foreach (int x in new[] { FileVersion, F, ItemCount, w.d, w.D, w.H, w.O, w.N }) o.Int(x);
            o.Double(w.Prior);
            foreach (double x in w.Mean) o.Double(x);
            foreach (double x in w.Std) o.Double(x);
            foreach (var a in new[] { w.Proj, w.ProjBias, w.E, w.W1, w.B1, w.W2, w.B2, w.Ww, w.Bw, _vall, _itemFeat }) o.Floats(a);
            o.Int(itemIds?.Count ?? 0);
            for (int i = 0; i < (itemIds?.Count ?? 0); i++)
            {
                o.String(itemIds![i]);
                o.String(itemTexts![i]);
            }
            o.String(info ?? "");
            o.Finish();
        });
    }

    /// <summary>The scorer saved in <paramref name="path"/> (see <see cref="LoadFile"/>).</summary>
    /// <exception cref="InvalidDataException">the file is not a valid tower scorer file (the message names the file and the problem).</exception>
    public static TowerScorer Load(string path) => LoadFile(path).Scorer;

    /// <summary>
    /// Reads a file written by <see cref="Save(string, IReadOnlyList{string}?, IReadOnlyList{string}?, string?)"/>: the
    /// scorer with its catalogue and info. The whole file is checked before anything is used: magic, version, shapes, exact
    /// length, checksum, finite weights, vectors and features, positive feature scales, a prior in [0, 1].
    /// </summary>
    /// <exception cref="FileNotFoundException">no such file.</exception>
    /// <exception cref="InvalidDataException">a truncated or corrupt file, wrong magic or version, a checksum mismatch, a
    /// non-finite value, bad shapes (the message names the file and the problem).</exception>
    public static TowerScorerFile LoadFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] b = File.ReadAllBytes(path);
        try { return Parse(b); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }

    private static TowerScorerFile Parse(byte[] b)
    {
        if (b.Length < FixedHeader + HashBytes)
            throw new InvalidDataException($"not a tower scorer file: {b.Length} bytes, shorter than the smallest valid file ({FixedHeader + HashBytes}); truncated?");
        if (!b.AsSpan(0, 4).SequenceEqual(FileMagic))
            throw new InvalidDataException($"not a tower scorer file (magic '{Encoding.ASCII.GetString(b, 0, 4).ReplaceLineEndings(" ")}', expected 'FRTS')");
        var r = new ChecksummedReader(b, 4);
        int version = r.Int();
        if (version != FileVersion) throw new InvalidDataException($"format version {version}; this build reads version {FileVersion}");
        int f = r.Int(), V = r.Int(), d = r.Int(), D = r.Int(), H = r.Int(), O = r.Int(), N = r.Int();
        if (f != F) throw new InvalidDataException($"holds {f} dense features per item; this build's model computes {F}");
        Range(V, 0, int.MaxValue, "item count V"); Range(d, 1, 1024, "tower width d"); Range(D, 1, 65536, "encoding width D");
        Range(H, 1, 4096, "hidden width H"); Range(O, 1, 2, "output count O"); Range(N, 1, 1000, "history length N");
        int In = TowerMath.InputWidth(d);
        long weights = (long)d * D + d + 2 * d + (long)H * In + H + O * H + O + O * F + O;
        long minimum = FixedHeader + 8 + 16L * F + 4 * (weights + (long)V * d + (long)V * ItemF) + 4 + 4 + HashBytes;
        if ((long)V * d > Array.MaxLength || (long)V * ItemF > Array.MaxLength) throw new InvalidDataException($"{V} items of width {d} do not fit in one array");
        if (b.LongLength < minimum) throw new InvalidDataException($"truncated: {b.LongLength} bytes, but its shapes (V {V}, d {d}, D {D}, H {H}) need at least {minimum}");
        if (!ChecksummedFile.Verify(b))
            throw new InvalidDataException("fails its SHA-256 checksum: the file is corrupt or truncated");

        double prior = r.Double();
        if (!(prior >= 0 && prior <= 1)) throw new InvalidDataException($"prior is {prior}, not in [0, 1]");
        var mean = new double[F]; var std = new double[F];
        for (int c = 0; c < F; c++) { mean[c] = r.Double(); if (!double.IsFinite(mean[c])) throw new InvalidDataException($"feature mean[{c}] is {mean[c]}"); }
        for (int c = 0; c < F; c++) { std[c] = r.Double(); if (!(std[c] > 0 && double.IsFinite(std[c]))) throw new InvalidDataException($"feature std[{c}] is {std[c]}; it must be finite and > 0"); }
        var proj = r.Floats(d * D, "weights P"); var projBias = r.Floats(d, "weights p_b"); var e = r.Floats(2 * d, "weights e");
        var w1 = r.Floats(H * In, "weights W1"); var b1 = r.Floats(H, "weights b1"); var w2 = r.Floats(O * H, "weights W2");
        var b2 = r.Floats(O, "weights b2"); var ww = r.Floats(O * F, "weights W_w"); var bw = r.Floats(O, "weights b_w");
        var vall = r.Floats(V * d, "item vectors"); var feat = r.Floats(V * ItemF, "item features");
        int count = r.Int();
        if (count != 0 && count != V) throw new InvalidDataException($"holds {count} catalogue entries for {V} items (expected 0 or {V})");
        string[]? ids = count == 0 ? null : new string[V], texts = count == 0 ? null : new string[V];
        for (int i = 0; i < count; i++) { ids![i] = r.String($"item {i}'s id"); texts![i] = r.String($"item {i}'s text"); }
        string info = r.String("info");
        if (r.Position != b.Length - HashBytes) throw new InvalidDataException($"has {b.Length - HashBytes - r.Position} bytes after its last section");
        if (ids is not null)
        {
            var seen = new HashSet<string>(V, StringComparer.Ordinal);
            foreach (var id in ids) if (!seen.Add(id)) throw new InvalidDataException($"the item id '{id}' appears twice in the catalogue");
        }
        var shared = new Shared(d, D, H, O, N, proj, projBias, e, w1, b1, w2, b2, ww, bw, mean, std, prior);
        return new TowerScorerFile(new TowerScorer(shared, vall, feat), ids, texts, info);
    }

    private static void Range(int x, int lo, int hi, string what)
    {
        if (x < lo || x > hi) throw new InvalidDataException($"{what} is {x}, outside [{lo}, {hi}]");
    }
}
