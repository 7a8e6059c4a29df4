// The strict cold-item test: the newest items lose every interaction before the test window; who can still rank them?
using FastRec.Engine.Baselines;
using FastRec.Engine.Data;
using FastRec.Engine.Representations;
using FastRec.Kernels;

namespace FastRec.Engine.Evaluation;

/// <summary>Options of <see cref="ColdItemStudy.Run"/>.</summary>
public sealed record ColdItemStudyOptions
{
    /// <summary>Share of the items held out: the latest to appear.</summary>
    public double HeldOut { get; init; } = 0.2;
    /// <summary>The head of the item-vector models.</summary>
    public ItemVectorModelOptions Head { get; init; } = new();
    /// <summary>The options of the item-tower models.</summary>
    public TowerModelOptions Tower { get; init; } = new();
    /// <summary>Full ranking for this many test users with a held-out positive (0 = all).</summary>
    public int RankingUsers { get; init; }
    /// <summary>Bootstrap options of the lifts.</summary>
    public BootstrapOptions Bootstrap { get; init; } = new();
}

/// <summary>What <see cref="ColdItemStudy.Run"/> measured.</summary>
public sealed class ColdItemStudyResult
{
    /// <summary>Items held out.</summary>
    public required int HeldOutItems { get; init; }
    /// <summary>Interactions with held-out items before the test window that were dropped.</summary>
    public required int DroppedRows { get; init; }
    /// <summary>Every model on the held-out items' test rows, ranking among the held-out items only.</summary>
    public required Scoreboard Board { get; init; }
    /// <summary>Models with no parameter for a held-out item (ID and popularity models): every held-out item gets the same
    /// score from them, so their ranking is the random-order expectation by construction.</summary>
    public required IReadOnlySet<string> Blind { get; init; }
    /// <summary>The text models' lifts (fixed-vector head and item tower) over the history-feature logistic, their non-neural
    /// twins and the zero-shot baseline.</summary>
    public required IReadOnlyList<LiftRow> Lifts { get; init; }
}

/// <summary>The strict cold-item test (issue 10, part 6).</summary>
public static class ColdItemStudy
{
    /// <summary>Name of the pretrained-vector model on the board.</summary>
    public const string TextModel = "(a) encoder item vectors + history";
    /// <summary>Name of the non-neural text model on the board.</summary>
    public const string NonNeuralModel = "(c) genre+year+title vectors + history";
    /// <summary>Name of the history-only model on the board.</summary>
    public const string HistoryModel = "(e) history features only (same head)";
    /// <summary>Name of the item-tower model over the encoder vectors on the board.</summary>
    public const string TowerModel = "(t) encoder item tower";
    /// <summary>Name of the item-tower model over the non-neural vectors on the board.</summary>
    public const string TowerNonNeural = "(t-c) genre+year+title item tower";

