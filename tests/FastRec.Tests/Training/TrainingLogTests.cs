// Training logs: CRC-32C vectors, TFRecord framing by hand, event files read back record by record, JSON lines, the CLI flags.
using FastRec.Tests.Cli;
using System.Buffers.Binary;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using FastRec.Engine.Training;
using FastRec.Engine.Training.TensorBoardProto;
using Google.Protobuf;

namespace FastRec.Tests.Training;

/// <summary>Reads a TFRecord file record by record, checking both CRCs with a bit-by-bit CRC-32C (not the table under test).</summary>
internal static class EventFileReader
{
    private static uint BitwiseCrc32C(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        }
        return ~c;
    }

    private static uint Masked(ReadOnlySpan<byte> data)
    {
        uint c = BitwiseCrc32C(data);
        return unchecked(((c >> 15) | (c << 17)) + 0xA282EAD8u);
    }

    public static List<Event> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var events = new List<Event>();
        int o = 0;
        while (o < bytes.Length)
        {
            Assert.That(bytes.Length - o, Is.GreaterThanOrEqualTo(12), $"record {events.Count}: truncated header at byte {o}");
            ulong len = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(o));
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(o + 8)), Is.EqualTo(Masked(bytes.AsSpan(o, 8))), $"record {events.Count}: length CRC");
            Assert.That((ulong)(bytes.Length - o - 16), Is.GreaterThanOrEqualTo(len), $"record {events.Count}: truncated data");
            var data = bytes.AsSpan(o + 12, (int)len);
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(o + 12 + (int)len)), Is.EqualTo(Masked(data)), $"record {events.Count}: data CRC");
            events.Add(Event.Parser.ParseFrom(data));
            o += 16 + (int)len;
        }
        return events;
    }

    /// <summary>(step, tag) → value of every scalar in <paramref name="events"/>.</summary>
    public static Dictionary<(long Step, string Tag), float> Scalars(IEnumerable<Event> events)
    {
        var d = new Dictionary<(long, string), float>();
        foreach (var e in events.Where(e => e.WhatCase == Event.WhatOneofCase.Summary))
            foreach (var v in e.Summary.Value)
            {
                Assert.That(v.ValueCase, Is.EqualTo(Summary.Types.Value.ValueOneofCase.SimpleValue), v.Tag);
                Assert.That(d.TryAdd((e.Step, v.Tag), v.SimpleValue), Is.True, $"{v.Tag} twice at step {e.Step}");
            }
        return d;
    }
}

public class TrainingLogTests
{
    private string _dir = "";

