// CPU backend optimiser: global gradient norm, multi-tensor AdamW with clipping.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FastRec.Kernels.Cpu;

public sealed partial class CpuSimdBackend
{
    /// <inheritdoc/>
    public void GlobalNorm(View<float> norm, View<float> grads)
    {
        Check.GlobalNorm(norm, grads);
        ReadOnlySpan<float> g = S(grads);
        int chunks = (g.Length + NormChunk - 1) / NormChunk;
        if (_normPartials.Length < chunks) _normPartials = new double[Math.Max(chunks, 2 * _normPartials.Length)];
        var job = new NormJob { G = g, Partials = _normPartials };
        CpuParallel.ForRange(chunks, ref job, Parts(g.Length));
        double total = 0;
        for (int c = 0; c < chunks; c++) total += _normPartials[c]; // chunk order: independent of the thread count
        S(norm)[0] = (float)Math.Sqrt(total);
    }

    /// <summary>Elements per GlobalNorm chunk: each chunk's Σg² (double) is one partial, combined in chunk order.</summary>
    private const int NormChunk = 1 << 16;
    private double[] _normPartials = new double[64];

    private ref struct NormJob : IParallelRangeJob
    {
        public ReadOnlySpan<float> G;
        public Span<double> Partials;

        public readonly void Execute(int start, int end, int part)
        {
            for (int c = start; c < end; c++)
            {
                int s = c * NormChunk;
                Partials[c] = SimdMath.SumSquaresDouble(G.Slice(s, Math.Min(NormChunk, G.Length - s)));
            }
        }
    }

    /// <inheritdoc/>
    public void AdamW(View<float> param, View<float> grad, View<float> m, View<float> v, View<AdamSegment> segments,
        View<float> norm, float maxNorm, float lr, float beta1, float beta2, float eps, int step)
    {
        Check.AdamW(param, grad, m, v, segments, norm, maxNorm, beta1, beta2, step);
        ReadOnlySpan<AdamSegment> segs = S(segments);
        Check.AdamSegments(segs, param.Length);

        float clip = 1f;
        if (maxNorm > 0f) clip = MathF.Min(1f, maxNorm / (S(norm)[0] + 1e-6f));
        float bc1 = (float)(1.0 - Math.Pow(beta1, step));
        float bc2 = (float)(1.0 - Math.Pow(beta2, step));
        Span<float> p = S(param), mm = S(m), vv = S(v);
        ReadOnlySpan<float> g = S(grad);
        for (int s = 0; s < segs.Length; s++)
        {
            AdamSegment sg = segs[s];
            if (sg.LrScale == 0f || sg.Length == 0) continue;
            float lrs = lr * sg.LrScale;
            var job = new AdamJob
            {
                P = p.Slice(sg.Offset, sg.Length), G = g.Slice(sg.Offset, sg.Length), M = mm.Slice(sg.Offset, sg.Length), V = vv.Slice(sg.Offset, sg.Length),
                Clip = clip, Lr = lrs, LrWd = lrs * sg.WeightDecay, B1 = beta1, B2 = beta2, Eps = eps, Bc1 = bc1, Bc2 = bc2,
            };
            CpuParallel.ForRange(Blocks(sg.Length), ref job, Parts(sg.Length));
        }
    }

    /// <summary>Blocks [start, end) of one segment's AdamW update.</summary>
    private ref struct AdamJob : IParallelRangeJob
    {
        public Span<float> P, M, V;
        public ReadOnlySpan<float> G;
        public float Clip, Lr, LrWd, B1, B2, Eps, Bc1, Bc2;

        public readonly void Execute(int start, int end, int part)
        {
            int s = start * Block, e = Math.Min(end * Block, P.Length);
            AdamWUpdate(P[s..e], G[s..e], M[s..e], V[s..e], Clip, Lr, LrWd, B1, B2, Eps, Bc1, Bc2);
        }
    }

    /// <summary>One segment: p −= lr·wd·p; m, v update; p −= lr·(m/bc1)/(sqrt(v/bc2) + eps), with g = grad·clip.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AdamWUpdate(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v,
        float clip, float lr, float lrWd, float b1, float b2, float eps, float bc1, float bc2)
    {
        ref float pr = ref MemoryMarshal.GetReference(p);
        ref float gr = ref MemoryMarshal.GetReference(g);
        ref float mr = ref MemoryMarshal.GetReference(m);
        ref float vr = ref MemoryMarshal.GetReference(v);
        int n = p.Length, i = 0;
        float c1 = 1f - b1, c2 = 1f - b2, ibc1 = 1f / bc1, ibc2 = 1f / bc2;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> vClip = Vector256.Create(clip), vLr = Vector256.Create(lr), vLrWd = Vector256.Create(lrWd),
                vb1 = Vector256.Create(b1), vb2 = Vector256.Create(b2), vc1 = Vector256.Create(c1), vc2 = Vector256.Create(c2),
                vEps = Vector256.Create(eps), vIbc1 = Vector256.Create(ibc1), vIbc2 = Vector256.Create(ibc2);
            for (; i <= n - 8; i += 8)
            {
                Vector256<float> gi = Vector256.LoadUnsafe(ref gr, (nuint)i) * vClip;
                Vector256<float> pi = Vector256.LoadUnsafe(ref pr, (nuint)i);
                pi -= vLrWd * pi;
                Vector256<float> mi = SimdMath.Fmadd(vb1, Vector256.LoadUnsafe(ref mr, (nuint)i), vc1 * gi);
                Vector256<float> vi = SimdMath.Fmadd(vb2, Vector256.LoadUnsafe(ref vr, (nuint)i), vc2 * gi * gi);
                pi -= vLr * (mi * vIbc1) / (Vector256.Sqrt(vi * vIbc2) + vEps);
                mi.StoreUnsafe(ref mr, (nuint)i);
                vi.StoreUnsafe(ref vr, (nuint)i);
                pi.StoreUnsafe(ref pr, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            float gi = Unsafe.Add(ref gr, i) * clip;
            float pi = Unsafe.Add(ref pr, i);
            pi -= lrWd * pi;
            float mi = SimdMath.Fmadd(b1, Unsafe.Add(ref mr, i), c1 * gi);
            float vi = SimdMath.Fmadd(b2, Unsafe.Add(ref vr, i), c2 * gi * gi);
            pi -= lr * (mi * ibc1) / (MathF.Sqrt(vi * ibc2) + eps);
            Unsafe.Add(ref mr, i) = mi;
            Unsafe.Add(ref vr, i) = vi;
            Unsafe.Add(ref pr, i) = pi;
        }
    }
}
