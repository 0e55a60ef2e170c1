using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Pipeline;
using AttrCloak.Tools.Benchmarks;

namespace AttrCloak.Streaming.Tests.Pipeline;

/// <summary>
/// The benchmark entry point of <c>attrcloak bench stream</c>: a short run checks it works. The measurement itself is
/// <c>attrcloak bench stream</c>, or the stream-variants experiment of AttrCloak.Tools.Experiments for A/B runs.
/// </summary>
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
}
