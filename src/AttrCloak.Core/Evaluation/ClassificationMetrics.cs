namespace AttrCloak.Core.Evaluation;

/// <summary>
/// Classification metrics for attribute-inference audits. Labels are class indices 0..K-1; probability
/// matrices are row-major [n, K]. Pure C#: no ML library, so the numbers are easy to check by hand.
/// </summary>
public static class ClassificationMetrics
{
    /// <summary>The balanced accuracy of an attacker that guesses uniformly at random: 1/K.</summary>
    public static double Chance(int classCount) =>
        classCount >= 1 ? 1.0 / classCount : throw new ArgumentOutOfRangeException(nameof(classCount));

    /// <summary>Fraction of samples whose prediction equals the label.</summary>
    public static double Accuracy(ReadOnlySpan<int> yTrue, ReadOnlySpan<int> yPred)
    {
        CheckSameLength(yTrue.Length, yPred.Length);
        if (yTrue.Length == 0) throw new ArgumentException("no samples");
        var hits = 0;
        for (var i = 0; i < yTrue.Length; i++)
            if (yTrue[i] == yPred[i]) hits++;
        return (double)hits / yTrue.Length;
    }

    /// <summary>
    /// Mean per-class recall over the classes PRESENT in <paramref name="yTrue"/> (sklearn's definition):
    /// a class nobody has cannot be recalled, so it must not drag the mean down. Predictions of classes
    /// absent from <paramref name="yTrue"/> simply count as wrong.
    /// </summary>
    public static double BalancedAccuracy(ReadOnlySpan<int> yTrue, ReadOnlySpan<int> yPred)
    {
        CheckSameLength(yTrue.Length, yPred.Length);
        if (yTrue.Length == 0) throw new ArgumentException("no samples");
        var support = new Dictionary<int, (int Total, int Hits)>();
        for (var i = 0; i < yTrue.Length; i++)
        {
            support.TryGetValue(yTrue[i], out var s);
            support[yTrue[i]] = (s.Total + 1, s.Hits + (yTrue[i] == yPred[i] ? 1 : 0));
        }
        var sum = 0.0;
        foreach (var (total, hits) in support.Values) sum += (double)hits / total;
        return sum / support.Count;
    }

    /// <summary>Frequency of the most common label: the plain accuracy of always guessing it.</summary>
    public static double MajorityRate(ReadOnlySpan<int> yTrue)
    {
        if (yTrue.Length == 0) throw new ArgumentException("no samples");
        var counts = new Dictionary<int, int>();
        foreach (var y in yTrue) counts[y] = counts.GetValueOrDefault(y) + 1;
        return (double)counts.Values.Max() / yTrue.Length;
    }

    /// <summary>Row-wise argmax of a row-major [n, K] matrix; ties go to the lowest class index.</summary>
    public static int[] ArgMax(ReadOnlySpan<float> probabilities, int classCount)
    {
        CheckMatrix(probabilities.Length, classCount);
        var n = probabilities.Length / classCount;
        var result = new int[n];
        for (var i = 0; i < n; i++)
        {
            var row = probabilities.Slice(i * classCount, classCount);
            var best = 0;
            for (var k = 1; k < classCount; k++)
                if (row[k] > row[best]) best = k;
            result[i] = best;
        }
        return result;
    }

