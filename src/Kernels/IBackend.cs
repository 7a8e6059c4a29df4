// The one backend contract: 22 kernel ops (8 forward/backward pairs + GEMM, Copy2D, fused BCE, fused MSE, GlobalNorm, AdamW) and memory calls over backend-owned views.
namespace FastRec.Kernels;

/// <summary>
/// The kernel contract every backend implements (Reference = the spec, CpuSimd = production CPU, Ilgpu = GPU).
/// <para>Conventions (see docs/ARCHITECTURE.md):</para>
/// <list type="bullet">
/// <item>All matrices are row-major and contiguous unless a leading dimension is given.
/// Dimension letters: B batch, T sequence, C hidden, NH heads, HS = C/NH head size, F feed-forward, V vocab, N rows.</item>
/// <item>Forward outputs are assigned (=). Parameter gradients (δweight, δbias, δgamma...) ACCUMULATE (+=).
/// Activation gradients (δinput) are ASSIGNED (=) unless the method says otherwise.</item>
/// <item>Optional arguments are <see cref="View{T}.None"/>.</item>
/// <item>Every method validates view lengths against the dimensions and throws <see cref="ShapeException"/>
/// naming the argument, the expected and the actual length. Dimensions of 0 are refused. Each op's checks are one
/// validator in <see cref="Check"/> (same name, same parameters) that every backend calls first.</item>
/// <item>Calls are asynchronous on GPU backends; <see cref="Synchronize"/> waits. Download synchronises.</item>
/// </list>
/// </summary>
public interface IBackend : IDisposable
{
    /// <summary>Short name: "reference", "cpu", "ilgpu-cuda", "ilgpu-cpu".</summary>
    string Name { get; }

    // ---------------------------------------------------------------- memory
    /// <summary>Allocates a zero-filled buffer of <paramref name="length"/> elements.</summary>
    DeviceBuffer<T> Allocate<T>(long length) where T : unmanaged;
    /// <summary>Copies host data into <paramref name="dst"/> (lengths must match).</summary>
    void Upload<T>(View<T> dst, ReadOnlySpan<T> src) where T : unmanaged;
    /// <summary>Copies <paramref name="src"/> to host memory (lengths must match); synchronises.</summary>
    void Download<T>(View<T> src, Span<T> dst) where T : unmanaged;
    /// <summary>dst = 0.</summary>
    void Zero(View<float> dst);
    /// <summary>dst = src (same length).</summary>
    void Copy(View<float> dst, View<float> src);
    /// <summary>Waits for all queued work.</summary>
    void Synchronize();

    // ---------------------------------------------------------------- GEMM
    /// <summary>
    /// Strided-batched GEMM, row-major: for each batch index p in [0, batch):
    /// C_p[M,N] = alpha * op(A_p) · op(B_p) + (accumulate ? C_p : 0), where op(A) is A[M,K] (lda) or, if transA, A stored [K,M] (lda);
    /// op(B) is B[K,N] (ldb) or, if transB, B stored [N,K] (ldb). C has leading dimension ldc.
    /// A_p starts at p*strideA (likewise B, C). Leading dimensions of 0 mean "packed" (the row length).
    /// </summary>
    void Gemm(bool transA, bool transB, int M, int N, int K, float alpha,
              View<float> a, int lda, View<float> b, int ldb, bool accumulate, View<float> c, int ldc,
              int batch = 1, long strideA = 0, long strideB = 0, long strideC = 0);

    // ---------------------------------------------------------------- linear (HF layout)
    /// <summary>out(N,OC) = inp(N,IC) · weight(OC,IC)ᵀ + bias(OC). Bias optional.</summary>
    void LinearForward(View<float> output, View<float> input, View<float> weight, View<float> bias, int N, int IC, int OC);
    /// <summary>δinput(N,IC) = δout·W (assigned; skipped when δinput is None); δweight(OC,IC) += δoutᵀ·inp and
    /// δbias(OC) += Σ_rows δout (each skipped when None: a frozen tensor's gradient is not computed).</summary>
    void LinearBackward(View<float> dInput, View<float> dWeight, View<float> dBias,
                        View<float> dOutput, View<float> input, View<float> weight, int N, int IC, int OC);

    // ---------------------------------------------------------------- activations
    /// <summary>out = act(inp), elementwise over n = inp.Length.</summary>
    void ActivationForward(Activation act, View<float> output, View<float> input);
    /// <summary>δinput = δout * act'(inp) (assigned), from the forward INPUT (tanh is recomputed).</summary>
    void ActivationBackward(Activation act, View<float> dInput, View<float> dOutput, View<float> input);

