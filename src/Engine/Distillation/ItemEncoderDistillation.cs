// Distils a BERT item encoder into a smaller one on sentence embeddings: the student's mean-pooled, L2-normalised vector of
// each item text is pulled onto the teacher's (the vectors the item tower reads), so the student can re-encode a catalogue.
using System.Diagnostics;
using FastRec.Engine.Model;
using FastRec.Engine.Text;
using FastRec.Engine.Training;
using FastRec.Kernels;

namespace FastRec.Engine.Distillation;

/// <summary>How <see cref="ItemEncoderDistillation.Run"/> trains the student.</summary>
public sealed record ItemEncoderDistillOptions
{
    /// <summary>The student's shape (default 3 layers, the teacher's width), initialised from every k-th teacher layer.</summary>
    public StudentConfig Student { get; init; } = new();
    /// <summary>Passes over the texts; 0 = no training (the truncated student: copied layers only). Default 4.</summary>
    public int Epochs { get; init; } = 4;
    /// <summary>Texts per optimizer step. Default 32.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Peak learning rate (linear warmup over <see cref="WarmupFraction"/>, then linear decay). Default 1e-4.</summary>
    public float Lr { get; init; } = 1e-4f;
    /// <summary>Share of the steps spent warming up. Default 0.1.</summary>
    public double WarmupFraction { get; init; } = 0.1;
    /// <summary>AdamW decoupled weight decay. Default 0.01.</summary>
    public float WeightDecay { get; init; } = 0.01f;
    /// <summary>Seed of the fresh tensors, the shuffles and dropout.</summary>
    public ulong Seed { get; init; }
}

/// <summary>What <see cref="ItemEncoderDistillation.Run"/> did.</summary>
public sealed class ItemEncoderDistillResult
{
    /// <summary>Texts distilled on (those with at least one token).</summary>
    public required int Texts { get; init; }
    /// <summary>Mean squared distance ‖ŝ − t‖² between student and teacher sentence embeddings on the distillation texts
    /// before training (the truncated student), in evaluation mode; 2 − 2·cos.</summary>
    public required double InitialDistance { get; init; }
    /// <summary>The same after training (equal to <see cref="InitialDistance"/> when no epoch ran).</summary>
    public required double FinalDistance { get; init; }
    /// <summary>Mean training loss of each epoch (with dropout).</summary>
    public required IReadOnlyList<double> EpochLoss { get; init; }
    /// <summary>Which teacher layers the student started from.</summary>
    public required string InitSummary { get; init; }
    /// <summary>Wall time of the training, seconds.</summary>
    public required double Seconds { get; init; }
}

