using AttrCloak.Core.Data;

namespace AttrCloak.Learning.Unlearning;

/// <summary>Where L_AU sends each class's Gaussian (see <see cref="ClassTargets"/>).</summary>
public enum EqualisationTarget
{
    /// <summary>
    /// The slides' L_AU: every class to the global fit of this very population (at strength 1). Exact empirical
    /// moment matching: the population's class means end up EXACTLY on the global mean, so the class offsets of
    /// any shadow subset are anti-correlated with those of the remaining users, and an attacker who knows it
    /// inverts its predictions (the reference evaluation's noise control: a calibrated LR finds a gender leak in pure noise).
    /// </summary>
    Empirical,

    /// <summary>
    /// Class means to the global mean PLUS a fresh draw of their sampling error (Gaussian with the pooled
    /// within-class covariance over n_k, centred over classes), reached on a variance-preserving
    /// path: offset(t) = (1 - t) Delta_k + sqrt(1 - (1 - t)^2) eta_k. On data without signal the cloaked class
    /// means are then distributed exactly like uncloaked ones at every strength, so nothing is created; with
    /// signal, (1 - t) of the true offset remains. The default.
    /// </summary>
    NoiseMatched,

    /// <summary>
    /// Class means toward a positive-part James-Stein estimate of their true offset: the part of Delta_k that
    /// is within sampling noise is left in place, offset(t) = (1 - t) Delta_k + t c_k Delta_k with
    /// c_k = min(1, (d - 2) / (n_k Delta_k^T W^-1 Delta_k)), W the pooled within-class covariance. Kept for the
    /// measurement of issue 13 (docs/evaluation.md): it creates little on noise but leaves a noise-sized offset ALONG the
    /// true signal on real data.
    /// </summary>
    Shrunk,
}

/// <summary>
/// Per-attribute class targets of L_AU, fixed at the start of a run from the ORIGINAL embeddings: each class k
/// is pulled toward N(mu_g + o_k, Sigma_g + C_k), with mu_g, Sigma_g the CURRENT global fit and o_k, C_k the
/// offsets computed here. Strength t in [0, 1]: the covariance offset is C_k = (1 - t)(Sigma_k - Sigma_g) of the
/// original fits, the mean offset o_k follows <see cref="EqualisationTarget"/>. At t = 1 with
/// <see cref="EqualisationTarget.Empirical"/> both offsets are 0 and L_AU is exactly the slides' loss.
/// Offsets are in fit order (<see cref="AttributeLayout.PresentClasses"/>), float64.
/// </summary>
public sealed class ClassTargets : IDisposable
{
    private ClassTargets(Tensor? meanOffsets, Tensor? covarianceOffsets, double[]? meanOffsetValues = null, int[]? fitIndex = null)
    {
        MeanOffsets = meanOffsets;
        CovarianceOffsets = covarianceOffsets;
        MeanOffsetValues = meanOffsetValues;
        FitIndex = fitIndex;
    }

    /// <summary>The mean offsets o_k as row-major [K, d] values (null when all zero).</summary>
    public double[]? MeanOffsetValues { get; }

    /// <summary>Fit index of each attribute class (-1 when absent); null when the offsets are all zero.</summary>
    public int[]? FitIndex { get; }

    /// <summary>[K, d] mean offsets o_k from the current global mean, or null (all zero).</summary>
    internal Tensor? MeanOffsets { get; }

    /// <summary>[K, d, d] covariance offsets C_k from the current global covariance, or null (all zero).</summary>
    internal Tensor? CovarianceOffsets { get; }

