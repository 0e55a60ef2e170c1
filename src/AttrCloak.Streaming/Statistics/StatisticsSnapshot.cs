namespace AttrCloak.Streaming.Statistics;

/// <summary>
/// Identifies one state of the statistics: <see cref="Epoch"/> is a random id given when the deployment's meta key was
/// created (a wiped or restarted cache gets a new one), <see cref="Sequence"/> grows by one with every write of the
/// statistics. Equal versions mean equal statistics, so a reader can cache a snapshot until the version changes.
/// </summary>
public readonly record struct StatisticsVersion(string Epoch, long Sequence)
{
    public override string ToString() => $"{Epoch}:{Sequence}";
}

/// <summary>
/// The class statistics at one <see cref="StatisticsVersion"/>: per attribute, per-class Gaussian fits and the global
/// fit over the users whose class is known (biased 1/n covariances, as <c>GaussianFit</c> in AttrCloak.Learning), of
/// the served (cloaked) embeddings in <see cref="Attributes"/> and of the original embeddings in <see cref="Originals"/>.
/// </summary>
public sealed record StatisticsSnapshot(StatisticsVersion Version, int Dimension, IReadOnlyList<ClassStatisticsSnapshot> Attributes)
{
    /// <summary>The attribute called <paramref name="name"/>.</summary>
    public ClassStatisticsSnapshot this[string name] =>
        Attributes.FirstOrDefault(a => a.Attribute == name) ?? throw new KeyNotFoundException($"no attribute '{name}' in the snapshot");

    /// <summary>
    /// The same statistics over the users' ORIGINAL (uncloaked) embeddings, one entry per attribute in catalog order:
    /// what the re-cloak maps each class from. Every store of format 2 fills it; empty only for a snapshot built by hand.
    /// </summary>
    public IReadOnlyList<ClassStatisticsSnapshot> Originals { get; init; } = [];

    /// <summary>
    /// Per attribute, the largest weight each class's specific shift may have (its weight at the generation's seating;
    /// null: no ceiling). Not stored with the statistics: the worker adds it from the generation's record, so that users
    /// who join a class after the seating cannot unlock a shift the seated population did not have (docs/threat-model.md).
    /// </summary>
    public IReadOnlyDictionary<string, double[]>? ShiftWeightCeilings { get; init; }
}

/// <summary>
/// One attribute's class statistics. Arrays are indexed by class; <see cref="Covariances"/>[k] and
/// <see cref="GlobalCovariance"/> are d x d row-major. A class with count 0 has zero mean and covariance.
/// </summary>
public sealed record ClassStatisticsSnapshot(
    string Attribute,
    IReadOnlyList<string> ClassNames,
    long[] Counts,
    double[][] Means,
    double[][] Covariances,
    long GlobalCount,
    double[] GlobalMean,
    double[] GlobalCovariance);
