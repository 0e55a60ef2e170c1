using System.Globalization;
using AttrCloak.Audit;
using AttrCloak.Core.Data;
using AttrCloak.Core.IO;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Tools.Experiments.Support;
using TorchSharp;

namespace AttrCloak.Tools.Experiments.Research;

/// <summary>
/// <c>budgeted-means</c>: class-mean equalisation within principal strata that stops at a detectability budget instead
/// of removing every offset: each cell's shift is the least-L2 one that leaves its whitened offset at kappa x its
/// sampling-noise level (d / n). Writes ATTRCLOAK_OUT/kappa-K.npy for `attrcloak evaluate` and prints each variant's
/// audit. Needs ATTRCLOAK_MODEL, ATTRCLOAK_OUT; ATTRCLOAK_KAPPAS (0,0.25,1), ATTRCLOAK_PROTECT (gender,age).
/// </summary>
internal static class BudgetedMeansExperiment
{
    public static void Run(ExperimentContext output)
    {
        var outDir = Environment.GetEnvironmentVariable("ATTRCLOAK_OUT") ?? throw new ExperimentUnavailableException("set ATTRCLOAK_OUT");
        Directory.CreateDirectory(outDir);
        var kappas = (Environment.GetEnvironmentVariable("ATTRCLOAK_KAPPAS") ?? "0,0.25,1").Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        var strataCount = int.Parse(Environment.GetEnvironmentVariable("ATTRCLOAK_STRATA") ?? "5", CultureInfo.InvariantCulture);
        var (data, model, _, attributes) = ResearchInputs.Load();
        var users = model.Users;
        var audited = data.Attributes.Select((a, j) => new AuditedAttribute(a.Name, a.ClassCount, data.Labels[j])).ToArray();
        var strata = PrincipalStrata.Assign(users, strataCount);
        var cells = PrincipalStrata.Plan(users, attributes, strataCount).Cells;
        var whitening = attributes.Select(a => Whitening(users, a, strata)).ToArray();
        foreach (var kappa in kappas)
        {
            var x = users.Clone();
            for (var sweep = 0; sweep < 30; sweep++)
                foreach (var (cell, parent) in cells)
                    ProjectCell(x, cell, whitening[parent], kappa);
            NpyFile.Write(Path.Combine(outDir, string.Create(CultureInfo.InvariantCulture, $"kappa-{kappa}.npy")), x);
            var moved = Math.Sqrt(x.Values.Zip(users.Values, (a, b) => (double)(a - b) * (a - b)).Sum() / users.Values.Select(v => (double)v * v).Sum());
            var result = PrivacyAudit.Run(x, audited, new AuditOptions { Seed = 1, Attackers = ["lr", "lr+cal", "mlp"] }, null, output.CancellationToken);
            var figures = string.Join("  ", result.Attributes.Select(a => string.Create(CultureInfo.InvariantCulture, $"{a.Name} {a.MaxAbsAdvantage:0.000} ({a.WorstAttacker})")));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"kappa {kappa,-5} moved {moved:0.000}  {figures}"));
        }
    }

    /// <summary>Eigenvalues and eigenvectors of the attribute's pooled within-cell covariance (deviations from each (stratum, class) mean).</summary>
    private static (double[] Values, double[] Vectors) Whitening(EmbeddingMatrix x, LabeledAttribute a, int[] strata)
    {
        using var scope = torch.NewDisposeScope();
        int n = x.Rows, d = x.Cols;
        var all = torch.tensor(x.Values, [n, d], torch.float64);
        var keys = Enumerable.Range(0, n).Where(u => a.Labels[u] >= 0).GroupBy(u => (strata[u], a.Labels[u]));
        var scatter = torch.zeros(d, d, torch.float64);
        var count = 0;
        foreach (var g in keys)
        {
            var rows = all.index_select(0, torch.tensor(g.Select(u => (long)u).ToArray()));
            var centred = rows - rows.mean([0], keepdim: true);
            scatter += centred.mT.matmul(centred);
            count += g.Count();
        }
        var (values, vectors) = torch.linalg.eigh(scatter / count);
        return (values.clamp_min(1e-12).data<double>().ToArray(), vectors.contiguous().data<double>().ToArray());
    }

    /// <summary>Least-L2 common shift per class that brings the cell's whitened class offset inside kappa * d / n_k.</summary>
    private static void ProjectCell(EmbeddingMatrix x, LabeledAttribute cell, (double[] Values, double[] Vectors) w, double kappa)
    {
        int d = x.Cols, k = cell.ClassCount;
        var sums = new double[k * d];
        var counts = new int[k];
        for (var u = 0; u < x.Rows; u++)
        {
            var c = cell.Labels[u];
            if (c < 0) continue;
            counts[c]++;
            var row = x.Row(u);
            for (var i = 0; i < d; i++) sums[c * d + i] += row[i];
        }
        var total = counts.Sum();
        if (total == 0) return;
        var mean = new double[d];
        for (var c = 0; c < k; c++)
            for (var i = 0; i < d; i++) mean[i] += sums[c * d + i] / total;
        var shifts = new double[k * d];
        for (var c = 0; c < k; c++)
        {
            if (counts[c] == 0) continue;
            // offset in the eigenbasis: o_j = v_j . (m_c - m)
            var o = new double[d];
            for (var j = 0; j < d; j++)
            {
                var s = 0.0;
                for (var i = 0; i < d; i++) s += w.Vectors[i * d + j] * (sums[c * d + i] / counts[c] - mean[i]);
                o[j] = s;
            }
            var budget = kappa * d / counts[c];
            double Residual(double nu) { var r = 0.0; for (var j = 0; j < d; j++) { var f = w.Values[j] / (w.Values[j] + nu); r += o[j] * o[j] * f * f / w.Values[j]; } return r; }
            if (Residual(0) <= budget) continue;
            double lo = 0, hi = 1e-12;
            while (Residual(hi) > budget && hi < 1e12) hi *= 4;
            for (var it = 0; it < 60; it++) { var mid = (lo + hi) / 2; if (Residual(mid) > budget) lo = mid; else hi = mid; }
            var nu = hi;
            for (var j = 0; j < d; j++)
            {
                var sj = -nu / (w.Values[j] + nu) * o[j];
                for (var i = 0; i < d; i++) shifts[c * d + i] += w.Vectors[i * d + j] * sj;
            }
        }
        // Re-centre so the cell's overall mean stays where it was (class-share weighted shifts sum to zero).
        var centre = new double[d];
        for (var c = 0; c < k; c++)
            for (var i = 0; i < d; i++) centre[i] += counts[c] * shifts[c * d + i] / total;
        for (var u = 0; u < x.Rows; u++)
        {
            var c = cell.Labels[u];
            if (c < 0) continue;
            var row = x.Row(u);
            for (var i = 0; i < d; i++) row[i] += (float)(shifts[c * d + i] - centre[i]);
        }
    }
}