    /// <summary>
    /// The target covariances Sigma_g + C_k [K, d, d] for the CURRENT global covariance <paramref name="globalCovariance"/>,
    /// lifted where needed to be positive semi-definite. Why: C_k is fixed from the original fit while Sigma_g follows the
    /// cloak; with a noise-matched draw for a class of fewer users than dimensions (its sample covariance is rank
    /// n_k - 1, so the draw has eigenvalues near -W), Sigma_g + C_k can be indefinite, and the KL's Cholesky then fails
    /// (94 users at d = 64, covariance strength 1: "leading minor of order 61 is not positive-definite"). A target
    /// Gaussian needs a covariance, so each negative eigenvalue is raised to 0 (the ridge the KL adds keeps it definite);
    /// the lift is a constant, so the gradient through Sigma_g is unchanged, and a definite target is not touched.
    /// </summary>
    internal Tensor TargetCovariances(Tensor globalCovariance)
    {
        ArgumentNullException.ThrowIfNull(globalCovariance);
        var offsets = CovarianceOffsets ?? throw new InvalidOperationException("no covariance offsets: the target is the global covariance itself");
        var targets = globalCovariance.Plus(offsets);
        Tensor lift;
        using (torch.no_grad())
        {
            var (values, vectors) = torch.linalg.eigh(targets.detach());
            if (values.min().item<double>() >= 0) return targets;
            // V diag(max(lambda, 0) - lambda) V^T: the smallest PSD correction in Frobenius norm.
            var raise = values.clamp_min(Scalars.Zero).sub(values);
            lift = vectors.mul(raise.unsqueeze(-2)).matmul(vectors.mT);
        }
        return targets.Plus(lift);
    }

    /// <summary>True when the targets are the slides' (every class to the global fit).</summary>
    public bool IsIdentity => MeanOffsets is null && CovarianceOffsets is null;

    /// <summary>
    /// Mean targets given directly: <paramref name="offsetsByClass"/> is row-major [ClassCount, d], class k's mean
    /// offset from the global mean (for <see cref="MeanProjection"/> only; the loss never sees them).
    /// </summary>
    public static ClassTargets FromMeanOffsets(LabeledAttribute attribute, double[] offsetsByClass)
    {
        ArgumentNullException.ThrowIfNull(attribute);
        ArgumentNullException.ThrowIfNull(offsetsByClass);
        return new ClassTargets(null, null, offsetsByClass, Enumerable.Range(0, attribute.ClassCount).ToArray());
    }

    /// <summary>
    /// Targets of one attribute for <paramref name="original"/> embeddings; <paramref name="keepFloors"/>, per attribute
    /// class, the least share of its mean offset it keeps (null: none; <see cref="CloakOptions.ClassKeepFloors"/>).
    /// </summary>
    public static ClassTargets Build(EmbeddingMatrix original, LabeledAttribute attribute, EqualisationTarget kind,
        double strength, int seed, double? covarianceStrength = null, double[]? keepFloors = null)
    {
        var covStrength = covarianceStrength ?? strength;
        if (!(covStrength is >= 0 and <= 1)) throw new ArgumentException($"covariance strength must be in [0, 1], got {covStrength}");
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(attribute);
        if (!(strength is >= 0 and <= 1)) throw new ArgumentException($"strength must be in [0, 1], got {strength}");
        if (kind == EqualisationTarget.Empirical && strength == 1 && covStrength == 1 && keepFloors is null) return new ClassTargets(null, null);
        if (keepFloors is not null && keepFloors.Length != attribute.ClassCount)
            throw new ArgumentException($"{keepFloors.Length} keep floors for the {attribute.ClassCount} classes of '{attribute.Attribute.Name}'");

        var fit = Moments.Fit(original, attribute);
        int k = fit.Counts.Length, d = original.Cols;
        var offsets = new double[k * d];
        var rng = new Random(seed);
        // keep_k: the share of class k's empirical offset left in place. Empirical: 1 - t for every class. Shrunk and
        // NoiseMatched: a James-Stein weight whose threshold falls with the strength, kappa = (1 - t) / t (t = 0.5 is
        // plain positive-part James-Stein, t = 1 removes every offset, t -> 0 none).
        var keep = kind == EqualisationTarget.Empirical
            ? Enumerable.Repeat(1 - strength, k).ToArray()
            : ShrinkFactors(fit, d, strength >= 1 ? 0 : strength <= 0 ? double.PositiveInfinity : (1 - strength) / strength);
        if (keepFloors is not null)
            for (var a = 0; a < keepFloors.Length; a++)
                if (fit.FitIndex(a) is var c and >= 0) keep[c] = Math.Max(keep[c], keepFloors[a]);
        var noise = kind == EqualisationTarget.NoiseMatched ? SamplingNoise(fit, d, rng) : null;
        for (var c = 0; c < k; c++)
        {
            var noiseWeight = noise is null ? 0 : Math.Sqrt(Math.Max(0, 1 - keep[c] * keep[c]));
            for (var i = 0; i < d; i++)
                offsets[c * d + i] = keep[c] * (fit.Means[c][i] - fit.GlobalMean[i]) + (noise is null ? 0 : noiseWeight * noise[c][i]);
        }
        // Class-specific keep weights leave sum_k w_k o_k != 0; targets relative to the global mean must be centred
        // (the global mean is the share-weighted class mean), or every projection would drag the population along.
        Centre(offsets, fit.Weights, k, d);

        double[]? covariance = null;
        var covKeep = 1 - covStrength;
        var covNoise = kind == EqualisationTarget.NoiseMatched && covStrength > 0 ? CovarianceNoise(fit, d, rng) : null;
        if (covKeep > 0 || covNoise is not null)
        {
            var covNoiseWeight = Math.Sqrt(Math.Max(0, 1 - covKeep * covKeep));
            covariance = new double[k * d * d];
            for (var c = 0; c < k; c++)
                for (var i = 0; i < d * d; i++)
                    covariance[c * d * d + i] = covKeep * (fit.Covariances[c][i] - fit.GlobalCovariance[i])
                        + (covNoise is null ? 0 : covNoiseWeight * covNoise[c][i]);
        }
        var fitIndex = Enumerable.Range(0, attribute.ClassCount).Select(fit.FitIndex).ToArray();
        return new ClassTargets(
            torch.tensor(offsets, [k, d], float64),
            covariance is null ? null : torch.tensor(covariance, [k, d, d], float64), offsets, fitIndex);
    }

