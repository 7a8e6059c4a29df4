// LibTorch (TorchSharp) twin of FastRec's BERT encoder + MLP head from raw tensors: the gradient oracle and the training-speed peer.
using FastRec.Engine.Model;
using FastRec.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace FastRec.Peers;

/// <summary>
/// The FastRec recommendation model written the way Hugging Face's <c>BertModel</c> (eager attention) computes it, in
/// functional TorchSharp: embeddings → LayerNorm → L × (self-attention with an additive finfo(float32).min padding mask,
/// dense, residual + LayerNorm, GELU feed-forward, residual + LayerNorm) → pooler tanh(W·h_CLS + b) → head
/// ([pooled or CLS | dense features] → (Linear → activation → dropout)* → Linear → logit), weighted BCE on logits,
/// then <c>clip_grad_norm_</c> and <c>torch.optim.AdamW</c> with HF's decay / no-decay parameter groups.
/// <para>Parameter names and shapes are derived here from the configs (independently of FastRec's
/// <see cref="ParameterLayout"/>); values are read by name, typically from <c>RecModel.GetParameter</c>.</para>
/// <para>Dimension letters: B batch, T sequence, C hidden, NH heads, HS head size, F feed-forward, D dense features.</para>
/// </summary>
public sealed class TorchBert : IDisposable
{
    private readonly BertConfig _bert;
    private readonly AdapterConfig _adapter;
    private readonly List<(string Name, Parameter P)> _params = [];
    private readonly Dictionary<string, Parameter> _byName = new(StringComparer.Ordinal);
    private AdamW? _optimizer;
    private double _maxGradNorm;
    private readonly Tensor _positionIds; // (maxPos) int64, sliced to T

    /// <summary>Whether attention uses libtorch's fused <c>scaled_dot_product_attention</c> (the speed peer's choice)
    /// instead of the eager matmul-softmax-matmul of HF's "eager" implementation (the parity oracle's default).</summary>
    public bool UseSdpa { get; set; }

    /// <summary>Builds the tensors of <paramref name="bert"/> + <paramref name="adapter"/>, each initialised from
    /// <paramref name="parameter"/>(name) (HF layout, [out, in] weights) and requiring gradients when
    /// <paramref name="trainable"/>(name) (default: all).</summary>
    /// <exception cref="ArgumentException">a returned array's length does not match the tensor's shape (the message names the tensor).</exception>
    public TorchBert(BertConfig bert, AdapterConfig adapter, Func<string, float[]> parameter, Func<string, bool>? trainable = null)
    {
        _bert = bert;
        _adapter = adapter;
        foreach (var (name, shape) in ParameterShapes(bert, adapter))
        {
            float[] values = parameter(name);
            long n = 1;
            foreach (long d in shape) n *= d;
            if (values.Length != n)
                throw new ArgumentException($"TorchBert: parameter '{name}' has {values.Length} values, expected {n} for shape ({string.Join(", ", shape)})", nameof(parameter));
            using var t = torch.tensor(values, shape, ScalarType.Float32);
            var p = new Parameter(t.clone(), trainable?.Invoke(name) ?? true);
            _params.Add((name, p));
            _byName.Add(name, p);
        }
        _positionIds = torch.arange(bert.MaxPositionEmbeddings, ScalarType.Int64);
    }

    /// <summary>The twin of <paramref name="model"/>: same configs, current parameter values, same trainable tensors.</summary>
    public static TorchBert FromModel(RecModel model) => new(model.Bert, model.Adapter, model.GetParameter, model.IsTrainable);

