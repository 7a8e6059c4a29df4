// StudyData: training windows keep validation and test fixed and forget older rows; the cold-item holdout drops the
// held-out items' rows before the test window.
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;

namespace FastRec.Tests.Evaluation;

public class StudyDataTests
{
    private static InteractionTable Raw(out string dir)
    {
        dir = Directory.CreateTempSubdirectory("fastrec-study-").FullName;
        var items = new List<string> { "item,title" };
        for (int i = 0; i < 10; i++) items.Add($"i{i},item {i}");
        var rows = new List<string> { "user,item,label,timestamp" };
        // 100 rows at t = 1..100: even t rate item (t-1)/10, odd t the older item (t-1)/20, so items appear in index order.
        for (int t = 1; t <= 100; t++) rows.Add($"u{t % 7},i{(t % 2 == 0 ? (t - 1) / 10 : (t - 1) / 20)},{t / 2 % 2},{t}");
        File.WriteAllLines(Path.Combine(dir, "items.csv"), items);
        File.WriteAllLines(Path.Combine(dir, "rows.csv"), rows);
        return InteractionTable.Load(Path.Combine(dir, "rows.csv"), ItemCatalog.Load(Path.Combine(dir, "items.csv")));
    }

    [Test]
    public void WindowKeepsValidationAndTestAndForgetsOlderRows()
    {
        var raw = Raw(out var dir);
        try
        {
            var full = RecDataset.Build(HistoryFeatures.Append(raw), new ExampleOptions { ContextSize = 1 });
            var b = StudyBoundaries.Of(full);
            Assert.That((b.TrainStart, b.ValidationStart, b.TestStart), Is.EqualTo((1L, 81L, 91L)));
            Assert.That(b.WindowStart(0.25), Is.EqualTo(61L));
            var w = StudyData.Window(raw, t => HistoryFeatures.Append(t), full.Options, b, 0.25);
            Assert.That(w.Train.Count, Is.EqualTo(20));
            Assert.That(w.Train.Timestamps.ToArray(), Is.All.GreaterThanOrEqualTo(61L));
            Assert.That(w.Validation.Items.ToArray(), Is.EqualTo(full.Validation.Items.ToArray()));
            Assert.That(w.Test.Items.ToArray(), Is.EqualTo(full.Test.Items.ToArray()));
            Assert.That(w.Test.Users.ToArray(), Is.EqualTo(full.Test.Users.ToArray()));
            // History features are recomputed on the window: the first training row's user has no earlier row there.
            int count = Array.IndexOf(HistoryFeatures.Names, "hist_user_log_count");
            Assert.That(w.Train.DenseRow(0)[count], Is.EqualTo(0f));
            Assert.That(full.Train.DenseRow(60)[count], Is.GreaterThan(0f), "in the full data the same row has history");
            Assert.That(() => b.WindowStart(0), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("(0, 1]"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void ColdItemsAreTheLatestToAppearAndHaveNoRowsBeforeTheTest()
    {
        var raw = Raw(out var dir);
        try
        {
            var full = RecDataset.Build(raw, new ExampleOptions { ContextSize = 1 });
            var b = StudyBoundaries.Of(full);
            var (data, held, dropped) = StudyData.ColdItems(raw, t => t, full.Options, b, 0.2);
            var heldIds = Enumerable.Range(0, held.Length).Where(i => held[i]).Select(i => data.Catalog.Id(i)).ToArray();
            Assert.That(heldIds, Is.EqualTo(new[] { "i8", "i9" }));
            foreach (var set in new[] { data.Train, data.Validation })
                for (int k = 0; k < set.Count; k++) Assert.That(held[set.Items[k]], Is.False, $"{set.Name} row {k}");
            int before = 0;
            for (int r = 0; r < raw.Count; r++) if (held[raw.Items[r]] && raw.Timestamps[r] < b.TestStart) before++;
            Assert.That(dropped, Is.EqualTo(before));
            Assert.That(data.Test.Count, Is.EqualTo(full.Test.Count), "test rows are kept");
            Assert.That(() => StudyData.ColdItems(raw, t => t, full.Options, b, 1.0), Throws.InstanceOf<ArgumentOutOfRangeException>());
        }
        finally { Directory.Delete(dir, true); }
    }
}
