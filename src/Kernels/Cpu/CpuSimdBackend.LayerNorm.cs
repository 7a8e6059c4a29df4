// CPU backend residual add + LayerNorm (post-LN BERT), forward and backward, one row at a time in Vector256.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FastRec.Kernels.Cpu;

public sealed partial class CpuSimdBackend
{
    /// <inheritdoc/>
    public void AddLayerNormForward(View<float> output, View<float> sum, View<float> mean, View<float> rstd,
        View<float> a, View<float> b, View<float> gamma, View<float> beta, int N, int C, float eps)
    {
        Check.AddLayerNormForward(output, sum, mean, rstd, a, b, gamma, beta, N, C, eps);
        var job = new LayerNormJob
        {
            Out = S(output), X = S(sum), Mean = S(mean), Rstd = S(rstd), A = S(a), B = S(b), Gamma = S(gamma), Beta = S(beta),
            C = C, Eps = eps,
        };
        CpuParallel.ForRange(N, ref job, Parts((long)N * C));
    }

    /// <summary>Rows [start, end) of the residual add + LayerNorm forward.</summary>
    private ref struct LayerNormJob : IParallelRangeJob
    {
        public Span<float> Out, X, Mean, Rstd;
        public ReadOnlySpan<float> A, B, Gamma, Beta;
        public int C;
        public float Eps;

        public readonly void Execute(int start, int end, int part)
        {
            int C = this.C;
            float invC = 1f / C;
            for (int r = start; r < end; r++)
            {
                int off = r * C;
                Span<float> xr = X.Slice(off, C);
                float s;
                if (!B.IsEmpty) s = AddAndSum(A.Slice(off, C), B.Slice(off, C), xr);
                else
                {
                    A.Slice(off, C).CopyTo(xr); // sum may alias a: CopyTo handles exact overlap
                    s = SimdMath.Sum(xr);
                }
                float m = s * invC;
                float v = SimdMath.SumSquaredDeviation(xr, m) * invC;
                float inv = 1f / MathF.Sqrt(v + Eps);
                Mean[r] = m;
                Rstd[r] = inv;
                Normalize(xr, m, inv, Gamma, Beta, Out.Slice(off, C));
            }
        }
    }

