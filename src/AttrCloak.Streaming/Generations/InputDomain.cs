namespace AttrCloak.Streaming.Generations;

/// <summary>
/// What a plausible original embedding of one generation looks like, learned from its stored population with robust
/// figures (per-dimension median and scaled median absolute deviation, and the median of the standardised norms), so
/// that a few extreme users cannot widen it: an update outside it is refused (<c>out_of_range</c>) and never enters the
/// class statistics. Learned at the generation's seating and refreshed from the stored originals now and then
/// (<c>AttrCloak:Generations:DomainRefresh</c>); see docs/threat-model.md.
/// </summary>
/// <param name="Center">Per-dimension median of the stored originals.</param>
/// <param name="Scale">Per-dimension 1.4826 x median absolute deviation (the standard deviation for Gaussian data), floored.</param>
/// <param name="MedianNorm">Median over users of ||(x - Center) / Scale||.</param>
/// <param name="Users">How many stored originals it was learned from.</param>
/// <param name="LearnedAt">When.</param>
public sealed record InputDomain(float[] Center, float[] Scale, double MedianNorm, long Users, DateTimeOffset LearnedAt)
{
    /// <summary>
    /// Why <paramref name="x"/> is outside the domain (null: inside): a value more than <paramref name="maxDeviations"/>
    /// scales from its dimension's median, or a standardised norm above <paramref name="maxNormRatio"/> x the median one.
    /// The message names dimensions and ratios, never values.
    /// </summary>
    public string? Refuses(ReadOnlySpan<float> x, double maxDeviations, double maxNormRatio)
    {
        if (x.Length != Center.Length) return $"the embedding has {x.Length} values, the domain {Center.Length}";
        double norm2 = 0;
        for (var j = 0; j < x.Length; j++)
        {
            var z = (x[j] - (double)Center[j]) / Scale[j];
            if (!(Math.Abs(z) <= maxDeviations))
                return $"value {j} is {Math.Abs(z):G3} robust deviations from the population's median (at most {maxDeviations:G3})";
            norm2 += z * z;
        }
        var ratio = Math.Sqrt(norm2) / MedianNorm;
        return ratio <= maxNormRatio ? null : $"the standardised norm is {ratio:G3} x the population's median (at most {maxNormRatio:G3})";
    }
}