    /// <summary>
    /// eta_k ~ N(0, W / n_k), W the pooled within-class covariance, centred with the class shares (like real class
    /// offsets, sum_k w_k o_k = 0): under no signal, class mean offsets are exactly such draws. Drawn independently of
    /// the class's own users on purpose: a multiplier bootstrap of the class's residuals (the first version) has the
    /// right covariance but lays the class mean in the span of its own members, and the noise control caught it
    /// (ML-100K labels, occupation alone, exact means: LR +0.065 balanced accuracy over chance; this draw: -0.008).
    /// </summary>
    private static double[][] SamplingNoise(Moments fit, int d, Random rng)
    {
        var chol = PooledCholesky(fit, d);
        var k = fit.Counts.Length;
        var eta = new double[k][];
        var z = new double[d];
        for (var c = 0; c < k; c++)
        {
            eta[c] = new double[d];
            for (var i = 0; i < d; i++) z[i] = Gaussian(rng);
            var scale = 1 / Math.Sqrt(fit.Counts[c]);
            for (var i = 0; i < d; i++)
            {
                var v = 0.0;
                for (var j = 0; j <= i; j++) v += chol[i * d + j] * z[j];
                eta[c][i] = v * scale;
            }
        }
        var centre = new double[d];
        for (var c = 0; c < k; c++)
            for (var i = 0; i < d; i++) centre[i] += fit.Weights[c] * eta[c][i];
        for (var c = 0; c < k; c++)
            for (var i = 0; i < d; i++) eta[c][i] -= centre[i];
        return eta;
    }

