using AttrCloak.Core.Data;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Cloaking;

/// <summary>
/// In-process running class statistics of one population of embeddings (served or original): per attribute per class
/// the count, sum and sum of outer products in float64 about the origin (the same raw-sums scheme as the Redis store,
/// so adding and removing a user are exact inverses up to rounding). Used by the re-cloak experiments and tests to
/// build <see cref="ClassStatisticsSnapshot"/>s as the store would; not thread-safe.
/// </summary>
public sealed class ClassStatisticsAccumulator
{
    private readonly IReadOnlyList<AttributeSpec> _attributes;
    private readonly long[][] _counts;
    private readonly double[][][] _sums;
    private readonly double[][][] _scatter;

    public ClassStatisticsAccumulator(int dimension, IReadOnlyList<AttributeSpec> attributes)
    {
        ArgumentNullException.ThrowIfNull(attributes);
        if (dimension < 1) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "the dimension must be at least 1");
        Dimension = dimension;
        _attributes = attributes;
        _counts = attributes.Select(a => new long[a.ClassCount]).ToArray();
        _sums = attributes.Select(a => Enumerable.Range(0, a.ClassCount).Select(_ => new double[dimension]).ToArray()).ToArray();
        _scatter = attributes.Select(a => Enumerable.Range(0, a.ClassCount).Select(_ => new double[dimension * dimension]).ToArray()).ToArray();
    }

    public int Dimension { get; }

    /// <summary>Adds (sign +1) or removes (sign -1) one user's embedding under its class per attribute (-1 = unknown, skipped).</summary>
    public void Add(ReadOnlySpan<float> embedding, ReadOnlySpan<int> classes, int sign = 1)
    {
        if (embedding.Length != Dimension)
            throw new ArgumentException($"embedding has {embedding.Length} values, expected {Dimension}", nameof(embedding));
        if (classes.Length != _attributes.Count)
            throw new ArgumentException($"{classes.Length} classes given for {_attributes.Count} attributes", nameof(classes));
        if (sign is not (1 or -1)) throw new ArgumentOutOfRangeException(nameof(sign), sign, "sign must be +1 or -1");
        var d = Dimension;
        for (var a = 0; a < classes.Length; a++)
        {
            var k = classes[a];
            if (k == RecDataset.UnknownLabel) continue;
            if ((uint)k >= (uint)_attributes[a].ClassCount)
                throw new ArgumentOutOfRangeException(nameof(classes), k, $"attribute '{_attributes[a].Name}' has classes 0..{_attributes[a].ClassCount - 1}");
            _counts[a][k] += sign;
            var sum = _sums[a][k];
            var scatter = _scatter[a][k];
            for (var i = 0; i < d; i++)
            {
                double xi = embedding[i];
                sum[i] += sign * xi;
                var row = scatter.AsSpan(i * d, d);
                for (var j = 0; j < d; j++) row[j] += sign * xi * embedding[j];
            }
        }
    }

    /// <summary>Adds every row of <paramref name="embeddings"/> with its labels (<paramref name="labels"/>[a][row]).</summary>
    public void AddAll(EmbeddingMatrix embeddings, IReadOnlyList<int[]> labels)
    {
        Span<int> classes = stackalloc int[_attributes.Count];
        for (var u = 0; u < embeddings.Rows; u++)
        {
            for (var a = 0; a < classes.Length; a++) classes[a] = labels[a][u];
            Add(embeddings.Row(u), classes);
        }
    }

    /// <summary>Means and biased covariances per attribute and class plus each attribute's global fit, as the store reports them.</summary>
    public IReadOnlyList<ClassStatisticsSnapshot> Snapshot()
    {
        var d = Dimension;
        var result = new List<ClassStatisticsSnapshot>(_attributes.Count);
        for (var a = 0; a < _attributes.Count; a++)
        {
            var k = _attributes[a].ClassCount;
            var means = new double[k][];
            var covariances = new double[k][];
            var pooledSum = new double[d];
            var pooledScatter = new double[d * d];
            long pooledCount = 0;
            for (var c = 0; c < k; c++)
            {
                (means[c], covariances[c]) = Moments(_counts[a][c], _sums[a][c], _scatter[a][c]);
                pooledCount += _counts[a][c];
                for (var i = 0; i < d; i++) pooledSum[i] += _sums[a][c][i];
                for (var i = 0; i < d * d; i++) pooledScatter[i] += _scatter[a][c][i];
            }
            var (globalMean, globalCovariance) = Moments(pooledCount, pooledSum, pooledScatter);
            result.Add(new ClassStatisticsSnapshot(_attributes[a].Name, _attributes[a].ClassNames, (long[])_counts[a].Clone(),
                means, covariances, pooledCount, globalMean, globalCovariance));
        }
        return result;
    }

    private (double[] Mean, double[] Covariance) Moments(long n, double[] sum, double[] scatter)
    {
        var d = Dimension;
        var mean = new double[d];
        var cov = new double[d * d];
        if (n <= 0) return (mean, cov);
        for (var i = 0; i < d; i++) mean[i] = sum[i] / n;
        for (var i = 0; i < d; i++)
            for (var j = 0; j < d; j++)
                cov[i * d + j] = scatter[i * d + j] / n - mean[i] * mean[j];
        return (mean, cov);
    }

    /// <summary>A snapshot whose served statistics come from <paramref name="served"/> and originals from <paramref name="originals"/>.</summary>
    public static StatisticsSnapshot Combine(ClassStatisticsAccumulator served, ClassStatisticsAccumulator originals, StatisticsVersion version)
    {
        ArgumentNullException.ThrowIfNull(served);
        ArgumentNullException.ThrowIfNull(originals);
        if (served.Dimension != originals.Dimension)
            throw new ArgumentException($"served statistics have dimension {served.Dimension}, originals {originals.Dimension}");
        return new StatisticsSnapshot(version, served.Dimension, served.Snapshot()) { Originals = originals.Snapshot() };
    }
}
