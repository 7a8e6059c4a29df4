// Student configuration, initialisation from every k-th teacher layer (bit-identical copies), and the TinyBERT layer map.
using FastRec.Engine.Distillation;
using FastRec.Engine.Model;
using FastRec.Kernels.Cpu;
using static FastRec.Tests.Distillation.DistillTestUtil;

namespace FastRec.Tests.Distillation;

public class StudentTests
{
    [Test]
    public void DeriveKeepsTheTeachersVocabularyAndChangesTheShape()
    {
        var t = Bert(4);
        var s = Student.Derive(t, new StudentConfig { Layers = 2 });
        Assert.That((s.NumHiddenLayers, s.HiddenSize, s.NumAttentionHeads, s.IntermediateSize), Is.EqualTo((2, 32, 4, 64)));
        Assert.That((s.VocabSize, s.MaxPositionEmbeddings, s.TypeVocabSize, s.AddPoolingLayer), Is.EqualTo((50, 16, 2, true)));
        var narrow = Student.Derive(t, new StudentConfig { Layers = 1, Hidden = 12 });
        Assert.That((narrow.HiddenSize, narrow.NumAttentionHeads, narrow.IntermediateSize), Is.EqualTo((12, 4, 48)), "heads: largest divisor <= 4; F = 4C");
        Assert.That(t.NumHiddenLayers, Is.EqualTo(4), "the teacher's config is not modified");
        Assert.That(() => Student.Derive(t, new StudentConfig { Layers = 0 }), Throws.TypeOf<InvalidDataException>().With.Message.Contains("Layers"));
        Assert.That(() => Student.Derive(t, new StudentConfig { Layers = 2, Hidden = 30, Heads = 4 }),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("Heads"));
    }

    [Test]
    public void EveryKthLayerAndTheUniformMap()
    {
        Assert.That(Student.EveryKth(12, 6), Is.EqualTo(new[] { 0, 2, 4, 6, 8, 10 }));
        Assert.That(Student.EveryKth(6, 3), Is.EqualTo(new[] { 0, 2, 4 }));
        Assert.That(Student.EveryKth(5, 2), Is.EqualTo(new[] { 0, 2 }));
        Assert.That(() => Student.EveryKth(2, 3), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("3 layers"));
        // TinyBERT 4 <- 12: g(m) = 3m; attention of student layer l <- teacher layer 3(l+1) - 1
        Assert.That(Enumerable.Range(0, 5).Select(m => LayerMap.Hidden(m, 4, 12)), Is.EqualTo(new[] { 0, 3, 6, 9, 12 }));
        Assert.That(Enumerable.Range(0, 4).Select(l => LayerMap.Attention(l, 4, 12)), Is.EqualTo(new[] { 2, 5, 8, 11 }));
        Assert.That(Enumerable.Range(0, 3).Select(m => LayerMap.Hidden(m, 2, 3)), Is.EqualTo(new[] { 0, 2, 3 }), "rounded");
    }

    [Test]
    public void CopiedLayersAreBitIdenticalToTheTeachers()
    {
        using var be = new CpuSimdBackend();
        using var teacher = DistillTestUtil.Model(be, Bert(4), 7);
        using var student = new RecModel(be, Student.Derive(teacher.Bert, new StudentConfig { Layers = 2 }), Head());
        var init = Student.InitializeFrom(student, teacher, seed: 3);
        Assert.That(init.LayerSources, Is.EqualTo(new[] { 0, 2 }));
        int layerTensors = 0;
        foreach (var p in student.Layout.Tensors)
        {
            string tName = p.Layer >= 0 && p.Layer < 2 ? $"encoder.layer.{init.LayerSources[p.Layer]}." + p.Name[$"encoder.layer.{p.Layer}.".Length..] : p.Name;
            Assert.That(student.GetParameter(p.Name), Is.EqualTo(teacher.GetParameter(tName)), $"{p.Name} <- {tName}");
            if (p.Layer is >= 0 and < 2) layerTensors++;
        }
        Assert.That(init.Copied, Has.Count.EqualTo(student.Layout.Tensors.Count), "every tensor copied");
        Assert.That(layerTensors, Is.EqualTo(2 * 16));
        Assert.That(init.Summary, Does.Contain("[0, 2]"));
    }

    [Test]
    public void ANarrowerStudentStartsFresh()
    {
        using var be = new CpuSimdBackend();
        using var teacher = DistillTestUtil.Model(be, Bert(4), 7);
        using var student = new RecModel(be, Student.Derive(teacher.Bert, new StudentConfig { Layers = 2, Hidden = 16 }), Head());
        using var fresh = new RecModel(be, student.Bert, Head());
        fresh.InitRandom(3);
        var init = Student.InitializeFrom(student, teacher, seed: 3);
        Assert.That(init.LayerSources, Is.All.EqualTo(-1));
        Assert.That(init.Copied, Is.Empty, "no tensor has the teacher's shape");
        Assert.That(Params(student), Is.EqualTo(Params(fresh)), "exactly the HF random initialisation of the seed");
        Assert.That(init.Summary, Does.Contain("fresh"));
    }
}
