namespace AttrCloak.Learning.Unlearning;

/// <summary>
/// A private attribute to unlearn: <paramref name="Labels"/>[u] is user u's class in 0..ClassCount-1, or -1 when
/// unknown. Users with an unknown label are left out of this attribute's Gaussian fits (they still move with the
/// other attributes' gradients and the retention loss).
/// </summary>
public sealed record ProtectedAttribute(string Name, int ClassCount, int[] Labels)
{
    /// <summary>The label that marks a user whose class is unknown for this attribute.</summary>
    public const int Unknown = -1;

    /// <summary>Throws <see cref="ArgumentException"/> unless the labels fit <paramref name="userCount"/> users.</summary>
    public void Validate(int userCount)
    {
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