    [SetUp] public void Setup() => _dir = Directory.CreateTempSubdirectory("fastrec-logs-").FullName;
    [TearDown] public void TearDown() { try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } }

    [Test]
    public void Crc32CMatchesTheStandardCheckValues()
    {
        Assert.That(Crc32C.Compute("123456789"u8), Is.EqualTo(0xE3069283u), "the CRC-32C check value");
        Assert.That(Crc32C.Compute([]), Is.EqualTo(0u));
        // RFC 3720 (iSCSI) B.4 vectors.
        Assert.That(Crc32C.Compute(new byte[32]), Is.EqualTo(0x8A9136AAu));
        Assert.That(Crc32C.Compute(Enumerable.Repeat((byte)0xFF, 32).ToArray()), Is.EqualTo(0x62A8AB43u));
        Assert.That(Crc32C.Compute(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray()), Is.EqualTo(0x46DD794Eu));
    }

    [Test]
    public void MaskRotatesRightBy15AndAddsTheConstant()
    {
        Assert.That(Crc32C.Mask(0), Is.EqualTo(0xA282EAD8u));
        // 0xE3069283 rotated right by 15 = 0x2507C60D, + 0xA282EAD8 (mod 2^32) = 0xC78AB0E5 (worked out by hand and in Python).
        Assert.That(Crc32C.Mask(0xE3069283u), Is.EqualTo(0xC78AB0E5u));
    }

    [Test]
    public void RecordFramingMatchesHandBuiltBytes()
    {
        // Event { wall_time = 1.5, file_version = "brain.Event:2" }: 0x09 + double 1.5 LE, 0x1A 0x0D + 13 bytes = 24 bytes.
        var data = new Event { WallTime = 1.5, FileVersion = "brain.Event:2" }.ToByteArray();
        Assert.That(Convert.ToHexString(data).ToLowerInvariant(), Is.EqualTo("09000000000000f83f1a0d627261696e2e4576656e743a32"));
        var record = TensorBoardWriter.Record(data);
        Assert.That(Convert.ToHexString(record).ToLowerInvariant(),
            Is.EqualTo("1800000000000000" + "a37f4b22" + "09000000000000f83f1a0d627261696e2e4576656e743a32" + "2a28646c"));
    }

    [Test]
    public void EventFileReadsBackRecordByRecord()
    {
        string path;
        using (var w = new TensorBoardWriter(Path.Combine(_dir, "tb")))
        {
            path = w.FilePath;
            w.Scalars(1, [("train/loss", 0.6931), ("train/lr", 5e-5)]);
            w.Scalar("val/auc", 0.75, 2);
            w.Scalar("train/loss", double.NaN, 3);
        }
        Assert.That(Path.GetDirectoryName(path), Is.EqualTo(Path.Combine(_dir, "tb")));
        Assert.That(Path.GetFileName(path), Does.Match(@"^events\.out\.tfevents\.\d{10}\.[A-Za-z0-9_-]+\.\d+$"));
        var events = EventFileReader.Read(path);
        Assert.That(events, Has.Count.EqualTo(4));
        Assert.That(events[0].WhatCase, Is.EqualTo(Event.WhatOneofCase.FileVersion));
        Assert.That(events[0].FileVersion, Is.EqualTo("brain.Event:2"));
        double now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        Assert.That(events.Select(e => e.WallTime), Has.All.InRange(now - 600, now + 1));
        Assert.That(events[1].Step, Is.EqualTo(1));
        Assert.That(events[1].Summary.Value.Select(v => v.Tag), Is.EqualTo(new[] { "train/loss", "train/lr" }));
        Assert.That(events[1].Summary.Value.Select(v => v.SimpleValue), Is.EqualTo(new[] { 0.6931f, 5e-5f }));
        Assert.That(events[2].Step, Is.EqualTo(2));
        Assert.That(events[2].Summary.Value.Single().SimpleValue, Is.EqualTo(0.75f));
        Assert.That(float.IsNaN(events[3].Summary.Value.Single().SimpleValue), Is.True, "NaN is written as NaN");
    }

    [Test]
    public void TwoWritersInOneDirectoryGetTwoFiles()
    {
        using var a = new TensorBoardWriter(_dir);
        using var b = new TensorBoardWriter(_dir);
        Assert.That(b.FilePath, Is.Not.EqualTo(a.FilePath));
        Assert.That(Path.GetFileName(b.FilePath), Does.StartWith(TensorBoardWriter.FilePrefix));
    }

    [Test]
    public void AnUnwritableLogDirectoryFailsAtOnceNamingIt()
    {
        string file = Path.Combine(_dir, "a-file");
        File.WriteAllText(file, "x");
        string dir = Path.Combine(file, "tb");
        var e = TrainAssert.Throws<IOException>(() => new TensorBoardWriter(dir), dir, "TensorBoard");
        Assert.That(e.Message, Does.Contain("cannot write"));
        TrainAssert.Throws<IOException>(() => new TrainingLog(Path.Combine(file, "log.jsonl"), null), Path.Combine(file, "log.jsonl"), "JSON-lines");
        TrainAssert.Throws<IOException>(() => new TrainingLog(null, dir), dir);
    }

    private static TrainProgress Step(int step, double loss, double epoch) => new()
    {
        Phase = TrainPhase.Training, Done = step, Total = 3, StepLoss = loss, Loss = 9, Epoch = epoch, LearningRate = 1e-3 * step, ExamplesPerSecond = 100 + step,
    };

    [Test]
    public void JsonLinesHoldOneLinePerStepWithValidationMetricsOnEvaluatedSteps()
    {
        string jsonl = Path.Combine(_dir, "sub", "log.jsonl"), tb = Path.Combine(_dir, "tb");
        string events;
        using (var log = new TrainingLog(jsonl, tb))
        {
            events = log.EventFile!;
            var seen = new List<TrainPhase>();
            var progress = log.Around(new Progress(seen));
            progress.Report(new TrainProgress { Phase = TrainPhase.Encoding, Done = 0, Total = 10 });
            progress.Report(Step(1, 0.7, 0.25));
            progress.Report(Step(2, 0.6, 0.5));
            progress.Report(new TrainProgress { Phase = TrainPhase.Evaluated, Done = 2, Total = 3, Evaluation = new EvalPoint(2, 0.5, 0.65, 0.62, 0.75, 2e-3, 1.0) });
            progress.Report(new TrainProgress { Phase = TrainPhase.Message, Message = "hello" });
            progress.Report(Step(3, 0.5, 0.75));
            progress.Report(new TrainProgress { Phase = TrainPhase.Evaluated, Done = 3, Total = 3, Evaluation = new EvalPoint(3, 0.75, 0.5, 0.61, double.NaN, 3e-3, 2.0) });
            log.Final(3, 0.75, [("test_auc", 0.8), ("test_gauc", double.NaN)]);
            Assert.That(seen, Is.EqualTo(new[] { TrainPhase.Encoding, TrainPhase.Training, TrainPhase.Training, TrainPhase.Evaluated, TrainPhase.Message, TrainPhase.Training, TrainPhase.Evaluated }),
                "every report reaches the inner progress");
        }
        var lines = File.ReadAllLines(jsonl).Select(l => JsonNode.Parse(l)!.AsObject()).ToArray();
        Assert.That(lines, Has.Length.EqualTo(4));
        Assert.That(lines[0]["step"]!.GetValue<long>(), Is.EqualTo(1));
        Assert.That(lines[0]["epoch"]!.GetValue<double>(), Is.EqualTo(0.25));
        Assert.That(lines[0]["loss"]!.GetValue<double>(), Is.EqualTo(0.7), "the step's own loss, not the running mean");
        Assert.That(lines[0]["lr"]!.GetValue<double>(), Is.EqualTo(1e-3));
        Assert.That(lines[0]["examples_per_second"]!.GetValue<double>(), Is.EqualTo(101));
        Assert.That(lines[0].ContainsKey("val_auc"), Is.False);
        Assert.That(lines[1]["step"]!.GetValue<long>(), Is.EqualTo(2));
        Assert.That(lines[1]["loss"]!.GetValue<double>(), Is.EqualTo(0.6));
        Assert.That(lines[1]["val_auc"]!.GetValue<double>(), Is.EqualTo(0.75));
        Assert.That(lines[1]["val_loss"]!.GetValue<double>(), Is.EqualTo(0.62));
        Assert.That(lines[1]["train_loss_mean"]!.GetValue<double>(), Is.EqualTo(0.65));
        Assert.That(lines[2]["step"]!.GetValue<long>(), Is.EqualTo(3));
        Assert.That(lines[2].ContainsKey("val_auc") && lines[2]["val_auc"] is null, Is.True, "an undefined AUC is null, not NaN");
        Assert.That(lines[3]["test_auc"]!.GetValue<double>(), Is.EqualTo(0.8));
        Assert.That(lines[3]["test_gauc"], Is.Null);
        Assert.That(lines[3]["step"]!.GetValue<long>(), Is.EqualTo(3));
        Assert.That(lines.Select(l => l["wall_time"]!.GetValue<double>()), Has.All.GreaterThan(1.7e9));

        var s = EventFileReader.Scalars(EventFileReader.Read(events));
        Assert.That(s[(1, "train/loss")], Is.EqualTo(0.7f));
        Assert.That(s[(3, "train/loss")], Is.EqualTo(0.5f));
        Assert.That(s[(2, "train/lr")], Is.EqualTo(2e-3f));
        Assert.That(s[(2, "train/epoch")], Is.EqualTo(0.5f));
        Assert.That(s[(2, "val/auc")], Is.EqualTo(0.75f));
        Assert.That(s[(2, "val/loss")], Is.EqualTo(0.62f));
        Assert.That(s[(2, "train/loss_mean")], Is.EqualTo(0.65f));
        Assert.That(s[(3, "test/auc")], Is.EqualTo(0.8f));
        Assert.That(s.Keys.Where(k => k.Tag == "val/auc").Select(k => k.Step), Is.EqualTo(new long[] { 2, 3 }));
        Assert.That(s.Keys.Count(k => k.Tag == "train/loss"), Is.EqualTo(3));
    }

    [Test]
    public void AppendKeepsTheEarlierLinesAndReplaceDropsThem()
    {
        string jsonl = Path.Combine(_dir, "log.jsonl");
        using (var log = new TrainingLog(jsonl, null)) log.Report(Step(1, 0.7, 0.25));
        using (var log = new TrainingLog(jsonl, null, append: true)) log.Report(Step(2, 0.6, 0.5));
        Assert.That(File.ReadAllLines(jsonl).Select(l => JsonNode.Parse(l)!["step"]!.GetValue<long>()), Is.EqualTo(new long[] { 1, 2 }));
        using (var log = new TrainingLog(jsonl, null)) log.Report(Step(3, 0.5, 0.75));
        Assert.That(File.ReadAllLines(jsonl).Select(l => JsonNode.Parse(l)!["step"]!.GetValue<long>()), Is.EqualTo(new long[] { 3 }));
    }

    [Test]
    public void FinalRefusesReservedNames()
    {
        using var log = new TrainingLog(Path.Combine(_dir, "log.jsonl"), null);
        TrainAssert.Throws<ArgumentException>(() => log.Final(1, 1, [("step", 1.0)]), "'step'", "reserved");
    }

    private sealed class Progress(List<TrainPhase> seen) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => seen.Add(value.Phase);
    }
}

