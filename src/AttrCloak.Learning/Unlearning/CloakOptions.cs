using AttrCloak.Learning.Backbones;

namespace AttrCloak.Learning.Unlearning;

/// <summary>Which retention loss L_R pairs with L_AU.</summary>
public enum CloakMode
{
    /// <summary>DF: L_R = L_Reg = sum_i ||em_i - em'_i||^2 (no interaction data needed).</summary>
    DataFree,

    /// <summary>DD: L_R = the backbone's training loss on the user vectors, item side frozen, summed over samples.</summary>
    DataDependent,
}

/// <summary>How the combined MGDA direction updates the user embeddings.</summary>
public enum CloakOptimizer
{
    /// <summary>Adam (PyTorch semantics, bias-corrected). Default: per-coordinate steps of about the learning rate,
    /// whatever the scale of the MGDA direction.</summary>
    Adam,

    /// <summary>Plain gradient descent em' -= lr * d, as in Algorithm 1. With the summed L_Reg it stalls (docs/evaluation.md).</summary>
    Sgd,
}

/// <summary>
/// Optional stop once the cloak is private enough, checked on every iterate before its update. The target is met
/// when every criterion that is set holds:
/// <list type="bullet">
/// <item><see cref="MaxLossAu"/>: L_AU at or below it.</item>
/// <item><see cref="ReductionFactor"/>: every attribute's L_AU_j at or below its initial value divided by the
/// factor. Per attribute because the attributes' losses differ by orders of magnitude (21 occupations vs 2
/// genders), and one total can be met while one attribute barely moved.</item>
/// <item><see cref="ChanceMultiple"/>: every attribute's mean-shift part of L_AU_j (the class-share weighted
/// 1/2 Mahalanobis distance of the class means, what linear attackers exploit) at or below this multiple of its
/// chance level: the same quantity for the original embeddings with that attribute's known labels randomly
/// permuted, i.e. the sampling noise of class means of these sizes (about d (K - 1) / 2n). The mean-shift part
/// is used rather than the whole L_AU_j because the covariance terms' sampling noise (about d^2 / 4N_k per class)
/// is so large that the total reaches its chance level while the means still separate the classes. Going far
/// below chance overshoots: with every class mean pinned to the global one, half-sample class means become
/// anti-correlated and an attacker trained on shadow users scores below chance, which is leakage too
/// (docs/evaluation.md).</item>
/// </list>
/// Stopping early matters: the reference evaluation saw privacy get worse with more iterations as the anchor pulls back.
/// </summary>
public sealed record PrivacyTarget(double? MaxLossAu = null, double? ReductionFactor = null, double? ChanceMultiple = null)
{
    /// <summary>Label permutations averaged for the chance level of <see cref="ChanceMultiple"/>.</summary>
    public int ChancePermutations { get; init; } = 4;

    /// <summary>Seed of those permutations (the run stays deterministic).</summary>
    public int ChanceSeed { get; init; } = 20250519;

    /// <summary>Stop once every L_AU_j has fallen by <paramref name="factor"/> (e.g. 10 = to a tenth).</summary>
    public static PrivacyTarget Reduction(double factor) => new(ReductionFactor: factor);

    /// <summary>Stop once L_AU is at or below <paramref name="maxLossAu"/>.</summary>
    public static PrivacyTarget Loss(double maxLossAu) => new(MaxLossAu: maxLossAu);

    /// <summary>Stop once every attribute's mean-shift term is at or below <paramref name="multiple"/> times its chance level.</summary>
    public static PrivacyTarget Chance(double multiple = 1.0) => new(ChanceMultiple: multiple);

