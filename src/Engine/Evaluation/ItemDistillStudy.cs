// Issue 11, part 7: distil the item tower's encoder into smaller students, re-encode the catalogue with them, refit the
// tower, and measure how much of the teacher's lift on strictly new items each keeps, and how fast it encodes an item.
using System.Diagnostics;
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Distillation;
using FastRec.Engine.Metrics;
using FastRec.Engine.Representations;
using FastRec.Engine.Text;
using FastRec.Engine.Weights;
using FastRec.Kernels;

namespace FastRec.Engine.Evaluation;

/// <summary>Options of <see cref="ItemDistillStudy.Run"/>.</summary>
public sealed record ItemDistillStudyOptions
{
    /// <summary>Share of the items held out as strictly new (<see cref="StudyData.ColdItems"/>). Default 0.2.</summary>
    public double HeldOut { get; init; } = 0.2;
    /// <summary>Student depths to distil (each from every k-th teacher layer). Default 3 and 2.</summary>
    public IReadOnlyList<int> StudentLayers { get; init; } = [3, 2];
    /// <summary>Also refit the tower over each depth's undistilled student (copied layers only): the ablation.</summary>
    public bool Truncated { get; init; } = true;
    /// <summary>The distillation (its <see cref="ItemEncoderDistillOptions.Student"/> is replaced by each depth).</summary>
    public ItemEncoderDistillOptions Distill { get; init; } = new();
    /// <summary>The tower every encoder's vectors are fitted with.</summary>
    public TowerModelOptions Tower { get; init; } = new();
    /// <summary>Options of the encoders' vectors (max length, batch). Its cache is never used for the timed encodes.</summary>
    public EncoderItemVectorOptions Vectors { get; init; } = new();
    /// <summary>Full ranking for this many evenly spaced users (0 = all).</summary>
    public int RankingUsers { get; init; }
    /// <summary>Paired bootstrap of the lifts.</summary>
    public BootstrapOptions Bootstrap { get; init; } = new();
}

/// <summary>One encoder of the study: its vectors' cost and, for a student, its distillation.</summary>
public sealed record ItemEncoderRow(string Model, string Encoder, int Layers, double MsPerItem, ItemEncoderDistillResult? Distillation);

/// <summary>What <see cref="ItemDistillStudy.Run"/> measured.</summary>
public sealed class ItemDistillStudyResult
{
    /// <summary>Items held out as new.</summary>
    public required int HeldOutItems { get; init; }
    /// <summary>The held-out items' interactions dropped before the test window.</summary>
    public required int DroppedRows { get; init; }
    /// <summary>Every model on the held-out items' test rows (AUC, GAUC) and by full ranking among them.</summary>
    public required Scoreboard Board { get; init; }
    /// <summary>The encoders, teacher first, with their encode cost (ms per item over the whole catalogue, batch of the options).</summary>
    public required IReadOnlyList<ItemEncoderRow> Encoders { get; init; }
    /// <summary>Each tower over the non-neural twin and the history-feature logistic (paired bootstrap over users).</summary>
    public required IReadOnlyList<LiftRow> Lifts { get; init; }
    /// <summary>Share of the teacher tower's lift over the non-neural tower that a student tower keeps, per metric
    /// ("GAUC", "NDCG@10"): (student − non-neural) / (teacher − non-neural); NaN when the teacher has no lift.</summary>
    public required IReadOnlyDictionary<(string Model, string Metric), double> Kept { get; init; }
    /// <summary>Folder holding the students (Hugging Face model directories, usable as <c>--model</c>).</summary>
    public required string StudentsDirectory { get; init; }
    /// <summary>Wall time, seconds.</summary>
    public required double Seconds { get; init; }
}

/// <summary>The item-encoder distillation study.</summary>
public static class ItemDistillStudy
{
    /// <summary>Board name of the teacher's tower.</summary>
    public const string TeacherTower = "(t) teacher item tower";
    /// <summary>Board name of the non-neural tower.</summary>
    public const string NonNeuralTower = ColdItemStudy.TowerNonNeural;

    /// <summary>Board name of the tower over a student of <paramref name="layers"/> layers.</summary>
    public static string StudentTower(int layers, bool distilled) => distilled ? $"(s{layers}) {layers}-layer distilled item tower" : $"(s{layers}-copy) {layers}-layer copied, undistilled item tower";

