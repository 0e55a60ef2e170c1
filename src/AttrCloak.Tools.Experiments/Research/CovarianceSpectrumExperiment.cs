using System.Globalization;
using AttrCloak.Core.Data;
using AttrCloak.Tools.Experiments.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace AttrCloak.Tools.Experiments.Research;

/// <summary>
/// <c>covariance-spectrum</c>: where a class's covariance differs from the pooled within-class one. Prints the
/// extreme eigenvalues of W^-1/2 S_k W^-1/2 per class (W pooled within-class, S_k the class's) beside the
/// Marchenko-Pastur edges (1 -/+ sqrt(d / n_k))^2 a class without a covariance difference stays inside, for the
/// real labels and for the same labels shuffled. Needs ATTRCLOAK_MODEL (a trained model directory).
/// </summary>
internal static class CovarianceSpectrumExperiment
{
    public static void Run(ExperimentContext output)
    {
        var (data, model, _, _) = ResearchInputs.Load();
        var users = model.Users;
        var rng = new Random(7);
        foreach (var name in new[] { "gender", "age" })
        {
            var labels = data.Labels[data.AttributeIndex(name)];
            var k = data.Attributes[data.AttributeIndex(name)].ClassCount;
            output.WriteLine($"{name}: real labels");
            Print(output, users, labels, k);
            var shuffled = (int[])labels.Clone();
            rng.Shuffle(shuffled);
            output.WriteLine($"{name}: shuffled labels");
            Print(output, users, shuffled, k);
        }
    }

    private static void Print(ExperimentContext output, EmbeddingMatrix x, int[] labels, int k)
    {
        using var scope = NewDisposeScope();
        int n = x.Rows, d = x.Cols;
        var all = tensor(x.Values, [n, d], float64);
        var within = zeros(d, d, float64);
        var covs = new Tensor[k];
        var counts = new int[k];
        var total = 0;
        for (var c = 0; c < k; c++)
        {
            var idx = Enumerable.Range(0, n).Where(u => labels[u] == c).Select(u => (long)u).ToArray();
            counts[c] = idx.Length;
            if (idx.Length < 2) continue;
            var rows = all.index_select(0, tensor(idx));
            var centred = rows - rows.mean([0], keepdim: true);
            covs[c] = centred.mT.matmul(centred) / idx.Length;
            within += covs[c] * idx.Length;
            total += idx.Length;
        }
        within /= total;
        var (wv, wq) = linalg.eigh(within);
        var wInvHalf = wq.matmul(diag(wv.clamp_min(1e-12).rsqrt())).matmul(wq.mT);
        for (var c = 0; c < k; c++)
        {
            if (covs[c] is null) continue;
            var rel = wInvHalf.matmul(covs[c]).matmul(wInvHalf);
            var ev = linalg.eigvalsh((rel + rel.mT) / 2).data<double>().ToArray();
            var g = (double)d / counts[c];
            var lo = Math.Pow(Math.Max(0, 1 - Math.Sqrt(g)), 2);
            var hi = Math.Pow(1 + Math.Sqrt(g), 2);
            var traceRatio = ev.Average();
            var rawRatio = covs[c].trace().item<double>() / within.trace().item<double>();
            var below = ev.Count(v => v < lo);
            var above = ev.Count(v => v > hi);
            string F(IEnumerable<double> v) => string.Join(" ", v.Select(e => e.ToString("0.00", CultureInfo.InvariantCulture)));
            output.WriteLine($"  class {c} n={counts[c],4} MP [{lo:0.00}, {hi:0.00}] below {below} above {above}  low {F(ev.Take(4))}  high {F(ev.TakeLast(4))}  tr(W^-1 S)/d {traceRatio:0.000} trS/trW {rawRatio:0.000}");
        }
    }
}
