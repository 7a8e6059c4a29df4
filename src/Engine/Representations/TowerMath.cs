// The user tower and the head's input row of the item-tower model, forward and backward, on small host vectors:
// one home for training (TowerModel), catalogue ranking and serving (TowerScorer).
using System.Numerics.Tensors;

namespace FastRec.Engine.Representations;

/// <summary>
/// Row layout (In = 5d + 2 + F): [u_m | u_a | v | u_m⊙v | u_a⊙v | cold | empty | f (F)], with h_j = v_{item_j} + e[liked_j]
/// for the n history items, u_m = mean_j h_j, a = softmax_j(h_j·v/√d), u_a = Σ_j a_j h_j (both 0 when n = 0).
/// </summary>
internal static class TowerMath
{
    /// <summary>In for tower width d.</summary>
    public static int InputWidth(int d) => 5 * d + 2 + TowerModel.DenseCount;

    /// <summary>h (n, d) and u_m (d) of a history: items (n) with their labels (liked = label ≥ 0.5).</summary>
    public static void History(ReadOnlySpan<float> vall, ReadOnlySpan<float> e, int d, ReadOnlySpan<int> items, ReadOnlySpan<float> labels,
        Span<float> h, Span<float> um)
    {
        int n = items.Length;
        um.Clear();
        for (int j = 0; j < n; j++)
        {
            var hj = h.Slice(j * d, d);
            TensorPrimitives.Add(vall.Slice(items[j] * d, d), e.Slice(labels[j] >= 0.5f ? d : 0, d), hj);
            TensorPrimitives.Add(um, hj, um);
        }
        if (n > 0) TensorPrimitives.Multiply(um, 1f / n, um);
    }

    /// <summary>The input row (In) of candidate vector <paramref name="v"/> (d) against history h (n, d) with mean u_m;
    /// <paramref name="probs"/> (≥ n) receives the attention weights. <paramref name="f"/>: the standardised features (F).</summary>
    public static void Row(ReadOnlySpan<float> h, int n, ReadOnlySpan<float> um, ReadOnlySpan<float> v, bool cold, ReadOnlySpan<float> f,
        Span<float> row, Span<float> probs)
    {
        int d = v.Length;
        var ua = row.Slice(d, d);
        ua.Clear();
        if (n > 0)
        {
            float scale = 1f / MathF.Sqrt(d), max = float.NegativeInfinity;
            for (int j = 0; j < n; j++) { probs[j] = TensorPrimitives.Dot(h.Slice(j * d, d), v) * scale; max = MathF.Max(max, probs[j]); }
            float sum = 0;
            for (int j = 0; j < n; j++) { probs[j] = MathF.Exp(probs[j] - max); sum += probs[j]; }
            for (int j = 0; j < n; j++)
            {
                probs[j] /= sum;
                TensorPrimitives.MultiplyAdd(h.Slice(j * d, d), probs[j], ua, ua);
            }
        }
        um.CopyTo(row[..d]);
        v.CopyTo(row.Slice(2 * d, d));
        TensorPrimitives.Multiply(um, v, row.Slice(3 * d, d));
        TensorPrimitives.Multiply(ua, v, row.Slice(4 * d, d));
        row[5 * d] = cold ? 1 : 0;
        row[5 * d + 1] = n == 0 ? 1 : 0;
        f.CopyTo(row.Slice(5 * d + 2, TowerModel.DenseCount));
    }

    /// <summary>Backward of <see cref="Row"/> and the mean: from δrow (In) to δh (n, d) (assigned: the mean's and the
    /// attention's share of each history row) and δv (d, assigned). <paramref name="row"/> and <paramref name="probs"/>
    /// are the forward's; <paramref name="scratch"/> needs 3d floats.</summary>
    public static void RowBackward(ReadOnlySpan<float> dRow, ReadOnlySpan<float> row, ReadOnlySpan<float> h, int n, ReadOnlySpan<float> probs,
        Span<float> dh, Span<float> dv, Span<float> scratch)
    {
        int d = dv.Length;
        var um = row[..d]; var ua = row.Slice(d, d); var v = row.Slice(2 * d, d);
        var gm = scratch[..d]; var ga = scratch.Slice(d, d); var tmp = scratch.Slice(2 * d, d);
        // δu_m = δrow_um + δrow_umv ⊙ v; δu_a = δrow_ua + δrow_uav ⊙ v; δv = δrow_v + δrow_umv ⊙ u_m + δrow_uav ⊙ u_a
        TensorPrimitives.MultiplyAdd(dRow.Slice(3 * d, d), v, dRow[..d], gm);
        TensorPrimitives.MultiplyAdd(dRow.Slice(4 * d, d), v, dRow.Slice(d, d), ga);
        TensorPrimitives.MultiplyAdd(dRow.Slice(3 * d, d), um, dRow.Slice(2 * d, d), dv);
        TensorPrimitives.MultiplyAdd(dRow.Slice(4 * d, d), ua, dv, dv);
        if (n == 0) return;
        // u_a = Σ a_j h_j: δh_j = δu_m/n + a_j δu_a + δs_j v/√d; δa_j = h_j·δu_a; δs_j = a_j(δa_j − Σ_k a_k δa_k); δv += Σ_j δs_j h_j/√d
        float scale = 1f / MathF.Sqrt(d), dot = 0;
        for (int j = 0; j < n; j++) dot += probs[j] * TensorPrimitives.Dot(h.Slice(j * d, d), ga);
        TensorPrimitives.Multiply(gm, 1f / n, tmp);
        for (int j = 0; j < n; j++)
        {
            var hj = h.Slice(j * d, d); var dhj = dh.Slice(j * d, d);
            float ds = probs[j] * (TensorPrimitives.Dot(hj, ga) - dot) * scale;
            TensorPrimitives.MultiplyAdd(ga, probs[j], tmp, dhj);
            TensorPrimitives.MultiplyAdd(v, ds, dhj, dhj);
            TensorPrimitives.MultiplyAdd(hj, ds, dv, dv);
        }
    }
}
