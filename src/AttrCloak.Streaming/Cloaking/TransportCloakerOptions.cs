namespace AttrCloak.Streaming.Cloaking;

/// <summary>How the per-attribute class maps of <see cref="TransportCloaker"/> are combined for one user.</summary>
public enum MapCombination
{
    /// <summary>
    /// y = T_g(x) + sum_a (T_a,k_a(x) - T_a,g(x)): the population-wide map once, plus each attribute's class-specific
    /// deviation from its own global map. The default: the shared part of the attributes' displacements (whatever
    /// the batch did to everyone) is applied once, not once per attribute.
    /// </summary>
    CenteredAdditive,

    /// <summary>y = x + sum_a (T_a,k_a(x) - x): plain sum of the displacements; counts the shared part m times.</summary>
    Additive,
}

/// <summary>
/// Knobs of <see cref="TransportCloakerFactory"/>. Defaults were chosen on ML-100K (MF, d = 64; see
/// the streaming-quality experiment of AttrCloak.Tools.Experiments) and are documented with the cold-start behaviour on
/// <see cref="TransportCloaker"/>.
/// </summary>
public sealed record TransportCloakerOptions
{
    /// <summary>
    /// An attribute is mapped (and reported protected) only when its ORIGINAL global fit holds at least this many
    /// users; below it the cloaker has no estimate of what separates the classes and leaves the attribute unprotected.
    /// </summary>
    public int MinGlobalUsers { get; init; } = 20;

    /// <summary>
    /// A class's SERVED statistics are used as its target only from this many users on; below it the class is sent to
    /// the attribute's global target (pure class equalisation, the conservative fallback).
    /// </summary>
    public int MinClassUsers { get; init; } = 5;

    /// <summary>
    /// Prior strength, in users, that shrinks a class's mean offsets toward its global fit: weight n / (n + prior).
    /// A class seen once moves little (its single user IS its mean, mapping that exactly would erase the user).
    /// </summary>
    public double MeanPriorUsers { get; init; } = 2;

    /// <summary>
    /// Prior strength, in users, that shrinks a class covariance toward the attribute's global covariance before the
    /// Monge matrix is computed: (n Sigma_k + prior Sigma_g) / (n + prior). Classes smaller than d have singular
    /// covariances; without shrinkage their maps amplify noise. 256 since every class goes to one covariance target
    /// (<see cref="TargetCovarianceScale"/> 0): ML-100K single pass, 3 stream orders, NDCG@10 0.3110/0.3091/0.3069
    /// (64: 0.3086/0.3068/0.3049; the old served targets 0.3113/0.3108/0.3092), gender 0.512/0.560/0.527.
    /// </summary>
    public double CovariancePriorUsers { get; init; } = 256;

    /// <summary>Use the full Gaussian (Monge) maps; false = mean shifts only (B = I).</summary>
    public bool CovarianceMaps { get; init; } = true;

    /// <summary>Covariance maps need the attribute's original global fit to hold at least this many users (else mean shifts only).</summary>
    public int MinCovarianceUsers { get; init; } = 128;

    /// <summary>Ridge added to every covariance before the square roots, relative to the global mean per-dimension variance.</summary>
    public double RelativeRidge { get; init; } = 1e-3;

    /// <summary>
    /// How much of a served class's offset from the served global mean the map reproduces: 1 replicates what the batch
    /// left, 0 sends every class to the served global mean (full equalisation). Default 0.5: replicating the batch
    /// exactly left the stream less private than the batch (new users add their own sampling noise to the class
    /// offsets), full equalisation cost recommendation quality (docs/streaming-design.md, "The per-user re-cloak").
    /// </summary>
    public double TargetOffsetScale { get; init; } = 0.5;

    /// <summary>
    /// How much of a served class's covariance offset from the global covariance target the map reproduces (after the
    /// <see cref="CovariancePriorUsers"/> shrinkage), like <see cref="TargetOffsetScale"/> for the means: 1 replicates
    /// it, 0 (default) sends every class to the global covariance target. Why 0: the served class covariances contain
    /// the re-cloaked users, so with 1 each rebuild takes the previous maps' errors (the additive combination of
    /// several attributes' maps does not reproduce a class's target covariance) as the next target and they
    /// accumulate under repeated updates (the repeated-updates experiment: soak population re-cloaked 8 times, mlp gender
    /// 0.94, age 0.63; 0.5 still diverged). On ML-100K single pass 0 cost nothing in privacy.
    /// </summary>
    public double TargetCovarianceScale { get; init; }