    internal void Validate()
    {
        if (MaxLossAu is null && ReductionFactor is null && ChanceMultiple is null)
            throw new ArgumentException("a privacy target needs MaxLossAu, ReductionFactor and/or ChanceMultiple");
        if (MaxLossAu is { } m && !(m >= 0)) throw new ArgumentException($"PrivacyTarget.MaxLossAu must be >= 0, got {m}");
        if (ReductionFactor is { } f && (!(f >= 1) || double.IsInfinity(f)))
            throw new ArgumentException($"PrivacyTarget.ReductionFactor must be finite and >= 1, got {f}");
        if (ChanceMultiple is { } c && (!(c > 0) || double.IsInfinity(c)))
            throw new ArgumentException($"PrivacyTarget.ChanceMultiple must be finite and > 0, got {c}");
        if (ChancePermutations < 1) throw new ArgumentException($"PrivacyTarget.ChancePermutations must be >= 1, got {ChancePermutations}");
    }

    internal bool IsMet(double lossAu, IReadOnlyList<double> perAttribute, IReadOnlyList<double> initialPerAttribute,
        IReadOnlyList<double> meanShiftPerAttribute, IReadOnlyList<double>? chanceMeanShiftPerAttribute)
    {
        if (MaxLossAu is { } m && !(lossAu <= m)) return false;
        for (var j = 0; j < perAttribute.Count; j++)
        {
            if (ReductionFactor is { } f && !(perAttribute[j] <= initialPerAttribute[j] / f)) return false;
            if (ChanceMultiple is { } c && !(meanShiftPerAttribute[j] <= c * chanceMeanShiftPerAttribute![j])) return false;
        }
        return true;
    }
}

/// <summary>
/// Options of one cloaking run. Defaults are the reference run's DF setting (Adam, lr 0.03, its five-seed
/// configuration) with a 100-iteration budget (the speed target's); learning rate, iteration count, ridge and
/// privacy target trade privacy against utility and should be swept per backbone (docs/evaluation.md).
/// </summary>
public sealed record CloakOptions
{
    /// <summary>Force a mode; null = DataFree without a recommendation loss, DataDependent with one.</summary>
    public CloakMode? Mode { get; init; }

    /// <summary>Update rule. Adam by default: plain GD with the summed L_Reg stalls (docs/evaluation.md).</summary>
    public CloakOptimizer Optimizer { get; init; } = CloakOptimizer.Adam;

    /// <summary>
    /// Step size in embedding units (Adam moves each coordinate by about this much per step). With MGDA it is the
    /// main privacy knob: the run stops at a Pareto-stationary point whose distance from the original grows with it.
    /// </summary>
    public double LearningRate { get; init; } = 0.03;

    /// <summary>Cap on the number of updates.</summary>
    public int MaxIterations { get; init; } = 100;

    /// <summary>
    /// Converged when |L_All(t) - L_All(t-1)| / |L_All(t-1)| stays below this for
    /// <see cref="ConvergencePatience"/> consecutive iterations (0 disables the rule). A DD loss that resamples
    /// negatives on every call is noisy, so in DD the cap or a privacy target usually ends the run.
    /// </summary>
    public double ConvergenceTolerance { get; init; } = 1e-4;

    /// <summary>Consecutive calm iterations needed to declare convergence (a single flat step can be a plateau).</summary>
    public int ConvergencePatience { get; init; } = 5;

    /// <summary>Lower clip of alpha_u; null = 0 in DD and 0.1 in DF (the paper's max(min(x, 1), 0.1)).</summary>
    public double? AlphaMin { get; init; }

    /// <summary>Upper clip of alpha_u; null = 1.</summary>
    public double? AlphaMax { get; init; }

    /// <summary>
    /// Covariance ridge; default 1e-3 of the mean per-dimension variance (see <see cref="CovarianceRidge"/>): a
    /// small ridge, relative so that it is safe at any embedding scale, and close to the paper (which has none). The
    /// reference's large ridge (1.0) gave a better DF gender figure by 0.04, which is within ML-100K noise, so
    /// it is a knob to sweep, not the default.
    /// </summary>
    public CovarianceRidge Ridge { get; init; } = CovarianceRidge.Relative(1e-3);

