// `fastrec tower` and `fastrec recommend` end to end on the CLI fixture: train and save, refuse to overwrite, recommend
// by id with labels (equal to the library's answer), the history syntax, errors in the flags' words.
using System.Text.Json.Nodes;
using FastRec.Cli.Commands;
using FastRec.Engine.Serving;
using FastRec.Tests.Training;

namespace FastRec.Tests.Cli;

[NonParallelizable]
public class RecommendCliTests
{
    private TrainFixture _fx = null!;
    private string _file = "";

    private static (int Code, string Out, string Err) Run(params string[] args) => CliTests.Run(args);

    private string[] TowerArgs(string output) =>
        ["tower", "--interactions", _fx.Interactions, "--items", _fx.Items, "--encoder", _fx.ModelDir, "--out", output, "--cache", "none",
         "--backend", "cpu", "--epochs", "1"];

    [OneTimeSetUp]
    public void Setup()
    {
        _fx = new TrainFixture();
        _file = Path.Combine(_fx.Root, "tower.frts");
        var (code, output, err) = Run([.. TowerArgs(_file), "--json"]);
        Assert.That(code, Is.Zero, err + output);
    }

    [OneTimeTearDown] public void TearDown() => _fx.Dispose();

    [Test]
    public void TowerSavesTheScorerAndRefusesToOverwriteWithoutTheFlag()
    {
        Assert.That(File.Exists(_file));
        var info = JsonNode.Parse(CatalogRecommenderInfo())!;
        Assert.That(info["items"]!.GetValue<int>(), Is.EqualTo(20));
        Assert.That(info["epochs_run"]!.GetValue<int>(), Is.EqualTo(1));
        Assert.That(info["validation_auc"]!.GetValue<double>(), Is.InRange(0.0, 1.0));
        var (code, _, err) = Run(TowerArgs(_file));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err.Trim(), Does.StartWith("error: --out").And.Contain("the file exists; add --overwrite"));
        string copy = Path.Combine(_fx.Root, "again.frts");
        File.WriteAllText(copy, "old");
        (code, var output, err) = Run([.. TowerArgs(copy), "--overwrite"]);
        Assert.That(code, Is.Zero, err);
        Assert.That(output, Does.Contain("saved the scorer of 20 items"));
        Assert.That(CatalogRecommender.Load(copy).ItemCount, Is.EqualTo(20));
    }

    [Test]
    public void TowerCheckpointResumesAndEndsWhereAnUninterruptedRunEnds()
    {
        string straight = Path.Combine(_fx.Root, "straight.frts"), resumed = Path.Combine(_fx.Root, "resumed.frts"), ckpt = Path.Combine(_fx.Root, "tower.ckpt");
        string[] Args(string output, int epochs) => [.. TowerArgs(output)[..^2], "--epochs", epochs.ToString(System.Globalization.CultureInfo.InvariantCulture)];
        var (code, _, err) = Run(Args(straight, 2));
        Assert.That(code, Is.Zero, err);
        (code, _, err) = Run([.. Args(resumed, 1), "--checkpoint", ckpt]);
        Assert.That(code, Is.Zero, err);
        Assert.That(File.Exists(ckpt), Is.True);
        (code, var output, err) = Run([.. Args(resumed, 2), "--checkpoint", ckpt, "--overwrite"]);
        Assert.That(code, Is.Zero, err);
        Assert.That(output, Does.Contain("resumed from").And.Contain("after epoch 1"));
        var a = CatalogRecommender.Load(straight); var b = CatalogRecommender.Load(resumed);
        var ra = a.TopK([], null, 5); var rb = b.TopK([], null, 5);
        Assert.That(rb.Select(x => (x.Item, x.Score)), Is.EqualTo(ra.Select(x => (x.Item, x.Score))), "resumed = uninterrupted, bit for bit");
        (code, _, err) = Run([.. Args(resumed, 2), "--checkpoint", _fx.Root, "--overwrite"]);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--checkpoint").And.Contain("is a directory"));
    }

    private string CatalogRecommenderInfo() => Engine.Representations.TowerScorer.LoadFile(_file).Info;

    [Test]
    public void RecommendPrintsTheLibrarysTopKWithIdsTextsAndScores()
    {
        var (code, output, err) = Run("recommend", "--model", _file, "--history", "i1, i4:0,i6:1", "--exclude", "i2", "--k", "5", "--json");
        Assert.That(code, Is.Zero, err);
        var doc = JsonNode.Parse(output)!;
        var items = doc["items"]!.AsArray();
        var expected = CatalogRecommender.Load(_file).TopK(["i1", "i4", "i6"], [1, 0, 1], 5, ["i2"]);
        Assert.That(items.Select(x => x!["id"]!.GetValue<string>()), Is.EqualTo(expected.Select(x => x.Id)));
        Assert.That(items.Select(x => x!["score"]!.GetValue<float>()), Is.EqualTo(expected.Select(x => x.Score)));
        Assert.That(items.Select(x => x!["text"]!.GetValue<string>()), Is.EqualTo(expected.Select(x => x.Text)));
        Assert.That(items.Select(x => x!["id"]!.GetValue<string>()), Has.None.AnyOf("i1", "i4", "i6", "i2"));
        Assert.That(doc["history"]!.AsArray().Select(x => x!["label"]!.GetValue<float>()), Is.EqualTo(new[] { 1f, 0f, 1f }));
        // Text mode: a header line and one line per item, best first.
        (code, output, err) = Run("recommend", "--model", _file, "--k", "3");
        Assert.That(code, Is.Zero, err);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines[0], Does.StartWith("top 3 of 20 items for a new user"));
        Assert.That(lines, Has.Length.EqualTo(4));
        Assert.That(lines[1].Trim(), Does.StartWith("1  " + CatalogRecommender.Load(_file).TopK([], null, 1)[0].Id));
    }

    [Test]
    public void RecommendErrorsAreOneLineInTheFlagsWords()
    {
        var (code, _, err) = Run("recommend", "--model", _file, "--history", "i1,ghost,i3:0,spook:1");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err.Trim(), Is.EqualTo("error: --history: 2 unknown item ids in the history (not in the catalogue of 20 items; refused, not skipped): 'ghost', 'spook'"));
        (code, _, err) = Run("recommend", "--model", _file, "--k", "21");
        Assert.That(err.Trim(), Does.StartWith("error: --k must be in [1, 20]"));
        (code, _, err) = Run("recommend", "--model", _file, "--exclude", "i1,nope");
        Assert.That(err.Trim(), Does.StartWith("error: --exclude: 1 unknown item id in the exclusions"));
        (code, _, err) = Run("recommend", "--model", _fx.Interactions);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err.Trim(), Does.Contain(_fx.Interactions).And.Contain("not a tower scorer file"));
    }

    [Test]
    public void HistorySyntax()
    {
        var (ids, labels) = RecommendCommand.ParseHistory(" a, b:0 ,c:0.5,d:1,e:f:1,,");
        Assert.That(ids, Is.EqualTo(new[] { "a", "b", "c", "d", "e:f" }));
        Assert.That(labels, Is.EqualTo(new[] { 1f, 0f, 0.5f, 1f, 1f }));
        Assert.That(RecommendCommand.ParseHistory("").Ids, Is.Empty);
        Assert.That(RecommendCommand.ParseHistory("id:x").Ids, Is.EqualTo(new[] { "id:x" }), "a suffix that is not a number is part of the id");
        Assert.That(() => RecommendCommand.ParseHistory("a:2"), Throws.ArgumentException.With.Message.Contains("'a:2': the label 2 is outside [0, 1]"));
        Assert.That(() => RecommendCommand.ParseHistory("a:NaN"), Throws.ArgumentException.With.Message.Contains("outside [0, 1]"));
        Assert.That(() => RecommendCommand.ParseHistory(":1"), Throws.ArgumentException.With.Message.Contains("':1' has no item id"));
    }
}
