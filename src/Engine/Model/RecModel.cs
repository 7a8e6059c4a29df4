// The recommendation model (BERT encoder + MLP head): parameters, forward, backward and AdamW step via IBackend.
using FastRec.Kernels;

namespace FastRec.Engine.Model;

/// <summary>
/// BERT encoder + MLP adapter producing one logit per example, trained with weighted BCE.
/// <para>Memory (llm.c style): <see cref="Params"/>, <see cref="Grads"/>, <see cref="M"/>, <see cref="V"/> are four
/// buffers of <see cref="ParameterLayout.TotalSize"/> floats with the same layout; activations live in one buffer sized
/// for the largest (B, T) seen and reused (forward-only calls use a layout of about 1/L the size). Host data enters only through <see cref="IBackend.Upload{T}"/>; a training
/// step downloads only the loss (and the logits when asked) and, in <see cref="Step(AdamWOptions, int)"/>, the grad norm.</para>
/// <para>Gradients: <see cref="ForwardBackward"/> accumulates (+=) into <see cref="Grads"/>; frozen tensors' gradients
/// are never computed nor written, and nothing below the lowest trainable layer is back-propagated.</para>
/// <para>Dropout is a pure function of (dropoutSeed, step) (see <c>DropoutPlan</c>), so a run is reproducible.</para>
/// </summary>
public sealed partial class RecModel : IDisposable
{
    private readonly IBackend _b;
    private readonly BertEncoder _encoder;
    private readonly MlpAdapter _head;
    private readonly ParameterTensors _p;
    private ParameterTensors _g;
    private readonly bool[] _trainable;
    private int _lowest;                 // lowest trainable layer tag; int.MaxValue when nothing trains
    private readonly DeviceBuffer<AdamSegment> _segments;
    private readonly AdamSegment[] _segmentsHost;
    private bool _segmentsDirty = true;
    private Func<ParamInfo, float>? _lrScale;
    private float _segmentsWd = float.NaN;
    private readonly DeviceBuffer<float> _norm;  // (1)
    private readonly float[] _scalar = new float[1];
    private float[] _meanWeights = [];           // (B, T) host scratch of the Mean head input's pooling weights

    private DeviceBuffer<float>? _actFloats;
    private DeviceBuffer<int>? _actInts;
    private ActivationTensors? _trainActs, _evalActs;   // carvings of the buffers above (training / forward-only layout)
    private bool _disposed;

    /// <summary>The backend every operation runs on.</summary>
    public IBackend Backend => _b;
    /// <summary>The encoder's configuration.</summary>
    public BertConfig Bert { get; }
    /// <summary>The head's configuration.</summary>
    public AdapterConfig Adapter { get; }
    /// <summary>Names, shapes and offsets of every tensor in <see cref="Params"/> (and the mirrors).</summary>
    public ParameterLayout Layout { get; }
    /// <summary>All parameters, (TotalSize).</summary>
    public DeviceBuffer<float> Params { get; }
    /// <summary>Gradients, same layout.</summary>
    public DeviceBuffer<float> Grads { get; }
    /// <summary>Adam first moments, same layout.</summary>
    public DeviceBuffer<float> M { get; }
    /// <summary>Adam second moments, same layout.</summary>
    public DeviceBuffer<float> V { get; }

    /// <summary>Allocates a zero-parameter model (call <see cref="InitRandom"/> or load weights). Everything trainable.</summary>
    /// <exception cref="InvalidDataException">a configuration field is out of range (the message names it).</exception>
    public RecModel(IBackend backend, BertConfig bert, AdapterConfig adapter)
    {
        ArgumentNullException.ThrowIfNull(backend);
        _b = backend;
        Bert = bert;
        Adapter = adapter;
        Layout = new ParameterLayout(bert, adapter);   // validates both configs
        int n = Layout.TotalSize;
        Params = _b.Allocate<float>(n);
        Grads = _b.Allocate<float>(n);
        M = _b.Allocate<float>(n);
        V = _b.Allocate<float>(n);
        _norm = _b.Allocate<float>(1);
        _segmentsHost = new AdamSegment[Layout.Tensors.Count];
        _segments = _b.Allocate<AdamSegment>(_segmentsHost.Length);
        _encoder = new BertEncoder(_b, bert);
        _head = new MlpAdapter(_b, bert, adapter);
        int nh = adapter.HiddenSizes.Length;
        _p = ParameterTensors.Create(Layout, Params, nh, _ => true);
        _trainable = new bool[Layout.Tensors.Count];
        _g = _p; // replaced by SetTrainable
        SetTrainable(Freeze.All);
    }

