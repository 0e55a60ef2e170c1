namespace AttrCloak.Core.Evaluation;

/// <summary>
/// mean(changed) / mean(original) over the same users, with its standard error by the delta method on the paired
/// per-user terms: sd(changed_u - R original_u) / (sqrt(n) mean(original)). On ML-100K one held-out item per user
/// puts about 0.01 on an NDCG@10 ratio near 0.97 (the <c>utility-gap</c> experiment).
/// </summary>
public readonly record struct PairedRatio(double Ratio, double StandardError, int Users)
{
    /// <summary>The ratio over users whose original term is a number (NaN marks a user without a held-out item).</summary>
    public static PairedRatio Of(IReadOnlyList<double> original, IReadOnlyList<double> changed)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(changed);
        if (original.Count != changed.Count) throw new ArgumentException($"{original.Count} original terms but {changed.Count} changed ones");
        double so = 0, sc = 0;
        var n = 0;
        for (var u = 0; u < original.Count; u++)
        {
            if (double.IsNaN(original[u])) continue;
            so += original[u];
            sc += changed[u];
            n++;
        }
        if (n == 0 || so <= 0) return new PairedRatio(1, 0, n);
        var ratio = sc / so;
        double sz = 0, szz = 0;
        for (var u = 0; u < original.Count; u++)
        {
            if (double.IsNaN(original[u])) continue;
            var z = changed[u] - ratio * original[u];
            sz += z;
            szz += z * z;
        }
        var variance = n > 1 ? (szz - sz * sz / n) / (n - 1) : 0;
        return new PairedRatio(ratio, Math.Sqrt(Math.Max(0, variance) / n) / (so / n), n);
    }
}
