using System.Globalization;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Pipeline;
using AttrCloak.Tools.Benchmarks;

namespace AttrCloak.Streaming.Tests.Pipeline;

/// <summary>The benchmark entry point of <c>attrcloak bench stream</c>: a short run checks it works; the explicit one measures.</summary>
public sealed class StreamBenchmarkTests(RedisServerFixture redis)
{
    [Fact]
    public async Task A_short_run_handles_every_event_and_reports_every_figure()
    {
        var reports = new List<StreamBenchmarkProgress>();
        var result = await StreamBenchmark.RunAsync(new StreamBenchmarkOptions
        {
            Redis = redis.Redis,
            Events = 3000,
            Users = 200,
            SampleInterval = TimeSpan.FromMilliseconds(200),
        }, new Progress<StreamBenchmarkProgress>(reports.Add), TestContext.Current.CancellationToken);

        result.Events.ShouldBe(3000);
        result.DeadLetters.ShouldBe(0);
        result.EventsPerSecond.ShouldBeGreaterThan(0);
        result.P50Milliseconds.ShouldBeGreaterThan(0);
        result.P99Milliseconds.ShouldBeGreaterThanOrEqualTo(result.P50Milliseconds);
        result.Stages.Select(s => s.Stage).ShouldBe(["poll", "decode", "store_read", "cloak", "store_apply", "encode", "produce", "ack_wait", "commit"]);
        result.CloakerName.ShouldBe("TransportCloakerFactory");
        // The pipeline remembers the users it wrote: most lookups need no store read.
        result.UserCacheHits.ShouldBeGreaterThan(result.UserReads);
        result.Stages.Where(s => s.Stage != "poll").Sum(s => s.Share).ShouldBe(1, 1e-9);
        result.Samples.ShouldNotBeEmpty();
        result.Samples[^1].RssBytes.ShouldBeGreaterThan(0);
        // The benchmark cleans its Redis prefix up.
        redis.Redis.GetServers()[0].Keys(pattern: "attrcloak-bench-*").ShouldBeEmpty();
    }

    [Fact]
    public async Task The_rig_seeds_the_store_with_what_the_population_seeding_returns()
    {
        var ct = TestContext.Current.CancellationToken;
        (float[][] Originals, int[][] Classes, int Attributes)? seen = null;
        // A recognisable cloak (halved, plus 1) stands in for batch AttrCloak-DF, which this project cannot reference.
        var seeding = new PopulationSeeding("a test cloak", (originals, classes, catalog, _) =>
        {
            seen = (originals, classes, catalog.Count);
            return originals.Select(row => row.Select(x => x * 0.5f + 1).ToArray()).ToArray();
        });
        await using var rig = NewRig(seeding, ct);
        await rig.StartAsync(ct);

        rig.Seeded.ShouldNotBeNull();
        rig.Seeded.Method.ShouldBe("a test cloak");
        rig.Seeded.Users.ShouldBe(150);
        rig.Seeded.Describe().ShouldStartWith("seeded 150 users with a test cloak in ");
        seen.ShouldNotBeNull();
        seen.Value.Originals.ShouldBeSameAs(rig.Population.Originals);
        seen.Value.Classes.ShouldBeSameAs(rig.Population.Classes);
        seen.Value.Attributes.ShouldBe(BenchmarkRig.Catalog.Length);
        foreach (var u in new[] { 0, 77, 149 })
        {
            var state = await rig.Store.GetUserAsync(rig.Population.UserIds[u], ct);
            state.ShouldNotBeNull();
            state.Version.ShouldBe(2, "streamed events start at version 3");
            state.Original.ShouldBe(rig.Population.Originals[u]);
            state.Cloaked.ShouldBe(rig.Population.Originals[u].Select(x => x * 0.5f + 1).ToArray());
            state.Classes.ShouldBe(rig.Population.Classes[u]);
        }
        // The statistics the worker maps streamed users onto are those of the seeded (cloaked) population.
        var snapshot = await rig.Store.ReadStatisticsAsync(ct);
        snapshot[BenchmarkRig.Catalog[0].Name].Counts.Sum().ShouldBe(150);
    }

    [Fact]
    public async Task Without_a_population_seeding_the_rig_seeds_with_batch_DF_into_a_seated_serving_generation()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var rig = NewRig(seeding: null, ct);
        await rig.StartAsync(ct);

