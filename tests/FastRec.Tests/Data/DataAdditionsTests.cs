// ExampleSet.Subset and RecDataset.BuildAll (added for sampling and for `fastrec predict`).
using FastRec.Tests.Training;
using FastRec.Engine.Data;

namespace FastRec.Tests.Data;

public class DataAdditionsTests
{
    [Test]
    public void SubsetKeepsEveryColumnOfTheChosenExamples()
    {
        using var fx = new TrainFixture(dense: true);
        var d = fx.Load(options: new InteractionFileOptions { DenseColumns = ["score"] });
        var s = d.Train.Subset([1, 5, 6], "sample");
        Assert.That(s.Name, Is.EqualTo("sample"));
        Assert.That(s.Count, Is.EqualTo(3));
        int[] idx = [1, 5, 6];
        for (int q = 0; q < 3; q++)
        {
            int i = idx[q];
            Assert.That(s.Users[q], Is.EqualTo(d.Train.Users[i]));
            Assert.That(s.Items[q], Is.EqualTo(d.Train.Items[i]));
            Assert.That(s.Labels[q], Is.EqualTo(d.Train.Labels[i]));
            Assert.That(s.Timestamps[q], Is.EqualTo(d.Train.Timestamps[i]));
            Assert.That(s.Context(q).ToArray(), Is.EqualTo(d.Train.Context(i).ToArray()));
            Assert.That(s.DenseRow(q).ToArray(), Is.EqualTo(d.Train.DenseRow(i).ToArray()));
        }
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => d.Train.Subset([d.Train.Count]), "example index", $"{d.Train.Count}");
    }

    [Test]
    public void BuildAllHoldsEveryExampleOfTheSplitsInTimeOrder()
    {
        using var fx = new TrainFixture();
        var table = RecDataset.Load(fx.Interactions, fx.Items).Table;
        var d = RecDataset.Build(table);
        var all = RecDataset.BuildAll(table);
        Assert.That(all.Name, Is.EqualTo("all"));
        Assert.That(all.Count, Is.EqualTo(d.Train.Count + d.Validation.Count + d.Test.Count));
        Assert.That(all.Timestamps.ToArray(), Is.Ordered);
        // The contexts do not depend on the split.
        int last = all.Count - 1;
        Assert.That(all.Context(last).ToArray(), Is.EqualTo(d.Test.Context(d.Test.Count - 1).ToArray()));
    }
}
