using System.Globalization;
using AttrCloak.Audit;
using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;
using AttrCloak.Learning.Unlearning;
using TorchSharp;

namespace AttrCloak.Tools.Experiments.Research;

/// <summary>
/// <c>metric-means</c>: partial class-offset removal in the metric that matters. The uniform strength t removes t x
/// every class offset; the metric variant removes r_k = (M + lambda P)^-1 lambda P Delta_k, the least score change
/// (M = V^T V / items: how much the items see a direction) for a given whitened residual (P = inverse pooled
/// within-class covariance: how well a linear attacker sees it). Deterministic shifts, whole classes, the attributes
/// one after another. Prints test NDCG@10 ratio and the audit per variant. Needs ATTRCLOAK_MODEL (ML-100K);
/// ATTRCLOAK_PROTECT (gender,age), ATTRCLOAK_ATTACKERS (lr,lr+cal,mlp).
/// </summary>
internal static class MetricMeansExperiment
{
    public static void Run(ExperimentContext output)
    {
        var attackers = (Environment.GetEnvironmentVariable("ATTRCLOAK_ATTACKERS") ?? "lr,lr+cal,mlp").Split(',');
        var (_, model, split, attributes) = ResearchInputs.Load();
        var audited = attributes.Select(a => new AuditedAttribute(a.Attribute.Name, a.Attribute.ClassCount, a.Labels)).ToArray();
        var test = UtilityEvaluator.Ndcg10PerUser(model.Users, model.Items, split.TestCandidates);
        var validation = UtilityEvaluator.Ndcg10PerUser(model.Users, model.Items, split.ValidationCandidates);
        var variants = new List<(string Name, Func<double[,], double[,], double[], double[]> Removal, double Noise)>();
        foreach (var t in new[] { 0.3, 0.5, 0.7, 1.0 })
            variants.Add(($"uniform t={t}", (_, _, delta) => delta.Select(v => t * v).ToArray(), 0));
        foreach (var t in new[] { 0.3, 0.5, 0.7, 0.85, 1.0 })
            variants.Add(($"uniform+noise t={t}", (_, _, delta) => delta.Select(v => t * v).ToArray(), Math.Sqrt(1 - (1 - t) * (1 - t))));
        foreach (var s in new[] { 0.3, 1, 3 })
            variants.Add(($"metric lambda={s}", (m, p, delta) => MetricRemoval(m, p, delta, s), 0));
        var itemMetric = Gram(model.Items);
        foreach (var (name, removal, noise) in variants)
        {
            output.CancellationToken.ThrowIfCancellationRequested();
            var x = model.Users.Clone();
            var rng = new Random(1);
            foreach (var a in attributes) Remove(x, a, itemMetric, removal, noise, rng);
            var (v, t) = (PairedRatio.Of(validation, UtilityEvaluator.Ndcg10PerUser(x, model.Items, split.ValidationCandidates)),
                PairedRatio.Of(test, UtilityEvaluator.Ndcg10PerUser(x, model.Items, split.TestCandidates)));
            var audit = PrivacyAudit.Run(x, audited, new AuditOptions { Seed = 1, Attackers = attackers }, null, output.CancellationToken);
            var figures = string.Join("  ", audit.Attributes.Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Name} {r.MaxAbsAdvantage:0.000} ({r.WorstAttacker})")));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-20} validation {v.Ratio:0.000}x test {t.Ratio:0.000}x  {figures}"));
        }
    }

    /// <summary>r = (M + lambda' P)^-1 lambda' P delta, lambda' = lambda tr(M) / tr(P) so that lambda is unit-free.</summary>
    private static double[] MetricRemoval(double[,] m, double[,] p, double[] delta, double lambda)
    {
        using var scope = torch.NewDisposeScope();
        var mt = torch.tensor(m, torch.float64);
        var pt = torch.tensor(p, torch.float64);
        var scale = lambda * mt.trace().item<double>() / pt.trace().item<double>();
        var lhs = mt + pt * scale;
        var rhs = torch.matmul(pt * scale, torch.tensor(delta, torch.float64).unsqueeze(1));
        return torch.linalg.solve(lhs, rhs).squeeze(1).data<double>().ToArray();
    }

    private static double[,] Gram(EmbeddingMatrix items)
    {
        int m = items.Rows, d = items.Cols;
        var g = new double[d, d];
        for (var i = 0; i < m; i++)
        {
            var row = items.Row(i);
            for (var a = 0; a < d; a++)
                for (var b = 0; b < d; b++) g[a, b] += (double)row[a] * row[b] / m;
        }
        return g;
    }

    /// <summary>
    /// Shifts every labelled user by minus its class's removal of the class offset from the labelled mean; with
    /// <paramref name="noise"/> &gt; 0 that weight of a fresh draw of each class's sampling error (N(0, W / n_k), centred)
    /// is added to the class's new offset.
    /// </summary>
    private static void Remove(EmbeddingMatrix x, LabeledAttribute a, double[,] itemMetric, Func<double[,], double[,], double[], double[]> removal,
        double noise, Random rng)
    {
        int n = x.Rows, d = x.Cols, k = a.Attribute.ClassCount;
        var counts = new int[k];
        var sums = new double[k, d];
        var global = new double[d];
        var labelled = 0;
        for (var u = 0; u < n; u++)
        {
            var c = a.Labels[u];
            if (c < 0) continue;
            counts[c]++;
            labelled++;
            for (var j = 0; j < d; j++) { sums[c, j] += x.Values[u * d + j]; global[j] += x.Values[u * d + j]; }
        }
        for (var j = 0; j < d; j++) global[j] /= labelled;
        var within = new double[d, d];
        for (var u = 0; u < n; u++)
        {
            var c = a.Labels[u];
            if (c < 0) continue;
            for (var i = 0; i < d; i++)
            {
                var di = x.Values[u * d + i] - sums[c, i] / counts[c];
                for (var j = 0; j < d; j++) within[i, j] += di * (x.Values[u * d + j] - sums[c, j] / counts[c]) / (labelled - k);
            }
        }
        var precision = Inverse(within);
        var shifts = new double[k][];
        for (var c = 0; c < k; c++)
            shifts[c] = counts[c] == 0 ? new double[d] : removal(itemMetric, precision, Enumerable.Range(0, d).Select(j => sums[c, j] / counts[c] - global[j]).ToArray());
        if (noise > 0)
        {
            var root = Cholesky(within);
            var draws = new double[k][];
            var centre = new double[d];
            for (var c = 0; c < k; c++)
            {
                var z = Enumerable.Range(0, d).Select(_ => AttrCloak.Tools.Samples.SyntheticUsers.Gaussian(rng)).ToArray();
                draws[c] = new double[d];
                if (counts[c] == 0) continue;
                for (var i = 0; i < d; i++)
                {
                    for (var j = 0; j <= i; j++) draws[c][i] += root[i, j] * z[j] / Math.Sqrt(counts[c]);
                    centre[i] += draws[c][i] * counts[c] / labelled;
                }
            }
            // The shift is minus the removal: adding noise x eta to the new offset subtracts it from the shift.
            for (var c = 0; c < k; c++)
                if (counts[c] > 0)
                    for (var i = 0; i < d; i++) shifts[c][i] -= noise * (draws[c][i] - centre[i]);
        }
        for (var u = 0; u < n; u++)
        {
            var c = a.Labels[u];
            if (c < 0) continue;
            for (var j = 0; j < d; j++) x.Values[u * d + j] -= (float)shifts[c][j];
        }
    }


    private static double[,] Cholesky(double[,] w)
    {
        var d = w.GetLength(0);
        var l = new double[d, d];
        for (var i = 0; i < d; i++)
            for (var j = 0; j <= i; j++)
            {
                var sum = w[i, j];
                for (var k = 0; k < j; k++) sum -= l[i, k] * l[j, k];
                l[i, j] = i == j ? Math.Sqrt(Math.Max(sum, 1e-12)) : sum / l[j, j];
            }
        return l;
    }

    private static double[,] Inverse(double[,] w)
    {
        using var scope = torch.NewDisposeScope();
        var t = torch.tensor(w, torch.float64);
        var d = w.GetLength(0);
        var ridge = 1e-6 * t.trace().item<double>() / d;
        var inv = torch.linalg.inv(t + torch.eye(d, dtype: torch.float64) * ridge);
        var result = new double[d, d];
        var values = inv.data<double>().ToArray();
        for (var i = 0; i < d; i++)
            for (var j = 0; j < d; j++) result[i, j] = values[i * d + j];
        return result;
    }
}