    // ---------------------------------------------------------------- residual + LayerNorm (post-LN BERT)
    /// <summary>
    /// x = a + b (b optional: then x = a), stored into <paramref name="sum"/> (N,C) for the backward;
    /// out(N,C) = (x - mean)·rstd·gamma + beta with mean(N), rstd(N) = 1/sqrt(var + eps) saved (population variance).
    /// <paramref name="sum"/> may alias <paramref name="a"/>.
    /// </summary>
    void AddLayerNormForward(View<float> output, View<float> sum, View<float> mean, View<float> rstd,
                             View<float> a, View<float> b, View<float> gamma, View<float> beta, int N, int C, float eps);
    /// <summary>δx(N,C) = LayerNorm backward wrt x = a + b (assigned; the caller routes it to both a and b);
    /// δgamma += Σ δout·x̂, δbeta += Σ δout (skipped when None). Needs the saved sum, mean, rstd.</summary>
    void AddLayerNormBackward(View<float> dx, View<float> dGamma, View<float> dBeta,
                              View<float> dOutput, View<float> sum, View<float> gamma, View<float> mean, View<float> rstd, int N, int C);

    // ---------------------------------------------------------------- embeddings
    /// <summary>out(B,T,C) = wordEmb[ids[b,t]] + posEmb[t] + typeEmb[typeIds[b,t]] (typeIds optional = all 0).
    /// Ids outside the tables throw (CPU) or are clamped to row 0 and reported (GPU, checked on host before upload).</summary>
    void EmbeddingForward(View<float> output, View<int> ids, View<int> typeIds,
                          View<float> wordEmb, View<float> posEmb, View<float> typeEmb, int B, int T, int C);
    /// <summary>Scatter-add: δwordEmb[ids] += δout, δposEmb[t] += Σ_b δout, δtypeEmb[type] += δout. Each table optional.
    /// Deterministic order on CPU backends.</summary>
    void EmbeddingBackward(View<float> dWordEmb, View<float> dPosEmb, View<float> dTypeEmb,
                           View<float> dOutput, View<int> ids, View<int> typeIds, int B, int T, int C);

    // ---------------------------------------------------------------- masked softmax
    /// <summary>probs(B,NH,T,T) = softmax_j(scale·scores[b,h,i,j] + (mask[b,j] == 0 ? -inf : 0)); masked keys get exactly 0.
    /// mask(B,T) holds 1 (keep) / 0 (padding); optional (None = no mask). probs may alias scores.</summary>
    void SoftmaxForward(View<float> probs, View<float> scores, View<float> mask, int B, int NH, int T, float scale);
    /// <summary>δscores = scale · probs ⊙ (δprobs − Σ_j δprobs·probs) (assigned). May alias δprobs.</summary>
    void SoftmaxBackward(View<float> dScores, View<float> dProbs, View<float> probs, int B, int NH, int T, float scale);

    // ---------------------------------------------------------------- multi-head self-attention
    /// <summary>
    /// qkv(B,T,3C) holds [Q | K | V] per token, head h in columns h·HS..(h+1)·HS of each block.
    /// Saves qkvPerm(3,B,NH,T,HS) and probs(B,NH,T,T) (pre-dropout) for the backward; output(B,T,C).
    /// Scale 1/sqrt(HS); padding keys masked as <see cref="SoftmaxForward"/>; dropout on the probabilities
    /// (keep index = flat index in (B,NH,T,T)). <paramref name="workspace"/> needs <see cref="Check.AttentionWorkspace"/> floats.
    /// </summary>
    void AttentionForward(View<float> output, View<float> qkvPerm, View<float> probs, View<float> workspace,
                          View<float> qkv, View<float> mask, int B, int T, int C, int NH, DropoutSpec dropout);
    /// <summary>δqkv(B,T,3C) (assigned) from δoutput(B,T,C) and the saved qkvPerm, probs; regenerates the dropout mask.</summary>
    void AttentionBackward(View<float> dQkv, View<float> dOutput, View<float> qkvPerm, View<float> probs, View<float> workspace,
                           View<float> mask, int B, int T, int C, int NH, DropoutSpec dropout);

    // ---------------------------------------------------------------- dropout
    /// <summary>out = keep(i) ? inp/(1-p) : 0 with the counter RNG (<see cref="Rng.Keep"/>); identity copy when off. May alias.</summary>
    void DropoutForward(View<float> output, View<float> input, DropoutSpec dropout);
    /// <summary>δinput = keep(i) ? δout/(1-p) : 0 (assigned, regenerated mask). May alias.</summary>
    void DropoutBackward(View<float> dInput, View<float> dOutput, DropoutSpec dropout);

