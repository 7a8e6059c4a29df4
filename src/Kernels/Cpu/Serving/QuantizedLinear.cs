// Inference Linear in symmetric int16 (the serving path's reduced-precision option): out = act(inp·Wᵀ + b) with W quantised
// once per output column and the input per row, multiplied with VPMADDWD into exact int32 sums: 512-bit on AVX-512BW
// (Zen 4), 256-bit on AVX2 (Zen 3), a portable loop elsewhere; the three give the same bits.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FastRec.Kernels.Cpu;

/// <summary>
/// A Hugging Face Linear weight W (OC, IC) quantised once to symmetric int16 for <see cref="QuantizedLinear.Forward"/>:
/// column n (a row of W) keeps q[n, k] = round(W[n, k] / s[n]) with s[n] = max_k |W[n, k]| / <see cref="QMax"/>, so
/// |q| ≤ 8191 (14 bits: the relative rounding error of an element is at most 2⁻¹⁴ of its column's largest). Stored as
/// ⌈OC/32⌉ panels; panel p holds, for every pair index kp in [0, ⌈IC/2⌉), 32 columns × 2 consecutive k (zero past IC or OC):
/// exactly the two 512-bit operands of VPMADDWD. Native 64-byte aligned memory; immutable, so any number of threads may
/// read it. Half the bytes of <see cref="PackedWeight"/>. Dimension letters: IC in, OC out.
/// </summary>
public sealed unsafe class Int16Weight : IDisposable
{
    /// <summary>Columns per panel (two 16-lane int32 accumulators).</summary>
    public const int Panel = 32;
    /// <summary>Largest quantised magnitude, for weights and inputs alike. 16 pairs of products of two such values sum to at
    /// most 32·8191² = 2 146 959 392 &lt; 2³¹, so <see cref="QuantizedLinear.BlockPairs"/> pairs never overflow int32.</summary>
    public const int QMax = 8191;
    /// <summary>A column (or input row) whose largest magnitude is below this is quantised as zeros: 8191/max would overflow
    /// float. The absolute error this allows, below 1e-30·Σ|other operand|, is far under fp32 rounding of any real output.</summary>
    public const float FlushBelow = 1e-30f;
    private short* _data;
    private float* _scale;

    /// <summary>OC: output features.</summary>
    public int OutFeatures { get; }
    /// <summary>IC: input features.</summary>
    public int InFeatures { get; }
    /// <summary>⌈IC/2⌉: k pairs.</summary>
    public int Pairs { get; }
    /// <summary>⌈OC/32⌉.</summary>
    public int Panels { get; }
    /// <summary>Bytes of quantised storage (weights and column scales).</summary>
    public long Bytes => (long)Panels * Panel * Pairs * 2 * sizeof(short) + (long)Panels * Panel * sizeof(float);

    internal short* Data { get { ObjectDisposedException.ThrowIf(_data is null, this); return _data; } }
    internal float* Scales { get { ObjectDisposedException.ThrowIf(_data is null, this); return _scale; } }

