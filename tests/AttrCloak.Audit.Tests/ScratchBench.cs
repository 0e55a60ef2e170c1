using System.Diagnostics;
using AttrCloak.Audit.Attackers;
namespace AttrCloak.Audit.Tests;
public sealed class ScratchBench(ITestOutputHelper output)
{
    [Fact(Explicit = true)]
    public void Fits()
    {
        AttrCloak.Learning.TorchRuntime.EnsureInitialised();
        var proc = Process.GetCurrentProcess();
        foreach (var threads in new[] { 2, 1 })
        {
            TorchSharp.torch.set_num_threads(threads);
            foreach (var k in new[] { 7 })
            {
                var y = Synthetic.RandomLabels(754, k, 1);
                var x = Synthetic.Gaussian(64, 2, 0.6, (y, k));
                foreach (var (name, a) in new (string, IAttacker)[] { ("mlp100ep", new MlpAttacker("m", new MlpSettings([100], MaxEpochs: 100, Tolerance: -1))), ("wide100ep", new MlpAttacker("m", new MlpSettings([256, 128], MaxEpochs: 100, Tolerance: -1))), ("lgbm", new LightGbmAttacker()), ("lr", new LogisticRegressionAttacker()) })
                {
                    a.Fit(x, y, k, 0).Dispose();
                    proc.Refresh();
                    var cpu0 = proc.TotalProcessorTime;
                    var clock = Stopwatch.StartNew();
                    using var m = a.Fit(x, y, k, 1);
                    proc.Refresh();
                    output.WriteLine($"threads {threads} K={k} {name}: wall {clock.Elapsed.TotalSeconds:F2}s cpu {(proc.TotalProcessorTime - cpu0).TotalSeconds:F2}s");
                }
            }
        }
    }
}