    /// <summary>
    /// Area under the ROC curve of <paramref name="scores"/> for telling positives from negatives, by the
    /// Mann–Whitney rank statistic: tied scores share their average rank, so a tie between a positive and a
    /// negative counts one half. NaN when either group is empty (the AUC is undefined).
    /// </summary>
    public static double BinaryAuc(ReadOnlySpan<bool> isPositive, ReadOnlySpan<double> scores)
    {
        CheckSameLength(isPositive.Length, scores.Length);
        var n = scores.Length;
        long positives = 0;
        foreach (var p in isPositive) if (p) positives++;
        long negatives = n - positives;
        if (positives == 0 || negatives == 0) return double.NaN;

        var order = new int[n];
        var keys = new double[n];
        for (var i = 0; i < n; i++)
        {
            if (double.IsNaN(scores[i])) throw new ArgumentException($"score {i} is NaN");
            order[i] = i;
            keys[i] = scores[i];
        }
        Array.Sort(keys, order);

        // Ranks are 1-based; a run of equal scores at sorted positions [start, end) gets the mean rank.
        var positiveRankSum = 0.0;
        for (var start = 0; start < n;)
        {
            var end = start + 1;
            while (end < n && keys[end] == keys[start]) end++;
            var meanRank = (start + 1 + end) / 2.0;
            for (var j = start; j < end; j++)
                if (isPositive[order[j]]) positiveRankSum += meanRank;
            start = end;
        }
        var u = positiveRankSum - positives * (positives + 1) / 2.0;
        return u / ((double)positives * negatives);
    }

    /// <summary>Binary AUC with labels 0/1: class 1 is positive, scored by <paramref name="scoreOfClass1"/>.</summary>
    public static double BinaryAuc(ReadOnlySpan<int> yTrue, ReadOnlySpan<double> scoreOfClass1)
    {
        var positive = new bool[yTrue.Length];
        for (var i = 0; i < yTrue.Length; i++)
        {
            if (yTrue[i] is not (0 or 1)) throw new ArgumentException($"binary label {yTrue[i]} at {i} is not 0 or 1");
            positive[i] = yTrue[i] == 1;
        }
        return BinaryAuc(positive, scoreOfClass1);
    }

    /// <summary>
    /// Macro one-vs-rest AUC: the mean over classes k of the AUC of column k of the probability matrix for
    /// "class k vs the rest". Classes absent from <paramref name="yTrue"/> are skipped (their AUC is
    /// undefined); NaN when no class qualifies (e.g. all samples share one label).
    /// </summary>
    public static double MacroOneVsRestAuc(ReadOnlySpan<int> yTrue, ReadOnlySpan<float> probabilities, int classCount)
    {
        CheckMatrix(probabilities.Length, classCount);
        var n = probabilities.Length / classCount;
        CheckSameLength(yTrue.Length, n);
        var positive = new bool[n];
        var column = new double[n];
        double sum = 0;
        var counted = 0;
        for (var k = 0; k < classCount; k++)
        {
            for (var i = 0; i < n; i++)
            {
                positive[i] = yTrue[i] == k;
                column[i] = probabilities[i * classCount + k];
            }
            var auc = BinaryAuc(positive, column);
            if (double.IsNaN(auc)) continue;
            sum += auc;
            counted++;
        }
        return counted == 0 ? double.NaN : sum / counted;
    }

    /// <summary>
    /// The AUC the audit reports: for K = 2 the binary AUC of the class-1 probability, otherwise the macro
    /// one-vs-rest AUC. Chance is 0.5 either way; NaN when undefined.
    /// </summary>
    public static double Auc(ReadOnlySpan<int> yTrue, ReadOnlySpan<float> probabilities, int classCount)
    {
        if (classCount != 2) return MacroOneVsRestAuc(yTrue, probabilities, classCount);
        CheckMatrix(probabilities.Length, classCount);
        CheckSameLength(yTrue.Length, probabilities.Length / 2);
        var scores = new double[yTrue.Length];
        for (var i = 0; i < scores.Length; i++) scores[i] = probabilities[2 * i + 1];
        return BinaryAuc(yTrue, scores);
    }

    private static void CheckSameLength(int a, int b)
    {
        if (a != b) throw new ArgumentException($"length mismatch: {a} labels vs {b} predictions");
    }

    private static void CheckMatrix(int length, int classCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(classCount, 1);
        if (length % classCount != 0)
            throw new ArgumentException($"{length} values are not a whole number of rows of {classCount} classes");
    }
}
