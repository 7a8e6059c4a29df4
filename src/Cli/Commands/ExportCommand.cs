// `fastrec export`: a FastRec checkpoint (fine-tuned or distilled) -> one ONNX graph, encoder + head, for ONNX Runtime and friends.
using System.CommandLine;
using FastRec.Engine.Serving;
using FastRec.Engine.Training;
using FastRec.Kernels.Cpu;

namespace FastRec.Cli.Commands;

internal static class ExportCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "FastRec checkpoint directory (from train, distill or cotrain)", Required = true };
        var onnx = new Option<string>("--onnx") { Description = "ONNX file to write (inputs input_ids, attention_mask, token_type_ids [, dense_features]; output logits)", Required = true };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace the file already at --onnx" };
        var cmd = new Command("export", "Export a checkpoint's encoder + head as one ONNX graph (opset 17) that scores like the Predictor")
        {
            model, onnx, overwrite,
        };
        cmd.SetAction(r => CliRun.Guard(() =>
        {
            string ckpt = r.GetValue(model)!, output = r.GetValue(onnx)!;
            OutputPaths.OutFile(output, "--onnx");
            if (File.Exists(output) && !r.GetValue(overwrite))
                throw new ArgumentException($"--onnx {output}: already exists; add --overwrite to replace it");
            using var backend = new CpuSimdBackend();
            using var rec = Checkpoint.Load(ckpt, backend).Recommender;
            OnnxExporter.Save(rec, output);
            var m = rec.Model;
            string dense = m.Adapter.DenseFeatures > 0 ? $", dense_features [batch, {m.Adapter.DenseFeatures}] raw ({string.Join(", ", rec.Scaler.Names)})" : "";
            Console.WriteLine($"wrote {Path.GetFullPath(output)} ({new FileInfo(output).Length / 1e6:0.0} MB, opset {OnnxExporter.Opset}): " +
                              $"inputs input_ids, attention_mask, token_type_ids int64 [batch, sequence] (trained on up to {rec.Text.MaxLength} tokens){dense}; output logits [batch]");
            return 0;
        }));
        return cmd;
    }
}
