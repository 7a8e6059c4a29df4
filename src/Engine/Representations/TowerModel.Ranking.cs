// TowerModel's catalogue ranking: a frozen TowerScorer per evaluation window, and the IItemScorer of full-ranking evaluation.
using FastRec.Engine.Data;
using FastRec.Engine.Evaluation;

namespace FastRec.Engine.Representations;

public sealed partial class TowerModel
{
    private TowerScorer? _scorer;
    private EvalWindow? _scorerWindow;
    private TowerWorkspace? _workspace;

    /// <summary>
    /// The model frozen for scoring the catalogue, with the item features of <paramref name="window"/> (a window over the
    /// same catalogue): before its test window (<paramref name="includeTest"/> false, for evaluation) or after its last
    /// interaction (true, for serving).
    /// </summary>
    public TowerScorer CreateScorer(EvalWindow window, bool includeTest)
    {
        ArgumentNullException.ThrowIfNull(window);
        if (window.ItemCount != V) throw new ArgumentException($"the window's catalogue has {window.ItemCount} items, the model {V}");
        long now = includeTest ? window.End : Math.Min(window.TestStart, window.End);
        double prior = window.PriorBefore(now);
        var item = new float[V * (F - 2)];
        for (int i = 0; i < V; i++) ItemFeatures(window, i, now, prior, item.AsSpan(i * (F - 2), F - 2));
        var p = _host;
        var w = new TowerScorer.Shared(d, D, H, O, N, p[_oP..(_oP + d * D)], p[_oPb..(_oPb + d)], p[_oE..(_oE + 2 * d)],
            p[_oW1..(_oW1 + H * In)], p[_oB1..(_oB1 + H)], p[_oW2..(_oW2 + O * H)], p[_oB2..(_oB2 + O)], p[_oWw..(_oWw + O * F)], p[_oBw..(_oBw + O)],
            (double[])_mean.Clone(), (double[])_std.Clone(), prior);
        return new TowerScorer(w, (float[])_vall.Clone(), item);
    }

    /// <inheritdoc/>
    public void ScoreItems(EvalWindow window, ReadOnlySpan<int> users, Span<float> scores)
    {
        ArgumentNullException.ThrowIfNull(window);
        int Vn = window.ItemCount;
        if (scores.Length != (long)users.Length * Vn) throw new ArgumentException($"scores: expected {users.Length} users x {Vn} items = {(long)users.Length * Vn} floats, got {scores.Length}");
        if (_scorer is null || !ReferenceEquals(_scorerWindow, window))
        {
            _scorer = CreateScorer(window, includeTest: false);
            _scorerWindow = window;
            _workspace = _scorer.CreateWorkspace();
        }
        for (int k = 0; k < users.Length; k++)
        {
            var h = window.HistoryBeforeTest(users[k]);
            _scorer.Score(h.Items, h.Labels, scores.Slice(k * Vn, Vn), _workspace!);
        }
    }
}
