// Named slices of the one activation buffer (forward activations + backward scratch), sized per (B, T).
using FastRec.Kernels;

namespace FastRec.Engine.Model;

/// <summary>One encoder layer's saved forward activations. B batch, T sequence, C hidden, NH heads, HS head size, F feed-forward.</summary>
internal sealed class LayerActivations
{
    public View<float> Qkv;      // (B, T, 3*C)   x·Wqkvᵀ + bqkv
    public View<float> QkvPerm;  // (3, B, NH, T, HS) saved by AttentionForward
    public View<float> Probs;    // (B, NH, T, T) pre-dropout attention probabilities
    public View<float> Atty;     // (B, T, C)     attention output (heads merged)
    public View<float> AttnOut;  // (B, T, C)     dense(atty), then dropout in place
    public View<float> Sum1;     // (B, T, C)     x + attnOut (saved for the LayerNorm backward)
    public View<float> Mean1;    // (B, T)
    public View<float> Rstd1;    // (B, T)
    public View<float> H1;       // (B, T, C)     LayerNorm(x + attnOut)
    public View<float> Inter;    // (B, T, F)     intermediate dense, before the activation
    public View<float> InterAct; // (B, T, F)     GELU(inter)
    public View<float> Out;      // (B, T, C)     output dense, then dropout in place
    public View<float> Sum2;     // (B, T, C)     h1 + out
    public View<float> Mean2;    // (B, T)
    public View<float> Rstd2;    // (B, T)
    public View<float> H2;       // (B, T, C)     LayerNorm(h1 + out): the layer's output

    /// <summary>A copy of these views (the forward-only layout shares them between layers).</summary>
    public LayerActivations MemberwiseCloneLayer() => (LayerActivations)MemberwiseClone();
}

/// <summary>
/// Every activation of one forward/backward at batch shape (B, T), as slices of one float buffer and one int buffer
/// (llm.c's ActivationTensors). Training layout: forward activations are kept per layer for the backward; the backward's
/// activation gradients (names starting with D) are one layer's worth of scratch reused by every layer. Forward-only
/// (<see cref="Inference"/>) layout: all layers share one layer's slices, their outputs alternate between two buffers,
/// and there is no backward scratch, so scoring needs about 1/L of the training memory.
/// Dimension letters: B batch, T sequence, C hidden, NH heads, F feed-forward, D dense features, H_j head widths.
/// </summary>
internal sealed class ActivationTensors
{
    public readonly int B, T;
    /// <summary>Forward-only layout: one layer's activations shared by all layers, no backward scratch.</summary>
    public readonly bool Inference;

    // ---- inputs (uploaded from the host batch)
    public View<int> Ids;          // (B, T)
    public View<int> TypeIds;      // (B, T)
    public View<float> Mask;       // (B, T) 1 keep / 0 padding
    public View<float> Dense;      // (B, D), None when D = 0
    public View<float> Labels;     // (B)
    public View<float> Weights;    // (B)

    // ---- embeddings
    public View<float> EmbSum;     // (B, T, C) word + position + type (LayerNorm input)
    public View<float> EmbMean;    // (B, T)
    public View<float> EmbRstd;    // (B, T)
    public View<float> Emb;        // (B, T, C) LayerNorm, then dropout in place: layer 0's input

    public LayerActivations[] Layers = [];
    public View<float> AttnWorkspace; // (2·B·NH·T² + 4·B·T·C) scratch shared by every layer

    // ---- pooler and head
    public View<float> Pooled;        // (B, C), None without pooler
    public View<float> PoolWorkspace; // (B, C)
    public View<float> MeanWeights;   // (B, T) mask[b,t] / max(Σ_t mask[b,t], 1e-9), None unless the head input is Mean
    public View<float> MeanPooled;    // (B, C) masked mean of the last hidden state, None unless the head input is Mean
    public View<float> HeadIn;        // (B, C + D) [encoder vector | dense]
    public View<float>[] HeadPre = [];  // (B, H_j) Linear output
    public View<float>[] HeadPost = []; // (B, H_j) activation, then dropout in place
    public View<float> Logits;        // (B)
    public View<float> Loss;          // (1)

    // ---- backward scratch (activation gradients)
    public View<float> DLogits;    // (B)
    public View<float> DHeadA;     // (B, max(C + D, H_j))
    public View<float> DHeadB;     // (B, max(C + D, H_j))
    public View<float> DPooled;    // (B, C)
    public View<float> DRes;       // (B, T, C) gradient of the residual stream (current layer's output)
    public View<float> DSum;       // (B, T, C)
    public View<float> DTmp;       // (B, T, C)
    public View<float> DQkv;       // (B, T, 3*C)
    public View<float> DInterAct;  // (B, T, F)
    public View<float> DInter;     // (B, T, F)

    /// <summary>Floats this shape needs.</summary>
    public long FloatCount { get; private set; }
    /// <summary>Ints this shape needs.</summary>
    public long IntCount { get; private set; }

    private ActivationTensors(int b, int t, bool inference) { B = b; T = t; Inference = inference; }

