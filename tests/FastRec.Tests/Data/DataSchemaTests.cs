// DataSchema: the fields two schemas differ in (what --resume refuses and eval's re-split guard checks), and its file paths.
using FastRec.Tests.Training;
using FastRec.Engine.Data;
using FastRec.Engine.Training;

namespace FastRec.Tests.Data;

public class DataSchemaTests
{
    private static readonly DataSchema Basis = new()
    {
        Interactions = new InteractionFileOptions { LabelColumn = null, RatingColumn = "stars", PositiveThreshold = 8, DenseColumns = ["a", "b"] },
        Examples = new ExampleOptions { ContextSize = 3 },
        InteractionsPath = "/data/i.csv",
    };

    [Test]
    public void DifferencesNameEachFieldWithBothValues()
    {
        Assert.That(Basis.Differences(Basis with { InteractionsPath = "/elsewhere/i.csv", Interactions = Basis.Interactions! with { DenseColumns = ["a", "b"] } }),
            Is.Empty, "the file paths are not compared; lists are compared by content");
        var other = Basis with
        {
            Interactions = Basis.Interactions! with { PositiveThreshold = 5, DenseColumns = ["a"] },
            Examples = Basis.Examples with { Split = SplitKind.Random },
            HistoryFeatures = true,
        };
        Assert.That(Basis.Differences(other), Is.EqualTo(new[]
        {
            ("history_features", "False", "True"),
            ("interactions.positive_threshold", "8", "5"),
            ("interactions.dense_columns", "[a, b]", "[a]"),
            ("examples.split", "Temporal", "Random"),
        }));
        Assert.That(new DataSchema().Differences(new DataSchema { Interactions = new InteractionFileOptions() }), Is.Empty, "absent mappings are the defaults");
    }

    [Test]
    public void SplitDifferencesCountTheSeedOnlyForARandomSplit()
    {
        var seed = Basis with { Examples = Basis.Examples with { Seed = 7, NegativesPerPositive = 2 } };
        Assert.That(Basis.SplitDifferences(seed), Is.Empty, "a temporal split does not depend on the seed");
        var random = Basis with { Examples = Basis.Examples with { Split = SplitKind.Random } };
        Assert.That(random.SplitDifferences(random with { Examples = random.Examples with { Seed = 7 } }).Select(d => d.Field), Is.EqualTo(new[] { "examples.seed" }));
        Assert.That(Basis.SplitDifferences(Basis with { Examples = Basis.Examples with { ValidationFraction = 0.15 } }).Single(),
            Is.EqualTo(("examples.validation_fraction", "0.1", "0.15")));
    }

    [Test]
    public void PathsAreStoredRelativeAndResolvedBack()
    {
        var stored = Basis.RelativeTo("/data/runs/ckpt");
        Assert.That(stored.InteractionsPath, Is.EqualTo(Path.Combine("..", "..", "i.csv")));
        Assert.That(stored.ItemsPath, Is.Null);
        Assert.That(stored.ResolvedFrom("/data/runs/ckpt").InteractionsPath, Is.EqualTo("/data/i.csv"));
        Assert.That(stored.ResolvedFrom("/moved/runs/ckpt.bak").InteractionsPath, Is.EqualTo("/moved/i.csv"), "moved together with its data");
    }

    [Test]
    public void LoadItemsReadsTheSchemasItemsFileOrTheVendoredMovies()
    {
        string dir = Directory.CreateTempSubdirectory("fastrec-schema-").FullName;
        try
        {
            string items = Path.Combine(dir, "items.tsv");
            File.WriteAllLines(items, ["sku\tname", "a\tRed shoe", "b\tBlue hat"]);
            var files = new DataSchema { ItemsPath = items, Items = new ItemFileOptions { IdColumn = "sku", TextColumns = ["name"] } };
            var catalog = files.LoadItems();
            Assert.That((catalog.Count, catalog.Text(catalog.IndexOf("b"))), Is.EqualTo((2, "Blue hat")));

            var movies = new DataSchema { Kind = "movietweetings" }.LoadItems();
            Assert.That(movies.Count, Is.EqualTo(10_506), "the vendored movies.dat when no path is set");

            TrainAssert.Throws<InvalidOperationException>(() => new DataSchema().LoadItems(), "kind 'files'", "names no items file");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
