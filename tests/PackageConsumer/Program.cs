// Uses FastRec.Engine as a NuGet package: a tiny random BERT, one training step on a tiny dataset, scores from the model and the Predictor.
using FastRec.Engine.Data;
using FastRec.Engine.Model;
using FastRec.Engine.Serving;
using FastRec.Engine.Training;
using FastRec.Engine.Weights;
using FastRec.Kernels.Cpu;

string root = Directory.CreateTempSubdirectory("fastrec-consumer-").FullName;
try
{
    // A random-init BERT saved as a Hugging Face directory, over a vocabulary of the item words.
    string[] words = ["good", "bad", "film", "show", "w0", "w1", "w2", "w3"];
    string vocab = Path.Combine(root, "vocab.txt"), modelDir = Path.Combine(root, "tiny-bert");
    File.WriteAllLines(vocab, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ";", .. words]);
    var bert = new BertConfig
    {
        VocabSize = 6 + words.Length, HiddenSize = 16, NumHiddenLayers = 1, NumAttentionHeads = 2, IntermediateSize = 32,
        MaxPositionEmbeddings = 32, TypeVocabSize = 2, AddPoolingLayer = true,
    };
    using var backend = new CpuSimdBackend();
    using (var random = new RecModel(backend, bert, new AdapterConfig()))
    {
        random.InitRandom(1);
        BertCheckpoint.Save(random, modelDir, vocab);
    }

    // Eight items, four users who like the "good" ones.
    string items = Path.Combine(root, "items.csv"), interactions = Path.Combine(root, "interactions.csv");
    File.WriteAllLines(items, ["item,title", .. Enumerable.Range(0, 8).Select(i => $"i{i},{(i % 2 == 0 ? "good" : "bad")} w{i % 4} {(i < 4 ? "film" : "show")}")]);
    var rows = new List<string> { "user,item,label,timestamp" };
    for (int t = 0; t < 40; t++) rows.Add($"u{t % 4},i{(t * 3) % 8},{((t * 3) % 8 % 2 == 0 ? 1 : 0)},{1000 + t}");
    File.WriteAllLines(interactions, rows);
    var data = RecDataset.Load(interactions, items, examples: new ExampleOptions { ContextSize = 2 });

    // One optimiser step: one epoch of one batch holding every training example.
    using var rec = Recommender.FromPretrained(modelDir, backend, new AdapterConfig { HiddenSizes = [8] }, new TextOptions { MaxLength = 16 });
    var trainer = new Trainer(rec, new TrainerOptions { Epochs = 1, BatchSize = data.Train.Count, LearningRate = 1e-3f, Seed = 7 });
    var result = trainer.Fit(data.Train, null);
    float[] scores = rec.Predict(data.Test);

    // Save, load into the serving Predictor, score one pair by text.
    string ckpt = Path.Combine(root, "ckpt");
    Checkpoint.Save(rec, ckpt, result.State, trainer.Options);
    using var predictor = Predictor.Load(ckpt);
    float p = predictor.Score(["good w0 film", "good w2 film"], "bad w1 show");

    if (result.State.Step != 1) throw new InvalidOperationException($"expected one training step, ran {result.State.Step}");
    if (scores.Length == 0 || scores.Any(s => !(s > 0 && s < 1)) || !(p > 0 && p < 1))
        throw new InvalidOperationException($"scores outside (0, 1): [{string.Join(", ", scores)}], predictor {p}");
    Console.WriteLine($"FastRec.Engine {typeof(Predictor).Assembly.GetName().Version}: trained {result.State.Step} step on " +
                      $"{data.Train.Count} examples (loss {result.State.StepLosses[0]:0.0000}), scored {scores.Length} test examples, Predictor {p:0.000000}");
    return 0;
}
finally
{
    Directory.Delete(root, recursive: true);
}
