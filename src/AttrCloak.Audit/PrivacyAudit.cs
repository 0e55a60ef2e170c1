using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.ExceptionServices;
using AttrCloak.Audit.Attackers;
using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;

namespace AttrCloak.Audit;

/// <summary>
/// The grey-box, user-disjoint attribute-inference audit of the evaluation protocol (docs/evaluation.md) ("Privacy").
/// <para>For every attribute, the users with a known label are split into stratified folds; in each fold
/// every attacker trains on the other folds (the shadow users: their embeddings and labels) and predicts
/// the held-out users. Predictions are pooled over folds and scored once per attacker.</para>
/// <para>The attacker trains on the same kind of embedding it attacks: the one matrix passed in supplies
/// both the shadow and the target users. To audit cloaked embeddings pass the CLOAKED matrix. Training on
/// original embeddings and testing on cloaked ones reports near chance even when leakage remains, and this
/// API deliberately offers no way to do that.</para>
/// <para>Deterministic for a given seed whatever <see cref="AuditOptions.MaxThreads"/> is: folds and every
/// fit take seeds derived from (seed, attribute, fold, attacker), and results are written to fixed slots.</para>
/// </summary>
public static class PrivacyAudit
{
    /// <summary>Runs the audit with the attackers named in <paramref name="options"/>.</summary>
    public static AuditResult Run(
        EmbeddingMatrix embeddings,
        IReadOnlyList<AuditedAttribute> attributes,
        AuditOptions options,
        IProgress<AuditProgress>? progress = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var attackers = options.Attackers.Select(AttackerCatalog.Create).ToArray();
        return Run(embeddings, attributes, attackers, options, progress, ct);
    }

    /// <summary>Runs the audit with the given attacker instances (<see cref="AuditOptions.Attackers"/> is ignored).</summary>
    public static AuditResult Run(
        EmbeddingMatrix embeddings,
        IReadOnlyList<AuditedAttribute> attributes,
        IReadOnlyList<IAttacker> attackers,
        AuditOptions options,
        IProgress<AuditProgress>? progress = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        ArgumentNullException.ThrowIfNull(attributes);
        ArgumentNullException.ThrowIfNull(attackers);
        ArgumentNullException.ThrowIfNull(options);
        if (attackers.Count == 0) throw new ArgumentException("at least one attacker is needed");
        if (options.Folds < 2) throw new ArgumentException($"Folds must be at least 2, got {options.Folds}");
        if (options.MaxThreads < 1) throw new ArgumentException($"MaxThreads must be at least 1, got {options.MaxThreads}");
        var names = attackers.Select(a => a.Name).ToArray();
        var duplicate = names.GroupBy(n => n).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"attacker '{duplicate.Key}' is listed twice");

        var clock = Stopwatch.StartNew();
        var plans = attributes.Select((a, i) => Plan(embeddings, a, i, options.Folds, options.Seed, attackers.Count)).ToArray();

        // Most expensive cells (most classes: LightGBM grows a tree per class and round) first, handed out
        // one at a time, so that no worker is left with all the 21-class cells at the end.
        var cells = new List<(int Attribute, int Fold)>();
        foreach (var a in Enumerable.Range(0, plans.Length).OrderByDescending(a => plans[a].Attribute.ClassCount))
            for (var f = 0; f < options.Folds; f++) cells.Add((a, f));
        var completed = 0;

        // Cells are independent and write disjoint rows of their attribute's buffers.
        try
        {
            Parallel.ForEach(Partitioner.Create(cells, EnumerablePartitionerOptions.NoBuffering),
                new ParallelOptions { MaxDegreeOfParallelism = options.MaxThreads, CancellationToken = ct },
                cell =>
                {
                    var (a, f) = cell;
                    RunCell(embeddings, plans[a], a, f, attackers, options.Seed, ct);
                    var done = Interlocked.Increment(ref completed);
                    progress?.Report(new AuditProgress(plans[a].Attribute.Name, f, done, cells.Count));
                });
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1)
        {
            // One failing cell: surface its exception as is, not wrapped, so callers see the real cause.
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }

