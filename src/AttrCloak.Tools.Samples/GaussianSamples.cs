namespace AttrCloak.Tools.Samples;

/// <summary>
/// Seeded Gaussian samples and small dense linear algebra: the re-cloak tests (Streaming.Tests/Cloaking) and the
/// re-cloak cost experiment draw their populations here, so the same seed gives the same population in both.
/// </summary>
public static class GaussianSamples
{
    /// <summary>A random symmetric positive definite d x d matrix A A^T / d + floor I (row-major).</summary>
    public static double[] RandomSpd(Random rng, int d, double floor = 0.2, double scale = 1.0)
    {
        var a = new double[d * d];
        for (var i = 0; i < a.Length; i++) a[i] = Normal(rng) * scale;
        var m = new double[d * d];
        for (var i = 0; i < d; i++)
            for (var j = 0; j < d; j++)
            {
                var s = 0.0;
                for (var k = 0; k < d; k++) s += a[i * d + k] * a[j * d + k];
                m[i * d + j] = s / d + (i == j ? floor : 0);
            }
        return m;
    }

    public static double[] RandomVector(Random rng, int d, double scale = 1.0)
    {
        var v = new double[d];
        for (var i = 0; i < d; i++) v[i] = Normal(rng) * scale;
        return v;
    }

    /// <summary><paramref name="n"/> float samples of N(mean, covariance), row-major [n, d].</summary>
    public static float[] Sample(Random rng, double[] mean, double[] covariance, int n)
    {
        var d = mean.Length;
        var l = Cholesky(covariance, d);
        var result = new float[n * d];
        var z = new double[d];
        for (var r = 0; r < n; r++)
        {
            for (var i = 0; i < d; i++) z[i] = Normal(rng);
            for (var i = 0; i < d; i++)
            {
                var s = mean[i];
                for (var j = 0; j <= i; j++) s += l[i * d + j] * z[j];
                result[r * d + i] = (float)s;
            }
        }
        return result;
    }

    /// <summary>Mean and biased covariance of row-major samples.</summary>
    public static (double[] Mean, double[] Covariance) Moments(float[] rows, int d)
    {
        var n = rows.Length / d;
        var mean = new double[d];
        for (var r = 0; r < n; r++)
            for (var i = 0; i < d; i++) mean[i] += rows[r * d + i];
        for (var i = 0; i < d; i++) mean[i] /= n;
        var cov = new double[d * d];
        for (var r = 0; r < n; r++)
            for (var i = 0; i < d; i++)
                for (var j = 0; j < d; j++)
                    cov[i * d + j] += (rows[r * d + i] - mean[i]) * (rows[r * d + j] - mean[j]);
        for (var i = 0; i < cov.Length; i++) cov[i] /= n;
        return (mean, cov);
    }

    public static double[] MatMul(double[] a, double[] b, int d)
    {
        var c = new double[d * d];
        for (var i = 0; i < d; i++)
            for (var k = 0; k < d; k++)
                for (var j = 0; j < d; j++)
                    c[i * d + j] += a[i * d + k] * b[k * d + j];
        return c;
    }

    public static double MaxAbsDifference(double[] a, double[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();

    private static double[] Cholesky(double[] m, int d)
    {
        var l = new double[d * d];
        for (var i = 0; i < d; i++)
            for (var j = 0; j <= i; j++)
            {
                var s = m[i * d + j];
                for (var k = 0; k < j; k++) s -= l[i * d + k] * l[j * d + k];
                l[i * d + j] = i == j ? Math.Sqrt(s) : s / l[j * d + j];
            }
        return l;
    }

    private static double Normal(Random rng)
    {
        var u1 = 1.0 - rng.NextDouble();
        var u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