    // ------------------------------------------------------------------ parameters

    /// <summary>
    /// HF initialisation: weights (embeddings included) ~ normal(0, 0.02), biases 0, LayerNorm weight 1 / bias 0,
    /// the pad_token_id row of the word embeddings 0. A pure function of <paramref name="seed"/> (counter = flat index).
    /// Also zeroes the gradients and the Adam moments.
    /// </summary>
    public void InitRandom(ulong seed)
    {
        var host = new float[Layout.TotalSize];
        foreach (var t in Layout.Tensors)
        {
            var dst = host.AsSpan(t.Offset, t.Length);
            if (t.Name.Contains("LayerNorm.", StringComparison.Ordinal)) dst.Fill(t.Name.EndsWith(".weight", StringComparison.Ordinal) ? 1f : 0f);
            else if (t.Name.EndsWith(".bias", StringComparison.Ordinal)) dst.Clear();
            else for (int i = 0; i < dst.Length; i++) dst[i] = 0.02f * Rng.Normal(seed, (ulong)(t.Offset + i));
        }
        var word = Layout[BertSchema.WordEmbeddings];
        host.AsSpan(word.Offset + Bert.PadTokenId * Bert.HiddenSize, Bert.HiddenSize).Clear();
        _b.Upload(Params.All, host);
        _b.Zero(Grads.All);
        _b.Zero(M.All);
        _b.Zero(V.All);
    }

    /// <summary>The view of tensor <paramref name="name"/> in <see cref="Params"/>.</summary>
    public View<float> ParameterView(string name) { var p = Layout[name]; return Params.Slice(p.Offset, p.Length); }

    /// <summary>Uploads tensor <paramref name="name"/>; <paramref name="values"/> must hold exactly its element count.</summary>
    public void SetParameter(string name, ReadOnlySpan<float> values)
    {
        var p = Layout[name];
        if (values.Length != p.Length)
            throw new ShapeException($"{name}: expected ({string.Join(", ", p.Shape)}) = {p.Length} elements, got {values.Length}");
        _b.Upload(Params.Slice(p.Offset, p.Length), values);
    }

    /// <summary>A host copy of tensor <paramref name="name"/>.</summary>
    public float[] GetParameter(string name) => Read(Params, name);

    /// <summary>A host copy of the gradient of <paramref name="name"/> (zeros for a frozen tensor).</summary>
    public float[] GetGradient(string name) => Read(Grads, name);

    private float[] Read(DeviceBuffer<float> buf, string name)
    {
        var p = Layout[name];
        var a = new float[p.Length];
        _b.Download(buf.Slice(p.Offset, p.Length), a);
        return a;
    }

    // ------------------------------------------------------------------ freezing

    /// <summary>
    /// Chooses the trainable tensors (see <see cref="Freeze"/>); <paramref name="topK"/> in [0, L] for <see cref="Freeze.TopK"/>.
    /// With <see cref="AdapterInput.Cls"/> or <see cref="AdapterInput.Mean"/> the pooler is unused and never trainable. Zeroes the gradients.
    /// </summary>
    public void SetTrainable(Freeze mode, int topK = 0)
    {
        int L = Layout.NumLayers;
        if (mode == Freeze.TopK && (topK < 0 || topK > L))
            throw new ArgumentOutOfRangeException(nameof(topK), topK, $"topK must be in [0, num_hidden_layers = {L}], got {topK}");
        int lowest = int.MaxValue;
        foreach (var t in Layout.Tensors)
        {
            bool on = mode switch
            {
                Freeze.All => true,
                Freeze.AdapterOnly => t.Layer == Layout.HeadLayer,
                Freeze.TopK => t.Layer >= L - topK,
                _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown Freeze mode"),
            };
            if (t.Layer == Layout.PoolerLayer && Adapter.Input != AdapterInput.Pooler) on = false;
            _trainable[t.Index] = on;
            if (on) lowest = Math.Min(lowest, t.Layer);
        }
        _lowest = lowest;
        _g = ParameterTensors.Create(Layout, Grads, Adapter.HiddenSizes.Length, t => _trainable[t.Index]);
        _segmentsDirty = true;
        _b.Zero(Grads.All);
    }