    /// <summary>
    /// Where L_AU sends the classes: the slides' global fit (<see cref="EqualisationTarget.Empirical"/>, the
    /// default of this low-level option so that the plain loop is the paper's) or the noise-matched targets that
    /// create no leakage (what the presets and the privacy-target loop use).
    /// </summary>
    public EqualisationTarget Target { get; init; } = EqualisationTarget.Empirical;

    /// <summary>
    /// How far each class is sent toward its target, t in [0, 1]: covariances to (1 - t) of their original
    /// offset from the global covariance, means per <see cref="Target"/>. 1 = all the way (the slides).
    /// </summary>
    public double Strength { get; init; } = 1.0;

    /// <summary>
    /// After the loop, put every class mean exactly on its target with the least displacement
    /// (<see cref="MeanProjection"/>): gradient steps leave small, class-wide misses that identify small classes.
    /// </summary>
    public bool ExactMeans { get; init; }

    /// <summary>
    /// Equalise the class means within this many strata of the leading principal component (<see cref="PrincipalStrata"/>)
    /// instead of over the whole population; 1 = the whole population. Applies to the exact-means projection.
    /// </summary>
    public int Strata { get; init; } = 1;

    /// <summary>
    /// Cut every attribute whose classes are large enough into <see cref="Strata"/>, even where its class offsets do not
    /// change along the component (by default those keep whole classes). For the noise control, which must exercise
    /// the cells on data where they are never needed.
    /// </summary>
    public bool StrataEverywhere { get; init; }

    /// <summary>Strength of the covariance part alone; null = <see cref="Strength"/>.</summary>
    public double? CovarianceStrength { get; init; }

    /// <summary>
    /// Per-attribute strengths by attribute name (case-insensitive), overriding <see cref="Strength"/> and
    /// <see cref="CovarianceStrength"/> for the attributes they name: what the privacy-target loop adjusts, so that
    /// an attribute that already leaks nothing is not moved at all.
    /// </summary>
    public IReadOnlyDictionary<string, AttributeStrength>? AttributeStrengths { get; init; }

    /// <summary>
    /// Per attribute (by name, case-insensitive), per class (attribute class order): the least share of its class's mean
    /// offset each class keeps, whatever the strength says (null: none). A re-seating of a streaming generation passes
    /// 1 - the class shift weights its last seating recorded, so that a class its producers outnumbered since (a
    /// coalition that moved its mean) is not moved wholesale in the direction they chose. Whole classes only: principal
    /// strata (<see cref="Strata"/> &gt; 1) do not see them.
    /// </summary>
    public IReadOnlyDictionary<string, double[]>? ClassKeepFloors { get; init; }

