using System.Globalization;
using AttrCloak.Audit;
using AttrCloak.Core.Data;
using AttrCloak.Core.Data.Loaders;
using AttrCloak.Core.IO;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Tools.Experiments.Support;
using TorchSharp;

namespace AttrCloak.Tools.Experiments.Research;

/// <summary>
/// <c>leak-probe</c>: where an attribute's leak lives once its class means are equal. Each variant equalises the
/// class means of finer cells exactly (no noise: a probe of the signal, not a cloak) and audits the attribute.
/// Needs ATTRCLOAK_MODEL; ATTRCLOAK_PROBE_ATTRIBUTE (gender), ATTRCLOAK_ATTACKERS (lr,mlp).
/// </summary>
internal static class LeakProbeExperiment
{
    public static void Run(ExperimentContext output)
    {
        var modelDir = Environment.GetEnvironmentVariable("ATTRCLOAK_MODEL")
            ?? throw new ExperimentUnavailableException("set ATTRCLOAK_MODEL to a model directory (attrcloak train --out DIR)");
        var name = Environment.GetEnvironmentVariable("ATTRCLOAK_PROBE_ATTRIBUTE") ?? "gender";
        var attackers = (Environment.GetEnvironmentVariable("ATTRCLOAK_ATTACKERS") ?? "lr,mlp").Split(',');
        var data = MovieLens100KLoader.Load(MovieLensData.Require());
        var users = NpyFile.Read(Path.Combine(modelDir, "users.npy"));
        int n = users.Rows;
        var target = data.Labels[data.AttributeIndex(name)];
        var k = data.Attributes[data.AttributeIndex(name)].ClassCount;
        var activity = new int[n];
        foreach (var r in data.Interactions) activity[r.User]++;
        var activityRank = Enumerable.Range(0, n).OrderBy(u => activity[u]).ToArray();
        var decile = new int[n];
        for (var i = 0; i < n; i++) decile[activityRank[i]] = i * 5 / n;
        var norms = Enumerable.Range(0, n).Select(u => Math.Sqrt(users.Row(u).ToArray().Sum(v => (double)v * v))).ToArray();
        var normRank = Enumerable.Range(0, n).OrderBy(u => norms[u]).ToArray();
        var normBin = new int[n];
        for (var i = 0; i < n; i++) normBin[normRank[i]] = i * 5 / n;

        var items = NpyFile.Read(Path.Combine(modelDir, "items.npy"));
        var popular = new double[users.Cols];
        for (var i = 0; i < items.Rows; i++) { var row = items.Row(i); for (var j = 0; j < users.Cols; j++) popular[j] += row[j] / items.Rows; }
        var popScore = Enumerable.Range(0, n).Select(u => { var r = users.Row(u); var s = 0.0; for (var j = 0; j < r.Length; j++) s += r[j] * popular[j]; return s; }).ToArray();
        int[] Quintiles(double[] score)
        {
            var rank = Enumerable.Range(0, n).OrderBy(u => score[u]).ToArray();
            var bins = new int[n];
            for (var i = 0; i < n; i++) bins[rank[i]] = i * 5 / n;
            return bins;
        }
        var popBin = Quintiles(popScore);
        var activityBin = Quintiles(activity.Select(a => (double)a).ToArray());
        double[] PcScore(int which)
        {
            using var scope = torch.NewDisposeScope();
            var all = torch.tensor(users.Values, [n, users.Cols], torch.float64);
            var centred = all - all.mean([0], keepdim: true);
            var (_, vectors) = torch.linalg.eigh(centred.mT.matmul(centred));
            var direction = vectors[.., users.Cols - 1 - which];
            return centred.matmul(direction).data<double>().ToArray();
        }
        var pc1Bin = Quintiles(PcScore(0));
        var pc2Bin = Quintiles(PcScore(1));
        var age = data.Labels[data.AttributeIndex("age")];
        var variants = new (string Name, Func<EmbeddingMatrix> Make)[]
        {
            ("original", () => users.Clone()),
            ($"{name} means", () => Equalise(users, (target, k))),
            ($"{name} within activity quintiles", () => Stratified(users, target, k, activityBin, 5)),
            ($"{name} within popularity-score quintiles", () => Stratified(users, target, k, popBin, 5)),
            ($"{name} within PC1 quintiles", () => Stratified(users, target, k, pc1Bin, 5)),
            ($"{name} within PC2 quintiles", () => Stratified(users, target, k, pc2Bin, 5)),
        };
        foreach (var (label, make) in variants)
        {
            output.CancellationToken.ThrowIfCancellationRequested();
            var x = make();
            var moved = Math.Sqrt(x.Values.Zip(users.Values, (a, b) => (double)(a - b) * (a - b)).Sum() / users.Values.Select(v => (double)v * v).Sum());
            var result = PrivacyAudit.Run(x, [new AuditedAttribute(name, k, target)], new AuditOptions { Seed = 1, Attackers = attackers }, null, output.CancellationToken);
            var a = result.Attributes[0];
            var per = string.Join("  ", a.Attackers.Select(s => $"{s.Attacker} {s.Advantage:+0.000;-0.000}/{s.PriorCorrectedBalancedAccuracy - a.Chance:+0.000;-0.000}"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{label,-48} moved {moved:0.000}  max|adv| {a.MaxAbsAdvantage:0.000}  {per}"));
        }
    }

    private static EmbeddingMatrix Equalise(EmbeddingMatrix users, (int[] Labels, int Count) cells)
    {
        var x = users.Clone();
        var spec = new AttributeSpec("cells", Enumerable.Range(0, cells.Count).Select(i => $"c{i}").ToArray());
        var attribute = new LabeledAttribute(spec, cells.Labels);
        using var targets = ClassTargets.Build(users, attribute, EqualisationTarget.NoiseMatched, 1, 20250519, 0);
        MeanProjection.Apply(x, [attribute], [targets]);
        return x;
    }

    private static EmbeddingMatrix Stratified(EmbeddingMatrix users, int[] target, int k, int[] strata, int count)
    {
        var x = users.Clone();
        var spec = new AttributeSpec("stratum", Enumerable.Range(0, k).Select(i => $"c{i}").ToArray());
        var attributes = Enumerable.Range(0, count).Select(s => new LabeledAttribute(spec, target.Select((c, u) => strata[u] == s ? c : -1).ToArray())).ToArray();
        var targets = attributes.Select((a, s) => ClassTargets.Build(users, a, EqualisationTarget.NoiseMatched, 1, 20250519 + s, 0)).ToArray();
        MeanProjection.Apply(x, attributes, targets);
        foreach (var t in targets) t.Dispose();
        return x;
    }

    /// <summary>Every class's deviations whitened by its own covariance and recoloured with the pooled one (exact, no noise).</summary>
    private static EmbeddingMatrix Recolour(EmbeddingMatrix x, int[] labels, int k)
    {
        using var scope = torch.NewDisposeScope();
        int n = x.Rows, d = x.Cols;
        var all = torch.tensor(x.Values, [n, d], torch.float64);
        var pooled = torch.zeros(d, d, torch.float64);
        var groups = new List<(long[] Index, torch.Tensor Centred, torch.Tensor Mean)>();
        for (var c = 0; c < k; c++)
        {
            var idx = Enumerable.Range(0, n).Where(u => labels[u] == c).Select(u => (long)u).ToArray();
            var rows = all.index_select(0, torch.tensor(idx));
            var mean = rows.mean([0], keepdim: true);
            var centred = rows - mean;
            pooled += centred.mT.matmul(centred);
            groups.Add((idx, centred, mean));
        }
        pooled /= groups.Sum(g => g.Index.Length);
        var (pv, pq) = torch.linalg.eigh(pooled);
        var pooledHalf = pq.matmul(torch.diag(pv.clamp_min(1e-12).sqrt())).matmul(pq.mT);
        var result = x.Clone();
        foreach (var (idx, centred, mean) in groups)
        {
            var cov = centred.mT.matmul(centred) / idx.Length;
            var (v, q) = torch.linalg.eigh(cov);
            var invHalf = q.matmul(torch.diag(v.clamp_min(1e-12).rsqrt())).matmul(q.mT);
            var moved = (centred.matmul(invHalf).matmul(pooledHalf) + mean).to_type(torch.float32).data<float>().ToArray();
            for (var i = 0; i < idx.Length; i++) moved.AsSpan(i * d, d).CopyTo(result.Row((int)idx[i]));
        }
        return result;
    }
}
