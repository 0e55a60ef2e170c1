using AttrCloak.Tools.Experiments.Audit;
using AttrCloak.Tools.Experiments.Cloaking;
using AttrCloak.Tools.Experiments.Contracts;
using AttrCloak.Tools.Experiments.Data;
using AttrCloak.Tools.Experiments.Learning;
using AttrCloak.Tools.Experiments.Pipeline;
using AttrCloak.Tools.Experiments.Store;

namespace AttrCloak.Tools.Experiments;

/// <summary>Every benchmark and experiment by name (the former explicit tests), in the order they are listed.</summary>
internal static class ExperimentCatalog
{
    public static IReadOnlyList<Experiment> All { get; } =
    [
        Sync("codec", "JSON vs binary event codec at d = 64: events/s (wall and CPU, best of 5), bytes allocated per event",
            "about 20 s", "", CodecBenchmark.Run),
        Sync("planner", "planning a Redis store batch without Redis (fold + statistics deltas), d = 64: wall, CPU, GC pause per event",
            "a few seconds", "", PlannerBenchmark.Run),
        new("store-throughput", "RedisStateStore.ApplyAsync at d = 64 over 20,000 users by batch size, statistics path and event kind "
            + "(a throw-away local redis-server)",
            "1-2 minutes; about 10 s with both settings below", "ATTRCLOAK_BENCH_BATCHES=64,512  ATTRCLOAK_BENCH_PATHS=absolute",
            StoreThroughputBenchmark.RunAsync),
        new("stream-variants", "d = 64 updates end to end (the rig of attrcloak bench stream), one run per variant for A/B comparisons",
            "about 10 s per 10,000 events and variant", "ATTRCLOAK_BENCH_EVENTS (100000)  ATTRCLOAK_BENCH_VARIANTS  ATTRCLOAK_BENCH_BINARY=1  ATTRCLOAK_BENCH_ALLOC=1",
            StreamVariantsBenchmark.RunAsync),
        Sync("recloak-cost", "re-cloak at d = 64 with the ML-100K catalog: ms per map build, us per Cloak call",
            "a few seconds", "", RecloakCostBenchmark.Run),
        Sync("repeated-updates", "the same users re-cloaked round after round, maps rebuilt from served statistics: worst BA (lr, mlp), msd",
            "about a minute per variant", "ATTRCLOAK_CLOAK_VARIANTS (transport)  ATTRCLOAK_ROUNDS (12)  ATTRCLOAK_USERS (2000)  ATTRCLOAK_DIM (32)",
            RepeatedUpdateExperiment.Run),
        Sync("streaming-quality", "ML-100K: batch DF vs bootstrap + streamed re-cloak, worst BA and NDCG@10 per variant (needs ML-100K)",
            "about 20 s per variant with three attackers; the first run also trains the MF backbone",
            "ATTRCLOAK_ATTACKERS (lr,lr+cal,mlp)  ATTRCLOAK_CLOAK_VARIANTS (transport)  ATTRCLOAK_REFRESH (25)  ATTRCLOAK_SEEDS (1)  ATTRCLOAK_BATCH",
            StreamingQualityExperiment.Run),
        Sync("df-iteration", "batch AttrCloak-DF at ML-100K size (943 x 64, 2/7/21 classes): ms per iteration, 1 and 2 threads, best of 3",
            "about 30 s", "", DataFreeBenchmark.RunIterationCost),
        Sync("df-alpha", "alpha_u trajectories of both readings of the DF clip (Adam and SGD), synthetic ML-100K-sized users",
            "about 10 s", "", DataFreeBenchmark.RunAlphaTrajectories),
        Sync("covariance-spectrum", "per class: extreme eigenvalues of the class covariance relative to the pooled one vs the Marchenko-Pastur edges (real and shuffled labels)",
            "a few seconds", "ATTRCLOAK_MODEL (a model directory)", Research.CovarianceSpectrumExperiment.Run),
        Sync("leak-probe", "where an attribute leaks once its class means are equal: noise-matched equalisation within quintiles of a per-user score, audited",
            "about a minute per attacker", "ATTRCLOAK_MODEL  ATTRCLOAK_PROBE_ATTRIBUTE (gender)  ATTRCLOAK_ATTACKERS (lr,mlp)", Research.LeakProbeExperiment.Run),
        Sync("budgeted-means", "class-mean equalisation within principal strata stopped at a detectability budget (kappa x sampling noise): audit per kappa, npy for evaluate",
            "about 20 s per kappa", "ATTRCLOAK_MODEL  ATTRCLOAK_OUT  ATTRCLOAK_KAPPAS (0,0.25,1)  ATTRCLOAK_PROTECT (gender,age)  ATTRCLOAK_STRATA (5)", Research.BudgetedMeansExperiment.Run),
        Sync("utility-gap", "the loop's utility floor (validation NDCG@10) against the test split: both ratios with paired standard errors per DF strength",
            "about 10 s", "ATTRCLOAK_MODEL  ATTRCLOAK_PROTECT (gender,age)  ATTRCLOAK_STRENGTHS (0.2,0.4,0.6,0.8,1)  ATTRCLOAK_TARGET_SEEDS (20250519)", Research.UtilityGapExperiment.Run),
        Sync("metric-means", "partial class-offset removal: uniform strength vs the least score change (item Gram metric) for a whitened residual; test NDCG@10 and audit per variant",
            "about a minute per variant", "ATTRCLOAK_MODEL  ATTRCLOAK_PROTECT (gender,age)  ATTRCLOAK_ATTACKERS (lr,lr+cal,mlp)", Research.MetricMeansExperiment.Run),
        Sync("crossfit-transport", "batch DF vs the served stream vs every user cloaked by the worker's maps fitted on the other folds: worst |advantage| and test NDCG@10",
            "about a minute per variant", "ATTRCLOAK_MODEL  ATTRCLOAK_BATCH (gender=0.6,age=0.278,occupation=0.3)  ATTRCLOAK_FOLDS (2,5)  ATTRCLOAK_ATTACKERS (all six)", Research.CrossFitTransportExperiment.Run),
        Sync("ml1m-shaped", "writes a synthetic data set of ML-1M's shape (6,040 users, 3,706 items, ~1M interactions) in ML-1M's layout, for reproduce --dataset ml-1m at that size",
            "about 10 s", "ATTRCLOAK_OUT  ATTRCLOAK_USERS (6040)  ATTRCLOAK_ITEMS (3706)  ATTRCLOAK_STRENGTH (0.25)  ATTRCLOAK_SEED (1000209)", Ml1mShapedWriter.Run),
        Sync("audit", "an ML-100K-sized privacy audit: wall and CPU time, in full and per attacker",
            "about 2 minutes", "", AuditBenchmark.Run),
    ];

    /// <summary>The experiment of that name (case-insensitive), or null.</summary>
    public static Experiment? Find(string name) =>
        All.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase));

    private static Experiment Sync(string name, string summary, string duration, string settings, Action<ExperimentContext> run) =>
        new(name, summary, duration, settings, context =>
        {
            run(context);
            return Task.CompletedTask;
        });
}
