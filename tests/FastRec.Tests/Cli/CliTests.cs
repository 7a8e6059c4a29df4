// The train/eval/predict verbs: unknown and bad options are clear errors; a tiny end-to-end run through the command line.
using FastRec.Tests.Training;
using System.CommandLine;
using System.Text.Json.Nodes;
using FastRec.Cli;
using FastRec.Engine.Model;

namespace FastRec.Tests.Cli;

[NonParallelizable]
public class CliTests
{
    private TrainFixture _fx = null!;

    [OneTimeSetUp] public void Setup() => _fx = new TrainFixture();
    [OneTimeTearDown] public void TearDown() => _fx.Dispose();

    /// <summary>Runs the command line as `fastrec` does (<see cref="CliApp.Run"/>); returns (exit code, stdout, stderr).</summary>
    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        var oldOut = Console.Out; var oldErr = Console.Error;
        var o = new StringWriter(); var e = new StringWriter();
        Console.SetOut(o); Console.SetError(e);
        try { return (CliApp.Run(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    [TestCase("train")]
    [TestCase("eval")]
    [TestCase("predict")]
    [TestCase("demo")]
    public void UnknownOptionsAreErrorsNamingTheOption(string verb)
    {
        var parse = CliApp.Root().Parse([verb, "--model", "m", "--out", "o", "--lerning-rate", "0.1"]);
        Assert.That(parse.Errors, Is.Not.Empty);
        Assert.That(string.Join("\n", parse.Errors.Select(x => x.Message)), Does.Contain("--lerning-rate"));
        var (code, _, err) = Run(verb, "--model", "m", "--out", "o", "--lerning-rate", "0.1");
        Assert.That(code, Is.Not.EqualTo(0));
        Assert.That(err, Does.Contain("--lerning-rate"));
    }

    [Test]
    public void MissingRequiredOptionIsNamed()
    {
        var parse = CliApp.Root().Parse(["train", "--model", "m"]);
        Assert.That(string.Join("\n", parse.Errors.Select(x => x.Message)), Does.Contain("--out"));
        parse = CliApp.Root().Parse(["predict", "--model", "m"]);
        Assert.That(string.Join("\n", parse.Errors.Select(x => x.Message)), Does.Contain("--out"));
    }

    [TestCase("--freeze", "sometimes", "--freeze")]
    [TestCase("--backend", "gpu9000", "--backend")]
    [TestCase("--split-kind", "sideways", "--split-kind")]
    [TestCase("--head-hidden", "4,x", "--head-hidden")]
    [TestCase("--head-input", "avg", "--head-input: 'avg' is not pooler, cls or mean")]
    [TestCase("--batch-size", "0", "--batch-size must be in [1, 65536], got 0")]
    [TestCase("--max-train", "-5", "--max-train must be >= 1, got -5")]
    [TestCase("--lr", "-1", "--lr must be finite and > 0")]
    [TestCase("--context-size", "0", "context size K")]
    [TestCase("--max-length", "2", "max length")]
    public void BadOptionValuesAreClearErrors(string option, string value, string named)
    {
        var args = new List<string> { "train", "--interactions", _fx.Interactions, "--items", _fx.Items, "--model", _fx.ModelDir, "--out", _fx.Ckpt("bad"),
            "--epochs", "1", "--backend", option == "--backend" ? value : "reference", "--max-length", option == "--max-length" ? value : "24" };
        if (option is not ("--backend" or "--max-length")) args.AddRange([option, value]);
        var (code, _, err) = Run([.. args]);
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.StartWith("error:").And.Contain(named));
    }

    [TestCase("mean", AdapterInput.Mean)]
    [TestCase("MEAN", AdapterInput.Mean)]
    [TestCase("cls", AdapterInput.Cls)]
    public void HeadInputParses(string value, AdapterInput expected)
    {
        var options = new FastRec.Cli.Commands.TrainerCliOptions();
        var cmd = new Command("train");
        options.AddTo(cmd);
        var parse = cmd.Parse(["--head-input", value]);
        Assert.That(parse.Errors, Is.Empty);
        Assert.That(options.Adapter(parse, new AdapterConfig(), 0).Input, Is.EqualTo(expected));
        Assert.That(options.Adapter(cmd.Parse([]), new AdapterConfig { Input = AdapterInput.Cls }, 0).Input, Is.EqualTo(AdapterInput.Cls), "default kept");
    }

    [TestCase("train")]
    [TestCase("eval")]
    [TestCase("encode")]
    public void CudaWithoutADeviceIsAClearMessage(string verb)
    {
        using (var probe = FastRec.Kernels.BackendFactory.Create("auto"))
            if (probe.Name.Contains("cuda")) Assert.Ignore("a CUDA device is present here: the no-device message cannot be shown");
        string[] args = verb == "encode"
            ? ["encode", "--model", _fx.ModelDir, "--text", "hello", "--backend", "cuda"]
            : [verb, "--interactions", _fx.Interactions, "--items", _fx.Items, "--model", verb == "eval" ? _fx.Ckpt("nocuda") : _fx.ModelDir,
               "--out", _fx.Ckpt("nocuda-out"), "--backend", "cuda"];
        if (verb == "eval") args = [.. args.Where((a, i) => a != "--out" && (i == 0 || args[i - 1] != "--out"))];
        var (code, _, err) = Run(args);
        Assert.That(code, Is.Not.EqualTo(0));
        Assert.That(err, Does.Contain("--backend cuda").And.Contain("no CUDA device found"));
        Assert.That(err, Does.Not.Contain("   at "), "a message, not a stack trace");
    }

    [Test]
    public void UnknownBackendListsTheChoices()
    {
        var (code, _, err) = Run("encode", "--model", _fx.ModelDir, "--text", "hello", "--backend", "tpu");
        Assert.That(code, Is.Not.EqualTo(0));
        Assert.That(err, Does.Contain("--backend").And.Contain("'tpu'").And.Contain("cuda"));
    }

    [Test]
    public void MissingColumnIsNamedWithTheColumnsPresent()
    {
        var (code, _, err) = Run("train", "--interactions", _fx.Interactions, "--items", _fx.Items, "--model", _fx.ModelDir,
            "--out", _fx.Ckpt("col"), "--user-col", "customer", "--backend", "reference");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("customer").And.Contain("user"));
    }

    [Test]
    public void TrainEvalPredictEndToEnd()
    {
        string ckpt = _fx.Ckpt("cli");
        var (code, output, err) = Run("train", "--interactions", _fx.Interactions, "--items", _fx.Items, "--model", _fx.ModelDir, "--out", ckpt,
            "--backend", "reference", "--epochs", "2", "--batch-size", "8", "--lr", "3e-3", "--max-length", "24", "--context-size", "3",
            "--freeze", "top-k", "--top-k", "1", "--head-hidden", "8", "--report", Path.Combine(_fx.Root, "report"));
        Assert.That(code, Is.EqualTo(0), err + output);
        Assert.That(output, Does.Contain("checkpoint:").And.Contain("popularity").And.Contain("user+item bias"));
        Assert.That(File.Exists(Path.Combine(ckpt, "fastrec.json")), Is.True);
        foreach (var f in new[] { "report.md", "loss.png", "auc.png", "roc.png", "calibration.png" })
            Assert.That(new FileInfo(Path.Combine(_fx.Root, "report", f)).Length, Is.GreaterThan(100), f);

        (code, output, err) = Run("eval", "--model", ckpt, "--interactions", _fx.Interactions, "--items", _fx.Items, "--backend", "reference", "--json");
        Assert.That(code, Is.EqualTo(0), err);
        var json = JsonNode.Parse(output)!;
        Assert.That(json["split"]!.GetValue<string>(), Is.EqualTo("test"));
        Assert.That(json["model"]!["auc"]!.GetValue<double>(), Is.InRange(0.0, 1.0));
        Assert.That(json["popularity"]!["auc"]!.GetValue<double>(), Is.InRange(0.0, 1.0));

        string scores = Path.Combine(_fx.Root, "scores.csv");
        (code, output, err) = Run("predict", "--model", ckpt, "--interactions", _fx.Interactions, "--items", _fx.Items, "--out", scores, "--backend", "reference");
        Assert.That(code, Is.EqualTo(0), err);
        var lines = File.ReadAllLines(scores);
        Assert.That(lines[0], Is.EqualTo("user,item,timestamp,label,score"));
        Assert.That(lines, Has.Length.EqualTo(File.ReadAllLines(_fx.Interactions).Length), "one score per interaction row");
        Assert.That(lines.Skip(1).Select(l => double.Parse(l.Split(',')[4], System.Globalization.CultureInfo.InvariantCulture)), Has.All.InRange(0.0, 1.0));
    }
}
