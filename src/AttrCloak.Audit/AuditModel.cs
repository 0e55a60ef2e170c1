using System.Globalization;
using System.Text;
using AttrCloak.Audit.Attackers;

namespace AttrCloak.Audit;

/// <summary>One private attribute to audit.</summary>
/// <param name="Name">Attribute name for reports (e.g. "gender").</param>
/// <param name="ClassCount">K; labels are 0..K-1.</param>
/// <param name="Labels">One label per embedding row; -1 (<c>RecDataset.UnknownLabel</c>) excludes the user from this attribute's audit.</param>
public sealed record AuditedAttribute(string Name, int ClassCount, int[] Labels)
{
    /// <summary>
    /// The same attribute with its labels shuffled among the labelled users (unknown labels stay unknown): labels that
    /// carry nothing about the embeddings, so an audit of them reads the audit's own resolution.
    /// </summary>
    public AuditedAttribute Permuted(Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        var labels = (int[])Labels.Clone();
        var known = Enumerable.Range(0, labels.Length).Where(u => labels[u] != AttrCloak.Core.Data.RecDataset.UnknownLabel).ToArray();
        var values = known.Select(u => labels[u]).ToArray();
        rng.Shuffle(values);
        for (var i = 0; i < known.Length; i++) labels[known[i]] = values[i];
        return this with { Labels = labels };
    }
}

/// <summary>Audit protocol knobs.</summary>
public sealed record AuditOptions
{
    /// <summary>User-disjoint stratified cross-validation folds (reference evaluation: 5).</summary>
    public int Folds { get; init; } = 5;

    /// <summary>Seeds the folds and every attacker fit; the same seed gives the same result.</summary>
    public int Seed { get; init; }

    /// <summary>Attacker names understood by <see cref="AttackerCatalog.Create"/>.</summary>
    public IReadOnlyList<string> Attackers { get; init; } = AttackerCatalog.DefaultNames;

    /// <summary>How many (attribute, fold) cells train at once. Results do not depend on it.</summary>
    public int MaxThreads { get; init; } = Environment.ProcessorCount;

    /// <summary>Throws with a clear message when the options cannot work.</summary>
    public void Validate()
    {
        if (Folds < 2) throw new ArgumentException($"Folds must be at least 2, got {Folds}");
        if (MaxThreads < 1) throw new ArgumentException($"MaxThreads must be at least 1, got {MaxThreads}");
        if (Attackers is null || Attackers.Count == 0) throw new ArgumentException("at least one attacker is needed");
    }
}

/// <summary>Progress of an audit: one step per finished (attribute, fold) cell.</summary>
public sealed record AuditProgress(string Attribute, int Fold, int CompletedCells, int TotalCells);

/// <summary>
/// Scores of one attacker on one attribute, computed on the predictions for every labelled user pooled
/// over the held-out folds.
/// </summary>
/// <param name="Attacker">Attacker name.</param>
/// <param name="BalancedAccuracy">Mean per-class recall of the argmax prediction (chance 1/K).</param>
/// <param name="PriorCorrectedBalancedAccuracy">Balanced accuracy of argmax_k p_k / prior_k, prior_k being the
/// shadow set's class frequency: the decision that maximises balanced accuracy (the argmax maximises plain
/// accuracy and so favours majority classes). Both are attacks the same model supports.</param>
/// <param name="Accuracy">Plain accuracy of the argmax prediction (compare with the majority rate).</param>
/// <param name="Auc">Binary AUC (K = 2) or macro one-vs-rest AUC; chance 0.5; null when undefined.</param>
/// <param name="Advantage">Signed BalancedAccuracy - chance; negative values are leakage too.</param>
public sealed record AttackerScore(
    string Attacker,
    double BalancedAccuracy,
    double PriorCorrectedBalancedAccuracy,
    double Accuracy,
    double? Auc,
    double Advantage);

