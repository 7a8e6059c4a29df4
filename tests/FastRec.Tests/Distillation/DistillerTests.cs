// Distiller: each loss term against its definition, float64 finite differences of the whole loss, cache equivalence and bounds.
using FastRec.Engine.Distillation;
using FastRec.Engine.Model;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Tests.Model;
using static FastRec.Tests.Distillation.DistillTestUtil;

namespace FastRec.Tests.Distillation;

public class DistillerTests
{
    private static DistillOptions Opts(float lr = 0f, bool cache = true, float hidden = 0.7f, float attention = 0.4f) => new()
    {
        Alpha = 0.3f, Temperature = 2f, HiddenWeight = hidden, AttentionWeight = attention, Seed = 17, UseCache = cache,
        Optimizer = new AdamWOptions { Lr = lr, WeightDecay = 0.01f, MaxGradNorm = 1f },
    };

    private static readonly int[] Rows = [0, 1, 2, 3, 4];

    private static float[] Down(IBackend be, View<float> v) => Kernels.TestUtil.Download(be, v);
    private static double Sig(double z) => 1 / (1 + Math.Exp(-z));
    private static double Bce(double z, double y) => Math.Max(z, 0) - z * y + Math.Log(1 + Math.Exp(-Math.Abs(z)));

    [Test]
    public void EachLossTermIsItsDefinition()
    {
        using var be = new CpuSimdBackend();
        using var teacher = DistillTestUtil.Model(be, Bert(3), 1);
        using var student = DistillTestUtil.Model(be, Bert(2, C: 16), 2);
        var o = Opts();
        using var d = new Distiller(student, [teacher], o, exampleCount: 10);
        Assert.That(d.Projects, Is.True);
        Assert.That(d.HiddenPairs, Is.EqualTo(new[] { (0, 0), (1, 2), (2, 3) }), "TinyBERT map 2 <- 3 with embeddings (g(1) = round(1.5) = 2)");
        Assert.That(d.AttentionPairs, Is.EqualTo(new[] { (0, 1), (1, 2) }));
        var batch = Batch(Rows);
        var loss = d.Step(batch, Rows, 1);
        Assert.That(loss.TeacherRan, Is.True);

        // replay: lr = 0 left the student unchanged; the same (seed, step) gives the same dropout
        int B = batch.B, T = batch.T, NH = 4, Cs = 16, Ct = 32;
        var n = Enumerable.Range(0, B).Select(b => Enumerable.Range(0, T).Count(t => batch.AttentionMask[b * T + t] == 1f)).ToArray();
        teacher.ForwardTaps(batch, training: false);
        var tz = Down(be, teacher.TapLogits);
        var th = d.HiddenPairs.Select(p => Down(be, teacher.TapHidden(p.Teacher))).ToArray();
        var tp = d.AttentionPairs.Select(p => Down(be, teacher.TapAttentionProbs(p.Teacher))).ToArray();
        student.ForwardTaps(batch, training: true, o.Seed, 1);
        var sz = Down(be, student.TapLogits);
        var sh = d.HiddenPairs.Select(p => Down(be, student.TapHidden(p.Student))).ToArray();
        var sp = d.AttentionPairs.Select(p => Down(be, student.TapAttentionProbs(p.Student))).ToArray();
        var proj = d.ProjectionParameters();

        double hard = 0, soft = 0;
        for (int b = 0; b < B; b++)
        {
            hard += Bce(sz[b], batch.Labels[b]) / B;
            soft += Bce(sz[b] / 2.0, Sig(tz[b] / 2.0)) / B;
        }
        Assert.That(loss.Hard, Is.EqualTo((1 - 0.3) * hard).Within(1e-5).Percent.Or.EqualTo((1 - 0.3) * hard).Within(1e-6), "hard");
        Assert.That(loss.Soft, Is.EqualTo(0.3 * 4 * soft).Within(1e-4).Percent, "soft = α·T²·BCE(σ(t/T), s/T)");

        double hid = 0;
        int nTok = n.Sum();
        for (int k = 0; k < 3; k++)
            for (int b = 0; b < B; b++)
                for (int t = 0; t < n[b]; t++)
                    for (int j = 0; j < Ct; j++)
                    {
                        double y = proj[Ct * Cs + j];
                        for (int i = 0; i < Cs; i++) y += proj[j * Cs + i] * sh[k][(b * T + t) * Cs + i];
                        double diff = y - th[k][(b * T + t) * Ct + j];
                        hid += diff * diff;
                    }
        hid *= 0.7 / 3 / (nTok * Ct);
        Assert.That(loss.Hidden, Is.EqualTo(hid).Within(1e-3).Percent, "hidden = w·mean_m mean_valid (proj(h_s) − h_t)²");

        double att = 0;
        long pairs = n.Sum(x => (long)x * x);
        for (int k = 0; k < 2; k++)
            for (int b = 0; b < B; b++)
                for (int h = 0; h < NH; h++)
                    for (int i = 0; i < n[b]; i++)
                        for (int j = 0; j < n[b]; j++)
                        {
                            int at = ((b * NH + h) * T + i) * T + j;
                            double diff = sp[k][at] - tp[k][at];
                            att += diff * diff;
                        }
        att *= 0.4 / 2 / (NH * pairs);
        Assert.That(loss.Attention, Is.EqualTo(att).Within(1e-3).Percent, "attention = w·mean_m mean over valid (query, key) of every head");
        Assert.That(loss.Total, Is.EqualTo(loss.Hard + loss.Soft + loss.Hidden + loss.Attention).Within(1e-6));
        Assert.That(hid, Is.GreaterThan(1e-4)); Assert.That(att, Is.GreaterThan(1e-6)); // the terms are not vacuous
    }

