// kill -9 of a training process at random moments: eval always loads a complete checkpoint, --resume always ends with
// the uninterrupted run's weights.
using FastRec.Tests.Cli;
using System.Diagnostics;
using System.Text.Json.Nodes;
using FastRec.Engine.Training;
using FastRec.Kernels.Cpu;

namespace FastRec.Tests.Training;

[NonParallelizable]
public class CrashTests
{
    private const int Runs = 20;

    /// <summary>A tiny run that saves a resumable checkpoint at every step (so kills land in saves as often as in steps).</summary>
    private static string[] Train(TrainFixture fx, string output) =>
    [
        "train", "--interactions", fx.Interactions, "--items", fx.Items, "--model", fx.ModelDir, "--out", output, "--backend", "cpu", "--threads", "1",
        "--epochs", "1", "--batch-size", "8", "--lr", "3e-3", "--max-length", "24", "--context-size", "3", "--freeze", "top-k", "--top-k", "1",
        "--head-hidden", "8", "--eval-every", "6", "--checkpoint-every", "1", "--seed", "3",
    ];

    private static Process Start(string[] args)
    {
        string cli = Path.Combine(AppContext.BaseDirectory, "fastrec.dll");
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        psi.ArgumentList.Add(cli);
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// <summary>The encoder and head tensors as written (byte-exact).</summary>
    private static byte[] Weights(string dir)
        => [.. File.ReadAllBytes(Path.Combine(dir, "model.safetensors")), .. File.ReadAllBytes(Path.Combine(dir, Checkpoint.AdapterFile))];

    [Test]
    public void KilledTrainingLeavesALoadableCheckpointAndResumesToTheSameWeights()
    {
        int threads = CpuParallel.Threads;
        using var fx = new TrainFixture();
        try
        {
            // The uninterrupted run, as a child process and in this process. The child's first save and its end bound the
            // moments of the kills (most of a child's life before the first save is process start-up).
            string reference = fx.Ckpt("reference");
            var clock = Stopwatch.StartNew();
            double firstSave;
            using (var p = Start(Train(fx, reference)))
            {
                while (!Directory.Exists(reference + ".tmp") && !Directory.Exists(reference) && !p.HasExited) Thread.Sleep(5);
                firstSave = clock.Elapsed.TotalSeconds;
                p.WaitForExit();
                Assert.That(p.ExitCode, Is.Zero, "the uninterrupted child run");
            }
            double end = clock.Elapsed.TotalSeconds, from = 0.9 * firstSave;
            var (code, _, err) = CliTests.Run(Train(fx, fx.Ckpt("in-process")));
            Assert.That(code, Is.Zero, err);
            var expected = Weights(reference);
            Assert.That(Weights(fx.Ckpt("in-process")), Is.EqualTo(expected), "a child run and an in-process run agree");

            var rng = new Random(15);
            int loaded = 0, none = 0;
            for (int run = 0; run < Runs; run++)
            {
                string output = fx.Ckpt($"killed-{run}");
                using (var p = Start(Train(fx, output)))
                {
                    p.WaitForExit((int)((from + rng.NextDouble() * (end - from)) * 1000));
                    if (!p.HasExited) p.Kill();   // SIGKILL
                    p.WaitForExit();
                }
                if (Checkpoint.Exists(output))
                {
                    // eval loads whatever the kill left: a complete checkpoint.
                    (code, var json, err) = CliTests.Run("eval", "--model", output, "--backend", "cpu", "--json", "--no-baselines");
                    Assert.That(code, Is.Zero, $"run {run}: eval after the kill: {err}");
                    Assert.That(JsonNode.Parse(json)!["model"]!["auc"]!.GetValue<double>(), Is.InRange(0.0, 1.0));
                    loaded++;
                }
                else none++;
                (code, _, err) = CliTests.Run([.. Train(fx, output), "--resume"]);
                Assert.That(code, Is.Zero, $"run {run}: --resume: {err}");
                Assert.That(Weights(output), Is.EqualTo(expected), $"run {run}: the resumed run ends with the uninterrupted run's weights");
                Directory.Delete(output, recursive: true);
            }
            TestContext.Out.WriteLine($"{Runs} kills between {from:0.00} s and {end:0.00} s (first save at {firstSave:0.00} s): " +
                                      $"{loaded} left a checkpoint (all loaded by eval), {none} struck before the first save");
            Assert.That(loaded, Is.GreaterThan(0), "some kills landed after the first save");
        }
        finally { CpuParallel.Threads = threads; }
    }
}