/// <summary>The logs of a real training run: every step's loss as the trainer recorded it, every evaluation.</summary>
public class TrainingLogRunTests
{
    [Test]
    public void ARealRunLogsEveryStepAndEvaluation()
    {
        using var fx = new TrainFixture();
        var data = fx.Load();
        using var backend = TrainFixture.Backend("cpu");
        using var rec = fx.NewRecommender(backend);
        var options = new TrainerOptions { Epochs = 2, BatchSize = 8, LearningRate = 1e-3f, Seed = 3, EvalEverySteps = 5 };
        string jsonl = Path.Combine(fx.Root, "log.jsonl"), tb = Path.Combine(fx.Root, "tb");
        TrainResult result;
        string events;
        using (var log = new TrainingLog(jsonl, tb))
        {
            events = log.EventFile!;
            result = new Trainer(rec, options).Fit(data.Train, data.Validation, log);
        }
        var state = result.State;
        int spe = (data.Train.Count + 7) / 8;
        Assert.That(state.Step, Is.EqualTo(2 * spe));
        var lines = File.ReadAllLines(jsonl).Select(l => JsonNode.Parse(l)!.AsObject()).ToArray();
        Assert.That(lines, Has.Length.EqualTo(state.Step));
        for (int i = 0; i < lines.Length; i++)
        {
            Assert.That(lines[i]["step"]!.GetValue<long>(), Is.EqualTo(i + 1));
            Assert.That((float)lines[i]["loss"]!.GetValue<double>(), Is.EqualTo(state.StepLosses[i]), $"step {i + 1}");
            Assert.That(lines[i]["epoch"]!.GetValue<double>(), Is.EqualTo((double)(i + 1) / spe).Within(1e-12));
        }
        Assert.That(state.Evaluations, Has.Count.GreaterThanOrEqualTo(2));
        foreach (var e in state.Evaluations)
        {
            var line = lines[e.Step - 1];
            Assert.That(line["val_auc"]!.GetValue<double>(), Is.EqualTo(e.ValidationAuc), $"step {e.Step}");
            Assert.That(line["val_loss"]!.GetValue<double>(), Is.EqualTo(e.ValidationLoss));
        }
        Assert.That(lines.Count(l => l.ContainsKey("val_auc")), Is.EqualTo(state.Evaluations.Count));

        var s = EventFileReader.Scalars(EventFileReader.Read(events));
        for (int i = 0; i < state.Step; i++) Assert.That(s[(i + 1, "train/loss")], Is.EqualTo(state.StepLosses[i]));
        foreach (var e in state.Evaluations) Assert.That(s[(e.Step, "val/auc")], Is.EqualTo((float)e.ValidationAuc));
    }
}