    /// <summary>The keep floors of attribute <paramref name="name"/> (<see cref="ClassKeepFloors"/>), or null.</summary>
    public double[]? KeepFloorsOf(string name)
    {
        if (ClassKeepFloors is not null)
            foreach (var (key, value) in ClassKeepFloors)
                if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase)) return value;
        return null;
    }

    /// <summary>
    /// When true, <see cref="LearningRate"/> is in units of the embeddings' spread (the root mean per-dimension
    /// standard deviation of the original embeddings), so the same value means the same on MF, LightGCN or any
    /// scale: Adam moves each coordinate by about LearningRate x spread per step.
    /// </summary>
    public bool RelativeLearningRate { get; init; }

    /// <summary>The (mean, covariance) strengths of attribute <paramref name="name"/>.</summary>
    public AttributeStrength StrengthOf(string name)
    {
        if (AttributeStrengths is not null)
            foreach (var (key, value) in AttributeStrengths)
                if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase)) return value;
        return new AttributeStrength(Strength, CovarianceStrength ?? Strength);
    }

    /// <summary>
    /// How the caller should reduce the DD recommendation loss it passes in (<see cref="RecommendationLosses.For"/>):
    /// the presets ask for <see cref="RecommendationReduction.MeanPerUser"/>; the loop itself only sees the loss.
    /// </summary>
    public RecommendationReduction RecommendationReduction { get; init; } = RecommendationReduction.SumOverSamples;

    /// <summary>Seed of the sampling-noise draw of <see cref="EqualisationTarget.NoiseMatched"/>.</summary>
    public int TargetSeed { get; init; } = 20250519;

    /// <summary>Optional early stop on a privacy level; null = run to convergence or the cap.</summary>
    public PrivacyTarget? PrivacyTarget { get; init; }

    /// <summary>Adam first-moment decay.</summary>
    public double AdamBeta1 { get; init; } = 0.9;

    /// <summary>Adam second-moment decay.</summary>
    public double AdamBeta2 { get; init; } = 0.999;

    /// <summary>Adam denominator epsilon.</summary>
    public double AdamEpsilon { get; init; } = 1e-8;

    /// <summary>The alpha_u clip for <paramref name="mode"/>.</summary>
    public (double Min, double Max) AlphaBounds(CloakMode mode) =>
        (AlphaMin ?? (mode == CloakMode.DataFree ? 0.1 : 0.0), AlphaMax ?? 1.0);

    /// <summary>Throws <see cref="ArgumentException"/> with a clear message for an unusable option.</summary>
    public void Validate(CloakMode mode)
    {
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new ArgumentException($"LearningRate must be finite and > 0, got {LearningRate}");
        if (MaxIterations < 0) throw new ArgumentException($"MaxIterations must be >= 0, got {MaxIterations}");
        if (!(ConvergenceTolerance >= 0)) throw new ArgumentException($"ConvergenceTolerance must be >= 0, got {ConvergenceTolerance}");
        if (ConvergencePatience < 1) throw new ArgumentException($"ConvergencePatience must be >= 1, got {ConvergencePatience}");
        if (!(AdamBeta1 is >= 0 and < 1) || !(AdamBeta2 is >= 0 and < 1)) throw new ArgumentException("Adam betas must be in [0, 1)");
        if (!(AdamEpsilon > 0)) throw new ArgumentException($"AdamEpsilon must be > 0, got {AdamEpsilon}");
        if (!(Strength is >= 0 and <= 1)) throw new ArgumentException($"Strength must be in [0, 1], got {Strength}");
        if (CovarianceStrength is { } cs && !(cs is >= 0 and <= 1)) throw new ArgumentException($"CovarianceStrength must be in [0, 1], got {cs}");
        if (AttributeStrengths is not null)
            foreach (var (name, st) in AttributeStrengths)
                if (!(st.Mean is >= 0 and <= 1) || !(st.Covariance is >= 0 and <= 1))
                    throw new ArgumentException($"the strengths of attribute '{name}' must be in [0, 1], got {st}");
        if (ClassKeepFloors is not null)
            foreach (var (name, floors) in ClassKeepFloors)
                if (floors is null || !floors.All(f => f is >= 0 and <= 1))
                    throw new ArgumentException($"the class keep floors of attribute '{name}' must be in [0, 1]");
        if (Strata is < 1 or > 100) throw new ArgumentException($"Strata must be in 1..100, got {Strata}");
        if (!Enum.IsDefined(Target)) throw new ArgumentException($"unknown equalisation target {Target}");
        ArgumentNullException.ThrowIfNull(Ridge);
        Ridge.Validate();
        PrivacyTarget?.Validate();
        var (min, max) = AlphaBounds(mode);
        MgdaWeight.CheckBounds(min, max);
    }
}

/// <summary>How far one attribute's classes are sent toward their targets: class means and class covariances, each in [0, 1].</summary>
public readonly record struct AttributeStrength(double Mean, double Covariance)
{
    public static AttributeStrength None => new(0, 0);

    public override string ToString() => Covariance > 0 ? $"{Mean:0.###}/{Covariance:0.###}" : $"{Mean:0.###}";
}