/// <summary>Audit of one attribute.</summary>
/// <param name="Name">Attribute name.</param>
/// <param name="ClassCount">K.</param>
/// <param name="LabelledUsers">Users with a known label (the others were excluded).</param>
/// <param name="MajorityRate">Frequency of the most common class among labelled users.</param>
/// <param name="Chance">1/K, the balanced accuracy of guessing.</param>
/// <param name="WorstBalancedAccuracy">The headline: the highest balanced accuracy over all attackers and both decision rules.</param>
/// <param name="WorstAttacker">Who reached it; "/prior" marks the prior-corrected decision.</param>
/// <param name="MaxAbsAdvantage">The largest |balanced accuracy - chance| over attackers and decision rules: catches systematically wrong attackers too.</param>
/// <param name="Attackers">Per-attacker scores, in the order requested.</param>
public sealed record AttributeAudit(
    string Name,
    int ClassCount,
    int LabelledUsers,
    double MajorityRate,
    double Chance,
    double WorstBalancedAccuracy,
    string WorstAttacker,
    double MaxAbsAdvantage,
    IReadOnlyList<AttackerScore> Attackers)
{
    /// <summary>
    /// The attacker and decision rule behind <see cref="MaxAbsAdvantage"/> ("/prior" marks the prior-corrected decision)
    /// and its signed balanced accuracy - chance (negative: systematically wrong).
    /// </summary>
    public (string Attacker, double SignedAdvantage) WorstCell()
    {
        var who = "";
        var worst = -1.0;
        var signed = 0.0;
        foreach (var s in Attackers)
            foreach (var (value, rule) in new[] { (s.BalancedAccuracy, ""), (s.PriorCorrectedBalancedAccuracy, "/prior") })
                if (Math.Abs(value - Chance) > worst) { worst = Math.Abs(value - Chance); signed = value - Chance; who = s.Attacker + rule; }
        return (who, signed);
    }
}

/// <summary>Result of <see cref="PrivacyAudit.Run(AttrCloak.Core.Data.EmbeddingMatrix, IReadOnlyList{AuditedAttribute}, AuditOptions, IProgress{AuditProgress}?, CancellationToken)"/>.</summary>
/// <param name="Users">Embedding rows.</param>
/// <param name="Dimensions">Embedding columns.</param>
/// <param name="Folds">Cross-validation folds.</param>
/// <param name="Seed">Seed used.</param>
/// <param name="ElapsedSeconds">Wall time of the audit.</param>
/// <param name="Attributes">One entry per audited attribute, in input order.</param>
public sealed record AuditResult(
    int Users,
    int Dimensions,
    int Folds,
    int Seed,
    double ElapsedSeconds,
    IReadOnlyList<AttributeAudit> Attributes)
{
    /// <summary>A fixed-width text table: one block per attribute, one line per attacker.</summary>
    public string ToTable()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(c, $"Attribute-inference audit: {Users} users x {Dimensions} dims, {Folds}-fold CV, seed {Seed}, {ElapsedSeconds:F1} s");
        foreach (var a in Attributes)
        {
            sb.AppendLine();
            sb.AppendLine(c, $"{a.Name} (K={a.ClassCount}, n={a.LabelledUsers}): chance {a.Chance:F4}, majority {a.MajorityRate:F4}, WORST balanced {a.WorstBalancedAccuracy:F4} ({a.WorstAttacker}), max |adv| {a.MaxAbsAdvantage:F4}");
            sb.AppendLine(c, $"  {"attacker",-10} {"bal.acc",8} {"bal/prior",9} {"acc",8} {"auc",8} {"adv",8}");
            foreach (var s in a.Attackers)
            {
                var auc = s.Auc is { } v ? v.ToString("F4", c) : "n/a";
                sb.AppendLine(c, $"  {s.Attacker,-10} {s.BalancedAccuracy,8:F4} {s.PriorCorrectedBalancedAccuracy,9:F4} {s.Accuracy,8:F4} {auc,8} {s.Advantage,8:+0.0000;-0.0000}");
            }
        }
        return sb.ToString();
    }
}
