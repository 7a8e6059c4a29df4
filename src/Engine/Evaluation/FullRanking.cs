// Full-ranking evaluation: each test user's candidates ranked by a scorer; HR/Recall/NDCG@K and MRR with ties averaged.
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using FastRec.Kernels;
using FastRec.Kernels.Cpu;

namespace FastRec.Engine.Evaluation;

/// <summary>Options of <see cref="FullRanking.Evaluate"/>.</summary>
public sealed record FullRankingOptions
{
    /// <summary>Cut-offs K of HR@K, Recall@K and NDCG@K (each &gt;= 1; capped at the candidate universe's size).</summary>
    public int[] Ks { get; init; } = [10, 20, 50];
    /// <summary>Users to evaluate (distinct user indices); null = <see cref="EvalWindow.TestUsers"/>.</summary>
    public IReadOnlyList<int>? Users { get; init; }
    /// <summary>The candidate universe, one flag per catalogue item (V); null = the whole catalogue. Items outside it are
    /// neither candidates nor relevant (e.g. only cold items, for the strict cold-item test).</summary>
    public bool[]? ItemMask { get; init; }
    /// <summary>Item slices (<see cref="SliceKind.Item"/>) computed from the same scoring pass: for each, the relevant
    /// items are restricted to the slice's members (the candidates are unchanged). Results in
    /// <see cref="FullRankingResult.Restrictions"/>[1..].</summary>
    public IReadOnlyList<Slice> RelevantFilters { get; init; } = [];
    /// <summary>Sampled variant: negatives drawn per (user, relevant item); 0 = off.</summary>
    public int SampledNegatives { get; init; } = 100;
    /// <summary>Cut-off of the sampled variant's HR@K and NDCG@K.</summary>
    public int SampledK { get; init; } = 10;
    /// <summary>Seed of the sampled variant's draws.</summary>
    public ulong Seed { get; init; } = 42;
    /// <summary>Users scored per <see cref="IItemScorer.ScoreItems"/> call (the score buffer holds BatchUsers x V floats).</summary>
    public int BatchUsers { get; init; } = 256;
}

/// <summary>The sampled ranking variant, labelled as such: each relevant item ranked among <see cref="Negatives"/>
/// negatives drawn uniformly (with replacement) from the user's candidates that are not relevant, ties averaged;
/// HR@K and NDCG@K averaged over (user, relevant item) pairs. Not comparable with full-ranking numbers.</summary>
/// <param name="Negatives">Negatives per pair.</param>
/// <param name="K">The cut-off.</param>
/// <param name="HitRate">Mean HR@K over pairs (NaN when there is no pair).</param>
/// <param name="Ndcg">Mean NDCG@K over pairs.</param>
/// <param name="Pairs">Pairs ranked.</param>
/// <param name="PairsSkipped">Pairs with no negative to draw (every candidate relevant).</param>
public sealed record SampledRanking(int Negatives, int K, double HitRate, double Ndcg, long Pairs, long PairsSkipped);

/// <summary>Full-ranking metrics averaged over users, each the expectation over a uniformly random order of tied scores
/// (see <see cref="FullRanking"/>). NaN when no user qualifies.</summary>
/// <param name="Name">"all" for every relevant item, else the restriction or user slice.</param>
/// <param name="Ks">The cut-offs (capped at the candidate universe).</param>
/// <param name="HitRate">HR@K per cut-off.</param>
/// <param name="Recall">Recall@K = hits / |relevant| (RecBole) per cut-off.</param>
/// <param name="Ndcg">NDCG@K per cut-off.</param>
/// <param name="Mrr">Mean reciprocal rank of the first relevant item (no cut).</param>
/// <param name="Users">Users averaged over.</param>
/// <param name="UsersSkipped">Users considered that had no relevant item (not averaged).</param>
/// <param name="UsersBelowK">Per cut-off, users with fewer candidates than K (their whole list is the top K).</param>
/// <param name="Sampled">The sampled variant, or null when it was off.</param>
public sealed record RankingSummary(string Name, int[] Ks, double[] HitRate, double[] Recall, double[] Ndcg, double Mrr,
    int Users, int UsersSkipped, int[] UsersBelowK, SampledRanking? Sampled)
{
    /// <summary>NDCG at cut-off <paramref name="k"/> (one of <see cref="Ks"/>; NaN when it was not computed).</summary>
    public double NdcgAt(int k) => At(Ndcg, k);
    /// <summary>Recall at cut-off <paramref name="k"/> (NaN when it was not computed).</summary>
    public double RecallAt(int k) => At(Recall, k);
    /// <summary>HR at cut-off <paramref name="k"/> (NaN when it was not computed).</summary>
    public double HitRateAt(int k) => At(HitRate, k);
    private double At(double[] values, int k) { int q = Array.IndexOf(Ks, k); return q < 0 ? double.NaN : values[q]; }
}

