// The command line as a hostile user meets it (issue 15): option names, output paths checked first, refused resumes,
// one-line errors, pure JSON on stdout, flags named in their own words, honest numbers; and a sweep over every verb.
using FastRec.Tests.Training;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using FastRec.Cli;
using FastRec.Cli.Commands;
using FastRec.Engine.Data;
using FastRec.Engine.Metrics;
using FastRec.Engine.Training;
using FastRec.Kernels.Cpu;

namespace FastRec.Tests.Cli;

[NonParallelizable]
public class CliReliabilityTests
{
    private TrainFixture _fx = null!;
    private string _ckpt = "";
    private string _file = "";   // a regular file, to put where a directory is expected

    private static (int Code, string Out, string Err) Run(params string[] args) => CliTests.Run(args);

    private string[] TrainArgs(string output) =>
    [
        "train", "--interactions", _fx.Interactions, "--items", _fx.Items, "--model", _fx.ModelDir, "--out", output, "--backend", "cpu",
        "--epochs", "1", "--batch-size", "16", "--max-length", "24", "--context-size", "3", "--freeze", "top-k", "--top-k", "1", "--head-hidden", "8",
    ];

    [OneTimeSetUp]
    public void Setup()
    {
        _fx = new TrainFixture();
        _ckpt = _fx.Ckpt("main");
        var (code, output, err) = Run(TrainArgs(_ckpt));
        Assert.That(code, Is.Zero, err + output);
        _file = Path.Combine(_fx.Root, "a-file");
        File.WriteAllText(_file, "not a directory");
    }

    [OneTimeTearDown] public void TearDown() => _fx.Dispose();

    /// <summary>An expected failure: exit 2, exactly one line on stderr, "error: ..." naming <paramref name="named"/>, no stack trace.</summary>
    private static void OneLineError((int Code, string Out, string Err) r, string named)
    {
        Assert.That(r.Code, Is.EqualTo(2), r.Err + r.Out);
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.That(lines, Has.Length.EqualTo(1), "one line on stderr:\n" + r.Err);
        Assert.That(lines[0], Does.StartWith("error: ").And.Contain(named));
        Assert.That(r.Err, Does.Not.Contain("   at "), "a message, not a stack trace");
    }

    // ---- 1. eval --split is the evaluated split; the data re-split is --split-kind and refused unless asked ----

    [Test]
    public void NoVerbRegistersAnOptionNameTwice()
    {
        foreach (var verb in CliApp.Root().Subcommands)
        {
            var names = verb.Options.SelectMany(o => o.Aliases.Prepend(o.Name)).ToList();
            var twice = names.GroupBy(n => n).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
            Assert.That(twice, Is.Empty, $"fastrec {verb.Name} registers {string.Join(", ", twice)} twice");
        }
    }

    [Test]
    public void EvalSplitChoosesTheEvaluatedSplit()
    {
        var data = _fx.Load(new ExampleOptions { ContextSize = 3 });
        foreach (var (split, count) in new[] { ("validation", data.Validation.Count), ("train", data.Train.Count), ("test", data.Test.Count) })
        {
            var (code, output, err) = Run("eval", "--model", _ckpt, "--split", split, "--backend", "cpu", "--json", "--no-baselines");
            Assert.That(code, Is.Zero, err);
            var json = JsonNode.Parse(output)!;
            Assert.That(json["split"]!.GetValue<string>(), Is.EqualTo(split));
            Assert.That(json["examples"]!.GetValue<int>(), Is.EqualTo(count), split);
        }
    }

