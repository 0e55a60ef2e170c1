namespace AttrCloak.Core.Data;

/// <summary>
/// A protected (private, categorical) attribute and the names of its classes; class index = position in
/// <see cref="ClassNames"/>. The one description of an attribute that the data sets (<see cref="RecDataset"/>), the
/// event contracts (<c>AttributeCatalog</c>, a lookup over these), the state store and the learning code
/// (<see cref="LabeledAttribute"/>) share.
/// </summary>
public sealed record AttributeSpec(string Name, IReadOnlyList<string> ClassNames)
{
    /// <summary>The class index of a user whose class is unknown.</summary>
    public const int Unknown = -1;

    public int ClassCount => ClassNames.Count;

    /// <summary>An attribute whose classes are named by their index ("0", "1", ...), for code that only counts classes.</summary>
    public static AttributeSpec Numbered(string name, int classCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(classCount);
        return new AttributeSpec(name, Enumerable.Range(0, classCount).Select(k => k.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray());
    }
}

/// <summary>
/// An attribute together with every user's class: <paramref name="Labels"/>[u] is user u's class in
/// 0..ClassCount-1, or <see cref="Unknown"/>. The learning code cloaks against these; users with an unknown label are
/// left out of this attribute's Gaussian fits (they still move with the other attributes and the retention loss).
/// </summary>
public sealed record LabeledAttribute(AttributeSpec Attribute, int[] Labels)
{
    /// <summary>The label that marks a user whose class is unknown for this attribute.</summary>
    public const int Unknown = AttributeSpec.Unknown;

    public string Name => Attribute.Name;

    public int ClassCount => Attribute.ClassCount;

    /// <summary>Throws <see cref="ArgumentException"/> unless the labels fit <paramref name="userCount"/> users.</summary>
    public void Validate(int userCount)
    {
        ArgumentNullException.ThrowIfNull(Attribute);
        if (string.IsNullOrWhiteSpace(Name)) throw new ArgumentException("a protected attribute needs a name");
        if (ClassCount < 1) throw new ArgumentException($"attribute '{Name}': ClassCount must be >= 1, got {ClassCount}");
        ArgumentNullException.ThrowIfNull(Labels);
        if (Labels.Length != userCount)
            throw new ArgumentException($"attribute '{Name}' has {Labels.Length} labels for {userCount} users");
        var known = 0;
        foreach (var c in Labels)
        {
            if (c == Unknown) continue;
            if (c < 0 || c >= ClassCount)
                throw new ArgumentException($"attribute '{Name}' has label {c} outside -1..{ClassCount - 1}");
            known++;
        }
        if (known == 0) throw new ArgumentException($"attribute '{Name}' has no user with a known label");
    }
}