/// <summary>A per-user metric of a <see cref="FullRankingResult"/>.</summary>
public enum RankingMetric
{
    /// <summary>HR@K.</summary>
    HitRate,
    /// <summary>Recall@K.</summary>
    Recall,
    /// <summary>NDCG@K.</summary>
    Ndcg,
    /// <summary>Reciprocal rank of the first relevant item.</summary>
    Mrr,
}

/// <summary>The result of <see cref="FullRanking.Evaluate"/>: summaries and every per-user value (for the bootstrap and
/// for user slices). Restriction 0 is "all relevant items", restriction f &gt; 0 is RelevantFilters[f − 1].</summary>
public sealed class FullRankingResult
{
    private readonly int _nk, _nr;
    private readonly double[] _hr, _recall, _ndcg;  // (users, restrictions, Ks)
    private readonly double[] _mrr;                 // (users, restrictions)
    private readonly int[] _relevant;               // (users, restrictions)
    private readonly int[] _sampledPairs;           // (users, restrictions)
    private readonly double[] _sampledHr, _sampledNdcg; // (users, restrictions) sums over the user's pairs
    private readonly int[] _sampledSkipped;          // (users, restrictions)

    internal FullRankingResult(string scorer, int[] requestedKs, int[] ks, int universe, int[] users, int[] candidates,
        string[] restrictionNames, double[] hr, double[] recall, double[] ndcg, double[] mrr, int[] relevant,
        int sampledNegatives, int sampledK, int[] sampledPairs, double[] sampledHr, double[] sampledNdcg, int[] sampledSkipped, List<string> notes)
    {
        Scorer = scorer; RequestedKs = requestedKs; Ks = ks; UniverseSize = universe; _users = users; _candidates = candidates;
        _hr = hr; _recall = recall; _ndcg = ndcg; _mrr = mrr; _relevant = relevant;
        SampledNegatives = sampledNegatives; SampledK = sampledK;
        _sampledPairs = sampledPairs; _sampledHr = sampledHr; _sampledNdcg = sampledNdcg; _sampledSkipped = sampledSkipped;
        _nk = ks.Length; _nr = restrictionNames.Length;
        var all = new bool[users.Length];
        Array.Fill(all, true);
        Restrictions = restrictionNames.Select((name, f) => Summarize(name, all, f)).ToArray();
        var overall = Restrictions[0];
        int skipped = overall.UsersSkipped;
        if (skipped > 0) notes.Add($"{skipped} of {users.Length} users have no relevant (test positive) item among the candidates and are skipped");
        for (int q = 0; q < _nk; q++)
            if (overall.UsersBelowK[q] > 0)
                notes.Add($"{overall.UsersBelowK[q]} users have fewer than {Ks[q]} candidates: their @{Ks[q]} metrics rank every candidate");
        if (sampledNegatives > 0)
        {
            notes.Add($"sampled metrics: each relevant item ranked among {sampledNegatives} negatives drawn uniformly with replacement from the user's non-relevant candidates (seeded); not comparable with full ranking");
            if (overall.Sampled!.PairsSkipped > 0) notes.Add($"sampled metrics: {overall.Sampled.PairsSkipped} (user, item) pairs had no negative to draw and are skipped");
        }
        Notes = notes;
    }

    private readonly int[] _users, _candidates;

