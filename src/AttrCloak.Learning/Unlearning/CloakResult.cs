using AttrCloak.Core.Data;

namespace AttrCloak.Learning.Unlearning;

/// <summary>Why the cloaking loop ended.</summary>
public enum CloakStopReason
{
    /// <summary>The relative change of L_All stayed under the tolerance for the patience window.</summary>
    Converged,

    /// <summary>The iteration cap was reached.</summary>
    MaxIterations,

    /// <summary>The <see cref="PrivacyTarget"/> was met.</summary>
    PrivacyTargetReached,
}

/// <summary>
/// One row of the trace, describing iterate <see cref="Iteration"/> (0 = the original embeddings) before its update.
/// Losses are float64; L_R is L_Reg (DF) or the summed recommendation loss (DD); L_All = alpha_u L_AU +
/// (1 - alpha_u) L_R; <see cref="MeanShiftPerAttribute"/> is the mean-shift part of each L_AU_j. Gradient norms
/// are Euclidean over all user vectors; <see cref="StepNorm"/> is the norm of the MGDA direction
/// alpha_u g_AU + (1 - alpha_u) g_R (before Adam's rescaling).
/// </summary>
public sealed record CloakIteration(
    int Iteration,
    double AlphaU,
    double LossAu,
    IReadOnlyList<double> LossAuPerAttribute,
    double LossR,
    double LossAll,
    double GradNormAu,
    double GradNormR,
    double StepNorm,
    TimeSpan Elapsed,
    IReadOnlyList<double> MeanShiftPerAttribute);

/// <summary>
/// Outcome of a cloaking run. The last trace row describes exactly the returned <see cref="Embeddings"/> (the loop
/// stops before updating), so <see cref="Final"/> holds their L_AU, L_AU_j and L_R. <see cref="Iterations"/> is the
/// number of updates applied.
/// </summary>
public sealed record CloakResult(
    EmbeddingMatrix Embeddings,
    CloakMode Mode,
    double AlphaMin,
    double AlphaMax,
    CloakStopReason StopReason,
    int Iterations,
    TimeSpan WallTime,
    IReadOnlyList<string> AttributeNames,
    IReadOnlyList<CloakIteration> Trace)
{
    /// <summary>
    /// Chance level of each attribute's mean-shift term (original embeddings, labels permuted), when the privacy
    /// target asked for it (<see cref="PrivacyTarget.ChanceMultiple"/>); otherwise null.
    /// </summary>
    public IReadOnlyList<double>? ChanceMeanShiftPerAttribute { get; init; }

    /// <summary>Per attribute, the principal strata its class means were equalised within (null without <see cref="CloakOptions.Strata"/>).</summary>
    public IReadOnlyList<StrataDecision>? Strata { get; init; }

    /// <summary>Where the wall time went, summed over iterations.</summary>
    public CloakTimings? Timings { get; init; }

    /// <summary>The trace row of the original embeddings.</summary>
    public CloakIteration Initial => Trace[0];

    /// <summary>The trace row of the returned embeddings.</summary>
    public CloakIteration Final => Trace[^1];
}

/// <summary>
/// Wall time of a cloaking run by phase: L_AU forward and backward (class statistics, KL, gradient), the retention
/// loss forward and backward (L_Reg or the recommendation loss), the MGDA weight with the trace read-back, and the
/// optimiser update. The rest of <see cref="CloakResult.WallTime"/> is set-up.
/// </summary>
public sealed record CloakTimings(TimeSpan AttributeLoss, TimeSpan RetentionLoss, TimeSpan Mgda, TimeSpan Update);
