namespace AttrCloak.Streaming.Statistics;

/// <summary>One (population, attribute, class) slot compared with its recomputation from the user states.</summary>
/// <param name="Population">served (cloaked) or original embeddings.</param>
/// <param name="Attribute">attribute name.</param>
/// <param name="ClassIndex">class index within the attribute.</param>
/// <param name="ClassName">class name.</param>
/// <param name="StoredCount">count stored (-1 when malformed).</param>
/// <param name="RecomputedCount">count of users with this class.</param>
/// <param name="CountDifference">stored count - recomputed count (must be 0).</param>
/// <param name="MaxAbsSumDifference">max |stored - recomputed| over the sum vector S.</param>
/// <param name="MaxAbsCoMomentDifference">max |stored - recomputed| over the co-moment matrix M (upper triangle).</param>
/// <param name="Tolerance">the allowed absolute difference: relative tolerance x the summed magnitudes of the terms.</param>
/// <param name="Malformed">the stored value is not a float64 vector of the expected length.</param>
public sealed record ClassStatisticsDifference(
    StatisticsPopulation Population,
    string Attribute,
    int ClassIndex,
    string ClassName,
    long StoredCount,
    long RecomputedCount,
    long CountDifference,
    double MaxAbsSumDifference,
    double MaxAbsCoMomentDifference,
    double Tolerance,
    bool Malformed)
{
    /// <summary>The stored statistics agree with the recomputation.</summary>
    public bool IsConsistent => !Malformed && CountDifference == 0 && MaxAbsSumDifference <= Tolerance && MaxAbsCoMomentDifference <= Tolerance;
}

/// <summary>
/// The result of a statistics verification or rebuild (the Redis adapter's <c>StatisticsVerifier</c>, the in-process store's own).
/// <see cref="Version"/> is the statistics version the comparison (or the rebuilt values) refer to.
/// </summary>
public sealed record StatisticsVerificationReport(
    long UsersScanned,
    StatisticsVersion Version,
    IReadOnlyList<ClassStatisticsDifference> Classes,
    bool Rebuilt,
    int Attempts)
{
    /// <summary>Every class agrees with the recomputation (before a rebuild, when <see cref="Rebuilt"/>).</summary>
    public bool IsConsistent => Classes.All(c => c.IsConsistent);

    /// <summary>The classes that disagree.</summary>
    public IEnumerable<ClassStatisticsDifference> Inconsistent => Classes.Where(c => !c.IsConsistent);

    /// <summary>The classes of one population (served or original embeddings).</summary>
    public IEnumerable<ClassStatisticsDifference> Of(StatisticsPopulation population) => Classes.Where(c => c.Population == population);
}