    [Test]
    public void EvalRefusesAReSplitUnlessAsked()
    {
        var refused = Run("eval", "--model", _ckpt, "--split-kind", "random", "--backend", "cpu");
        OneLineError(refused, "--split-kind is Random but the checkpoint");
        Assert.That(refused.Err, Does.Contain("--allow-resplit"));
        OneLineError(Run("eval", "--model", _ckpt, "--train-fraction", "0.5", "--backend", "cpu"), "--train-fraction is 0.5");

        var (code, output, err) = Run("eval", "--model", _ckpt, "--split-kind", "random", "--allow-resplit", "--backend", "cpu", "--json");
        Assert.That(code, Is.Zero, err);
        Assert.That(err, Does.Contain("warning: re-split"));
        Assert.That(JsonNode.Parse(output)!["examples"]!.GetValue<int>(), Is.GreaterThan(0));
        OneLineError(Run("eval", "--model", _ckpt, "--split", "random", "--backend", "cpu"), "how the data is split is --split-kind");
        // A random split's seed is part of the split; a temporal one's is not.
        OneLineError(Run("eval", "--model", _ckpt, "--split-kind", "random", "--data-seed", "7", "--backend", "cpu"), "--data-seed");
    }

    // ---- 3. --out and --report are checked before any work; a failed final save says where the weights are ----

    [TestCase("file-at-out")]
    [TestCase("parent-is-a-file")]
    [TestCase("report-is-a-file")]
    [TestCase("foreign-directory")]
    public void OutputsAreCheckedBeforeAnyWork(string kind)
    {
        string output = _fx.Ckpt("early-" + kind);
        var args = TrainArgs(output).ToList();
        string named = "--out";
        switch (kind)
        {
            case "file-at-out": File.WriteAllText(output, "x"); break;
            case "parent-is-a-file": output = Path.Combine(_file, "sub", "ckpt"); args[args.IndexOf("--out") + 1] = output; break;
            case "report-is-a-file": args.AddRange(["--report", _file]); named = "--report"; break;
            case "foreign-directory": Directory.CreateDirectory(output); File.WriteAllText(Path.Combine(output, "notes.txt"), "mine"); break;
        }
        var r = Run([.. args]);
        OneLineError(r, named);
        Assert.That(r.Out, Is.Empty, "refused before training (no metrics, no progress)");
        Assert.That(Directory.Exists(output + ".tmp"), Is.False);
        if (kind == "foreign-directory") Assert.That(File.ReadAllText(Path.Combine(output, "notes.txt")), Is.EqualTo("mine"), "the user's files are untouched");
    }

    [Test]
    public void FailedFinalSaveStillPrintsTheMetricsAndSavesTheWeightsElsewhere()
    {
        string output = _fx.Ckpt("blocked");
        File.WriteAllText(output + ".tmp", "a file where the save writes its temp directory");
        var (code, stdout, err) = Run(TrainArgs(output));
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(stdout, Does.Contain("popularity").And.Contain("AUC lift"), "the metrics are printed");
        var m = Regex.Match(err, @"the checkpoint was saved to (\S+) instead");
        Assert.That(m.Success, Is.True, err);
        Assert.That(err, Does.Contain("--out " + output));
        try
        {
            using var b = new CpuSimdBackend();
            using var rec = Checkpoint.Load(m.Groups[1].Value, b).Recommender;
            Assert.That(rec.Model.Bert.NumHiddenLayers, Is.EqualTo(2));
        }
        finally { Directory.Delete(m.Groups[1].Value, recursive: true); }
    }

    [Test]
    public void FailedSwapNamesTheCompleteTemporaryCheckpoint()
    {
        string output = _fx.Ckpt("swap");
        CopyDirectory(_ckpt, output);
        File.WriteAllText(output + ".bak", "a file where the save moves the old checkpoint");
        var (code, stdout, err) = Run([.. TrainArgs(output), "--overwrite", "--json"]);
        Assert.That(code, Is.EqualTo(2), err);
        var doc = JsonNode.Parse(stdout)!;
        Assert.That(doc["test"]!["auc"]!.GetValue<double>(), Is.InRange(0, 1), "--json still carries the metrics");
        Assert.That(doc["error"]!.GetValue<string>(), Does.Contain($"the complete checkpoint is in {output}.tmp"));
        using var b = new CpuSimdBackend();
        using var rec = Checkpoint.Load(output + ".tmp", b).Recommender;
        Assert.That(rec.Model.Bert.NumHiddenLayers, Is.EqualTo(2));
    }

