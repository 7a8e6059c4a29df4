// Student architecture derived from the teacher, and its initialisation from every k-th teacher layer (DistilBERT).
using FastRec.Engine.Model;

namespace FastRec.Engine.Distillation;

/// <summary>The student's shape; null fields are taken from the teacher. Everything else (vocabulary, positions, token
/// types, activation, LayerNorm eps, dropout, pooler, the adapter head) is the teacher's.</summary>
public sealed record StudentConfig
{
    /// <summary>L: encoder layers (required, at least 1).</summary>
    public int Layers { get; init; } = 3;
    /// <summary>C: hidden width; null = the teacher's.</summary>
    public int? Hidden { get; init; }
    /// <summary>NH: attention heads; null = the teacher's (or, with a different width, the largest divisor of C not above the teacher's heads).</summary>
    public int? Heads { get; init; }
    /// <summary>F: feed-forward width; null = the teacher's when C is the teacher's, else 4·C.</summary>
    public int? Intermediate { get; init; }
}

/// <summary>Which tensors of a student were copied from which teacher tensors.</summary>
public sealed class StudentInit
{
    /// <summary>(student tensor, teacher tensor) pairs copied bit for bit.</summary>
    public IReadOnlyList<(string Student, string Teacher)> Copied { get; init; } = [];
    /// <summary>Teacher layer each student layer was initialised from; -1 = fresh (random).</summary>
    public IReadOnlyList<int> LayerSources { get; init; } = [];
    /// <summary>A one-line summary for logs.</summary>
    public string Summary { get; init; } = "";
}

/// <summary>Builds students from teachers.</summary>
public static class Student
{
    /// <summary>The student's <see cref="BertConfig"/>: a copy of <paramref name="teacher"/> with <paramref name="config"/>'s shape.</summary>
    /// <exception cref="InvalidDataException">a field is out of range (the message names it).</exception>
    public static BertConfig Derive(BertConfig teacher, StudentConfig config)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(config);
        if (config.Layers < 1) throw new InvalidDataException($"StudentConfig.Layers must be at least 1, got {config.Layers}");
        var s = BertConfig.Parse(teacher.ToJson());
        int C = config.Hidden ?? teacher.HiddenSize;
        if (C < 1) throw new InvalidDataException($"StudentConfig.Hidden must be positive, got {C}");
        int nh = config.Heads ?? (C == teacher.HiddenSize ? teacher.NumAttentionHeads : LargestDivisor(C, teacher.NumAttentionHeads));
        if (nh < 1 || C % nh != 0)
            throw new InvalidDataException($"StudentConfig.Heads ({nh}) must be positive and divide the hidden width ({C})");
        int F = config.Intermediate ?? (C == teacher.HiddenSize ? teacher.IntermediateSize : 4 * C);
        if (F < 1) throw new InvalidDataException($"StudentConfig.Intermediate must be positive, got {F}");
        s.NumHiddenLayers = config.Layers;
        s.HiddenSize = C;
        s.NumAttentionHeads = nh;
        s.IntermediateSize = F;
        s.Validate();
        return s;
    }

    private static int LargestDivisor(int c, int atMost)
    {
        for (int d = Math.Min(c, atMost); d > 1; d--)
            if (c % d == 0) return d;
        return 1;
    }

    /// <summary>
    /// The teacher layer each student layer starts from: every k-th, k = ⌊L_t / L_s⌋, from the bottom (student layer i ←
    /// teacher layer i·k, as DistilBERT takes alternate layers). Needs L_s ≤ L_t.
    /// </summary>
    public static int[] EveryKth(int teacherLayers, int studentLayers)
    {
        if (studentLayers < 1 || studentLayers > teacherLayers)
            throw new ArgumentOutOfRangeException(nameof(studentLayers), studentLayers,
                $"a student of {studentLayers} layers cannot take every k-th layer of a {teacherLayers}-layer teacher (need 1 <= L_s <= L_t)");
        int k = teacherLayers / studentLayers;
        return Enumerable.Range(0, studentLayers).Select(i => i * k).ToArray();
    }

    /// <summary>
    /// Initialises <paramref name="student"/>: first HF random initialisation from <paramref name="seed"/>, then every tensor
    /// whose shape matches is copied from <paramref name="teacher"/>: the embeddings (when the widths match), student layer i
    /// from teacher layer <paramref name="layerSources"/>[i] (default <see cref="EveryKth"/>) when C, NH and F match, the
    /// pooler, and the head when the heads have the same shape. Anything else stays freshly initialised.
    /// </summary>
    public static StudentInit InitializeFrom(RecModel student, RecModel teacher, ulong seed, int[]? layerSources = null)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        student.InitRandom(seed);
        BertConfig s = student.Bert, t = teacher.Bert;
        int Ls = s.NumHiddenLayers, Lt = t.NumHiddenLayers;
        bool sameWidth = s.HiddenSize == t.HiddenSize;
        bool sameLayerShape = sameWidth && s.NumAttentionHeads == t.NumAttentionHeads && s.IntermediateSize == t.IntermediateSize
                              && s.HiddenAct == t.HiddenAct;
        var sources = new int[Ls];
        Array.Fill(sources, -1);
        if (sameLayerShape && Ls <= Lt)
        {
            var src = layerSources ?? EveryKth(Lt, Ls);
            if (src.Length != Ls)
                throw new ArgumentException($"layerSources: expected one teacher layer per student layer ({Ls}), got {src.Length}", nameof(layerSources));
            for (int i = 0; i < Ls; i++)
            {
                if (src[i] < 0 || src[i] >= Lt)
                    throw new ArgumentOutOfRangeException(nameof(layerSources), src[i], $"layerSources[{i}] = {src[i]} is not a teacher layer in [0, {Lt})");
                sources[i] = src[i];
            }
        }
        var copied = new List<(string, string)>();
        void Copy(string sName, string tName)
        {
            if (!student.Layout.Contains(sName) || !teacher.Layout.Contains(tName)) return;
            var a = student.Layout[sName]; var b = teacher.Layout[tName];
            if (!a.Shape.SequenceEqual(b.Shape)) return;
            student.SetParameter(sName, teacher.GetParameter(tName));
            copied.Add((sName, tName));
        }
        foreach (var p in student.Layout.Tensors)
        {
            if (p.Layer == ParameterLayout.EmbeddingsLayer || p.Layer == student.Layout.PoolerLayer)
            {
                if (sameWidth) Copy(p.Name, p.Name);
            }
            else if (p.Layer == student.Layout.HeadLayer)
            {
                if (sameWidth) Copy(p.Name, p.Name);
            }
            else if (sources[p.Layer] >= 0)
            {
                string prefix = $"encoder.layer.{p.Layer}.";
                Copy(p.Name, $"encoder.layer.{sources[p.Layer]}." + p.Name[prefix.Length..]);
            }
        }
        int fromTeacher = sources.Count(x => x >= 0);
        string summary = fromTeacher == 0
            ? $"student ({Ls} layers, C={s.HiddenSize}) initialised fresh (seed {seed}): " +
              (sameLayerShape ? "more student than teacher layers" : "its layers' shape differs from the teacher's") +
              $"; {copied.Count} tensors copied from the teacher"
            : $"student layers [{string.Join(", ", sources)}] <- teacher layers (every {Math.Max(1, Lt / Ls)}-th); {copied.Count} tensors copied";
        return new StudentInit { Copied = copied, LayerSources = sources, Summary = summary };
    }
}
