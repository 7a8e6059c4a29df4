// Inference Linear on pre-packed weights: out = act(inp·Wᵀ + b), W packed once into 16-column panels, fused epilogue.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FastRec.Kernels.Cpu;

/// <summary>
/// A Hugging Face Linear weight W (OC, IC) packed once for <see cref="PackedLinear.Forward"/>: ⌈OC/16⌉ panels, each holding
/// for every k in [0, IC) the 16 weights W[j, k] of its columns j (zero past OC), in 64-byte aligned native memory.
/// Immutable after construction, so any number of threads may read it at once. Dimension letters: IC in, OC out.
/// </summary>
public sealed unsafe class PackedWeight : IDisposable
{
    /// <summary>Columns per panel (the micro-kernel's width).</summary>
    public const int Panel = 16;
    private float* _data;

    /// <summary>OC: output features (rows of the HF weight).</summary>
    public int OutFeatures { get; }
    /// <summary>IC: input features (columns of the HF weight).</summary>
    public int InFeatures { get; }
    /// <summary>⌈OC/16⌉.</summary>
    public int Panels { get; }
    /// <summary>Bytes of packed storage.</summary>
    public long Bytes => (long)Panels * Panel * InFeatures * sizeof(float);

    internal float* Data
    {
        get
        {
            ObjectDisposedException.ThrowIf(_data is null, this);
            return _data;
        }
    }

    /// <summary>Packs <paramref name="weight"/> (OC, IC), row-major as Hugging Face stores it.</summary>
    /// <exception cref="ShapeException">a dimension is not positive or the span is not OC·IC long.</exception>
    public PackedWeight(ReadOnlySpan<float> weight, int outFeatures, int inFeatures)
    {
        Check.Dims("PackedWeight(OC, IC)", outFeatures, inFeatures);
        if (weight.Length != (long)outFeatures * inFeatures)
            throw new ShapeException($"weight: expected (OC={outFeatures}, IC={inFeatures}) = {(long)outFeatures * inFeatures} elements, got {weight.Length}");
        OutFeatures = outFeatures; InFeatures = inFeatures;
        Panels = (outFeatures + Panel - 1) / Panel;
        _data = (float*)NativeMemory.AlignedAlloc((nuint)Bytes, 64);
        for (int p = 0; p < Panels; p++)
        {
            float* dst = _data + (nint)p * Panel * inFeatures;
            for (int j = 0; j < Panel; j++)
            {
                int row = p * Panel + j;
                if (row < outFeatures)
                {
                    ReadOnlySpan<float> w = weight.Slice(row * inFeatures, inFeatures);
                    for (int k = 0; k < inFeatures; k++) dst[(nint)k * Panel + j] = w[k];
                }
                else
                    for (int k = 0; k < inFeatures; k++) dst[(nint)k * Panel + j] = 0f;
            }
        }
    }

    /// <summary>Frees the native memory.</summary>
    public void Dispose()
    {
        if (_data is null) return;
        NativeMemory.AlignedFree(_data);
        _data = null;
        GC.SuppressFinalize(this);
    }

    ~PackedWeight()
    {
        if (_data is not null) NativeMemory.AlignedFree(_data);
    }
}

/// <summary>
/// out(M, OC) = act(inp(M, IC) · Wᵀ + bias) on a <see cref="PackedWeight"/>: the serving path's Linear. The input is read in
/// place (no A packing: each 6×16 tile broadcasts its six rows' elements; the last tile has exactly M mod 6 rows), blocked
/// GotoBLAS-style when the input exceeds 256 KB (k blocks of <see cref="BlockK"/> so a panel chunk sits in L1, m blocks of
/// <see cref="BlockM"/> rows so the input block sits in L2: −20 % at M = 512, see docs/PERF.md); bias and the activation are applied in the last k block's store. Columns are split over
/// <see cref="CpuParallel"/> threads in whole panels; every output element is the same FMA chains in k order (one per k block,
/// added in order), so results do not depend on the thread count or on M.
/// No managed allocation.
/// </summary>
public static unsafe class PackedLinear
{
    /// <summary>Multiply-adds per thread below which another thread does not pay for waking it.</summary>
    private const long Grain = 1L << 17;

