namespace AttrCloak.Learning.Tests.Unlearning;

/// <summary>Independent double-precision reference linear algebra (Gauss-Jordan), no libtorch involved.</summary>
internal static class DenseMath
{
    public static (double[,] Inverse, double Determinant) InverseAndDeterminant(double[,] a)
    {
        var n = a.GetLength(0);
        var m = (double[,])a.Clone();
        var inv = new double[n, n];
        for (var i = 0; i < n; i++) inv[i, i] = 1;
        double det = 1;
        for (var col = 0; col < n; col++)
        {
            var pivot = col;
            for (var r = col + 1; r < n; r++) if (Math.Abs(m[r, col]) > Math.Abs(m[pivot, col])) pivot = r;
            if (pivot != col)
            {
                for (var c = 0; c < n; c++)
                {
                    (m[col, c], m[pivot, c]) = (m[pivot, c], m[col, c]);
                    (inv[col, c], inv[pivot, c]) = (inv[pivot, c], inv[col, c]);
                }
                det = -det;
            }
            var p = m[col, col];
            det *= p;
            for (var c = 0; c < n; c++) { m[col, c] /= p; inv[col, c] /= p; }
            for (var r = 0; r < n; r++)
            {
                if (r == col) continue;
                var f = m[r, col];
                for (var c = 0; c < n; c++) { m[r, c] -= f * m[col, c]; inv[r, c] -= f * inv[col, c]; }
            }
        }
        return (inv, det);
    }

    /// <summary>KL(N(muK, SK + rI) || N(muG, SG + rI)) from an explicit inverse and determinants.</summary>
    public static double Kl(double[] muK, double[,] sk, double[] muG, double[,] sg, double ridge)
    {
        var d = muK.Length;
        var skr = (double[,])sk.Clone();
        var sgr = (double[,])sg.Clone();
        for (var i = 0; i < d; i++) { skr[i, i] += ridge; sgr[i, i] += ridge; }
        var (gInv, gDet) = InverseAndDeterminant(sgr);
        var (_, kDet) = InverseAndDeterminant(skr);
        double trace = 0, maha = 0;
        for (var i = 0; i < d; i++)
            for (var j = 0; j < d; j++)
            {
                trace += gInv[i, j] * skr[j, i];
                maha += (muG[i] - muK[i]) * gInv[i, j] * (muG[j] - muK[j]);
            }
        return 0.5 * (Math.Log(gDet / kDet) - d + trace + maha);
    }

    public static double[,] RandomSpd(Random rng, int d, double jitter = 0.1)
    {
        var a = new double[d, d];
        for (var i = 0; i < d; i++) for (var j = 0; j < d; j++) a[i, j] = SyntheticUsers.Gaussian(rng);
        var s = new double[d, d];
        for (var i = 0; i < d; i++)
            for (var j = 0; j < d; j++)
            {
                double v = 0;
                for (var t = 0; t < d; t++) v += a[i, t] * a[j, t];
                s[i, j] = v / d + (i == j ? jitter : 0);
            }
        return s;
    }

    public static double[] Flatten(double[,] a) => a.Cast<double>().ToArray();
}
