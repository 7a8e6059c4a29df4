// Fixtures of the training tests: a synthetic interactions/items pair, a tiny random BERT directory, quick trainer runs.
using FastRec.Engine.Data;
using FastRec.Engine.Model;
using FastRec.Engine.Training;
using FastRec.Engine.Weights;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;
using FastRec.Kernels.Reference;

namespace FastRec.Tests.Training;

/// <summary>A temp folder holding a synthetic dataset (users like "good" items) and a tiny random BERT model directory.</summary>
internal sealed class TrainFixture : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("fastrec-train-").FullName;
    public string Interactions => Path.Combine(Root, "interactions.csv");
    public string Items => Path.Combine(Root, "items.csv");
    public string ModelDir => Path.Combine(Root, "tiny-bert");
    public string Ckpt(string name = "ckpt") => Path.Combine(Root, name);

    public static readonly string[] Words = [.. Enumerable.Range(0, 12).Select(i => $"w{i}"), "good", "bad", "film", "show"];

    /// <param name="users">Users.</param>
    /// <param name="perUser">Interactions per user.</param>
    /// <param name="dropout">Encoder dropout of the tiny BERT.</param>
    /// <param name="dense">Add a dense feature column "score" (noisy label signal).</param>
    public TrainFixture(int users = 12, int perUser = 14, double dropout = 0.0, bool dense = false, int layers = 2)
    {
        WriteData(users, perUser, dense);
        WriteTinyBert(ModelDir, dropout, layers);
    }

    private void WriteData(int users, int perUser, bool dense)
    {
        const int V = 20;
        var items = new List<string> { "item,title" };
        for (int i = 0; i < V; i++)
            items.Add($"i{i},{(i % 2 == 0 ? "good" : "bad")} w{i % 12} {(i % 3 == 0 ? "film" : "show")}");
        File.WriteAllLines(Items, items);
        var rows = new List<string> { dense ? "user,item,label,timestamp,score" : "user,item,label,timestamp" };
        long ts = 1000;
        for (int k = 0; k < perUser; k++)
            for (int u = 0; u < users; u++)
            {
                int item = (int)(Rng.Hash(7, (ulong)(k * 1000 + u)) % V);
                bool good = item % 2 == 0;
                // Users like good items 85% of the time; user 0 likes everything.
                bool label = u == 0 || (Rng.Uniform(9, (ulong)(k * 1000 + u)) < (good ? 0.85f : 0.15f));
                string extra = dense ? $",{(label ? 1 : 0) + Rng.Uniform(11, (ulong)(k * 1000 + u)):0.000}" : "";
                rows.Add($"u{u},i{item},{(label ? 1 : 0)},{ts++}{extra}");
            }
        File.WriteAllLines(Interactions, rows);
    }

    public static BertConfig TinyConfig(double dropout = 0.0, int layers = 2) => new()
    {
        VocabSize = 5 + 2 + Words.Length, HiddenSize = 16, NumHiddenLayers = layers, NumAttentionHeads = 2, IntermediateSize = 32,
        MaxPositionEmbeddings = 64, TypeVocabSize = 2, HiddenDropoutProb = dropout, AttentionProbsDropoutProb = dropout,
        LayerNormEps = 1e-12, AddPoolingLayer = true,
    };

    /// <summary>A random-init BERT (seed 5) saved as a HF model directory with a tiny vocab.</summary>
    public static void WriteTinyBert(string dir, double dropout = 0.0, int layers = 2)
    {
        var config = TinyConfig(dropout, layers);
        Directory.CreateDirectory(dir);
        string vocab = Path.Combine(Path.GetTempPath(), $"fastrec-vocab-{Guid.NewGuid():N}.txt");
        File.WriteAllLines(vocab, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ";", "|", .. Words]);
        using var b = new ReferenceBackend();
        using var m = new RecModel(b, config, new AdapterConfig());
        m.InitRandom(5);
        BertCheckpoint.Save(m, dir, vocab);
        File.Delete(vocab);
    }

    public RecDataset Load(ExampleOptions? examples = null, InteractionFileOptions? options = null)
        => RecDataset.Load(Interactions, Items, options, null, examples ?? new ExampleOptions { ContextSize = 3 });

    public static IBackend Backend(string name) => name switch
    {
        "reference" => new ReferenceBackend(),
        "cpu" => new CpuSimdBackend(),
        _ => throw new ArgumentException(name),
    };

    public Recommender NewRecommender(IBackend backend, AdapterConfig? adapter = null, int maxLength = 32, ulong seed = 42)
        => Recommender.FromPretrained(ModelDir, backend, adapter ?? new AdapterConfig { HiddenSizes = [8], Dropout = 0.1f }, new TextOptions { MaxLength = maxLength }, seed);

    public void Dispose() { try { Directory.Delete(Root, recursive: true); } catch (IOException) { } }
}

internal static class TrainAssert
{
    public static float[] Params(RecModel m)
    {
        var p = new float[m.Layout.TotalSize];
        m.Backend.Download(m.Params.All, p);
        return p;
    }

    public static bool BitEqual(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
        => System.Runtime.InteropServices.MemoryMarshal.AsBytes(a).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b));

    /// <summary>Asserts <paramref name="call"/> throws <typeparamref name="T"/> whose message contains every fragment.</summary>
    public static T Throws<T>(TestDelegate call, params string[] fragments) where T : Exception
    {
        var ex = Assert.Throws<T>(call)!;
        TestContext.Out.WriteLine($"{typeof(T).Name}: {ex.Message}");
        foreach (string f in fragments) Assert.That(ex.Message, Does.Contain(f));
        return ex;
    }
}
