namespace AttrCloak.Core.Evaluation;

/// <summary>
/// Deterministic stratified k-fold assignment over samples (users): every class is spread over the folds
/// in proportion, so each fold's class mix matches the whole.
/// </summary>
public static class StratifiedKFold
{
    /// <summary>
    /// Fold index (0..<paramref name="folds"/>-1) of each sample. Classes are visited in ascending label
    /// order; each class's members are shuffled with a seeded Fisher–Yates and dealt round-robin, the
    /// dealing position carrying over from one class to the next. Carrying it over keeps fold sizes within
    /// one of each other and spreads classes with fewer than k members over different folds instead of
    /// piling them all into fold 0. Labels may be any integers; the same input and seed always give the
    /// same folds.
    /// </summary>
    public static int[] Assign(ReadOnlySpan<int> labels, int folds, int seed)
    {
        if (folds < 2) throw new ArgumentOutOfRangeException(nameof(folds), folds, "need at least 2 folds");
        if (labels.Length < folds)
            throw new ArgumentException($"{labels.Length} samples cannot fill {folds} folds");

        var members = new SortedDictionary<int, List<int>>();
        for (var i = 0; i < labels.Length; i++)
        {
            if (!members.TryGetValue(labels[i], out var list)) members[labels[i]] = list = [];
            list.Add(i);
        }

        // System.Random with a seed uses a fixed, documented-stable algorithm, so folds are reproducible
        // across runs and machines.
        var rng = new Random(seed);
        var assignment = new int[labels.Length];
        var dealt = 0;
        foreach (var list in members.Values)
        {
            for (var i = list.Count - 1; i > 0; i--)
            {
                var j = rng.Next(i + 1);
                (list[i], list[j]) = (list[j], list[i]);
            }
            foreach (var sample in list) assignment[sample] = dealt++ % folds;
        }
        return assignment;
    }

    /// <summary>Indices of the samples outside (<c>Train</c>) and inside (<c>Test</c>) fold <paramref name="fold"/>, ascending.</summary>
    public static (int[] Train, int[] Test) Split(ReadOnlySpan<int> assignment, int fold)
    {
        var train = new List<int>(assignment.Length);
        var test = new List<int>(assignment.Length / 2 + 1);
        for (var i = 0; i < assignment.Length; i++)
            (assignment[i] == fold ? test : train).Add(i);
        return (train.ToArray(), test.ToArray());
    }
}
