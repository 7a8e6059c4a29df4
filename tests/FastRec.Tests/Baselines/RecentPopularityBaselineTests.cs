// RecentPopularityBaseline: hand-counted recent interactions, the window chosen on validation, bad input.
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;

namespace FastRec.Tests.Baselines;

public class RecentPopularityBaselineTests
{
    private const long Day = 86_400, T0 = 1_000 * Day;   // validation starts at T0, test at T0 + 20 days

    /// <summary>Item a: 3 ratings in the last day before T0; item b: 5 ratings 10 days before; item c: none. In the
    /// validation window users rate a (recent) and in the test window b again.</summary>
    private static RecDataset Make(string dir)
    {
        var rows = new List<string> { "user,item,label,timestamp" };
        for (int k = 0; k < 3; k++) rows.Add($"u{k},a,1,{T0 - Day / 2 + k}");
        for (int k = 0; k < 5; k++) rows.Add($"u{k + 3},b,{k % 2},{T0 - 10 * Day + k}");
        for (int k = 0; k < 4; k++) rows.Add($"u{k + 8},a,1,{T0 + Day + k}");
        for (int k = 0; k < 4; k++) rows.Add($"u{k + 12},b,0,{T0 + 2 * Day + k}");
        for (int k = 0; k < 4; k++) rows.Add($"u{k},c,1,{T0 + 20 * Day + k}");
        string ip = Path.Combine(dir, "items.csv"), rp = Path.Combine(dir, "rows.csv");
        File.WriteAllLines(ip, ["item,title", "a,A", "b,B", "c,C"]); File.WriteAllLines(rp, rows);
        var table = InteractionTable.Load(rp, ItemCatalog.Load(ip));
        return RecDataset.Build(table, new ExampleOptions { ContextSize = 1, ValidationStart = T0, TestStart = T0 + 20 * Day });
    }

    [Test]
    public void CountsTheLastDaysAndTunesTheWindowOnValidation()
    {
        var dir = Directory.CreateTempSubdirectory("fastrec-recent-").FullName;
        try
        {
            var data = Make(dir);
            var w = EvalWindow.FromDataset(data);
            int a = data.Catalog.IndexOf("a"), b = data.Catalog.IndexOf("b"), c = data.Catalog.IndexOf("c");
            var scores = new float[3];
            RecentPopularityBaseline.Fit(w, data.Train, 1).ScoreItems(w, [0], scores);
            // Test start = T0 + 20 d: in the last day nothing; in the last 30 days a has 3 + 4 = 7, b 5 + 4 = 9.
            Assert.That((scores[a], scores[b], scores[c]), Is.EqualTo((0f, 0f, 0f)));
            RecentPopularityBaseline.Fit(w, data.Train, 30).ScoreItems(w, [0], scores);
            Assert.That((scores[a], scores[b], scores[c]), Is.EqualTo((7f, 9f, 0f)));
            // The validation window starts at T0: 1 day sees a only (3), 30 days a (3) and b (5). Validation likes a:
            // 1 day ranks a first, 30 days b first, so the tuned window is 1 day.
            var tuned = RecentPopularityBaseline.FitTuned(w, data.Train, data.Validation, [30, 1]);
            Assert.That(tuned.Days, Is.EqualTo(1));
            var p = tuned.Predict(data.Test);
            Assert.That(p.All(x => x > 0 && x < 1), Is.True);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void BadInputIsNamed()
    {
        var dir = Directory.CreateTempSubdirectory("fastrec-recent-").FullName;
        try
        {
            var data = Make(dir);
            var w = EvalWindow.FromDataset(data);
            Assert.That(() => RecentPopularityBaseline.Fit(w, data.Train, 0), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("days"));
            Assert.That(() => RecentPopularityBaseline.FitTuned(w, data.Train, data.Validation, []), Throws.ArgumentException.With.Message.Contains("grid is empty"));
        }
        finally { Directory.Delete(dir, true); }
    }
}
