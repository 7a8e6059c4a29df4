// Sentence embeddings as sentence-transformers computes them: mean of the last hidden state over the mask, L2-normalised.
namespace FastRec.Engine.Text;

/// <summary>Mean pooling + L2 normalisation (the all-MiniLM-L6-v2 recipe). B batch, T sequence, C hidden.</summary>
public static class SentenceEmbedding
{
    /// <summary>
    /// out(B, C) = normalize(Σ_t mask[b,t]·hidden[b,t,:] / max(Σ_t mask[b,t], 1e-9)), with L2 norm clamped below at 1e-12
    /// (torch.nn.functional.normalize). hidden is (B, T, C), mask (B, T).
    /// </summary>
    public static float[] MeanPooled(ReadOnlySpan<float> hidden, ReadOnlySpan<float> mask, int B, int T, int C)
    {
        var outp = new float[B * C];   // (B, C)
        MeanPooled(hidden, mask, B, T, C, outp);
        return outp;
    }

    /// <summary>As <see cref="MeanPooled(ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, int)"/>, into
    /// <paramref name="outp"/> (B, C).</summary>
    public static void MeanPooled(ReadOnlySpan<float> hidden, ReadOnlySpan<float> mask, int B, int T, int C, Span<float> outp)
    {
        if (hidden.Length != (long)B * T * C) throw new ArgumentException($"hidden: expected (B={B}, T={T}, C={C}) = {(long)B * T * C} elements, got {hidden.Length}");
        if (mask.Length != B * T) throw new ArgumentException($"mask: expected (B={B}, T={T}) = {B * T} elements, got {mask.Length}");
        if (outp.Length != B * C) throw new ArgumentException($"outp: expected (B={B}, C={C}) = {B * C} elements, got {outp.Length}");
        var acc = new double[C];
        for (int b = 0; b < B; b++)
        {
            MaskedMean(hidden, mask, b, T, C, acc);
            double norm = 0;
            for (int c = 0; c < C; c++) norm += acc[c] * acc[c];
            norm = Math.Max(Math.Sqrt(norm), 1e-12);
            for (int c = 0; c < C; c++) outp[b * C + c] = (float)(acc[c] / norm);
        }
    }

    /// <summary>Row <paramref name="b"/>'s attention-masked mean of <paramref name="hidden"/> (B, T, C) into
    /// <paramref name="mean"/> (C), accumulated in float64; returns the mask's sum, at least 1e-9.</summary>
    internal static double MaskedMean(ReadOnlySpan<float> hidden, ReadOnlySpan<float> mask, int b, int T, int C, Span<double> mean)
    {
        mean.Clear();
        double count = 0;
        for (int t = 0; t < T; t++)
        {
            float m = mask[b * T + t];
            if (m == 0) continue;
            count += m;
            var row = hidden.Slice((b * T + t) * C, C);
            for (int c = 0; c < C; c++) mean[c] += m * row[c];
        }
        count = Math.Max(count, 1e-9);
        for (int c = 0; c < C; c++) mean[c] /= count;
        return count;
    }
}
