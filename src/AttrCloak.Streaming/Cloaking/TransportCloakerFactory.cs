using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Cloaking;

/// <summary>
/// Builds <see cref="TransportCloaker"/>s from a statistics snapshot that carries both the served statistics and the
/// ORIGINAL ones (<see cref="StatisticsSnapshot.Originals"/>): O(classes x d^3), two batched eigendecompositions per
/// attribute in float64 (tens of milliseconds for ML-100K's 30 classes at d = 64; docs/performance.md); mean-shift-only
/// maps are far cheaper. Build off the consume thread and swap.
/// </summary>
public sealed class TransportCloakerFactory(TransportCloakerOptions? options = null) : IUserCloakerFactory
{
    public TransportCloakerOptions Options { get; } = Validated(options ?? new TransportCloakerOptions());

    private static TransportCloakerOptions Validated(TransportCloakerOptions o)
    {
        o.Validate();
        return o;
    }

    public IUserCloaker Build(StatisticsSnapshot snapshot) => BuildTransport(snapshot);

    /// <summary><see cref="Build"/> with the concrete type (its <see cref="TransportCloaker.Maps"/> describe what was built).</summary>
    public TransportCloaker BuildTransport(StatisticsSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var d = snapshot.Dimension;
        var served = snapshot.Attributes;
        var originals = snapshot.Originals;
        if (originals.Count != served.Count)
            throw new ArgumentException(
                $"the snapshot has served statistics for {served.Count} attributes but original statistics for {originals.Count}; " +
                "the re-cloak maps each class FROM its original statistics, so the store must keep them");
        for (var a = 0; a < served.Count; a++) Check(served[a], originals[a], d);

        var o = Options;
        var classMaps = new TransportCloaker.ClassMap?[served.Count][];
        var infos = new AttributeMapInfo[served.Count];
        var globals = new (double[] Linear, double[] Offset)?[served.Count];
        for (var a = 0; a < served.Count; a++)
            (classMaps[a], infos[a], globals[a]) = BuildAttribute(served[a], originals[a], d, o,
                o.HoldShiftWeightsAtSeating ? snapshot.ShiftWeightCeilings?.GetValueOrDefault(served[a].Attribute) : null, snapshot.Version.Epoch);

        float[]? globalLinear = null;
        var globalOffset = new float[d];
        if (o.Combination == MapCombination.CenteredAdditive)
        {
            // The population-wide part once, from the attribute with the most labelled users (the best estimate).
            var best = Enumerable.Range(0, served.Count).Where(a => globals[a] is not null)
                .OrderByDescending(a => originals[a].GlobalCount).Cast<int?>().FirstOrDefault();
            if (best is { } g)
            {
                var (linear, offset) = globals[g]!.Value;
                globalLinear = o.CovarianceMaps && infos[g].CovarianceMaps ? ToFloat(linear) : null;
                globalOffset = ToFloat(offset);
            }
        }
        // Warm-up output: the original population's mean (of the attribute with the most labelled users), zeros on
        // an empty store. It depends on nothing about the user, so it is safe to serve while a class cannot be mapped.
        var warmup = new float[d];
        var largest = Enumerable.Range(0, originals.Count).OrderByDescending(a => originals[a].GlobalCount).First();
        // Only from MinGlobalUsers on: the mean of a handful of users is close to each of them (of one user, it IS that
        // user's original embedding, which the next user would be served).
        if (originals[largest].GlobalCount >= o.MinGlobalUsers)
            warmup = ToFloat(originals[largest].GlobalMean);
        return new TransportCloaker(snapshot.Version, d, classMaps, globalLinear, globalOffset, infos, warmup);
    }

