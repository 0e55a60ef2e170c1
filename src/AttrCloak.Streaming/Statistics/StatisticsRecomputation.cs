namespace AttrCloak.Streaming.Statistics;

/// <summary>
/// Every slot's sums recomputed from user states (both populations), and their comparison with stored sums: the
/// store-independent part of the Redis adapter's <c>StatisticsVerifier</c>, also used to verify the in-process store.
/// </summary>
public sealed class StatisticsRecomputation
{
    private readonly StatisticsShape _shape;

    public StatisticsRecomputation(StatisticsShape shape)
    {
        _shape = shape;
        Sums = new double[shape.SlotCount][];
        for (var s = 0; s < Sums.Length; s++) Sums[s] = new double[shape.StatsLength];
        Magnitudes = new (double S, double M)[shape.SlotCount];
    }

    /// <summary>The recomputed sums per slot.</summary>
    public double[][] Sums { get; }

    /// <summary>
    /// Per slot, the summed magnitudes of the terms (for S: sum of max|y|, for M: sum of max|y|^2), which bound the
    /// rounding error of any order of summation.
    /// </summary>
    public (double S, double M)[] Magnitudes { get; }

    public long Users { get; private set; }

    /// <summary>Adds one user's contribution to the slots of their known classes, in both populations.</summary>
    public void Add(ReadOnlySpan<float> original, ReadOnlySpan<float> cloaked, ReadOnlySpan<int> classes)
    {
        Users++;
        Add(StatisticsPopulation.Served, cloaked, classes);
        Add(StatisticsPopulation.Original, original, classes);
    }

    private void Add(StatisticsPopulation population, ReadOnlySpan<float> x, ReadOnlySpan<int> classes)
    {
        var y = SufficientStatistics.Centre(x, _shape.Reference);
        var yMax = 0.0;
        foreach (var e in y) yMax = Math.Max(yMax, Math.Abs(e));
        for (var a = 0; a < classes.Length; a++)
        {
            if (classes[a] < 0) continue;
            var slot = _shape.Slot(population, a, classes[a]);
            SufficientStatistics.AddOuter(Sums[slot], y, 1.0);
            Magnitudes[slot].S += yMax;
            Magnitudes[slot].M += yMax * yMax;
        }
    }

    /// <summary>Compares stored sums (per slot; <paramref name="malformed"/> marks values of the wrong length) with the recomputation.</summary>
    public List<ClassStatisticsDifference> Compare(double[][] stored, bool[] malformed, double relativeTolerance)
    {
        var d = _shape.Dimension;
        var differences = new List<ClassStatisticsDifference>(_shape.SlotCount);
        for (var slot = 0; slot < _shape.SlotCount; slot++)
        {
            var (population, a, k) = _shape.SlotOwner(slot);
            var spec = _shape.Attributes[a];
            var r = Sums[slot];
            var recomputedCount = (long)Math.Round(r[0]);
            // The tolerance grows with the magnitudes summed; the floor keeps an empty class's zeros exact-ish.
            var tolerance = relativeTolerance * Math.Max(1.0, Math.Max(Magnitudes[slot].S, Magnitudes[slot].M));
            if (malformed[slot])
            {
                differences.Add(new ClassStatisticsDifference(population, spec.Name, k, spec.ClassNames[k], -1, recomputedCount,
                    -1 - recomputedCount, double.PositiveInfinity, double.PositiveInfinity, tolerance, true));
                continue;
            }
            var s = stored[slot];
            double maxS = 0, maxM = 0;
            for (var i = 1; i <= d; i++) maxS = Math.Max(maxS, Diff(s[i], r[i]));
            for (var i = 1 + d; i < r.Length; i++) maxM = Math.Max(maxM, Diff(s[i], r[i]));
            // A stored count that is not a finite integer is reported as an (infinite) count difference.
            var countIsIntegral = double.IsFinite(s[0]) && s[0] == Math.Round(s[0]) && Math.Abs(s[0]) < 1e15;
            var storedCount = countIsIntegral ? (long)s[0] : -1;
            var countDifference = countIsIntegral ? storedCount - recomputedCount : long.MaxValue;
            differences.Add(new ClassStatisticsDifference(population, spec.Name, k, spec.ClassNames[k], storedCount, recomputedCount,
                countDifference, maxS, maxM, tolerance, false));
        }
        return differences;
    }

    private static double Diff(double a, double b)
    {
        var x = Math.Abs(a - b);
        return double.IsNaN(x) ? double.PositiveInfinity : x;
    }
}
