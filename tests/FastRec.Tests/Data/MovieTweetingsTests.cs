// The MovieTweetings preset on the vendored 100k snapshot: counts match the files, about half the ratings are >= 8.
using FastRec.Engine.Data;

namespace FastRec.Tests.Data;

public class MovieTweetingsTests
{
    private static string Dir => MovieTweetings.FindVendoredDirectory();

    [Test]
    public void PresetLoadsTheVendoredDataWithCountsMatchingTheFiles()
    {
        // Independent count with string.Split.
        var lines = File.ReadAllLines(Path.Combine(Dir, "ratings.dat")).Where(l => l.Length > 0).Select(l => l.Split("::")).ToArray();
        int movies = File.ReadAllLines(Path.Combine(Dir, "movies.dat")).Count(l => l.Length > 0);
        int positives = lines.Count(f => int.Parse(f[2]) >= 8);

        var t = MovieTweetings.Load(Dir);
        Assert.That(t.Count, Is.EqualTo(lines.Length));
        Assert.That(t.Count, Is.EqualTo(100_000));
        Assert.That(t.Catalog.Count, Is.EqualTo(movies));
        Assert.That(t.UserIds.Length, Is.EqualTo(lines.Select(f => f[0]).Distinct().Count()));
        Assert.That(t.ItemsWithoutText, Is.EqualTo(0));
        int loadedPositives = 0;
        foreach (float y in t.Labels) if (y == 1) loadedPositives++; else Assert.That(y, Is.EqualTo(0f));
        Assert.That(loadedPositives, Is.EqualTo(positives));
        Assert.That((double)positives / t.Count, Is.InRange(0.45, 0.55), "about half the ratings are >= 8");
        Assert.That(t.Timestamps[0], Is.EqualTo(long.Parse(lines[0][3])));
        Assert.That(t.UserIds[t.Users[^1]], Is.EqualTo(lines[^1][0]));
        Assert.That(t.Catalog.Id(t.Items[^1]), Is.EqualTo(lines[^1][1]));
    }

    [Test]
    public void VendoredDataIsFoundNextToTheApplicationWhenTheWorkingDirectoryHasNone()
    {
        // The `fastrec` tool's layout: data/movietweetings-100k beside the assembly, run from an unrelated folder.
        var root = Directory.CreateTempSubdirectory("fastrec-vendored-");
        try
        {
            string cwd = Directory.CreateDirectory(Path.Combine(root.FullName, "elsewhere", "deeper")).FullName;
            string app = Directory.CreateDirectory(Path.Combine(root.FullName, "tool", "net10.0", "any")).FullName;
            string data = Directory.CreateDirectory(Path.Combine(app, "data", "movietweetings-100k")).FullName;
            Assert.Throws<DirectoryNotFoundException>(() => MovieTweetings.FindVendoredDirectory(cwd, app), "no ratings.dat yet");
            File.WriteAllText(Path.Combine(data, "ratings.dat"), "");
            Assert.That(MovieTweetings.FindVendoredDirectory(cwd, app), Is.EqualTo(data), "beside the application");

            // The working directory wins when both have it (a clone run from inside the repository).
            string local = Directory.CreateDirectory(Path.Combine(root.FullName, "elsewhere", "data", "movietweetings-100k")).FullName;
            File.WriteAllText(Path.Combine(local, "ratings.dat"), "");
            Assert.That(MovieTweetings.FindVendoredDirectory(cwd, app), Is.EqualTo(local), "above the working directory first");
        }
        finally { root.Delete(recursive: true); }
    }

    [Test]
    public void MissingVendoredDataNamesEveryPlaceLookedIn()
    {
        var root = Directory.CreateTempSubdirectory("fastrec-vendored-");
        try
        {
            string a = Directory.CreateDirectory(Path.Combine(root.FullName, "a")).FullName, b = Directory.CreateDirectory(Path.Combine(root.FullName, "b")).FullName;
            var e = Assert.Throws<DirectoryNotFoundException>(() => MovieTweetings.FindVendoredDirectory(a, b))!;
            Assert.That(e.Message, Does.Contain("data/movietweetings-100k/ratings.dat not found").And.Contain(a).And.Contain(b));
        }
        finally { root.Delete(recursive: true); }
    }

    [Test]
    public void ItemTextIsTitleYearAndGenres()
    {
        var items = MovieTweetings.LoadItems(Path.Combine(Dir, "movies.dat"));
        Assert.That(items.Text(items.IndexOf("0004972")), Is.EqualTo("The Birth of a Nation (1915) | Drama, History, Romance, War"));
        Assert.That(items.Text(items.IndexOf("0002844")), Is.EqualTo("Fantômas - À l'ombre de la guillotine (1913) | Crime, Drama"));
    }

    [Test]
    public void DefaultDatasetSplitsTemporally()
    {
        var ds = RecDataset.LoadMovieTweetings();
        Assert.That(ds.Train.Count + ds.Validation.Count + ds.Test.Count, Is.EqualTo(100_000));
        Assert.That(ds.Train.Count, Is.InRange(79_990, 80_100));
        Assert.That(ds.Validation.Count, Is.InRange(9_900, 10_100));
        Assert.That(ds.Train.Timestamps[^1], Is.LessThan(ds.Validation.Timestamps[0]));
        Assert.That(ds.Validation.Timestamps[^1], Is.LessThan(ds.Test.Timestamps[0]));
        Assert.That(ds.Train.ContextSize, Is.EqualTo(5));
        // Most test users have some history by then.
        int withContext = 0;
        for (int i = 0; i < ds.Test.Count; i++) if (ds.Test.Context(i).Length > 0) withContext++;
        Assert.That(withContext, Is.GreaterThan(ds.Test.Count / 10));
    }

    [Test]
    public void MalformedDatLinesNameFileAndLine()
    {
        using var d = new TempDir();
        var items = MovieTweetings.LoadItems(d.Write("movies.dat", "001::A (2000)::Drama", "002::B (2001)::"));
        Assert.That(items.Text(1), Is.EqualTo("B (2001)"));
        DataAssert.Throws<InvalidDataException>(() => MovieTweetings.LoadRatings(d.Write("r1.dat", "1::001::8::100", "1::002::9"), items),
            "r1.dat:2", "user::item::rating::timestamp");
        DataAssert.Throws<InvalidDataException>(() => MovieTweetings.LoadRatings(d.Write("r2.dat", "1::001::eight::100"), items), "r2.dat:1", "'eight'");
        DataAssert.Throws<InvalidDataException>(() => MovieTweetings.LoadRatings(d.Write("r3.dat", "1::003::8::100"), items), "r3.dat", "1 items referenced by 1 interactions have no text", "'003'");
        DataAssert.Throws<InvalidDataException>(() => MovieTweetings.LoadItems(d.Write("m.dat", "001 A (2000) Drama")), "m.dat:1", "id::title");
    }
}
