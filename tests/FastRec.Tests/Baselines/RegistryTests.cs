// The existing baselines as full-ranking scorers (popularity, bias, history-feature logistic) and StrongBaselines.FitAll.
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Representations;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Training;

namespace FastRec.Tests.Baselines;

public class RegistryTests
{
    private static float Sigmoid(double z) => (float)(1 / (1 + Math.Exp(-z)));

    [Test]
    public void PopularityAndBiasRankWhatTheyPredict()
    {
        var d = ItemKnnTests.Data();
        var pop = PopularityBaseline.Fit(d.Data.Train, smoothing: 2);
        // Item b: 3 of 3 training rows positive; prior 7/8.
        double prior = 7.0 / 8;
        var rows = HandData.Scores(pop, d.Window, 0, 3);
        Assert.That(rows[1], Is.EqualTo((float)((3 + 2 * prior) / (3 + 2))).Within(1e-7f));
        Assert.That(rows[4..], Is.EqualTo(rows[..4]), "the same ranking for every user");
        Assert.That(rows[1], Is.EqualTo(pop.Predict(d.Data.Test)[0]), "the score of (u3, b) is its prediction");

        var bias = BiasBaseline.Fit(d.Data.Train);
        var logits = HandData.Scores(bias, d.Window, 3, 0);
        var p = bias.Predict(d.Data.Test);   // (u3, b), (u0, d)
        Assert.That(Sigmoid(logits[1]), Is.EqualTo(p[0]).Within(1e-6f));
        Assert.That(Sigmoid(logits[4 + 3]), Is.EqualTo(p[1]).Within(1e-6f));
    }

    [Test]
    public void HistoryLogisticScoresItemsWithFeaturesAtTheStartOfTheTestWindow()
    {
        var d = ItemKnnTests.Data(historyFeatures: true);
        var model = DenseLogisticBaseline.Fit(d.Data.Train);
        var h = new HistoryLogisticBaseline(model);
        // Before the test window: 9 rows, 8 positive → g = 9/11. u0: 3 rows, 3 positive; item d: 1 row, 0 positive.
        double g = 9.0 / 11, a = HistoryFeatures.DefaultAlpha;
        float[] row = [(float)((3 + a * g) / (3 + a)), (float)Math.Log(4), (float)(a * g / (1 + a)), (float)Math.Log(2)];
        var s = HandData.Scores(h, d.Window, 0);
        Assert.That(s[3], Is.EqualTo((float)model.Logit(row)).Within(1e-6f));
        // The first test row (u3, b) has exactly these features in its dense row: the same logit as Predict.
        var test = d.Data.Test;
        Assert.That(HandData.Scores(h, d.Window, 3)[1], Is.EqualTo((float)model.Logit(test.DenseRow(0))).Within(1e-6f));
        Assert.That(Sigmoid(model.Logit(test.DenseRow(1))), Is.EqualTo(model.Predict(test)[1]).Within(1e-6f));
        Assert.That(h.Predict(test), Is.EqualTo(model.Predict(test)));
        TrainAssert.Throws<ArgumentException>(() => model.Logit([1f, 2f]), "dense", "4 features", "has 2");
        var other = DenseLogisticBaseline.Fit("x only", ["x"], [0f, 1f], [0f, 1f], []);
        TrainAssert.Throws<ArgumentException>(() => new HistoryLogisticBaseline(other), "[x]", "not exactly the history features");
    }

