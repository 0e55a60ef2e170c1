using System.Diagnostics;
using AttrCloak.Learning.Unlearning;
using static TorchSharp.torch;

namespace AttrCloak.Learning.Tests.Unlearning;

public sealed class ZzProfileScratch
{
    private static readonly int[][] Sizes =
    [
        [273, 670],
        [36, 198, 310, 194, 80, 73, 52],
        [196, 105, 95, 79, 67, 66, 51, 45, 32, 31, 28, 27, 26, 18, 16, 14, 12, 12, 9, 7, 7],
    ];

    [Fact]
    public void Profile()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("ATTRCLOAK_PROFILE") == "1", "scratch");
        TorchRuntime.EnsureInitialised();
        var (e, attributes) = Synthetic.Users(64, Sizes, shift: 1.0, seed: 1);
        var log = new List<string>();
        var proc = Process.GetCurrentProcess();
        void Time(string name, Action a, int reps = 20)
        {
            a();
            proc.Refresh();
            var cpu0 = proc.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            for (var i = 0; i < reps; i++) a();
            proc.Refresh();
            log.Add($"{name}: wall {sw.Elapsed.TotalMilliseconds / reps:F2} ms, cpu {(proc.TotalProcessorTime - cpu0).TotalMilliseconds / reps:F2} ms");
        }
        using var x0 = tensor(e.Values, [943, 64], float32);
        foreach (var threads in new[] { 1 })
        {
            set_num_threads(threads);
            log.Add($"--- threads {threads}");
            foreach (var subset in new[] { new[] { 0 }, new[] { 1 }, new[] { 2 }, new[] { 0, 1, 2 } })
            {
                using var loss = new AttributeUnlearningLoss(subset.Select(i => attributes[i]).ToArray(), 943, CovarianceRidge.Relative(1e-3));
                Time($"fwd {string.Join(",", subset)}", () => { using var s = NewDisposeScope(); using var ng = no_grad(); loss.Compute(x0); });
                Time($"fwd+bwd {string.Join(",", subset)}", () =>
                {
                    using var s = NewDisposeScope();
                    var x = x0.detach().requires_grad_(true);
                    autograd.grad([loss.Compute(x).Total], [x]);
                });
            }
            using (var sc = NewDisposeScope())
            {
                var small = randn(4, dtype: float64);
                Time("tiny add x100", () => { using var s2 = NewDisposeScope(); for (var i = 0; i < 100; i++) small.add(small); });
                var x64 = x0.to_type(float64);
                var layout = AttributeLayout.Create(attributes[2].Labels, 21);
                Time("index_select blocks occ", () => { using var s2 = NewDisposeScope(); x64.index_select(0, layout.PadIndex); });
                var blocks = x64.index_select(0, layout.PadIndex).view(layout.ChunkCount, 32, 64);
                Time("bmm chunks occ", () => { using var s2 = NewDisposeScope(); blocks.transpose(1, 2).bmm(blocks); });
                var a = randn(21, 64, 64, dtype: float64);
                var spd = a.bmm(a.transpose(1, 2)).add(eye(64, dtype: float64));
                Time("cholesky 21", () => { using var s2 = NewDisposeScope(); linalg.cholesky(spd); });
                Time("cholesky 2", () => { using var s2 = NewDisposeScope(); linalg.cholesky(spd[..2]); });
                Time("cholesky 1 (64)", () => { using var s2 = NewDisposeScope(); linalg.cholesky(spd[0]); });
                var l = linalg.cholesky(spd[0]);
                Time("cholesky_inverse", () => { using var s2 = NewDisposeScope(); cholesky_inverse(l); });
                Time("eye", () => { using var s2 = NewDisposeScope(); eye(64, dtype: float64); });
                var spdg = spd.detach().requires_grad_(true);
                Time("cholesky 21 fwd+bwd logdet", () => { using var s2 = NewDisposeScope(); var lk = linalg.cholesky(spdg); autograd.grad([lk.diagonal(0, -2, -1).log().sum()], [spdg]); });
                var spd1 = spd[0].detach().requires_grad_(true);
                Time("cholesky_inverse fwd+bwd", () => { using var s2 = NewDisposeScope(); var lk = linalg.cholesky(spd1); autograd.grad([cholesky_inverse(lk).sum()], [spd1]); });
                Time("slogdet 21 fwd+bwd", () => { using var s2 = NewDisposeScope(); autograd.grad([linalg.slogdet(spdg).Item2.sum()], [spdg]); });
            }
            Time("cloak 20 it", () => new Cloaker().Cloak(e, attributes, new CloakOptions { MaxIterations = 20, ConvergenceTolerance = 0 }), reps: 3);
        }
        File.WriteAllLines("/tmp/attrcloak-profile.txt", log);
    }
}
