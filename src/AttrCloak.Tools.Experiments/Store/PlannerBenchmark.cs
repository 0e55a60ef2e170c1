using System.Diagnostics;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;
using static AttrCloak.Tools.Samples.Streaming.StoreSamples;

namespace AttrCloak.Tools.Experiments.Store;

/// <summary>
/// <c>planner</c>: client-side cost of planning a batch (folding + statistics deltas of both populations) without Redis, at d = 64 with
/// the MovieLens-like catalog over 20,000 resident users; prints wall, CPU and GC pause per event, three repetitions
/// per event kind.
/// </summary>
internal static class PlannerBenchmark
{
    public static void Run(ExperimentContext output)
    {
        const int d = 64, population = 20_000, batchSize = 512, batchCount = 60;
        var planner = new ApplyFold(StatisticsShape.Of(Options("bench", d, MovieLensCatalog)));
        var rng = new Random(1);
        var states = Enumerable.Range(0, population)
            .Select(i => new UserState($"u{i}", 1, "e", RandomVector(rng, d), RandomVector(rng, d), RandomClasses(rng, MovieLensCatalog))).ToArray();
        foreach (var both in new[] { false, true })
        {
            var batches = Enumerable.Range(0, batchCount).Select(_ => Enumerable.Range(0, batchSize).Select(_ =>
            {
                var u = rng.Next(population);
                return new UserStateChange($"u{u}", "e2", 2)
                {
                    Original = both ? RandomVector(rng, d) : null,
                    Cloaked = RandomVector(rng, d),
                    Classes = rng.Next(10) == 0 ? RandomClasses(rng, MovieLensCatalog) : null,
                };
            }).ToList()).ToList();
            for (var rep = 0; rep < 3; rep++)
            {
                output.CancellationToken.ThrowIfCancellationRequested();
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                var pause = GC.GetTotalPauseDuration();
                var clock = Stopwatch.StartNew();
                foreach (var batch in batches)
                {
                    var results = new ApplyResult[batch.Count];
                    var grouped = planner.Group(batch, results);
                    var priors = grouped.Users.Select(u => new PriorUser(states[int.Parse(u.AsSpan(1))], null)).ToArray();
                    planner.Plan(batch, grouped, priors, results);
                }
                var events = batchCount * batchSize;
                output.WriteLine(
                    $"events {(both ? "original+cloaked" : "cloaked only    ")}: wall {clock.Elapsed.TotalMicroseconds / events:F1} us/event, " +
                    $"CPU {(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMicroseconds / events:F1} us/event, " +
                    $"GC pause {(GC.GetTotalPauseDuration() - pause).TotalMicroseconds / events:F1} us/event");
            }
        }
    }
}
