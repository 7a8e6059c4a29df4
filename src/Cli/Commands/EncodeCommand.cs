// `fastrec encode`: tokenizes a text (or pair) and prints the encoder's outputs and the sentence embedding, as JSON or a summary.
using System.CommandLine;
using System.Text.Json;
using FastRec.Engine.Text;
using FastRec.Engine.Weights;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Kernels.Reference;

namespace FastRec.Cli.Commands;

internal static class EncodeCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "model directory (config.json, model.safetensors, vocab.txt)", Required = true };
        var text = new Option<string>("--text") { Description = "the text to encode", Required = true };
        var pair = new Option<string>("--pair") { Description = "optional second segment (token type 1)" };
        var maxLen = new Option<int?>("--max-len") { Description = "truncate to this many tokens, special tokens included (default: max_position_embeddings); more than max_position_embeddings is refused" };
        var json = new Option<bool>("--json") { Description = "print one JSON object: input_ids, token_type_ids, last_hidden_state (T x hidden, flattened), pooler_output, sentence_embedding" };
        var backend = new Option<string?>("--backend") { Description = "auto | cpu | cuda | reference | ilgpu-cpu (default: $FASTREC_BACKEND, else auto)" };
        var cmd = new Command("encode", "Encode a text with a BERT model directory and print its hidden states and sentence embedding")
        {
            model, text, pair, maxLen, json, backend,
        };
        cmd.SetAction(r => CliRun.Guard(
            () => Run(r.GetValue(model)!, r.GetValue(text)!, r.GetValue(pair), r.GetValue(maxLen), r.GetValue(json), r.GetValue(backend)),
            r.GetValue(json)));
        return cmd;
    }

    private static int Run(string dir, string text, string? pair, int? maxLen, bool asJson, string? backendName)
    {
        using IBackend backend = BackendOptions.Create(backendName);
        using var encoder = new TextEncoder(dir, backend, maxLen);
        var e = encoder.Encode(text, pair);
        if (e.Truncated) Console.Error.WriteLine($"warning: input truncated to {encoder.Tokenizer.MaxLength} tokens (longest first)");
        int C = encoder.Info.Config.HiddenSize;
        if (!asJson)
        {
            Console.WriteLine($"tokens: {e.SeqLen}  hidden: {C}  pooler: {(e.PoolerOutput is null ? "none" : "yes")}");
            Console.WriteLine($"input_ids: [{string.Join(", ", e.InputIds)}]");
            Console.WriteLine($"sentence_embedding[0..8]: [{string.Join(", ", e.SentenceEmbedding.Take(8).Select(v => v.ToString("F6")))}]");
            return 0;
        }
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            Ints(w, "input_ids", e.InputIds);
            Ints(w, "token_type_ids", e.TokenTypeIds);
            w.WriteNumber("seq_len", e.SeqLen);
            w.WriteNumber("hidden_size", C);
            Floats(w, "last_hidden_state", e.LastHiddenState);
            if (e.PoolerOutput is { } pooled) Floats(w, "pooler_output", pooled);
            Floats(w, "sentence_embedding", e.SentenceEmbedding);
            w.WriteEndObject();
        }
        CliRun.EmitJsonText(System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
        return 0;
    }

    private static void Ints(Utf8JsonWriter w, string name, int[] v)
    {
        w.WriteStartArray(name);
        foreach (int x in v) w.WriteNumberValue(x);
        w.WriteEndArray();
    }

    private static void Floats(Utf8JsonWriter w, string name, float[] v)
    {
        w.WriteStartArray(name);
        foreach (float x in v) w.WriteNumberValue(x);
        w.WriteEndArray();
    }
}