    /// <summary>The scorer's name.</summary>
    public string Scorer { get; }
    /// <summary>The cut-offs as requested.</summary>
    public int[] RequestedKs { get; }
    /// <summary>The cut-offs used: each requested K capped at <see cref="UniverseSize"/>.</summary>
    public int[] Ks { get; }
    /// <summary>Items in the candidate universe (V without an item mask).</summary>
    public int UniverseSize { get; }
    /// <summary>Negatives per pair of the sampled variant (0 = off).</summary>
    public int SampledNegatives { get; }
    /// <summary>Cut-off of the sampled variant.</summary>
    public int SampledK { get; }
    /// <summary>Plain-language notes: capped cut-offs, skipped users, users with few candidates, the sampled variant.</summary>
    public IReadOnlyList<string> Notes { get; }
    /// <summary>Metrics over every relevant item (restriction 0).</summary>
    public RankingSummary Overall => Restrictions[0];
    /// <summary>Restriction 0 ("all"), then one per <see cref="FullRankingOptions.RelevantFilters"/>.</summary>
    public IReadOnlyList<RankingSummary> Restrictions { get; }
    /// <summary>The users considered, in evaluation order; per-user values align with it.</summary>
    public ReadOnlySpan<int> Users => _users;
    /// <summary>Candidates per user (aligned with <see cref="Users"/>).</summary>
    public ReadOnlySpan<int> Candidates => _candidates;

    /// <summary>Relevant items of each user under <paramref name="restriction"/> (0 = skipped), aligned with <see cref="Users"/>.</summary>
    public int[] RelevantCounts(int restriction = 0)
    {
        CheckRestriction(restriction);
        var r = new int[_users.Length];
        for (int p = 0; p < r.Length; p++) r[p] = _relevant[p * _nr + restriction];
        return r;
    }

    /// <summary>Per-user values of <paramref name="metric"/> at cut-off <paramref name="k"/> (a value of <see cref="Ks"/>
    /// or <see cref="RequestedKs"/>; ignored for MRR) under <paramref name="restriction"/>, aligned with
    /// <see cref="Users"/>; NaN for skipped users.</summary>
    public double[] PerUser(RankingMetric metric, int k = 10, int restriction = 0)
    {
        CheckRestriction(restriction);
        int q = metric == RankingMetric.Mrr ? 0 : KIndex(k);
        var r = new double[_users.Length];
        for (int p = 0; p < r.Length; p++)
        {
            int pr = p * _nr + restriction;
            r[p] = _relevant[pr] == 0 ? double.NaN : metric switch
            {
                RankingMetric.HitRate => _hr[pr * _nk + q],
                RankingMetric.Recall => _recall[pr * _nk + q],
                RankingMetric.Ndcg => _ndcg[pr * _nk + q],
                _ => _mrr[pr],
            };
        }
        return r;
    }

    /// <summary>The metrics of <paramref name="restriction"/> averaged over the considered users that are members of the
    /// user slice <paramref name="users"/> (no re-scoring).</summary>
    public RankingSummary Summarize(Slice users, int restriction = 0)
    {
        ArgumentNullException.ThrowIfNull(users);
        if (users.Kind != SliceKind.User) throw new ArgumentException($"slice '{users.Name}' selects {users.Selects}; pass a user slice", nameof(users));
        CheckRestriction(restriction);
        var include = new bool[_users.Length];
        for (int p = 0; p < include.Length; p++)
        {
            int u = _users[p];
            if (u >= users.Members.Length) throw new ArgumentException($"user slice '{users.Name}' has {users.Members.Length} members but user index {u} was evaluated", nameof(users));
            include[p] = users.Members[u];
        }
        return Summarize(users.Name, include, restriction);
    }

    private RankingSummary Summarize(string name, bool[] include, int f)
    {
        var hr = new double[_nk]; var recall = new double[_nk]; var ndcg = new double[_nk]; var below = new int[_nk];
        double mrr = 0, sHr = 0, sNdcg = 0;
        long pairs = 0, pairsSkipped = 0;
        int used = 0, considered = 0;
        for (int p = 0; p < _users.Length; p++)
        {
            if (!include[p]) continue;
            considered++;
            int pr = p * _nr + f;
            if (_relevant[pr] == 0) continue;
            used++;
            for (int q = 0; q < _nk; q++)
            {
                hr[q] += _hr[pr * _nk + q]; recall[q] += _recall[pr * _nk + q]; ndcg[q] += _ndcg[pr * _nk + q];
                if (_candidates[p] < Ks[q]) below[q]++;
            }
            mrr += _mrr[pr];
            pairs += _sampledPairs[pr]; pairsSkipped += _sampledSkipped[pr]; sHr += _sampledHr[pr]; sNdcg += _sampledNdcg[pr];
        }
        for (int q = 0; q < _nk; q++) { hr[q] = Mean(hr[q], used); recall[q] = Mean(recall[q], used); ndcg[q] = Mean(ndcg[q], used); }
        var sampled = SampledNegatives == 0 ? null
            : new SampledRanking(SampledNegatives, SampledK, Mean(sHr, pairs), Mean(sNdcg, pairs), pairs, pairsSkipped);
        return new RankingSummary(name, (int[])Ks.Clone(), hr, recall, ndcg, Mean(mrr, used), used, considered - used, below, sampled);
    }