    // ---- 5. --resume compares the whole data schema; an existing checkpoint needs --resume or --overwrite ----

    [Test]
    public void ResumeRefusesChangedDataOptionsByFlag()
    {
        string output = _fx.Ckpt("threshold");
        var args = TrainArgs(output).Concat(["--rating-col", "label", "--positive-threshold", "1"]).ToArray();
        var first = Run(args);
        Assert.That(first.Code, Is.Zero, first.Err);
        string[] changed = [.. TrainArgs(output).Concat(["--rating-col", "label", "--positive-threshold", "0.5", "--resume"])];
        var r = Run(changed);
        OneLineError(r, "--positive-threshold is 0.5 but the checkpoint");
        Assert.That(r.Err, Does.Contain("has 1"));
        OneLineError(Run([.. TrainArgs(output).Concat(["--rating-col", "label", "--positive-threshold", "1", "--negatives", "1", "--resume"])]), "--negatives is 1 but the checkpoint");
        // The same options resume (the run finished: nothing to do).
        var same = Run([.. args, "--resume"]);
        Assert.That(same.Code, Is.Zero, same.Err);
        Assert.That(same.Out + same.Err, Does.Contain("already finished"));
    }

    [Test]
    public void AnExistingCheckpointNeedsResumeOrOverwrite()
    {
        string output = _fx.Ckpt("existing");
        Assert.That(Run(TrainArgs(output)).Code, Is.Zero);
        string info = Path.Combine(output, Checkpoint.InfoFile);
        var before = File.ReadAllBytes(info);
        var r = Run(TrainArgs(output));
        OneLineError(r, "--out " + output);
        Assert.That(r.Err, Does.Contain("--resume").And.Contain("--overwrite"));
        Assert.That(File.ReadAllBytes(info), Is.EqualTo(before), "the checkpoint is untouched");
        var again = Run([.. TrainArgs(output), "--overwrite", "--seed", "5"]);
        Assert.That(again.Code, Is.Zero, again.Err);
        Assert.That(File.ReadAllBytes(info), Is.Not.EqualTo(before));
    }

    // ---- 6. expected failures are one line naming the file, exit 2 ----

    [TestCase("train")]
    [TestCase("eval")]
    [TestCase("predict")]
    public void MalformedWeightsAreOneLineErrors(string verb)
    {
        string dir = Path.Combine(_fx.Root, "bad-weights-" + verb);
        CopyDirectory(verb == "train" ? _fx.ModelDir : _ckpt, dir);
        string weights = Path.Combine(dir, "model.safetensors");
        File.WriteAllBytes(weights, [.. BitConverter.GetBytes(1000UL), .. "{\"w\":"u8]);
        string[] args = verb switch
        {
            "train" => [.. TrainArgs(_fx.Ckpt("bw-out")).Select(a => a == _fx.ModelDir ? dir : a)],
            "eval" => ["eval", "--model", dir, "--backend", "cpu"],
            _ => ["predict", "--model", dir, "--interactions", _fx.Interactions, "--items", _fx.Items, "--out", Path.Combine(_fx.Root, "s.csv"), "--backend", "cpu"],
        };
        OneLineError(Run(args), weights);
    }

    [Test]
    public void CsvLineOverSixteenMebibytesIsAOneLineError()
    {
        string items = Path.Combine(_fx.Root, "huge-items.csv");
        using (var w = new StreamWriter(items)) { w.Write("item,title\ni0,"); w.Write(new string('x', 17 << 20)); w.Write('\n'); }
        try { OneLineError(Run([.. TrainArgs(_fx.Ckpt("huge")).Select(a => a == _fx.Items ? items : a)]), items); }
        finally { File.Delete(items); }
    }