    /// <summary>Floats and ints needed for shape (B, T) (training or forward-only layout).</summary>
    public static (long Floats, long Ints) Size(BertConfig bert, AdapterConfig adapter, int B, int T, bool inference)
    {
        var a = new ActivationTensors(B, T, inference);
        a.Carve(bert, adapter, null, null);
        return (a.FloatCount, a.IntCount);
    }

    /// <summary>Slices <paramref name="floats"/> and <paramref name="ints"/> (at least <see cref="Size"/> long) for shape (B, T).</summary>
    public static ActivationTensors Create(BertConfig bert, AdapterConfig adapter, int B, int T, bool inference,
                                           DeviceBuffer<float> floats, DeviceBuffer<int> ints)
    {
        var a = new ActivationTensors(B, T, inference);
        a.Carve(bert, adapter, floats, ints);
        return a;
    }

    private void Carve(BertConfig bert, AdapterConfig adapter, DeviceBuffer<float>? fb, DeviceBuffer<int>? ib)
    {
        int C = bert.HiddenSize, NH = bert.NumAttentionHeads, F = bert.IntermediateSize, D = adapter.DenseFeatures;
        int BT = B * T;
        long fo = 0, io = 0;
        View<float> Fl(long n)
        {
            if (n > int.MaxValue) throw new InvalidOperationException($"an activation of {n} floats exceeds a view's int length; reduce B or T");
            var v = fb is null ? View<float>.None : fb.Slice(fo, (int)n);
            fo += n;
            return v;
        }
        View<int> In(long n)
        {
            var v = ib is null ? View<int>.None : ib.Slice(io, (int)n);
            io += n;
            return v;
        }

        Ids = In(BT);
        TypeIds = In(BT);
        Mask = Fl(BT);
        Dense = D > 0 ? Fl((long)B * D) : View<float>.None;
        Labels = Fl(B);
        Weights = Fl(B);

        EmbSum = Fl((long)BT * C);
        EmbMean = Fl(BT);
        EmbRstd = Fl(BT);
        Emb = Fl((long)BT * C);

        Layers = new LayerActivations[bert.NumHiddenLayers];
        LayerActivations NewLayer() => new()
        {
            Qkv = Fl(3L * BT * C),
            QkvPerm = Fl(3L * BT * C),
            Probs = Fl((long)B * NH * T * T),
            Atty = Fl((long)BT * C),
            AttnOut = Fl((long)BT * C),
            Sum1 = Fl((long)BT * C),
            Mean1 = Fl(BT),
            Rstd1 = Fl(BT),
            H1 = Fl((long)BT * C),
            Inter = Fl((long)BT * F),
            InterAct = Fl((long)BT * F),
            Out = Fl((long)BT * C),
            Sum2 = Fl((long)BT * C),
            Mean2 = Fl(BT),
            Rstd2 = Fl(BT),
            H2 = Fl((long)BT * C),
        };
        if (!Inference)
            for (int l = 0; l < Layers.Length; l++) Layers[l] = NewLayer();
        else
        {   // forward only: every layer shares one set of slices except the output, which alternates between two
            var shared = NewLayer();
            var other = Fl((long)BT * C);   // (B, T, C)
            for (int l = 0; l < Layers.Length; l++)
            {
                var la = shared.MemberwiseCloneLayer();
                if (l % 2 == 1) la.H2 = other;
                Layers[l] = la;
            }
        }
        AttnWorkspace = Fl(Check.AttentionWorkspace(B, T, C, NH));

        Pooled = bert.AddPoolingLayer ? Fl((long)B * C) : View<float>.None;
        PoolWorkspace = bert.AddPoolingLayer ? Fl((long)B * C) : View<float>.None;
        bool mean = adapter.Input == AdapterInput.Mean;
        MeanWeights = mean ? Fl(BT) : View<float>.None;
        MeanPooled = mean ? Fl((long)B * C) : View<float>.None;
        int inW = C + D, maxW = inW;
        HeadIn = Fl((long)B * inW);
        int nh = adapter.HiddenSizes.Length;
        HeadPre = new View<float>[nh];
        HeadPost = new View<float>[nh];
        for (int j = 0; j < nh; j++)
        {
            HeadPre[j] = Fl((long)B * adapter.HiddenSizes[j]);
            HeadPost[j] = Fl((long)B * adapter.HiddenSizes[j]);
            maxW = Math.Max(maxW, adapter.HiddenSizes[j]);
        }
        Logits = Fl(B);
        Loss = Fl(1);

        if (!Inference)
        {
            DLogits = Fl(B);
            DHeadA = Fl((long)B * maxW);
            DHeadB = Fl((long)B * maxW);
            DPooled = Fl((long)B * C);
            DRes = Fl((long)BT * C);
            DSum = Fl((long)BT * C);
            DTmp = Fl((long)BT * C);
            DQkv = Fl(3L * BT * C);
            DInterAct = Fl((long)BT * F);
            DInter = Fl((long)BT * F);
        }

        FloatCount = fo;
        IntCount = io;
    }
}