    /// <summary>
    /// Weight of the ORIGINAL global covariance in the global covariance target (the rest: the served one): 0 = served
    /// only, 1 = originals only (what the cold store uses). The served statistics contain the re-cloaked users
    /// themselves and the combined maps add variance, so with 0 every rebuild inflates the target (repeated updates:
    /// mean squared displacement 0.40 -> 1.08 in 8 rounds and still growing); the original statistics do not feed back.
    /// Default 0.25: with it repeated updates level off, with less they keep drifting, with more utility falls
    /// (docs/streaming-design.md, "Re-cloaking the same users over and over").
    /// </summary>
    public double CovarianceAnchor { get; init; } = 0.25;

    /// <summary>
    /// James-Stein shrinkage of each class's specific shift (issue 13, small classes): the shift is kept with weight
    /// max(0, 1 - kappa d / (n_k |mu_o,k - mu_o,g|^2)) (the class's ORIGINAL offset, measured in
    /// <see cref="ShiftShrinkageMetric"/>), so a class whose offset is within the sampling noise of its n_k users is not moved
    /// class-specifically: a small class is not handed its bootstrap's sampling noise as a shared offset and cannot come
    /// out more identifiable than it went in. 0 turns it off. Default 1. Measured (ML-100K MF, the batch = the
    /// noise-matched DF preset of issue 13 at full strength: worst |advantage| 0.066/0.095/0.061 gender/age/occupation at
    /// NDCG@10 0.2879; half bootstrapped, half streamed, attackers lr, lr+cal, mlp): without shrinkage the served
    /// population scored 0.048/0.135/0.090 (0.2860); replicating the bootstrap's class shifts exactly (mean maps, offset
    /// scale 1) 0.149/0.301/0.263; with it 0.019/0.071/0.039 (0.2965), below the batch run on every attribute.
    /// </summary>
    public double ClassShiftShrinkage { get; init; } = 1;

    /// <summary>
    /// The metric <see cref="ClassShiftShrinkage"/> measures a class offset against its sampling noise in. Default
    /// <see cref="ShiftShrinkageMetric.Whitened"/>, as the batch cloak's James-Stein weight (Delta_k^T W^-1 Delta_k): per
    /// dimension, a few loud directions shared by every class inflate each variance, so a real offset along a quiet
    /// direction read as noise and was left to the attackers while noise along loud ones was mapped. Measured with the
    /// harness's served-stream row (batch DF's loop, half bootstrapped, half streamed; six attackers; served worst
    /// |advantage| gender / age / occupation, NDCG@10; per dimension -> whitened): synth-d128 0.100 / 0.055 / 0.039,
    /// 0.959x -> 0.056 / 0.083 / 0.022, 0.975x; synth-weak 0.083 / 0.022 / 0.021, 0.994x -> 0.039 / 0.028 / 0.021,
    /// 0.999x; ml100k-mf 0.036 / 0.046 / 0.039, 0.973x -> 0.052 / 0.051 / 0.025, 0.976x (docs/streaming-design.md).
    /// </summary>
    public ShiftShrinkageMetric ShiftShrinkageMetric { get; init; } = ShiftShrinkageMetric.Whitened;

    /// <summary>
    /// Weight of the noise-matched draw added to each class's specific shift where the served class offset is pinned
    /// below the size of sampling noise (<see cref="ClassSamplingNoise"/>): exact moment matching, which a shadow
    /// attacker inverts. Scaled, like the shift, by the class's James-Stein weight and the deviation scale. 0 turns it
    /// off. Default 1: re-cloaking the same users 6 times left lr's gender at 0.441 (chance 0.5) without it, 0.503 with
    /// it; a single pass is unchanged (ML-100K served stream 0.053 / 0.079 / 0.021 -> 0.051 / 0.078 / 0.014;
    /// docs/streaming-design.md, "Re-cloaking the same users over and over").
    /// </summary>
    public double SamplingNoiseScale { get; init; } = 1;

    /// <summary>
    /// Weight of the noise-matched covariance draw added to each class's covariance target where its served covariance
    /// is pinned at the target (<see cref="ClassCovarianceNoise"/>): re-cloaking the same users otherwise matches the
    /// classes' second moments exactly, which a nonlinear shadow attacker inverts. 0 turns it off. Default 1: the
    /// repeated-updates experiment (5,000 users, d = 64, 6 rounds; mlp, worst signed advantage gender / age / occupation)
    /// read -0.182 / -0.114 / -0.039 without it, +0.033 / +0.024 / -0.032 with it (0.5: -0.104 / -0.087 / -0.036); a single
    /// pass is unchanged (ML-100K streaming-quality, two stream orders, identical figures).
    /// </summary>
    public double CovarianceNoiseScale { get; init; } = 1;

