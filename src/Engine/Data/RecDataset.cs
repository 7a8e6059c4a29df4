// Builds examples from interactions: negative sampling, leak-free user contexts in one time-ordered pass, and the split.
using FastRec.Kernels;

namespace FastRec.Engine.Data;

/// <summary>Train, validation and test <see cref="ExampleSet"/>s built from one <see cref="InteractionTable"/>.
/// <para>Context (segment A) of an example at time t: the user's last K positive (label &gt;= 0.5) interactions with
/// timestamp strictly less than t, most recent first. Equal timestamps are not "before": interactions sharing a
/// timestamp never see each other. Among earlier positives with equal timestamps the later file row counts as more
/// recent. Contexts are built in one pass in time order with a ring of the last K positives per user; they draw on every
/// real interaction before t whatever its split (the user's observed history), never on sampled negatives.</para>
/// <para>Negative sampling (<see cref="ExampleOptions.NegativesPerPositive"/>): for each positive interaction, items
/// drawn uniformly from the catalog that the user never interacted with (any label, any time, any split); a sampled
/// negative has label 0 and inherits the timestamp, weight, dense features, context and split of its interaction.</para></summary>
public sealed class RecDataset
{
    private RecDataset(InteractionTable table, ExampleOptions options, ExampleSet train, ExampleSet validation, ExampleSet test, int sampled)
    {
        Table = table; Options = options; Train = train; Validation = validation; Test = test; SampledNegatives = sampled;
    }

    /// <summary>The interactions the examples came from.</summary>
    public InteractionTable Table { get; }
    /// <summary>The options used.</summary>
    public ExampleOptions Options { get; }
    /// <summary>The item catalog (shared by every split).</summary>
    public ItemCatalog Catalog => Table.Catalog;
    /// <summary>Training examples (the earliest under a temporal split).</summary>
    public ExampleSet Train { get; }
    /// <summary>Validation examples.</summary>
    public ExampleSet Validation { get; }
    /// <summary>Test examples (the latest under a temporal split).</summary>
    public ExampleSet Test { get; }
    /// <summary>Negatives added by negative sampling, over all splits.</summary>
    public int SampledNegatives { get; }

    /// <summary>Reads an interactions file and an items file (CSV/TSV with headers) and builds the examples.</summary>
    public static RecDataset Load(string interactionsPath, string itemsPath, InteractionFileOptions? interactions = null,
        ItemFileOptions? items = null, ExampleOptions? examples = null)
        => Build(InteractionTable.Load(interactionsPath, ItemCatalog.Load(itemsPath, items), interactions), examples);

    /// <summary>Reads MovieTweetings from <paramref name="directory"/> (default: the vendored 100k snapshot) and builds
    /// the examples; label = rating &gt;= <paramref name="positiveThreshold"/>.</summary>
    public static RecDataset LoadMovieTweetings(string? directory = null, ExampleOptions? examples = null,
        double positiveThreshold = MovieTweetings.DefaultPositiveThreshold)
        => Build(MovieTweetings.Load(directory ?? MovieTweetings.FindVendoredDirectory(), positiveThreshold), examples);

    /// <summary>Builds examples from <paramref name="table"/>. Bad options are <see cref="ArgumentOutOfRangeException"/>;
    /// a split left empty is an <see cref="InvalidDataException"/>.</summary>
    public static RecDataset Build(InteractionTable table, ExampleOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(table);
        options ??= new ExampleOptions();
        var (sets, sampled) = Examples(table, options, single: false);
        return new RecDataset(table, options, sets[0], sets[1], sets[2], sampled);
    }

    /// <summary>Every example of <paramref name="table"/> in one set named "all" (no split; the split options are
    /// ignored): scoring a file with <c>fastrec predict</c>. Contexts and negative sampling as in <see cref="Build"/>.</summary>
    public static ExampleSet BuildAll(InteractionTable table, ExampleOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(table);
        options ??= new ExampleOptions();
        return Examples(table, options, single: true).Sets[0];
    }