    /// <summary>The whole distillation loss in float64: student and projection gradients vs central differences.</summary>
    [Test]
    public void GradientsOfTheWholeLossMatchFiniteDifferencesInFloat64()
    {
        var be = new Float64Backend();
        using var teacher = DistillTestUtil.Model(be, Bert(3), 1);
        using var student = DistillTestUtil.Model(be, Bert(2, C: 16), 2);
        using var d = new Distiller(student, [teacher], Opts(), exampleCount: 10);
        var batch = Batch(Rows);
        double Loss() { d.Step(batch, Rows, 1); double s = 0; foreach (var x in be.Data(d.LastLossSlots)) s += x; return s; }
        Loss();
        var grads = be.Data(student.Grads.All).ToArray();
        var (pw, pg) = d.Projection!.Value;
        var projGrads = be.Data(pg.All).ToArray();
        var p = be.Data(student.Params.All);
        const double h = 1e-5;
        var failures = new List<string>();
        var used = batch.InputIds.Where((id, i) => batch.AttentionMask[i] == 1f).Distinct().ToArray();
        int checkedCount = 0;
        foreach (var t in student.Layout.Tensors)
        {
            for (int k = 0; k < 4; k++)
            {
                ulong r = Rng.Hash(5, (ulong)(t.Offset * 4 + k));
                int i = t.Name == "embeddings.word_embeddings.weight" ? used[(int)(r % (ulong)used.Length)] * 16 + (int)((r >> 32) % 16)
                      : t.Name == "embeddings.position_embeddings.weight" ? (int)(r % (ulong)(batch.T * 16)) : (int)(r % (ulong)t.Length);
                int gi = t.Offset + i;
                double orig = p[gi];
                p[gi] = orig + h; double lp = Loss();
                p[gi] = orig - h; double lm = Loss();
                p[gi] = orig;
                double fd = (lp - lm) / (2 * h);
                if (!(Math.Abs(fd - grads[gi]) <= 1e-8 + 1e-5 * Math.Abs(fd))) failures.Add($"{t.Name}[{i}]: analytic {grads[gi]:E6}, fd {fd:E6}");
                checkedCount++;
            }
        }
        var pp = be.Data(pw.All);
        for (int k = 0; k < 12; k++)
        {
            int i = (int)(Rng.Hash(6, (ulong)k) % (ulong)pp.Length);
            double orig = pp[i];
            pp[i] = orig + h; double lp = Loss();
            pp[i] = orig - h; double lm = Loss();
            pp[i] = orig;
            double fd = (lp - lm) / (2 * h);
            if (!(Math.Abs(fd - projGrads[i]) <= 1e-8 + 1e-5 * Math.Abs(fd))) failures.Add($"projection[{i}]: analytic {projGrads[i]:E6}, fd {fd:E6}");
        }
        Assert.That(failures, Is.Empty, $"{failures.Count} of {checkedCount + 12} gradients differ:\n" + string.Join("\n", failures.Take(20)));
    }

