using AttrCloak.Learning;
using AttrCloak.Streaming.Statistics;
using TorchSharp;
using static TorchSharp.torch;

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
    private readonly double[] _weights;

    public ClassShiftWeights(ClassStatisticsSnapshot original, int d, double kappa, ShiftShrinkageMetric metric)
    {
        var classes = original.Counts.Length;
        var deltas = Offsets(original, d);
        var lengths = metric == ShiftShrinkageMetric.Whitened ? WhitenedLengths(original, deltas, d) : PerDimensionLengths(original, deltas, d);
        _weights = new double[classes];
        for (var k = 0; k < classes; k++)
        {
            var n = original.Counts[k];
            _weights[k] = n <= 0 || !(lengths[k] > 0) ? 0 : Math.Max(0, 1 - kappa * d / (n * lengths[k]));
        }
    }

    /// <summary>The weight of class <paramref name="k"/> (0 for an empty class or one at the global mean).</summary>
    public double Of(int k) => _weights[k];

    /// <summary>Every class's weight, in class order.</summary>
    public double[] All() => (double[])_weights.Clone();

    private static double[] PerDimensionLengths(ClassStatisticsSnapshot s, double[] deltas, int d)
    {
        var lengths = new double[s.Counts.Length];
        for (var k = 0; k < lengths.Length; k++)
            for (var i = 0; i < d; i++)
                lengths[k] += deltas[k * d + i] * deltas[k * d + i] / Math.Max(s.GlobalCovariance[i * d + i], 1e-12);
        return lengths;
    }

    /// <summary>Each class's mean offset from the global mean, row-major [classes, d] (0 for an empty class).</summary>
    internal static double[] Offsets(ClassStatisticsSnapshot original, int d)
    {
        var classes = original.Counts.Length;
        var deltas = new double[classes * d];
        for (var k = 0; k < classes; k++)
            if (original.Counts[k] > 0)
                for (var i = 0; i < d; i++) deltas[k * d + i] = original.Means[k][i] - original.GlobalMean[i];
        return deltas;
    }

    /// <summary>|L^-1 delta_k|^2 for every class, L L^T the pooled within-class covariance (libtorch's Cholesky and triangular solve).</summary>
    internal static double[] WhitenedLengths(ClassStatisticsSnapshot s, double[] deltas, int d)
    {
        var classes = s.Counts.Length;
        TorchRuntime.EnsureInitialised();
        using var scope = NewDisposeScope();
        var l = linalg.cholesky(tensor(PooledWithin(s, d), [d, d], ScalarType.Float64));
        // One column per class.
        var y = linalg.solve_triangular(l, tensor(deltas, [classes, d], ScalarType.Float64).t(), upper: false);
        return y.mul(y).sum(dim: 0L).contiguous().data<double>().ToArray();
    }

    /// <summary>
    /// sum_k n_k Sigma_k / n, plus a ridge of 1e-3 of the mean per-dimension variance so that a direction nobody varies
    /// in cannot make a tiny offset look large; the global covariance when no class is populated.
    /// </summary>
    internal static double[] PooledWithin(ClassStatisticsSnapshot s, int d)
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
}