    [Test]
    public void PermissionErrorsAreExpectedFailures()
    {
        int code = CliRun.Guard(() => throw new UnauthorizedAccessException("Access to the path '/data/x.csv' is denied."));
        Assert.That(code, Is.EqualTo(2));
        Assume.That(!OperatingSystem.IsWindows() && Environment.UserName != "root", "root reads a chmod 000 file; the Guard test above covers the class");
        if (OperatingSystem.IsWindows()) return;
        string locked = Path.Combine(_fx.Root, "locked.csv");
        File.Copy(_fx.Interactions, locked);
        File.SetUnixFileMode(locked, UnixFileMode.None);
        OneLineError(Run("predict", "--model", _ckpt, "--interactions", locked, "--items", _fx.Items, "--out", Path.Combine(_fx.Root, "l.csv"), "--backend", "cpu"), locked);
    }

    // ---- 7. --json: stdout is exactly one JSON document ----

    [Test]
    public void JsonStdoutIsExactlyOneDocument()
    {
        var (code, output, err) = Run([.. TrainArgs(_fx.Ckpt("json")), "--json"]);
        Assert.That(code, Is.Zero, err);
        using (var doc = JsonDocument.Parse(output)) Assert.That(doc.RootElement.GetProperty("test").GetProperty("auc").GetDouble(), Is.InRange(0, 1));
        Assert.That(err, Does.Contain("wall time").And.Contain("popularity"), "the table and logs go to stderr");

        (code, output, err) = Run("eval", "--model", _ckpt, "--backend", "cpu", "--json");
        Assert.That(code, Is.Zero, err);
        using (JsonDocument.Parse(output)) { }

        (code, output, err) = Run("encode", "--model", _fx.ModelDir, "--text", "good film", "--backend", "cpu", "--json");
        Assert.That(code, Is.Zero, err);
        using (var doc = JsonDocument.Parse(output)) Assert.That(doc.RootElement.GetProperty("hidden_size").GetInt32(), Is.EqualTo(16));
    }

    // ---- 8. errors in the flags' own words ----

    [Test]
    public void EncodeAndConvertFailuresExitWithTwo()
    {
        OneLineError(Run("encode", "--model", Path.Combine(_fx.Root, "nope"), "--text", "x"), "nope");
        OneLineError(Run("convert", "--hf", Path.Combine(_fx.Root, "nope"), "--out", Path.Combine(_fx.Root, "conv")), "nope");
    }

    // ---- 9. honest numbers ----

    [Test]
    public void GaucBelowTwentyUsersIsNotAvailable()
    {
        Assert.That(new GaucResult(1.0, 1, 0, 4).Format(), Is.EqualTo("n/a (1 user)"));
        Assert.That(new GaucResult(0.25, 19, 3, 40).Format(), Is.EqualTo("n/a (19 users)"));
        Assert.That(new GaucResult(0.61234, 2896, 10, 9000).Format(), Is.EqualTo("0.6123 (2,896 users)"));
        Assert.That(new GaucResult(double.NaN, 0, 5, 0).Format(), Is.EqualTo("n/a (0 users)"));

        var (code, output, err) = Run("eval", "--model", _ckpt, "--backend", "cpu");   // 12 users in the fixture
        Assert.That(code, Is.Zero, err);
        Assert.That(output, Does.Contain("n/a ("));
        (code, output, err) = Run("eval", "--model", _ckpt, "--backend", "cpu", "--json");
        var model = JsonNode.Parse(output)!["model"]!;
        Assert.That(model["gauc"], Is.Null);
        Assert.That(model["gauc_users"]!.GetValue<int>(), Is.InRange(1, GaucResult.MinUsers - 1));
    }

