// Exact top-k of a score row: a k-slot heap behind a SIMD threshold pre-filter; ties by lower index; no allocation.
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FastRec.Engine.Evaluation;

/// <summary>Exact top-k selection over a row of scores (e.g. one user's scores of every catalogue item).</summary>
public static class TopK
{
    /// <summary>
    /// Writes the indices of the <paramref name="k"/> highest scores into <paramref name="indices"/>[..count], best first;
    /// equal scores rank by lower index. Items with <paramref name="exclude"/>[i] true (e.g. already seen) are never
    /// selected; an empty <paramref name="exclude"/> excludes nothing. Returns count = min(k, items not excluded).
    /// O(N) vector compares plus O(k log k) heap work for the few items above the running k-th score; allocates nothing.
    /// Scores may be ±Infinity but not NaN.
    /// </summary>
    public static int Select(ReadOnlySpan<float> scores, int k, Span<int> indices, ReadOnlySpan<bool> exclude = default)
    {
        if (k < 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be >= 0");
        if (indices.Length < k) throw new ArgumentException($"indices holds {indices.Length} slots but k is {k}", nameof(indices));
        if (!exclude.IsEmpty && exclude.Length != scores.Length)
            throw new ArgumentException($"exclude has {exclude.Length} elements but scores has {scores.Length}", nameof(exclude));
        int nan = FirstNaN(scores);
        if (nan >= 0) throw new ArgumentException($"scores[{nan}] is NaN; scores must be comparable", nameof(scores));
        if (k == 0) return 0;

        // heap[0] is the worst kept item (lowest score, then highest index).
        Span<int> heap = indices[..k];
        int size = 0, i = 0, n = scores.Length;
        for (; i < n && size < k; i++)
        {
            if (!exclude.IsEmpty && exclude[i]) continue;
            heap[size] = i;
            SiftUp(heap, size++, scores);
        }
        if (size == k)
        {
            // Every later index is higher than every kept one, so an equal score ranks below: only > threshold enters.
            float threshold = scores[heap[0]];
            ref float s0 = ref MemoryMarshal.GetReference(scores);
            int c = Vector256<float>.Count;
            for (; i <= n - c; i += c)
            {
                if (!Vector256.GreaterThanAny(Vector256.LoadUnsafe(ref s0, (nuint)i), Vector256.Create(threshold))) continue;
                for (int j = i; j < i + c; j++) Offer(heap, j, scores, exclude, ref threshold);
            }
            for (; i < n; i++) Offer(heap, i, scores, exclude, ref threshold);
        }
        // Heap sort: move the worst to the end repeatedly, leaving the best first.
        for (int end = size - 1; end > 0; end--)
        {
            (heap[0], heap[end]) = (heap[end], heap[0]);
            SiftDown(heap, 0, end, scores);
        }
        return size;
    }

    private static void Offer(Span<int> heap, int j, ReadOnlySpan<float> scores, ReadOnlySpan<bool> exclude, ref float threshold)
    {
        if (!(scores[j] > threshold) || (!exclude.IsEmpty && exclude[j])) return;
        heap[0] = j;
        SiftDown(heap, 0, heap.Length, scores);
        threshold = scores[heap[0]];
    }

    /// <summary>True when item a ranks below item b.</summary>
    private static bool Worse(int a, int b, ReadOnlySpan<float> s) => s[a] < s[b] || (s[a] == s[b] && a > b);

    private static void SiftUp(Span<int> heap, int at, ReadOnlySpan<float> s)
    {
        while (at > 0)
        {
            int parent = (at - 1) >> 1;
            if (!Worse(heap[at], heap[parent], s)) return;
            (heap[at], heap[parent]) = (heap[parent], heap[at]);
            at = parent;
        }
    }

    private static void SiftDown(Span<int> heap, int at, int size, ReadOnlySpan<float> s)
    {
        while (true)
        {
            int l = 2 * at + 1, worst = at;
            if (l < size && Worse(heap[l], heap[worst], s)) worst = l;
            if (l + 1 < size && Worse(heap[l + 1], heap[worst], s)) worst = l + 1;
            if (worst == at) return;
            (heap[at], heap[worst]) = (heap[worst], heap[at]);
            at = worst;
        }
    }

    /// <summary>Index of the first NaN, or −1.</summary>
    private static int FirstNaN(ReadOnlySpan<float> scores)
    {
        ref float s0 = ref MemoryMarshal.GetReference(scores);
        int i = 0, c = Vector256<float>.Count;
        for (; i <= scores.Length - c; i += c)
        {
            var v = Vector256.LoadUnsafe(ref s0, (nuint)i);
            if (!Vector256.EqualsAll(v, v)) break;
        }
        for (; i < scores.Length; i++) if (float.IsNaN(scores[i])) return i;
        return -1;
    }
}
