// Named views of one parameter-shaped buffer (parameters or gradients), llm.c's ParameterTensors.
using FastRec.Kernels;

namespace FastRec.Engine.Model;

/// <summary>The views of one encoder layer's tensors. Dimension letters: C hidden, F feed-forward.</summary>
internal sealed class LayerTensors
{
    public View<float> Wqkv;   // (3*C, C)  query | key | value weights
    public View<float> Bqkv;   // (3*C)
    public View<float> WAttnOut; // (C, C)
    public View<float> BAttnOut; // (C)
    public View<float> Ln1W;   // (C)
    public View<float> Ln1B;   // (C)
    public View<float> WInter; // (F, C)
    public View<float> BInter; // (F)
    public View<float> WOut;   // (C, F)
    public View<float> BOut;   // (C)
    public View<float> Ln2W;   // (C)
    public View<float> Ln2B;   // (C)
}

/// <summary>
/// Every tensor of <see cref="ParameterLayout"/> as a view of one buffer, addressed by <see cref="BertSchema"/>'s names. Built for the parameters (all views present)
/// and for the gradients, where a frozen tensor's view is <see cref="View{T}.None"/> so kernels skip computing it.
/// </summary>
internal sealed class ParameterTensors
{
    public View<float> WordEmb;  // (V, C)
    public View<float> PosEmb;   // (P, C)  P = max_position_embeddings
    public View<float> TypeEmb;  // (TV, C)
    public View<float> EmbLnW;   // (C)
    public View<float> EmbLnB;   // (C)
    public LayerTensors[] Layers = [];
    public View<float> PoolW;    // (C, C), None without pooler
    public View<float> PoolB;    // (C)
    public View<float>[] HeadW = []; // (H_j, in_j)
    public View<float>[] HeadB = []; // (H_j)
    public View<float> OutW;     // (1, in)
    public View<float> OutB;     // (1)

    /// <summary>Views of <paramref name="buffer"/>; tensors for which <paramref name="include"/> is false get None.</summary>
    public static ParameterTensors Create(ParameterLayout layout, DeviceBuffer<float> buffer, int numHeadLayers, Func<ParamInfo, bool> include)
    {
        View<float> V(string name)
        {
            if (!layout.Contains(name)) return View<float>.None;
            var p = layout[name];
            return include(p) ? buffer.Slice(p.Offset, p.Length) : View<float>.None;
        }
        // A block of adjacent tensors (q|k|v): present only if all of them are.
        View<float> Block(string first, string second, string third)
        {
            var a = layout[first]; var b = layout[second]; var c = layout[third];
            if (b.Offset != a.Offset + a.Length || c.Offset != b.Offset + b.Length)
                throw new InvalidOperationException($"{first}, {second}, {third} are not adjacent in the layout");
            return include(a) && include(b) && include(c) ? buffer.Slice(a.Offset, a.Length + b.Length + c.Length) : View<float>.None;
        }

        var schema = layout.Schema;
        var t = new ParameterTensors
        {
            WordEmb = V(BertSchema.WordEmbeddings),
            PosEmb = V(BertSchema.PositionEmbeddings),
            TypeEmb = V(BertSchema.TokenTypeEmbeddings),
            EmbLnW = V(BertSchema.EmbeddingLayerNorm.Weight),
            EmbLnB = V(BertSchema.EmbeddingLayerNorm.Bias),
            Layers = new LayerTensors[layout.NumLayers],
            PoolW = V(BertSchema.PoolerDense.Weight),
            PoolB = V(BertSchema.PoolerDense.Bias),
            HeadW = new View<float>[numHeadLayers],
            HeadB = new View<float>[numHeadLayers],
            OutW = V(BertSchema.HeadOut.Weight),
            OutB = V(BertSchema.HeadOut.Bias),
        };
        for (int i = 0; i < layout.NumLayers; i++)
        {
            var l = schema.Layers[i];
            t.Layers[i] = new LayerTensors
            {
                Wqkv = Block(l.Query.Weight, l.Key.Weight, l.Value.Weight),
                Bqkv = Block(l.Query.Bias, l.Key.Bias, l.Value.Bias),
                WAttnOut = V(l.AttentionOutput.Weight),
                BAttnOut = V(l.AttentionOutput.Bias),
                Ln1W = V(l.AttentionLayerNorm.Weight),
                Ln1B = V(l.AttentionLayerNorm.Bias),
                WInter = V(l.Intermediate.Weight),
                BInter = V(l.Intermediate.Bias),
                WOut = V(l.Output.Weight),
                BOut = V(l.Output.Bias),
                Ln2W = V(l.OutputLayerNorm.Weight),
                Ln2B = V(l.OutputLayerNorm.Bias),
            };
        }
        for (int j = 0; j < numHeadLayers; j++)
        {
            t.HeadW[j] = V(BertSchema.HeadDense(j).Weight);
            t.HeadB[j] = V(BertSchema.HeadDense(j).Bias);
        }
        return t;
    }
}