    /// <summary>Quantises <paramref name="weight"/> (OC, IC), row-major as Hugging Face stores it.</summary>
    /// <exception cref="ShapeException">a dimension is not positive or the span is not OC·IC long.</exception>
    /// <exception cref="ArgumentException">the weight holds NaN or ±Inf (named by its position).</exception>
    public Int16Weight(ReadOnlySpan<float> weight, int outFeatures, int inFeatures)
    {
        Check.Dims("Int16Weight(OC, IC)", outFeatures, inFeatures);
        if (weight.Length != (long)outFeatures * inFeatures)
            throw new ShapeException($"weight: expected (OC={outFeatures}, IC={inFeatures}) = {(long)outFeatures * inFeatures} elements, got {weight.Length}");
        for (int i = 0; i < weight.Length; i++)
            if (!float.IsFinite(weight[i]))
                throw new ArgumentException($"weight[{i / inFeatures}, {i % inFeatures}] = {weight[i]} is not finite: it cannot be quantised", nameof(weight));
        OutFeatures = outFeatures; InFeatures = inFeatures;
        Pairs = (inFeatures + 1) / 2;
        Panels = (outFeatures + Panel - 1) / Panel;
        long shorts = (long)Panels * Panel * Pairs * 2;
        _data = (short*)NativeMemory.AlignedAlloc((nuint)(shorts * sizeof(short)), 64);
        _scale = (float*)NativeMemory.AlignedAlloc((nuint)(Panels * Panel * sizeof(float)), 64);
        NativeMemory.Clear(_data, (nuint)(shorts * sizeof(short)));
        for (int n = 0; n < Panels * Panel; n++)
        {
            if (n >= outFeatures) { _scale[n] = 0f; continue; }
            ReadOnlySpan<float> w = weight.Slice(n * inFeatures, inFeatures);
            float max = 0f;
            foreach (float v in w) max = MathF.Max(max, MathF.Abs(v));
            if (max < FlushBelow) max = 0f;                     // a column of magnitudes below 1e-30 is zero (8191/max would overflow)
            _scale[n] = max / QMax;
            float inv = max > 0f ? QMax / max : 0f;
            int p = n / Panel, j = n % Panel;
            short* dst = _data + (nint)p * Panel * Pairs * 2 + (j / 16) * 32 + (j % 16) * 2;
            for (int k = 0; k < inFeatures; k++)
                dst[(nint)(k / 2) * 64 + (k & 1)] = QuantizedLinear.Quantize(w[k], inv);
        }
    }

    /// <summary>The dequantised weight s[n]·q[n, k] (OC, IC): what <see cref="QuantizedLinear.Forward"/> multiplies by.</summary>
    public float[] Dequantize()
    {
        var w = new float[(long)OutFeatures * InFeatures];
        short* d = Data;
        for (int n = 0; n < OutFeatures; n++)
        {
            short* src = d + (nint)(n / Panel) * Panel * Pairs * 2 + (n % Panel / 16) * 32 + (n % 16) * 2;
            for (int k = 0; k < InFeatures; k++) w[(long)n * InFeatures + k] = _scale[n] * src[(nint)(k / 2) * 64 + (k & 1)];
        }
        return w;
    }

    /// <summary>Frees the native memory.</summary>
    public void Dispose()
    {
        if (_data is null) return;
        NativeMemory.AlignedFree(_data);
        NativeMemory.AlignedFree(_scale);
        _data = null; _scale = null;
        GC.SuppressFinalize(this);
    }

    ~Int16Weight()
    {
        if (_data is not null) { NativeMemory.AlignedFree(_data); NativeMemory.AlignedFree(_scale); }
    }
}

/// <summary>
/// out(M, OC) = act(s_x[m]·s_w[n]·Σ_k q_x[m, k]·q_w[n, k] + bias) on an <see cref="Int16Weight"/>: the serving path's Linear at
/// reduced precision. Each input row is quantised on the fly (s_x[m] = max_k |x[m, k]| / 8191, q = round-to-nearest-even),
/// then VPMADDWD multiplies pairs of int16 into int32 (64 products per instruction pair with VPADDD: 1.5x the multiply-adds
/// per cycle of an fp32 FMA on this Zen 4, and half the weight bytes to stream). Every <see cref="BlockPairs"/> pairs the exact
/// int32 sum is converted and added to an fp32 accumulator, so nothing overflows whatever the inputs; the scales, the bias and
/// the activation are applied in the store. The integer sums are exact and the fp32 steps run in a fixed order, so results
/// are bit-identical for any thread count, any M and on the portable path (no AVX-512BW). A non-finite input row gives a NaN
/// output row (never a silently wrong number). No managed allocation.
/// <para>Accuracy: against the fp32 Linear the relative error of an output is about 2⁻¹⁴·(max|x|/rms(x) + max|w|/rms(w))/√3
/// (the rounding of both operands, averaged over k): ≈ 1e-3 on BERT activations with outliers; see the tests and docs/PERF.md.</para>
/// </summary>
public static unsafe class QuantizedLinear
{
    /// <summary>k pairs summed in int32 before conversion to fp32 (see <see cref="Int16Weight.QMax"/>).</summary>
    public const int BlockPairs = 16;
    /// <summary>Multiply-adds per thread below which another thread does not pay for waking it.</summary>
    private const long Grain = 1L << 17;

