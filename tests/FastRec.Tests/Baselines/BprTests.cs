// BPR-MF: planted blocks recovered, deterministic per seed, new users get the item bias, device-memory path, bad options.
using FastRec.Engine.Baselines;
using FastRec.Engine.Evaluation;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Training;

namespace FastRec.Tests.Baselines;

public class BprTests
{
    private const int Groups = 4, UsersPerGroup = 10, ItemsPerGroup = 6, Trained = 4;
    private const int NewUser = Groups * UsersPerGroup;

    /// <summary>4 user groups x 4 item groups: each user likes <see cref="Trained"/> of their group's 6 items in training;
    /// the other 2 are held out (test rows). User 40 only has a validation like.</summary>
    private static (HandData Data, List<(int U, int I)> HeldOut) Blocks()
    {
        var rnd = new Random(7);
        var train = new List<(int, int, float)>();
        var test = new List<(int, int, float)>();
        var heldOut = new List<(int U, int I)>();
        for (int u = 0; u < NewUser; u++)
        {
            int g = u / UsersPerGroup;
            var items = Enumerable.Range(g * ItemsPerGroup, ItemsPerGroup).OrderBy(_ => rnd.Next()).ToArray();
            foreach (int i in items[..Trained]) train.Add((u, i, 1));
            foreach (int i in items[Trained..]) { test.Add((u, i, 1)); heldOut.Add((u, i)); }
        }
        var shuffled = train.OrderBy(_ => rnd.Next()).ToArray();
        return (HandData.Build(NewUser + 1, Groups * ItemsPerGroup, shuffled, [(NewUser, 0, 1)], [.. test]), heldOut);
    }

    private static readonly BprOptions Small = new() { Dim = 8, Epochs = 60, BatchSize = 8, LearningRate = 0.05f, L2 = 0.05f, Seed = 3 };

    [Test]
    public void RecoversPlantedBlocks()
    {
        var (d, heldOut) = Blocks();
        using var backend = new CpuSimdBackend();
        var m = BprBaseline.Fit(d.Window, backend, Small);
        Assert.That(m.EpochLosses[^1], Is.LessThan(m.EpochLosses[0] * 0.5), "the BPR loss falls");
        // AUC over held-out pairs: a user's held-out group item against every item of another group.
        int V = d.Window.ItemCount;
        var scores = HandData.Scores(m, d.Window, Enumerable.Range(0, NewUser).ToArray());
        double wins = 0; long pairs = 0;
        foreach (var (u, i) in heldOut)
            for (int j = 0; j < V; j++)
            {
                if (j / ItemsPerGroup == u / UsersPerGroup) continue;
                float si = scores[u * V + i], sj = scores[u * V + j];
                wins += si > sj ? 1 : si == sj ? 0.5 : 0; pairs++;
            }
        double auc = wins / pairs;
        TestContext.Out.WriteLine($"held-out pair AUC {auc:0.0000}");
        Assert.That(auc, Is.GreaterThan(0.95));
        // The same score through Predict's raw score.
        Assert.That(m.RawScore(0, heldOut[0].I, default, false), Is.EqualTo(scores[heldOut[0].I]).Within(1e-5));
    }

    [Test]
    public void DeterministicForASeedAndNewUsersGetTheItemBias()
    {
        var (d, _) = Blocks();
        using var backend = new CpuSimdBackend();
        var a = BprBaseline.Fit(d.Window, backend, Small with { Epochs = 5 });
        var b = BprBaseline.Fit(d.Window, backend, Small with { Epochs = 5 });
        var c = BprBaseline.Fit(d.Window, backend, Small with { Epochs = 5, Seed = 4 });
        Assert.That(TrainAssert.BitEqual(a.ItemBias, b.ItemBias) && TrainAssert.BitEqual(a.ItemVector(3), b.ItemVector(3)), "same seed, same model");
        Assert.That(a.EpochLosses, Is.EqualTo(b.EpochLosses));
        Assert.That(TrainAssert.BitEqual(a.ItemVector(3), c.ItemVector(3)), Is.False, "another seed, another model");
        Assert.That(a.UserVector(NewUser).ToArray(), Is.All.EqualTo(0f), "no training like, no embedding");
        Assert.That(HandData.Scores(a, d.Window, NewUser), Is.EqualTo(a.ItemBias.ToArray()), "a new user's scores are the item biases");
        var p = a.Predict(d.Data.Test);
        Assert.That(p, Is.All.InRange(0f, 1f));
        int k = 0;
        Assert.That(p[k], Is.EqualTo((float)a.Probability(a.RawScore(d.Data.Test.Users[k], d.Data.Test.Items[k], default, false))).Within(1e-6f));
    }