/// <summary>
/// Sentence-embedding distillation of an item encoder (as sentence-transformers distils MiniLM-type models, and as
/// DistilBERT initialises from every other layer): the student starts from every k-th teacher layer
/// (<see cref="Distillation.Student.InitializeFrom"/>), then minimises the mean over texts of ‖ŝ − t‖², ŝ the student's
/// attention-masked mean of its last hidden state, L2-normalised, t the teacher's vector of the same text (what
/// <see cref="Representations.EncoderItemVectors"/> computes). The embeddings stay frozen, so words absent from the
/// distillation texts keep the teacher's embedding; the encoder layers train with AdamW, dropout on. The gradient
/// enters the encoder through <see cref="RecModel.BackwardTaps"/> at the last hidden state:
/// δh[b,t,:] = m[b,t]/Σm · (g − ŝ(ŝ·g))/‖s‖ with g = 2(ŝ − t)/B. Deterministic for a seed.
/// </summary>
public static class ItemEncoderDistillation
{
    /// <summary>
    /// Builds a student of <paramref name="teacher"/> (same backend, same head shape, unused) and distils it on
    /// <paramref name="texts"/> (already formatted item texts, cut by <paramref name="tokenizer"/> to its MaxLength as the vectors were) toward <paramref name="targets"/> (N, C), the teacher's
    /// L2-normalised sentence embeddings of those texts, row i for texts[i]. Texts that tokenise to nothing are skipped.
    /// The caller disposes the returned model.
    /// </summary>
    /// <exception cref="ArgumentException">shapes disagree, a target is not finite, or no text has a token.</exception>
    /// <exception cref="ArgumentOutOfRangeException">an option is out of range (the message names it).</exception>
    public static (RecModel Student, ItemEncoderDistillResult Result) Run(RecModel teacher, BertTextTokenizer tokenizer, IReadOnlyList<string> texts,
        ReadOnlySpan<float> targets, ItemEncoderDistillOptions? options = null, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(teacher); ArgumentNullException.ThrowIfNull(tokenizer); ArgumentNullException.ThrowIfNull(texts);
        var o = options ?? new ItemEncoderDistillOptions();
        Validate(o);
        int C = teacher.Bert.HiddenSize;
        if (targets.Length != (long)texts.Count * C)
            throw new ArgumentException($"targets: expected {texts.Count} texts x C = {C} = {(long)texts.Count * C} floats, got {targets.Length}", nameof(targets));
        for (int i = 0; i < targets.Length; i++)
            if (!float.IsFinite(targets[i])) throw new ArgumentException($"targets[{i}] (text {i / C}) is {targets[i]}; targets must be finite", nameof(targets));
        var keep = new List<int>(texts.Count);
        for (int i = 0; i < texts.Count; i++)
            if (texts[i] is { } t && tokenizer.Tokenize(t).Count > 0) keep.Add(i);
        if (keep.Count == 0) throw new ArgumentException("no text has a token to distil on", nameof(texts));
        int N = keep.Count;
        var tgt = new float[(long)N * C];   // (N, C) in keep order
        for (int k = 0; k < N; k++) targets.Slice(keep[k] * C, C).CopyTo(tgt.AsSpan(k * C, C));
        var kept = keep.Select(i => texts[i]).ToArray();

        var bert = Distillation.Student.Derive(teacher.Bert, o.Student);
        var student = new RecModel(teacher.Backend, bert, teacher.Adapter);
        try
        {
            var init = Distillation.Student.InitializeFrom(student, teacher, o.Seed);
            student.SetTrainable(Freeze.TopK, bert.NumHiddenLayers);   // every encoder layer (+ pooler and head, which get no gradient); embeddings frozen
            log?.Invoke($"item encoder distillation: {init.Summary}; {N:N0} texts, {o.Epochs} epochs of {Steps(N, o.BatchSize)} steps");
            var sw = Stopwatch.StartNew();
            using var run = new Session(student, tokenizer, kept, tgt, o);
            double initial = run.Distance();
            var losses = new List<double>();
            if (o.Epochs > 0)
            {
                int perEpoch = Steps(N, o.BatchSize), total = perEpoch * o.Epochs;
                var schedule = new LrSchedule(o.Lr, total, LrSchedule.WarmupFor(o.WarmupFraction, total));
                int step = 0;
                for (int epoch = 0; epoch < o.Epochs; epoch++)
                {
                    var order = Order(N, o.Seed, epoch);
                    double sum = 0;
                    for (int s = 0; s < perEpoch; s++)
                    {
                        step++;
                        int start = s * o.BatchSize, B = Math.Min(o.BatchSize, N - start);
                        sum += run.TrainStep(order.AsSpan(start, B), step, new AdamWOptions { Lr = schedule.At(step), WeightDecay = o.WeightDecay });
                    }
                    losses.Add(sum / perEpoch);
                    log?.Invoke($"  epoch {epoch + 1}/{o.Epochs}: loss {sum / perEpoch:0.00000} ({sw.Elapsed.TotalSeconds:0} s)");
                }
            }
            double final = o.Epochs > 0 ? run.Distance() : initial;
            log?.Invoke($"item encoder distillation: distance to the teacher {initial:0.0000} -> {final:0.0000} in {sw.Elapsed.TotalSeconds:0.0} s");
            return (student, new ItemEncoderDistillResult
            {
                Texts = N, InitialDistance = initial, FinalDistance = final, EpochLoss = losses, InitSummary = init.Summary, Seconds = sw.Elapsed.TotalSeconds,
            });
        }
        catch
        {
            student.Dispose();
            throw;
        }
    }

    private static int Steps(int n, int batch) => (n + batch - 1) / batch;