    /// <summary>x = a + b; returns Σ x (fixed order as <see cref="SimdMath.Sum"/>). x may alias a or b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float AddAndSum(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> x)
    {
        ref float ar = ref MemoryMarshal.GetReference(a);
        ref float br = ref MemoryMarshal.GetReference(b);
        ref float xr = ref MemoryMarshal.GetReference(x);
        int n = x.Length, i = 0;
        float tail = 0f;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> acc = Vector256<float>.Zero;
            for (; i <= n - 8; i += 8)
            {
                Vector256<float> v = Vector256.LoadUnsafe(ref ar, (nuint)i) + Vector256.LoadUnsafe(ref br, (nuint)i);
                v.StoreUnsafe(ref xr, (nuint)i);
                acc += v;
            }
            for (; i < n; i++) { float v = Unsafe.Add(ref ar, i) + Unsafe.Add(ref br, i); Unsafe.Add(ref xr, i) = v; tail += v; }
            return SimdMath.HorizontalSum(acc) + tail;
        }
        for (; i < n; i++) { float v = Unsafe.Add(ref ar, i) + Unsafe.Add(ref br, i); Unsafe.Add(ref xr, i) = v; tail += v; }
        return tail;
    }

    /// <summary>o = (x − m)·inv·γ + β.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Normalize(ReadOnlySpan<float> x, float m, float inv, ReadOnlySpan<float> g, ReadOnlySpan<float> be, Span<float> o)
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float gr = ref MemoryMarshal.GetReference(g);
        ref float br = ref MemoryMarshal.GetReference(be);
        ref float or = ref MemoryMarshal.GetReference(o);
        int n = x.Length, i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> vm = Vector256.Create(m), vi = Vector256.Create(inv);
            for (; i <= n - 8; i += 8)
            {
                Vector256<float> xh = (Vector256.LoadUnsafe(ref xr, (nuint)i) - vm) * vi;
                SimdMath.Fmadd(xh, Vector256.LoadUnsafe(ref gr, (nuint)i), Vector256.LoadUnsafe(ref br, (nuint)i)).StoreUnsafe(ref or, (nuint)i);
            }
        }
        for (; i < n; i++)
            Unsafe.Add(ref or, i) = SimdMath.Fmadd((Unsafe.Add(ref xr, i) - m) * inv, Unsafe.Add(ref gr, i), Unsafe.Add(ref br, i));
    }

    /// <inheritdoc/>
    public void AddLayerNormBackward(View<float> dx, View<float> dGamma, View<float> dBeta,
        View<float> dOutput, View<float> sum, View<float> gamma, View<float> mean, View<float> rstd, int N, int C)
    {
        Check.AddLayerNormBackward(dx, dGamma, dBeta, dOutput, sum, gamma, mean, rstd, N, C);
        var rows = new LayerNormBackwardJob
        {
            Dx = S(dx), Dy = S(dOutput), X = S(sum), Gamma = S(gamma), Mean = S(mean), Rstd = S(rstd), C = C,
        };
        // Parameter gradients first: dx may alias dOutput.
        if (!dGamma.IsNone || !dBeta.IsNone)
        {
            int parts = Math.Min(Parts((long)N * C), (C + 7) / 8);
            var cols = new LayerNormParamGradJob
            {
                DGamma = S(dGamma), DBeta = S(dBeta), Dy = rows.Dy, X = rows.X, Mean = rows.Mean, Rstd = rows.Rstd,
                N = N, C = C, Count = parts,
            };
            CpuParallel.ForRange(parts, ref cols, parts);
        }
        CpuParallel.ForRange(N, ref rows, Parts((long)N * C));
    }

    /// <summary>Rows [start, end) of δx.</summary>
    private ref struct LayerNormBackwardJob : IParallelRangeJob
    {
        public Span<float> Dx;
        public ReadOnlySpan<float> Dy, X, Gamma, Mean, Rstd;
        public int C;

        public readonly void Execute(int start, int end, int part)
        {
            for (int r = start; r < end; r++)
            {
                int off = r * C;
                LayerNormRowBackward(Dx.Slice(off, C), Dy.Slice(off, C), X.Slice(off, C), Gamma, Mean[r], Rstd[r]);
            }
        }
    }

    /// <summary>Index p of [0, Count): δγ[c] += Σ_r δy·x̂ and δβ[c] += Σ_r δy for the columns ColumnRange(C, Count, p),
    /// rows in order (each column summed by one thread, whatever the thread count).</summary>
    private ref struct LayerNormParamGradJob : IParallelRangeJob
    {
        public Span<float> DGamma, DBeta;
        public ReadOnlySpan<float> Dy, X, Mean, Rstd;
        public int N, C, Count;

        public readonly void Execute(int start, int end, int part)
        {
            for (int p = start; p < end; p++)
            {
                var (c0, c1) = ColumnRange(C, Count, p);
                if (c0 >= c1) continue;
                Span<float> dg = DGamma.IsEmpty ? default : DGamma[c0..c1];
                Span<float> db = DBeta.IsEmpty ? default : DBeta[c0..c1];
                for (int r = 0; r < N; r++)
                    AccumulateParamGrads(dg, db, Dy.Slice(r * C + c0, c1 - c0), X.Slice(r * C + c0, c1 - c0), Mean[r], Rstd[r]);
            }
        }
    }

    /// <summary>δγ += δy·(x − m)·inv, δβ += δy over one row segment (either may be empty).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateParamGrads(Span<float> dg, Span<float> db, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, float m, float inv)
    {
        ref float dyr = ref MemoryMarshal.GetReference(dy);
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float dgr = ref MemoryMarshal.GetReference(dg);
        ref float dbr = ref MemoryMarshal.GetReference(db);
        bool hasG = !dg.IsEmpty, hasB = !db.IsEmpty;
        int n = dy.Length, i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> vm = Vector256.Create(m), vi = Vector256.Create(inv);
            for (; i <= n - 8; i += 8)
            {
                Vector256<float> vdy = Vector256.LoadUnsafe(ref dyr, (nuint)i);
                if (hasG)
                {
                    Vector256<float> xh = (Vector256.LoadUnsafe(ref xr, (nuint)i) - vm) * vi;
                    SimdMath.Fmadd(vdy, xh, Vector256.LoadUnsafe(ref dgr, (nuint)i)).StoreUnsafe(ref dgr, (nuint)i);
                }
                if (hasB) (Vector256.LoadUnsafe(ref dbr, (nuint)i) + vdy).StoreUnsafe(ref dbr, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            float vdy = Unsafe.Add(ref dyr, i);
            if (hasG) Unsafe.Add(ref dgr, i) = SimdMath.Fmadd(vdy, (Unsafe.Add(ref xr, i) - m) * inv, Unsafe.Add(ref dgr, i));
            if (hasB) Unsafe.Add(ref dbr, i) += vdy;
        }
    }

    /// <summary>One row: pass 1 sums δnorm = δy·γ and δnorm·x̂; pass 2 writes
    /// δx = (δnorm − mean(δnorm) − x̂·mean(δnorm·x̂))·rstd (δx may alias δy).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LayerNormRowBackward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> g,
        float m, float inv)
    {
        ref float dyr = ref MemoryMarshal.GetReference(dy);
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float gr = ref MemoryMarshal.GetReference(g);
        ref float dxr = ref MemoryMarshal.GetReference(dx);
        int n = dy.Length, i = 0;
        float sumD = 0f, sumDx = 0f;
        Vector256<float> vm = Vector256.Create(m), vi = Vector256.Create(inv);
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> aD = Vector256<float>.Zero, aDx = aD;
            for (; i <= n - 8; i += 8)
            {
                Vector256<float> xh = (Vector256.LoadUnsafe(ref xr, (nuint)i) - vm) * vi;
                Vector256<float> dn = Vector256.LoadUnsafe(ref dyr, (nuint)i) * Vector256.LoadUnsafe(ref gr, (nuint)i);
                aD += dn;
                aDx = SimdMath.Fmadd(dn, xh, aDx);
            }
            sumD = SimdMath.HorizontalSum(aD);
            sumDx = SimdMath.HorizontalSum(aDx);
        }
        for (; i < n; i++)
        {
            float xh = (Unsafe.Add(ref xr, i) - m) * inv;
            float dn = Unsafe.Add(ref dyr, i) * Unsafe.Add(ref gr, i);
            sumD += dn;
            sumDx = SimdMath.Fmadd(dn, xh, sumDx);
        }
        float meanD = sumD / n, meanDx = sumDx / n;
        i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> vmD = Vector256.Create(meanD), vmDx = Vector256.Create(meanDx);
            for (; i <= n - 8; i += 8)
            {
                Vector256<float> xh = (Vector256.LoadUnsafe(ref xr, (nuint)i) - vm) * vi;
                Vector256<float> dn = Vector256.LoadUnsafe(ref dyr, (nuint)i) * Vector256.LoadUnsafe(ref gr, (nuint)i);
                ((dn - vmD - xh * vmDx) * vi).StoreUnsafe(ref dxr, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            float xh = (Unsafe.Add(ref xr, i) - m) * inv;
            float dn = Unsafe.Add(ref dyr, i) * Unsafe.Add(ref gr, i);
            Unsafe.Add(ref dxr, i) = (dn - meanD - xh * meanDx) * inv;
        }
    }
}
