// Bad batches, parameters and configurations: each asserts the exception type and that the message names the problem.
using FastRec.Engine.Model;
using FastRec.Kernels;
using FastRec.Kernels.Reference;
using static FastRec.Tests.Model.ModelTestUtil;

namespace FastRec.Tests.Model;

[TestFixture]
public class ModelBadInputTests
{
    private ReferenceBackend _backend = null!;
    private RecModel _model = null!;

    [SetUp]
    public void SetUp()
    {
        _backend = new ReferenceBackend();
        _model = new RecModel(_backend, TinyBert(), TinyHead());
        _model.InitRandom(1);
    }

    [TearDown] public void TearDown() { _model.Dispose(); _backend.Dispose(); }

    private static IEnumerable<TestCaseData> BadBatches()
    {
        TestCaseData Case(string name, Action<RecBatch> spoil, Type type, params string[] words)
            => new TestCaseData(spoil, type, words).SetName("BadBatch_" + name);
        yield return Case("InputIdsTooShort", b => b.InputIds = b.InputIds[..20], typeof(ShapeException), "InputIds", "(B=3, T=7) = 21", "got 20");
        yield return Case("TokenTypeIdsWrongLength", b => b.TokenTypeIds = new int[22], typeof(ShapeException), "TokenTypeIds", "21", "got 22");
        yield return Case("AttentionMaskWrongLength", b => b.AttentionMask = new float[7], typeof(ShapeException), "AttentionMask", "21", "got 7");
        yield return Case("TLongerThanPositions", b => { b.T = 17; b.InputIds = new int[51]; b.AttentionMask = new float[51]; b.TokenTypeIds = null; },
            typeof(ShapeException), "T = 17", "max_position_embeddings = 16");
        yield return Case("ZeroBatch", b => b.B = 0, typeof(ShapeException), "B must be positive", "got 0");
        yield return Case("DenseCountMismatch", b => b.Dense = new float[5], typeof(ShapeException), "Dense", "(B=3, D=2) = 6", "got 5");
        yield return Case("DenseMissing", b => b.Dense = null, typeof(ShapeException), "Dense", "got 0");
        yield return Case("DenseNotFinite", b => b.Dense![3] = float.NaN, typeof(ArgumentOutOfRangeException), "Dense[3]", "not finite");
        yield return Case("LabelsWrongLength", b => b.Labels = [1f, 0f], typeof(ShapeException), "Labels", "(B=3) = 3", "got 2");
        yield return Case("LabelAboveOne", b => b.Labels[1] = 1.5f, typeof(ArgumentOutOfRangeException), "Labels[1]", "1.5", "[0, 1]");
        yield return Case("LabelNaN", b => b.Labels[2] = float.NaN, typeof(ArgumentOutOfRangeException), "Labels[2]", "NaN");
        yield return Case("NegativeWeight", b => b.Weights![2] = -0.5f, typeof(ArgumentOutOfRangeException), "Weights[2]", "-0.5", ">= 0");
        yield return Case("AllZeroWeights", b => b.Weights = [0f, 0f, 0f], typeof(ArgumentOutOfRangeException), "Weights", "sum to 0");
        yield return Case("WeightsWrongLength", b => b.Weights = [1f], typeof(ShapeException), "Weights", "got 1");
        yield return Case("IdOutsideVocab", b => b.InputIds[8] = 50, typeof(ArgumentOutOfRangeException), "InputIds[8]", "b=1, t=1", "50", "vocab_size = 50");
        yield return Case("NegativeId", b => b.InputIds[0] = -1, typeof(ArgumentOutOfRangeException), "InputIds[0]", "-1");
        yield return Case("TypeIdOutsideTable", b => b.TokenTypeIds![4] = 2, typeof(ArgumentOutOfRangeException), "TokenTypeIds[4]", "type_vocab_size = 2");
        yield return Case("MaskNotBinary", b => b.AttentionMask[3] = 0.5f, typeof(ArgumentOutOfRangeException), "AttentionMask[3]", "0.5", "0 or 1");
        yield return Case("MaskRowEmpty", b => Array.Clear(b.AttentionMask, 7, 7), typeof(ArgumentOutOfRangeException), "AttentionMask row b=1");
    }

    [TestCaseSource(nameof(BadBatches))]
    public void ForwardBackwardRejects(Action<RecBatch> spoil, Type type, string[] words)
    {
        var batch = Batch();
        spoil(batch);
        var e = Assert.Throws(type, () => _model.ForwardBackward(batch, 1, 1))!;
        foreach (var w in words) Assert.That(e.Message, Does.Contain(w));
    }

    [Test]
    public void ForwardNeedsNoLabelsButChecksShapes()
    {
        var batch = Batch();
        batch.Labels = [];
        Assert.That(_model.Forward(batch), Has.Length.EqualTo(3));
        batch.InputIds = new int[3];
        var e = Assert.Throws<ShapeException>(() => _model.Forward(batch))!;
        Assert.That(e.Message, Does.Contain("InputIds"));
    }