    private static (ExampleSet[] Sets, int Sampled) Examples(InteractionTable table, ExampleOptions options, bool single)
    {
        Validate(options);
        int K = options.ContextSize, F = table.DenseNames.Length, N = table.Count, U = table.UserIds.Length;
        var ts = table.Timestamps; var labels = table.Labels; var users = table.Users; var items = table.Items;

        // 1. Real interactions in time order; equal timestamps keep file order.
        var order = new int[N];
        for (int i = 0; i < N; i++) order[i] = i;
        order.AsSpan().Sort(new ByTimeThenRow(table.Timestamps.ToArray()));

        // 2. Examples: each interaction, then its sampled negatives (same timestamp, so time order holds). (M)
        int negPer = options.NegativesPerPositive;
        int positives = 0;
        foreach (float y in labels) if (y >= 0.5f) positives++;
        int M = checked(N + positives * negPer);
        var exUser = new int[M]; var exItem = new int[M]; var exLabel = new float[M]; var exWeight = new float[M];
        var exTs = new long[M]; var exSampled = new bool[M]; var exRow = new int[M];
        var sampler = negPer > 0 ? new NegativeSampler(table, options.Seed) : null;
        int m = 0;
        foreach (int r in order)
        {
            exUser[m] = users[r]; exItem[m] = items[r]; exLabel[m] = labels[r]; exWeight[m] = table.Weights[r]; exTs[m] = ts[r]; exRow[m] = r; m++;
            if (sampler is null || labels[r] < 0.5f) continue;
            for (int j = 0; j < negPer; j++)
            {
                exUser[m] = users[r]; exItem[m] = sampler.Draw(users[r]); exLabel[m] = 0; exWeight[m] = table.Weights[r];
                exTs[m] = ts[r]; exSampled[m] = true; exRow[m] = r; m++;
            }
        }

        // 3. Contexts in one pass: for each group of equal timestamps, read every context first, then push the group's
        //    positives into the per-user rings of the last K positive items.
        var ring = new int[(long)U * K];   // (U, K)
        var head = new int[U];             // next write slot per user
        var filled = new int[U];           // min(positives so far, K)
        var offsets = new int[M + 1];      // (M+1)
        var ctx = new List<int>((int)Math.Min((long)M * Math.Min(K, 4), 1 << 26));
        for (int g = 0; g < M;)
        {
            int h = g;
            while (h < M && exTs[h] == exTs[g]) h++;
            for (int p = g; p < h; p++)
            {
                int u = exUser[p], baseSlot = u * K;
                for (int j = 0, slot = head[u]; j < filled[u]; j++)
                {
                    slot = slot == 0 ? K - 1 : slot - 1;
                    ctx.Add(ring[baseSlot + slot]);
                }
                offsets[p + 1] = ctx.Count;
            }
            for (int p = g; p < h; p++)
            {
                if (exSampled[p] || exLabel[p] < 0.5f) continue;
                int u = exUser[p];
                ring[u * K + head[u]] = exItem[p];
                head[u] = head[u] + 1 == K ? 0 : head[u] + 1;
                if (filled[u] < K) filled[u]++;
            }
            g = h;
        }

        // 4. Split: 0 train, 1 validation, 2 test, per example position.
        var split = new byte[M];
        if (single) { }
        else if (options.Split == SplitKind.Temporal && options.ValidationStart is long vs && options.TestStart is long tst)
        {
            for (int p = 0; p < M; p++) split[p] = (byte)(exTs[p] < vs ? 0 : exTs[p] < tst ? 1 : 2);
        }
        else if (options.Split == SplitKind.Temporal)
        {
            int b1 = Cut(exTs, options.TrainFraction), b2 = Math.Max(b1, Cut(exTs, options.TrainFraction + options.ValidationFraction));
            for (int p = b1; p < M; p++) split[p] = (byte)(p < b2 ? 1 : 2);
        }
        else
        {
            // Fisher-Yates over the interactions; sampled negatives follow their interaction.
            var perm = new int[N];
            for (int i = 0; i < N; i++) perm[i] = i;
            ulong seed = options.Seed ^ 0x51_17_5E_ED_0000_0001UL;
            for (int i = N - 1; i > 0; i--)
            {
                int j = (int)(Rng.Hash(seed, (ulong)i) % (ulong)(i + 1));
                (perm[i], perm[j]) = (perm[j], perm[i]);
            }
            var rowSplit = new byte[N];
            int nTrain = (int)Math.Round(N * options.TrainFraction), nVal = (int)Math.Round(N * (options.TrainFraction + options.ValidationFraction)) - nTrain;
            for (int i = 0; i < N; i++) rowSplit[perm[i]] = (byte)(i < nTrain ? 0 : i < nTrain + nVal ? 1 : 2);
            for (int p = 0; p < M; p++) split[p] = rowSplit[exRow[p]];
        }

        // 5. Gather each split, keeping time order.
        var sets = new ExampleSet[single ? 1 : 3];
        string[] names = single ? ["all"] : ["train", "validation", "test"];
        for (int s = 0; s < sets.Length; s++)
        {
            int n = 0, c = 0;
            for (int p = 0; p < M; p++) if (split[p] == s) { n++; c += offsets[p + 1] - offsets[p]; }
            if (n == 0)
                throw new InvalidDataException(
                    $"{table.Source}: the {names[s]} split is empty ({N} interactions, {M} examples, {options.Split} split " +
                    $"{options.TrainFraction:0.###}/{options.ValidationFraction:0.###}/{1 - options.TrainFraction - options.ValidationFraction:0.###}" +
                    (options.Split == SplitKind.Temporal ? "; examples with equal timestamps stay on one side of a boundary" : "") +
                    "); use more data or other fractions");
            var su = new int[n]; var si = new int[n]; var sl = new float[n]; var sw = new float[n]; var st = new long[n]; var ss = new bool[n];
            var so = new int[n + 1]; var sc = new int[c]; var sd = new float[n * F];
            var allCtx = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(ctx);
            int q = 0;
            for (int p = 0; p < M; p++)
            {
                if (split[p] != s) continue;
                su[q] = exUser[p]; si[q] = exItem[p]; sl[q] = exLabel[p]; sw[q] = exWeight[p]; st[q] = exTs[p]; ss[q] = exSampled[p];
                var pc = allCtx[offsets[p]..offsets[p + 1]];
                pc.CopyTo(sc.AsSpan(so[q]));
                so[q + 1] = so[q] + pc.Length;
                if (F > 0) table.Dense.Slice(exRow[p] * F, F).CopyTo(sd.AsSpan(q * F, F));
                q++;
            }
            sets[s] = new ExampleSet(names[s], table.Catalog, table.UserIds, table.DenseNames, K, su, si, sl, sw, st, ss, so, sc, sd);
        }
        return (sets, M - N);
    }

