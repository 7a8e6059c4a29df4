// Shared fixtures of the distillation tests: tiny teachers/students, right-padded synthetic batches with a learnable rule.
using FastRec.Engine.Model;
using FastRec.Kernels;
using FastRec.Tests.Model;

namespace FastRec.Tests.Distillation;

internal static class DistillTestUtil
{
    /// <summary>A BERT of <paramref name="layers"/> layers, width <paramref name="C"/>, 4 heads, F = 2C, V = 50, 16 positions.</summary>
    public static BertConfig Bert(int layers, int C = 32, double dropout = 0.1) => new()
    {
        VocabSize = 50, HiddenSize = C, NumHiddenLayers = layers, NumAttentionHeads = 4, IntermediateSize = 2 * C,
        MaxPositionEmbeddings = 16, TypeVocabSize = 2, HiddenDropoutProb = dropout, AttentionProbsDropoutProb = dropout,
        LayerNormEps = 1e-12, AddPoolingLayer = true,
    };

    /// <summary>Head: one hidden layer of 8, no dense features (or <paramref name="dense"/>).</summary>
    public static AdapterConfig Head(int dense = 0) => new() { HiddenSizes = [8], Activation = Activation.Gelu, Dropout = 0.1f, DenseFeatures = dense };

    /// <summary>A model with generic random parameters.</summary>
    public static RecModel Model(IBackend be, BertConfig bert, ulong seed, int dense = 0)
    {
        var m = new RecModel(be, bert, Head(dense));
        ModelTestUtil.RandomParams(m, seed);
        return m;
    }

    /// <summary>Example i: a right-padded row of 3..12 tokens; label 1 iff token 7 occurs in it (a rule a tiny BERT can learn).</summary>
    public static (int[] Ids, float Label) Example(int i, ulong seed = 1)
    {
        int n = 3 + (int)(Rng.Hash(seed, (ulong)i * 977) % 10);
        var ids = new int[n];
        ids[0] = 2;
        for (int t = 1; t < n - 1; t++) ids[t] = 4 + (int)(Rng.Hash(seed + 1, (ulong)(i * 64 + t)) % 12);
        ids[n - 1] = 3;
        return (ids, ids.Contains(7) ? 1f : 0f);
    }

    /// <summary>The batch of examples <paramref name="rows"/>, padded to the longest (pad id 0, mask 0).</summary>
    public static RecBatch Batch(IReadOnlyList<int> rows, ulong seed = 1)
    {
        var ex = rows.Select(r => Example(r, seed)).ToArray();
        int B = ex.Length, T = ex.Max(e => e.Ids.Length);
        var ids = new int[B * T]; var types = new int[B * T]; var mask = new float[B * T];
        for (int b = 0; b < B; b++)
        {
            ex[b].Ids.CopyTo(ids, b * T);
            for (int t = 0; t < ex[b].Ids.Length; t++) { mask[b * T + t] = 1f; types[b * T + t] = t >= 3 ? 1 : 0; }
        }
        return new RecBatch { B = B, T = T, InputIds = ids, TokenTypeIds = types, AttentionMask = mask, Labels = ex.Select(e => e.Label).ToArray() };
    }

    public static float[] Params(RecModel m) => ModelTestUtil.AllParams(m);

    /// <summary>ROC AUC of scores against 0/1 labels (ties count half).</summary>
    public static double Auc(float[] scores, float[] labels)
    {
        double pos = 0, neg = 0, wins = 0;
        for (int i = 0; i < scores.Length; i++)
            for (int j = 0; j < scores.Length; j++)
                if (labels[i] == 1f && labels[j] == 0f)
                    wins += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
        foreach (var y in labels) { if (y == 1f) pos++; else neg++; }
        return wins / (pos * neg);
    }
}
