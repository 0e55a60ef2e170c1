using System.Diagnostics;
using AttrCloak.Core.Data;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Statistics;
using static AttrCloak.Tools.Samples.GaussianSamples;

namespace AttrCloak.Tools.Experiments.Cloaking;

/// <summary>
/// <c>recloak-cost</c>: cost of the re-cloak at d = 64 with the ML-100K catalog (gender 2, age 7, occupation 21
/// classes): ms per cloaker build (mean of 20 after a warm-up) and us per Cloak call (mean of 500,000 after 200,000
/// warm-up calls), for the default transport maps and the mean shifts only. Prints only.
/// </summary>
internal static class RecloakCostBenchmark
{
    public static void Run(ExperimentContext output)
    {
        const int d = 64;
        var rng = new Random(1);
        AttributeSpec[] catalog =
        [
            new("gender", ["F", "M"]),
            new("age", Enumerable.Range(0, 7).Select(i => $"a{i}").ToArray()),
            new("occupation", Enumerable.Range(0, 21).Select(i => $"o{i}").ToArray()),
        ];
        // Statistics of a population of 943 users x 3 (about ML-100K's size, so classes have realistic counts).
        var served = new ClassStatisticsAccumulator(d, catalog);
        var originals = new ClassStatisticsAccumulator(d, catalog);
        var cov = RandomSpd(rng, d, scale: 0.3);
        var rows = Sample(rng, new double[d], cov, 3000);
        var classes = new int[3];
        for (var u = 0; u < 3000; u++)
        {
            classes[0] = rng.Next(2);
            classes[1] = rng.Next(7);
            classes[2] = Math.Min(20, (int)(rng.NextDouble() * rng.NextDouble() * 21));
            var x = rows.AsSpan(u * d, d);
            originals.Add(x, classes);
            var shifted = x.ToArray();
            for (var i = 0; i < d; i++) shifted[i] = 0.9f * shifted[i] + 0.01f * classes[1];
            served.Add(shifted, classes);
        }
        var snapshot = ClassStatisticsAccumulator.Combine(served, originals, new StatisticsVersion("bench", 1));

        foreach (var (name, options) in new[]
                 {
                     ("transport (default)", new TransportCloakerOptions()),
                     ("mean shifts only", new TransportCloakerOptions { CovarianceMaps = false }),
                 })
        {
            output.CancellationToken.ThrowIfCancellationRequested();
            var factory = new TransportCloakerFactory(options);
            factory.Build(snapshot); // warm-up: libtorch load and JIT
            const int builds = 20;
            var clock = Stopwatch.StartNew();
            IUserCloaker cloaker = null!;
            for (var b = 0; b < builds; b++) cloaker = factory.Build(snapshot);
            var buildMs = clock.Elapsed.TotalMilliseconds / builds;

            var outputRow = new float[d];
            var users = 1000;
            var labels = Enumerable.Range(0, users).Select(_ => new[] { rng.Next(2), rng.Next(7), rng.Next(21) }).ToArray();
            for (var w = 0; w < 200_000; w++) cloaker.Cloak(rows.AsSpan(w % users * d, d), labels[w % users], outputRow); // tier-1 JIT
            const int calls = 500_000;
            clock.Restart();
            for (var c = 0; c < calls; c++) cloaker.Cloak(rows.AsSpan(c % users * d, d), labels[c % users], outputRow);
            var perCallUs = clock.Elapsed.TotalMicroseconds / calls;
            output.WriteLine($"{name,-22} build {buildMs,7:F2} ms (30 classes, d = {d}); Cloak {perCallUs,6:F2} us/call ({1e6 / perCallUs:N0} calls/s on one core)");
        }
    }
}
