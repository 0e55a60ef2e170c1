using AttrCloak.Audit;
using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;
using AttrCloak.Learning.Backbones;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Streaming.Cloaking;

namespace AttrCloak.Cli.Experiments;

/// <summary>
/// The privacy-target loop wired to this project's probes: shadow audits with their own seed (the final audit's
/// folds are never the loop's) and validation NDCG@10 as the utility floor. One place, so that `cloak`,
/// `reproduce` and `harness` run exactly the same thing.
/// </summary>
public static class TargetedCloaking
{
    public static TargetedCloakResult Run(
        TrainedModel model,
        LeaveOneOutSplit split,
        IReadOnlyList<LabeledAttribute> attributes,
        IReadOnlyList<AuditedAttribute> audited,
        CloakOptions options,
        PrivacyGoal goal,
        ShadowAuditOptions shadow,
        int seed,
        IProgress<TargetStep>? progress = null,
        CancellationToken ct = default)
    {
        var mode = options.Mode ?? CloakMode.DataFree;
        using var recLoss = mode == CloakMode.DataDependent
            ? RecommendationLosses.For(model, split, seed, options.RecommendationReduction)
            : null;
        var cloak = new AttrCloakStrengths(model.Users, attributes, options with { TargetSeed = options.TargetSeed + seed }, goal.Strata, recLoss);
        return Run(model, split, attributes.Select(a => a.Name).ToArray(), audited, cloak, goal, shadow, seed, progress, ct);
    }

    /// <summary>
    /// AttrCloak-Mix: each attribute given to DF/DD's class means (<paramref name="options"/>) or to the worker's Gaussian
    /// maps cross-fitted over the batch (AttrCloak-OT), whichever is cheaper at removing its leak in a
    /// pilot (<see cref="CloakChoice"/>, the same probes as the loop), then the loop over both in sequence
    /// (<see cref="StagedCloak"/>: the class means first, the maps fitted on their output).
    /// </summary>
    public static (CloakChoiceResult Choice, TargetedCloakResult Result) RunMixed(
        TrainedModel model,
        LeaveOneOutSplit split,
        IReadOnlyList<LabeledAttribute> attributes,
        IReadOnlyList<AuditedAttribute> audited,
        CloakOptions options,
        PrivacyGoal goal,
        ShadowAuditOptions shadow,
        int seed,
        IProgress<CloakPilot>? pilots = null,
        IProgress<TargetStep>? progress = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(attributes);
        ArgumentNullException.ThrowIfNull(options);
        var mode = options.Mode ?? CloakMode.DataFree;
        using var recLoss = mode == CloakMode.DataDependent
            ? RecommendationLosses.For(model, split, seed, options.RecommendationReduction)
            : null;
        var means = new AttrCloakStrengths(model.Users, attributes, options with { TargetSeed = options.TargetSeed + seed }, goal.Strata, recLoss);
        var names = attributes.Select(a => a.Name).ToArray();
        var choice = CloakChoice.Choose(model.Users, names, (MeansName(mode), means), (OtName, new CrossFittedTransport(model.Users, attributes, seed: seed)),
            goal, Probe(audited, shadow, seed), new ValidationUtilityProbe(model.Users, model.Items, split), pilots, ct);
        var staged = new StagedCloak(model.Users, means, x => new CrossFittedTransport(x, attributes, seed: seed), choice.Second);
        return (choice, Run(model, split, names, audited, staged, goal, shadow, seed, progress, ct));
    }

    /// <summary>The name of the worker's maps as a batch cloak.</summary>
    public const string OtName = "AttrCloak-OT";

    /// <summary>"AttrCloak-DF" or "AttrCloak-DD".</summary>
    public static string MeansName(CloakMode mode) => mode == CloakMode.DataDependent ? "AttrCloak-DD" : "AttrCloak-DF";

    private static ShadowAuditProbe Probe(IReadOnlyList<AuditedAttribute> audited, ShadowAuditOptions shadow, int seed) =>
        new(audited, shadow with { Seed = shadow.Seed + seed });

    /// <summary>The same loop and probes over another cloak whose strength is set per attribute (AttrCloak-OT).</summary>
    public static TargetedCloakResult Run(
        TrainedModel model,
        LeaveOneOutSplit split,
        IReadOnlyList<string> attributeNames,
        IReadOnlyList<AuditedAttribute> audited,
        IStrengthCloak cloak,
        PrivacyGoal goal,
        ShadowAuditOptions shadow,
        int seed,
        IProgress<TargetStep>? progress = null,
        CancellationToken ct = default)
    {
        var probe = Probe(audited, shadow, seed);
        var utility = new ValidationUtilityProbe(model.Users, model.Items, split);
        return new TargetedCloaker().Cloak(model.Users, attributeNames, cloak, goal, probe, utility, progress, ct);
    }

    /// <summary>One line per round, for logs.</summary>
    public static string Describe(TargetStep step, IReadOnlyList<string> names)
    {
        var strengths = string.Join(" ", names.Select((n, j) => $"{n}={step.Strengths[j]}"));
        var readings = step.WorstAbsAdvantage.Count == 0
            ? "not audited (under the utility floor)"
            : string.Join(" ", names.Select((n, j) => $"{n} {step.WorstAbsAdvantage[j]:F3} ({step.WorstAttacker[j]})"));
        return $"{step.Name}: strengths {strengths}; worst |adv| {readings}{step.DescribeUtility()} [{step.Seconds:F1} s]";
    }
}
