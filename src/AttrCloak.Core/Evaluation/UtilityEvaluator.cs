using System.Numerics;
using System.Runtime.InteropServices;
using AttrCloak.Core.Data;

namespace AttrCloak.Core.Evaluation;

/// <summary>
/// Recommendation utility of a set of user and item vectors (docs/evaluation.md, "The evaluation protocol"):
/// every backbone in this project scores a (user, item) pair by the dot product of the vectors it exposes,
/// so ranking each user's held-out candidates needs nothing but the two matrices.
/// </summary>
public static class UtilityEvaluator
{
    /// <summary>
    /// Scores <paramref name="candidates"/>[u] (positive at [0], as in <see cref="LeaveOneOutSplit"/>) by
    /// users[u]·items[i] and returns HR/NDCG@5/10 with pessimistic ties. Users with no candidates are skipped.
    /// </summary>
    public static RankingMetrics Evaluate(EmbeddingMatrix users, EmbeddingMatrix items, int[][] candidates) =>
        RankingMetrics.FromScores(Score(users, items, candidates));

    /// <summary>Each user's NDCG@10 on <paramref name="candidates"/> (NaN for users with none): for paired comparisons.</summary>
    public static double[] Ndcg10PerUser(EmbeddingMatrix users, EmbeddingMatrix items, int[][] candidates) =>
        RankingMetrics.Ndcg10PerUser(Score(users, items, candidates));

    private static float[][] Score(EmbeddingMatrix users, EmbeddingMatrix items, int[][] candidates)
    {
        ArgumentNullException.ThrowIfNull(users);
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(candidates);
        if (users.Cols != items.Cols)
            throw new ArgumentException($"user vectors have {users.Cols} dimensions but item vectors {items.Cols}");
        if (candidates.Length != users.Rows)
            throw new ArgumentException($"{candidates.Length} candidate lists for {users.Rows} users");

        var scores = new float[candidates.Length][];
        for (var u = 0; u < candidates.Length; u++)
        {
            var list = candidates[u];
            var row = new float[list.Length];
            var user = users.Row(u);
            for (var k = 0; k < list.Length; k++)
            {
                var i = list[k];
                if ((uint)i >= (uint)items.Rows)
                    throw new ArgumentException($"user {u}'s candidate {i} is outside the {items.Rows} items");
                row[k] = Dot(user, items.Row(i));
            }
            scores[u] = row;
        }
        return scores;
    }

    /// <summary>SIMD dot product; the scalar tail keeps any dimension count correct.</summary>
    internal static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var sum = 0f;
        var k = 0;
        if (Vector.IsHardwareAccelerated && a.Length >= Vector<float>.Count)
        {
            var va = MemoryMarshal.Cast<float, Vector<float>>(a);
            var vb = MemoryMarshal.Cast<float, Vector<float>>(b);
            var acc = Vector<float>.Zero;
            for (var j = 0; j < va.Length; j++) acc += va[j] * vb[j];
            sum = Vector.Sum(acc);
            k = va.Length * Vector<float>.Count;
        }
        for (; k < a.Length; k++) sum += a[k] * b[k];
        return sum;
    }
}
