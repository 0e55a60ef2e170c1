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
        void Time(string name, Action a, int reps = 30)
        {
            a();
            var times = new List<double>();
            for (var i = 0; i < reps; i++)
            {
                var sw = Stopwatch.StartNew();
                a();
                times.Add(sw.Elapsed.TotalMilliseconds);
            }
            times.Sort();
            log.Add($"{name}: min {times[0]:F2} ms, median {times[reps / 2]:F2} ms");
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
            Time("cloak 20 it", () => new Cloaker().Cloak(e, attributes, new CloakOptions { MaxIterations = 20, ConvergenceTolerance = 0 }), reps: 5);
        }
        File.WriteAllLines("/tmp/attrcloak-profile.txt", log);
    }
}
