using AttrCloak.Tools.Experiments.Audit;
using AttrCloak.Tools.Experiments.Cloaking;
using AttrCloak.Tools.Experiments.Contracts;
using AttrCloak.Tools.Experiments.Learning;
using AttrCloak.Tools.Experiments.Pipeline;
using AttrCloak.Tools.Experiments.Store;

namespace AttrCloak.Tools.Experiments;

/// <summary>Every benchmark and experiment by name (the former explicit tests), in the order they are listed.</summary>
internal static class ExperimentCatalog
{
    public static IReadOnlyList<Experiment> All { get; } =
    [
        Sync("codec", "JSON vs binary event codec at d = 64: events/s (wall and CPU, best of 5) and bytes allocated per event",
            "about 15 s", CodecBenchmark.Run),
        Sync("planner", "planning a Redis store batch without Redis (fold + statistics deltas), d = 64: us/event, 3 repetitions",
            "about 10 s", PlannerBenchmark.Run),
        new("store-throughput", "RedisStateStore.ApplyAsync at d = 64 over 20,000 users by batch size, statistics path and event kind; "
            + "throw-away local redis-server; ATTRCLOAK_BENCH_BATCHES, ATTRCLOAK_BENCH_PATHS=absolute",
            "a few minutes", StoreThroughputBenchmark.RunAsync),
        new("stream-variants", "d = 64 updates end to end (bench stream's rig), one run per variant for A/B comparisons; "
            + "ATTRCLOAK_BENCH_EVENTS, ATTRCLOAK_BENCH_VARIANTS, ATTRCLOAK_BENCH_BINARY, ATTRCLOAK_BENCH_ALLOC",
            "about 10-30 s per 100,000 events and variant", StreamVariantsBenchmark.RunAsync),
        Sync("recloak-cost", "re-cloak at d = 64 with the ML-100K catalog: ms per cloaker build, us per Cloak call",
            "about 30 s", RecloakCostBenchmark.Run),
        Sync("repeated-updates", "the same users re-cloaked round after round, maps rebuilt from served statistics: worst BA (lr, mlp), msd; "
            + "ATTRCLOAK_CLOAK_VARIANTS, ATTRCLOAK_ROUNDS, ATTRCLOAK_USERS, ATTRCLOAK_DIM",
            "about a minute per variant", RepeatedUpdateExperiment.Run),
        Sync("streaming-quality", "ML-100K: batch DF vs bootstrap + streamed re-cloak, worst BA and NDCG@10 per variant; "
            + "ATTRCLOAK_ATTACKERS, ATTRCLOAK_CLOAK_VARIANTS, ATTRCLOAK_REFRESH, ATTRCLOAK_SEEDS, ATTRCLOAK_BATCH; needs ML-100K",
            "about 20 s per variant with three attackers, more the first time (trains the MF backbone)", StreamingQualityExperiment.Run),
        Sync("df-iteration", "batch AttrCloak-DF at ML-100K size (943 x 64, 2/7/21 classes): ms per iteration with 1 and 2 threads, best of 3",
            "about a minute", DataFreeBenchmark.RunIterationCost),
        Sync("df-alpha", "alpha_u trajectories of both readings of the DF clip (Adam and SGD), synthetic ML-100K-sized users",
            "about a minute", DataFreeBenchmark.RunAlphaTrajectories),
        Sync("audit", "an ML-100K-sized privacy audit: wall and CPU time, full and per attacker",
            "about 2.5 minutes", AuditBenchmark.Run),
    ];

    /// <summary>The experiment of that name (case-insensitive), or null.</summary>
    public static Experiment? Find(string name) =>
        All.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase));

    private static Experiment Sync(string name, string summary, string duration, Action<ExperimentContext> run) =>
        new(name, summary, duration, context =>
        {
            run(context);
            return Task.CompletedTask;
        });
}
