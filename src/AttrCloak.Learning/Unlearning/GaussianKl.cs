namespace AttrCloak.Learning.Unlearning;

/// <summary>Closed-form KL divergence between Gaussians, with a ridge, via Cholesky factors.</summary>
public static class GaussianKl
{
    /// <summary>
    /// KL(N(muK, SigmaK + rI) || N(muG, SigmaG + rI)) =
    /// 1/2 [log det(SG)/det(SK) - d + tr(SG^-1 SK) + (muG - muK)^T SG^-1 (muG - muK)],
    /// batched over the leading dimensions of <paramref name="muK"/> [..., d] and <paramref name="sigmaK"/>
    /// [..., d, d]; <paramref name="muG"/> [d] and <paramref name="sigmaG"/> [d, d] are shared. Computed in
    /// float64 from Cholesky factors: log det = 2 sum log diag(L) (never det itself, which under/overflows in
    /// 64 dimensions), and SG^-1 comes from the global factor (cholesky_inverse) once per call, so the trace and
    /// Mahalanobis terms are element-wise products, O(K d^2), instead of K batched triangular solves. Only the
    /// class log-determinants need the batched class factorisation. The same ridge on both sides keeps
    /// KL(P || P) = 0.
    /// </summary>
    public static Tensor Divergence(Tensor muK, Tensor sigmaK, Tensor muG, Tensor sigmaG, Tensor ridge)
    {
        ArgumentNullException.ThrowIfNull(muK);
        ArgumentNullException.ThrowIfNull(sigmaK);
        ArgumentNullException.ThrowIfNull(muG);
        ArgumentNullException.ThrowIfNull(sigmaG);
        ArgumentNullException.ThrowIfNull(ridge);
        var d = muG.shape[^1];
        using var eye = torch.eye(d, dtype: float64);
        var r = ridge.to_type(float64).mul(eye);
        var sg = sigmaG.to_type(float64).add(r);
        var sk = sigmaK.to_type(float64).add(r);
        var lg = torch.linalg.cholesky(sg);
        var lk = torch.linalg.cholesky(sk);

        var logDetG = lg.diagonal(0, -2, -1).log().sum(-1).mul(2.0);
        var logDetK = lk.diagonal(0, -2, -1).log().sum(-1).mul(2.0);
        // SG^-1 is symmetric, so tr(SG^-1 SK) = sum(SG^-1 o SK).
        var sgInverse = torch.cholesky_inverse(lg);
        var trace = sk.mul(sgInverse).sum([-2L, -1L]);
        var diff = muK.to_type(float64).sub(muG.to_type(float64));
        var mahalanobis = diff.matmul(sgInverse).mul(diff).sum(-1);
        return logDetG.sub(logDetK).sub(d).add(trace).add(mahalanobis).mul(0.5);
    }

    /// <summary>Overload with a constant ridge.</summary>
    public static Tensor Divergence(Tensor muK, Tensor sigmaK, Tensor muG, Tensor sigmaG, double ridge)
    {
        using var r = torch.tensor(ridge, float64);
        return Divergence(muK, sigmaK, muG, sigmaG, r);
    }
}
