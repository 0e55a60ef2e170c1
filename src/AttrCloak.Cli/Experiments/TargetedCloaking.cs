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
    /// AttrCloak-OT under the loop: the worker's maps cross-fitted over the batch with their default options
    /// (<see cref="CrossFittedTransport"/>, folds seeded by <paramref name="seed"/>), the probes as for DF and DD.
    /// </summary>
    public static TargetedCloakResult RunTransport(
        TrainedModel model,
        LeaveOneOutSplit split,
        IReadOnlyList<LabeledAttribute> attributes,
        IReadOnlyList<AuditedAttribute> audited,
        PrivacyGoal goal,
        ShadowAuditOptions shadow,
        int seed,
        IProgress<TargetStep>? progress = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(attributes);
        var transport = new CrossFittedTransport(model.Users, attributes, seed: seed);
        return Run(model, split, attributes.Select(a => a.Name).ToArray(), audited, transport, goal, shadow, seed, progress, ct);
    }

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
        var probe = new ShadowAuditProbe(audited, shadow with { Seed = shadow.Seed + seed });
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
