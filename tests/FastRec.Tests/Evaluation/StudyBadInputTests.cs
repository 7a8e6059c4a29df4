// Bad input of the evaluation plumbing this change added: each refused with a message naming the problem.
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;
using FastRec.Engine.Representations;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Training;

namespace FastRec.Tests.Evaluation;

public class StudyBadInputTests
{
    /// <summary>Users u0..u2, items i0..i4, one row per timestamp 1..12 as given.</summary>
    private static InteractionTable Table(params (string User, string Item, int Label)[] rows)
    {
        var catalog = new ItemCatalog();
        for (int i = 0; i < 5; i++) catalog.Add($"i{i}", $"item {i}");
        var b = new InteractionTableBuilder("bad.csv", catalog, [], MissingItemText.Refuse);
        for (int k = 0; k < rows.Length; k++) b.Add(rows[k].User, rows[k].Item, rows[k].Label, 1, k + 1, [], k + 2);
        return b.Build();
    }

    private static InteractionTable Twelve() => Table(
        ("u0", "i0", 1), ("u1", "i1", 0), ("u2", "i2", 1), ("u0", "i3", 0), ("u1", "i0", 1), ("u2", "i1", 0),
        ("u0", "i2", 1), ("u1", "i3", 0), ("u2", "i4", 1), ("u0", "i0", 0), ("u1", "i1", 1), ("u2", "i2", 0));

    [Test]
    public void TimeSplitOptionsAreCheckedTogether()
    {
        var t = Twelve();
        TrainAssert.Throws<ArgumentException>(() => RecDataset.Build(t, new ExampleOptions { ValidationStart = 9 }), "must be set together");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => RecDataset.Build(t, new ExampleOptions { ValidationStart = 9, TestStart = 5 }), "TestStart 5 is before ValidationStart 9");
        TrainAssert.Throws<ArgumentException>(() => RecDataset.Build(t, new ExampleOptions { ValidationStart = 9, TestStart = 11, Split = SplitKind.Random }), "need the temporal split");
        var d = RecDataset.Build(t, new ExampleOptions { ContextSize = 1, ValidationStart = 9, TestStart = 11 });
        Assert.That((d.Train.Count, d.Validation.Count, d.Test.Count), Is.EqualTo((8, 2, 2)));
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => t.Subset([0, 12]), "row 12 is outside [0, 12)");
    }

    [Test]
    public void WindowsRefuseSetsOfAnotherDatasetOrOutOfTimeOrder()
    {
        var t = Twelve();
        var a = RecDataset.Build(t, new ExampleOptions { ContextSize = 1, ValidationStart = 9, TestStart = 11 });
        var b = RecDataset.Build(Twelve(), new ExampleOptions { ContextSize = 1, ValidationStart = 9, TestStart = 11 });
        TrainAssert.Throws<ArgumentException>(() => EvalWindow.FromSets(a.Catalog, a.Train, b.Validation, a.Test), "share their user ids");
        var random = RecDataset.Build(t, new ExampleOptions { ContextSize = 1, Split = SplitKind.Random, TrainFraction = 0.5, ValidationFraction = 0.25 });
        TrainAssert.Throws<ArgumentException>(() => EvalWindow.FromDataset(random), "not in time order");
        TrainAssert.Throws<ArgumentException>(() => StudyBoundaries.Of(random), "need the temporal split");
    }

    [Test]
    public void StudiesRefuseEmptyChoicesAndAHoldoutWithoutTestRows()
    {
        var t = Twelve();
        var examples = new ExampleOptions { ContextSize = 1, ValidationStart = 9, TestStart = 11 };
        var bounds = StudyBoundaries.Of(RecDataset.Build(t, examples));
        using var backend = new CpuSimdBackend();
        var none = new TransferVariant("e", "history only", _ => null);
        TrainAssert.Throws<ArgumentException>(() => TransferStudy.Run(t, x => x, examples, bounds, [], backend), "no variants");
        TrainAssert.Throws<ArgumentException>(() => TransferStudy.Run(t, x => x, examples, bounds, [none], backend, new TransferStudyOptions { Windows = [] }), "no training windows");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => TransferStudy.Run(t, x => x, examples, bounds, [none], backend, new TransferStudyOptions { Seeds = 0 }), "seeds must be >= 1");
        // i4, the newest item, is held out; the test rows (t = 11, 12) fall on i1 and i2 only.
        var vectors = new ItemVectors("v", 5, 2, new float[10]);
        TrainAssert.Throws<InvalidDataException>(() => ColdItemStudy.Run(t, x => x, examples, bounds, vectors, vectors, backend), "no test row falls on a held-out item");
    }
}