    private static void Validate(ItemEncoderDistillOptions o)
    {
        ArgumentNullException.ThrowIfNull(o.Student);
        if (o.Epochs < 0) throw new ArgumentOutOfRangeException(nameof(o.Epochs), o.Epochs, $"ItemEncoderDistillOptions.Epochs must be >= 0, got {o.Epochs}");
        if (o.BatchSize < 1 || o.BatchSize > 4096) throw new ArgumentOutOfRangeException(nameof(o.BatchSize), o.BatchSize, $"ItemEncoderDistillOptions.BatchSize must be in [1, 4096], got {o.BatchSize}");
        if (!(o.Lr > 0 && float.IsFinite(o.Lr))) throw new ArgumentOutOfRangeException(nameof(o.Lr), o.Lr, $"ItemEncoderDistillOptions.Lr must be finite and > 0, got {o.Lr}");
        if (!(o.WarmupFraction >= 0 && o.WarmupFraction <= 1)) throw new ArgumentOutOfRangeException(nameof(o.WarmupFraction), o.WarmupFraction, $"ItemEncoderDistillOptions.WarmupFraction must be in [0, 1], got {o.WarmupFraction}");
        if (!(o.WeightDecay >= 0 && float.IsFinite(o.WeightDecay))) throw new ArgumentOutOfRangeException(nameof(o.WeightDecay), o.WeightDecay, $"ItemEncoderDistillOptions.WeightDecay must be finite and >= 0, got {o.WeightDecay}");
    }

    /// <summary>
    /// Σ_b ‖ŝ_b − t_b‖² over a batch, ŝ_b the attention-masked mean of <paramref name="hidden"/> (B, T, C) row b,
    /// L2-normalised, t_b row b of <paramref name="targets"/> (B, C). When <paramref name="dHidden"/> is not empty it receives
    /// the gradient of the batch MEAN (the sum / B) with respect to <paramref name="hidden"/>: δh[b,t,:] = m[b,t]/Σm ·
    /// (g − ŝ(ŝ·g))/‖s‖, g = 2(ŝ − t)/B, 0 on padding. Accumulates in float64.
    /// </summary>
    internal static double SentenceLoss(ReadOnlySpan<float> hidden, ReadOnlySpan<float> mask, int B, int T, int C, ReadOnlySpan<float> targets, Span<float> dHidden)
    {
        if (hidden.Length != B * T * C || mask.Length != B * T || targets.Length != B * C || (!dHidden.IsEmpty && dHidden.Length != B * T * C))
            throw new ShapeException($"SentenceLoss: hidden {hidden.Length}, mask {mask.Length}, targets {targets.Length}, dHidden {dHidden.Length} do not fit (B={B}, T={T}, C={C})");
        var s = new double[C];
        var g = new double[C];
        double total = 0;
        for (int b = 0; b < B; b++)
        {
            double count = SentenceEmbedding.MaskedMean(hidden, mask, b, T, C, s), nrm = 0;
            for (int c = 0; c < C; c++) nrm += s[c] * s[c];
            nrm = Math.Max(Math.Sqrt(nrm), 1e-12);
            var tgt = targets.Slice(b * C, C);
            double dot = 0;
            for (int c = 0; c < C; c++)
            {
                double u = s[c] / nrm, d = u - tgt[c];
                total += d * d;
                g[c] = 2 * d / B;
                dot += u * g[c];
            }
            if (dHidden.IsEmpty) continue;
            for (int c = 0; c < C; c++) g[c] = (g[c] - s[c] / nrm * dot) / nrm;   // through the L2 normalisation
            for (int t = 0; t < T; t++)
            {
                var dh = dHidden.Slice((b * T + t) * C, C);
                double w = mask[b * T + t] / count;
                for (int c = 0; c < C; c++) dh[c] = (float)(w * g[c]);   // through the mean (0 on padding)
            }
        }
        return total;
    }

