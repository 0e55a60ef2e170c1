using AttrCloak.Core.Data;
namespace AttrCloak.Learning.Unlearning;

/// <summary>
/// L_AU and its per-attribute terms L_AU_j as float64 tensors (scalar and [m]), plus the mean-shift part of each
/// L_AU_j (class-share weighted 1/2 Mahalanobis distance of the class means; detached, for reporting and stopping).
/// </summary>
public readonly record struct AttributeLossValue(Tensor Total, Tensor PerAttribute, Tensor MeanShiftPerAttribute);

/// <summary>
/// The attribute unlearning loss of the slides (Eq. 18-19): for each protected attribute j,
/// L_AU_j = sum_k (|S_k| / |S_j|) KL(N(mu_k, Sigma_k) || N(mu_global, Sigma_global)) over its labelled users, and
/// L_AU = mean_j L_AU_j. Differentiable with respect to the user matrix.
/// <para>
/// Reduction: class-share weighted sum inside an attribute and a mean over attributes, exactly as in the slides.
/// Both are averages, so L_AU (and its gradient norm) does not grow with the number of users; per user the
/// gradient scales like 1/n. That is the opposite of the summed retention losses, which is why the cloaker's MGDA
/// weight ends near 1 once the retention gradient is non-zero (see <see cref="Cloaker"/>).
/// </para>
/// </summary>
public sealed class AttributeUnlearningLoss : IDisposable
{
    private readonly AttributeLayout[] _layouts;
    private ClassTargets[]? _targets;

    /// <summary>Prepares the label layouts of <paramref name="attributes"/> for <paramref name="userCount"/> users.</summary>
    public AttributeUnlearningLoss(IReadOnlyList<LabeledAttribute> attributes, int userCount, CovarianceRidge ridge)
    {
        ArgumentNullException.ThrowIfNull(attributes);
        ArgumentNullException.ThrowIfNull(ridge);
        if (attributes.Count == 0) throw new ArgumentException("at least one protected attribute is required");
        ridge.Validate();
        foreach (var a in attributes) a.Validate(userCount);
        Attributes = attributes;
        Ridge = ridge;
        UserCount = userCount;
        _layouts = attributes.Select(a => AttributeLayout.Create(a.Labels, a.ClassCount)).ToArray();
    }

    /// <summary>The protected attributes, in the order of <see cref="AttributeLossValue.PerAttribute"/>.</summary>
    public IReadOnlyList<LabeledAttribute> Attributes { get; }

    /// <summary>The covariance ridge in use.</summary>
    public CovarianceRidge Ridge { get; }

    /// <summary>Rows the user matrix must have.</summary>
    public int UserCount { get; }

    /// <summary>
    /// Sends each attribute's classes to <see cref="ClassTargets"/> (one per attribute, in order) instead of the
    /// global fit; null restores the slides' loss. The loss takes ownership of the targets.
    /// </summary>
    public void UseTargets(IReadOnlyList<ClassTargets>? targets)
    {
        if (targets is not null && targets.Count != _layouts.Length)
            throw new ArgumentException($"{targets.Count} class targets for {_layouts.Length} attributes");
        if (_targets is not null) foreach (var t in _targets) t.Dispose();
        _targets = targets?.ToArray();
    }

    /// <summary>
    /// L_AU and L_AU_j of <paramref name="users"/> ([n, d], float32 or float64; may require grad). The result is
    /// float64 and attached to the autograd graph of <paramref name="users"/>.
    /// </summary>
    public AttributeLossValue Compute(Tensor users)
    {
        ArgumentNullException.ThrowIfNull(users);
        // One cast for all attributes; float64 keeps the covariances and log-determinants accurate.
        var x = users.to_type(float64);
        var terms = new Tensor[_layouts.Length];
        var meanShifts = new Tensor[_layouts.Length];
        for (var j = 0; j < _layouts.Length; j++)
        {
            var stats = GaussianFit.Fit(x, _layouts[j]);
            var ridge = Ridge.Resolve(stats.GlobalCovariance);
            var target = _targets?[j];
            var targetMean = target?.MeanOffsets is { } o ? stats.GlobalMean.Plus(o) : stats.GlobalMean;
            var targetCovariance = target?.CovarianceOffsets is not null ? target.TargetCovariances(stats.GlobalCovariance) : stats.GlobalCovariance;
            var (kl, meanShift) = GaussianKl.Components(stats.Means, stats.Covariances, targetMean, targetCovariance, ridge);
            terms[j] = kl.mul(stats.Weights).sum();
            meanShifts[j] = meanShift.detach().mul(stats.Weights).sum();
        }
        var perAttribute = torch.stack(terms);
        return new AttributeLossValue(perAttribute.mean(), perAttribute, torch.stack(meanShifts));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var l in _layouts) l.Dispose();
        if (_targets is not null) foreach (var t in _targets) t.Dispose();
    }
}