    private static double Mean(double sum, long n) => n == 0 ? double.NaN : sum / n;

    private int KIndex(int k)
    {
        for (int q = 0; q < _nk; q++) if (Ks[q] == k) return q;
        for (int q = 0; q < _nk; q++) if (RequestedKs[q] == k) return q;
        throw new ArgumentException($"K = {k} was not evaluated (Ks: {string.Join(", ", Ks)})", nameof(k));
    }

    private void CheckRestriction(int restriction)
    {
        if ((uint)restriction >= (uint)_nr)
            throw new ArgumentOutOfRangeException(nameof(restriction), restriction, $"restriction must be in [0, {_nr}) (0 = all relevant items)");
    }
}

/// <summary>
/// Full-ranking evaluation at the start of the test window. For every user considered: the candidates are every universe
/// item the user did not interact with before the test window (<see cref="EvalWindow.HistoryBeforeTest"/>), plus the
/// user's test items in the universe even when seen before; the relevant items are the user's distinct test positives
/// (label &gt;= 0.5) in the universe. Users with no relevant item are skipped and counted.
/// <para>Ties: every metric is its expectation under a uniformly random order of equal scores, so a scorer giving
/// thousands of items the same score gains nothing from index order (see <see cref="TiedRanking"/> for the exact
/// expressions; NDCG equals sklearn's ndcg_score with ignore_ties=False). No sort: for each relevant item the candidates
/// with a strictly greater and an equal score are counted with vector compares over the V scores, history masked out.</para>
/// <para>Per-user work runs on <see cref="CpuParallel"/>; every value is computed by one thread and averaged in user
/// order, so results do not depend on the thread count.</para>
/// </summary>
public static class FullRanking
{
    /// <summary>Evaluates <paramref name="scorer"/> on <paramref name="window"/> (see <see cref="FullRanking"/>).</summary>
    public static FullRankingResult Evaluate(EvalWindow window, IItemScorer scorer, FullRankingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(window); ArgumentNullException.ThrowIfNull(scorer);
        options ??= new FullRankingOptions();
        var run = new Run(window, scorer, options);
        int n = run.Users.Length, V = window.ItemCount, batch = Math.Min(options.BatchUsers, Math.Max(n, 1));
        var buffer = new float[(long)batch * V];   // (batch, V)
        var scratch = new Scratch?[CpuParallel.Threads];
        for (int b0 = 0; b0 < n; b0 += batch)
        {
            int len = Math.Min(batch, n - b0);
            var scores = buffer.AsSpan(0, len * V);
            scores.Fill(float.NaN); // an unwritten score is caught as non-finite
            scorer.ScoreItems(window, run.Users.AsSpan(b0, len), scores);
            var job = new UserJob(run, buffer, b0, scratch);
            CpuParallel.ForRange(len, ref job, scratch.Length);
        }
        return run.Result();
    }

    private readonly struct UserJob(Run run, float[] buffer, int first, Scratch?[] scratch) : IParallelRangeJob
    {
        public void Execute(int start, int end, int part)
        {
            var s = scratch[part] ??= new Scratch(run.Window.ItemCount);
            int V = run.Window.ItemCount;
            for (int i = start; i < end; i++) run.EvaluateUser(first + i, buffer.AsSpan(i * V, V), s);
        }
    }