    /// <summary>A seeded Fisher–Yates permutation of [0, n) for an epoch.</summary>
    private static int[] Order(int n, ulong seed, int epoch)
    {
        var order = Enumerable.Range(0, n).ToArray();
        for (int i = n - 1; i > 0; i--)
        {
            int j = (int)(Rng.Hash(seed ^ 0x17E3_D15FUL, (ulong)epoch << 32 | (uint)i) % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>One student's buffers: the host copies of the last hidden state and its gradient, and the device gradient.</summary>
    private sealed class Session(RecModel model, BertTextTokenizer tok, string[] texts, float[] targets, ItemEncoderDistillOptions o) : IDisposable
    {
        private readonly int _C = model.Bert.HiddenSize, _L = model.Bert.NumHiddenLayers;
        private float[] _h = [], _dh = [], _t = [];
        private DeviceBuffer<float>? _dev;

        /// <summary>Tokenizes rows <paramref name="rows"/> into one padded batch (single segment, cut to MaxLength).</summary>
        private RecBatch Batch(ReadOnlySpan<int> rows)
        {
            var batch = new string[rows.Length];
            for (int b = 0; b < rows.Length; b++) batch[b] = texts[rows[b]];
            var (T, _) = Cut(batch, out var ids, out var types, out var mask);
            return new RecBatch { B = rows.Length, T = T, InputIds = ids, TokenTypeIds = types, AttentionMask = mask };
        }

        private (int, int) Cut(string[] batch, out int[] ids, out int[] types, out float[] mask) => tok.EncodeBatch(batch, null, out ids, out types, out mask);

        private double Loss(ReadOnlySpan<int> rows, int T, float[] mask, bool grad)
        {
            int B = rows.Length, n = B * T * _C;
            if (_t.Length < B * _C) _t = new float[o.BatchSize * _C];
            for (int b = 0; b < B; b++) targets.AsSpan(rows[b] * _C, _C).CopyTo(_t.AsSpan(b * _C, _C));
            return SentenceLoss(_h.AsSpan(0, n), mask, B, T, _C, _t.AsSpan(0, B * _C), grad ? _dh.AsSpan(0, n) : default);
        }

        private void Hidden(int n)
        {
            if (_h.Length < n) { _h = new float[n]; _dh = new float[n]; }
        }

        /// <summary>One optimizer step on rows <paramref name="rows"/>; returns the batch's mean ‖ŝ − t‖².</summary>
        public double TrainStep(ReadOnlySpan<int> rows, int step, AdamWOptions opt)
        {
            var batch = Batch(rows);
            int n = batch.B * batch.T * _C;
            Hidden(n);
            model.ZeroGrad();
            model.ForwardTaps(batch, training: true, o.Seed, step);
            var be = model.Backend;
            be.Download(model.TapHidden(_L), _h.AsSpan(0, n));
            double loss = Loss(rows, batch.T, batch.AttentionMask, grad: true);
            if (!double.IsFinite(loss)) throw new NonFiniteLossException(step, (float)loss);
            if (_dev is null || _dev.Length < n)
            {
                _dev?.Dispose();
                _dev = be.Allocate<float>((long)o.BatchSize * tok.MaxLength * _C);
            }
            var dView = _dev.Slice(0, n);
            be.Upload(dView, _dh.AsSpan(0, n));
            be.Zero(model.TapLogitsGrad);
            var dHidden = new View<float>[_L + 1];
            for (int i = 0; i < _L; i++) dHidden[i] = View<float>.None;
            dHidden[_L] = dView;
            model.BackwardTaps(dHidden);
            model.Step(opt, step);
            return loss / rows.Length;
        }

        public void Dispose() => _dev?.Dispose();

        /// <summary>Mean ‖ŝ − t‖² over every text, evaluation mode.</summary>
        public double Distance()
        {
            double sum = 0;
            var all = Enumerable.Range(0, texts.Length).ToArray();
            for (int s = 0; s < all.Length; s += o.BatchSize)
            {
                var rows = all.AsSpan(s, Math.Min(o.BatchSize, all.Length - s));
                var batch = Batch(rows);
                int n = batch.B * batch.T * _C;
                Hidden(n);
                var enc = model.Encode(batch);
                enc.LastHiddenState.AsSpan(0, n).CopyTo(_h);
                sum += Loss(rows, batch.T, batch.AttentionMask, grad: false);
            }
            return sum / texts.Length;
        }
    }
}