    [Test]
    public void DenseGivenToAHeadWithoutDenseFeaturesIsRejected()
    {
        using var m = new RecModel(_backend, TinyBert(), TinyHead(dense: 0));
        var e = Assert.Throws<ShapeException>(() => m.Forward(Batch(dense: 2)))!;
        Assert.That(e.Message, Does.Contain("Dense").And.Contain("D = 0"));
    }

    [Test]
    public void NonFiniteLossNamesTheStep()
    {
        _model.SetParameter("head.out.bias", [float.PositiveInfinity]);
        var e = Assert.Throws<NonFiniteLossException>(() => _model.ForwardBackward(Batch(), 1, 7))!;
        Assert.That(e.Message, Does.Contain("step 7").And.Contain("loss"));
        Assert.That(e.Step, Is.EqualTo(7));
    }

    [Test]
    public void NonFiniteGradientNormStopsTheStepBeforeTouchingParameters()
    {
        var before = AllParams(_model);
        _backend.Upload(_model.Grads.Slice(0, 1), [float.NaN]);
        var e = Assert.Throws<NonFiniteLossException>(() => _model.Step(new AdamWOptions(), 3))!;
        Assert.That(e.Message, Does.Contain("gradient norm").And.Contain("step 3"));
        Assert.That(AllParams(_model), Is.EqualTo(before));
    }

    [Test]
    public void StepCountsFromOne()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _model.Step(new AdamWOptions(), 0))!;
        Assert.That(e.Message, Does.Contain("step counts from 1"));
    }

    [Test]
    public void SetParameterChecksNameAndLength()
    {
        var e = Assert.Throws<ShapeException>(() => _model.SetParameter("pooler.dense.bias", new float[31]))!;
        Assert.That(e.Message, Does.Contain("pooler.dense.bias").And.Contain("(32) = 32").And.Contain("got 31"));
        var k = Assert.Throws<KeyNotFoundException>(() => _model.GetParameter("encoder.layer.9.output.dense.weight"))!;
        Assert.That(k.Message, Does.Contain("encoder.layer.9.output.dense.weight"));
    }

    [Test]
    public void TopKOutOfRangeIsRejected()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _model.SetTrainable(Freeze.TopK, 3))!;
        Assert.That(e.Message, Does.Contain("topK").And.Contain("num_hidden_layers = 2"));
    }

    [Test]
    public void LogitsBufferTooShortIsRejected()
    {
        var e = Assert.Throws<ShapeException>(() => _model.ForwardBackward(Batch(), 1, 1, new float[2]))!;
        Assert.That(e.Message, Does.Contain("logits").And.Contain("B = 3"));
    }

    private static IEnumerable<TestCaseData> BadConfigs()
    {
        TestCaseData Case(string name, Action<BertConfig> spoil, string words) => new TestCaseData(spoil, words).SetName("BadConfig_" + name);
        yield return Case("HeadsDoNotDivideHidden", c => c.NumAttentionHeads = 5, "multiple of num_attention_heads");
        yield return Case("ZeroLayers", c => c.NumHiddenLayers = 0, "num_hidden_layers must be positive");
        yield return Case("DropoutOne", c => c.HiddenDropoutProb = 1.0, "hidden_dropout_prob must be in [0, 1)");
        yield return Case("UnknownActivation", c => c.HiddenAct = "swish", "hidden_act");
        yield return Case("RelativePositions", c => c.PositionEmbeddingType = "relative_key", "position_embedding_type");
        yield return Case("PadOutsideVocab", c => c.PadTokenId = 50, "pad_token_id");
        yield return Case("NegativeEps", c => c.LayerNormEps = -1, "layer_norm_eps");
    }

    [TestCaseSource(nameof(BadConfigs))]
    public void ModelRejectsBadBertConfig(Action<BertConfig> spoil, string words)
    {
        var c = TinyBert();
        spoil(c);
        var e = Assert.Throws<InvalidDataException>(() => new RecModel(_backend, c, TinyHead()))!;
        Assert.That(e.Message, Does.Contain(words));
    }

    [Test]
    public void ModelRejectsBadAdapterConfig()
    {
        var e = Assert.Throws<InvalidDataException>(() => new RecModel(_backend, TinyBert(pooler: false), TinyHead()))!;
        Assert.That(e.Message, Does.Contain("Pooler").And.Contain("add_pooling_layer"));
        e = Assert.Throws<InvalidDataException>(() => new RecModel(_backend, TinyBert(), TinyHead(hidden: [8, 0])))!;
        Assert.That(e.Message, Does.Contain("HiddenSizes[1]"));
        e = Assert.Throws<InvalidDataException>(() => new RecModel(_backend, TinyBert(), TinyHead(dense: -1)))!;
        Assert.That(e.Message, Does.Contain("DenseFeatures"));
    }
}