    /// <summary>Whether tensor <paramref name="name"/> is trained.</summary>
    public bool IsTrainable(string name) => _trainable[Layout[name].Index];

    /// <summary>The lowest layer tag with a trainable tensor (<see cref="ParameterLayout.EmbeddingsLayer"/>, an encoder layer,
    /// <see cref="ParameterLayout.PoolerLayer"/> or <see cref="ParameterLayout.HeadLayer"/>); int.MaxValue when nothing trains.
    /// Everything below it is frozen, so its activations can be computed once and cached (<see cref="EncodeTo"/>).</summary>
    public int LowestTrainableLayer => _lowest;

    /// <summary>
    /// Per-tensor learning-rate multipliers for AdamW (e.g. layer-wise LR decay); null = 1 for every trainable tensor.
    /// Frozen tensors keep 0 whatever <paramref name="scale"/> says. Values must be finite and &gt;= 0.
    /// </summary>
    public void SetLrScale(Func<ParamInfo, float>? scale)
    {
        if (scale is not null)
            foreach (var t in Layout.Tensors)
            {
                float s = scale(t);
                if (!(s >= 0 && float.IsFinite(s))) throw new ArgumentOutOfRangeException(nameof(scale), s, $"LR scale of {t.Name} must be finite and >= 0, got {s}");
            }
        _lrScale = scale;
        _segmentsDirty = true;
    }

    // ------------------------------------------------------------------ forward / backward

    /// <summary>Logits (B). With <paramref name="training"/> dropout is on, keyed by (<paramref name="dropoutSeed"/>, <paramref name="step"/>).</summary>
    public float[] Forward(RecBatch batch, bool training = false, ulong dropoutSeed = 0, int step = 0)
    {
        var a = Prepare(batch, requireLabels: false, inference: true);
        var drop = training ? new DropoutPlan(dropoutSeed, step, Layout.NumLayers) : DropoutPlan.Eval;
        RunForward(a, batch, drop);
        var logits = new float[a.B];
        _b.Download(a.Logits, logits);
        return logits;
    }

    /// <summary>
    /// The weighted BCE mean of one batch without any gradient (validation loss; finite differences). With
    /// <paramref name="training"/> dropout is on exactly as in <see cref="ForwardBackward"/> for the same (seed, step).
    /// Not checked for finiteness.
    /// </summary>
    public float ForwardLoss(RecBatch batch, bool training = false, ulong dropoutSeed = 0, int step = 0)
    {
        var a = Prepare(batch, requireLabels: true, inference: true);
        var drop = training ? new DropoutPlan(dropoutSeed, step, Layout.NumLayers) : DropoutPlan.Eval;
        RunForward(a, batch, drop);
        _b.BceForwardBackward(a.Loss, View<float>.None, a.Logits, a.Labels, batch.Weights is null ? View<float>.None : a.Weights, a.B);
        _b.Download(a.Loss, _scalar);
        return _scalar[0];
    }