        var results = plans.Select(p => Score(p, names)).ToArray();
        clock.Stop();
        return new AuditResult(embeddings.Rows, embeddings.Cols, options.Folds, options.Seed,
            clock.Elapsed.TotalSeconds, results);
    }

    private sealed class AttributePlan(AuditedAttribute attribute, int[] users, int[] labels, int[] folds, int attackers)
    {
        public AuditedAttribute Attribute { get; } = attribute;

        /// <summary>Embedding rows of the labelled users.</summary>
        public int[] Users { get; } = users;

        public int[] Labels { get; } = labels;

        public int[] Folds { get; } = folds;

        /// <summary>[attacker][user * K + k], pooled out-of-fold probabilities.</summary>
        public float[][] Probabilities { get; } =
            Enumerable.Range(0, attackers).Select(_ => new float[users.Length * attribute.ClassCount]).ToArray();

        /// <summary>[attacker][user], out-of-fold prior-corrected decisions.</summary>
        public int[][] PriorCorrected { get; } =
            Enumerable.Range(0, attackers).Select(_ => new int[users.Length]).ToArray();
    }

    private static AttributePlan Plan(EmbeddingMatrix embeddings, AuditedAttribute attribute, int index, int folds, int seed, int attackers)
    {
        ArgumentNullException.ThrowIfNull(attribute);
        if (attribute.ClassCount < 2)
            throw new ArgumentException($"attribute '{attribute.Name}' has {attribute.ClassCount} classes; need at least 2");
        if (attribute.Labels.Length != embeddings.Rows)
            throw new ArgumentException($"attribute '{attribute.Name}' has {attribute.Labels.Length} labels for {embeddings.Rows} embedding rows");
        var users = new List<int>();
        for (var u = 0; u < attribute.Labels.Length; u++)
        {
            var label = attribute.Labels[u];
            if (label == RecDataset.UnknownLabel) continue;
            if ((uint)label >= (uint)attribute.ClassCount)
                throw new ArgumentException($"attribute '{attribute.Name}': user {u} has class {label} outside 0..{attribute.ClassCount - 1}");
            users.Add(u);
        }
        if (users.Count < folds)
            throw new ArgumentException($"attribute '{attribute.Name}' has {users.Count} labelled users, fewer than {folds} folds");
        var labels = users.Select(u => attribute.Labels[u]).ToArray();
        var assignment = StratifiedKFold.Assign(labels, folds, Seeds.Derive(seed, index));
        return new AttributePlan(attribute, users.ToArray(), labels, assignment, attackers);
    }

    private static void RunCell(EmbeddingMatrix embeddings, AttributePlan plan, int attributeIndex, int fold,
        IReadOnlyList<IAttacker> attackers, int seed, CancellationToken ct)
    {
        var (train, test) = StratifiedKFold.Split(plan.Folds, fold);
        if (test.Length == 0 || train.Length == 0) return;
        var k = plan.Attribute.ClassCount;
        var xTrain = embeddings.SelectRows(train.Select(i => plan.Users[i]).ToArray());
        var yTrain = train.Select(i => plan.Labels[i]).ToArray();
        var xTest = embeddings.SelectRows(test.Select(i => plan.Users[i]).ToArray());

        // The shadow prior the attacker knows, add-one smoothed so a class absent from the shadow set
        // cannot divide by zero (its probability is 0 anyway, so it is never chosen).
        var prior = new double[k];
        foreach (var y in yTrain) prior[y]++;
        for (var c = 0; c < k; c++) prior[c] = (prior[c] + 1) / (yTrain.Length + k);

        for (var m = 0; m < attackers.Count; m++)
        {
            ct.ThrowIfCancellationRequested();
            using var model = attackers[m].Fit(xTrain, yTrain, k, Seeds.Derive(seed, attributeIndex, fold, m));
            var proba = model.PredictProba(xTest);
            if (proba.Length != test.Length * k)
                throw new InvalidOperationException($"attacker '{attackers[m].Name}' returned {proba.Length} values for {test.Length} users x {k} classes");
            var pooled = plan.Probabilities[m];
            var corrected = plan.PriorCorrected[m];
            for (var t = 0; t < test.Length; t++)
            {
                Array.Copy(proba, t * k, pooled, test[t] * k, k);
                var best = 0;
                var bestValue = double.NegativeInfinity;
                for (var c = 0; c < k; c++)
                {
                    var v = proba[t * k + c] / prior[c];
                    if (v > bestValue) { bestValue = v; best = c; }
                }
                corrected[test[t]] = best;
            }
        }
    }

    private static AttributeAudit Score(AttributePlan plan, IReadOnlyList<string> names)
    {
        var k = plan.Attribute.ClassCount;
        var chance = ClassificationMetrics.Chance(k);
        var scores = new List<AttackerScore>(names.Count);
        var worst = double.NegativeInfinity;
        var worstName = "";
        var maxAdvantage = 0.0;
        for (var m = 0; m < names.Count; m++)
        {
            var predicted = ClassificationMetrics.ArgMax(plan.Probabilities[m], k);
            var balanced = ClassificationMetrics.BalancedAccuracy(plan.Labels, predicted);
            var corrected = ClassificationMetrics.BalancedAccuracy(plan.Labels, plan.PriorCorrected[m]);
            var accuracy = ClassificationMetrics.Accuracy(plan.Labels, predicted);
            var auc = ClassificationMetrics.Auc(plan.Labels, plan.Probabilities[m], k);
            scores.Add(new AttackerScore(names[m], balanced, corrected, accuracy, double.IsNaN(auc) ? null : auc, balanced - chance));
            if (balanced > worst) { worst = balanced; worstName = names[m]; }
            if (corrected > worst) { worst = corrected; worstName = names[m] + "/prior"; }
            maxAdvantage = Math.Max(maxAdvantage, Math.Max(Math.Abs(balanced - chance), Math.Abs(corrected - chance)));
        }
        return new AttributeAudit(plan.Attribute.Name, k, plan.Labels.Length,
            ClassificationMetrics.MajorityRate(plan.Labels), chance, worst, worstName, maxAdvantage, scores);
    }
}
