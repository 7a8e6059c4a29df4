// The frozen-layer activation cache: the input of the first trainable encoder layer, computed once per example.
using FastRec.Engine.Data;
using FastRec.Engine.Model;

namespace FastRec.Engine.Training;

/// <summary>
/// For each example, the hidden states (real tokens only, (n_i, C)) entering encoder layer <see cref="StartLayer"/>,
/// computed once in evaluation mode (no dropout) by <see cref="RecModel.EncodeTo"/>, and reused by every epoch and every
/// evaluation: the layers below the first trainable one never change. With <see cref="StartLayer"/> = L (only the
/// pooler/head train) and a head that reads [CLS] only (<see cref="AdapterInput.Pooler"/>, <see cref="AdapterInput.Cls"/>)
/// only the [CLS] row is kept and batches run with T = 1; with <see cref="AdapterInput.Mean"/> every real row is kept.
/// <para>Consequence: the frozen layers run without dropout (as in evaluation). Without the cache they run with the
/// configured dropout; with the encoder's dropout at 0 both paths give the same losses.</para>
/// </summary>
public sealed class ActivationCache
{
    private readonly float[] _data;     // Σ n_i · C
    private readonly long[] _offsets;   // (N+1) in floats
    private readonly int[] _rows;       // (N) n_i: rows kept per example
    private readonly int _C;
    private readonly bool _clsOnly;     // only the [CLS] row kept: batches shrink to T = 1

    /// <summary>The layer whose input is cached, in [0, L].</summary>
    public int StartLayer { get; }
    /// <summary>Floats held.</summary>
    public long Floats => _data.LongLength;

    private ActivationCache(int startLayer, int C, bool clsOnly, float[] data, long[] offsets, int[] rows)
    {
        StartLayer = startLayer; _C = C; _clsOnly = clsOnly; _data = data; _offsets = offsets; _rows = rows;
    }

    /// <summary>Whether a cache at <paramref name="startLayer"/> keeps only the [CLS] row: above the last encoder layer, when
    /// the head input reads [CLS] alone (not <see cref="AdapterInput.Mean"/>, which averages every real token).</summary>
    public static bool KeepsClsOnly(int startLayer, int numLayers, AdapterInput input) => startLayer >= numLayers && input != AdapterInput.Mean;

    /// <summary>The layer to cache for <paramref name="model"/>'s current freezing, or -1 when caching brings nothing
    /// (the embeddings train, or nothing trains).</summary>
    public static int CacheableLayer(RecModel model)
    {
        int lowest = model.LowestTrainableLayer;
        if (lowest == int.MaxValue || lowest <= 0) return -1;   // embeddings (-1) or layer 0 trainable: nothing to skip
        return Math.Min(lowest, model.Layout.NumLayers);
    }

    /// <summary>Bytes the cache of <paramref name="enc"/> at <paramref name="startLayer"/> would hold for head input <paramref name="input"/>.</summary>
    public static long BytesFor(EncodedExamples enc, int startLayer, int numLayers, int C, AdapterInput input)
        => 4L * C * (KeepsClsOnly(startLayer, numLayers, input) ? enc.Count : enc.Ids.LongLength);

    /// <summary>
    /// Runs the frozen layers over every example of <paramref name="enc"/> in batches of <paramref name="batchSize"/>
    /// (grouped by length to limit padding) and keeps the real rows. <paramref name="progress"/> gets examples done.
    /// </summary>
    public static ActivationCache Build(RecModel model, ExampleSet set, EncodedExamples enc, int startLayer, int batchSize, int padId,
                                        FeatureScaler scaler, Action<int>? progress = null, CancellationToken ct = default)
    {
        int L = model.Layout.NumLayers, C = model.Bert.HiddenSize, N = enc.Count;
        if (startLayer < 0 || startLayer > L) throw new ArgumentOutOfRangeException(nameof(startLayer), startLayer, $"start layer must be in [0, {L}]");
        bool clsOnly = KeepsClsOnly(startLayer, L, model.Adapter.Input);
        var rows = new int[N];
        var offsets = new long[N + 1];
        for (int i = 0; i < N; i++)
        {
            rows[i] = clsOnly ? 1 : enc.Length(i);
            offsets[i + 1] = offsets[i] + (long)rows[i] * C;
        }
        var data = new float[offsets[N]];
        // Length-sorted order (stable), so each batch pads little.
        var order = new int[N];
        for (int i = 0; i < N; i++) order[i] = i;
        var keys = new int[N];
        for (int i = 0; i < N; i++) keys[i] = enc.Length(i);
        Array.Sort(keys, order);
        float[] hidden = [];
        for (int s = 0; s < N; s += batchSize)
        {
            ct.ThrowIfCancellationRequested();
            var idx = order.AsSpan(s, Math.Min(batchSize, N - s));
            var batch = BatchPacker.Pack(set, enc, idx, padId, scaler);
            int need = batch.B * batch.T * C;
            if (hidden.Length < need) hidden = new float[need];
            model.EncodeTo(batch, startLayer, hidden.AsSpan(0, need));
            for (int b = 0; b < idx.Length; b++)
            {
                int r = idx[b];
                Array.Copy(hidden, (long)b * batch.T * C, data, offsets[r], (long)rows[r] * C);
            }
            progress?.Invoke(idx.Length);
        }
        return new ActivationCache(startLayer, C, clsOnly, data, offsets, rows);
    }

    /// <summary>
    /// Fills <paramref name="batch"/>.Hidden (B, T, C) for examples <paramref name="rows"/> and sets its StartLayer:
    /// cached rows copied, padding rows zero. When only [CLS] is kept (<see cref="KeepsClsOnly"/>) the batch is shrunk to T = 1.
    /// </summary>
    public void Attach(RecBatch batch, ReadOnlySpan<int> rows, int numLayers)
    {
        if (_clsOnly && StartLayer >= numLayers && batch.T != 1)
        {
            // Only the [CLS] row is read above the last layer: keep T = 1.
            int B = batch.B, T = batch.T;
            var ids = new int[B]; var types = new int[B]; var mask = new float[B];
            for (int b = 0; b < B; b++) { ids[b] = batch.InputIds[b * T]; mask[b] = 1f; }
            batch.T = 1; batch.InputIds = ids; batch.TokenTypeIds = types; batch.AttentionMask = mask;
        }
        int Tb = batch.T;
        var hidden = new float[(long)batch.B * Tb * _C];
        for (int b = 0; b < rows.Length; b++)
        {
            int r = rows[b];
            Array.Copy(_data, _offsets[r], hidden, (long)b * Tb * _C, (long)Math.Min(_rows[r], Tb) * _C);
        }
        batch.Hidden = hidden;
        batch.StartLayer = StartLayer;
    }
}