    /// <summary>Per-thread working memory, reused across users (stamps avoid clearing).</summary>
    private sealed class Scratch(int V)
    {
        public readonly int[] HistoryStamp = new int[V], TestStamp = new int[V], RelevantStamp = new int[V]; // (V)
        public readonly int[] Relevant = new int[V], Greater = new int[V], Equal = new int[V], Pool = new int[V];
        public readonly float[] Key = new float[V];
        public readonly int[] SubGreater = new int[V], SubEqual = new int[V];
        public readonly float[] SubScore = new float[V];
    }

    /// <summary>The validated setup of one evaluation and its output arrays, one slot per (user, restriction, K).</summary>
    private sealed class Run
    {
        public readonly EvalWindow Window;
        public readonly int[] Users;
        private readonly IItemScorer _scorer;
        private readonly bool[]? _mask;
        private readonly float[]? _maskBias;  // (V) 0 in the universe, −∞ outside
        private readonly int _universe;
        private readonly int[] _requestedKs, _ks;
        private readonly double[] _discount, _sampledDiscount;
        private readonly Slice[] _filters;
        private readonly int _nr, _nk, _negatives, _sampledK;
        private readonly ulong _seed;
        private readonly List<string> _notes = [];
        private readonly int[] _candidates, _relevant, _sampledPairs, _sampledSkipped;
        private readonly double[] _hr, _recall, _ndcg, _mrr, _sampledHr, _sampledNdcg;

        public Run(EvalWindow window, IItemScorer scorer, FullRankingOptions o)
        {
            Window = window; _scorer = scorer;
            int V = window.ItemCount, U = window.UserCount;
            if (V == 0) throw new ArgumentException("the window's catalogue is empty: there is nothing to rank", nameof(window));
            if (o.Ks is null || o.Ks.Length == 0) throw new ArgumentException("Ks is empty: give at least one cut-off K", nameof(o.Ks));
            foreach (int k in o.Ks) if (k < 1) throw new ArgumentOutOfRangeException(nameof(o.Ks), k, $"every K must be >= 1, got {k}");
            if (o.SampledNegatives < 0) throw new ArgumentOutOfRangeException(nameof(o.SampledNegatives), o.SampledNegatives, "SampledNegatives must be >= 0 (0 = off)");
            if (o.SampledK < 1) throw new ArgumentOutOfRangeException(nameof(o.SampledK), o.SampledK, "SampledK must be >= 1");
            if (o.BatchUsers < 1) throw new ArgumentOutOfRangeException(nameof(o.BatchUsers), o.BatchUsers, "BatchUsers must be >= 1");
            if ((long)Math.Min(o.BatchUsers, U) * V > Array.MaxLength)
                throw new ArgumentOutOfRangeException(nameof(o.BatchUsers), o.BatchUsers, $"BatchUsers x V = {o.BatchUsers} x {V} floats exceeds one array; lower BatchUsers");

            Users = o.Users?.ToArray() ?? window.TestUsers.ToArray();
            var seen = new bool[U];
            for (int p = 0; p < Users.Length; p++)
            {
                int u = Users[p];
                if ((uint)u >= (uint)U) throw new ArgumentOutOfRangeException(nameof(o.Users), u, $"Users[{p}] = {u} is outside [0, {U})");
                if (seen[u]) throw new ArgumentException($"Users[{p}] = {u} ('{window.UserIds[u]}') is listed twice", nameof(o.Users));
                seen[u] = true;
            }

            _mask = o.ItemMask;
            _universe = V;
            if (_mask is not null)
            {
                if (_mask.Length != V) throw new ArgumentException($"ItemMask has {_mask.Length} flags but the catalogue has {V} items", nameof(o.ItemMask));
                _universe = 0;
                _maskBias = new float[V];
                for (int i = 0; i < V; i++) if (_mask[i]) _universe++; else _maskBias[i] = float.NegativeInfinity;
                if (_universe == 0) throw new ArgumentException("ItemMask selects no item: the candidate universe is empty", nameof(o.ItemMask));
            }

            _requestedKs = (int[])o.Ks.Clone();
            _ks = _requestedKs.Select(k => Math.Min(k, _universe)).ToArray();
            for (int q = 0; q < _ks.Length; q++)
                if (_ks[q] < _requestedKs[q])
                    _notes.Add($"K = {_requestedKs[q]} exceeds the {_universe} items of the candidate universe; capped to {_ks[q]}");
            _discount = TiedRanking.DiscountPrefix(_ks.Max());

            _filters = o.RelevantFilters?.ToArray() ?? [];
            foreach (var f in _filters)
            {
                ArgumentNullException.ThrowIfNull(f, nameof(o.RelevantFilters));
                if (f.Kind != SliceKind.Item) throw new ArgumentException($"relevant filter '{f.Name}' selects {f.Selects}; relevant filters must be item slices", nameof(o.RelevantFilters));
                if (f.Members.Length != V) throw new ArgumentException($"relevant filter '{f.Name}' has {f.Members.Length} flags but the catalogue has {V} items", nameof(o.RelevantFilters));
            }
            _nr = 1 + _filters.Length; _nk = _ks.Length;
            _negatives = o.SampledNegatives; _sampledK = o.SampledK; _seed = o.Seed ^ 0x5A_4D_50_4C_0000_0003UL;
            _sampledDiscount = TiedRanking.DiscountPrefix(_sampledK);

            int n = Users.Length;
            _candidates = new int[n];
            _relevant = new int[n * _nr]; _mrr = new double[n * _nr];
            _hr = new double[n * _nr * _nk]; _recall = new double[n * _nr * _nk]; _ndcg = new double[n * _nr * _nk];
            _sampledPairs = new int[n * _nr]; _sampledSkipped = new int[n * _nr];
            _sampledHr = new double[n * _nr]; _sampledNdcg = new double[n * _nr];
        }