    // ---------------------------------------------------------------- strided row copy (gather CLS, concat features)
    /// <summary>dst[r, dstCol + c] (=, or += when accumulate) src[r, srcCol + c] for r &lt; rows, c &lt; cols, with row
    /// strides (leading dimensions) ldDst, ldSrc. Used for [CLS] gathering, feature concat and their backward.</summary>
    void Copy2D(View<float> dst, int ldDst, int dstCol, View<float> src, int ldSrc, int srcCol, int rows, int cols, bool accumulate);

    // ---------------------------------------------------------------- pooler
    /// <summary>pooled(B,C) = tanh(hidden[b,0,:] · Wᵀ + bias): the BERT pooler on the [CLS] token of hidden(B,T,C).</summary>
    void PoolerForward(View<float> pooled, View<float> hidden, View<float> weight, View<float> bias, int B, int T, int C);
    /// <summary>δhidden[b,0,:] += (δpooled ⊙ (1 − pooled²)) · W (other rows untouched: the caller owns δhidden);
    /// δW += ..., δbias += ... (each optional). <paramref name="workspace"/> needs B·C floats.</summary>
    void PoolerBackward(View<float> dHidden, View<float> dWeight, View<float> dBias, View<float> dPooled,
                        View<float> pooled, View<float> hidden, View<float> weight, View<float> workspace, int B, int T, int C);

    // ---------------------------------------------------------------- fused sigmoid + BCE
    /// <summary>
    /// Weighted binary cross-entropy on logits, loss and gradient in one pass, stable for |z| ≥ 100.
    /// With z = logits[i]/temperature and y = targets[i] ∈ [0,1] (soft targets allowed), w_i = weights[i] (None = 1):
    /// loss[0] = scale · Σ w_i·(max(z,0) − z·y + log1p(exp(−|z|))) / Σ w_i;
    /// δlogits[i] (=, or += when accumulate) scale · w_i·(σ(z) − y) / (temperature · Σ w_i).
    /// Distillation passes targets = σ(teacher/T) and scale = α·T². Non-finite loss is not checked here (the trainer does).
    /// </summary>
    void BceForwardBackward(View<float> loss, View<float> dLogits, View<float> logits, View<float> targets, View<float> weights,
                            int N, float temperature = 1f, float scale = 1f, bool accumulate = false);

    // ---------------------------------------------------------------- mean squared error (distillation)
    /// <summary>
    /// Mean squared error, loss and gradient in one pass (TinyBERT hidden-state and attention-distribution transfer):
    /// with d_i = pred[i] − target[i] over the N elements,
    /// loss[0] = scale · Σ d_i² / N (assigned); δpred[i] (=, or += when accumulate) scale · 2·d_i / N.
    /// δpred None = loss only. δpred may alias pred (each element is read before it is written). <paramref name="scale"/>
    /// must be finite (0 allowed). Sums over the N elements in a fixed order per backend (CPU backends in double).
    /// Non-finite inputs are not checked here (the caller checks the loss).
    /// </summary>
    void MseForwardBackward(View<float> loss, View<float> dPred, View<float> pred, View<float> target, int N,
                            float scale = 1f, bool accumulate = false);

    // ---------------------------------------------------------------- optimiser
    /// <summary>Global L2 norm of <paramref name="grads"/> into norm[0] (float accumulation order fixed per backend).</summary>
    void GlobalNorm(View<float> norm, View<float> grads);
    /// <summary>
    /// torch.optim.AdamW over each segment, with gradient clipping folded in: g = grad · clip where
    /// clip = maxNorm &gt; 0 ? min(1, maxNorm / (norm[0] + 1e-6)) : 1 (torch.nn.utils.clip_grad_norm_).
    /// For a segment with s.LrScale = 0 nothing changes. Otherwise with lr' = lr·s.LrScale:
    /// p −= lr'·s.WeightDecay·p; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
    /// p −= lr'·(m/(1−β1^step)) / (sqrt(v/(1−β2^step)) + eps). step counts from 1.
    /// </summary>
    void AdamW(View<float> param, View<float> grad, View<float> m, View<float> v, View<AdamSegment> segments,
               View<float> norm, float maxNorm, float lr, float beta1, float beta2, float eps, int step);
}

/// <summary>Elementwise activations of the adapter and the encoder.</summary>
public enum Activation
{
    /// <summary>GELU, erf form (HF "gelu"): 0.5·x·(1 + erf(x/√2)).</summary>
    Gelu,
    Relu,
    Tanh,
    Identity,
}

/// <summary>A view whose length does not match the dimensions given; the message names the argument.</summary>
public sealed class ShapeException(string message) : ArgumentException(message);