    /// <summary>
    /// The model's tensors in FastRec / HF order with their shapes: embeddings, L encoder layers, pooler (when the config
    /// has one), head.dense.{j}, head.out. Weights are [out, in].
    /// </summary>
    public static List<(string Name, long[] Shape)> ParameterShapes(BertConfig bert, AdapterConfig adapter)
    {
        long V = bert.VocabSize, C = bert.HiddenSize, Fd = bert.IntermediateSize;
        var list = new List<(string, long[])>
        {
            ("embeddings.word_embeddings.weight", [V, C]),
            ("embeddings.position_embeddings.weight", [bert.MaxPositionEmbeddings, C]),
            ("embeddings.token_type_embeddings.weight", [bert.TypeVocabSize, C]),
            ("embeddings.LayerNorm.weight", [C]),
            ("embeddings.LayerNorm.bias", [C]),
        };
        for (int i = 0; i < bert.NumHiddenLayers; i++)
        {
            string p = $"encoder.layer.{i}.";
            list.Add((p + "attention.self.query.weight", [C, C]));
            list.Add((p + "attention.self.key.weight", [C, C]));
            list.Add((p + "attention.self.value.weight", [C, C]));
            list.Add((p + "attention.self.query.bias", [C]));
            list.Add((p + "attention.self.key.bias", [C]));
            list.Add((p + "attention.self.value.bias", [C]));
            list.Add((p + "attention.output.dense.weight", [C, C]));
            list.Add((p + "attention.output.dense.bias", [C]));
            list.Add((p + "attention.output.LayerNorm.weight", [C]));
            list.Add((p + "attention.output.LayerNorm.bias", [C]));
            list.Add((p + "intermediate.dense.weight", [Fd, C]));
            list.Add((p + "intermediate.dense.bias", [Fd]));
            list.Add((p + "output.dense.weight", [C, Fd]));
            list.Add((p + "output.dense.bias", [C]));
            list.Add((p + "output.LayerNorm.weight", [C]));
            list.Add((p + "output.LayerNorm.bias", [C]));
        }
        if (bert.AddPoolingLayer)
        {
            list.Add(("pooler.dense.weight", [C, C]));
            list.Add(("pooler.dense.bias", [C]));
        }
        long width = C + adapter.DenseFeatures;
        for (int j = 0; j < adapter.HiddenSizes.Length; j++)
        {
            long h = adapter.HiddenSizes[j];
            list.Add(($"head.dense.{j}.weight", [h, width]));
            list.Add(($"head.dense.{j}.bias", [h]));
            width = h;
        }
        list.Add(("head.out.weight", [1, width]));
        list.Add(("head.out.bias", [1]));
        return list;
    }

    /// <summary>HF Trainer's rule: no weight decay for names containing "bias" or "LayerNorm.weight".</summary>
    public static bool Decays(string name) => !(name.Contains("bias", StringComparison.Ordinal) || name.Contains("LayerNorm.weight", StringComparison.Ordinal));

    /// <summary>Tensor names in model order.</summary>
    public IEnumerable<string> Names => _params.Select(p => p.Name);

    /// <summary>The parameter tensor named <paramref name="name"/>.</summary>
    public Parameter this[string name] => _byName.TryGetValue(name, out var p) ? p : throw new KeyNotFoundException($"TorchBert has no parameter '{name}'");

    /// <summary>Current values of a parameter, flattened.</summary>
    public float[] GetParameter(string name) => this[name].detach().cpu().data<float>().ToArray();

    /// <summary>Accumulated gradient of a parameter, flattened; zeros when no gradient exists (frozen or never backpropagated).</summary>
    public float[] GetGradient(string name)
    {
        var p = this[name];
        using var g = p.grad;
        return g is null ? new float[p.numel()] : g.cpu().data<float>().ToArray();
    }

    /// <summary>Logits (B) of <paramref name="batch"/>; dropout only when <paramref name="training"/>. The caller disposes the tensor.</summary>
    public Tensor Forward(RecBatch batch, bool training = false)
    {
        using var scope = torch.NewDisposeScope();
        return ForwardCore(batch, training).MoveToOuterDisposeScope();
    }