        public FullRankingResult Result() => new(_scorer.Name, _requestedKs, _ks, _universe, Users, _candidates,
            ["all", .. _filters.Select(f => f.Name)], _hr, _recall, _ndcg, _mrr, _relevant,
            _negatives, _sampledK, _sampledPairs, _sampledHr, _sampledNdcg, _sampledSkipped, _notes);

        /// <summary>Every metric of the user at position <paramref name="p"/>, whose scores are <paramref name="row"/> (V,
        /// overwritten: non-candidates become −∞).</summary>
        public void EvaluateUser(int p, Span<float> row, Scratch s)
        {
            int u = Users[p], stamp = p + 1;
            CheckFinite(row, u);

            // Test items in the universe (candidates even if seen) and the distinct relevant ones.
            var test = Window.TestRows(u);
            int nRel = 0;
            for (int r = 0; r < test.Count; r++)
            {
                int it = test.Items[r];
                if (_mask is not null && !_mask[it]) continue;
                s.TestStamp[it] = stamp;
                if (test.Labels[r] >= 0.5f && s.RelevantStamp[it] != stamp) { s.RelevantStamp[it] = stamp; s.Relevant[nRel++] = it; }
            }

            // Candidates: the universe minus history items that are not test items.
            if (_maskBias is not null) AddInPlace(row, _maskBias);
            int candidates = _universe;
            foreach (int h in Window.HistoryBeforeTest(u).Items)
            {
                if ((_mask is not null && !_mask[h]) || s.TestStamp[h] == stamp || s.HistoryStamp[h] == stamp) continue;
                s.HistoryStamp[h] = stamp;
                row[h] = float.NegativeInfinity;
                candidates--;
            }
            _candidates[p] = candidates;
            if (nRel == 0) return; // skipped: relevant counts stay 0

            // Relevant items by descending score (key = −score), then their greater / equal counts.
            var rel = s.Relevant.AsSpan(0, nRel); var key = s.Key.AsSpan(0, nRel);
            for (int j = 0; j < nRel; j++) key[j] = -row[rel[j]];
            key.Sort(rel);
            for (int j = 0; j < nRel; j++) Count(row, -key[j], out s.Greater[j], out s.Equal[j]);

            for (int f = 0; f < _nr; f++)
            {
                int m = 0;
                for (int j = 0; j < nRel; j++)
                {
                    if (f > 0 && !_filters[f - 1].Members[rel[j]]) continue;
                    s.SubScore[m] = -key[j]; s.SubGreater[m] = s.Greater[j]; s.SubEqual[m] = s.Equal[j]; m++;
                }
                int pr = p * _nr + f;
                _relevant[pr] = m;
                if (m == 0) continue;
                _mrr[pr] = TiedRanking.Compute(s.SubScore.AsSpan(0, m), s.SubGreater.AsSpan(0, m), s.SubEqual.AsSpan(0, m), _ks, _discount,
                    _hr.AsSpan(pr * _nk, _nk), _recall.AsSpan(pr * _nk, _nk), _ndcg.AsSpan(pr * _nk, _nk));
            }
            if (_negatives > 0) Sampled(p, u, row, rel, s, stamp);
        }

