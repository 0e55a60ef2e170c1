
namespace AttrCloak.Streaming.Generations;

/// <summary>
/// Learns an <see cref="InputDomain"/> from original embeddings: medians and median absolute deviations per dimension
/// and the median standardised norm. Robust: fewer than half of the users, whatever they send, cannot move a median
/// beyond the honest users' own quantiles, so a minority cannot walk the domain away however often it is learned again,
/// while a drift of the whole population moves it along. Pure.
/// </summary>
public static class InputDomainEstimator
{
    /// <summary>Fewer users than this: no learned domain (only the hard limits apply).</summary>
    public const int MinUsers = 50;

    /// <summary>
    /// The domain of <paramref name="originals"/> (rows of equal length), or null with fewer than <see cref="MinUsers"/>.
    /// A dimension whose deviation is (near) zero gets a floor of 1 % of the mean scale (or 1e-6), so that a constant
    /// dimension does not refuse every other value.
    /// </summary>
    public static InputDomain? Learn(IReadOnlyList<float[]> originals, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(originals);
        if (originals.Count < MinUsers) return null;
        var n = originals.Count;
        var d = originals[0].Length;
        var center = new float[d];
        var scale = new float[d];
        var column = new double[n];
        for (var j = 0; j < d; j++)
        {
            for (var u = 0; u < n; u++) column[u] = originals[u][j];
            var median = Median(column);
            for (var u = 0; u < n; u++) column[u] = Math.Abs(originals[u][j] - median);
            center[j] = (float)median;
            scale[j] = (float)(1.4826 * Median(column));
        }
        var meanScale = scale.Average(s => (double)s);
        var floor = (float)Math.Max(0.01 * meanScale, 1e-6);
        for (var j = 0; j < d; j++) scale[j] = Math.Max(scale[j], floor);
        var norms = new double[n];
        for (var u = 0; u < n; u++)
        {
            double s2 = 0;
            for (var j = 0; j < d; j++)
            {
                var z = (originals[u][j] - (double)center[j]) / scale[j];
                s2 += z * z;
            }
            norms[u] = Math.Sqrt(s2);
        }
        return new InputDomain(center, scale, Math.Max(Median(norms), 1e-9), n, now);
    }

    /// <summary>The median (mean of the two middle values for an even count); sorts <paramref name="values"/> in place.</summary>
    private static double Median(double[] values)
    {
        Array.Sort(values);
        var mid = values.Length / 2;
        return values.Length % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
    }
}
