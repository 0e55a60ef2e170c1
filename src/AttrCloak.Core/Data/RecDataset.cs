namespace AttrCloak.Core.Data;

/// <summary>One implicit-feedback interaction: user and item are dense indices, not raw ids.</summary>
public readonly record struct Interaction(int User, int Item, long Timestamp);

/// <summary>
/// A recommendation data set in memory: users and items are re-indexed densely (0..n-1); the loaders
/// order them by raw id (numerically when every id is an integer), so an index does not depend on the order
/// of the lines in a file. <see cref="UserIds"/>/<see cref="ItemIds"/> map indices back to raw ids.
/// Labels[a][u] is user u's class index for attribute a, or <see cref="UnknownLabel"/>.
/// </summary>
public sealed class RecDataset
{
    public const int UnknownLabel = AttributeSpec.Unknown;

    public RecDataset(string name, IReadOnlyList<string> userIds, IReadOnlyList<string> itemIds,
        IReadOnlyList<Interaction> interactions, IReadOnlyList<AttributeSpec> attributes, int[][] labels)
    {
        if (labels.Length != attributes.Count)
            throw new ArgumentException($"{attributes.Count} attributes but {labels.Length} label columns");
        foreach (var (spec, column) in attributes.Zip(labels))
        {
            if (column.Length != userIds.Count)
                throw new ArgumentException($"attribute '{spec.Name}' has {column.Length} labels for {userIds.Count} users");
            foreach (var c in column)
                if (c < UnknownLabel || c >= spec.ClassCount)
                    throw new ArgumentException($"attribute '{spec.Name}' has class index {c} outside 0..{spec.ClassCount - 1}");
        }
        foreach (var x in interactions)
            if ((uint)x.User >= (uint)userIds.Count || (uint)x.Item >= (uint)itemIds.Count)
                throw new ArgumentException($"interaction ({x.User},{x.Item}) refers to an unknown user or item index");
        Name = name;
        UserIds = userIds;
        ItemIds = itemIds;
        Interactions = interactions;
        Attributes = attributes;
        Labels = labels;
    }

    public string Name { get; }
    public IReadOnlyList<string> UserIds { get; }
    public IReadOnlyList<string> ItemIds { get; }
    public IReadOnlyList<Interaction> Interactions { get; }
    public IReadOnlyList<AttributeSpec> Attributes { get; }
    public int[][] Labels { get; }
    public int UserCount => UserIds.Count;
    public int ItemCount => ItemIds.Count;

    /// <summary>Index of the attribute called <paramref name="name"/> (case-insensitive), with a clear error otherwise.</summary>
    public int AttributeIndex(string name)
    {
        for (var i = 0; i < Attributes.Count; i++)
            if (string.Equals(Attributes[i].Name, name, StringComparison.OrdinalIgnoreCase)) return i;
        throw new ArgumentException(
            $"unknown attribute '{name}'; this data set has: {string.Join(", ", Attributes.Select(a => a.Name))}");
    }
}