    /// <summary>Logits (B) as floats, without building a graph.</summary>
    public float[] Logits(RecBatch batch)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        return ForwardCore(batch, false).data<float>().ToArray();
    }

    /// <summary>Weighted BCE on logits: Σ wᵢ·bce(zᵢ, yᵢ) / Σ wᵢ (plain mean without weights).</summary>
    public static Tensor Loss(Tensor logits, RecBatch batch)
    {
        using var scope = torch.NewDisposeScope();
        var y = torch.tensor(batch.Labels, ScalarType.Float32);
        if (batch.Weights is null)
            return F.binary_cross_entropy_with_logits(logits, y).MoveToOuterDisposeScope();
        var w = torch.tensor(batch.Weights, ScalarType.Float32);
        return (F.binary_cross_entropy_with_logits(logits, y, w, nn.Reduction.Sum) / w.sum()).MoveToOuterDisposeScope();
    }

    /// <summary>Forward + loss + backward; gradients accumulate into each parameter's <c>.grad</c> (torch semantics). Returns the loss.</summary>
    public float ForwardBackward(RecBatch batch, bool training = false)
    {
        using var scope = torch.NewDisposeScope();
        var loss = Loss(ForwardCore(batch, training), batch);
        loss.backward();
        return loss.item<float>();
    }

    /// <summary>Clears every gradient (sets them to None, as <c>optimizer.zero_grad(set_to_none=True)</c>).</summary>
    public void ZeroGrad()
    {
        foreach (var (_, p) in _params) p.grad = null!;
    }

    /// <summary>Creates the AdamW optimiser over the trainable tensors: group 1 decays with <paramref name="weightDecay"/>,
    /// group 2 (biases, LayerNorm weights) has no decay (<see cref="Decays"/>). Global-norm clipping at
    /// <paramref name="maxGradNorm"/> precedes each step (0 = off).</summary>
    public void ConfigureOptimizer(double lr, double weightDecay = 0.01, double maxGradNorm = 1.0,
                                   double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        _optimizer?.Dispose();
        var trainable = _params.Where(p => p.P.requires_grad).ToList();
        var groups = new List<AdamW.ParamGroup>
        {
            new(trainable.Where(p => Decays(p.Name)).Select(p => p.P), lr, beta1, beta2, eps, weightDecay),
            new(trainable.Where(p => !Decays(p.Name)).Select(p => p.P), lr, beta1, beta2, eps, 0.0),
        };
        _optimizer = torch.optim.AdamW(groups, lr, beta1, beta2, eps, weightDecay);
        _maxGradNorm = maxGradNorm;
    }

    /// <summary><c>clip_grad_norm_</c> (when configured) then <c>optimizer.step()</c>; returns the gradient norm before clipping.</summary>
    public double Step()
    {
        if (_optimizer is null) throw new InvalidOperationException("TorchBert.Step: call ConfigureOptimizer first");
        using var scope = torch.NewDisposeScope();
        var withGrad = _params.Where(p => p.P.requires_grad && p.P.grad is not null).Select(p => p.P).ToList();
        double norm;
        if (_maxGradNorm > 0) norm = nn.utils.clip_grad_norm_(withGrad, _maxGradNorm);
        else
        {
            double sq = 0;
            foreach (var p in withGrad) sq += p.grad!.pow(2).sum().item<float>();
            norm = Math.Sqrt(sq);
        }
        _optimizer.step();
        return norm;
    }

    private Tensor ForwardCore(RecBatch batch, bool training)
    {
        int B = batch.B, T = batch.T, C = _bert.HiddenSize, NH = _bert.NumAttentionHeads, HS = C / NH;
        double eps = _bert.LayerNormEps;
        double pHidden = training ? _bert.HiddenDropoutProb : 0, pAttn = training ? _bert.AttentionProbsDropoutProb : 0;
        long[] cShape = [C];

        // embeddings: (word + token type) + position, LayerNorm, dropout (HF BertEmbeddings order)
        var ids = torch.tensor(batch.InputIds.Select(i => (long)i).ToArray(), [B * T], ScalarType.Int64);
        var types = batch.TokenTypeIds is { } tt
            ? torch.tensor(tt.Select(i => (long)i).ToArray(), [B * T], ScalarType.Int64)
            : torch.zeros([B * T], ScalarType.Int64);
        var x = this["embeddings.word_embeddings.weight"].index_select(0, ids).view(B, T, C)
              + this["embeddings.token_type_embeddings.weight"].index_select(0, types).view(B, T, C);
        x = x + this["embeddings.position_embeddings.weight"].index_select(0, _positionIds.narrow(0, 0, T)).unsqueeze(0); // (B, T, C)
        x = F.layer_norm(x, cShape, this["embeddings.LayerNorm.weight"], this["embeddings.LayerNorm.bias"], eps);
        x = F.dropout(x, pHidden, training);

        // HF get_extended_attention_mask: (1 - mask) * finfo(float32).min, broadcast over heads and queries
        var mask = torch.tensor(batch.AttentionMask, [B, T], ScalarType.Float32);
        var additive = ((1.0f - mask) * torch.finfo(ScalarType.Float32).min).view(B, 1, 1, T); // (B, 1, 1, T)
        double sqrtHs = Math.Sqrt(HS);

        for (int i = 0; i < _bert.NumHiddenLayers; i++)
        {
            string p = $"encoder.layer.{i}.";
            Tensor Heads(Tensor t) => t.view(B, T, NH, HS).transpose(1, 2); // (B, NH, T, HS)
            var q = Heads(F.linear(x, this[p + "attention.self.query.weight"], this[p + "attention.self.query.bias"]));
            var k = Heads(F.linear(x, this[p + "attention.self.key.weight"], this[p + "attention.self.key.bias"]));
            var v = Heads(F.linear(x, this[p + "attention.self.value.weight"], this[p + "attention.self.value.bias"]));
            Tensor ctx;
            if (UseSdpa)
                ctx = F.scaled_dot_product_attention(q, k, v, additive, pAttn, false);
            else
            {
                var scores = torch.matmul(q, k.transpose(-1, -2)) / sqrtHs + additive; // (B, NH, T, T)
                var probs = F.dropout(F.softmax(scores, -1), pAttn, training);
                ctx = torch.matmul(probs, v); // (B, NH, T, HS)
            }
            ctx = ctx.transpose(1, 2).reshape(B, T, C);
            var attnOut = F.dropout(F.linear(ctx, this[p + "attention.output.dense.weight"], this[p + "attention.output.dense.bias"]), pHidden, training);
            x = F.layer_norm(attnOut + x, cShape, this[p + "attention.output.LayerNorm.weight"], this[p + "attention.output.LayerNorm.bias"], eps);
            var inter = Act(_bert.HiddenAct, F.linear(x, this[p + "intermediate.dense.weight"], this[p + "intermediate.dense.bias"])); // (B, T, F)
            var ffOut = F.dropout(F.linear(inter, this[p + "output.dense.weight"], this[p + "output.dense.bias"]), pHidden, training);
            x = F.layer_norm(ffOut + x, cShape, this[p + "output.LayerNorm.weight"], this[p + "output.LayerNorm.bias"], eps);
        }

        var cls = x.select(1, 0); // (B, C)
        Tensor h;
        if (_adapter.Input == AdapterInput.Pooler)
            h = torch.tanh(F.linear(cls, this["pooler.dense.weight"], this["pooler.dense.bias"]));
        else
            h = cls;
        if (_adapter.DenseFeatures > 0)
        {
            if (batch.Dense is null) throw new ArgumentException("TorchBert: the head expects dense features but RecBatch.Dense is null", nameof(batch));
            h = torch.cat([h, torch.tensor(batch.Dense, [B, _adapter.DenseFeatures], ScalarType.Float32)], 1); // (B, C + D)
        }
        for (int j = 0; j < _adapter.HiddenSizes.Length; j++)
        {
            h = Act(_adapter.Activation, F.linear(h, this[$"head.dense.{j}.weight"], this[$"head.dense.{j}.bias"]));
            h = F.dropout(h, training ? _adapter.Dropout : 0, training);
        }
        return F.linear(h, this["head.out.weight"], this["head.out.bias"]).view(B); // (B)
    }

    private static Tensor Act(string hiddenAct, Tensor t) => hiddenAct switch
    {
        "gelu" => F.gelu(t),
        "relu" => F.relu(t, false),
        _ => throw new NotSupportedException($"TorchBert: hidden_act '{hiddenAct}' is not supported"),
    };

    private static Tensor Act(Activation act, Tensor t) => act switch
    {
        Activation.Gelu => F.gelu(t),
        Activation.Relu => F.relu(t, false),
        Activation.Tanh => torch.tanh(t),
        Activation.Identity => t,
        _ => throw new NotSupportedException($"TorchBert: activation {act} is not supported"),
    };

    /// <summary>Frees the parameters, their gradients and the optimiser state.</summary>
    public void Dispose()
    {
        _optimizer?.Dispose();
        foreach (var (_, p) in _params) p.Dispose();
        _positionIds.Dispose();
    }
}