/// <summary>`fastrec train --log-jsonl FILE --tensorboard DIR`, and the paths it refuses before any work.</summary>
[NonParallelizable]
public class TrainingLogCliTests
{
    private TrainFixture _fx = null!;

    [OneTimeSetUp] public void Setup() => _fx = new TrainFixture();
    [OneTimeTearDown] public void TearDown() => _fx.Dispose();

    private string[] TrainArgs(string output, params string[] more) =>
    [
        "train", "--interactions", _fx.Interactions, "--items", _fx.Items, "--model", _fx.ModelDir, "--out", output, "--backend", "cpu",
        "--epochs", "1", "--batch-size", "16", "--max-length", "24", "--context-size", "3", "--freeze", "top-k", "--top-k", "1", "--head-hidden", "8",
        .. more,
    ];

    [Test]
    public void TrainWritesBothLogs()
    {
        string jsonl = Path.Combine(_fx.Root, "logs", "train.jsonl"), tb = Path.Combine(_fx.Root, "runs", "a");
        var (code, output, err) = CliTests.Run(TrainArgs(_fx.Ckpt("logged"), "--log-jsonl", jsonl, "--tensorboard", tb, "--json"));
        Assert.That(code, Is.Zero, err);
        var result = JsonNode.Parse(output)!;
        var lines = File.ReadAllLines(jsonl).Select(l => JsonNode.Parse(l)!.AsObject()).ToArray();
        var steps = lines.Where(l => l.ContainsKey("loss")).ToArray();
        Assert.That(steps, Is.Not.Empty);
        Assert.That(steps.Select(l => l["step"]!.GetValue<long>()), Is.EqualTo(Enumerable.Range(1, steps.Length).Select(i => (long)i)));
        Assert.That(steps[^1]["val_auc"]!.GetValue<double>(), Is.EqualTo(result["best_validation_auc"]!.GetValue<double>()),
            "one epoch, one evaluation: the last step's");
        Assert.That(lines[^1]["test_auc"]!.GetValue<double>(), Is.EqualTo(result["test"]!["auc"]!.GetValue<double>()));
        Assert.That(lines, Has.Length.EqualTo(steps.Length + 1));

        var files = Directory.GetFiles(tb);
        Assert.That(files, Has.Length.EqualTo(1));
        Assert.That(Path.GetFileName(files[0]), Does.StartWith("events.out.tfevents."));
        var s = EventFileReader.Scalars(EventFileReader.Read(files[0]));
        Assert.That(s.Keys.Count(k => k.Tag == "train/loss"), Is.EqualTo(steps.Length));
        Assert.That(s[(steps.Length, "test/auc")], Is.EqualTo((float)result["test"]!["auc"]!.GetValue<double>()));
        Assert.That(err, Does.Contain("tensorboard --logdir"));
    }

    [Test]
    public void UnwritableLogPathsAreRefusedBeforeTraining()
    {
        string file = Path.Combine(_fx.Root, "plain-file");
        File.WriteAllText(file, "x");
        string ckpt = _fx.Ckpt("never");
        var (code, _, err) = CliTests.Run(TrainArgs(ckpt, "--tensorboard", Path.Combine(file, "tb")));
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.StartWith("error: --tensorboard").And.Contain("cannot write"));
        (code, _, err) = CliTests.Run(TrainArgs(ckpt, "--log-jsonl", _fx.Root));
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.StartWith("error: --log-jsonl").And.Contain("is a directory"));
        (code, _, err) = CliTests.Run(TrainArgs(ckpt, "--log-jsonl", Path.Combine(file, "log.jsonl")));
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.StartWith("error: --log-jsonl"));
        Assert.That(Directory.Exists(ckpt), Is.False, "nothing was trained");
        Assert.That(err, Does.Not.Contain("step "), "no training progress before the error");
    }
}