    /// <summary>
    /// One attribute's class maps and its global map T_g(x) - x = (B_g - I) x + (mu_t,g - B_g mu_o,g), returned as
    /// (B_g - I, offset) when the attribute is mapped.
    /// </summary>
    private static (TransportCloaker.ClassMap?[] Maps, AttributeMapInfo Info, (double[] Linear, double[] Offset)? Global) BuildAttribute(
        ClassStatisticsSnapshot served, ClassStatisticsSnapshot original, int d, TransportCloakerOptions o, double[]? ceilings, string epoch)
    {
        var classCount = original.Counts.Length;
        var maps = new TransportCloaker.ClassMap?[classCount];
        if (original.GlobalCount < o.MinGlobalUsers)
            return (maps, new AttributeMapInfo(served.Attribute, false, false, false, 0), null);

        var servedTarget = served.GlobalCount >= o.MinGlobalUsers;
        var targetMean = servedTarget ? served.GlobalMean : original.GlobalMean;
        // Anchored: the covariance targets come from the ORIGINAL statistics, which re-cloaked users do not change.
        var targetCovariance = servedTarget ? Lerp(served.GlobalCovariance, original.GlobalCovariance, o.CovarianceAnchor) : original.GlobalCovariance;
        var covarianceMaps = o.CovarianceMaps && original.GlobalCount >= o.MinCovarianceUsers;
        var warm = new bool[classCount];
        for (var k = 0; k < classCount; k++) warm[k] = servedTarget && served.Counts[k] >= o.MinClassUsers;

        // Monge matrices: index k for the classes, index classCount for the attribute's global map.
        double[][] b;
        if (covarianceMaps)
        {
            var ridge = o.RelativeRidge * Math.Max(Trace(original.GlobalCovariance, d) / d, 1e-12);
            var sources = new List<double[]>(classCount + 1);
            var targets = new List<double[]>(classCount + 1);
            // Each warm class's target gets its covariance draw as far as its served covariance is pinned (ClassCovarianceNoise).
            var covarianceDraws = o.CovarianceNoiseScale > 0 && servedTarget ? ClassCovarianceNoise.Draw(original, d, epoch) : null;
            var covarianceShares = covarianceDraws is not null && covarianceDraws.Any(x => x is not null)
                ? ClassCovarianceNoise.NeededShare(served, covarianceDraws, d, o.MinClassUsers) : null;
            for (var k = 0; k < classCount; k++)
            {
                sources.Add(Shrink(original.Covariances[k], original.Counts[k], original.GlobalCovariance, o.CovariancePriorUsers, ridge, d));
                var target = warm[k]
                    ? Shrink(served.Covariances[k], served.Counts[k], targetCovariance, o.CovariancePriorUsers, ridge, d, o.TargetCovarianceScale)
                    : Shrink(targetCovariance, 0, targetCovariance, 1, ridge, d);
                if (warm[k] && covarianceShares is not null && covarianceShares[k] > 0)
                    for (var i = 0; i < target.Length; i++) target[i] += o.CovarianceNoiseScale * covarianceShares[k] * covarianceDraws![k]![i];
                targets.Add(target);
            }
            sources.Add(Shrink(original.GlobalCovariance, 0, original.GlobalCovariance, 1, ridge, d));
            targets.Add(Shrink(targetCovariance, 0, targetCovariance, 1, ridge, d));
            b = GaussianTransport.MongeMatrices(sources, targets, d);
        }
        else
        {
            var identity = Identity(d);
            b = Enumerable.Repeat(identity, classCount + 1).ToArray();
        }

        // T_g(x) = mu_t,g + B_g (x - mu_o,g).
        var bg = b[classCount];
        var globalOffset = Subtract(targetMean, MatVec(bg, original.GlobalMean, d));
        var globalLinear = Subtract(bg, Identity(d));
        var warmCount = 0;
        var shiftWeights = o.ClassShiftShrinkage > 0 ? new ClassShiftWeights(original, d, o.ClassShiftShrinkage, o.ShiftShrinkageMetric) : null;
        // The draws only where a class needs them: a single pass (nothing pinned) skips the Cholesky of the draw.
        var needed = o.SamplingNoiseScale > 0 && servedTarget ? ClassSamplingNoise.NeededShare(served, d, o.MinClassUsers) : null;
        var noise = needed is not null && needed.Any(share => share > 0) ? ClassSamplingNoise.Draw(original, d, epoch) : null;
        for (var k = 0; k < classCount; k++)
        {
            // Shrunk class means: n / (n + prior) of the class's own offset from its global mean.
            var n = original.Counts[k];
            var w = n <= 0 ? 0 : n / (n + o.MeanPriorUsers);
            var sourceMean = Lerp(original.GlobalMean, original.Means[k], w);
            var targetClassMean = targetMean;
            if (warm[k])
            {
                warmCount++;
                var ns = served.Counts[k];
                var ws = ns / (ns + o.MeanPriorUsers) * o.TargetOffsetScale;
                targetClassMean = Lerp(served.GlobalMean, served.Means[k], ws);
            }
            // T_k(x) = mu_t,k + B_k (x - mu_o,k) = B_k x + (mu_t,k - B_k mu_o,k).
            var bk = b[k];
            var offset = Subtract(targetClassMean, MatVec(bk, sourceMean, d));
            double[] linear;
            if (o.Combination == MapCombination.CenteredAdditive)
            {
                // T_k(x) - T_g(x).
                linear = Subtract(bk, bg);
                offset = Subtract(offset, Subtract(targetMean, MatVec(bg, original.GlobalMean, d)));
            }
            else
            {
                // T_k(x) - x.
                linear = Subtract(bk, Identity(d));
            }
            // The class-specific translation gets a fresh draw of the sampling error its estimate carries (ClassSamplingNoise),
            // as much of it as the served class offset lacks of a no-signal population's: a closed loop on the served
            // statistics, so that draws given before are not given again with every re-cloak of the same users.
            if (noise is not null)
                for (var i = 0; i < d; i++) offset[i] += o.SamplingNoiseScale * needed![k] * noise[k][i];
            Scale(linear, o.DeviationScaleOf(served.Attribute));
            Scale(offset, o.DeviationScaleOf(served.Attribute));
            if (shiftWeights is not null)
            {
                // Issue 13, small classes: the class-specific shift was measured on the n_k users the store holds, so
                // it carries their sampling noise. Applied to a NEW user that noise is a shared offset the class did not
                // have, which makes a small class more identifiable than it started. James-Stein on the class's ORIGINAL
                // offset from the original global mean (under no signal its squared length, whitened by the pooled
                // within-class covariance, is about d / n_k; ClassShiftWeights): a class whose original offset is
                // within that noise has nothing to hide and is not moved class-specifically. The originals, unlike the
                // served statistics, never contain re-cloaked users, so the weight cannot decay under repeated updates
                // (a weight measured on the served shift did: each rebuild saw the previous, shrunk shift, and
                // RepeatedUpdateTests' age went back to its original leak).
                var weight = shiftWeights.Of(k);
                // Never above the weight at the seating: users joining a class afterwards (a coalition aimed at a small
                // class) cannot turn a shift the seated class did not have into one its honest users are given.
                if (ceilings is not null && k < ceilings.Length) weight = Math.Min(weight, ceilings[k]);
                Scale(linear, weight);
                Scale(offset, weight);
            }
            maps[k] = new TransportCloaker.ClassMap(covarianceMaps ? ToFloat(linear) : null, ToFloat(offset));
        }
        return (maps, new AttributeMapInfo(served.Attribute, true, servedTarget, covarianceMaps, warmCount), (globalLinear, globalOffset));
    }

