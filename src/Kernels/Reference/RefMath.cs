// The specification of every backend op: plain scalar double-precision loops, forward/backward pairs side by side.
namespace FastRec.Kernels.Reference;

/// <summary>
/// Plain, never-optimised double-precision kernels: the executable specification of <see cref="IBackend"/> and the
/// oracle every other backend is tested against (the role of llm.c's train_gpt2.c).
/// <para>Conventions: row-major contiguous arrays; an EMPTY span stands for an absent optional argument
/// (dimensions are validated positive by the caller, so a required span is never empty). Forward outputs and
/// activation gradients are assigned (=); parameter gradients accumulate (+=). Shapes are written next to each argument.
/// These functions assume lengths were validated (see <see cref="ReferenceBackend"/>); ids are range-checked here.</para>
/// Dimension letters: B batch, T sequence, C hidden, NH heads, HS = C/NH head size, N rows, V vocab, IC/OC in/out features.
/// </summary>
public static class RefMath
{
    // ================================================================ special functions

    // W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969), 631-638
    // (the coefficient sets of SPECFUN CALERF). Relative accuracy ~1e-16 for erf and erfc over the whole line.
    private static readonly double[] ErfA = [3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03, 1.85777706184603153e-1];
    private static readonly double[] ErfB = [2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03];
    private static readonly double[] ErfC = [5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
                                             8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8];
    private static readonly double[] ErfD = [1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
                                             3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03];
    private static readonly double[] ErfP = [3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
                                             6.58749161529837803e-4, 1.63153871373020978e-2];
    private static readonly double[] ErfQ = [2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
                                             2.33520497626869185e-3];
    private const double InvSqrtPi = 5.6418958354775628695e-1;   // 1/sqrt(pi)
    private const double InvSqrt2 = 0.70710678118654752440;      // 1/sqrt(2)
    private const double InvSqrt2Pi = 0.39894228040143267794;    // 1/sqrt(2 pi)

    /// <summary>erf on [0, 0.46875] (caller passes y = |x| in that range).</summary>
    private static double ErfSmall(double y)
    {
        double ysq = y > 1.11e-16 ? y * y : 0.0;
        double num = ErfA[4] * ysq, den = ysq;
        for (int i = 0; i < 3; i++) { num = (num + ErfA[i]) * ysq; den = (den + ErfB[i]) * ysq; }
        return y * (num + ErfA[3]) / (den + ErfB[3]);
    }

    /// <summary>erfc(y) for y &gt; 0.46875.</summary>
    private static double ErfcLarge(double y)
    {
        double r;
        if (y <= 4.0)
        {
            double num = ErfC[8] * y, den = y;
            for (int i = 0; i < 7; i++) { num = (num + ErfC[i]) * y; den = (den + ErfD[i]) * y; }
            r = (num + ErfC[7]) / (den + ErfD[7]);
        }
        else
        {
            if (y >= 26.6) return 0.0;   // erfc underflows
            double z = 1.0 / (y * y);
            double num = ErfP[5] * z, den = z;
            for (int i = 0; i < 4; i++) { num = (num + ErfP[i]) * z; den = (den + ErfQ[i]) * z; }
            r = z * (num + ErfP[4]) / (den + ErfQ[4]);
            r = (InvSqrtPi - r) / y;
        }
        // exp(-y^2) computed as exp(-ysq^2)·exp(-(y-ysq)(y+ysq)) with ysq = y rounded down to 1/16 (Cody's trick).
        double ys = Math.Floor(y * 16.0) / 16.0;
        double del = (y - ys) * (y + ys);
        return Math.Exp(-ys * ys) * Math.Exp(-del) * r;
    }