    /// <summary>
    /// Holds out the latest <see cref="ColdItemStudyOptions.HeldOut"/> of the items (<see cref="StudyData.ColdItems"/>), fits
    /// the baselines (<see cref="StrongBaselines.FitAll"/>, zero-shot text on <paramref name="textVectors"/>) and three
    /// <see cref="ItemVectorModel"/>s (encoder vectors, non-neural vectors, none) on what is left, and evaluates them on the
    /// held-out items' test rows (AUC, GAUC) and by full ranking among the held-out items only.
    /// </summary>
    public static ColdItemStudyResult Run(InteractionTable raw, Func<InteractionTable, InteractionTable> prepare, ExampleOptions examples,
        StudyBoundaries bounds, ItemVectors textVectors, ItemVectors nonNeuralVectors, IBackend backend, ColdItemStudyOptions? options = null,
        Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(textVectors); ArgumentNullException.ThrowIfNull(nonNeuralVectors);
        var o = options ?? new ColdItemStudyOptions();
        var (data, heldOut, dropped) = StudyData.ColdItems(raw, prepare, examples, bounds, o.HeldOut);
        var window = EvalWindow.FromDataset(data);
        int held = heldOut.Count(h => h);
        var rows = Enumerable.Range(0, data.Test.Count).Where(k => heldOut[data.Test.Items[k]]).ToArray();
        log?.Invoke($"cold items: {held:N0} items held out (the newest {o.HeldOut:P0}), {dropped:N0} of their interactions before the test window dropped; " +
                    $"{rows.Length:N0} test rows on them");
        if (rows.Length == 0) throw new InvalidDataException("no test row falls on a held-out item; hold out more items");
        var entries = new List<ScoreboardEntry>();
        var blind = new HashSet<string>();
        foreach (var f in StrongBaselines.FitAll(window, data.Train, data.Validation, backend, textVectors))
        {
            entries.Add(new ScoreboardEntry(f.Name, f.Model.Predict(data.Test), f.ValidationAuc, f.Model, IsBaseline: true));
            if (f.Model is MostPopularBaseline or RecentPopularityBaseline or PopularityBaseline or BiasBaseline or ItemKnnBaseline or BprBaseline) blind.Add(f.Name);
        }
        var models = new List<IDisposable>();
        try
        {
            foreach (var (name, vectors, baseline) in new (string, ItemVectors?, bool)[] { (TextModel, textVectors, false), (NonNeuralModel, nonNeuralVectors, true), (HistoryModel, null, true) })
            {
                var m = ItemVectorModel.Fit(name, window, data.Train, data.Validation, vectors, backend, o.Head, null);
                models.Add(m);
                entries.Add(new ScoreboardEntry(name, m.Predict(data.Test), m.Best.ValidationAuc, m, IsBaseline: baseline));
                log?.Invoke($"  fitted {name}: validation AUC {m.Best.ValidationAuc:0.0000}");
            }
            foreach (var (name, vectors, baseline) in new[] { (TowerModel, textVectors, false), (TowerNonNeural, nonNeuralVectors, true) })
            {
                var m = Representations.TowerModel.Fit(name, window, data.Train, data.Validation, vectors, backend, o.Tower, null);
                models.Add(m);
                entries.Add(new ScoreboardEntry(name, m.Predict(data.Test), m.Best.ValidationAuc, m, IsBaseline: baseline));
                log?.Invoke($"  fitted {name}: validation AUC {m.Best.ValidationAuc:0.0000}, NDCG@10 {m.Best.ValidationNdcg:0.0000}");
            }
            var users = TransferStudy.RankingSample(window, o.RankingUsers);
            var board = Scoreboard.Build(window, data.Test, entries, new ScoreboardOptions
            {
                Rows = rows, Slices = false, Bootstrap = o.Bootstrap,
                Ranking = new FullRankingOptions { ItemMask = heldOut, Users = users, SampledNegatives = 0, Ks = [10, 20, 50] },
            });
            var lifts = new List<LiftRow>();
            var zeroShot = board.Rows.Where(r => r.Entry.Name.StartsWith("zero-shot", StringComparison.Ordinal)).Select(r => r.Name).ToArray();
            foreach (var (model, others) in new[] { (TextModel, new[] { "history-feature logistic", NonNeuralModel, HistoryModel }), (TowerModel, new[] { "history-feature logistic", TowerNonNeural, NonNeuralModel }) })
                foreach (var other in others.Concat(zeroShot))
                    if (board.Rows.Any(r => r.Name == other))
                        lifts.AddRange(Scoreboard.LiftsOver(data.Test, board[model], board[other], new ScoreboardOptions { Rows = rows, Bootstrap = o.Bootstrap }));
            return new ColdItemStudyResult { HeldOutItems = held, DroppedRows = dropped, Board = board, Blind = blind, Lifts = lifts };
        }
        finally
        {
            foreach (var m in models) m.Dispose();
        }
    }
}