    [Test]
    public void EvalDefaultsToTheCheckpointsOwnDataFilesStoredRelatively()
    {
        var info = JsonNode.Parse(File.ReadAllText(Path.Combine(_ckpt, Checkpoint.InfoFile)))!;
        Assert.That(info["data"]!["interactions_path"]!.GetValue<string>(), Is.EqualTo(Path.Combine("..", "interactions.csv")));
        Assert.That(info["data"]!["items_path"]!.GetValue<string>(), Is.EqualTo(Path.Combine("..", "items.csv")));
        var implicitFiles = Run("eval", "--model", _ckpt, "--backend", "cpu", "--json");
        var explicitFiles = Run("eval", "--model", _ckpt, "--backend", "cpu", "--json", "--interactions", _fx.Interactions, "--items", _fx.Items);
        Assert.That(implicitFiles.Code, Is.Zero, implicitFiles.Err);
        Assert.That(implicitFiles.Out, Is.EqualTo(explicitFiles.Out));

        // Moved with its data, the checkpoint still finds it; without it, the error names the file and the way out.
        string moved = Path.Combine(_fx.Root, "moved");
        CopyDirectory(_ckpt, Path.Combine(moved, "ckpt"));
        File.Copy(_fx.Interactions, Path.Combine(moved, "interactions.csv"));
        File.Copy(_fx.Items, Path.Combine(moved, "items.csv"));
        Assert.That(Run("eval", "--model", Path.Combine(moved, "ckpt"), "--backend", "cpu", "--json").Out, Is.EqualTo(implicitFiles.Out));
        File.Delete(Path.Combine(moved, "items.csv"));
        OneLineError(Run("eval", "--model", Path.Combine(moved, "ckpt"), "--backend", "cpu"), Path.Combine(moved, "items.csv"));
    }

    [Test]
    public void InvalidUtf8IsAWarningWithTheCount()
    {
        string items = Path.Combine(_fx.Root, "latin1-items.csv");
        var bytes = File.ReadAllBytes(_fx.Items).ToList();
        int at = bytes.IndexOf((byte)'g');              // first "good": make it "g\xE9od" as Latin-1 would
        bytes[at + 1] = 0xE9;
        File.WriteAllBytes(items, [.. bytes]);
        var (code, _, err) = Run("eval", "--model", _ckpt, "--backend", "cpu", "--interactions", _fx.Interactions, "--items", items, "--no-baselines");
        Assert.That(code, Is.Zero, err);
        Assert.That(err, Does.Contain($"warning: {items}: 1 rows hold bytes that are not valid UTF-8").And.Contain("line 2"));
    }

    // ---- the sweep: every verb x {bad file, bad flag, unknown flag, unwritable out} x {text, --json} ----

    private static readonly string[] JsonVerbs = ["train", "eval", "encode", "distill", "cotrain", "study", "tower", "recommend"];