    /// <summary>out = act(inp·Wᵀ + bias). <paramref name="bias"/> empty = none; <paramref name="act"/> Identity, Gelu or Relu
    /// (Tanh is refused: apply it afterwards). <paramref name="maxThreads"/> 0 = <see cref="CpuParallel.Threads"/>.</summary>
    /// <exception cref="ShapeException">a span does not match (M, IC) / (OC) / (M, OC); M not positive.</exception>
    public static void Forward(ReadOnlySpan<float> input, int M, PackedWeight w, ReadOnlySpan<float> bias, Span<float> output,
        Activation act = Activation.Identity, int maxThreads = 0)
    {
        ArgumentNullException.ThrowIfNull(w);
        int K = w.InFeatures, N = w.OutFeatures;
        Check.Dims("PackedLinear.Forward(M)", M);
        if (input.Length != (long)M * K) throw new ShapeException($"input: expected (M={M}, IC={K}) = {(long)M * K} elements, got {input.Length}");
        if (output.Length != (long)M * N) throw new ShapeException($"output: expected (M={M}, OC={N}) = {(long)M * N} elements, got {output.Length}");
        if (!bias.IsEmpty && bias.Length != N) throw new ShapeException($"bias: expected (OC={N}) elements, got {bias.Length}");
        if (act is not (Activation.Identity or Activation.Gelu or Activation.Relu))
            throw new ArgumentOutOfRangeException(nameof(act), act, $"act: PackedLinear fuses Identity, Gelu or Relu, not {act}");
        fixed (float* a = input, c = output, b = bias)
        {
            var job = new Job { A = a, C = c, Bias = bias.IsEmpty ? null : b, W = w.Data, M = M, N = N, K = K, Act = act, KBlock = s_kc, MBlock = s_mc };
            long work = (long)M * N * K;
            // With the 512-bit tiles a unit of work is a pair of panels (the last one may be single), so no thread is
            // left a lone panel that the wide tile cannot take.
            job.Pairs = Vector512Enabled;
            int units = job.Pairs ? (w.Panels + 1) / 2 : w.Panels;
            int threads = maxThreads > 0 ? Math.Min(maxThreads, CpuParallel.Threads) : CpuParallel.Threads;
            threads = (int)Math.Clamp(work / Grain, 1, Math.Min(threads, units));
            if (threads <= 1) job.Execute(0, units, 0);
            else CpuParallel.ForRange(units, ref job, threads);
        }
        GC.KeepAlive(w);   // the job holds raw pointers into w: its finalizer must not run before the job ends
    }