    /// <summary>Tests only: run the portable path even where AVX-512BW or AVX2 exists (it must give the same bits).</summary>
    internal static bool ForcePortable;
    /// <summary>Tests only: run the AVX2 path (256-bit VPMADDWD, Zen 3 and other AVX2-only machines) even where AVX-512BW
    /// exists (it must give the same bits).</summary>
    internal static bool ForceAvx2;

    private static bool UseAvx512 => Avx512BW.IsSupported && !ForcePortable && !ForceAvx2;
    private static bool UseAvx2 => Avx2.IsSupported && !ForcePortable;

    /// <summary>int16 elements of the scratch <see cref="Forward"/> needs for M rows of IC inputs: ⌈M/6⌉·6·2·⌈IC/2⌉ (the rows
    /// are stored packed in tiles of six, zero-padded).</summary>
    public static long ScratchLength(int M, int inFeatures) => (M + 5L) / 6 * 6 * 2 * ((inFeatures + 1L) / 2);

    /// <summary>round(x·inv) to nearest even, clamped to ±8191: the rounding of CVTPS2DQ, so both paths agree.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static short Quantize(float x, float inv)
    {
        float r = MathF.Round(x * inv, MidpointRounding.ToEven);
        return (short)Math.Clamp(r, -Int16Weight.QMax, Int16Weight.QMax);
    }