    /// <summary>The encoder's last hidden state and pooler output (evaluation mode, no dropout).</summary>
    public EncoderOutput Encode(RecBatch batch)
    {
        var a = Prepare(batch, requireLabels: false, inference: true);
        _encoder.Forward(_p, a, TypeIds(a, batch), DropoutPlan.Eval, From(batch));
        var hidden = new float[a.B * a.T * Bert.HiddenSize];
        _b.Download(BertEncoder.LastHidden(a), hidden);
        float[]? pooled = null;
        if (Bert.AddPoolingLayer)
        {
            _encoder.PoolerForward(_p, a);
            pooled = new float[a.B * Bert.HiddenSize];
            _b.Download(a.Pooled, pooled);
        }
        return new EncoderOutput { B = a.B, T = a.T, C = Bert.HiddenSize, LastHiddenState = hidden, PoolerOutput = pooled };
    }

    /// <summary>
    /// The input of encoder layer <paramref name="layer"/> (0 = the embeddings' output, L = the last layer's output) in
    /// evaluation mode (no dropout), into <paramref name="hidden"/> (B, T, C): what a <see cref="RecBatch.Hidden"/> with
    /// <see cref="RecBatch.StartLayer"/> = <paramref name="layer"/> expects. The frozen-layer activation cache computes it
    /// once per example. Honours an incoming <see cref="RecBatch.Hidden"/> (then runs from its StartLayer up).
    /// </summary>
    public void EncodeTo(RecBatch batch, int layer, Span<float> hidden)
    {
        if (layer < 0 || layer > Layout.NumLayers)
            throw new ArgumentOutOfRangeException(nameof(layer), layer, $"layer must be in [0, num_hidden_layers = {Layout.NumLayers}], got {layer}");
        var a = Prepare(batch, requireLabels: false, inference: true);
        int from = From(batch);
        if (from > layer) throw new ArgumentOutOfRangeException(nameof(layer), layer, $"the batch starts at layer {from}, above the requested layer {layer}");
        long n = (long)a.B * a.T * Bert.HiddenSize;
        if (hidden.Length != n) throw new ShapeException($"hidden: expected (B={a.B}, T={a.T}, C={Bert.HiddenSize}) = {n} elements, got {hidden.Length}");
        _encoder.Forward(_p, a, TypeIds(a, batch), DropoutPlan.Eval, from, to: layer);
        _b.Download(BertEncoder.LayerInput(a, layer), hidden);
    }