    /// <summary>
    /// Hold each class's shift weight at most at its value when the generation was seated (issue 11, bounded influence):
    /// a 1 % coalition joining the smallest occupation class of the adversarial suite otherwise lifted its weight from
    /// ~0 to ~1 and the class's honest users were served a shared, capped shift that made them identifiable (honest
    /// occupation 0.063 -> 0.097). A class that grows honestly gets its new weight with the next model generation (a
    /// re-seating records no weight above the one before). It bounds a re-seating's batch cloak too
    /// (<see cref="Generations.PopulationSeeding.Holding"/>): no class offset is removed beyond what the seating before
    /// saw (<see cref="ClassOffsetCaps"/>). Default true.
    /// </summary>
    public bool HoldShiftWeightsAtSeating { get; init; } = true;

    /// <summary>Scale of every class-specific deviation (1 = as derived; below 1 damps correlated attributes' overlap).</summary>
    public double DeviationScale { get; init; } = 1.0;

    /// <summary>
    /// Per-attribute factor on <see cref="DeviationScale"/> (attribute name, case-insensitive; absent = 1): lets one
    /// attribute's classes be equalised further than another's (the cross-fit-transport experiment's per-attribute maps).
    /// </summary>
    public IReadOnlyDictionary<string, double>? AttributeDeviationScales { get; init; }

    public MapCombination Combination { get; init; } = MapCombination.CenteredAdditive;

    /// <summary>The scale of attribute <paramref name="attribute"/>'s class-specific deviations.</summary>
    public double DeviationScaleOf(string attribute)
    {
        if (AttributeDeviationScales is not null)
            foreach (var (name, factor) in AttributeDeviationScales)
                if (string.Equals(name, attribute, StringComparison.OrdinalIgnoreCase)) return DeviationScale * factor;
        return DeviationScale;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        static void Require(bool ok, string message)
        {
            if (!ok) throw new ArgumentException($"invalid re-cloak options: {message}");
        }
        Require(MinGlobalUsers >= 2, $"MinGlobalUsers must be at least 2, got {MinGlobalUsers}");
        Require(MinClassUsers >= 1, $"MinClassUsers must be at least 1, got {MinClassUsers}");
        Require(MeanPriorUsers >= 0 && double.IsFinite(MeanPriorUsers), $"MeanPriorUsers must be finite and >= 0, got {MeanPriorUsers}");
        Require(CovariancePriorUsers >= 0 && double.IsFinite(CovariancePriorUsers), $"CovariancePriorUsers must be finite and >= 0, got {CovariancePriorUsers}");
        Require(MinCovarianceUsers >= 2, $"MinCovarianceUsers must be at least 2, got {MinCovarianceUsers}");
        Require(RelativeRidge > 0 && double.IsFinite(RelativeRidge), $"RelativeRidge must be finite and > 0, got {RelativeRidge}");
        Require(double.IsFinite(TargetOffsetScale) && TargetOffsetScale is >= 0 and <= 1, $"TargetOffsetScale must be in [0, 1], got {TargetOffsetScale}");
        Require(double.IsFinite(TargetCovarianceScale) && TargetCovarianceScale is >= 0 and <= 1, $"TargetCovarianceScale must be in [0, 1], got {TargetCovarianceScale}");
        Require(double.IsFinite(CovarianceAnchor) && CovarianceAnchor is >= 0 and <= 1, $"CovarianceAnchor must be in [0, 1], got {CovarianceAnchor}");
        Require(double.IsFinite(ClassShiftShrinkage) && ClassShiftShrinkage >= 0, $"ClassShiftShrinkage must be finite and >= 0, got {ClassShiftShrinkage}");
        Require(double.IsFinite(CovarianceNoiseScale) && CovarianceNoiseScale is >= 0 and <= 2, $"CovarianceNoiseScale must be in [0, 2], got {CovarianceNoiseScale}");
        Require(double.IsFinite(SamplingNoiseScale) && SamplingNoiseScale is >= 0 and <= 2, $"SamplingNoiseScale must be in [0, 2], got {SamplingNoiseScale}");
        Require(double.IsFinite(DeviationScale) && DeviationScale is >= 0 and <= 2, $"DeviationScale must be in [0, 2], got {DeviationScale}");
        Require(AttributeDeviationScales is null || AttributeDeviationScales.Values.All(v => double.IsFinite(v) && v is >= 0 and <= 2),
            "every per-attribute deviation scale must be in [0, 2]");
        Require(Enum.IsDefined(Combination), $"unknown combination {Combination}");
        Require(Enum.IsDefined(ShiftShrinkageMetric), $"unknown ShiftShrinkageMetric {ShiftShrinkageMetric}; expected Whitened or PerDimension");
    }
}