    /// <summary>The error function in double precision (~1e-16 relative; .NET has no Math.Erf).</summary>
    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double y = Math.Abs(x);
        if (y <= 0.46875) return x < 0 ? -ErfSmall(y) : ErfSmall(y);
        double r = (0.5 - ErfcLarge(y)) + 0.5;
        return x < 0 ? -r : r;
    }

    /// <summary>The complementary error function 1 − erf(x), accurate in relative terms also in the right tail.</summary>
    public static double Erfc(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double y = Math.Abs(x);
        if (y <= 0.46875) return 1.0 - (x < 0 ? -ErfSmall(y) : ErfSmall(y));
        double r = ErfcLarge(y);
        return x < 0 ? 2.0 - r : r;
    }

    /// <summary>Numerically stable logistic sigmoid.</summary>
    public static double Sigmoid(double z)
    {
        if (z >= 0) return 1.0 / (1.0 + Math.Exp(-z));
        double e = Math.Exp(z);
        return e / (1.0 + e);
    }

    // ================================================================ GEMM

    /// <summary>The packed leading dimension of a stored matrix: its row length.</summary>
    public static int PackedLd(bool trans, int rows, int cols) => trans ? rows : cols;

    /// <summary>
    /// Strided-batched GEMM exactly as <see cref="IBackend.Gemm"/>: for p &lt; batch,
    /// C_p[M,N] = alpha·op(A_p)·op(B_p) (+ C_p when accumulate). op(A) = A[M,K] (lda) or, transA, A stored [K,M];
    /// op(B) = B[K,N] (ldb) or, transB, B stored [N,K]. A leading dimension of 0 means packed.
    /// Without accumulate, C's previous contents are ignored (even NaN).
    /// </summary>
    public static void Gemm(bool transA, bool transB, int M, int N, int K, double alpha,
        ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, bool accumulate, Span<double> c, int ldc,
        int batch = 1, long strideA = 0, long strideB = 0, long strideC = 0)
    {
        if (lda == 0) lda = transA ? M : K;
        if (ldb == 0) ldb = transB ? K : N;
        if (ldc == 0) ldc = N;
        for (int p = 0; p < batch; p++)
        {
            long oa = p * strideA, ob = p * strideB, oc = p * strideC;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++)
                {
                    double s = 0;
                    for (int k = 0; k < K; k++)
                    {
                        double av = transA ? a[(int)(oa + (long)k * lda + i)] : a[(int)(oa + (long)i * lda + k)];
                        double bv = transB ? b[(int)(ob + (long)j * ldb + k)] : b[(int)(ob + (long)k * ldb + j)];
                        s += av * bv;
                    }
                    int ci = (int)(oc + (long)i * ldc + j);
                    c[ci] = alpha * s + (accumulate ? c[ci] : 0.0);
                }
        }
    }

    // ================================================================ linear (HF layout: weight [out, in])

    /// <summary>output(N,OC) = input(N,IC)·weight(OC,IC)ᵀ + bias(OC) (bias empty = none).</summary>
    public static void LinearForward(Span<double> output, ReadOnlySpan<double> input, ReadOnlySpan<double> weight,
        ReadOnlySpan<double> bias, int N, int IC, int OC)
    {
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++)
            {
                double s = bias.IsEmpty ? 0.0 : bias[o];
                for (int i = 0; i < IC; i++) s += input[n * IC + i] * weight[o * IC + i];
                output[n * OC + o] = s;
            }
    }

    /// <summary>dInput(N,IC) = dOutput·W (=); dWeight(OC,IC) += dOutputᵀ·input; dBias(OC) += Σ_n dOutput. Each output empty = skipped.</summary>
    public static void LinearBackward(Span<double> dInput, Span<double> dWeight, Span<double> dBias,
        ReadOnlySpan<double> dOutput, ReadOnlySpan<double> input, ReadOnlySpan<double> weight, int N, int IC, int OC)
    {
        if (!dInput.IsEmpty)
            for (int n = 0; n < N; n++)
                for (int i = 0; i < IC; i++)
                {
                    double s = 0;
                    for (int o = 0; o < OC; o++) s += dOutput[n * OC + o] * weight[o * IC + i];
                    dInput[n * IC + i] = s;
                }
        if (!dWeight.IsEmpty)
            for (int o = 0; o < OC; o++)
                for (int i = 0; i < IC; i++)
                {
                    double s = 0;
                    for (int n = 0; n < N; n++) s += dOutput[n * OC + o] * input[n * IC + i];
                    dWeight[o * IC + i] += s;
                }
        if (!dBias.IsEmpty)
            for (int o = 0; o < OC; o++)
            {
                double s = 0;
                for (int n = 0; n < N; n++) s += dOutput[n * OC + o];
                dBias[o] += s;
            }
    }

    // ================================================================ activations

    /// <summary>act(x) for one element. GELU is the erf form 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(−x/√2).</summary>
    public static double Act(Activation act, double x) => act switch
    {
        Activation.Gelu => 0.5 * x * Erfc(-x * InvSqrt2),
        Activation.Relu => x > 0 ? x : 0.0,
        Activation.Tanh => Math.Tanh(x),
        Activation.Identity => x,
        _ => throw new ArgumentOutOfRangeException(nameof(act), act, "unknown activation"),
    };

    /// <summary>act'(x) for one element (ReLU'(0) = 0, as torch).</summary>
    public static double ActGrad(Activation act, double x) => act switch
    {
        Activation.Gelu => 0.5 * Erfc(-x * InvSqrt2) + x * InvSqrt2Pi * Math.Exp(-0.5 * x * x),
        Activation.Relu => x > 0 ? 1.0 : 0.0,
        Activation.Tanh => 1.0 - Math.Tanh(x) * Math.Tanh(x),
        Activation.Identity => 1.0,
        _ => throw new ArgumentOutOfRangeException(nameof(act), act, "unknown activation"),
    };

    /// <summary>output(n) = act(input(n)).</summary>
    public static void ActivationForward(Activation act, Span<double> output, ReadOnlySpan<double> input)
    {
        for (int i = 0; i < input.Length; i++) output[i] = Act(act, input[i]);
    }

    /// <summary>dInput(n) = dOutput ⊙ act'(input) (=).</summary>
    public static void ActivationBackward(Activation act, Span<double> dInput, ReadOnlySpan<double> dOutput, ReadOnlySpan<double> input)
    {
        for (int i = 0; i < input.Length; i++) dInput[i] = dOutput[i] * ActGrad(act, input[i]);
    }

    // ================================================================ residual add + LayerNorm

    /// <summary>x = a + b (b empty: x = a) saved in sum(N,C); output(N,C) = (x − mean)·rstd·gamma(C) + beta(C);
    /// mean(N), rstd(N) = 1/sqrt(var + eps) saved, var the population variance.</summary>
    public static void AddLayerNormForward(Span<double> output, Span<double> sum, Span<double> mean, Span<double> rstd,
        ReadOnlySpan<double> a, ReadOnlySpan<double> b, ReadOnlySpan<double> gamma, ReadOnlySpan<double> beta, int N, int C, double eps)
    {
        for (int n = 0; n < N; n++)
        {
            int row = n * C;
            for (int c = 0; c < C; c++) sum[row + c] = a[row + c] + (b.IsEmpty ? 0.0 : b[row + c]);
            double m = 0;
            for (int c = 0; c < C; c++) m += sum[row + c];
            m /= C;
            double var = 0;
            for (int c = 0; c < C; c++) { double d = sum[row + c] - m; var += d * d; }
            var /= C;
            double s = 1.0 / Math.Sqrt(var + eps);
            for (int c = 0; c < C; c++) output[row + c] = (sum[row + c] - m) * s * gamma[c] + beta[c];
            mean[n] = m;
            rstd[n] = s;
        }
    }

    /// <summary>dx(N,C) (=) = rstd·(dn − mean(dn) − x̂·mean(dn·x̂)) with dn = dOutput·gamma, x̂ = (sum − mean)·rstd;
    /// dGamma(C) += Σ_n dOutput·x̂; dBeta(C) += Σ_n dOutput (each empty = skipped).</summary>
    public static void AddLayerNormBackward(Span<double> dx, Span<double> dGamma, Span<double> dBeta,
        ReadOnlySpan<double> dOutput, ReadOnlySpan<double> sum, ReadOnlySpan<double> gamma, ReadOnlySpan<double> mean,
        ReadOnlySpan<double> rstd, int N, int C)
    {
        for (int n = 0; n < N; n++)
        {
            int row = n * C;
            double m = mean[n], s = rstd[n];
            double dnMean = 0, dnXhatMean = 0;
            for (int c = 0; c < C; c++)
            {
                double xhat = (sum[row + c] - m) * s;
                double dn = dOutput[row + c] * gamma[c];
                dnMean += dn;
                dnXhatMean += dn * xhat;
            }
            dnMean /= C;
            dnXhatMean /= C;
            for (int c = 0; c < C; c++)
            {
                double xhat = (sum[row + c] - m) * s;
                double dn = dOutput[row + c] * gamma[c];
                if (!dGamma.IsEmpty) dGamma[c] += dOutput[row + c] * xhat;
                if (!dBeta.IsEmpty) dBeta[c] += dOutput[row + c];
                dx[row + c] = s * (dn - dnMean - xhat * dnXhatMean);
            }
        }
    }

    // ================================================================ embeddings

    /// <summary>Throws unless 0 ≤ id &lt; rows, naming the table, the position and the table size.</summary>
    public static void CheckId(int id, int rows, string table, int b, int t)
    {
        if ((uint)id >= (uint)rows)
            throw new ArgumentOutOfRangeException(table,
                $"{table}: id {id} at position (b={b}, t={t}) is outside the table of {rows} rows");
    }

    /// <summary>output(B,T,C) = wordEmb(V,C)[ids(B,T)] + posEmb(P,C)[t] + typeEmb(TV,C)[typeIds(B,T)] (typeIds empty = all 0).
    /// V, P, TV are the table lengths / C; requires T ≤ P. Ids outside a table throw <see cref="ArgumentOutOfRangeException"/>.</summary>
    public static void EmbeddingForward(Span<double> output, ReadOnlySpan<int> ids, ReadOnlySpan<int> typeIds,
        ReadOnlySpan<double> wordEmb, ReadOnlySpan<double> posEmb, ReadOnlySpan<double> typeEmb, int B, int T, int C)
    {
        int V = wordEmb.Length / C, TV = typeEmb.Length / C;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
            {
                int bt = b * T + t;
                int id = ids[bt], type = typeIds.IsEmpty ? 0 : typeIds[bt];
                CheckId(id, V, "ids", b, t);
                CheckId(type, TV, "typeIds", b, t);
                for (int c = 0; c < C; c++)
                    output[bt * C + c] = wordEmb[id * C + c] + posEmb[t * C + c] + typeEmb[type * C + c];
            }
    }

    /// <summary>Scatter-add in (b, t) order: dWordEmb[ids] += dOutput, dPosEmb[t] += Σ_b dOutput, dTypeEmb[type] += dOutput.
    /// Each table empty = skipped; ids are checked against the tables given.</summary>
    public static void EmbeddingBackward(Span<double> dWordEmb, Span<double> dPosEmb, Span<double> dTypeEmb,
        ReadOnlySpan<double> dOutput, ReadOnlySpan<int> ids, ReadOnlySpan<int> typeIds, int B, int T, int C)
    {
        int V = dWordEmb.Length / C, TV = dTypeEmb.Length / C;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
            {
                int bt = b * T + t;
                int id = ids[bt], type = typeIds.IsEmpty ? 0 : typeIds[bt];
                if (!dWordEmb.IsEmpty) CheckId(id, V, "ids", b, t);
                if (!dTypeEmb.IsEmpty) CheckId(type, TV, "typeIds", b, t);
                for (int c = 0; c < C; c++)
                {
                    double g = dOutput[bt * C + c];
                    if (!dWordEmb.IsEmpty) dWordEmb[id * C + c] += g;
                    if (!dPosEmb.IsEmpty) dPosEmb[t * C + c] += g;
                    if (!dTypeEmb.IsEmpty) dTypeEmb[type * C + c] += g;
                }
            }
    }

    // ================================================================ masked softmax

    /// <summary>probs(B,NH,T,T) = softmax_j(scale·scores + (mask[b,j] == 0 ? −∞ : 0)); masked keys get exactly 0.
    /// mask(B,T) empty = no mask. A row whose keys are ALL masked gets all zeros (instead of 0/0).</summary>
    public static void SoftmaxForward(Span<double> probs, ReadOnlySpan<double> scores, ReadOnlySpan<double> mask,
        int B, int NH, int T, double scale)
    {
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int i = 0; i < T; i++)
                {
                    int row = ((b * NH + h) * T + i) * T;
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < T; j++)
                        if (Keeps(mask, b, j, T)) max = Math.Max(max, scale * scores[row + j]);
                    double z = 0;
                    for (int j = 0; j < T; j++)
                    {
                        double e = Keeps(mask, b, j, T) ? Math.Exp(scale * scores[row + j] - max) : 0.0;
                        probs[row + j] = e;
                        z += e;
                    }
                    for (int j = 0; j < T; j++) probs[row + j] = z > 0 ? probs[row + j] / z : 0.0;
                }
    }

    private static bool Keeps(ReadOnlySpan<double> mask, int b, int j, int T) => mask.IsEmpty || mask[b * T + j] != 0.0;

    /// <summary>dScores(B,NH,T,T) (=) = scale·probs ⊙ (dProbs − Σ_j dProbs·probs).</summary>
    public static void SoftmaxBackward(Span<double> dScores, ReadOnlySpan<double> dProbs, ReadOnlySpan<double> probs,
        int B, int NH, int T, double scale)
    {
        for (int r = 0; r < B * NH * T; r++)
        {
            int row = r * T;
            double dot = 0;
            for (int j = 0; j < T; j++) dot += dProbs[row + j] * probs[row + j];
            for (int j = 0; j < T; j++) dScores[row + j] = scale * probs[row + j] * (dProbs[row + j] - dot);
        }
    }

    // ================================================================ multi-head self-attention

    /// <summary>
    /// qkv(B,T,3C) = [Q | K | V] per token, head h in columns h·HS..(h+1)·HS of each block.
    /// qkvPerm(3,B,NH,T,HS) and probs(B,NH,T,T) (pre-dropout) are saved; output(B,T,C) = dropout(probs)·V with
    /// probs = softmax(QKᵀ/√HS, mask). Dropout keeps flat index i of (B,NH,T,T) when <see cref="Rng.Keep"/>, scaling by 1/(1−p).
    /// </summary>
    public static void AttentionForward(Span<double> output, Span<double> qkvPerm, Span<double> probs,
        ReadOnlySpan<double> qkv, ReadOnlySpan<double> mask, int B, int T, int C, int NH, DropoutSpec dropout)
    {
        int HS = C / NH;
        double scale = 1.0 / Math.Sqrt(HS);
        int plane = B * NH * T * HS; // one of Q, K, V in qkvPerm
        // permute: qkvPerm[s, b, h, t, d] = qkv[b, t, s*C + h*HS + d]
        for (int s = 0; s < 3; s++)
            for (int b = 0; b < B; b++)
                for (int h = 0; h < NH; h++)
                    for (int t = 0; t < T; t++)
                        for (int d = 0; d < HS; d++)
                            qkvPerm[s * plane + ((b * NH + h) * T + t) * HS + d] = qkv[(b * T + t) * 3 * C + s * C + h * HS + d];
        // scores(B,NH,T,T) = Q·Kᵀ (unscaled), then softmax with the scale and the mask
        var scores = new double[B * NH * T * T];
        for (int bh = 0; bh < B * NH; bh++)
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++)
                {
                    double s = 0;
                    for (int d = 0; d < HS; d++) s += qkvPerm[(bh * T + i) * HS + d] * qkvPerm[plane + (bh * T + j) * HS + d];
                    scores[(bh * T + i) * T + j] = s;
                }
        SoftmaxForward(probs, scores, mask, B, NH, T, scale);
        // output[b, i, h*HS + d] = Σ_j dropout(probs)[b,h,i,j] · V[b,h,j,d]
        double keepScale = dropout.IsOn ? 1.0 / (1.0 - dropout.P) : 1.0;
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int i = 0; i < T; i++)
                    for (int d = 0; d < HS; d++)
                    {
                        int bh = b * NH + h;
                        double s = 0;
                        for (int j = 0; j < T; j++)
                            s += DropProb(probs, (bh * T + i) * T + j, dropout, keepScale) * qkvPerm[2 * plane + (bh * T + j) * HS + d];
                        output[(b * T + i) * C + h * HS + d] = s;
                    }
    }

    private static double DropProb(ReadOnlySpan<double> probs, int idx, DropoutSpec dropout, double keepScale)
        => !dropout.IsOn ? probs[idx] : Rng.Keep(dropout, idx) ? probs[idx] * keepScale : 0.0;

    /// <summary>dQkv(B,T,3C) (=) from dOutput(B,T,C) and the saved qkvPerm(3,B,NH,T,HS), probs(B,NH,T,T);
    /// the dropout mask is regenerated from <paramref name="dropout"/>. Reverse order of <see cref="AttentionForward"/>.</summary>
    public static void AttentionBackward(Span<double> dQkv, ReadOnlySpan<double> dOutput, ReadOnlySpan<double> qkvPerm,
        ReadOnlySpan<double> probs, int B, int T, int C, int NH, DropoutSpec dropout)
    {
        int HS = C / NH;
        double scale = 1.0 / Math.Sqrt(HS);
        int plane = B * NH * T * HS;
        double keepScale = dropout.IsOn ? 1.0 / (1.0 - dropout.P) : 1.0;
        var dPerm = new double[3 * plane];          // (3,B,NH,T,HS)
        var dProbs = new double[B * NH * T * T];    // (B,NH,T,T)
        // output = dropout(probs)·V:  dV += dropout(probs)ᵀ·dOut;  dProbs = dropout'(dOut·Vᵀ)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
            {
                int bh = b * NH + h;
                for (int i = 0; i < T; i++)
                    for (int j = 0; j < T; j++)
                    {
                        int pij = (bh * T + i) * T + j;
                        double dp = DropProb(probs, pij, dropout, keepScale);
                        double dAtt = 0;
                        for (int d = 0; d < HS; d++)
                        {
                            double go = dOutput[(b * T + i) * C + h * HS + d];
                            dAtt += go * qkvPerm[2 * plane + (bh * T + j) * HS + d];
                            dPerm[2 * plane + (bh * T + j) * HS + d] += dp * go;
                        }
                        dProbs[pij] = !dropout.IsOn ? dAtt : Rng.Keep(dropout, pij) ? dAtt * keepScale : 0.0;
                    }
            }
        // probs = softmax(scale·Q·Kᵀ): dScores (unscaled QKᵀ) = scale·p ⊙ (dp − Σ dp·p)
        var dScores = new double[B * NH * T * T];
        SoftmaxBackward(dScores, dProbs, probs, B, NH, T, scale);
        // scores = Q·Kᵀ: dQ = dScores·K, dK = dScoresᵀ·Q
        for (int bh = 0; bh < B * NH; bh++)
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++)
                {
                    double g = dScores[(bh * T + i) * T + j];
                    for (int d = 0; d < HS; d++)
                    {
                        dPerm[(bh * T + i) * HS + d] += g * qkvPerm[plane + (bh * T + j) * HS + d];
                        dPerm[plane + (bh * T + j) * HS + d] += g * qkvPerm[(bh * T + i) * HS + d];
                    }
                }
        // un-permute: dQkv[b, t, s*C + h*HS + d] = dPerm[s, b, h, t, d]
        for (int s = 0; s < 3; s++)
            for (int b = 0; b < B; b++)
                for (int h = 0; h < NH; h++)
                    for (int t = 0; t < T; t++)
                        for (int d = 0; d < HS; d++)
                            dQkv[(b * T + t) * 3 * C + s * C + h * HS + d] = dPerm[s * plane + ((b * NH + h) * T + t) * HS + d];
    }

    // ================================================================ dropout

    /// <summary>output(n) = keep(i) ? input/(1−p) : 0; a copy when off.</summary>
    public static void DropoutForward(Span<double> output, ReadOnlySpan<double> input, DropoutSpec dropout)
    {
        double keepScale = dropout.IsOn ? 1.0 / (1.0 - dropout.P) : 1.0;
        for (int i = 0; i < input.Length; i++)
            output[i] = !dropout.IsOn ? input[i] : Rng.Keep(dropout, i) ? input[i] * keepScale : 0.0;
    }

    /// <summary>dInput(n) (=) = keep(i) ? dOutput/(1−p) : 0 (mask regenerated).</summary>
    public static void DropoutBackward(Span<double> dInput, ReadOnlySpan<double> dOutput, DropoutSpec dropout)
        => DropoutForward(dInput, dOutput, dropout);

    // ================================================================ strided row copy

    /// <summary>dst[r·ldDst + dstCol + c] (=, or += when accumulate) src[r·ldSrc + srcCol + c], r &lt; rows, c &lt; cols.
    /// Reads all of src before writing (well defined even when dst and src overlap).</summary>
    public static void Copy2D(Span<double> dst, int ldDst, int dstCol, ReadOnlySpan<double> src, int ldSrc, int srcCol,
        int rows, int cols, bool accumulate)
    {
        var tmp = new double[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) tmp[r * cols + c] = src[r * ldSrc + srcCol + c];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                int di = r * ldDst + dstCol + c;
                dst[di] = tmp[r * cols + c] + (accumulate ? dst[di] : 0.0);
            }
    }

    // ================================================================ pooler

    /// <summary>pooled(B,C) = tanh(hidden(B,T,C)[b,0,:]·weight(C,C)ᵀ + bias(C)) (bias empty = none).</summary>
    public static void PoolerForward(Span<double> pooled, ReadOnlySpan<double> hidden, ReadOnlySpan<double> weight,
        ReadOnlySpan<double> bias, int B, int T, int C)
    {
        for (int b = 0; b < B; b++)
            for (int o = 0; o < C; o++)
            {
                double s = bias.IsEmpty ? 0.0 : bias[o];
                for (int i = 0; i < C; i++) s += hidden[b * T * C + i] * weight[o * C + i];
                pooled[b * C + o] = Math.Tanh(s);
            }
    }

    /// <summary>With dPre(B,C) = dPooled ⊙ (1 − pooled²): dHidden[b,0,:] += dPre·W (other rows untouched);
    /// dWeight(C,C) += dPreᵀ·hidden[:,0,:]; dBias(C) += Σ_b dPre. Each output empty = skipped.</summary>
    public static void PoolerBackward(Span<double> dHidden, Span<double> dWeight, Span<double> dBias, ReadOnlySpan<double> dPooled,
        ReadOnlySpan<double> pooled, ReadOnlySpan<double> hidden, ReadOnlySpan<double> weight, int B, int T, int C)
    {
        var dPre = new double[B * C];
        for (int i = 0; i < B * C; i++) dPre[i] = dPooled[i] * (1.0 - pooled[i] * pooled[i]);
        for (int b = 0; b < B; b++)
            for (int o = 0; o < C; o++)
            {
                double g = dPre[b * C + o];
                if (!dBias.IsEmpty) dBias[o] += g;
                for (int i = 0; i < C; i++)
                {
                    if (!dWeight.IsEmpty) dWeight[o * C + i] += g * hidden[b * T * C + i];
                    if (!dHidden.IsEmpty) dHidden[b * T * C + i] += g * weight[o * C + i];
                }
            }
    }

    // ================================================================ fused sigmoid + binary cross-entropy

    /// <summary>
    /// z = logits/temperature, loss = scale·Σ w·(max(z,0) − z·y + log1p(exp(−|z|))) / Σ w (returned);
    /// dLogits(N) (=, or += when accumulate) scale·w·(σ(z) − y)/(temperature·Σ w). weights empty = 1; dLogits empty = loss only.
    /// Σ w = 0 gives NaN (0/0), as the float backends do.
    /// </summary>
    public static double BceForwardBackward(Span<double> dLogits, ReadOnlySpan<double> logits, ReadOnlySpan<double> targets,
        ReadOnlySpan<double> weights, int N, double temperature, double scale, bool accumulate)
    {
        double wSum = 0, loss = 0;
        for (int i = 0; i < N; i++)
        {
            double w = weights.IsEmpty ? 1.0 : weights[i];
            double z = logits[i] / temperature, y = targets[i];
            wSum += w;
            loss += w * (Math.Max(z, 0.0) - z * y + Log1p(Math.Exp(-Math.Abs(z))));
        }
        if (!dLogits.IsEmpty)
            for (int i = 0; i < N; i++)
            {
                double w = weights.IsEmpty ? 1.0 : weights[i];
                double z = logits[i] / temperature;
                double g = scale * w * (Sigmoid(z) - targets[i]) / (temperature * wSum);
                dLogits[i] = g + (accumulate ? dLogits[i] : 0.0);
            }
        return scale * loss / wSum;
    }

    /// <summary>log(1 + x) accurate for small x (.NET has no Math.Log1P): the classic correction log(u)·x/(u − 1).</summary>
    public static double Log1p(double x)
    {
        double u = 1.0 + x;
        return u == 1.0 ? x : Math.Log(u) * x / (u - 1.0);
    }

    // ================================================================ optimiser

    /// <summary>sqrt(Σ g²), accumulated in double.</summary>
    public static double GlobalNorm(ReadOnlySpan<double> grads)
    {
        double s = 0;
        foreach (double g in grads) s += g * g;
        return Math.Sqrt(s);
    }

    /// <summary>The clip factor of torch.nn.utils.clip_grad_norm_: maxNorm &gt; 0 ? min(1, maxNorm/(norm + 1e-6)) : 1.</summary>
    public static double ClipFactor(double norm, double maxNorm) => maxNorm > 0 ? Math.Min(1.0, maxNorm / (norm + 1e-6)) : 1.0;

    /// <summary>
    /// torch.optim.AdamW per segment with clipping folded in (g = grad·clip, grad itself not written). A segment with
    /// LrScale = 0 is untouched; otherwise with lr' = lr·LrScale: p −= lr'·wd·p; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
    /// p −= lr'·(m/(1−β1^step)) / (sqrt(v/(1−β2^step)) + eps). Elements outside every segment are untouched.
    /// </summary>
    public static void AdamW(Span<double> param, ReadOnlySpan<double> grad, Span<double> m, Span<double> v,
        ReadOnlySpan<AdamSegment> segments, double norm, double maxNorm, double lr, double beta1, double beta2, double eps, int step)
    {
        double clip = ClipFactor(norm, maxNorm);
        double bc1 = 1.0 - Math.Pow(beta1, step), bc2 = 1.0 - Math.Pow(beta2, step);
        foreach (var seg in segments)
        {
            if (seg.LrScale == 0f) continue;
            double lrs = lr * seg.LrScale, wd = seg.WeightDecay;
            for (int i = seg.Offset; i < seg.Offset + seg.Length; i++)
            {
                double g = grad[i] * clip;
                param[i] -= lrs * wd * param[i];
                m[i] = beta1 * m[i] + (1.0 - beta1) * g;
                v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
                param[i] -= lrs * (m[i] / bc1) / (Math.Sqrt(v[i] / bc2) + eps);
            }
        }
    }
}