    /// <summary>Depth of a k block (default 384: a panel chunk of 384 × 16 floats = 24 KB stays in L1 while the row tiles use
    /// it). A tuning knob for benchmarks; changing it changes the rounding (the chains per element).</summary>
    public static int BlockK { get => s_kc; set => s_kc = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "BlockK must be >= 1"); }
    /// <summary>Rows of an m block (default 96: an input block of 96 × 384 floats = 144 KB stays in L2 while every panel passes
    /// over it). A tuning knob for benchmarks; it does not change results.</summary>
    public static int BlockM { get => s_mc; set => s_mc = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "BlockM must be >= 1"); }
    private static int s_kc = 384, s_mc = 96;

    /// <summary>Whether two adjacent full panels are computed together by a 6×32 tile of 512-bit FMAs (default: where
    /// Vector512 is hardware-accelerated; Zen 5 and Intel run 512-bit FMAs at full width, Zen 4 as two halves). Each output
    /// element is the same FMA chain as in the 256-bit tile, so results are bitwise the same either way; a knob for
    /// benchmarks and tests.</summary>
    public static bool Vector512Enabled
    {
        get => s_v512;
        set => s_v512 = value && Avx512F.IsSupported && Vector512.IsHardwareAccelerated;
    }
    private static bool s_v512 = Avx512F.IsSupported && Vector512.IsHardwareAccelerated;

    /// <summary>
    /// The loop nest of one thread's panels [start, end): for each k block, for each m block, for each panel, the row tiles
    /// (6 rows, the last one M mod 6). Partial sums of earlier k blocks live in C; the last k block adds the bias and applies
    /// the activation in its store. Each output element is the same sequence of FMA chains (one per k block, in order) however
    /// the rows or panels are split.
    /// </summary>
    private struct Job : IParallelRangeJob
    {
        public float* A, C, Bias, W;
        public int M, N, K, KBlock, MBlock;
        public Activation Act;
        public bool Pairs;   // units are pairs of panels, computed by the 6×32 Vector512 tile where both are full

        public readonly void Execute(int start, int end, int part)
        {
            if (Pairs) { start *= 2; end = Math.Min(end * 2, (N + PackedWeight.Panel - 1) / PackedWeight.Panel); }
            const int P = PackedWeight.Panel;
            float* tile = stackalloc float[6 * 2 * P];
            float* bias = stackalloc float[2 * P];
            // An input that fits L2 whole (≤ 256 KB) needs no k blocks: one chain per element, no partial sums through C.
            int KC = (long)M * K <= 65536 ? K : KBlock, MC = MBlock;
            for (int pc = 0; pc < K; pc += KC)
            {
                int kc = Math.Min(KC, K - pc);
                bool add = pc > 0, final = pc + kc == K;
                for (int ic = 0; ic < M; ic += MC)
                {
                    int mc = Math.Min(MC, M - ic);
                    int tiles = (mc + 5) / 6;
                    for (int p = start; p < end; p++)
                    {
                        float* chunk = W + (nint)p * P * K + (nint)pc * P;           // (kc, 16) of panel p
                        int j0 = p * P, nr = Math.Min(P, N - j0);
                        if (Pairs && p + 1 < end && j0 + 2 * P <= N)
                        {
                            // Panels p and p + 1, both full: 6×32 tiles, the second panel's chunk K·16 floats further on.
                            for (int j = 0; j < 2 * P; j++) bias[j] = Bias is not null ? Bias[j0 + j] : 0f;
                            float* next2 = p + 2 < end ? chunk + (nint)2 * P * K : null;
                            for (int i = ic, ti = 0; i < ic + mc; i += 6, ti++)
                            {
                                int mr = Math.Min(6, ic + mc - i);
                                float* c = C + (nint)i * N + j0;
                                float* a = A + (nint)i * K + pc;
                                int lo = (int)((long)kc * ti / tiles), hi = (int)((long)kc * (ti + 1) / tiles);
                                float* pf = next2 is null ? null : next2 + (nint)lo * P;
                                int pfCount = next2 is null ? 0 : hi - lo;
                                switch (mr)
                                {
                                    case 6: Tile2<R6>(a, K, kc, chunk, (nint)P * K, c, N, bias, Act, add, final, pf, pfCount, tile); break;
                                    case 5: Tile2<R5>(a, K, kc, chunk, (nint)P * K, c, N, bias, Act, add, final, pf, pfCount, tile); break;
                                    case 4: Tile2<R4>(a, K, kc, chunk, (nint)P * K, c, N, bias, Act, add, final, pf, pfCount, tile); break;
                                    case 3: Tile2<R3>(a, K, kc, chunk, (nint)P * K, c, N, bias, Act, add, final, pf, pfCount, tile); break;
                                    case 2: Tile2<R2>(a, K, kc, chunk, (nint)P * K, c, N, bias, Act, add, final, pf, pfCount, tile); break;
                                    default: Tile2<R1>(a, K, kc, chunk, (nint)P * K, c, N, bias, Act, add, final, pf, pfCount, tile); break;
                                }
                            }
                            p++;
                            continue;
                        }
                        for (int j = 0; j < P; j++) bias[j] = Bias is not null && j < nr ? Bias[j0 + j] : 0f;
                        bool full = nr == P;
                        // While this chunk's tiles run, the next panel's chunk (kc cache lines) is prefetched, spread over the
                        // tiles: at small M the weights stream from memory and this overlaps the stream with the multiply-adds.
                        float* next = p + 1 < end ? chunk + (nint)P * K : null;
                        for (int i = ic, ti = 0; i < ic + mc; i += 6, ti++)
                        {
                            int mr = Math.Min(6, ic + mc - i);
                            float* c = full ? C + (nint)i * N + j0 : tile;
                            nint ldc = full ? N : P;
                            if (!full && add)
                                for (int r = 0; r < mr; r++)
                                    for (int j = 0; j < nr; j++) tile[r * P + j] = C[(nint)(i + r) * N + j0 + j];
                            float* a = A + (nint)i * K + pc;
                            int lo = (int)((long)kc * ti / tiles), hi = (int)((long)kc * (ti + 1) / tiles);
                            float* pf = next is null ? null : next + (nint)lo * P;
                            int pfCount = next is null ? 0 : hi - lo;
                            switch (mr)
                            {
                                case 6: Tile<R6>(a, K, kc, chunk, c, ldc, bias, Act, add, final, pf, pfCount); break;
                                case 5: Tile<R5>(a, K, kc, chunk, c, ldc, bias, Act, add, final, pf, pfCount); break;
                                case 4: Tile<R4>(a, K, kc, chunk, c, ldc, bias, Act, add, final, pf, pfCount); break;
                                case 3: Tile<R3>(a, K, kc, chunk, c, ldc, bias, Act, add, final, pf, pfCount); break;
                                case 2: Tile<R2>(a, K, kc, chunk, c, ldc, bias, Act, add, final, pf, pfCount); break;
                                default: Tile<R1>(a, K, kc, chunk, c, ldc, bias, Act, add, final, pf, pfCount); break;
                            }
                            if (!full)
                                for (int r = 0; r < mr; r++)
                                    for (int j = 0; j < nr; j++) C[(nint)(i + r) * N + j0 + j] = tile[r * P + j];
                        }
                    }
                }
            }
        }
    }


    /// <summary>An R×16 tile over one k block: s[r, :] = Σ_{k &lt; kc} a[r·lda + k]·b[k, :] (one FMA chain per element);
    /// then c = (add ? c + s : s), and in the final block c = act(c + bias) (bias: 16 values). Prefetches
    /// <paramref name="pfCount"/> cache lines from <paramref name="pf"/> on the way.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TR>(float* a, nint lda, int kc, float* b, float* c, nint ldc, float* bias, Activation act, bool add, bool final,
        float* pf, int pfCount) where TR : ITileRows
    {
        int R = TR.R;
        if (Fma.IsSupported && Avx2.IsSupported)
        {
            Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
            Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
            float* a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda, a4 = a + 4 * lda, a5 = a + 5 * lda;
            for (int k = 0; k < kc; k++, b += 16)
            {
                if (k < pfCount) Sse.Prefetch0(pf + (nint)k * 16);   // one line (16 floats) of the next panel
                Vector256<float> b0 = Avx.LoadAlignedVector256(b), b1 = Avx.LoadAlignedVector256(b + 8);
                Vector256<float> x = Vector256.Create(a[k]);
                c00 = Fma.MultiplyAdd(x, b0, c00); c01 = Fma.MultiplyAdd(x, b1, c01);
                if (R > 1) { x = Vector256.Create(a1[k]); c10 = Fma.MultiplyAdd(x, b0, c10); c11 = Fma.MultiplyAdd(x, b1, c11); }
                if (R > 2) { x = Vector256.Create(a2[k]); c20 = Fma.MultiplyAdd(x, b0, c20); c21 = Fma.MultiplyAdd(x, b1, c21); }
                if (R > 3) { x = Vector256.Create(a3[k]); c30 = Fma.MultiplyAdd(x, b0, c30); c31 = Fma.MultiplyAdd(x, b1, c31); }
                if (R > 4) { x = Vector256.Create(a4[k]); c40 = Fma.MultiplyAdd(x, b0, c40); c41 = Fma.MultiplyAdd(x, b1, c41); }
                if (R > 5) { x = Vector256.Create(a5[k]); c50 = Fma.MultiplyAdd(x, b0, c50); c51 = Fma.MultiplyAdd(x, b1, c51); }
            }
            Vector256<float> bias0 = Vector256.Load(bias), bias1 = Vector256.Load(bias + 8);
            Store(c, c00, c01, bias0, bias1, act, add, final);
            if (R > 1) Store(c + ldc, c10, c11, bias0, bias1, act, add, final);
            if (R > 2) Store(c + 2 * ldc, c20, c21, bias0, bias1, act, add, final);
            if (R > 3) Store(c + 3 * ldc, c30, c31, bias0, bias1, act, add, final);
            if (R > 4) Store(c + 4 * ldc, c40, c41, bias0, bias1, act, add, final);
            if (R > 5) Store(c + 5 * ldc, c50, c51, bias0, bias1, act, add, final);
            return;
        }
        // Portable path: the same per-element FMA chain in k order.
        for (int r = 0; r < R; r++)
            for (int j = 0; j < 16; j++)
            {
                float s = 0f;
                for (int k = 0; k < kc; k++) s = MathF.FusedMultiplyAdd(a[r * lda + k], b[(nint)k * 16 + j], s);
                float* o = c + r * ldc + j;
                if (add) s = *o + s;
                if (final)
                {
                    s += bias[j];
                    s = act switch { Activation.Gelu => SimdMath.Gelu(s), Activation.Relu => s > 0f || float.IsNaN(s) ? s : 0f, _ => s };
                }
                *o = s;
            }
    }

    /// <summary>Two panels at once: an R×32 tile (R ≤ 6) of 512-bit FMAs, columns [0, 16) from panel chunk <paramref name="b"/>
    /// and [16, 32) from <paramref name="b"/> + <paramref name="panelStride"/>. Each element is the same FMA chain in k order as
    /// in <see cref="Tile{TR}"/>, and the store is the same 256-bit epilogue, so the results are bitwise equal. Prefetches two
    /// lines (one per panel of the next pair) per k for the first <paramref name="pfCount"/> k. The accumulators go through
    /// <paramref name="acc"/> (6×32 floats, the caller's) to a separate, not inlined epilogue: with the epilogue (bias, GELU)
    /// inlined, or with a stackalloc in this method, the JIT kept the accumulators on the stack inside the k loop (2x slower).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile2<TR>(float* a, nint lda, int kc, float* b, nint panelStride, float* c, nint ldc, float* bias, Activation act,
        bool add, bool final, float* pf, int pfCount, float* acc) where TR : ITileRows
    {
        int R = TR.R;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda, a4 = a + 4 * lda, a5 = a + 5 * lda;
        nint s = panelStride;
        int kp = Math.Min(pfCount, kc);
        for (int pass = 0; pass < 2; pass++)
        {
            // pass 0: the first kp steps, each prefetching a line of both panels of the next pair; pass 1: the rest
            int k0 = pass == 0 ? 0 : kp, k1 = pass == 0 ? kp : kc;
            for (nint k = k0; k < k1; k++)
            {
                if (pass == 0) { Sse.Prefetch0(pf + k * 16); Sse.Prefetch0(pf + s + k * 16); }
                float* bk = b + k * 16;
                Vector512<float> b0 = Vector512.LoadAligned(bk), b1 = Vector512.LoadAligned(bk + s);
                Vector512<float> x;
                x = Vector512.Create(a[k]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
                if (R > 1) { x = Vector512.Create(a1[k]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11); }
                if (R > 2) { x = Vector512.Create(a2[k]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21); }
                if (R > 3) { x = Vector512.Create(a3[k]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31); }
                if (R > 4) { x = Vector512.Create(a4[k]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41); }
                if (R > 5) { x = Vector512.Create(a5[k]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51); }
            }
        }
        c00.Store(acc); c01.Store(acc + 16);
        if (R > 1) { c10.Store(acc + 32); c11.Store(acc + 48); }
        if (R > 2) { c20.Store(acc + 64); c21.Store(acc + 80); }
        if (R > 3) { c30.Store(acc + 96); c31.Store(acc + 112); }
        if (R > 4) { c40.Store(acc + 128); c41.Store(acc + 144); }
        if (R > 5) { c50.Store(acc + 160); c51.Store(acc + 176); }
        Epilogue2(acc, R, c, ldc, bias, act, add, final);
    }

    /// <summary>Stores an R×32 tile held in <paramref name="acc"/> (row stride 32) through the 256-bit epilogue.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Epilogue2(float* acc, int R, float* c, nint ldc, float* bias, Activation act, bool add, bool final)
    {
        Vector256<float> p0 = Vector256.Load(bias), p1 = Vector256.Load(bias + 8), q0 = Vector256.Load(bias + 16), q1 = Vector256.Load(bias + 24);
        for (int r = 0; r < R; r++, acc += 32, c += ldc)
        {
            Store(c, Vector256.Load(acc), Vector256.Load(acc + 8), p0, p1, act, add, final);
            Store(c + 16, Vector256.Load(acc + 16), Vector256.Load(acc + 24), q0, q1, act, add, final);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector256<float> x0, Vector256<float> x1, Vector256<float> b0, Vector256<float> b1,
        Activation act, bool add, bool final)
    {
        if (add) { x0 = Vector256.Load(c) + x0; x1 = Vector256.Load(c + 8) + x1; }
        if (final)
        {
            x0 += b0; x1 += b1;
            if (act == Activation.Gelu) { x0 = SimdMath.Gelu(x0); x1 = SimdMath.Gelu(x1); }
            else if (act == Activation.Relu) { x0 = Vector256.Max(x0, Vector256<float>.Zero); x1 = Vector256.Max(x1, Vector256<float>.Zero); }
        }
        Vector256.Store(x0, c);
        Vector256.Store(x1, c + 8);
    }
}