    [Test]
    public void DeviceMemoryBackendsTrainTheSameModelThroughHostCopies()
    {
        // ILGPU's CPU accelerator holds device memory (no host span): parameters are downloaded and gradients uploaded
        // each step. The same AdamW arithmetic in another order: equal up to rounding after a few steps.
        var (d, _) = Blocks();
        using var cpu = new CpuSimdBackend();
        using var ilgpu = FastRec.Kernels.Gpu.IlgpuBackend.CreateCpuAccelerator();
        var o = Small with { Epochs = 2, CalibrationFraction = 0 };
        var a = BprBaseline.Fit(d.Window, cpu, o);
        var b = BprBaseline.Fit(d.Window, ilgpu, o);
        Assert.That(b.ItemBias.ToArray(), Is.EqualTo(a.ItemBias.ToArray()).Within(1e-4f));
        Assert.That(b.ItemVector(5).ToArray(), Is.EqualTo(a.ItemVector(5).ToArray()).Within(1e-4f));
        Assert.That(b.ItemBias.ToArray().Any(x => Math.Abs(x) > 1e-3), "the biases moved away from 0");
    }

    [Test]
    public void CalibrationIsCrossFittedOnTheTrainingTail()
    {
        var (d, _) = Blocks();
        using var backend = new CpuSimdBackend();
        // Only likes in training: the calibration rows (the last 10 %) are all positive, so it predicts high probabilities.
        var m = BprBaseline.Fit(d.Window, backend, Small with { Epochs = 5 });
        Assert.That(m.Probability(0), Is.GreaterThan(0.9));
        var inSample = BprBaseline.Fit(d.Window, backend, Small with { Epochs = 5, CalibrationFraction = 0 });
        Assert.That(TrainAssert.BitEqual(m.ItemBias, inSample.ItemBias), "the final model does not depend on the calibration");
    }

    [Test]
    public void BadBprOptionsAreRefused()
    {
        var (d, _) = Blocks();
        using var backend = new CpuSimdBackend();
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => BprBaseline.Fit(d.Window, backend, new BprOptions { Dim = 0 }), "Dim must be >= 1");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => BprBaseline.Fit(d.Window, backend, new BprOptions { Epochs = 0 }), "Epochs");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => BprBaseline.Fit(d.Window, backend, new BprOptions { BatchSize = 0 }), "BatchSize");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => BprBaseline.Fit(d.Window, backend, new BprOptions { LearningRate = float.NaN }), "LearningRate");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => BprBaseline.Fit(d.Window, backend, new BprOptions { L2 = -1 }), "L2");
        TrainAssert.Throws<ArgumentOutOfRangeException>(() => BprBaseline.Fit(d.Window, backend, new BprOptions { CalibrationFraction = 1 }), "CalibrationFraction");
        var noLikes = HandData.Build(2, 2, [(0, 0, 0), (1, 1, 0)], [(0, 1, 1)], [(1, 0, 1)]);
        TrainAssert.Throws<ArgumentException>(() => BprBaseline.Fit(noLikes.Window, backend, new BprOptions { CalibrationFraction = 0 }), "no positive");
        var m = BprBaseline.Fit(d.Window, backend, Small with { Epochs = 1 });
        var other = EvalWindow.FromDataset(Blocks().Data.Data);
        TrainAssert.Throws<ArgumentException>(() => m.ScoreItems(other, [0], new float[other.ItemCount]), "not the ones the embeddings were trained for");
    }
}