    /// <summary>out = act(inp·Wᵀ + bias) in int16. <paramref name="quantized"/>: scratch of at least
    /// <see cref="ScratchLength"/> elements; <paramref name="rowScale"/>: scratch of at least M. <paramref name="bias"/> empty =
    /// none; <paramref name="act"/> Identity, Gelu or Relu. <paramref name="maxThreads"/> 0 = <see cref="CpuParallel.Threads"/>.</summary>
    /// <exception cref="ShapeException">a span does not match (M, IC) / (OC) / (M, OC), a scratch is too short, M not positive.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(ReadOnlySpan<float> input, int M, Int16Weight w, ReadOnlySpan<float> bias, Span<float> output,
        Span<short> quantized, Span<float> rowScale, Activation act = Activation.Identity, int maxThreads = 0)
    {
        ArgumentNullException.ThrowIfNull(w);
        int K = w.InFeatures, N = w.OutFeatures, KP = w.Pairs;
        Check.Dims("QuantizedLinear.Forward(M)", M);
        if (input.Length != (long)M * K) throw new ShapeException($"input: expected (M={M}, IC={K}) = {(long)M * K} elements, got {input.Length}");
        if (output.Length != (long)M * N) throw new ShapeException($"output: expected (M={M}, OC={N}) = {(long)M * N} elements, got {output.Length}");
        if (!bias.IsEmpty && bias.Length != N) throw new ShapeException($"bias: expected (OC={N}) elements, got {bias.Length}");
        long need = (long)(M + 5) / 6 * 6 * 2 * KP;
        if (quantized.Length < need) throw new ShapeException($"quantized: scratch needs ⌈M/6⌉·6·2·⌈IC/2⌉ = {need} int16, got {quantized.Length}");
        if (rowScale.Length < M) throw new ShapeException($"rowScale: scratch needs M = {M} floats, got {rowScale.Length}");
        if (act is not (Activation.Identity or Activation.Gelu or Activation.Relu))
            throw new ArgumentOutOfRangeException(nameof(act), act, $"act: QuantizedLinear fuses Identity, Gelu or Relu, not {act}");
        fixed (float* a = input, c = output, b = bias, rs = rowScale)
        fixed (short* q = quantized)
        {
            // Quantise each row, then store its k pairs packed by tiles of six rows: pair k of row r of tile t at int
            // (t·KP + k)·6 + r, so a tile's six broadcasts per k come from one pointer (no per-row pointers to keep in
            // registers). Tiles are independent: split over threads when there are enough rows.
            int tilesM = (M + 5) / 6;
            int threads = maxThreads > 0 ? Math.Min(maxThreads, CpuParallel.Threads) : CpuParallel.Threads;
            var pack = new PackJob { X = a, Q = (int*)q, RowScale = rs, M = M, K = K, KP = KP };
            if (threads <= 1 || (long)M * K < 32768) pack.Execute(0, tilesM, 0);
            else CpuParallel.ForRange(tilesM, ref pack, threads);
            var job = new Job { Q = (int*)q, C = c, Bias = bias.IsEmpty ? null : b, RowScale = rs, W = w.Data, ColScale = w.Scales, M = M, N = N, KP = KP, Act = act };
            long work = (long)M * N * K;
            threads = (int)Math.Clamp(work / Grain, 1, Math.Min(threads, w.Panels));
            if (threads <= 1) job.Execute(0, w.Panels, 0);
            else CpuParallel.ForRange(w.Panels, ref job, threads);
        }
        GC.KeepAlive(w);   // the job holds raw pointers into w: its finalizer must not run before the job ends
    }

    /// <summary>q[0, 2·⌈K/2⌉) = round(x·8191/max|x|) (the pad element 0); scale = max|x|/8191 (NaN when x is not finite).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QuantizeRow(float* x, int K, short* q, out float scale)
    {
        float max = 0f;
        bool finite = true;
        int k = 0;
        if (UseAvx512)
        {
            Vector512<float> vmax = Vector512<float>.Zero, poison = Vector512<float>.Zero;
            for (; k + 16 <= K; k += 16)
            {
                var v = Vector512.Load(x + k);
                vmax = Vector512.MaxNative(vmax, Vector512.Abs(v));
                poison += v * Vector512<float>.Zero;            // NaN as soon as one element is NaN or ±Inf
            }
            for (int i = 0; i < 16; i++) max = MathF.Max(max, vmax.GetElement(i));
            finite = Vector512.Sum(poison) == 0f;
        }
        else if (UseAvx2)
        {
            Vector256<float> vmax = Vector256<float>.Zero, poison = Vector256<float>.Zero;
            for (; k + 8 <= K; k += 8)
            {
                var v = Vector256.Load(x + k);
                vmax = Vector256.MaxNative(vmax, Vector256.Abs(v));
                poison += v * Vector256<float>.Zero;
            }
            for (int i = 0; i < 8; i++) max = MathF.Max(max, vmax.GetElement(i));
            finite = Vector256.Sum(poison) == 0f;
        }
        for (; k < K; k++)
        {
            float v = x[k];
            finite &= float.IsFinite(v);
            max = MathF.Max(max, MathF.Abs(v));
        }
        if (!finite)
        {
            new Span<short>(q, 2 * ((K + 1) / 2)).Clear();
            scale = float.NaN;
            return;
        }
        if (max < Int16Weight.FlushBelow) max = 0f;             // a row of magnitudes below 1e-30 is zero (8191/max would overflow)
        scale = max / Int16Weight.QMax;
        float inv = max > 0f ? Int16Weight.QMax / max : 0f;
        k = 0;
        if (UseAvx512)
        {
            var vinv = Vector512.Create(inv);
            var lim = Vector512.Create(Int16Weight.QMax);
            for (; k + 16 <= K; k += 16)
            {
                Vector512<int> r = Avx512F.ConvertToVector512Int32(Vector512.Load(x + k) * vinv);   // round to nearest even
                r = Vector512.Min(Vector512.Max(r, -lim), lim);
                Avx512F.ConvertToVector256Int16(r).Store(q + k);
            }
        }
        else if (UseAvx2)
        {
            var vinv = Vector256.Create(inv);
            var lim = Vector256.Create(Int16Weight.QMax);
            for (; k + 16 <= K; k += 16)
            {
                Vector256<int> r0 = Avx.ConvertToVector256Int32(Vector256.Load(x + k) * vinv);       // CVTPS2DQ: nearest even
                Vector256<int> r1 = Avx.ConvertToVector256Int32(Vector256.Load(x + k + 8) * vinv);
                r0 = Vector256.Min(Vector256.Max(r0, -lim), lim);
                r1 = Vector256.Min(Vector256.Max(r1, -lim), lim);
                Vector256.Narrow(r0, r1).Store(q + k);                                               // in range: exact
            }
        }
        for (; k < K; k++) q[k] = Quantize(x[k], inv);
        if ((K & 1) != 0) q[K] = 0;
    }

    /// <summary>Quantises the rows of tiles [start, end) into the packed layout (zero rows past M).</summary>
    private struct PackJob : IParallelRangeJob
    {
        public float* X, RowScale;
        public int* Q;
        public int M, K, KP;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int start, int end, int part)
        {
            int KP = this.KP;
            short* row = stackalloc short[2 * KP <= 8192 ? 2 * KP : 0];
            bool heap = 2 * KP > 8192;
            if (heap) row = (short*)NativeMemory.Alloc((nuint)(2 * KP * sizeof(short)));
            try
            {
                int* pr = (int*)row;
                for (int m = start * 6; m < end * 6; m++)
                {
                    int* dst = Q + (nint)(m / 6) * KP * 6 + m % 6;
                    if (m < M)
                    {
                        QuantizeRow(X + (nint)m * K, K, row, out RowScale[m]);
                        for (int k = 0; k < KP; k++) dst[(nint)k * 6] = pr[k];
                    }
                    else
                        for (int k = 0; k < KP; k++) dst[(nint)k * 6] = 0;   // the last tile's missing rows
                }
            }
            finally { if (heap) NativeMemory.Free(row); }
        }
    }

    private struct Job : IParallelRangeJob
    {
        public int* Q;
        public float* C, Bias, RowScale, ColScale;
        public short* W;
        public int M, N, KP;
        public Activation Act;

        public readonly void Execute(int start, int end, int part)
        {
            const int P = Int16Weight.Panel;
            float* tile = stackalloc float[6 * P];
            float* bias = stackalloc float[P];
            // m blocks whose quantised rows (≤ 256 KB) stay in L2 while every panel of this thread passes over them
            int MC = Math.Max(6, (int)(262144L / (4L * KP)) / 6 * 6);
            for (int ic = 0; ic < M; ic += MC)
            {
                int mc = Math.Min(MC, M - ic);
                for (int p = start; p < end; p++)
                {
                    short* panel = W + (nint)p * P * KP * 2;
                    int j0 = p * P, nr = Math.Min(P, N - j0);
                    for (int j = 0; j < P; j++) bias[j] = Bias is not null && j < nr ? Bias[j0 + j] : 0f;
                    bool full = nr == P;
                    for (int i = ic; i < ic + mc; i += 6)
                    {
                        int mr = Math.Min(6, ic + mc - i);
                        float* c = full ? C + (nint)i * N + j0 : tile;
                        nint ldc = full ? N : P;
                        int* q = Q + (nint)(i / 6) * KP * 6;
                        float* rs = RowScale + i, cs = ColScale + j0;
                        switch (mr)
                        {
                            case 6: Tile<R6>(q, KP, panel, c, ldc, rs, cs, bias, Act); break;
                            case 5: Tile<R5>(q, KP, panel, c, ldc, rs, cs, bias, Act); break;
                            case 4: Tile<R4>(q, KP, panel, c, ldc, rs, cs, bias, Act); break;
                            case 3: Tile<R3>(q, KP, panel, c, ldc, rs, cs, bias, Act); break;
                            case 2: Tile<R2>(q, KP, panel, c, ldc, rs, cs, bias, Act); break;
                            default: Tile<R1>(q, KP, panel, c, ldc, rs, cs, bias, Act); break;
                        }
                        if (!full)
                            for (int r = 0; r < mr; r++)
                                for (int j = 0; j < nr; j++) C[(nint)(i + r) * N + j0 + j] = tile[r * P + j];
                    }
                }
            }
        }
    }


    /// <summary>An R×32 tile: for each block of 16 k pairs the exact int32 sums Σ q_x·q_w (VPMADDWD + VPADDD), converted and
    /// added to fp32 accumulators in block order; then c = act(acc·(s_x[r]·s_w[j]) + bias[j]). <paramref name="q"/>: the
    /// tile's packed quantised rows: pair k of row r at int k·6 + r.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TR>(int* q, int KP, short* b, float* c, nint ldc, float* rowScale, float* colScale, float* bias,
        Activation act) where TR : ITileRows
    {
        int R = TR.R;
        if (UseAvx512)
        {
            Vector512<float> f00 = default, f01 = default, f10 = default, f11 = default, f20 = default, f21 = default;
            Vector512<float> f30 = default, f31 = default, f40 = default, f41 = default, f50 = default, f51 = default;
            for (int k0 = 0; k0 < KP; k0 += BlockPairs)
            {
                int k1 = Math.Min(KP, k0 + BlockPairs);
                Vector512<int> i00 = default, i01 = default, i10 = default, i11 = default, i20 = default, i21 = default;
                Vector512<int> i30 = default, i31 = default, i40 = default, i41 = default, i50 = default, i51 = default;
                short* bk = b + (nint)k0 * 64;
                int* ak = q + (nint)k0 * 6;
                for (int k = k0; k < k1; k++, bk += 64, ak += 6)
                {
                    Vector512<short> b0 = Vector512.LoadAligned(bk), b1 = Vector512.LoadAligned(bk + 32);
                    Vector512<short> x = Vector512.Create(ak[0]).AsInt16();
                    i00 += Avx512BW.MultiplyAddAdjacent(x, b0); i01 += Avx512BW.MultiplyAddAdjacent(x, b1);
                    if (R > 1) { x = Vector512.Create(ak[1]).AsInt16(); i10 += Avx512BW.MultiplyAddAdjacent(x, b0); i11 += Avx512BW.MultiplyAddAdjacent(x, b1); }
                    if (R > 2) { x = Vector512.Create(ak[2]).AsInt16(); i20 += Avx512BW.MultiplyAddAdjacent(x, b0); i21 += Avx512BW.MultiplyAddAdjacent(x, b1); }
                    if (R > 3) { x = Vector512.Create(ak[3]).AsInt16(); i30 += Avx512BW.MultiplyAddAdjacent(x, b0); i31 += Avx512BW.MultiplyAddAdjacent(x, b1); }
                    if (R > 4) { x = Vector512.Create(ak[4]).AsInt16(); i40 += Avx512BW.MultiplyAddAdjacent(x, b0); i41 += Avx512BW.MultiplyAddAdjacent(x, b1); }
                    if (R > 5) { x = Vector512.Create(ak[5]).AsInt16(); i50 += Avx512BW.MultiplyAddAdjacent(x, b0); i51 += Avx512BW.MultiplyAddAdjacent(x, b1); }
                }
                f00 += Avx512F.ConvertToVector512Single(i00); f01 += Avx512F.ConvertToVector512Single(i01);
                if (R > 1) { f10 += Avx512F.ConvertToVector512Single(i10); f11 += Avx512F.ConvertToVector512Single(i11); }
                if (R > 2) { f20 += Avx512F.ConvertToVector512Single(i20); f21 += Avx512F.ConvertToVector512Single(i21); }
                if (R > 3) { f30 += Avx512F.ConvertToVector512Single(i30); f31 += Avx512F.ConvertToVector512Single(i31); }
                if (R > 4) { f40 += Avx512F.ConvertToVector512Single(i40); f41 += Avx512F.ConvertToVector512Single(i41); }
                if (R > 5) { f50 += Avx512F.ConvertToVector512Single(i50); f51 += Avx512F.ConvertToVector512Single(i51); }
            }
            Vector512<float> cs0 = Vector512.Load(colScale), cs1 = Vector512.Load(colScale + 16);
            Vector512<float> bias0 = Vector512.Load(bias), bias1 = Vector512.Load(bias + 16);
            Store(c, f00, f01, rowScale[0], cs0, cs1, bias0, bias1, act);
            if (R > 1) Store(c + ldc, f10, f11, rowScale[1], cs0, cs1, bias0, bias1, act);
            if (R > 2) Store(c + 2 * ldc, f20, f21, rowScale[2], cs0, cs1, bias0, bias1, act);
            if (R > 3) Store(c + 3 * ldc, f30, f31, rowScale[3], cs0, cs1, bias0, bias1, act);
            if (R > 4) Store(c + 4 * ldc, f40, f41, rowScale[4], cs0, cs1, bias0, bias1, act);
            if (R > 5) Store(c + 5 * ldc, f50, f51, rowScale[5], cs0, cs1, bias0, bias1, act);
            return;
        }
        if (UseAvx2)
        {
            Avx2Tile<TR>(q, KP, b, c, ldc, rowScale, colScale, bias, act);
            return;
        }
        // Portable path: the same exact int32 block sums, converted and added in the same order.
        short* qs = (short*)q;
        for (int r = 0; r < R; r++)
            for (int j = 0; j < 32; j++)
            {
                float f = 0f;
                short* col = b + (j / 16) * 32 + (j % 16) * 2;
                short* row = qs + 2 * r;                           // pair k at shorts 12·k + 2r, 12·k + 2r + 1
                for (int k0 = 0; k0 < KP; k0 += BlockPairs)
                {
                    int s = 0;
                    for (int k = k0; k < Math.Min(KP, k0 + BlockPairs); k++)
                        s += row[12 * k] * col[(nint)k * 64] + row[12 * k + 1] * col[(nint)k * 64 + 1];
                    f += s;
                }
                float y = f * rowScale[r] * colScale[j];
                y += bias[j];
                c[r * ldc + j] = act switch { Activation.Gelu => SimdMath.Gelu(y), Activation.Relu => y > 0f || float.IsNaN(y) ? y : 0f, _ => y };
            }
    }

    /// <summary>The R×32 tile with 256-bit VPMADDWD (AVX2): the same exact int32 block sums per column, converted and added in
    /// block order, so the same bits as the AVX-512 and portable paths. Sixteen ymm registers hold R×2 int32 accumulators for
    /// 16 columns, two weight vectors and a broadcast, so the tile runs as two halves of 16 columns and keeps its fp32 sums
    /// in a small stack tile (one load-add-store per 16 k pairs).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Avx2Tile<TR>(int* q, int KP, short* b, float* c, nint ldc, float* rowScale, float* colScale, float* bias,
        Activation act) where TR : ITileRows
    {
        int R = TR.R;
        float* acc = stackalloc float[6 * 32];                  // (R, 32) fp32 sums
        new Span<float>(acc, R * 32).Clear();
        for (int half = 0; half < 2; half++)
        {
            short* bh = b + half * 32;                          // pair k: columns 16·half .. +16 at shorts k·64 + 32·half
            float* ah = acc + half * 16;
            for (int k0 = 0; k0 < KP; k0 += BlockPairs)
            {
                int k1 = Math.Min(KP, k0 + BlockPairs);
                Vector256<int> i00 = default, i01 = default, i10 = default, i11 = default, i20 = default, i21 = default;
                Vector256<int> i30 = default, i31 = default, i40 = default, i41 = default, i50 = default, i51 = default;
                for (int k = k0; k < k1; k++)
                {
                    short* bk = bh + (nint)k * 64;
                    var b0 = Vector256.Load(bk); var b1 = Vector256.Load(bk + 16);
                    int* ak = q + (nint)k * 6;
                    var x = Vector256.Create(ak[0]).AsInt16();
                    i00 += Avx2.MultiplyAddAdjacent(x, b0); i01 += Avx2.MultiplyAddAdjacent(x, b1);
                    if (R > 1) { x = Vector256.Create(ak[1]).AsInt16(); i10 += Avx2.MultiplyAddAdjacent(x, b0); i11 += Avx2.MultiplyAddAdjacent(x, b1); }
                    if (R > 2) { x = Vector256.Create(ak[2]).AsInt16(); i20 += Avx2.MultiplyAddAdjacent(x, b0); i21 += Avx2.MultiplyAddAdjacent(x, b1); }
                    if (R > 3) { x = Vector256.Create(ak[3]).AsInt16(); i30 += Avx2.MultiplyAddAdjacent(x, b0); i31 += Avx2.MultiplyAddAdjacent(x, b1); }
                    if (R > 4) { x = Vector256.Create(ak[4]).AsInt16(); i40 += Avx2.MultiplyAddAdjacent(x, b0); i41 += Avx2.MultiplyAddAdjacent(x, b1); }
                    if (R > 5) { x = Vector256.Create(ak[5]).AsInt16(); i50 += Avx2.MultiplyAddAdjacent(x, b0); i51 += Avx2.MultiplyAddAdjacent(x, b1); }
                }
                AddBlock(ah, i00, i01);
                if (R > 1) AddBlock(ah + 32, i10, i11);
                if (R > 2) AddBlock(ah + 64, i20, i21);
                if (R > 3) AddBlock(ah + 96, i30, i31);
                if (R > 4) AddBlock(ah + 128, i40, i41);
                if (R > 5) AddBlock(ah + 160, i50, i51);
            }
        }
        for (int r = 0; r < R; r++)
        {
            var rs = Vector256.Create(rowScale[r]);
            for (int j = 0; j < 32; j += 8)
                StoreAct(c + r * ldc + j, Vector256.Load(acc + r * 32 + j) * rs * Vector256.Load(colScale + j) + Vector256.Load(bias + j), act);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddBlock(float* a, Vector256<int> lo, Vector256<int> hi)
    {
        Vector256.Store(Vector256.Load(a) + Avx.ConvertToVector256Single(lo), a);
        Vector256.Store(Vector256.Load(a + 8) + Avx.ConvertToVector256Single(hi), a + 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector512<float> x0, Vector512<float> x1, float rowScale, Vector512<float> cs0,
        Vector512<float> cs1, Vector512<float> b0, Vector512<float> b1, Activation act)
    {
        var rs = Vector512.Create(rowScale);
        x0 = x0 * rs * cs0 + b0;                              // (acc·s_x)·s_w: no underflow of s_x·s_w for small scales
        x1 = x1 * rs * cs1 + b1;
        StoreAct(c, x0.GetLower(), act); StoreAct(c + 8, x0.GetUpper(), act);
        StoreAct(c + 16, x1.GetLower(), act); StoreAct(c + 24, x1.GetUpper(), act);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreAct(float* c, Vector256<float> x, Activation act)
    {
        if (act == Activation.Gelu) x = SimdMath.Gelu(x);
        else if (act == Activation.Relu) x = Vector256.Max(x, Vector256<float>.Zero);
        Vector256.Store(x, c);
    }
}