        rig.Seeded.ShouldNotBeNull();
        rig.Seeded.Method.ShouldBe(PopulationSeeding.DataFree.Method);
        var state = await rig.Store.GetUserAsync(rig.Population.UserIds[0], ct);
        state.ShouldNotBeNull();
        state.Version.ShouldBe(2);
        state.Cloaked.ShouldNotBe(rig.Population.Originals[0]);
        var generation = (await rig.Generations.ReadRegistryAsync(ct)).Find(BenchmarkRig.ModelVersion);
        generation.ShouldNotBeNull();
        generation.State.ShouldBe(AttrCloak.Streaming.Generations.GenerationState.Serving);
        generation.SeatEpoch.ShouldBe(1);
    }

    [Fact]
    public async Task A_population_seeding_that_returns_the_wrong_shape_is_refused_with_a_clear_message()
    {
        var ct = TestContext.Current.CancellationToken;
        var seeding = new PopulationSeeding("a broken cloak", (originals, _, _, _) => originals[..^1]);
        await using var rig = NewRig(seeding, ct);
        var error = await Should.ThrowAsync<InvalidOperationException>(() => rig.StartAsync(ct));
        error.Message.ShouldBe("the population seeding (a broken cloak) did not return 150 finite rows of 16 values");
    }

    private BenchmarkRig NewRig(PopulationSeeding? seeding, CancellationToken ct) =>
        new(redis.Redis, users: 150, dimension: 16, new AttrCloak.Streaming.Cloaking.TransportCloakerFactory(),
            new RigTuning(null, 2, 1000, 0.02, 64, TimeSpan.FromMilliseconds(5)), observer: null,
            Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, ct, seeding);

    /// <summary>
    /// Measures. Environment: ATTRCLOAK_BENCH_EVENTS (100,000), ATTRCLOAK_BENCH_BINARY=1 (binary input), and
    /// ATTRCLOAK_BENCH_VARIANTS, runs in one process for A/B comparisons on a noisy machine, separated by ';', each
    /// "name:key=value,..." with keys depth (unacknowledged batches), cache (user cache capacity), share (cloaker rebuild share of a core), batch (max batch
    /// events), wait (batch window ms), rate (offered events/s), affine=1 (cost-model cloaker); default one run "now".
    /// </summary>
    [Fact(Explicit = true, DisplayName = "BENCHMARK: d=64 updates end to end (prints; asserts nothing)")]
    public async Task Measure()
    {
        var events = int.TryParse(Environment.GetEnvironmentVariable("ATTRCLOAK_BENCH_EVENTS"), out var n) ? n : 100_000;
        var binary = Environment.GetEnvironmentVariable("ATTRCLOAK_BENCH_BINARY") == "1";
        var variants = (Environment.GetEnvironmentVariable("ATTRCLOAK_BENCH_VARIANTS") is { Length: > 0 } v ? v : "now:")
            .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var output = TestContext.Current.TestOutputHelper!;
        // ATTRCLOAK_BENCH_ALLOC=1: sample what is allocated (costs some speed itself).
        using var allocations = Environment.GetEnvironmentVariable("ATTRCLOAK_BENCH_ALLOC") == "1" ? new AllocationSampler() : null;
        foreach (var variant in variants)
        {
            var name = variant.Split(':')[0];
            var settings = variant[(name.Length + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries)
                .Select(p => p.Split('=')).ToDictionary(p => p[0].Trim(), p => double.Parse(p[1], CultureInfo.InvariantCulture));
            double Get(string key, double fallback) => settings.TryGetValue(key, out var value) ? value : fallback;
            var options = new StreamBenchmarkOptions
            {
                Redis = redis.Redis,
                Events = events,
                BinaryEncoding = binary,
                MaxUnacknowledgedBatches = (int)Get("depth", 2),
                UserCacheCapacity = (int)Get("cache", 100_000),
                MaxBatchEvents = (int)Get("batch", 384),
                MaxBatchWait = TimeSpan.FromMilliseconds(Get("wait", 5)),
                ProduceRate = Get("rate", 0),
                CloakerRebuildShare = Get("share", 0.02),
                CloakerFactory = Get("affine", 0) == 1 ? new AffineCostCloakerFactory() : null,
                SampleInterval = TimeSpan.FromSeconds(events >= 500_000 ? 5 : 1),
                Timeout = TimeSpan.FromMinutes(30),
            };
            output.WriteLine($"=== {name}: {variant} ({File.ReadAllText("/proc/loadavg").Trim()})");
            var result = await StreamBenchmark.RunAsync(options,
                new Progress<StreamBenchmarkProgress>(p => output.WriteLine(
                    $"{p.Elapsed.TotalSeconds,6:F1} s  produced {p.Produced,9:N0}  handled {p.Processed,9:N0}  {p.RecentEventsPerSecond,8:N0}/s  managed {p.ManagedBytes / 1048576.0,6:F1} MiB  rss {p.RssBytes / 1048576.0,6:F1} MiB")),
                TestContext.Current.CancellationToken);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name}: {result.Events:N0} events ({(binary ? "binary" : "JSON")}) in {result.Elapsed.TotalSeconds:F1} s: {result.EventsPerSecond:N0}/s overall, {result.SteadyEventsPerSecond:N0}/s steady; latency p50 {result.P50Milliseconds:F1} ms, p99 {result.P99Milliseconds:F1} ms, max {result.MaxMilliseconds:F1} ms; {result.Batches:N0} batches ({result.Events / (double)result.Batches:F0} events each); cloaker {result.CloakerName}, {result.CloakerRefreshes} builds; dead letters {result.DeadLetters}"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name}: CPU process {result.ProcessCpuSeconds:F1} s ({result.ProcessCpuSeconds / result.Events * 1e6:F0} us/event), redis-server {result.RedisCpuSeconds:F1} s ({result.RedisCpuSeconds / result.Events * 1e6:F0} us/event); GC {(result.ServerGc ? "server" : "workstation")}, collections {string.Join('/', result.Collections)}, paused {result.GcPause.TotalMilliseconds:F0} ms; users read {result.UserReads:N0}, cached {result.UserCacheHits:N0}; store_apply = client {result.StoreClientSeconds / result.Events * 1e6:F1} + script {result.StoreScriptSeconds / result.Events * 1e6:F1} us/event; load {File.ReadAllText("/proc/loadavg").Trim()}"));
            foreach (var s in result.Stages)
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {s.Stage,-12} {s.Seconds,7:F2} s  {s.Share * 100,5:F1} %  {s.MicrosecondsPerEvent,6:F1} us/event"));
            if (allocations is not null)
                foreach (var (type, large, bytes) in allocations.Top(25))
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  alloc {(large ? "LOH" : "SOH")} {bytes / 1048576.0,9:F1} MiB  {type}"));
            if (events >= 500_000)
                foreach (var sample in result.Samples)
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  memory {sample.Elapsed.TotalSeconds,6:F0} s  {sample.Processed,10:N0} events  managed {sample.ManagedBytes / 1048576.0,6:F1} MiB  rss {sample.RssBytes / 1048576.0,6:F1} MiB"));
        }
    }
}
