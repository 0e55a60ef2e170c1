using System.Globalization;
using AttrCloak.Audit;
using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Tools.Experiments.Support;

namespace AttrCloak.Tools.Experiments.Research;

/// <summary>
/// <c>leak-probe</c>: where an attribute's leak lives once its class means are equal (issue 13). Each variant equalises
/// the attribute's class means with noise-matched targets (as the DF preset does) over the whole population or within
/// quintiles of one per-user score, then audits the attribute: the signed advantage with the argmax and the
/// prior-corrected rule per attacker, and how far the users moved (relative Frobenius norm). On ML-100K MF it found
/// the class offsets changing along the leading principal component (docs/evaluation.md, "Principal strata").
/// Needs ATTRCLOAK_MODEL (an ML-100K model directory); ATTRCLOAK_PROBE_ATTRIBUTE (gender), ATTRCLOAK_ATTACKERS (lr,mlp).
/// </summary>
internal static class LeakProbeExperiment
{
    private const int Quintiles = 5;

    public static void Run(ExperimentContext output)
    {
        var name = Environment.GetEnvironmentVariable("ATTRCLOAK_PROBE_ATTRIBUTE") ?? "gender";
        var attackers = (Environment.GetEnvironmentVariable("ATTRCLOAK_ATTACKERS") ?? "lr,mlp").Split(',');
        var (data, model, _, _) = ResearchInputs.Load(name);
        var (users, items) = (model.Users, model.Items);
        var attribute = ResearchInputs.Attribute(data, name);
        int n = users.Rows, d = users.Cols;

        var activity = new double[n];
        foreach (var r in data.Interactions) activity[r.User]++;
        var meanItem = new double[d];
        for (var i = 0; i < items.Rows; i++)
            for (var j = 0; j < d; j++) meanItem[j] += items.Row(i)[j] / items.Rows;
        var popularity = Enumerable.Range(0, n).Select(u => Dot(users.Row(u), meanItem)).ToArray();
        var norm = Enumerable.Range(0, n).Select(u => Math.Sqrt(Dot(users.Row(u), users.Row(u).ToArray().Select(v => (double)v).ToArray()))).ToArray();

        var variants = new (string Name, int[]? Strata)[]
        {
            ("original", null),
            ($"{name} means", new int[n]),
            ($"{name} within activity quintiles", Bins(activity)),
            ($"{name} within popularity-score quintiles", Bins(popularity)),
            ($"{name} within norm quintiles", Bins(norm)),
            ($"{name} within PC1 quintiles", PrincipalStrata.Assign(users, Quintiles)),
        };
        foreach (var (label, strata) in variants)
        {
            output.CancellationToken.ThrowIfCancellationRequested();
            var x = strata is null ? users.Clone() : Stratified(users, attribute, strata);
            var moved = Math.Sqrt(x.Values.Zip(users.Values, (a, b) => (double)(a - b) * (a - b)).Sum() / users.Values.Select(v => (double)v * v).Sum());
            var result = PrivacyAudit.Run(x, [new AuditedAttribute(name, attribute.ClassCount, attribute.Labels)],
                new AuditOptions { Seed = 1, Attackers = attackers }, null, output.CancellationToken);
            var a = result.Attributes[0];
            var per = string.Join("  ", a.Attackers.Select(s => string.Create(CultureInfo.InvariantCulture,
                $"{s.Attacker} {s.Advantage:+0.000;-0.000}/{s.PriorCorrectedBalancedAccuracy - a.Chance:+0.000;-0.000}")));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{label,-44} moved {moved:0.000}  max|adv| {a.MaxAbsAdvantage:0.000}  {per}"));
        }
    }

    private static double Dot(ReadOnlySpan<float> row, double[] v)
    {
        var s = 0.0;
        for (var j = 0; j < row.Length; j++) s += row[j] * v[j];
        return s;
    }

    private static int[] Bins(double[] score)
    {
        var n = score.Length;
        var bins = new int[n];
        var rank = Enumerable.Range(0, n).OrderBy(u => score[u]).ToArray();
        for (var i = 0; i < n; i++) bins[rank[i]] = i * Quintiles / n;
        return bins;
    }

    /// <summary>The attribute's class means equalised within each stratum, noise-matched, at full strength.</summary>
    private static EmbeddingMatrix Stratified(EmbeddingMatrix users, LabeledAttribute attribute, int[] strata)
    {
        var x = users.Clone();
        var count = strata.Max() + 1;
        var cells = PrincipalStrata.Split(attribute, strata, count).ToArray();
        var targets = cells.Select((c, s) => ClassTargets.Build(users, c, EqualisationTarget.NoiseMatched, 1, 20250519 + s, 0)).ToArray();
        MeanProjection.Apply(x, cells, targets);
        foreach (var t in targets) t.Dispose();
        return x;
    }
}
