// MostPopular: every user gets the items ranked by how many users liked them in the training window.
using FastRec.Engine.Evaluation;

namespace FastRec.Engine.Baselines;

/// <summary>
/// The usual full-ranking popularity: n(i) = the number of distinct users with a training-window positive (label &gt;= 0.5)
/// on item i; every user gets the same ranking by n(i) (<see cref="ScoreItems"/> writes n(i); ties are the
/// evaluator's). As an <see cref="IBaseline"/> the raw score ln(1 + n(i)) is calibrated (<see cref="CalibratedBaseline"/>;
/// a training row's own like is left out of n(i)). Items never liked in training score 0.
/// </summary>
public sealed class MostPopularBaseline : CalibratedBaseline
{
    private readonly int[] _likes;   // (V) n(i)

    /// <inheritdoc/>
    public override string Name => "most popular";

    /// <summary>n(i) per item. (V)</summary>
    public ReadOnlySpan<int> Likes => _likes;

    private MostPopularBaseline(EvalWindow window, int[] likes) : base(window) { _likes = likes; }

    /// <summary>Counts the likes of <paramref name="window"/>'s training rows and calibrates.</summary>
    public static MostPopularBaseline Fit(EvalWindow window)
    {
        ArgumentNullException.ThrowIfNull(window);
        var likes = new int[window.ItemCount];
        var liked = new LikedHistory(window.ItemCount);
        for (int u = 0; u < window.UserCount; u++)
        {
            liked.Advance(window.TrainRows(u));
            foreach (int i in liked.Items) likes[i]++;
        }
        var m = new MostPopularBaseline(window, likes);
        m.Calibrate();
        return m;
    }

    /// <inheritdoc/>
    protected internal override double RawScore(int user, int item, UserRows history, bool leaveOut)
        => Math.Log(1 + _likes[item] - (leaveOut ? 1 : 0));

    /// <summary>Writes n(i) for every item into each user's row. (users.Length, V)</summary>
    public override void ScoreItems(EvalWindow window, ReadOnlySpan<int> users, Span<float> scores)
    {
        int V = _likes.Length;
        ScorerArgs.Check(window, users, scores, V);
        for (int b = 0; b < users.Length; b++)
        {
            var row = scores.Slice(b * V, V);
            for (int i = 0; i < V; i++) row[i] = _likes[i];
        }
    }
}
