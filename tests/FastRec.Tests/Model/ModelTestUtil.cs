// Shared fixtures of the model tests: a tiny BERT config, a padded batch, randomised parameters, backends.
using FastRec.Engine.Model;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Kernels.Reference;

namespace FastRec.Tests.Model;

internal static class ModelTestUtil
{
    /// <summary>2 layers, C = 32, 4 heads, F = 64, V = 50, dropout on.</summary>
    public static BertConfig TinyBert(bool pooler = true, double dropout = 0.1) => new()
    {
        VocabSize = 50, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 4, IntermediateSize = 64,
        MaxPositionEmbeddings = 16, TypeVocabSize = 2, HiddenDropoutProb = dropout, AttentionProbsDropoutProb = dropout,
        LayerNormEps = 1e-12, AddPoolingLayer = pooler,
    };

    /// <summary>One hidden layer of 16, GELU, dropout 0.1, 2 dense features, pooler input.</summary>
    public static AdapterConfig TinyHead(int dense = 2, AdapterInput input = AdapterInput.Pooler, int[]? hidden = null, float dropout = 0.1f) => new()
    {
        HiddenSizes = hidden ?? [16], Activation = Activation.Gelu, Dropout = dropout, DenseFeatures = dense, Input = input,
    };

    /// <summary>B = 3, T = 7; row 1 is padded at t = 5, 6 (id = pad 0, mask 0); mixed token types; soft label; weights.</summary>
    public static RecBatch Batch(int dense = 2, int B = 3, int T = 7, ulong seed = 11)
    {
        var ids = new int[B * T];
        var types = new int[B * T];
        var mask = new float[B * T];
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
            {
                int i = b * T + t;
                bool pad = b == 1 && t >= T - 2;
                ids[i] = pad ? 0 : 1 + (int)(Rng.Hash(seed, (ulong)i) % 49);
                types[i] = pad ? 0 : (t >= T / 2 && b != 0 ? 1 : 0);
                mask[i] = pad ? 0f : 1f;
            }
        float[] labels = new float[B], weights = new float[B];
        for (int b = 0; b < B; b++) { labels[b] = b % 3 == 0 ? 1f : b % 3 == 1 ? 0f : 0.3f; weights[b] = b % 3 == 0 ? 1f : b % 3 == 1 ? 2f : 0.5f; }
        return new RecBatch
        {
            B = B, T = T, InputIds = ids, TokenTypeIds = types, AttentionMask = mask,
            Dense = dense > 0 ? Kernels.TestUtil.Random(B * dense, seed + 1) : null,
            Labels = labels, Weights = weights,
        };
    }

    /// <summary>HF init, then every parameter + uniform(-0.1, 0.1) (LayerNorm gamma ≈ 1, non-zero biases): a generic point.</summary>
    public static float[] RandomParams(RecModel model, ulong seed)
    {
        model.InitRandom(seed);
        var host = new float[model.Layout.TotalSize];
        model.Backend.Download(model.Params.All, host);
        var noise = Kernels.TestUtil.Random(host.Length, seed + 100, -0.1f, 0.1f);
        for (int i = 0; i < host.Length; i++) host[i] += noise[i];
        model.Backend.Upload(model.Params.All, host);
        return host;
    }

    /// <summary>Names of the backends the model tests run on.</summary>
    public static IEnumerable<TestFixtureData> Backends()
    {
        yield return new TestFixtureData("reference");
        yield return new TestFixtureData("cpu");
    }

    /// <summary>Creates a backend by name.</summary>
    public static IBackend CreateBackend(string name) => name switch
    {
        "reference" => new ReferenceBackend(),
        "cpu" => new CpuSimdBackend(),
        _ => throw new ArgumentException($"no backend called '{name}'", nameof(name)),
    };

    /// <summary>All gradients (TotalSize) as host floats.</summary>
    public static float[] AllGrads(RecModel m)
    {
        var g = new float[m.Layout.TotalSize];
        m.Backend.Download(m.Grads.All, g);
        return g;
    }

    public static float[] AllParams(RecModel m)
    {
        var p = new float[m.Layout.TotalSize];
        m.Backend.Download(m.Params.All, p);
        return p;
    }
}
