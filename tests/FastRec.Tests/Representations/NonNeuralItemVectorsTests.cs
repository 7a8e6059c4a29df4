// NonNeuralItemVectors: hand-computed genre/year/title-hash vectors, block weights, the generic word-hash layout, FNV-1a.
using FastRec.Engine.Data;
using FastRec.Engine.Representations;

namespace FastRec.Tests.Representations;

public class NonNeuralItemVectorsTests
{
    private static ItemCatalog Catalog(params string[] texts)
    {
        var c = new ItemCatalog();
        for (int i = 0; i < texts.Length; i++) c.Add($"i{i}", texts[i]);
        return c;
    }

    [Test]
    public void Fnv1aMatchesThePublishedVectorsAndTheBucketsAreStable()
    {
        // FNV-1a 32-bit test vectors (Fowler/Noll/Vo): "" 0x811c9dc5, "a" 0xe40c292c, "foobar" 0xbf9cf968.
        Assert.That(NonNeuralItemVectors.Fnv1a(""), Is.EqualTo(0x811c9dc5u));
        Assert.That(NonNeuralItemVectors.Fnv1a("a"), Is.EqualTo(0xe40c292cu));
        Assert.That(NonNeuralItemVectors.Fnv1a("foobar"), Is.EqualTo(0xbf9cf968u));
        // Computed independently (Python): "alien" 0x6030e10c -> bucket 12, sign +; "film" 0xb2ea63db -> bucket 219, sign -.
        Assert.That(NonNeuralItemVectors.Fnv1a("alien"), Is.EqualTo(0x6030e10cu));
        Assert.That(NonNeuralItemVectors.Fnv1a("film"), Is.EqualTo(0xb2ea63dbu));
        Assert.That(NonNeuralItemVectors.Words("Fantômas - À l'ombre (1913)"), Is.EqualTo(new[] { "fantômas", "à", "l", "ombre", "1913" }));
    }

    [Test]
    public void MovieVectorsAreTheHandComputedBlocks()
    {
        // Genres (ordinal): Action, Crime, Horror, Sci-Fi (G = 4); decades 1970, 1980, 1990 (K = 3); years 1979, 1995:
        // mean 1987, population std 8, z = -1, +1; title words "alien" -> bucket 12 (+), "heat" -> bucket 147 (+).
        var v = NonNeuralItemVectors.Compute(Catalog("Alien (1979) | Horror, Sci-Fi", "Heat (1995) | Action, Crime", ""));
        Assert.That((v.Count, v.Dim), Is.EqualTo((3, 4 + 3 + 1 + 256)));
        Assert.That(v.Name, Is.EqualTo("genre4+decade3+year+title-hash256"));
        // Each block unit, three blocks: whole norm sqrt(3). Genre pair: 1/sqrt(2) each; year [one-hot, z = ±1]: 1/sqrt(2) each.
        float s6 = 1 / MathF.Sqrt(6), s3 = 1 / MathF.Sqrt(3);
        var alien = new float[v.Dim];
        alien[2] = s6; alien[3] = s6;          // Horror, Sci-Fi
        alien[4 + 0] = s6; alien[7] = -s6;     // 1970s, z = -1
        alien[8 + 12] = s3;                    // "alien"
        var heat = new float[v.Dim];
        heat[0] = s6; heat[1] = s6;            // Action, Crime
        heat[4 + 2] = s6; heat[7] = s6;        // 1990s, z = +1
        heat[8 + 147] = s3;                    // "heat"
        Assert.That(v.Row(0).ToArray(), Is.EqualTo(alien).Within(1e-7f));
        Assert.That(v.Row(1).ToArray(), Is.EqualTo(heat).Within(1e-7f));
        Assert.That(v.Row(2).ToArray(), Is.All.EqualTo(0f), "empty text: zero row");
    }

    [Test]
    public void BlockWeightsScaleTheUnitBlocksBeforeTheWholeNormalisation()
    {
        // Genre weight 2, year 0, title 1: the item's vector is [2·g | 0 | 1·t] / sqrt(5) with unit g and t.
        var v = NonNeuralItemVectors.Compute(Catalog("Alien (1979) | Horror, Sci-Fi", "Heat (1995) | Action, Crime"),
            new NonNeuralOptions { GenreWeight = 2, YearWeight = 0, TitleWeight = 1, HashBuckets = 16 });
        Assert.That(v.Dim, Is.EqualTo(4 + 3 + 1 + 16));
        var alien = new float[v.Dim];
        alien[2] = alien[3] = 2 / MathF.Sqrt(2) / MathF.Sqrt(5);
        alien[8 + (int)((0x6030e10cu & 0x7FFFFFFF) % 16)] = 1 / MathF.Sqrt(5);
        Assert.That(v.Row(0).ToArray(), Is.EqualTo(alien).Within(1e-7f));
    }

    [Test]
    public void GenericCatalogueGivesSignedWordHashesOnly()
    {
        // "bad" -> bucket 120 (+), "film" -> bucket 219 (-): "bad film film" = (+1, -2) / sqrt(5).
        var v = NonNeuralItemVectors.Compute(Catalog("bad film film", "Alien (1979) | Horror", "   "));
        Assert.That((v.Dim, v.Name), Is.EqualTo((256, "word-hash256")), "one text is not a movie: the whole catalogue is generic");
        var expected = new float[256];
        expected[120] = 1 / MathF.Sqrt(5); expected[219] = -2 / MathF.Sqrt(5);
        Assert.That(v.Row(0).ToArray(), Is.EqualTo(expected).Within(1e-7f));
        Assert.That(v.Row(2).ToArray(), Is.All.EqualTo(0f));
        var again = NonNeuralItemVectors.Compute(Catalog("bad film film", "Alien (1979) | Horror", "   "));
        Assert.That(again.Values, Is.EqualTo(v.Values), "deterministic");
    }

    [Test]
    public void RealCatalogueHasUnitOrZeroRows()
    {
        var catalog = MovieTweetings.LoadItems(Path.Combine(MovieTweetings.FindVendoredDirectory(), "movies.dat"));
        var v = NonNeuralItemVectors.Compute(catalog);
        Assert.That(v.Count, Is.EqualTo(10_506));
        Assert.That(v.Name, Does.StartWith("genre25+"), "25 genres in the vendored snapshot");
        for (int i = 0; i < v.Count; i++)
        {
            double n = 0;
            foreach (float x in v.Row(i)) n += x * x;
            Assert.That(n, Is.EqualTo(1.0).Within(1e-5), $"item {i} ({catalog.Text(i)})");
        }
    }

    [Test]
    public void BadOptionsAreRefusedByName()
    {
        var c = Catalog("a");
        Assert.That(() => NonNeuralItemVectors.Compute(c, new NonNeuralOptions { HashBuckets = 0 }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("HashBuckets").And.Message.Contains("got 0"));
        Assert.That(() => NonNeuralItemVectors.Compute(c, new NonNeuralOptions { YearWeight = float.NaN }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("YearWeight").And.Message.Contains("NaN"));
        Assert.That(() => NonNeuralItemVectors.Compute(c, new NonNeuralOptions { GenreWeight = -1 }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("GenreWeight"));
    }
}