    /// <summary>
    /// Training forward + backward of one batch with dropout keyed by (<paramref name="dropoutSeed"/>, <paramref name="step"/>):
    /// returns the weighted BCE mean and ACCUMULATES the gradients into <see cref="Grads"/>. When <paramref name="logits"/>
    /// is given (length ≥ B) the logits are downloaded into it. <paramref name="lossScale"/> multiplies the loss and every
    /// gradient (gradient accumulation over micro-batches: Σw of the micro-batch / Σw of the whole batch); the returned
    /// loss includes it. A batch with <see cref="RecBatch.Hidden"/> must start at or below the lowest trainable layer.
    /// </summary>
    /// <exception cref="NonFiniteLossException">the loss is NaN or infinite (the message names <paramref name="step"/>).</exception>
    public float ForwardBackward(RecBatch batch, ulong dropoutSeed, int step, float[]? logits = null, float lossScale = 1f)
    {
        if (!(lossScale > 0 && float.IsFinite(lossScale))) throw new ArgumentOutOfRangeException(nameof(lossScale), lossScale, $"lossScale must be finite and > 0, got {lossScale}");
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Hidden is not null && batch.StartLayer > _lowest && _lowest != int.MaxValue)
            throw new InvalidOperationException(
                $"the batch starts at encoder layer {batch.StartLayer} (cached activations) but layer {LayerName(_lowest)} is trainable: " +
                $"a cached batch must start at or below the lowest trainable layer");
        var a = Prepare(batch, requireLabels: true, inference: false);
        var drop = new DropoutPlan(dropoutSeed, step, Layout.NumLayers);
        var typeIds = TypeIds(a, batch);
        RunForward(a, batch, drop);
        var weights = batch.Weights is null ? View<float>.None : a.Weights;
        _b.BceForwardBackward(a.Loss, a.DLogits, a.Logits, a.Labels, weights, a.B, scale: lossScale);
        if (_lowest != int.MaxValue) RunBackward(a, typeIds, drop);
        if (logits is not null)
        {
            if (logits.Length < a.B) throw new ShapeException($"logits: expected at least B = {a.B} elements, got {logits.Length}");
            _b.Download(a.Logits, logits.AsSpan(0, a.B));
        }
        _b.Download(a.Loss, _scalar);
        float loss = _scalar[0];
        if (!float.IsFinite(loss)) throw new NonFiniteLossException(step, loss);
        return loss;
    }

    private string LayerName(int layer) => layer == ParameterLayout.EmbeddingsLayer ? "embeddings" : layer == Layout.PoolerLayer ? "pooler"
        : layer == Layout.HeadLayer ? "head" : layer.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static int From(RecBatch batch) => batch.Hidden is null ? 0 : batch.StartLayer;

    private void RunForward(ActivationTensors a, RecBatch batch, DropoutPlan drop)
    {
        _encoder.Forward(_p, a, TypeIds(a, batch), drop, From(batch));
        int C = Bert.HiddenSize;
        switch (Adapter.Input)
        {
            case AdapterInput.Pooler:
                _encoder.PoolerForward(_p, a);
                _head.Forward(_p, a, a.Pooled, C, drop);
                break;
            case AdapterInput.Mean:
                MeanPooling.Forward(_b, a.MeanPooled, a.MeanWeights, BertEncoder.LastHidden(a), a.B, a.T, C);   // (B, C)
                _head.Forward(_p, a, a.MeanPooled, C, drop);
                break;
            default:
                _head.Forward(_p, a, BertEncoder.LastHidden(a), a.T * C, drop);   // row b starts at h[b, 0, :]
                break;
        }
    }

    private void RunBackward(ActivationTensors a, View<int> typeIds, DropoutPlan drop,
                             ReadOnlySpan<View<float>> dHidden = default, ReadOnlySpan<View<float>> dProbs = default)
    {
        int C = Bert.HiddenSize, inW = Layout.HeadInputSize;
        var dHeadIn = _head.Backward(_p, _g, a, drop, needInput: _lowest < Layout.HeadLayer);   // (B, C + D)
        if (_lowest >= Layout.HeadLayer) return;
        bool toHidden = _lowest < Layout.PoolerLayer;
        if (Adapter.Input == AdapterInput.Pooler)
        {
            _b.Copy2D(a.DPooled, C, 0, dHeadIn, inW, 0, a.B, C, accumulate: false);            // (B, C)
            _encoder.PoolerBackward(_p, _g, a, a.DPooled, toHidden);
        }
        else if (toHidden && Adapter.Input == AdapterInput.Mean)
            MeanPooling.Backward(_b, a.DRes, a.MeanWeights, dHeadIn, inW, a.B, a.T, C);               // δh[b, t, :] for every t
        else if (toHidden)
        {
            _b.Zero(a.DRes);
            _b.Copy2D(a.DRes, a.T * C, 0, dHeadIn, inW, 0, a.B, C, accumulate: false);        // δh[b, 0, :]
        }
        if (toHidden) _encoder.Backward(_p, _g, a, typeIds, drop, _lowest, dHidden, dProbs);
    }

    /// <summary>Validates the batch, sizes the activations for (B, T) and uploads the inputs.</summary>
    private ActivationTensors Prepare(RecBatch batch, bool requireLabels, bool inference)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(batch);
        batch.Validate(Bert, Adapter, requireLabels);
        _prepared++;   // any earlier ForwardTaps activations may be overwritten from here on
        var a = Activations(batch.B, batch.T, inference);
        _b.Upload(a.Ids, batch.InputIds);
        if (batch.TokenTypeIds is not null) _b.Upload(a.TypeIds, batch.TokenTypeIds);
        _b.Upload(a.Mask, batch.AttentionMask);
        if (Adapter.Input == AdapterInput.Mean)
        {
            int bt = batch.B * batch.T;
            if (_meanWeights.Length < bt) _meanWeights = new float[bt];
            MeanPooling.Weights(batch.AttentionMask, batch.B, batch.T, _meanWeights.AsSpan(0, bt));
            _b.Upload(a.MeanWeights, _meanWeights.AsSpan(0, bt));
        }
        if (Adapter.DenseFeatures > 0) _b.Upload(a.Dense, batch.Dense);
        if (requireLabels) _b.Upload(a.Labels, batch.Labels);
        if (batch.Weights is not null) _b.Upload(a.Weights, batch.Weights);
        if (batch.Hidden is not null) _b.Upload(BertEncoder.LayerInput(a, batch.StartLayer), batch.Hidden);
        return a;
    }

    private static View<int> TypeIds(ActivationTensors a, RecBatch batch) => batch.TokenTypeIds is null ? View<int>.None : a.TypeIds;

    /// <summary>The activation slices for (B, T) in the training or forward-only layout; the buffers are re-allocated
    /// only when a larger shape arrives, and the two layouts share them.</summary>
    private ActivationTensors Activations(int B, int T, bool inference)
    {
        var cached = inference ? _evalActs : _trainActs;
        if (cached is { } cur && cur.B == B && cur.T == T) return cur;
        var (floats, ints) = ActivationTensors.Size(Bert, Adapter, B, T, inference);
        if (_actFloats is null || _actFloats.Length < floats)
        {
            _actFloats?.Dispose();
            _actFloats = null;
            _trainActs = _evalActs = null;
            _actFloats = _b.Allocate<float>(floats);
        }
        if (_actInts is null || _actInts.Length < ints)
        {
            _actInts?.Dispose();
            _actInts = null;
            _trainActs = _evalActs = null;
            _actInts = _b.Allocate<int>(ints);
        }
        var a = ActivationTensors.Create(Bert, Adapter, B, T, inference, _actFloats, _actInts);
        if (inference) _evalActs = a; else _trainActs = a;
        return a;
    }

    // ------------------------------------------------------------------ optimiser

    /// <summary>Grads = 0.</summary>
    public void ZeroGrad() => _b.Zero(Grads.All);

    /// <summary>Global-norm clipping + AdamW (one segment per tensor; frozen tensors LrScale 0, no decay on biases and LayerNorm).
    /// Returns the pre-clip gradient norm. <paramref name="step"/> counts from 1.</summary>
    /// <exception cref="NonFiniteLossException">the gradient norm is not finite (parameters are left untouched).</exception>
    public float Step(AdamWOptions opt, int step) => Step(opt, step, downloadNorm: true);

    /// <summary>As <see cref="Step(AdamWOptions, int)"/>; with <paramref name="downloadNorm"/> false nothing is downloaded
    /// (no synchronisation, no finiteness check) and NaN is returned.</summary>
    public float Step(AdamWOptions opt, int step, bool downloadNorm)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, $"step counts from 1, got {step}");
        if (_segmentsDirty || opt.WeightDecay != _segmentsWd)
        {
            foreach (var t in Layout.Tensors)
                _segmentsHost[t.Index] = new AdamSegment(t.Offset, t.Length, _trainable[t.Index] ? _lrScale?.Invoke(t) ?? 1f : 0f, t.Decay ? opt.WeightDecay : 0f);
            _b.Upload(_segments.All, _segmentsHost);
            _segmentsDirty = false;
            _segmentsWd = opt.WeightDecay;
        }
        _b.GlobalNorm(_norm.All, Grads.All);
        float norm = float.NaN;
        if (downloadNorm)
        {
            _b.Download(_norm.All, _scalar);
            norm = _scalar[0];
            if (!float.IsFinite(norm)) throw new NonFiniteLossException(step, norm, "gradient norm");
        }
        _b.AdamW(Params.All, Grads.All, M.All, V.All, _segments.All, _norm.All, opt.MaxGradNorm, opt.Lr, opt.Beta1, opt.Beta2, opt.Eps, step);
        return norm;
    }

    /// <summary>Frees every buffer.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _actFloats?.Dispose();
        _actInts?.Dispose();
        _segments.Dispose();
        _norm.Dispose();
        Params.Dispose(); Grads.Dispose(); M.Dispose(); V.Dispose();
    }
}