    [Test]
    public void FitAllFitsEveryBaselineInOrder()
    {
        var d = ItemKnnTests.Data(historyFeatures: true);
        using var backend = new CpuSimdBackend();
        var vectors = new ItemVectors("hand", 4, 2, [1, 0, 0, 1, 1, 1, 0, 0]);
        var options = new StrongBaselineOptions { Bpr = new BprOptions { Dim = 4, Epochs = 2 } };
        var all = StrongBaselines.FitAll(d.Window, d.Data.Train, d.Data.Validation, backend, vectors, options);
        Assert.That(all.Select(f => f.Name), Is.EqualTo(new[]
            { "most popular", "recently popular", "popularity", "user+item bias", "history-feature logistic", "ItemKNN", "BPR-MF", "zero-shot text (hand)" }));
        Assert.That(all.Select(f => f.FitSeconds), Is.All.GreaterThanOrEqualTo(0));
        Assert.That(double.IsNaN(all[0].ValidationAuc), "one validation row: AUC undefined");
        foreach (var f in all)
        {
            var p = f.Model.Predict(d.Data.Test);
            Assert.That(p, Is.All.InRange(0f, 1f), f.Name);
            Assert.That(HandData.Scores(f.Model, d.Window, 0, 1, 2, 3).All(float.IsFinite), f.Name);
        }
        var plain = ItemKnnTests.Data();
        var fewer = StrongBaselines.FitAll(plain.Window, plain.Data.Train, plain.Data.Validation, backend, null, options);
        Assert.That(fewer.Select(f => f.Name), Is.EqualTo(new[] { "most popular", "recently popular", "popularity", "user+item bias", "ItemKNN", "BPR-MF" }),
            "no history features, no text vectors");
        TrainAssert.Throws<ArgumentException>(() => StrongBaselines.FitAll(d.Window, plain.Data.Train, d.Data.Validation, backend), "do not share the window's users");
    }

    [Test]
    public void ItemKnnIsTunedOnTheValidationWindowNeverOnTest()
    {
        // u0..u5 like item 0 and, by taste group, item 1 or 2 in training; in validation each likes its group's other item
        // (3 or 4), which only a neighbourhood over co-likes finds; the test split holds the opposite pattern, so a tuner
        // that peeked at test would choose differently.
        var rows = new List<Evaluation.Row>();
        for (int u = 0; u < 12; u++)
        {
            int g = u % 2;
            rows.Add(Evaluation.EvalTestUtil.Train($"u{u}", 0));
            rows.Add(Evaluation.EvalTestUtil.Train($"u{u}", 1 + g));
            if (u < 8) rows.Add(Evaluation.EvalTestUtil.Train($"u{u}", 3 + g));
            rows.Add(Evaluation.EvalTestUtil.Val($"u{u}", u < 8 ? 5 + g : 3 + g));
            rows.Add(Evaluation.EvalTestUtil.Test($"u{u}", 5 + (1 - g)));
        }
        var data = Evaluation.EvalTestUtil.Dataset(8, rows);
        var window = FastRec.Engine.Evaluation.EvalWindow.FromDataset(data);
        var vw = FastRec.Engine.Evaluation.EvalWindow.ForValidation(data.Catalog, data.Train, data.Validation);
        Assert.That(vw.TestUsers.Length, Is.EqualTo(12), "every user has a validation positive");
        Assert.That(vw.HistoryBeforeTest(vw.TestUsers[0]).Parts.ToArray(), Is.All.EqualTo(FastRec.Engine.Evaluation.SplitPart.Train));
        (int, double)[] grid = [(1, 10), (2, 0.5), (8, 0.5)];
        var chosen = StrongBaselines.TuneKnn(window, data.Train, data.Validation, grid);
        double Ndcg((int K, double S) g) => FastRec.Engine.Evaluation.FullRanking.Evaluate(vw, ItemKnnBaseline.Fit(vw, g.K, g.S),
            new FastRec.Engine.Evaluation.FullRankingOptions { Ks = [10], SampledNegatives = 0 }).Overall.Ndcg[0];
        var values = grid.Select(Ndcg).ToArray();
        Assert.That(values.Distinct().Count(), Is.GreaterThan(1), $"the grid must matter here: {string.Join(", ", values)}");
        var expected = grid.MaxBy(Ndcg);
        Assert.That(chosen, Is.EqualTo(expected));
        using var backend = new CpuSimdBackend();
        var knn = (ItemKnnBaseline)StrongBaselines.FitAll(window, data.Train, data.Validation, backend,
            options: new StrongBaselineOptions { KnnGrid = grid, Bpr = new BprOptions { Dim = 2, Epochs = 1 } }).Single(f => f.Name == "ItemKNN").Model;
        Assert.That((knn.Neighbours, knn.Shrink), Is.EqualTo(expected));
        TrainAssert.Throws<ArgumentException>(() => StrongBaselines.TuneKnn(window, data.Train, data.Validation, []), "grid is empty");
    }
}
