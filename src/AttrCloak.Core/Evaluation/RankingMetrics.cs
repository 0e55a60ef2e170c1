namespace AttrCloak.Core.Evaluation;

/// <summary>HR and NDCG at 5 and 10, averaged over the users that have a held-out item.</summary>
public sealed record RankingMetrics(double Hr5, double Hr10, double Ndcg5, double Ndcg10, int Users)
{
    /// <summary>
    /// <paramref name="candidateScores"/>[u][0] is the held-out positive's score, the rest its sampled
    /// negatives; users with no candidates are skipped. Ties rank pessimistically: every negative scoring
    /// at least as high as the positive is ranked above it.
    /// </summary>
    public static RankingMetrics FromScores(IReadOnlyList<float[]> candidateScores)
    {
        double hr5 = 0, hr10 = 0, ndcg5 = 0, ndcg10 = 0;
        var users = 0;
        foreach (var scores in candidateScores)
        {
            if (scores.Length == 0) continue;
            var rank = PositiveRank(scores);
            users++;
            var gain = 1.0 / Math.Log2(rank + 2);
            if (rank < 5) { hr5++; ndcg5 += gain; }
            if (rank < 10) { hr10++; ndcg10 += gain; }
        }
        if (users == 0) return new RankingMetrics(0, 0, 0, 0, 0);
        return new RankingMetrics(hr5 / users, hr10 / users, ndcg5 / users, ndcg10 / users, users);
    }

    /// <summary>Each user's NDCG@10 (the terms <see cref="FromScores"/> averages); NaN for a user with no candidates.</summary>
    public static double[] Ndcg10PerUser(IReadOnlyList<float[]> candidateScores)
    {
        ArgumentNullException.ThrowIfNull(candidateScores);
        var gains = new double[candidateScores.Count];
        for (var u = 0; u < gains.Length; u++)
        {
            var scores = candidateScores[u];
            if (scores.Length == 0) { gains[u] = double.NaN; continue; }
            var rank = PositiveRank(scores);
            gains[u] = rank < 10 ? 1.0 / Math.Log2(rank + 2) : 0;
        }
        return gains;
    }

    /// <summary>0-based rank of the positive (scores[0]) among its candidates; ties and NaN negatives rank above it.</summary>
    private static int PositiveRank(float[] scores)
    {
        var positive = scores[0];
        if (float.IsNaN(positive)) throw new ArgumentException("a positive item scored NaN");
        var rank = 0;
        for (var j = 1; j < scores.Length; j++)
            if (scores[j] >= positive || float.IsNaN(scores[j])) rank++;
        return rank;
    }
}