    /// <summary>First position of the later side of a temporal boundary at <paramref name="fraction"/> of the examples,
    /// moved forward past examples sharing the timestamp just before it.</summary>
    private static int Cut(long[] ts, double fraction)
    {
        int b = (int)Math.Clamp(Math.Round(ts.Length * fraction), 0, ts.Length);
        while (b > 0 && b < ts.Length && ts[b] == ts[b - 1]) b++;
        return b;
    }

    /// <summary>See <see cref="ExampleOptions.Validate"/>.</summary>
    internal static void Validate(ExampleOptions o)
    {
        if (o.ContextSize < 1 || o.ContextSize > ExampleOptions.MaxContextSize)
            throw new ArgumentOutOfRangeException(nameof(o.ContextSize), o.ContextSize, $"context size K must be in [1, {ExampleOptions.MaxContextSize}], got {o.ContextSize}");
        if (!(o.TrainFraction > 0 && o.TrainFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(o.TrainFraction), o.TrainFraction, $"train fraction must be in (0, 1), got {o.TrainFraction}");
        if (!(o.ValidationFraction > 0 && o.ValidationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(o.ValidationFraction), o.ValidationFraction, $"validation fraction must be in (0, 1), got {o.ValidationFraction}");
        if (!(o.TrainFraction + o.ValidationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(o.ValidationFraction), o.ValidationFraction,
                $"train + validation fractions must be < 1 to leave a test split, got {o.TrainFraction} + {o.ValidationFraction}");
        if ((o.ValidationStart is null) != (o.TestStart is null))
            throw new ArgumentException($"ValidationStart and TestStart must be set together (got {o.ValidationStart?.ToString() ?? "null"} and {o.TestStart?.ToString() ?? "null"})");
        if (o.ValidationStart is long v && o.TestStart is long t && v > t)
            throw new ArgumentOutOfRangeException(nameof(o.TestStart), t, $"TestStart {t} is before ValidationStart {v}");
        if (o.ValidationStart is not null && o.Split != SplitKind.Temporal)
            throw new ArgumentException("ValidationStart/TestStart need the temporal split");
        if (o.NegativesPerPositive < 0 || o.NegativesPerPositive > 100)
            throw new ArgumentOutOfRangeException(nameof(o.NegativesPerPositive), o.NegativesPerPositive, $"negatives per positive must be in [0, 100], got {o.NegativesPerPositive}");
    }

    private readonly struct ByTimeThenRow(long[] ts) : IComparer<int>
    {
        public int Compare(int a, int b)
        {
            int c = ts[a].CompareTo(ts[b]);
            return c != 0 ? c : a.CompareTo(b);
        }
    }

    /// <summary>Uniform draws from the catalog, rejecting items the user interacted with; a counter RNG keyed by the
    /// seed, advanced once per attempt, so the draws depend only on the seed and the data.</summary>
    private sealed class NegativeSampler
    {
        private readonly HashSet<long> _seen;
        private readonly int[] _distinct;   // distinct items per user
        private readonly int _items;
        private readonly ulong _seed;
        private readonly string[] _userIds;
        private ulong _counter;

        public NegativeSampler(InteractionTable table, ulong seed)
        {
            _items = table.Catalog.Count; _seed = seed ^ 0x4E_E6_5A_4D_0000_0002UL; _userIds = table.UserIds;
            _seen = new HashSet<long>(table.Count);
            _distinct = new int[table.UserIds.Length];
            for (int i = 0; i < table.Count; i++)
                if (_seen.Add(Key(table.Users[i], table.Items[i]))) _distinct[table.Users[i]]++;
        }

        private static long Key(int user, int item) => ((long)user << 32) | (uint)item;

        public int Draw(int user)
        {
            if (_distinct[user] >= _items)
                throw new InvalidDataException($"negative sampling: user '{_userIds[user]}' interacted with all {_items} items; there is no item left to sample");
            for (int attempt = 0; attempt < 1_000_000; attempt++)
            {
                int item = (int)(Rng.Hash(_seed, _counter++) % (ulong)_items);
                if (!_seen.Contains(Key(user, item))) return item;
            }
            throw new InvalidDataException($"negative sampling: no unseen item found for user '{_userIds[user]}' in 1,000,000 draws");
        }
    }
}