    /// <summary>Trains 3 epochs of 3 batches; returns the student's parameters and how often the teacher ran.</summary>
    private static (float[] Params, int TeacherRuns, string Cache) Train(DistillOptions o, bool shuffle)
    {
        using var be = new CpuSimdBackend();
        using var teacher = DistillTestUtil.Model(be, Bert(3), 1);
        using var student = DistillTestUtil.Model(be, Bert(2, C: 16), 2);
        using var d = new Distiller(student, [teacher], o, exampleCount: 12);
        int runs = 0, step = 0;
        for (int epoch = 0; epoch < 3; epoch++)
        {
            var order = Enumerable.Range(0, 12).ToArray();
            if (shuffle && epoch > 0) order = order.OrderBy(i => Rng.Hash((ulong)epoch, (ulong)i)).ToArray();
            for (int s = 0; s < 12; s += 4)
            {
                var rows = order[s..(s + 4)];
                if (d.Step(Batch(rows), rows, ++step).TeacherRan) runs++;
            }
        }
        return (Params(student), runs, d.Cache?.Describe() ?? "");
    }

    [Test]
    public void TheCacheChangesNothingButTheTeachersWork([Values] bool shuffle)
    {
        var (without, runsWithout, _) = Train(Opts(lr: 1e-3f, cache: false), shuffle);
        var (with, runsWith, describe) = Train(Opts(lr: 1e-3f, cache: true), shuffle);
        Assert.That(runsWithout, Is.EqualTo(9));
        Assert.That(runsWith, Is.EqualTo(3), "the teacher runs in the first epoch only");
        Assert.That(describe, Does.Contain("12 examples in memory").And.Contain("0 refused"));
        if (!shuffle) Assert.That(with, Is.EqualTo(without), "same batches: bit-identical students");
        else Assert.That(Kernels.TestUtil.MaxRelError(with, without), Is.LessThan(1e-5),
            "reshuffled batches (other padding): teacher outputs cached from other batch shapes agree to rounding");
    }

