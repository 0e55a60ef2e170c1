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
    /// 64 dimensions), and SG^-1 = cholesky_inverse(LG) once per call, so the trace and Mahalanobis terms are
    /// element-wise products, O(K d^2), instead of K triangular solves. The same ridge on both sides keeps
    /// KL(P || P) = 0. Differentiable once (see <see cref="LogDetAndInverse"/>); not for higher-order gradients.
    /// The target may also be one Gaussian per class (<paramref name="muG"/> [..., d], <paramref name="sigmaG"/>
    /// [..., d, d]): <see cref="ClassTargets"/>.
    /// </summary>
    public static Tensor Divergence(Tensor muK, Tensor sigmaK, Tensor muG, Tensor sigmaG, Tensor ridge) =>
        Components(muK, sigmaK, muG, sigmaG, ridge).Total;

    /// <summary>
    /// <see cref="Divergence(Tensor, Tensor, Tensor, Tensor, Tensor)"/> and its mean-shift part
    /// 1/2 (muG - muK)^T SG^-1 (muG - muK), the part a linear attacker exploits; the rest is the covariance mismatch.
    /// </summary>
    public static (Tensor Total, Tensor MeanShift) Components(Tensor muK, Tensor sigmaK, Tensor muG, Tensor sigmaG, Tensor ridge)
    {
        ArgumentNullException.ThrowIfNull(muK);
        ArgumentNullException.ThrowIfNull(sigmaK);
        ArgumentNullException.ThrowIfNull(muG);
        ArgumentNullException.ThrowIfNull(sigmaG);
        ArgumentNullException.ThrowIfNull(ridge);
        var d = muG.shape[^1];
        using var eye = torch.eye(d, dtype: float64);
        var r = ridge.to_type(float64).mul(eye);
        var sg = sigmaG.to_type(float64).Plus(r);
        var sk = sigmaK.to_type(float64).Plus(r);

        var (logDetG, sgInverse) = LogDetAndInverse(sg, withInverse: true);
        var (logDetK, _) = LogDetAndInverse(sk, withInverse: false);
        // SG^-1 is symmetric, so tr(SG^-1 SK) = sum(SG^-1 o SK).
        var trace = sk.mul(sgInverse!).sum([-2L, -1L]);
        var diff = muK.to_type(float64).sub(muG.to_type(float64));
        // [..., 1, d] x [d, d] or [..., d, d]: works for a shared target and for one target per class.
        var mahalanobis = diff.unsqueeze(-2).matmul(sgInverse!).squeeze(-2).mul(diff).sum(-1);
        // Explicit, held Scalars (see Scalars): implicit ones can be finalised while libtorch reads them.
        using var half = 0.5.ToScalar();
        using var dimension = d.ToScalar();
        var meanShift = mahalanobis.mul(half);
        return (logDetG.sub(logDetK).sub(dimension).Plus(trace).mul(half).Plus(meanShift), meanShift);
    }

    /// <summary>
    /// log det S (and S^-1) of symmetric positive definite <paramref name="s"/> [..., d, d] from one Cholesky
    /// factorisation done outside autograd, re-attached to the graph through their exact first-order
    /// linearisations around S0 = S: logdet(S0) + &lt;S - S0, S0^-1&gt; and S0^-1 - S0^-1 (S - S0) S0^-1. The values are
    /// unchanged (S - S0 is exactly 0) and the gradients are the analytic ones (S^-1 and -S^-1 G S^-1).
    /// Why: libtorch's batched Cholesky backward was much slower and erratic (docs/performance.md), and it dominated
    /// the cost of a cloaking iteration.
    /// </summary>
    internal static (Tensor LogDet, Tensor? Inverse) LogDetAndInverse(Tensor s, bool withInverse)
    {
        Tensor logDet, inverse;
        using (torch.no_grad())
        {
            var l = torch.linalg.cholesky(s);
            using var two = 2.0.ToScalar();
            logDet = l.diagonal(0, -2, -1).log().sum(-1).mul(two);
            inverse = torch.cholesky_inverse(l);
        }
        if (!s.requires_grad) return (logDet, withInverse ? inverse : null);
        var delta = s.sub(s.detach());
        var attachedLogDet = logDet.Plus(delta.mul(inverse).sum([-2L, -1L]));
        var attachedInverse = withInverse ? inverse.sub(inverse.matmul(delta).matmul(inverse)) : null;
        return (attachedLogDet, attachedInverse);
    }

    /// <summary>Overload with a constant ridge.</summary>
    public static Tensor Divergence(Tensor muK, Tensor sigmaK, Tensor muG, Tensor sigmaG, double ridge)
    {
        using var r = torch.tensor(ridge, float64);
        return Divergence(muK, sigmaK, muG, sigmaG, r);
    }
}
