using AttrCloak.Audit;
using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;

namespace AttrCloak.Cli.Experiments;

/// <summary>Turns `--attributes gender,age` into the protected/audited attribute lists of a data set.</summary>
public static class AttributeSelection
{
    /// <summary>Attribute indices named in <paramref name="csv"/>, or all of the data set's attributes when empty.</summary>
    public static IReadOnlyList<int> Resolve(RecDataset data, string? csv)
    {
        if (data.Attributes.Count == 0)
            throw new UsageException($"data set '{data.Name}' has no user attributes to protect or audit");
        if (string.IsNullOrWhiteSpace(csv)) return Enumerable.Range(0, data.Attributes.Count).ToArray();
        var names = csv.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var indices = new List<int>();
        foreach (var name in names)
        {
            int index;
            try { index = data.AttributeIndex(name); }
            catch (ArgumentException e) { throw new UsageException(e.Message); }
            if (!indices.Contains(index)) indices.Add(index);
        }
        return indices;
    }

    public static IReadOnlyList<LabeledAttribute> Protected(RecDataset data, IReadOnlyList<int> indices) =>
        indices.Select(i => new LabeledAttribute(data.Attributes[i], data.Labels[i])).ToArray();

    public static IReadOnlyList<AuditedAttribute> Audited(RecDataset data, IReadOnlyList<int> indices) =>
        indices.Select(i => new AuditedAttribute(data.Attributes[i].Name, data.Attributes[i].ClassCount, data.Labels[i])).ToArray();
}