    [Test]
    public void ABoundedCacheRefusesOrSpillsAndSaysSo()
    {
        var logR = new List<string>();
        var (refusedParams, runsR, describeR) = Train(Opts(lr: 1e-3f) with { CacheBudgetBytes = 20_000, Log = logR.Add }, false);
        Assert.That(logR, Has.Some.Contains("budget").And.Some.Contains("re-run"));
        Assert.That(describeR, Does.Match(@"[1-9]\d* refused"));
        Assert.That(runsR, Is.GreaterThan(3), "batches with refused examples run the teacher again");

        string dir = Path.Combine(Path.GetTempPath(), "fastrec-spill-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var logS = new List<string>();
            var (spilledParams, runsS, describeS) = Train(Opts(lr: 1e-3f) with { CacheBudgetBytes = 20_000, SpillDirectory = dir, Log = logS.Add }, false);
            Assert.That(logS, Has.Some.Contains("spill").And.Some.Contains(dir));
            Assert.That(describeS, Does.Match(@"[1-9]\d* spilled"));
            Assert.That(runsS, Is.EqualTo(3), "spilled entries are read back");
            Assert.That(spilledParams, Is.EqualTo(refusedParams), "memory, spill file and recomputation give the same teacher outputs");
            Assert.That(Directory.GetFiles(dir), Is.Empty, "the spill file is deleted on dispose");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void AnEnsembleDistilsTheAverageLogit()
    {
        using var be = new CpuSimdBackend();
        using var t1 = DistillTestUtil.Model(be, Bert(2), 1);
        using var t2 = DistillTestUtil.Model(be, Bert(3, C: 16), 2);
        using var student = DistillTestUtil.Model(be, Bert(1, C: 16), 3);
        var o = Opts(hidden: 0, attention: 0);
        using var d = new Distiller(student, [t1, t2], o, exampleCount: 10);
        var batch = Batch(Rows);
        var loss = d.Step(batch, Rows, 1);
        var z1 = t1.Forward(batch); var z2 = t2.Forward(batch);
        var sz = student.Forward(batch, training: true, o.Seed, 1);
        double soft = 0;
        for (int b = 0; b < batch.B; b++) soft += Bce(sz[b] / 2.0, Sig((z1[b] + z2[b]) / 2 / 2.0)) / batch.B;
        Assert.That(loss.Soft, Is.EqualTo(0.3 * 4 * soft).Within(1e-4).Percent);
        Assert.That(loss.Hidden, Is.Zero); Assert.That(loss.Attention, Is.Zero);
    }

    [Test]
    public void BadSetupsAreRefusedWithTheReason()
    {
        using var be = new CpuSimdBackend();
        using var teacher = DistillTestUtil.Model(be, Bert(2), 1);
        using var other = DistillTestUtil.Model(be, Bert(2), 4);
        using var deep = DistillTestUtil.Model(be, Bert(3, C: 16), 2);
        Assert.That(() => new Distiller(deep, [teacher], Opts(), 10), Throws.ArgumentException.With.Message.Contains("more layers"));
        Assert.That(() => new Distiller(deep, [teacher, other], Opts(hidden: 1, attention: 0), 10),
            Throws.ArgumentException.With.Message.Contains("single teacher"));
        Assert.That(() => new Distiller(deep, [], Opts(), 10), Throws.ArgumentException.With.Message.Contains("teacher"));
        Assert.That(() => new Distiller(deep, [teacher], Opts() with { Alpha = 1.5f }, 10),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("Alpha"));
        Assert.That(() => new Distiller(deep, [teacher], Opts() with { Temperature = 0f }, 10),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("Temperature"));
        var bert1 = Bert(1); bert1.NumAttentionHeads = 2;
        using var student2h = new RecModel(be, bert1, Head());
        Assert.That(() => new Distiller(student2h, [teacher], Opts(hidden: 0, attention: 1), 10),
            Throws.ArgumentException.With.Message.Contains("heads"));

        using var student = DistillTestUtil.Model(be, Bert(1), 3);
        using var d = new Distiller(student, [teacher], Opts(), 10);
        var batch = Batch(Rows);
        Assert.That(() => d.Step(batch, [0, 1], 1), Throws.ArgumentException.With.Message.Contains("ids"));
        var holey = Batch(Rows);
        holey.AttentionMask[1] = 0f;  // row 0: 1 0 1 ...
        Assert.That(() => d.Step(holey, Rows, 1), Throws.ArgumentException.With.Message.Contains("right-padded"));
        Assert.That(() => d.Step(batch, Rows, 0), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("step"));
        Assert.That(() => d.Step(Batch(Rows).WithoutLabels(), Rows, 1), Throws.ArgumentException.With.Message.Contains("labels"));
    }

    [Test]
    public void AStudentLearnsTheTeachersRule()
    {
        using var be = new CpuSimdBackend();
        using var teacher = new RecModel(be, Bert(2, dropout: 0), Head());
        teacher.InitRandom(11);
        var train = Enumerable.Range(0, 96).ToArray();
        var test = Enumerable.Range(200, 96).ToArray();
        var opt = new AdamWOptions { Lr = 2e-3f, WeightDecay = 0f };
        int step = 0;
        for (int epoch = 0; epoch < 12; epoch++)
            for (int s = 0; s < train.Length; s += 16)
            {
                teacher.ZeroGrad();
                teacher.ForwardBackward(Batch(train[s..(s + 16)]), 1, ++step);
                teacher.Step(opt, step);
            }
        var testBatch = Batch(test);
        double teacherAuc = Auc(teacher.Forward(testBatch), testBatch.Labels);
        Assert.That(teacherAuc, Is.GreaterThan(0.9), "the teacher learned the rule (else the test checks nothing)");

        using var student = new RecModel(be, Student.Derive(teacher.Bert, new StudentConfig { Layers = 1, Hidden = 16 }), Head());
        student.InitRandom(12);
        double before = Auc(student.Forward(testBatch), testBatch.Labels);
        var o = Opts(lr: 2e-3f, hidden: 0.5f, attention: 0.5f) with { Alpha = 0.7f, Optimizer = opt };
        using var d = new Distiller(student, [teacher], o, exampleCount: 96);
        step = 0;
        for (int epoch = 0; epoch < 12; epoch++)
            for (int s = 0; s < train.Length; s += 16)
                d.Step(Batch(train[s..(s + 16)]), train[s..(s + 16)], ++step);
        double after = Auc(student.Forward(testBatch), testBatch.Labels);
        Assert.That(after, Is.GreaterThan(0.85), $"distilled student AUC (teacher {teacherAuc:F3}, untrained {before:F3})");
    }
}

internal static class BatchExtensions
{
    public static RecBatch WithoutLabels(this RecBatch b) { b.Labels = []; return b; }
}
