using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Cloaking;

/// <summary>
/// Cloaks one user at a time against class statistics held fixed (one immutable instance per statistics snapshot;
/// build a new one with <see cref="IUserCloakerFactory"/> when the statistics drift). The cost of one call depends on
/// the dimension only, never on the population. Thread-safe.
/// </summary>
public interface IUserCloaker
{
    /// <summary>The statistics this instance was built from.</summary>
    StatisticsVersion StatisticsVersion { get; }

    /// <summary>
    /// Writes the cloaked embedding of a user with <paramref name="original"/> embedding and class index per catalog
    /// attribute (<paramref name="classes"/>, -1 = unknown) into <paramref name="cloaked"/> (same length; it may be the
    /// same memory as <paramref name="original"/>). A set bit means the user was moved by the map derived from the
    /// statistics of its class for that attribute; it can be the identity only when the served statistics equal the
    /// original ones (nothing was hidden in the population either). A clear bit (unknown class, or too few users to
    /// estimate anything) tells the caller that attribute is NOT protected for this user: fail closed there.
    /// Throws <see cref="ArgumentException"/> on a wrong length and <see cref="ArgumentOutOfRangeException"/> on a
    /// class outside -1..K-1.
    /// </summary>
    /// <returns>Which catalog attributes the result is cloaked against.</returns>
    CloakOutcome Cloak(ReadOnlySpan<float> original, ReadOnlySpan<int> classes, Span<float> cloaked);
}

/// <summary>Builds an <see cref="IUserCloaker"/> from a statistics snapshot (O(classes x d^3); not on the per-event path).</summary>
public interface IUserCloakerFactory
{
    IUserCloaker Build(StatisticsSnapshot snapshot);
}

/// <summary>The result of one <see cref="IUserCloaker.Cloak"/> call.</summary>
/// <param name="ProtectedMask">Bit a set = cloaked against catalog attribute a.</param>
public readonly record struct CloakOutcome(uint ProtectedMask)
{
    public bool Protects(int attribute) => (ProtectedMask & (1u << attribute)) != 0;
}
