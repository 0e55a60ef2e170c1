using AttrCloak.Core.Data;

namespace AttrCloak.Learning.Unlearning;

/// <summary>
/// Puts every protected attribute's class means exactly on their targets (the global mean of the attribute's
/// labelled users plus the class's offset o_k) with the least squared displacement: for one attribute the
/// least-squares fix of "class k's mean = target" is one common shift of class k's users, which leaves the
/// attribute's global mean where it was (the offsets are centred); attributes are visited in turn until the
/// largest remaining miss is negligible (cyclic projections onto affine sets converge to a point of their
/// intersection). Gradient steps reach the targets only approximately, and a class mean left a little off its
/// target shifts all of that class's users together: a small class then becomes identifiable.
/// </summary>
public static class MeanProjection
{
    /// <summary>Projects <paramref name="x"/> in place; returns the largest remaining miss (embedding units).</summary>
    public static double Apply(EmbeddingMatrix x, IReadOnlyList<LabeledAttribute> attributes,
        IReadOnlyList<ClassTargets?> targets, int maxSweeps = 50, double relativeTolerance = 1e-6)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(attributes);
        ArgumentNullException.ThrowIfNull(targets);
        if (targets.Count != attributes.Count) throw new ArgumentException($"{targets.Count} targets for {attributes.Count} attributes");
        var d = x.Cols;
        var scale = 0.0;
        foreach (var v in x.Values) scale = Math.Max(scale, Math.Abs(v));
        var tolerance = relativeTolerance * Math.Max(scale, 1e-30);
        var miss = double.PositiveInfinity;
        for (var sweep = 0; sweep < maxSweeps && miss > tolerance; sweep++)
        {
            miss = 0;
            for (var a = 0; a < attributes.Count; a++)
                miss = Math.Max(miss, ProjectOne(x, attributes[a], targets[a], d));
        }
        return miss;
    }

    private static double ProjectOne(EmbeddingMatrix x, LabeledAttribute attribute, ClassTargets? target, int d)
    {
        var k = attribute.ClassCount;
        var (sums, counts, global) = ClassSums.Of(x, attribute);
        var shifts = new float[k * d];
        var miss = 0.0;
        for (var c = 0; c < k; c++)
        {
            if (counts[c] == 0) continue;
            var f = target?.FitIndex is { } fi ? fi[c] : -1;
            for (var i = 0; i < d; i++)
            {
                var offset = f >= 0 && target!.MeanOffsetValues is { } o ? o[f * d + i] : 0.0;
                var shift = global[i] + offset - sums[c * d + i] / counts[c];
                shifts[c * d + i] = (float)shift;
                miss = Math.Max(miss, Math.Abs(shift));
            }
        }
        for (var u = 0; u < attribute.Labels.Length; u++)
        {
            var c = attribute.Labels[u];
            if (c < 0) continue;
            var row = x.Row(u);
            for (var i = 0; i < d; i++) row[i] += shifts[c * d + i];
        }
        return miss;
    }
}
