using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Cloaking;

/// <summary>How <see cref="ClassShiftWeights"/> measures a class offset against its sampling noise.</summary>
public enum ShiftShrinkageMetric
{
    /// <summary>Each dimension in units of its own variance (the diagonal of the global covariance).</summary>
    PerDimension,

    /// <summary>
    /// Whitened by the pooled within-class covariance (a Mahalanobis length): what a linear attacker separates the class
    /// by, and the metric in which the sampling noise of a class mean has the same expected length d / n_k in every
    /// direction.
    /// </summary>
    Whitened,
}

/// <summary>
/// The James-Stein weight of each class's specific shift (issue 13, small classes):
/// max(0, 1 - kappa d / (n_k |mu_o,k - mu_o,g|^2)) on the ORIGINAL statistics. Applied to a new user, a shift estimated on
/// n_k users leaves that user's class the residual (1 - w) mu_k - w e_k (e_k the estimate's sampling error), shared by
/// every later member of the class: a class offset an attacker reads. Its expected squared length
/// (1 - w)^2 |mu_k|^2 + w^2 d / n_k is least at w = |mu_k|^2 / (|mu_k|^2 + d / n_k), which is this weight with kappa 1
/// when the lengths are measured in the metric the noise is isotropic in.
/// </summary>
internal sealed class ClassShiftWeights
{
    private readonly ClassStatisticsSnapshot _original;
    private readonly int _d;
    private readonly double _kappa;
    private readonly double[]? _cholesky;

    public ClassShiftWeights(ClassStatisticsSnapshot original, int d, double kappa, ShiftShrinkageMetric metric)
    {
        _original = original;
        _d = d;
        _kappa = kappa;
        if (metric == ShiftShrinkageMetric.Whitened) _cholesky = Cholesky(PooledWithin(original, d), d);
    }

    /// <summary>The weight of class <paramref name="k"/> (0 for an empty class or one at the global mean).</summary>
    public double Of(int k)
    {
        var n = _original.Counts[k];
        if (n <= 0) return 0;
        var delta = new double[_d];
        for (var i = 0; i < _d; i++) delta[i] = _original.Means[k][i] - _original.GlobalMean[i];
        var length = _cholesky is null ? PerDimensionLength(delta) : WhitenedLength(delta);
        if (!(length > 0)) return 0;
        return Math.Max(0, 1 - _kappa * _d / (n * length));
    }

    /// <summary>Every class's weight, in class order.</summary>
    public double[] All() => Enumerable.Range(0, _original.Counts.Length).Select(Of).ToArray();

    private double PerDimensionLength(double[] delta)
    {
        double length = 0;
        for (var i = 0; i < _d; i++) length += delta[i] * delta[i] / Math.Max(_original.GlobalCovariance[i * _d + i], 1e-12);
        return length;
    }

    /// <summary>|L^-1 delta|^2 with L L^T the pooled within-class covariance: one forward substitution.</summary>
    private double WhitenedLength(double[] delta)
    {
        var l = _cholesky!;
        var y = new double[_d];
        double length = 0;
        for (var i = 0; i < _d; i++)
        {
            var s = delta[i];
            for (var j = 0; j < i; j++) s -= l[i * _d + j] * y[j];
            y[i] = s / l[i * _d + i];
            length += y[i] * y[i];
        }
        return length;
    }

    /// <summary>
    /// sum_k n_k Sigma_k / n, plus a ridge of 1e-3 of the mean per-dimension variance so that a direction nobody varies
    /// in cannot make a tiny offset look large; the global covariance when no class is populated.
    /// </summary>
    private static double[] PooledWithin(ClassStatisticsSnapshot s, int d)
    {
        var pooled = new double[d * d];
        double total = 0;
        for (var k = 0; k < s.Counts.Length; k++)
        {
            if (s.Counts[k] <= 0) continue;
            total += s.Counts[k];
            for (var i = 0; i < pooled.Length; i++) pooled[i] += s.Counts[k] * s.Covariances[k][i];
        }
        if (total > 0)
            for (var i = 0; i < pooled.Length; i++) pooled[i] /= total;
        else
            Array.Copy(s.GlobalCovariance, pooled, pooled.Length);
        double trace = 0;
        for (var i = 0; i < d; i++) trace += pooled[i * d + i];
        var ridge = 1e-3 * Math.Max(trace / d, 1e-12);
        for (var i = 0; i < d; i++) pooled[i * d + i] += ridge;
        return pooled;
    }

    /// <summary>Lower-triangular L with L L^T = <paramref name="a"/> (symmetric positive definite after the ridge).</summary>
    private static double[] Cholesky(double[] a, int d)
    {
        var l = new double[d * d];
        for (var i = 0; i < d; i++)
        {
            for (var j = 0; j <= i; j++)
            {
                var s = a[i * d + j];
                for (var p = 0; p < j; p++) s -= l[i * d + p] * l[j * d + p];
                if (i == j) l[i * d + i] = Math.Sqrt(Math.Max(s, 1e-300));
                else l[i * d + j] = s / l[j * d + j];
            }
        }
        return l;
    }
}