    /// <summary>(verb, case, arguments, what the one error line names); built against the fixture at run time.</summary>
    private IEnumerable<(string Verb, string Case, string[] Args, string Named)> Sweep()
    {
        string missing = Path.Combine(_fx.Root, "missing.csv"), missingDir = Path.Combine(_fx.Root, "missing-dir");
        string blocked = Path.Combine(_file, "sub", "out");
        string[] train = ["train", "--interactions", _fx.Interactions, "--items", _fx.Items, "--model", _fx.ModelDir, "--out", _fx.Ckpt("sweep-train"), "--backend", "cpu"];
        string[] eval = ["eval", "--model", _ckpt, "--backend", "cpu"];
        string[] predict = ["predict", "--model", _ckpt, "--interactions", _fx.Interactions, "--items", _fx.Items, "--out", Path.Combine(_fx.Root, "sweep.csv"), "--backend", "cpu"];
        string[] encode = ["encode", "--model", _fx.ModelDir, "--text", "good film", "--backend", "cpu"];
        string[] distill = ["distill", "--teacher", _ckpt, "--out", _fx.Ckpt("sweep-student"), "--backend", "cpu"];
        string[] cotrain = ["cotrain", "--model", _fx.ModelDir, "--out", _fx.Ckpt("sweep-a"), "--out-b", _fx.Ckpt("sweep-b"), "--interactions", _fx.Interactions, "--items", _fx.Items, "--backend", "cpu"];
        string[] demo = ["demo", "--model", _fx.ModelDir, "--out", Path.Combine(_fx.Root, "sweep-demo"), "--backend", "cpu"];
        string[] convert = ["convert", "--hf", _fx.ModelDir, "--out", Path.Combine(_fx.Root, "sweep-conv")];
        string[] study = ["study", "transfer", "--interactions", _fx.Interactions, "--items", _fx.Items, "--variants", "e", "--out", Path.Combine(_fx.Root, "sweep-study"), "--backend", "cpu"];
        string[] export = ["export", "--model", _ckpt, "--onnx", Path.Combine(_fx.Root, "sweep.onnx")];
        string[] cold = ["study", "cold-items", "--interactions", _fx.Interactions, "--items", _fx.Items, "--model", _fx.ModelDir, "--out", Path.Combine(_fx.Root, "sweep-cold"), "--backend", "cpu"];
        string[] distillItems = ["study", "distill-items", "--interactions", _fx.Interactions, "--items", _fx.Items, "--model", _fx.ModelDir, "--layers", "1", "--out", Path.Combine(_fx.Root, "sweep-distil"), "--backend", "cpu"];
        string[] tower = ["tower", "--interactions", _fx.Interactions, "--items", _fx.Items, "--encoder", _fx.ModelDir, "--out", Path.Combine(_fx.Root, "sweep.frts"), "--cache", "none", "--backend", "cpu"];
        string[] recommend = ["recommend", "--model", Path.Combine(_fx.Root, "missing.frts"), "--history", "i1,i2:0"];
        static string[] Set(string[] a, string flag, string value)
        {
            int i = Array.IndexOf(a, flag);
            return i < 0 ? [.. a, flag, value] : [.. a[..(i + 1)], value, .. a[(i + 2)..]];
        }

        yield return ("train", "bad file", Set(train, "--interactions", missing), missing);
        yield return ("train", "bad flag", Set(train, "--epochs", "0"), "--epochs");
        yield return ("train", "unwritable out", Set(train, "--out", blocked), "--out");
        yield return ("train", "unwritable log", Set(train, "--tensorboard", blocked), "--tensorboard");
        yield return ("eval", "bad file", Set(eval, "--model", missingDir), missingDir);
        yield return ("eval", "bad flag", Set(eval, "--split", "sideways"), "--split");
        yield return ("predict", "bad file", Set(predict, "--interactions", missing), missing);
        yield return ("predict", "bad flag", Set(predict, "--batch-size", "0"), "--batch-size");
        yield return ("predict", "unwritable out", Set(predict, "--out", Path.Combine(blocked, "s.csv")), "--out");
        yield return ("encode", "bad file", Set(encode, "--model", missingDir), missingDir);
        yield return ("encode", "bad flag", Set(encode, "--backend", "tpu"), "--backend");
        yield return ("distill", "bad file", Set(distill, "--teacher", missingDir), missingDir);
        yield return ("distill", "bad flag", Set(distill, "--alpha", "2"), "--alpha");
        yield return ("distill", "unwritable out", Set(distill, "--out", blocked), "--out");
        yield return ("cotrain", "bad file", Set(cotrain, "--interactions", missing), missing);
        yield return ("cotrain", "bad flag", Set(cotrain, "--temperature", "0"), "--temperature");
        yield return ("cotrain", "unwritable out", Set(cotrain, "--out-b", blocked), "--out-b");
        yield return ("demo", "bad file", Set(demo, "--model", missingDir), missingDir);
        yield return ("demo", "bad flag", Set(demo, "--epochs", "0"), "--epochs");
        yield return ("demo", "unwritable out", Set(demo, "--out", blocked), "--out");
        yield return ("convert", "bad file", Set(convert, "--hf", missingDir), missingDir);
        yield return ("convert", "bad flag", ["convert", "--package", "nope", "--out", Path.Combine(_fx.Root, "sweep-conv")], "--package");
        yield return ("convert", "unwritable out", Set(convert, "--out", blocked), "--out");
        yield return ("study", "bad file", Set(study, "--interactions", missing), missing);
        yield return ("study", "bad flag", Set(study, "--windows", "2"), "--windows");
        yield return ("study", "unwritable out", Set(study, "--out", blocked), "--out");
        yield return ("study", "bad file", Set(cold, "--model", missingDir), missingDir);
        yield return ("study", "bad flag", Set(cold, "--held-out", "1.5"), "--held-out");
        yield return ("study", "unwritable out", Set(cold, "--out", blocked), "--out");
        yield return ("study", "bad file", Set(distillItems, "--interactions", missing), missing);
        yield return ("study", "bad flag", Set(distillItems, "--layers", "2"), "--layers");
        yield return ("study", "bad flag", Set(distillItems, "--distill-epochs", "0"), "--distill-epochs");
        yield return ("study", "unwritable out", Set(distillItems, "--out", blocked), "--out");
        yield return ("tower", "bad file", Set(tower, "--encoder", missingDir), missingDir);
        yield return ("tower", "bad flag", Set(tower, "--epochs", "0"), "--epochs");
        yield return ("tower", "unwritable out", Set(tower, "--out", Path.Combine(blocked, "t.frts")), "--out");
        yield return ("recommend", "bad file", recommend, Path.Combine(_fx.Root, "missing.frts"));
        yield return ("recommend", "bad flag", Set(recommend, "--k", "0"), "--k");
        yield return ("recommend", "bad flag", Set(recommend, "--history", "i1:7"), "--history");
        yield return ("export", "bad file", Set(export, "--model", missingDir), missingDir);
        yield return ("export", "unwritable out", Set(export, "--onnx", Path.Combine(blocked, "m.onnx")), "--onnx");
        foreach (var a in new[] { train, eval, predict, encode, distill, cotrain, demo, convert, study, cold, export, tower, recommend })
            yield return (a[0], "unknown flag", [.. a, "--no-such-flag"], "--no-such-flag");
        foreach (var a in new[] { predict, demo, convert, export })
            yield return (a[0], "--json where it is not an option", [.. a, "--json"], "--json");
    }