        /// <summary>The sampled variant: each relevant item against negatives drawn from the non-relevant candidates.</summary>
        private void Sampled(int p, int u, Span<float> row, Span<int> rel, Scratch s, int stamp)
        {
            int pool = 0;
            for (int i = 0; i < row.Length; i++)
                if (row[i] != float.NegativeInfinity && s.RelevantStamp[i] != stamp) s.Pool[pool++] = i;
            ulong userSeed = Rng.Hash(_seed, (ulong)u);
            foreach (int it in rel)
            {
                bool skip = pool == 0;
                double hit = 0, ndcg = 0;
                if (!skip)
                {
                    float sc = row[it];
                    int greater = 0, equal = 1;
                    for (int d = 0; d < _negatives; d++)
                    {
                        float v = row[s.Pool[(int)(Rng.Hash(userSeed, (ulong)it * (ulong)_negatives + (ulong)d) % (ulong)pool)]];
                        if (v > sc) greater++; else if (v == sc) equal++;
                    }
                    (hit, ndcg) = TiedRanking.Single(greater, equal, _sampledK, _sampledDiscount);
                }
                for (int f = 0; f < _nr; f++)
                {
                    if (f > 0 && !_filters[f - 1].Members[it]) continue;
                    int pr = p * _nr + f;
                    if (skip) { _sampledSkipped[pr]++; continue; }
                    _sampledPairs[pr]++; _sampledHr[pr] += hit; _sampledNdcg[pr] += ndcg;
                }
            }
        }

        private void CheckFinite(ReadOnlySpan<float> row, int u)
        {
            ref float r0 = ref MemoryMarshal.GetReference(row);
            int i = 0, c = Vector256<float>.Count;
            for (; i <= row.Length - c; i += c)
            {
                var v = Vector256.LoadUnsafe(ref r0, (nuint)i);
                if (!Vector256.EqualsAll(v - v, Vector256<float>.Zero)) break; // NaN or ±∞ give NaN
            }
            for (; i < row.Length; i++)
                if (!float.IsFinite(row[i]))
                    throw new InvalidDataException(
                        $"scorer '{_scorer.Name}' gave item '{Window.Catalog.Id(i)}' (index {i}) the score {row[i].ToString(CultureInfo.InvariantCulture)} for user '{Window.UserIds[u]}'; " +
                        "scores must be finite (NaN also means the scorer left the score unwritten)");
        }
    }

    /// <summary>Counts the entries of <paramref name="row"/> strictly greater than and equal to <paramref name="s"/>.</summary>
    internal static void Count(ReadOnlySpan<float> row, float s, out int greater, out int equal)
    {
        ref float r0 = ref MemoryMarshal.GetReference(row);
        var vs = Vector256.Create(s);
        Vector256<int> gt = Vector256<int>.Zero, eq = Vector256<int>.Zero;
        int i = 0, c = Vector256<float>.Count;
        for (; i <= row.Length - c; i += c)
        {
            var v = Vector256.LoadUnsafe(ref r0, (nuint)i);
            gt -= Vector256.GreaterThan(v, vs).AsInt32(); // all-ones = −1 per match
            eq -= Vector256.Equals(v, vs).AsInt32();
        }
        greater = Vector256.Sum(gt); equal = Vector256.Sum(eq);
        for (; i < row.Length; i++) { if (row[i] > s) greater++; else if (row[i] == s) equal++; }
    }

    private static void AddInPlace(Span<float> row, ReadOnlySpan<float> bias)
    {
        ref float r0 = ref MemoryMarshal.GetReference(row);
        ref float b0 = ref MemoryMarshal.GetReference(bias);
        int i = 0, c = Vector256<float>.Count;
        for (; i <= row.Length - c; i += c)
            (Vector256.LoadUnsafe(ref r0, (nuint)i) + Vector256.LoadUnsafe(ref b0, (nuint)i)).StoreUnsafe(ref r0, (nuint)i);
        for (; i < row.Length; i++) row[i] += bias[i];
    }
}
