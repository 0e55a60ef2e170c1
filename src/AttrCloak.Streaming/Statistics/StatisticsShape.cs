using AttrCloak.Core.Data;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Statistics;

/// <summary>Which embeddings a set of class statistics summarises.</summary>
public enum StatisticsPopulation
{
    /// <summary>The served (cloaked) embeddings: what the class statistics the re-cloak targets describe.</summary>
    Served = 0,
    /// <summary>The users' original (uncloaked) embeddings: what the re-cloak maps each class from.</summary>
    Original = 1,
}

/// <summary>
/// What the statistics mean, independently of where they are kept: dimension, attribute catalog, reference point, and
/// the numbering of the (population, attribute, class) slots. Slot = population x classes + offset of the attribute +
/// class, so the served slots come first and the original slots mirror them. Shared by every store.
/// </summary>
public sealed class StatisticsShape
{
    public StatisticsShape(int dimension, IReadOnlyList<AttributeSpec> attributes, float[]? referencePoint)
    {
        Dimension = dimension;
        Attributes = attributes.ToArray();
        Reference = new double[dimension];
        if (referencePoint is not null)
            for (var i = 0; i < dimension; i++) Reference[i] = referencePoint[i];
        ClassOffsets = new int[Attributes.Length];
        for (var a = 0; a < Attributes.Length; a++)
        {
            ClassOffsets[a] = ClassCount;
            ClassCount += Attributes[a].ClassCount;
        }
        StatsLength = SufficientStatistics.Length(dimension);
    }

    /// <summary>Shape of a validated options object.</summary>
    public static StatisticsShape Of(StateStoreOptions options)
    {
        options.Validate();
        return new StatisticsShape(options.Dimension, options.Attributes, options.ReferencePoint);
    }

    public int Dimension { get; }
    public AttributeSpec[] Attributes { get; }
    /// <summary>Reference point c as float64 (converted from the float32 option, so x - c of float32 x is exact).</summary>
    public double[] Reference { get; }
    /// <summary>Per attribute, the index of its first class among all classes of the catalog.</summary>
    public int[] ClassOffsets { get; }
    /// <summary>Classes of the whole catalog (the slots of one population).</summary>
    public int ClassCount { get; }
    /// <summary>Slots of both populations.</summary>
    public int SlotCount => 2 * ClassCount;
    /// <summary>float64 values per slot (<see cref="SufficientStatistics.Length"/>).</summary>
    public int StatsLength { get; }

    public int Slot(StatisticsPopulation population, int attribute, int cls) =>
        (int)population * ClassCount + ClassOffsets[attribute] + cls;

    public (StatisticsPopulation Population, int Attribute, int Class) SlotOwner(int slot)
    {
        if (slot < 0 || slot >= SlotCount) throw new ArgumentOutOfRangeException(nameof(slot));
        var population = (StatisticsPopulation)(slot / ClassCount);
        var inPopulation = slot % ClassCount;
        for (var a = Attributes.Length - 1; a >= 0; a--)
            if (inPopulation >= ClassOffsets[a]) return (population, a, inPopulation - ClassOffsets[a]);
        throw new ArgumentOutOfRangeException(nameof(slot));
    }

    /// <summary>
    /// Means and covariances per attribute plus each attribute's global fit, of both populations, from every slot's
    /// raw sums (indexed by slot).
    /// </summary>
    public StatisticsSnapshot ToSnapshot(StatisticsVersion version, double[][] slots) =>
        new(version, Dimension, PopulationSnapshot(StatisticsPopulation.Served, slots))
        {
            Originals = PopulationSnapshot(StatisticsPopulation.Original, slots),
        };

    private List<ClassStatisticsSnapshot> PopulationSnapshot(StatisticsPopulation population, double[][] slots)
    {
        var attributes = new List<ClassStatisticsSnapshot>(Attributes.Length);
        for (var a = 0; a < Attributes.Length; a++)
        {
            var spec = Attributes[a];
            var k = spec.ClassCount;
            var counts = new long[k];
            var means = new double[k][];
            var covariances = new double[k][];
            var pooled = new double[StatsLength];
            for (var c = 0; c < k; c++)
            {
                var raw = slots[Slot(population, a, c)];
                (counts[c], means[c], covariances[c]) = SufficientStatistics.Moments(raw, Reference);
                for (var i = 0; i < pooled.Length; i++) pooled[i] += raw[i];
            }
            var (globalCount, globalMean, globalCovariance) = SufficientStatistics.Moments(pooled, Reference);
            attributes.Add(new ClassStatisticsSnapshot(spec.Name, spec.ClassNames, counts, means, covariances,
                globalCount, globalMean, globalCovariance));
        }
        return attributes;
    }
}