    [Test]
    public void EveryVerbFailsOnOneLineNamingTheFlagOrFileAndKeepsJsonStdout()
    {
        var verbs = Sweep().Select(s => s.Verb).ToHashSet();
        Assert.That(verbs, Is.EquivalentTo(CliApp.Root().Subcommands.Select(c => c.Name).Where(n => n != "bench")),
            "every verb but bench (it runs a separate harness) is in the sweep");
        foreach (var (verb, kase, args, named) in Sweep())
        {
            bool jsonCapable = JsonVerbs.Contains(verb);
            foreach (bool json in jsonCapable ? new[] { false, true } : [kase.StartsWith("--json") ])
            {
                string[] a = json && jsonCapable ? [.. args, "--json"] : args;
                var r = Run(a);
                TestContext.Out.WriteLine($"{verb} / {kase}{(json ? " / --json" : "")}: {r.Err.Trim()}");
                Assert.Multiple(() =>
                {
                    OneLineError(r, named);
                    if (json)
                    {
                        var doc = JsonNode.Parse(r.Out) as JsonObject;
                        Assert.That(doc?["error"]?.GetValue<string>(), Does.Contain(named), $"{verb} / {kase}: stdout is one JSON document:\n{r.Out}");
                    }
                });
            }
        }
    }

    internal static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }
}
