namespace AttrCloak.Learning.Unlearning;

/// <summary>
/// The two-task MGDA weight of the slides (Eq. 26): the alpha minimising
/// ||alpha g_AU + (1 - alpha) g_R||^2, i.e. alpha = ((g_R - g_AU)^T g_R) / ||g_AU - g_R||^2, clipped to
/// [min, max].
/// </summary>
public static class MgdaWeight
{
    /// <summary>
    /// alpha from <paramref name="numerator"/> = (g_R - g_AU)^T g_R and <paramref name="denominator"/> =
    /// ||g_AU - g_R||^2, clipped to [<paramref name="min"/>, <paramref name="max"/>]. When the denominator is 0
    /// the gradients coincide and every alpha gives the same direction; the midpoint 0.5 (clipped) is returned
    /// instead of 0/0.
    /// </summary>
    public static double FromProducts(double numerator, double denominator, double min, double max)
    {
        CheckBounds(min, max);
        if (!(denominator > 0) || double.IsNaN(numerator)) return Math.Clamp(0.5, min, max);
        var alpha = numerator / denominator; // may be +-Infinity when the denominator underflows: clipping handles it
        // "+ 0.0" turns a -0.0 (from a zero numerator) into +0.0 so traces do not print "-0".
        return double.IsNaN(alpha) ? Math.Clamp(0.5, min, max) : Math.Clamp(alpha, min, max) + 0.0;
    }

    /// <summary>alpha for gradients given as flat vectors.</summary>
    public static double Solve(ReadOnlySpan<double> gAU, ReadOnlySpan<double> gR, double min, double max)
    {
        if (gAU.Length != gR.Length) throw new ArgumentException($"gradient lengths differ: {gAU.Length} vs {gR.Length}");
        double numerator = 0, denominator = 0;
        for (var i = 0; i < gAU.Length; i++)
        {
            var diff = gAU[i] - gR[i];
            numerator -= diff * gR[i];
            denominator += diff * diff;
        }
        return FromProducts(numerator, denominator, min, max);
    }

    /// <summary>alpha for gradient tensors of any (equal) shape, flattened, reduced in float64.</summary>
    public static double Solve(Tensor gAU, Tensor gR, double min, double max)
    {
        ArgumentNullException.ThrowIfNull(gAU);
        ArgumentNullException.ThrowIfNull(gR);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var a = gAU.to_type(float64).flatten();
        var r = gR.to_type(float64).flatten();
        var diff = a.sub(r);
        var numerator = -diff.dot(r).item<double>();
        var denominator = diff.dot(diff).item<double>();
        return FromProducts(numerator, denominator, min, max);
    }

    internal static void CheckBounds(double min, double max)
    {
        if (double.IsNaN(min) || double.IsNaN(max) || min < 0 || max > 1 || min > max)
            throw new ArgumentException($"MGDA bounds must satisfy 0 <= min <= max <= 1, got [{min}, {max}]");
    }
}
