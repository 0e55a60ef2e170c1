using System.Diagnostics;
using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;

namespace AttrCloak.Learning.Unlearning;

/// <summary>One attribute cloaked alone by one cloak at the pilot strength: its shadow reading before and after, and the utility.</summary>
public sealed record CloakPilot(string Attribute, string Cloak, double Before, double After, PairedRatio? Utility, double Seconds)
{
    /// <summary>Utility losses below this count as this much: within the validation ratio's noise, not free.</summary>
    public const double MinCost = 0.005;

    /// <summary>Leak removed (shadow reading before minus after).</summary>
    public double Removed => Before - After;

    /// <summary>
    /// Leak removed squared per unit of utility lost: near the trained optimum the utility lost grows with the square
    /// of the displacement and the leak removed in proportion to it, so cost = removed^2 / efficiency, and the cloak
    /// with the higher efficiency is the cheaper one at every amount removed. (Removed per unit of utility, the first
    /// choice, favours the cloak that moved least: on ML-100K MF it gave gender to the maps, which took it from 0.183 to
    /// 0.104 at 0.998x, over DF, which took it to 0.023 at 0.986x.) A removal of 0 or less has efficiency 0.
    /// </summary>
    public double Efficiency => Removed <= 0 ? 0 : Removed * Removed / Math.Max(Utility is { } u ? 1 - u.Ratio : 0, MinCost);

    public string Describe() => FormattableString.Invariant($"{Attribute} by {Cloak}: {Before:F3} -> {After:F3}")
        + (Utility is { } u ? FormattableString.Invariant($", validation NDCG@10 {u.Ratio:F3}x") : "")
        + FormattableString.Invariant($" (removed {Removed:F3}, efficiency {Efficiency:F2}) [{Seconds:F1} s]");
}

/// <summary>Which of two cloaks each attribute goes to (<see cref="CloakChoice"/>), and the pilots that decided it.</summary>
public sealed record CloakChoiceResult(IReadOnlyList<string> AttributeNames, IReadOnlyList<string> CloakNames, IReadOnlyList<bool> Second,
    IReadOnlyList<CloakPilot> Pilots, TimeSpan WallTime)
{
    /// <summary>"gender: AttrCloak-DF, age: AttrCloak-OT, ..." for logs and tables.</summary>
    public string Describe() => string.Join(", ", AttributeNames.Select((a, j) => $"{a}: {CloakNames[Second[j] ? 1 : 0]}"));
}

/// <summary>
/// Chooses per attribute which of two cloaks removes its leak more cheaply, by measuring (issue 13: DF removes a class
/// offset cheaply, the Gaussian maps remove a leak that also lives in the covariances, and which one an attribute has
/// differs between data sets: on ML-100K MF gender is DF's, age the maps'). Each attribute over its threshold on the
/// original is cloaked ALONE by each cloak at <see cref="PilotStrength"/>, audited by the loop's shadow probe and
/// scored on the validation utility; it goes to the cloak with the higher <see cref="CloakPilot.Efficiency"/> (leak removed squared per unit of utility lost). Attributes
/// within their threshold go to the first cloak (the loop never moves them). Two audits per leaking attribute, with the
/// probe's own folds; the test items are never looked at.
/// </summary>
public static class CloakChoice
{
    /// <summary>
    /// The pilots' strength: strong enough that the removed leak stands out of the audit's noise (about 0.02 at 943
    /// users), weak enough that neither cloak is past its best (the maps at full scale read age worse than at half on
    /// ML-100K MF).
    /// </summary>
    public const double PilotStrength = 0.6;

    public static CloakChoiceResult Choose(
        EmbeddingMatrix original,
        IReadOnlyList<string> attributeNames,
        (string Name, IStrengthCloak Cloak) first,
        (string Name, IStrengthCloak Cloak) second,
        PrivacyGoal goal,
        IPrivacyProbe probe,
        IUtilityProbe? utility = null,
        IProgress<CloakPilot>? progress = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(attributeNames);
        ArgumentNullException.ThrowIfNull(goal);
        ArgumentNullException.ThrowIfNull(probe);
        var wall = Stopwatch.StartNew();
        var m = attributeNames.Count;
        var reading = probe.Measure(original, ct);
        if (reading.WorstAbsAdvantage.Count != m)
            throw new InvalidOperationException($"the privacy probe returned readings for {reading.WorstAbsAdvantage.Count} attributes, expected {m}");
        var thresholds = goal.Thresholds(reading);
        var inSecond = new bool[m];
        var pilots = new List<CloakPilot>();
        for (var j = 0; j < m; j++)
        {
            if (reading.WorstAbsAdvantage[j] <= thresholds[j]) continue;
            var alone = Enumerable.Range(0, m).Select(i => i == j ? new AttributeStrength(PilotStrength, 0) : AttributeStrength.None).ToArray();
            var pair = new[] { first, second }.Select(c =>
            {
                var clock = Stopwatch.StartNew();
                var cloaked = c.Cloak.Run(alone, ct).Embeddings;
                var after = probe.Measure(cloaked, ct).WorstAbsAdvantage[j];
                var pilot = new CloakPilot(attributeNames[j], c.Name, reading.WorstAbsAdvantage[j], after, utility?.Measure(cloaked), clock.Elapsed.TotalSeconds);
                progress?.Report(pilot);
                return pilot;
            }).ToArray();
            pilots.AddRange(pair);
            inSecond[j] = pair[1].Efficiency > pair[0].Efficiency;
        }
        return new CloakChoiceResult(attributeNames.ToArray(), [first.Name, second.Name], inSecond, pilots, wall.Elapsed);
    }
}