    /// <summary>
    /// Each class's shift weight under the current statistics, per attribute (what a seating records as the ceiling, see
    /// <see cref="StatisticsSnapshot.ShiftWeightCeilings"/>); null when the weights are not used (shrinkage off).
    /// </summary>
    public IReadOnlyDictionary<string, double[]>? ShiftWeights(StatisticsSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (Options.ClassShiftShrinkage <= 0 || snapshot.Originals.Count == 0) return null;
        return snapshot.Originals.ToDictionary(o => o.Attribute,
            o => new ClassShiftWeights(o, snapshot.Dimension, Options.ClassShiftShrinkage, Options.ShiftShrinkageMetric).All(),
            StringComparer.Ordinal);
    }

    private static void Check(ClassStatisticsSnapshot served, ClassStatisticsSnapshot original, int d)
    {
        if (served.Attribute != original.Attribute)
            throw new ArgumentException($"served attribute '{served.Attribute}' is paired with original statistics of '{original.Attribute}'");
        foreach (var (s, label) in new[] { (served, "served"), (original, "original") })
        {
            var k = s.Counts.Length;
            if (k < 1 || s.Means.Length != k || s.Covariances.Length != k)
                throw new ArgumentException($"{label} statistics of '{s.Attribute}': {k} counts, {s.Means.Length} means, {s.Covariances.Length} covariances");
            if (s.GlobalMean.Length != d || s.GlobalCovariance.Length != d * d)
                throw new ArgumentException($"{label} statistics of '{s.Attribute}': the global fit is not of dimension {d}");
            for (var c = 0; c < k; c++)
                if (s.Means[c].Length != d || s.Covariances[c].Length != d * d)
                    throw new ArgumentException($"{label} statistics of '{s.Attribute}': class {c} is not of dimension {d}");
        }
        if (served.Counts.Length != original.Counts.Length)
            throw new ArgumentException($"attribute '{served.Attribute}' has {served.Counts.Length} served classes but {original.Counts.Length} original ones");
    }

    /// <summary>(s n C + (n (1 - s) + prior) G) / (n + prior) + ridge I (s = <paramref name="scale"/>, 1 by default).</summary>
    private static double[] Shrink(double[] c, long n, double[] g, double prior, double ridge, int d, double scale = 1)
    {
        var total = n + prior;
        var wc = (total > 0 ? n / total : 0) * scale;
        var result = new double[d * d];
        for (var i = 0; i < result.Length; i++) result[i] = wc * c[i] + (1 - wc) * g[i];
        for (var i = 0; i < d; i++) result[i * d + i] += ridge;
        return result;
    }

    private static double Trace(double[] m, int d)
    {
        var t = 0.0;
        for (var i = 0; i < d; i++) t += m[i * d + i];
        return t;
    }

    private static double[] Identity(int d)
    {
        var m = new double[d * d];
        for (var i = 0; i < d; i++) m[i * d + i] = 1;
        return m;
    }

    private static double[] MatVec(double[] m, double[] x, int d)
    {
        var y = new double[d];
        for (var i = 0; i < d; i++)
        {
            var s = 0.0;
            for (var j = 0; j < d; j++) s += m[i * d + j] * x[j];
            y[i] = s;
        }
        return y;
    }

    private static double[] Subtract(double[] a, double[] b)
    {
        var r = new double[a.Length];
        for (var i = 0; i < a.Length; i++) r[i] = a[i] - b[i];
        return r;
    }

    /// <summary>from + w (to - from).</summary>
    private static double[] Lerp(double[] from, double[] to, double w)
    {
        var r = new double[from.Length];
        for (var i = 0; i < from.Length; i++) r[i] = from[i] + w * (to[i] - from[i]);
        return r;
    }

    private static void Scale(double[] v, double s)
    {
        if (s == 1) return;
        for (var i = 0; i < v.Length; i++) v[i] *= s;
    }

    private static float[] ToFloat(double[] v) => v.Select(x => (float)x).ToArray();
}
