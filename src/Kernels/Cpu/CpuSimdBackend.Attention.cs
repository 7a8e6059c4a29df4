// CPU backend masked softmax and multi-head self-attention (permute, QKᵀ, softmax, dropout, PV), forward and backward.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FastRec.Kernels.Cpu;

public sealed partial class CpuSimdBackend
{
    // ---------------------------------------------------------------- masked softmax
    /// <inheritdoc/>
    public void SoftmaxForward(View<float> probs, View<float> scores, View<float> mask, int B, int NH, int T, float scale)
    {
        Check.SoftmaxForward(probs, scores, mask, B, NH, T, scale);
        long n = (long)B * NH * T * T;
        var job = new SoftmaxJob { Dst = S(probs), Src = S(scores), Mask = S(mask), NHT = NH * T, T = T, Scale = scale };
        CpuParallel.ForRange(B * NH * T, ref job, Parts(n));
    }

    /// <summary>Rows [start, end) of (B·NH·T) of the masked softmax (dScores of the backward when Backward).</summary>
    private ref struct SoftmaxJob : IParallelRangeJob
    {
        public Span<float> Dst;                // probs (forward) or δscores (backward)
        public ReadOnlySpan<float> Src, Mask, DP; // scores (forward) or probs (backward); δprobs (backward)
        public int NHT, T;
        public float Scale;
        public bool Backward;

        public readonly void Execute(int start, int end, int part)
        {
            int T = this.T;
            for (int r = start; r < end; r++)
            {
                if (Backward) SoftmaxRowBackward(Dst.Slice(r * T, T), DP.Slice(r * T, T), Src.Slice(r * T, T), Scale);
                else SoftmaxRow(Src.Slice(r * T, T), Mask.IsEmpty ? default : Mask.Slice(r / NHT * T, T), Scale, Dst.Slice(r * T, T));
            }
        }
    }

    /// <inheritdoc/>
    public void SoftmaxBackward(View<float> dScores, View<float> dProbs, View<float> probs, int B, int NH, int T, float scale)
    {
        Check.SoftmaxBackward(dScores, dProbs, probs, B, NH, T, scale);
        long n = (long)B * NH * T * T;
        var job = new SoftmaxJob { Dst = S(dScores), Src = S(probs), DP = S(dProbs), NHT = NH * T, T = T, Scale = scale, Backward = true };
        CpuParallel.ForRange(B * NH * T, ref job, Parts(n));
    }

