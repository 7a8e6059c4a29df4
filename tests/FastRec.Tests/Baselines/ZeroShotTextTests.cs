// Zero-shot text: cosine to the mean of the liked items' vectors, on hand-made vectors; users without likes tie at 0.
using FastRec.Engine.Baselines;
using FastRec.Engine.Representations;
using FastRec.Tests.Training;

namespace FastRec.Tests.Baselines;

public class ZeroShotTextTests
{
    // a = (1, 0), b = (0, 2), c = (1, 1), d = (0, 0) (no text). u0 likes a and b (and dislikes c in validation);
    // u1 likes nothing; u2 likes only d.
    private static HandData Data() => HandData.Build(3, 4,
        [(0, 0, 1), (1, 2, 0), (0, 1, 1), (2, 3, 1), (1, 0, 0), (0, 3, 0)],
        [(0, 2, 0)],
        [(0, 2, 1), (1, 1, 1), (2, 0, 0)]);

    private static ItemVectors Vectors() => new("hand", 4, 2, [1, 0, 0, 2, 1, 1, 0, 0]);

    [Test]
    public void ScoresAreCosinesToTheMeanLikedVector()
    {
        var d = Data();
        var m = ZeroShotTextBaseline.Fit(d.Window, Vectors());
        Assert.That(m.Name, Is.EqualTo("zero-shot text (hand)"));
        float r = (float)Math.Sqrt(0.5);
        // u0's profile: mean of (1, 0) and (0, 1) → cosine 1/√2 with a and b, 1 with c, 0 with d (no vector).
        Assert.That(HandData.Scores(m, d.Window, 0), Is.EqualTo(new[] { r, r, 1, 0 }).Within(1e-6f));
        Assert.That(HandData.Scores(m, d.Window, 1, 2), Is.All.EqualTo(0f), "no liked item, or only one without a vector: all ties at 0");
        var p = m.Predict(d.Data.Test);
        Assert.That(p[0], Is.EqualTo((float)m.Probability(1)).Within(1e-6f), "(u0, c)");
        Assert.That(p[1], Is.EqualTo((float)m.Probability(0)).Within(1e-6f), "(u1, b)");
        // Training rows: u0's like of b at t = 20 sees only a: cosine((1, 0), b) = 0.
        Assert.That(m.RawScore(0, 1, d.Window.Before(0, 20), false), Is.EqualTo(0).Within(1e-7));
        Assert.That(m.RawScore(0, 2, d.Window.Before(0, 20), false), Is.EqualTo(r).Within(1e-6));
    }

    [Test]
    public void CalibrationInterceptIsOptimalOnTheTrainingRows()
    {
        var d = Data();
        var m = ZeroShotTextBaseline.Fit(d.Window, Vectors());
        var p = m.Predict(d.Data.Train);   // the calibration rows: nothing was trained, nothing is left out
        double sum = 0;
        for (int k = 0; k < p.Length; k++) sum += p[k] - d.Data.Train.Labels[k];
        Assert.That(sum, Is.EqualTo(0).Within(1e-5));
    }

    [Test]
    public void VectorsMustCoverTheCatalogue()
    {
        var d = Data();
        TrainAssert.Throws<ArgumentException>(() => ZeroShotTextBaseline.Fit(d.Window, new ItemVectors("short", 3, 2, new float[6])), "vectors", "3 item vectors", "4 items");
        var m = ZeroShotTextBaseline.Fit(d.Window, Vectors());
        TrainAssert.Throws<ArgumentException>(() => m.ScoreItems(d.Window, [0, 1], new float[4]), "scores", "2 x 4");
    }
}