    /// <summary>
    /// N_k: the sampling fluctuation of class k's covariance under no signal, as a fresh draw: the biased sample
    /// covariance of n_k vectors from N(0, W) minus its expectation ((n_k - 1) / n_k) W, centred with the class shares.
    /// </summary>
    private static double[][] CovarianceNoise(Moments fit, int d, Random rng)
    {
        var chol = PooledCholesky(fit, d);
        var k = fit.Counts.Length;
        var noise = new double[k][];
        var g = new double[d];
        var z = new double[d];
        for (var c = 0; c < k; c++)
        {
            var n = (int)fit.Counts[c];
            var sum = new double[d];
            var scatter = new double[d * d];
            for (var m = 0; m < n; m++)
            {
                for (var i = 0; i < d; i++) z[i] = Gaussian(rng);
                for (var i = 0; i < d; i++)
                {
                    var v = 0.0;
                    for (var j = 0; j <= i; j++) v += chol[i * d + j] * z[j];
                    g[i] = v;
                    sum[i] += v;
                }
                for (var i = 0; i < d; i++)
                {
                    var gi = g[i];
                    for (var j = 0; j < d; j++) scatter[i * d + j] += gi * g[j];
                }
            }
            var result = new double[d * d];
            var expected = (n - 1.0) / n;
            for (var i = 0; i < d; i++)
                for (var j = 0; j < d; j++)
                    result[i * d + j] = scatter[i * d + j] / n - sum[i] / n * (sum[j] / n) - expected * fit.Within[i * d + j];
            noise[c] = result;
        }
        var centre = new double[d * d];
        for (var c = 0; c < k; c++)
            for (var i = 0; i < d * d; i++) centre[i] += fit.Weights[c] * noise[c][i];
        for (var c = 0; c < k; c++)
            for (var i = 0; i < d * d; i++) noise[c][i] -= centre[i];
        return noise;
    }

    private static double[] PooledCholesky(Moments fit, int d)
    {
        var within = (double[])fit.Within.Clone();
        var jitter = 1e-9 * Enumerable.Range(0, d).Average(i => within[i * d + i]) + 1e-15;
        for (var i = 0; i < d; i++) within[i * d + i] += jitter;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        return torch.linalg.cholesky(torch.tensor(within, [d, d], float64)).contiguous().data<double>().ToArray();
    }

    /// <summary>
    /// c_k = min(1, kappa (d - 2)(1/n_k - 1/n) / (Delta_k^T W^-1 Delta_k)), W the pooled within-class covariance plus
    /// a small ridge: (d - 2)(1/n_k - 1/n) is what the Mahalanobis length of a class offset is expected to be (less
    /// two, James-Stein's correction) when the class carries no signal, so an offset within sampling noise is left
    /// alone and a large one is removed all but its noise-sized part. kappa = 0 gives 0 (remove everything).
    /// </summary>
    private static double[] ShrinkFactors(Moments fit, int d, double kappa)
    {
        var k = fit.Counts.Length;
        if (kappa == 0) return new double[k];
        if (double.IsPositiveInfinity(kappa)) return Enumerable.Repeat(1.0, k).ToArray();
        var within = (double[])fit.Within.Clone();
        var ridge = 1e-3 * Enumerable.Range(0, d).Average(i => within[i * d + i]) + 1e-12;
        for (var i = 0; i < d; i++) within[i * d + i] += ridge;
        double[] mahalanobis;
        using (var scope = torch.NewDisposeScope())
        using (var noGrad = torch.no_grad())
        {
            var w = torch.tensor(within, [d, d], float64);
            var deltas = new double[k * d];
            for (var c = 0; c < k; c++)
                for (var i = 0; i < d; i++) deltas[c * d + i] = fit.Means[c][i] - fit.GlobalMean[i];
            var delta = torch.tensor(deltas, [k, d], float64);
            var solved = torch.linalg.solve(w, delta.t()).t();
            mahalanobis = solved.mul(delta).sum(-1).data<double>().ToArray();
        }
        var n = fit.Counts.Sum();
        var factors = new double[k];
        for (var c = 0; c < k; c++)
        {
            var expected = Math.Max(d - 2, 1) * Math.Max(1 / fit.Counts[c] - 1 / n, 0);
            factors[c] = mahalanobis[c] > 0 ? Math.Min(1, kappa * expected / mahalanobis[c]) : 1;
        }
        return factors;
    }

    private static void Centre(double[] rows, double[] weights, int k, int width)
    {
        var centre = new double[width];
        for (var c = 0; c < k; c++)
            for (var i = 0; i < width; i++) centre[i] += weights[c] * rows[c * width + i];
        for (var c = 0; c < k; c++)
            for (var i = 0; i < width; i++) rows[c * width + i] -= centre[i];
    }