    /// <summary>p = softmax(scale·s) over the keys kept by mask (mask empty = all kept); masked keys get exactly 0,
    /// a row with every key masked is all 0. p may be s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SoftmaxRow(ReadOnlySpan<float> s, ReadOnlySpan<float> mask, float scale, Span<float> p)
    {
        ref float sr = ref MemoryMarshal.GetReference(s);
        ref float pr = ref MemoryMarshal.GetReference(p);
        ref float mr = ref MemoryMarshal.GetReference(mask);
        bool masked = !mask.IsEmpty;
        int n = s.Length, i = 0;
        float max = float.NegativeInfinity;
        Vector256<float> vs = Vector256.Create(scale), ninf = Vector256.Create(float.NegativeInfinity);
        bool vec = Vector256.IsHardwareAccelerated && n >= 8;
        if (vec)
        {
            Vector256<float> vmax = ninf;
            for (; i <= n - 8; i += 8)
            {
                Vector256<float> v = Vector256.LoadUnsafe(ref sr, (nuint)i) * vs;
                if (masked) v = Vector256.ConditionalSelect(Vector256.Equals(Vector256.LoadUnsafe(ref mr, (nuint)i), Vector256<float>.Zero), ninf, v);
                vmax = Vector256.Max(vmax, v);
            }
            Vector128<float> h = Vector128.Max(vmax.GetLower(), vmax.GetUpper());
            h = Vector128.Max(h, Vector128.Shuffle(h, Vector128.Create(2, 3, 0, 1)));
            max = MathF.Max(h.GetElement(0), h.GetElement(1));
        }
        for (; i < n; i++)
            if (!masked || Unsafe.Add(ref mr, i) != 0f) max = MathF.Max(max, Unsafe.Add(ref sr, i) * scale);
        if (float.IsNegativeInfinity(max))
        {
            p.Clear();
            return;
        }

        float sum = 0f;
        i = 0;
        if (vec)
        {
            Vector256<float> vnm = Vector256.Create(-max), acc = Vector256<float>.Zero;
            for (; i <= n - 8; i += 8)
            {
                Vector256<float> e = SimdMath.Exp(SimdMath.Fmadd(Vector256.LoadUnsafe(ref sr, (nuint)i), vs, vnm));
                if (masked) e = Vector256.ConditionalSelect(Vector256.Equals(Vector256.LoadUnsafe(ref mr, (nuint)i), Vector256<float>.Zero), Vector256<float>.Zero, e);
                e.StoreUnsafe(ref pr, (nuint)i);
                acc += e;
            }
            sum = SimdMath.HorizontalSum(acc);
        }
        for (; i < n; i++)
        {
            float e = masked && Unsafe.Add(ref mr, i) == 0f ? 0f : SimdMath.Exp(SimdMath.Fmadd(Unsafe.Add(ref sr, i), scale, -max));
            Unsafe.Add(ref pr, i) = e;
            sum += e;
        }

        float inv = 1f / sum;
        i = 0;
        if (vec)
        {
            Vector256<float> vi = Vector256.Create(inv);
            for (; i <= n - 8; i += 8) (Vector256.LoadUnsafe(ref pr, (nuint)i) * vi).StoreUnsafe(ref pr, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref pr, i) *= inv;
    }

    /// <summary>ds = scale·p ⊙ (dp − Σ dp·p); ds may be dp.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SoftmaxRowBackward(Span<float> ds, ReadOnlySpan<float> dp, ReadOnlySpan<float> p, float scale)
    {
        float dot = SimdMath.Dot(dp, p);
        ref float dsr = ref MemoryMarshal.GetReference(ds);
        ref float dpr = ref MemoryMarshal.GetReference(dp);
        ref float pr = ref MemoryMarshal.GetReference(p);
        int n = p.Length, i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> vd = Vector256.Create(dot), vs = Vector256.Create(scale);
            for (; i <= n - 8; i += 8)
                (vs * Vector256.LoadUnsafe(ref pr, (nuint)i) * (Vector256.LoadUnsafe(ref dpr, (nuint)i) - vd)).StoreUnsafe(ref dsr, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref dsr, i) = scale * Unsafe.Add(ref pr, i) * (Unsafe.Add(ref dpr, i) - dot);
    }

    // ---------------------------------------------------------------- attention
    /// <inheritdoc/>
    public void AttentionForward(View<float> output, View<float> qkvPerm, View<float> probs, View<float> workspace,
        View<float> qkv, View<float> mask, int B, int T, int C, int NH, DropoutSpec dropout)
    {
        Check.AttentionForward(output, qkvPerm, probs, workspace, qkv, mask, B, T, C, NH, dropout);
        var job = new AttentionJob
        {
            Out = S(output), Perm = S(qkvPerm), Probs = S(probs), Ws = S(workspace), Qkv = S(qkv), Mask = S(mask),
            B = B, T = T, C = C, NH = NH, Dropout = dropout,
        };
        // One (b, h) head per index; each head's GEMMs run on its thread (nested pool calls run inline).
        CpuParallel.ForRange(B * NH, ref job, Parts(2L * B * NH * T * T * (C / NH)));
    }

    /// <summary>Heads [start, end) of (B·NH) of the attention forward (or backward when Backward).
    /// Scratch per head: workspace[bh·T² ..] (dropped probabilities) and workspace[(B·NH + bh)·T² ..] (δprobs).</summary>
    private ref struct AttentionJob : IParallelRangeJob
    {
        public Span<float> Out, Perm, Probs, Ws, DQkv;
        public ReadOnlySpan<float> Qkv, Mask, DOut;
        public int B, T, C, NH;
        public DropoutSpec Dropout;
        public bool Backward;

        public readonly void Execute(int start, int end, int part)
        {
            for (int bh = start; bh < end; bh++)
            {
                if (Backward) HeadBackward(bh);
                else HeadForward(bh);
            }
        }

        private readonly void HeadForward(int bh)
        {
            int T = this.T, C = this.C, HS = C / NH, b = bh / NH, h = bh % NH, tt = T * T, head = T * HS;
            int plane = B * NH * head;
            Span<float> q = Perm.Slice(bh * head, head), k = Perm.Slice(plane + bh * head, head), v = Perm.Slice(2 * plane + bh * head, head);
            // qkv(B,T,3C) -> qkvPerm(3,B,NH,T,HS) for this head
            for (int t = 0; t < T; t++)
            {
                int src = (b * T + t) * 3 * C + h * HS;
                Qkv.Slice(src, HS).CopyTo(q.Slice(t * HS, HS));
                Qkv.Slice(src + C, HS).CopyTo(k.Slice(t * HS, HS));
                Qkv.Slice(src + 2 * C, HS).CopyTo(v.Slice(t * HS, HS));
            }
            float scale = 1f / MathF.Sqrt(HS);
            ReadOnlySpan<float> mb = Mask.IsEmpty ? default : Mask.Slice(b * T, T);
            Span<float> p = Probs.Slice(bh * tt, tt);
            // scores(T,T) = Q·Kᵀ, then p = softmax(scale·scores) in place
            CpuGemm.Sgemm(false, true, T, T, HS, 1f, q, HS, k, HS, false, p, T);
            for (int i = 0; i < T; i++) SoftmaxRow(p.Slice(i * T, T), mb, scale, p.Slice(i * T, T));
            ReadOnlySpan<float> pd = p;
            if (Dropout.IsOn)
            {
                Span<float> dropped = Ws.Slice(bh * tt, tt);
                CpuSimdBackend.Dropout(dropped, p, Dropout, (long)bh * tt);
                pd = dropped;
            }
            // output[b, :, h·HS..] (row stride C) = P'(T,T) · V(T,HS)
            CpuGemm.Sgemm(false, false, T, HS, T, 1f, pd, T, v, HS, false, Out.Slice(b * T * C + h * HS, (T - 1) * C + HS), C);
        }

        private readonly void HeadBackward(int bh)
        {
            int T = this.T, C = this.C, HS = C / NH, b = bh / NH, h = bh % NH, tt = T * T, head = T * HS, C3 = 3 * C;
            int plane = B * NH * head, outSpan = (T - 1) * C3 + HS;
            ReadOnlySpan<float> q = Perm.Slice(bh * head, head), k = Perm.Slice(plane + bh * head, head), v = Perm.Slice(2 * plane + bh * head, head);
            ReadOnlySpan<float> p = Probs.Slice(bh * tt, tt);
            ReadOnlySpan<float> dO = DOut.Slice(b * T * C + h * HS, (T - 1) * C + HS); // (T, HS), row stride C
            Span<float> dBlock = DQkv.Slice(b * T * C3, T * C3);
            Span<float> dP = Ws.Slice((B * NH + bh) * tt, tt); // δP' -> δP -> δscores, in place
            float scale = 1f / MathF.Sqrt(HS);
            ReadOnlySpan<float> pd = p;
            if (Dropout.IsOn)
            {
                Span<float> dropped = Ws.Slice(bh * tt, tt);
                CpuSimdBackend.Dropout(dropped, p, Dropout, (long)bh * tt);
                pd = dropped;
            }
            // δP'(T,T) = δO · Vᵀ ; δV(T,HS) = P'ᵀ · δO
            CpuGemm.Sgemm(false, true, T, T, HS, 1f, dO, C, v, HS, false, dP, T);
            CpuGemm.Sgemm(true, false, T, HS, T, 1f, pd, T, dO, C, false, dBlock.Slice(2 * C + h * HS, outSpan), C3);
            if (Dropout.IsOn) CpuSimdBackend.Dropout(dP, dP, Dropout, (long)bh * tt);
            for (int i = 0; i < T; i++) SoftmaxRowBackward(dP.Slice(i * T, T), dP.Slice(i * T, T), p.Slice(i * T, T), scale);
            // δQ = δS · K ; δK = δSᵀ · Q
            CpuGemm.Sgemm(false, false, T, HS, T, 1f, dP, T, k, HS, false, dBlock.Slice(h * HS, outSpan), C3);
            CpuGemm.Sgemm(true, false, T, HS, T, 1f, dP, T, q, HS, false, dBlock.Slice(C + h * HS, outSpan), C3);
        }
    }

    /// <inheritdoc/>
    public void AttentionBackward(View<float> dQkv, View<float> dOutput, View<float> qkvPerm, View<float> probs, View<float> workspace,
        View<float> mask, int B, int T, int C, int NH, DropoutSpec dropout)
    {
        Check.AttentionBackward(dQkv, dOutput, qkvPerm, probs, workspace, mask, B, T, C, NH, dropout);
        // Perm and Probs are only read in the backward.
        var job = new AttentionJob
        {
            DQkv = S(dQkv), DOut = S(dOutput), Perm = S(qkvPerm), Probs = S(probs), Ws = S(workspace),
            B = B, T = T, C = C, NH = NH, Dropout = dropout, Backward = true,
        };
        CpuParallel.ForRange(B * NH, ref job, Parts(4L * B * NH * T * T * (C / NH)));
    }
}
