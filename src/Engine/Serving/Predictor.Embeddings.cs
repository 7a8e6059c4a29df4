// The Predictor's encoder forward reused for sentence embeddings of single texts (mean pooled over the tokens, L2-normalised).
using FastRec.Engine.Text;

namespace FastRec.Engine.Serving;

public sealed partial class Predictor
{
    /// <summary>
    /// Sentence embeddings as sentence-transformers computes them (mean of the last hidden state over the real tokens,
    /// L2-normalised; see <see cref="SentenceEmbedding"/>) of N single texts given as WordPiece ids without special tokens,
    /// in CSR form: text i is <paramref name="texts"/>[<paramref name="offsets"/>[i] .. <paramref name="offsets"/>[i+1]]
    /// (offsets: N + 1 values). Each is encoded as [CLS] text [SEP] with token type 0, cut to
    /// <see cref="PredictorOptions.MaxLength"/> − 2 tokens. Texts run <see cref="PredictorOptions.MaxBatch"/> at a time in
    /// the given order, each batch padded to its longest text (give them sorted by length for little padding); padding does
    /// not enter a text's embedding. Writes (N, C) into <paramref name="embeddings"/>. The head is not run.
    /// </summary>
    /// <exception cref="ObjectDisposedException">the predictor was disposed.</exception>
    /// <exception cref="ArgumentException">bad offsets, a token id outside the vocabulary, or a length mismatch (named).</exception>
    public void SentenceEmbeddings(ReadOnlySpan<int> texts, ReadOnlySpan<int> offsets, Span<float> embeddings)
    {
        Enter();
        try
        {
            int n = CheckCsr(texts, nameof(texts), offsets, minItems: 0);
            if (embeddings.Length != (long)n * C)
                throw new ArgumentException($"embeddings: expected (N={n}, C={C}) = {(long)n * C} elements, got {embeddings.Length}", nameof(embeddings));
            if (n == 0) return;
            var w = Rent();
            try
            {
                for (int s = 0; s < n; s += Options.MaxBatch)
                {
                    int B = Math.Min(Options.MaxBatch, n - s);
                    int T = PackSingles(w, texts, offsets.Slice(s, B + 1), B);
                    var v = w.Carve(this, B, T);
                    Forward(w, v, B, T, allTokens: true);
                    SentenceEmbedding.MeanPooled(v.H.Span, w.Mask.All.Span[..(B * T)], B, T, C, embeddings.Slice(s * C, B * C));   // (B, C)
                }
            }
            finally { Return(w); }
        }
        finally { Exit(); }
    }

    /// <summary>Writes ids, token types (0) and mask of B single texts [CLS] text [SEP] into the workspace; returns T.</summary>
    private int PackSingles(Workspace w, ReadOnlySpan<int> texts, ReadOnlySpan<int> offsets, int B)
    {
        int budget = Options.MaxLength - 2, T = 0;
        for (int b = 0; b < B; b++) T = Math.Max(T, Math.Min(offsets[b + 1] - offsets[b], budget) + 2);
        Span<int> ids = w.Ids.All.Span[..(B * T)];
        Span<float> mask = w.Mask.All.Span[..(B * T)];
        w.Types.All.Span[..(B * T)].Clear();
        for (int b = 0; b < B; b++)
        {
            Span<int> row = ids.Slice(b * T, T);
            Span<float> mrow = mask.Slice(b * T, T);
            int a = Math.Min(offsets[b + 1] - offsets[b], budget), len = a + 2;
            row[0] = Options.ClsId;
            texts.Slice(offsets[b], a).CopyTo(row[1..]);
            row[len - 1] = Options.SepId;
            row[len..].Fill(Bert.PadTokenId);
            mrow[..len].Fill(1f);
            mrow[len..].Clear();
        }
        return T;
    }
}