    /// <summary>
    /// Holds out the newest items (<see cref="StudyData.ColdItems"/>), distils the teacher in <paramref name="teacherDir"/>
    /// into each student depth on the texts of the items that are not held out (no labels, no held-out text), saves each
    /// student under <paramref name="studentsDir"/>, re-encodes the whole catalogue with the teacher and every student
    /// (timed, no cache), fits a <see cref="TowerModel"/> over each encoder's vectors, the non-neural vectors and the
    /// history-feature logistic, and evaluates them on the held-out items' test rows and by full ranking among them.
    /// </summary>
    public static ItemDistillStudyResult Run(InteractionTable raw, Func<InteractionTable, InteractionTable> prepare, ExampleOptions examples,
        StudyBoundaries bounds, string teacherDir, ItemVectors nonNeuralVectors, IBackend backend, string studentsDir,
        ItemDistillStudyOptions? options = null, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(raw); ArgumentNullException.ThrowIfNull(teacherDir); ArgumentNullException.ThrowIfNull(nonNeuralVectors);
        ArgumentNullException.ThrowIfNull(backend); ArgumentNullException.ThrowIfNull(studentsDir);
        var o = options ?? new ItemDistillStudyOptions();
        if (o.StudentLayers.Count == 0) throw new ArgumentException("ItemDistillStudyOptions.StudentLayers is empty; give at least one student depth");
        var wall = Stopwatch.StartNew();
        var info = BertCheckpoint.Open(teacherDir);
        foreach (int l in o.StudentLayers)
            if (l < 1 || l >= info.Config.NumHiddenLayers)
                throw new ArgumentOutOfRangeException(nameof(options), l, $"a student depth must be in [1, {info.Config.NumHiddenLayers - 1}] (below the teacher's {info.Config.NumHiddenLayers} layers), got {l}");
        var vo = o.Vectors with { CacheDirectory = null };
        var (data, heldOut, dropped) = StudyData.ColdItems(raw, prepare, examples, bounds, o.HeldOut);
        var window = EvalWindow.FromDataset(data);
        var rows = Enumerable.Range(0, data.Test.Count).Where(k => heldOut[data.Test.Items[k]]).ToArray();
        int held = heldOut.Count(h => h);
        log?.Invoke($"item distillation: {held:N0} items held out, {dropped:N0} of their interactions dropped; {rows.Length:N0} test rows on them");
        if (rows.Length == 0) throw new InvalidDataException("no test row falls on a held-out item; hold out more items");

        var catalog = raw.Catalog;
        var encoders = new List<ItemEncoderRow>();
        var vectorSets = new List<(string Model, ItemVectors Vectors, bool Baseline)>();
        var teacherVectors = TimedEncode(teacherDir, backend, catalog, vo, out double teacherMs);
        encoders.Add(new ItemEncoderRow(TeacherTower, Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(teacherDir))), info.Config.NumHiddenLayers, teacherMs, null));
        vectorSets.Add((TeacherTower, teacherVectors, false));
        log?.Invoke($"  teacher: {teacherMs:0.00} ms per item");

        // The distillation texts: the items that are not held out and have a text, with the teacher's vectors as targets.
        var texts = new List<string>();
        var targets = new List<float>();
        for (int i = 0; i < catalog.Count; i++)
        {
            if (heldOut[i] || string.IsNullOrWhiteSpace(catalog.Text(i))) continue;
            texts.Add(ItemText.Format(catalog.Text(i)));
            targets.AddRange(teacherVectors.Row(i));
        }
        var tok = new BertTextTokenizer(info.VocabPath, info.LowerCase, vo.MaxLength, info.Config.MaxPositionEmbeddings);
        Directory.CreateDirectory(studentsDir);
        using (var teacher = EncoderItemVectors.LoadModel(teacherDir, backend))
        {
            foreach (int layers in o.StudentLayers)
                foreach (bool distilled in o.Truncated ? new[] { true, false } : [true])
                {
                    var d = o.Distill with { Student = o.Distill.Student with { Layers = layers }, Epochs = distilled ? o.Distill.Epochs : 0 };
                    string name = StudentTower(layers, distilled);
                    string dir = Path.Combine(studentsDir, distilled ? $"student-{layers}l" : $"student-{layers}l-copy");
                    var (student, result) = ItemEncoderDistillation.Run(teacher, tok, texts, targets.ToArray(), d, log);
                    using (student) BertCheckpoint.Save(student, dir, info.VocabPath, info.LowerCase);
                    var vectors = TimedEncode(dir, backend, catalog, vo, out double ms);
                    encoders.Add(new ItemEncoderRow(name, dir, layers, ms, result));
                    vectorSets.Add((name, vectors, false));
                    log?.Invoke($"  {name}: {ms:0.00} ms per item, distance to the teacher {result.FinalDistance:0.0000}");
                }
        }
        vectorSets.Add((NonNeuralTower, nonNeuralVectors, true));

        var entries = new List<ScoreboardEntry>();
        var logistic = new HistoryLogisticBaseline(DenseLogisticBaseline.Fit(data.Train, name: "history-feature logistic"));
        entries.Add(new ScoreboardEntry(logistic.Name, logistic.Predict(data.Test), RocAuc.Compute(data.Validation.Labels, logistic.Predict(data.Validation)), logistic, IsBaseline: true));
        var models = new List<IDisposable>();
        try
        {
            foreach (var (name, vectors, baseline) in vectorSets)
            {
                var m = TowerModel.Fit(name, window, data.Train, data.Validation, vectors, backend, o.Tower, null);
                models.Add(m);
                entries.Add(new ScoreboardEntry(name, m.Predict(data.Test), m.Best.ValidationAuc, m, IsBaseline: baseline));
                log?.Invoke($"  fitted {name}: validation AUC {m.Best.ValidationAuc:0.0000}, NDCG@10 {m.Best.ValidationNdcg:0.0000}");
            }
            var board = Scoreboard.Build(window, data.Test, entries, new ScoreboardOptions
            {
                Rows = rows, Slices = false, Bootstrap = o.Bootstrap,
                Ranking = new FullRankingOptions { ItemMask = heldOut, Users = TransferStudy.RankingSample(window, o.RankingUsers), SampledNegatives = 0, Ks = [10, 20, 50] },
            });
            var lifts = new List<LiftRow>();
            foreach (var (name, _, baseline) in vectorSets)
                if (!baseline)
                    foreach (var other in new[] { NonNeuralTower, logistic.Name })
                        lifts.AddRange(Scoreboard.LiftsOver(data.Test, board[name], board[other], new ScoreboardOptions { Rows = rows, Bootstrap = o.Bootstrap }));
            var kept = new Dictionary<(string, string), double>();
            foreach (var e in encoders.Skip(1))
            {
                kept[(e.Model, "GAUC")] = Kept(Gauc(board[e.Model]), Gauc(board[TeacherTower]), Gauc(board[NonNeuralTower]));
                kept[(e.Model, "NDCG@10")] = Kept(Ndcg(board[e.Model]), Ndcg(board[TeacherTower]), Ndcg(board[NonNeuralTower]));
            }
            return new ItemDistillStudyResult
            {
                HeldOutItems = held, DroppedRows = dropped, Board = board, Encoders = encoders, Lifts = lifts, Kept = kept,
                StudentsDirectory = studentsDir, Seconds = wall.Elapsed.TotalSeconds,
            };
        }
        finally
        {
            foreach (var m in models) m.Dispose();
        }
    }

    /// <summary>GAUC of a row (NaN below <see cref="Slices.MinGaucUsers"/> users).</summary>
    public static double Gauc(ScoreboardRow row) => row.Metrics is { } m && m.Gauc.UsersUsed >= Slices.MinGaucUsers ? m.Gauc.Value : double.NaN;

    /// <summary>Full-ranking NDCG@10 of a row (NaN when it was not ranked).</summary>
    public static double Ndcg(ScoreboardRow row) => row.Ranking?.Overall.NdcgAt(10) ?? double.NaN;

    /// <summary>(student − reference) / (teacher − reference); NaN when the teacher is not above the reference.</summary>
    public static double Kept(double student, double teacher, double reference) => teacher > reference ? (student - reference) / (teacher - reference) : double.NaN;

    /// <summary>Encodes the whole catalogue without cache; <paramref name="msPerItem"/> = wall time / items with text.</summary>
    private static ItemVectors TimedEncode(string dir, IBackend backend, ItemCatalog catalog, EncoderItemVectorOptions o, out double msPerItem)
    {
        var sw = Stopwatch.StartNew();
        var v = EncoderItemVectors.Compute(dir, backend, catalog, o);
        int n = Enumerable.Range(0, catalog.Count).Count(i => !string.IsNullOrWhiteSpace(catalog.Text(i)));
        msPerItem = sw.Elapsed.TotalMilliseconds / Math.Max(n, 1);
        return v;
    }
}
