using AttrCloak.Core.Data;

namespace AttrCloak.Learning.Tests.Backbones;

/// <summary>
/// A tiny deterministic data set with structure a backbone can learn and an attribute the embeddings leak:
/// users in two groups, each interacting mostly with its own block of items (popularity-skewed within the
/// block), plus a few random "filler" items that nobody prefers. Label: the user's group.
/// </summary>
internal static class TinyData
{
    public static RecDataset TwoGroups(int usersPerGroup = 60, int blockSize = 40, int fillerItems = 140,
        int itemsPerUser = 14, int fillerPerUser = 2, int seed = 7)
    {
        var rng = new Random(seed);
        var userCount = 2 * usersPerGroup;
        var itemCount = 2 * blockSize + fillerItems;
        var interactions = new List<Interaction>();
        var labels = new int[userCount];
        for (var u = 0; u < userCount; u++)
        {
            var group = u % 2;
            labels[u] = group;
            var chosen = new HashSet<int>();
            while (chosen.Count < itemsPerUser)
            {
                // Squaring a uniform draw skews towards the block's first (popular) items.
                var r = rng.NextDouble();
                chosen.Add(group * blockSize + (int)(r * r * blockSize));
            }
            while (chosen.Count < itemsPerUser + fillerPerUser) chosen.Add(2 * blockSize + rng.Next(fillerItems));
            var time = 0L;
            foreach (var item in chosen.OrderBy(_ => rng.Next())) interactions.Add(new Interaction(u, item, time++));
        }
        return new RecDataset("tiny-two-groups",
            Enumerable.Range(0, userCount).Select(u => $"u{u}").ToArray(),
            Enumerable.Range(0, itemCount).Select(i => $"i{i}").ToArray(),
            interactions,
            [new AttributeSpec("group", ["a", "b"])],
            [labels]);
    }
}
