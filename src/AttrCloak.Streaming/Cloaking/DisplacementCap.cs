using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Cloaking;

/// <summary>
/// Bounds how far a served embedding may lie from its user's original: ||y - x|| &lt;= cap, whatever the class statistics
/// say. The statistics are written by every producer; a coalition that passes the input domain can still drag a small
/// class's mean (and with it the map of that class's honest users) far away. The cap is what one generation's honest
/// users were moved at its last seating (the 99th percentile of their batch AttrCloak-DF displacements) times
/// <c>AttrCloak:Input:MaxDisplacementRatio</c>: an honest population is hardly ever capped, a poisoned map is.
/// See docs/threat-model.md.
/// </summary>
public static class DisplacementCap
{
    /// <summary>The 99th percentile of ||cloaked - original|| over users (null without any user).</summary>
    public static double? Percentile99(IReadOnlyList<float[]> originals, IReadOnlyList<float[]> cloaked)
    {
        ArgumentNullException.ThrowIfNull(originals);
        ArgumentNullException.ThrowIfNull(cloaked);
        if (originals.Count != cloaked.Count) throw new ArgumentException("one cloaked embedding per original", nameof(cloaked));
        if (originals.Count == 0) return null;
        var displacement = new double[originals.Count];
        for (var u = 0; u < originals.Count; u++) displacement[u] = Distance(originals[u], cloaked[u]);
        Array.Sort(displacement);
        return displacement[Math.Min(displacement.Length - 1, (int)Math.Ceiling(0.99 * displacement.Length) - 1)];
    }

    /// <summary>
    /// Pulls <paramref name="cloaked"/> back along the segment towards <paramref name="original"/> so that it lies at most
    /// <paramref name="cap"/> from it; true when it had to.
    /// </summary>
    public static bool Apply(ReadOnlySpan<float> original, Span<float> cloaked, double cap)
    {
        var distance = Distance(original, cloaked);
        if (distance <= cap) return false;
        var keep = cap / distance;
        for (var j = 0; j < cloaked.Length; j++) cloaked[j] = (float)(original[j] + keep * (cloaked[j] - (double)original[j]));
        return true;
    }

    /// <summary>The Euclidean norm.</summary>
    public static double Norm(ReadOnlySpan<float> x)
    {
        double s = 0;
        foreach (var v in x) s += (double)v * v;
        return Math.Sqrt(s);
    }

    /// <summary>The Euclidean distance.</summary>
    public static double Distance(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (var j = 0; j < a.Length; j++)
        {
            var diff = (double)a[j] - b[j];
            s += diff * diff;
        }
        return Math.Sqrt(s);
    }
}

/// <summary>How far one cloak moved its user: before the cap, and the served norm over the original's; whether it was capped.</summary>
public readonly record struct CloakMove(double Displacement, double NormRatio, bool Capped);

/// <summary>
/// An <see cref="IUserCloaker"/> whose results are capped (<see cref="DisplacementCap"/>; an infinite cap leaves them as
/// they are) and whose every move is reported (the served-distribution metrics).
/// </summary>
public sealed class CappedCloaker(IUserCloaker inner, double cap, Action<CloakMove>? observe = null) : IUserCloaker
{
    public IUserCloaker Inner { get; } = inner ?? throw new ArgumentNullException(nameof(inner));

    public double Cap { get; } = cap > 0 ? cap : throw new ArgumentOutOfRangeException(nameof(cap), cap, "must be positive");

    public StatisticsVersion StatisticsVersion => Inner.StatisticsVersion;

    public CloakOutcome Cloak(ReadOnlySpan<float> original, ReadOnlySpan<int> classes, Span<float> cloaked)
    {
        // The inner cloaker may write into the original's memory: keep a copy when they overlap.
        ReadOnlySpan<float> from = original.Overlaps(cloaked) ? original.ToArray() : original;
        var outcome = Inner.Cloak(original, classes, cloaked);
        var displacement = DisplacementCap.Distance(from, cloaked);
        var capped = DisplacementCap.Apply(from, cloaked, Cap);
        if (observe is not null)
        {
            var originalNorm = DisplacementCap.Norm(from);
            observe(new CloakMove(displacement, originalNorm > 0 ? DisplacementCap.Norm(cloaked) / originalNorm : 1, capped));
        }
        return outcome;
    }
}
