namespace AttrCloak.Learning.Unlearning;

/// <summary>How the ridge added to every covariance before its Cholesky factorisation is sized.</summary>
public enum RidgeMode
{
    /// <summary>The ridge is <see cref="CovarianceRidge.Epsilon"/> itself, in squared embedding units.</summary>
    Absolute,

    /// <summary>
    /// The ridge is Epsilon times the mean per-dimension variance of the attribute's global covariance
    /// (trace / d). It follows the embeddings' scale, so L_AU is invariant to rescaling all embeddings and the
    /// optimiser cannot lower it by shrinking them; it stays differentiable for the same reason.
    /// </summary>
    RelativeToMeanVariance,
}

/// <summary>
/// The covariance ridge: Sigma + ridge * I for every class and the global fit. It keeps classes with fewer users
/// than dimensions (rank-deficient covariances) finite, and, per the reference evaluation, it is also a real
/// hyper-parameter: a large ridge damps the covariance terms of small classes so that the loss concentrates on the
/// class mean shifts that attackers exploit.
/// </summary>
public sealed record CovarianceRidge(double Epsilon, RidgeMode Mode)
{
    /// <summary>Absolute floor under a relative ridge so degenerate data (all embeddings equal) stays positive definite.</summary>
    public const double RelativeFloor = 1e-12;

    /// <summary>A ridge of <paramref name="epsilon"/> squared embedding units.</summary>
    public static CovarianceRidge Absolute(double epsilon) => new(epsilon, RidgeMode.Absolute);

    /// <summary>A ridge of <paramref name="epsilon"/> times the mean per-dimension global variance.</summary>
    public static CovarianceRidge Relative(double epsilon) => new(epsilon, RidgeMode.RelativeToMeanVariance);

    /// <summary>Throws <see cref="ArgumentException"/> unless Epsilon is finite and positive.</summary>
    public void Validate()
    {
        if (!(Epsilon > 0) || double.IsInfinity(Epsilon))
            throw new ArgumentException($"covariance ridge epsilon must be finite and > 0 (Cholesky of a rank-deficient class covariance needs it), got {Epsilon}");
    }

    /// <summary>The ridge as a float64 scalar tensor for a global covariance <paramref name="globalCovariance"/> [d, d].</summary>
    internal Tensor Resolve(Tensor globalCovariance)
    {
        if (Mode == RidgeMode.Absolute) return torch.tensor(Epsilon, float64);
        // Explicit, held Scalars (see Scalars).
        using var epsilon = Epsilon.ToScalar();
        using var floor = RelativeFloor.ToScalar();
        return globalCovariance.diagonal().mean().mul(epsilon).add(floor, Scalars.One);
    }
}
