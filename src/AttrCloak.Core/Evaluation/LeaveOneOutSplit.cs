using AttrCloak.Core.Data;

namespace AttrCloak.Core.Evaluation;

/// <summary>
/// Leave-one-out by timestamp (docs/evaluation.md): each user's latest interaction is the test item, the second
/// latest the validation item, the rest train. Each held-out positive is ranked against
/// <c>negatives</c> items the user never interacted with, sampled once with a fixed seed so every method
/// sees the same candidate lists. Candidates[u][0] is the positive. Users with fewer than three
/// interactions keep all of them in train and have no held-out item (<see cref="NoItem"/>).
/// </summary>
public sealed class LeaveOneOutSplit
{
    public const int NoItem = -1;

    private LeaveOneOutSplit(int[][] trainItems, int[] validationItem, int[] testItem,
        int[][] validationCandidates, int[][] testCandidates, int itemCount)
    {
        TrainItems = trainItems;
        ValidationItem = validationItem;
        TestItem = testItem;
        ValidationCandidates = validationCandidates;
        TestCandidates = testCandidates;
        ItemCount = itemCount;
    }

    /// <summary>Per user, the items of the training part (distinct, in time order).</summary>
    public int[][] TrainItems { get; }
    public int[] ValidationItem { get; }
    public int[] TestItem { get; }
    public int[][] ValidationCandidates { get; }
    public int[][] TestCandidates { get; }
    public int ItemCount { get; }
    public int UserCount => TrainItems.Length;
    public int TrainInteractionCount => TrainItems.Sum(t => t.Length);

    /// <summary>All training (user, item) pairs, user-major.</summary>
    public (int User, int Item)[] TrainPairs()
    {
        var pairs = new (int, int)[TrainInteractionCount];
        var k = 0;
        for (var u = 0; u < TrainItems.Length; u++)
            foreach (var i in TrainItems[u]) pairs[k++] = (u, i);
        return pairs;
    }

    public static LeaveOneOutSplit Create(RecDataset data, int negatives = 99, int seed = 2025)
    {
        var n = data.UserCount;
        var perUser = new List<Interaction>[n];
        for (var u = 0; u < n; u++) perUser[u] = [];
        foreach (var x in data.Interactions) perUser[x.User].Add(x);

        var train = new int[n][];
        var validation = new int[n];
        var test = new int[n];
        var validationCandidates = new int[n][];
        var testCandidates = new int[n][];
        var rng = new Random(seed);
        for (var u = 0; u < n; u++)
        {
            // Stable order: time, then item index, so equal timestamps split deterministically.
            var items = perUser[u].OrderBy(x => x.Timestamp).ThenBy(x => x.Item)
                .Select(x => x.Item).Distinct().ToArray();
            var seen = new HashSet<int>(items);
            if (items.Length < 3 || negatives >= data.ItemCount - seen.Count)
            {
                train[u] = items;
                validation[u] = test[u] = NoItem;
                validationCandidates[u] = testCandidates[u] = [];
                continue;
            }
            test[u] = items[^1];
            validation[u] = items[^2];
            train[u] = items[..^2];
            validationCandidates[u] = Candidates(validation[u], seen, negatives, data.ItemCount, rng);
            testCandidates[u] = Candidates(test[u], seen, negatives, data.ItemCount, rng);
        }
        return new LeaveOneOutSplit(train, validation, test, validationCandidates, testCandidates, data.ItemCount);
    }

    private static int[] Candidates(int positive, HashSet<int> seen, int negatives, int itemCount, Random rng)
    {
        var result = new int[negatives + 1];
        result[0] = positive;
        var chosen = new HashSet<int>();
        var k = 1;
        while (k <= negatives)
        {
            var j = rng.Next(itemCount);
            if (!seen.Contains(j) && chosen.Add(j)) result[k++] = j;
        }
        return result;
    }
}
