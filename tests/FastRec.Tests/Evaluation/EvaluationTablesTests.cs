// Evaluation tables: markdown and aligned console text for full ranking, sampled ranking, slices and lifts; "n/a", never NaN.
using FastRec.Cli.Reporting;
using FastRec.Engine.Evaluation;
using FastRec.Tests.Data;
using static FastRec.Tests.Evaluation.EvalTestUtil;

namespace FastRec.Tests.Evaluation;

public class EvaluationTablesTests
{
    // One user, 6 items, no history; relevant {1}. "good" puts it first, "flat" ties everything.
    private static (FullRankingResult Good, FullRankingResult Flat) Results(int sampled = 100)
    {
        var w = Window(6, [.. Filler(), Test("a", 1), Test("a", 2, 0)]);
        var options = new FullRankingOptions { Ks = [1, 3], SampledNegatives = sampled };
        return (FullRanking.Evaluate(w, new FixedScorer("good", (_, i) => i == 1 ? 1 : 0), options),
                FullRanking.Evaluate(w, new FixedScorer("flat", (_, _) => 0), options));
    }

    [Test]
    public void FullRankingMarkdown()
    {
        var (good, flat) = Results();
        string t = EvaluationTables.FullRankingTable([good, flat], TableFormat.Markdown);
        TestContext.Out.WriteLine(t);
        Assert.That(t, Does.Contain("| model | HR@1 | HR@3 | Recall@1 | Recall@3 | NDCG@1 | NDCG@3 | MRR | users |"));
        Assert.That(t, Does.Contain("|---|---:|---:|---:|---:|---:|---:|---:|---:|"));
        Assert.That(t, Does.Contain("| good | 1.0000 | 1.0000 | 1.0000 | 1.0000 | 1.0000 | 1.0000 | 1.0000 | 1 |"));
        // flat: HR@1 = 1/6, HR@3 = 1/2, MRR = H_6 / 6 = 0.4083.
        Assert.That(t, Does.Contain("| flat | 0.1667 | 0.5000 | 0.1667 | 0.5000 |"));
        Assert.That(t, Does.Contain("| 0.4083 | 1 |"));
        Assert.That(t, Does.Contain("**Sampled ranking (each positive among 100 sampled negatives; not full ranking)**"));
        Assert.That(t, Does.Contain("| model | HR@10 | NDCG@10 | pairs |"));
        Assert.That(t, Does.Contain("| good | 1.0000 | 1.0000 | 1 |"));
        Assert.That(t, Does.Contain("\n- sampled metrics: each relevant item ranked among 100 negatives"));
        Assert.That(t, Does.Not.Contain("NaN"));
    }

    [Test]
    public void ConsoleTablesAreAligned()
    {
        var (good, flat) = Results(sampled: 0);
        string t = EvaluationTables.FullRankingTable([good, flat], TableFormat.Console);
        TestContext.Out.WriteLine(t);
        Assert.That(t, Does.Not.Contain("Sampled"));
        var lines = t.Split('\n').Skip(1).Take(4).ToArray(); // header, rule, two rows
        Assert.That(lines[0], Does.StartWith("model    HR@1"));
        Assert.That(lines[1], Does.StartWith("-----  ------"));
        Assert.That(lines.Select(l => l.Length).Distinct().Count(), Is.EqualTo(1), "every line of the table has the same width");
        Assert.That(lines[2], Does.StartWith("good   1.0000"));
        Assert.That(lines[3], Does.EndWith("  1"));
    }

    [Test]
    public void LiftTable()
    {
        var rows = new[] { new LiftRow("bert", "popularity", "AUC", new Lift(0.0123, 0.005, 0.019)), new LiftRow("bert", "popularity", "NDCG@10", new Lift(0.001, -0.003, 0.005)) };
        string md = EvaluationTables.LiftTable(rows, TableFormat.Markdown);
        Assert.That(md, Does.Contain("| model | baseline | metric | lift |"));
        Assert.That(md, Does.Contain("| bert | popularity | AUC | lift +0.0123 [+0.0050, +0.0190] |"));
        Assert.That(md, Does.Contain("| bert | popularity | NDCG@10 | no significant lift (+0.0010 [-0.0030, +0.0050]) |"));
        string console = EvaluationTables.LiftTable(rows, TableFormat.Console);
        Assert.That(console, Does.Contain("bert   popularity  AUC      lift +0.0123 [+0.0050, +0.0190]"));
    }

    [Test]
    public void NotAvailableForNaN()
    {
        Assert.That(EvaluationTables.Num(double.NaN), Is.EqualTo("n/a"));
        Assert.That(EvaluationTables.Num(0.12345), Is.EqualTo("0.1235"));
        var (good, _) = Results(sampled: 0);
        var summaries = new[] { good.Overall, good.Overall with { Name = "empty", Ndcg = [double.NaN, double.NaN], HitRate = [double.NaN, double.NaN], Users = 0 } };
        string t = EvaluationTables.RankingSliceTable([("good", summaries)], TableFormat.Markdown);
        Assert.That(t, Does.Contain("| empty | 0 | n/a | n/a |"));
    }

    [Test]
    public void MismatchedModelsAreErrors()
    {
        var (good, _) = Results();
        var w = Window(6, [.. Filler(), Test("a", 1)]);
        var other = FullRanking.Evaluate(w, new FixedScorer("k5", (_, _) => 0), new FullRankingOptions { Ks = [5] });
        DataAssert.Throws<ArgumentException>(() => EvaluationTables.FullRankingTable([good, other], TableFormat.Markdown), "'k5' was evaluated at K = 5 but 'good' at 1, 3");
        DataAssert.Throws<ArgumentException>(() => EvaluationTables.SampledTable([Results(0).Good], TableFormat.Markdown), "no result holds the sampled variant");
        DataAssert.Throws<ArgumentException>(() => EvaluationTables.LiftTable([], TableFormat.Markdown), "no lifts");
        var a = new SliceMetrics("all", SliceKind.All, 2, 1, 1, 1, double.NaN, 0, 0.1);
        DataAssert.Throws<ArgumentException>(() => EvaluationTables.SliceTable([("m1", [a]), ("m2", [a, a with { Name = "cold" }])], TableFormat.Console),
            "'m2' has slices [all, cold] but 'm1' has [all]");
    }
}
