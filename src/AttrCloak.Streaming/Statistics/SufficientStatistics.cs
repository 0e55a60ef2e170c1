using System.Numerics;

namespace AttrCloak.Streaming.Statistics;

/// <summary>
/// Sufficient statistics of one class as one float64 vector, the layout stored in <c>{prefix}:stats:*</c>:
/// <c>[n, S_0..S_{d-1}, M_00, M_01..M_0(d-1), M_11..M_1(d-1), .., M_(d-1)(d-1)]</c> with
/// S = sum of (x - c) and M = sum of (x - c)(x - c)^T (upper triangle, row by row), about the deployment's fixed
/// reference point c.
/// <para>
/// Why raw sums about a fixed point rather than Welford/Chan (mean, M2): adding and removing a user are then exact
/// inverse operations on plain sums (a + t - t), they commute, and a whole batch's changes aggregate into one delta
/// that can be added by anyone (the client or a Lua script) with one float64 addition per element. Welford downdating
/// (removal) recomputes the mean at every step and its rounding does not cancel on re-adding, and Chan merges need the
/// running means of both sides. The known weakness of raw sums, cancellation in M/n - mean*mean^T when the mean is
/// far from the accumulation point, is removed by accumulating about c close to the population mean (0 suits trained
/// embeddings, which are near-centred; otherwise configure <see cref="State.StateStoreOptions.ReferencePoint"/>). With c = 0
/// every term x_i*x_j of float32 inputs is exact in float64 (24 + 24 mantissa bits), so the only rounding is that of
/// the running sums: |error| &lt;= (events ever applied) * 2^-53 * max |term|, far below the statistical noise.
/// When a class's count returns to 0 its sums are reset to exact zeros.
/// </para>
/// </summary>
public static class SufficientStatistics
{
    public static int Length(int d) => 1 + d + d * (d + 1) / 2;

    public static int RowStart(int d, int i) => 1 + d + i * d - i * (i - 1) / 2;

    /// <summary>x - c in float64 (exact for float32 x and c).</summary>
    public static double[] Centre(ReadOnlySpan<float> x, ReadOnlySpan<double> c)
    {
        var y = new double[x.Length];
        for (var i = 0; i < x.Length; i++) y[i] = x[i] - c[i];
        return y;
    }

    /// <summary>acc += sign * (1, y, y y^T) for a centred embedding y.</summary>
    public static void AddOuter(Span<double> acc, ReadOnlySpan<double> y, double sign)
    {
        var d = y.Length;
        acc[0] += sign;
        Axpy(sign, y, acc.Slice(1, d));
        for (var i = 0; i < d; i++)
            Axpy(sign * y[i], y[i..], acc.Slice(RowStart(d, i), d - i));
    }

    /// <summary>y += a * x (no fused multiply-add, so the vector and scalar paths round alike).</summary>
    internal static void Axpy(double a, ReadOnlySpan<double> x, Span<double> y)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated && x.Length >= Vector<double>.Count)
        {
            var va = new Vector<double>(a);
            for (; i <= x.Length - Vector<double>.Count; i += Vector<double>.Count)
                (new Vector<double>(y[i..]) + va * new Vector<double>(x[i..])).CopyTo(y[i..]);
        }
        for (; i < x.Length; i++) y[i] += a * x[i];
    }

    /// <summary>
    /// stored + delta, element by element, with the empty-class reset; the same arithmetic the Lua fallback does, so
    /// both paths store identical bytes.
    /// </summary>
    public static void AddInPlace(Span<double> stored, ReadOnlySpan<double> delta)
    {
        for (var i = 0; i < stored.Length; i++) stored[i] += delta[i];
        if (stored[0] == 0) stored.Clear();
    }

    /// <summary>Count, mean and biased (1/n) covariance (d x d row-major) of <paramref name="acc"/>; zeros when n = 0.</summary>
    public static (long Count, double[] Mean, double[] Covariance) Moments(ReadOnlySpan<double> acc, ReadOnlySpan<double> c)
    {
        var d = c.Length;
        var n = acc[0];
        var mean = new double[d];
        var cov = new double[d * d];
        if (n <= 0) return ((long)Math.Round(n), mean, cov);
        var m = new double[d];
        for (var i = 0; i < d; i++)
        {
            m[i] = acc[1 + i] / n;
            mean[i] = c[i] + m[i];
        }
        for (var i = 0; i < d; i++)
        {
            var row = RowStart(d, i);
            for (var j = i; j < d; j++)
            {
                var v = acc[row + j - i] / n - m[i] * m[j];
                cov[i * d + j] = v;
                cov[j * d + i] = v;
            }
        }
        return ((long)Math.Round(n), mean, cov);
    }
}
