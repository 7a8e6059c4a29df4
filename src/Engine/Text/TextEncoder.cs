// A BERT model directory ready to encode text: tokenizer + RecModel.Encode + sentence embedding, for `fastrec encode`.
using FastRec.Engine.Model;
using FastRec.Engine.Weights;
using FastRec.Kernels;

namespace FastRec.Engine.Text;

/// <summary>The outputs of one encoded text (or pair). T tokens, C hidden.</summary>
public sealed class TextEncoding
{
    /// <summary>(T) [CLS] a [SEP] (b [SEP]).</summary>
    public required int[] InputIds { get; init; }
    /// <summary>(T) 0 for the first segment, 1 for the second.</summary>
    public required int[] TokenTypeIds { get; init; }
    /// <summary>(T, C) the last layer's hidden states.</summary>
    public required float[] LastHiddenState { get; init; }
    /// <summary>(C) the pooler output, or null when the model has no pooler.</summary>
    public float[]? PoolerOutput { get; init; }
    /// <summary>(C) mean of <see cref="LastHiddenState"/> over the tokens, L2-normalised.</summary>
    public required float[] SentenceEmbedding { get; init; }
    /// <summary>True when the input was cut to the maximum length.</summary>
    public required bool Truncated { get; init; }
    /// <summary>T.</summary>
    public int SeqLen => InputIds.Length;
}

/// <summary>Loads a model directory once and encodes texts with it (evaluation mode, no padding for a single text).</summary>
public sealed class TextEncoder : IDisposable
{
    private readonly RecModel _model;

    /// <summary>What was found in the directory.</summary>
    public BertCheckpointInfo Info { get; }
    /// <summary>The tokenizer (the model's vocab and casing).</summary>
    public BertTextTokenizer Tokenizer { get; }

    /// <summary>Opens <paramref name="dir"/> on <paramref name="backend"/> (not owned); <paramref name="maxLength"/> defaults to max_position_embeddings.</summary>
    public TextEncoder(string dir, IBackend backend, int? maxLength = null)
    {
        Info = BertCheckpoint.Open(dir);
        var c = Info.Config;
        Tokenizer = new BertTextTokenizer(Info.VocabPath, Info.LowerCase, maxLength ?? c.MaxPositionEmbeddings, c.MaxPositionEmbeddings);
        _model = BertCheckpoint.Load(dir, backend);
    }

    /// <summary>Encodes <paramref name="text"/> (and <paramref name="pair"/> as the second segment).</summary>
    public TextEncoding Encode(string text, string? pair = null)
    {
        var enc = Tokenizer.Encode(text, pair);
        int T = enc.Length, C = Info.Config.HiddenSize;
        var mask = new float[T];   // (1, T)
        Array.Fill(mask, 1f);
        var o = _model.Encode(new RecBatch { B = 1, T = T, InputIds = enc.InputIds, TokenTypeIds = enc.TokenTypeIds, AttentionMask = mask });
        return new TextEncoding
        {
            InputIds = enc.InputIds,
            TokenTypeIds = enc.TokenTypeIds,
            LastHiddenState = o.LastHiddenState,
            PoolerOutput = o.PoolerOutput,
            SentenceEmbedding = SentenceEmbedding.MeanPooled(o.LastHiddenState, mask, 1, T, C),
            Truncated = enc.Truncated,
        };
    }

    /// <summary>Frees the model's buffers.</summary>
    public void Dispose() => _model.Dispose();
}