    internal static double Gaussian(Random rng)
    {
        // Box-Muller; 1 - NextDouble() is in (0, 1].
        var u1 = 1.0 - rng.NextDouble();
        var u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        MeanOffsets?.Dispose();
        CovarianceOffsets?.Dispose();
    }

    /// <summary>Biased (1/N) per-class and global fits in float64 over the classes present, in fit order.</summary>
    internal sealed class Moments
    {
        private readonly int[] _fitIndex;

        private Moments(int[] fitIndex, double[] counts, double[] weights, double[][] means, double[][] covariances,
            double[] globalMean, double[] globalCovariance)
        {
            _fitIndex = fitIndex;
            Counts = counts;
            Weights = weights;
            Means = means;
            Covariances = covariances;
            GlobalMean = globalMean;
            GlobalCovariance = globalCovariance;
        }

        public double[] Counts { get; }
        public double[] Weights { get; }
        public double[][] Means { get; }
        public double[][] Covariances { get; }
        public double[] GlobalMean { get; }
        public double[] GlobalCovariance { get; }

        /// <summary>The pooled within-class covariance sum_k w_k Sigma_k.</summary>
        public double[] Within
        {
            get
            {
                if (_within is not null) return _within;
                var d = GlobalMean.Length;
                var within = new double[d * d];
                for (var c = 0; c < Counts.Length; c++)
                    for (var i = 0; i < d * d; i++) within[i] += Weights[c] * Covariances[c][i];
                return _within = within;
            }
        }

        private double[]? _within;

        /// <summary>Fit index of an attribute class, -1 for unknown.</summary>
        public int FitIndex(int label) => label < 0 ? -1 : _fitIndex[label];

        public static Moments Fit(EmbeddingMatrix x, LabeledAttribute attribute)
        {
            int d = x.Cols, classCount = attribute.ClassCount;
            var rawCounts = new int[classCount];
            foreach (var c in attribute.Labels) if (c >= 0) rawCounts[c]++;
            var fitIndex = new int[classCount];
            var present = 0;
            for (var c = 0; c < classCount; c++) fitIndex[c] = rawCounts[c] > 0 ? present++ : -1;
            var counts = new double[present];
            var means = new double[present][];
            var covariances = new double[present][];
            for (var c = 0; c < present; c++) { means[c] = new double[d]; covariances[c] = new double[d * d]; }
            for (var u = 0; u < attribute.Labels.Length; u++)
            {
                var label = attribute.Labels[u];
                if (label < 0) continue;
                var c = fitIndex[label];
                counts[c]++;
                var row = x.Row(u);
                for (var i = 0; i < d; i++) means[c][i] += row[i];
            }
            for (var c = 0; c < present; c++)
                for (var i = 0; i < d; i++) means[c][i] /= counts[c];
            var centred = new double[d];
            for (var u = 0; u < attribute.Labels.Length; u++)
            {
                var label = attribute.Labels[u];
                if (label < 0) continue;
                var c = fitIndex[label];
                var row = x.Row(u);
                for (var i = 0; i < d; i++) centred[i] = row[i] - means[c][i];
                var cov = covariances[c];
                for (var i = 0; i < d; i++)
                {
                    var ci = centred[i];
                    for (var j = 0; j < d; j++) cov[i * d + j] += ci * centred[j];
                }
            }
            var total = counts.Sum();
            var weights = counts.Select(n => n / total).ToArray();
            var globalMean = new double[d];
            for (var c = 0; c < present; c++)
            {
                for (var i = 0; i < d * d; i++) covariances[c][i] /= counts[c];
                for (var i = 0; i < d; i++) globalMean[i] += weights[c] * means[c][i];
            }
            // Law of total covariance: within + between, exact for biased estimates.
            var globalCovariance = new double[d * d];
            for (var c = 0; c < present; c++)
                for (var i = 0; i < d; i++)
                {
                    var si = means[c][i] - globalMean[i];
                    for (var j = 0; j < d; j++)
                        globalCovariance[i * d + j] += weights[c] * (covariances[c][i * d + j] + si * (means[c][j] - globalMean[j]));
                }
            return new Moments(fitIndex, counts, weights, means, covariances, globalMean, globalCovariance);
        }
    }
}
