using System.Text;
using AttrCloak.Core.Data;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Tests.Pipeline;
using Confluent.Kafka;
using StackExchange.Redis;
using Outcomes = AttrCloak.Streaming.Monitoring.WorkerMetrics.Outcomes;
using SweepActions = AttrCloak.Streaming.Monitoring.WorkerMetrics.SweepActions;
using Types = AttrCloak.Streaming.Monitoring.WorkerMetrics.EventTypes;
using AttrCloak.Streaming.Redis;

namespace AttrCloak.Streaming.Tests.Generations;

/// <summary>
/// Model rollouts through the real pipeline (mock Kafka, real redis-server): a new model_version fills beside the
/// serving one without being served, its promotion seats it and sweeps its users out, its users never get another
/// generation's cloak, and retiring the old one tombstones the users it alone held and deletes its keys. The cloaks
/// tell where they come from: the live maps give original + 10 (<see cref="SignatureCloakerFactory"/>), a seating
/// (and the bootstrap's batch cloak) original + 20.
/// </summary>
[Collection(RunsAlone.Name)]
public sealed class RolloutTests(RedisServerFixture redis, MockKafkaFixture kafka) : IClassFixture<MockKafkaFixture>
{
    private const string A = "mf-A";
    private const string B = "mf-B";
    private const float SeatOffset = 20f;

    /// <summary>A batch cloak that leaves a mark: original + 20.</summary>
    private static readonly PopulationSeeding MarkedSeeding = new("seat+20", (originals, _, _, _) => originals.Select(x => x.Select(v => v + SeatOffset).ToArray()).ToArray());

    private static readonly string[] Genders = ["F", "M"];
    private static readonly string[] Ages = ["young", "middle", "old"];

    private static float[] Embedding(string model, int u) =>
        Enumerable.Range(0, GuardHarness.D).Select(j => (float)Math.Round((model == A ? 0.1 : -0.1) * (u + 1) + 0.01 * j, 3)).ToArray();

    private static EmbeddingUpdate Update(string model, string user, int u, long version) =>
        new($"{user}-{model}-v{version}", user, version, GuardHarness.Time.AddSeconds(version), model, Embedding(model, u),
            new Dictionary<string, string> { ["gender"] = Genders[u % 2], ["age"] = Ages[u % 3] });

    private static int[] Classes(int u) => [u % 2, u % 3];

    private static Dictionary<string, CloakedEmbedding?> LastRecords(List<ConsumeResult<byte[], byte[]>> messages)
    {
        var last = new Dictionary<string, CloakedEmbedding?>(StringComparer.Ordinal);
        foreach (var m in messages)
        {
            var user = Encoding.UTF8.GetString(m.Message.Key);
            if (m.Message.Value is null) last[user] = null;
            else
            {
                EventCodec.TryDecodeCloaked(m.Message.Value, out var record, out var error).ShouldBeTrue(error?.Message);
                last[user] = record;
            }
        }
        return last;
    }

    private static void ShouldBeCloakOf(CloakedEmbedding? record, string model, int u, float offset, string what)
    {
        record.ShouldNotBeNull(what);
        record.ModelVersion.ShouldBe(model, what);
        record.Embedding.ShouldBe(Embedding(model, u).Select(v => v + offset).ToArray(), tolerance: 1e-5, what);
    }

    private static async Task<GenerationRegistry> RegistryAsync(GuardHarness h) => await h.NewStore().ReadRegistryAsync(TestContext.Current.CancellationToken);

    [Fact]
    public async Task A_new_model_fills_unserved_is_promoted_on_request_swept_out_and_the_old_one_retired_without_a_trace()
    {
        var ct = TestContext.Current.CancellationToken;
        using var h = new GuardHarness(redis, kafka, "rollout");
        h.Generations = new GenerationOptions
        {
            AutoPromote = false, SweepUsersPerSecond = 500, RegistryPoll = TimeSpan.FromMilliseconds(100),
            SeatCheckInterval = TimeSpan.FromMilliseconds(200), RetireGrace = TimeSpan.FromSeconds(2),
        };
        const int Users = 30;
        // Model A bootstrapped as `attrcloak bootstrap` does (batch cloak = original + 20), and one user only A holds.
        using (var deployment = h.NewStore())
        {
            var seeded = Enumerable.Range(0, Users).Select(u => new SeedUser($"u{u}", Embedding(A, u), Embedding(A, u).Select(v => v + SeatOffset).ToArray(), Classes(u)))
                .Append(new SeedUser("only-a", Embedding(A, 99), Embedding(A, 99).Select(v => v + SeatOffset).ToArray(), Classes(99))).ToList();
            (await GenerationSeeding.SeedAsync(deployment, A, seeded, version: 0, batchSize: 100, cancellationToken: ct)).Applied.ShouldAllBe(a => a);
        }
        // Redis holds much more than this deployment: SCAN walks all of it, so a sweep's pages mostly hold other keys
        // (a sweep once took a page budget without users of its generation for the end of its scan).
        var noise = redis.Redis.GetDatabase().CreateBatch();
        var writes = Enumerable.Range(0, 20_000).Select(i => noise.StringSetAsync($"{h.StoreOptions.Prefix}-noise:{i}", "x", TimeSpan.FromMinutes(10))).ToArray();
        noise.Execute();
        await Task.WhenAll(writes);
        using var serving = h.Reader(h.Kafka.CloakedTopic);
        h.Seeding = MarkedSeeding;
        using var worker = h.Start();

        // 1. The bootstrapped generation's sweep publishes every user of it.
        var messages = serving.WaitUntil(m => LastRecords(m).Count == Users + 1, "the sweep of A");
        foreach (var u in Enumerable.Range(0, Users)) ShouldBeCloakOf(LastRecords(messages)[$"u{u}"], A, u, SeatOffset, $"u{u} after the bootstrap");

        // 2. A retrained model B for every user (and a newcomer): it fills, nothing of it is served for A's users.
        foreach (var u in Enumerable.Range(0, Users)) h.Produce(Update(B, $"u{u}", u, 1));
        h.Produce(Update(B, "only-b", 77, 1));
        h.Flush();
        Wait.Until(() => worker.Pipeline.ProcessedEvents == Users + 1, GuardHarness.Deadline, "the B updates");
        (await RegistryAsync(h)).Find(B)!.State.ShouldBe(GenerationState.Filling);
        Thread.Sleep(300); // an absence: give a wrong output time to show
        var filling = LastRecords(serving.Snapshot());
        foreach (var u in Enumerable.Range(0, Users)) ShouldBeCloakOf(filling[$"u{u}"], A, u, SeatOffset, $"u{u} while B fills");
        // A user no promoted generation holds gets the filling generation's live cloak (its cold start).
        ShouldBeCloakOf(filling["only-b"], B, 77, SignatureCloakerFactory.Offset, "only-b while B fills");
        serving.Snapshot().Count(m => m.Message.Value is { } v && EventCodec.TryDecodeCloaked(v, out var r, out _) && r.ModelVersion == B).ShouldBe(1);

        // 3. Promotion on request: a seating (batch cloak of B's originals), then a sweep of every B user.
        using (var deployment = h.NewStore()) await deployment.UpdateRegistryAsync(r => r.WithPromoteRequested(B), ct);
        var promoted = serving.WaitUntil(m => Enumerable.Range(0, Users).All(u => LastRecords(m)[$"u{u}"]?.ModelVersion == B)
                                              && LastRecords(m)["only-b"]?.Embedding[0] == Embedding(B, 77)[0] + SeatOffset, "the sweep of B");
        var registry = await RegistryAsync(h);
        registry.Serving!.ModelVersion.ShouldBe(B);
        registry.Find(A)!.State.ShouldBe(GenerationState.Superseded);
        var afterPromotion = LastRecords(promoted);
        foreach (var u in Enumerable.Range(0, Users)) ShouldBeCloakOf(afterPromotion[$"u{u}"], B, u, SeatOffset, $"u{u} after the promotion");
        ShouldBeCloakOf(afterPromotion["only-a"], A, 99, SeatOffset, "only-a keeps A's record while A is superseded");
        // Per user the records go A..., then B..., never back: no user got the old generation's cloak after the new one's.
        foreach (var group in promoted.Where(m => m.Message.Value is not null).GroupBy(m => Encoding.UTF8.GetString(m.Message.Key)))
        {
            var models = group.Select(m => { EventCodec.TryDecodeCloaked(m.Message.Value, out var r, out _); return r!.ModelVersion; }).ToList();
            models.SkipWhile(m => m == A).ShouldAllBe(m => m == B, $"{group.Key}: {string.Join(",", models)}");
        }
        worker.Metrics.SweepUsers.WithLabels(B, SweepActions.Republished).Value.ShouldBeGreaterThanOrEqualTo(Users + 1);
        worker.Metrics.GenerationInfo.WithLabels(B, "serving").Value.ShouldBe(1);
        // Visible to operators: the users still served by the superseded generation (only-a has no B embedding).
        Wait.Until(() => worker.Metrics.GenerationUnmigrated.WithLabels(A).Value == 1, GuardHarness.Deadline, "the unmigrated users of A counted");

        // 4. Live after the promotion: B's maps (original + 10); an update of the superseded model changes only A.
        h.Produce(Update(B, "u0", 0, 2));
        h.Flush();
        serving.WaitUntil(m => LastRecords(m)["u0"]?.Embedding[0] == Embedding(B, 0)[0] + SignatureCloakerFactory.Offset, "u0's live B update");

        // 5. Retire A: only-a (no B embedding) gets a tombstone, every key of A goes, B's users keep their records.
        using (var deployment = h.NewStore()) await deployment.UpdateRegistryAsync(r => r.WithRetiring(A, DateTimeOffset.UtcNow), ct);
        Wait.Until(() => RegistryAsync(h).GetAwaiter().GetResult().Find(A)!.State == GenerationState.Retired, GuardHarness.Deadline, "A retired");
        var retired = LastRecords(serving.WaitUntil(m => LastRecords(m)["only-a"] is null, "only-a's tombstone"));
        foreach (var u in Enumerable.Range(1, Users - 1)) ShouldBeCloakOf(retired[$"u{u}"], B, u, SeatOffset, $"u{u} after A retired");
        var keys = new List<string>();
        await foreach (var key in redis.Redis.GetServers()[0].KeysAsync(pattern: RedisGenerationStore.GenerationPrefix(h.StoreOptions.Prefix, A) + ":*")) keys.Add(key!);
        keys.ShouldBeEmpty();
        worker.Metrics.SweepUsers.WithLabels(A, SweepActions.Tombstoned).Value.ShouldBe(1);

        // 6. A late event of the retired model is recognised, counted, and changes nothing.
        var before = serving.Snapshot().Count;
        h.Produce(Update(A, "u1", 1, 5));
        h.Flush();
        Wait.Until(() => worker.Events(Types.EmbeddingUpdate, Outcomes.Retired) == 1, GuardHarness.Deadline, "the retired model's event");
        Thread.Sleep(300);
        serving.Snapshot().Count.ShouldBe(before);
        worker.Stop();
    }

    [Fact]
    public async Task A_cold_start_is_seated_once_every_class_has_enough_users_and_a_new_model_is_promoted_by_itself()
    {
        using var h = new GuardHarness(redis, kafka, "autopromote");
        h.Generations = new GenerationOptions
        {
            AutoPromote = true, MinClassUsers = 2, MinUserShare = 0.75, SweepUsersPerSecond = 500,
            RegistryPoll = TimeSpan.FromMilliseconds(100), SeatCheckInterval = TimeSpan.FromMilliseconds(200),
            ReseatGrowth = 0, // counted seatings below; growth is the next test's
        };
        const int Users = 12; // 2 genders x 3 ages: every class has 2 users from the sixth on
        using var serving = h.Reader(h.Kafka.CloakedTopic);
        h.Seeding = MarkedSeeding;
        using var worker = h.Start();

        // Cold start: the first model serves at once (live maps), then is seated and swept out.
        foreach (var u in Enumerable.Range(0, Users)) h.Produce(Update(A, $"u{u}", u, 1));
        h.Flush();
        var seated = serving.WaitUntil(m => Enumerable.Range(0, Users).All(u => LastRecords(m).GetValueOrDefault($"u{u}")?.Embedding[0] == Embedding(A, u)[0] + SeatOffset),
            "A seated and swept");
        var registry = await RegistryAsync(h);
        registry.Serving!.ModelVersion.ShouldBe(A);
        registry.Serving.SeatEpoch.ShouldBe(1);
        worker.Metrics.Seatings.WithLabels("success").Value.ShouldBe(1);

        // Model B: promoted by itself once it holds 75 % of A's users and every class as many as A has (up to 2).
        foreach (var u in Enumerable.Range(0, 8)) h.Produce(Update(B, $"u{u}", u, 2));
        h.Flush();
        Wait.Until(() => worker.Pipeline.ProcessedEvents == Users + 8, GuardHarness.Deadline, "8 B updates");
        Thread.Sleep(600); // three seat checks: 8 of 12 users is below 75 %
        (await RegistryAsync(h)).Find(B)!.State.ShouldBe(GenerationState.Filling);
        foreach (var u in Enumerable.Range(8, 1)) h.Produce(Update(B, $"u{u}", u, 2));
        h.Flush();
        var promoted = serving.WaitUntil(m => Enumerable.Range(0, 9).All(u => LastRecords(m)[$"u{u}"]?.ModelVersion == B), "B promoted by itself");
        var last = LastRecords(promoted);
        foreach (var u in Enumerable.Range(0, 9)) ShouldBeCloakOf(last[$"u{u}"], B, u, SeatOffset, $"u{u} after B's promotion");
        foreach (var u in Enumerable.Range(9, 3)) ShouldBeCloakOf(last[$"u{u}"], A, u, SeatOffset, $"u{u} has no B embedding yet");

        // A re-seating asked for the serving generation (what `stats rebuild` does after a repair): seated again and swept out again.
        var sweptBefore = worker.Metrics.SweepUsers.WithLabels(B, SweepActions.Republished).Value;
        using (var deployment = h.NewStore()) await deployment.UpdateRegistryAsync(r => r.WithSeatRequested(B), TestContext.Current.CancellationToken);
        Wait.Until(() => worker.Metrics.SweepUsers.WithLabels(B, SweepActions.Republished).Value >= sweptBefore + 9, GuardHarness.Deadline, "B re-seated and swept again");
        var reseated = (await RegistryAsync(h)).Find(B)!;
        reseated.SeatEpoch.ShouldBe(2);
        reseated.PromoteRequested.ShouldBeFalse();
        worker.Stop();
    }

    [Fact]
    public async Task The_serving_generation_is_seated_again_once_it_has_doubled_and_every_user_is_swept_with_the_new_seating()
    {
        using var h = new GuardHarness(redis, kafka, "reseat");
        h.Generations = new GenerationOptions
        {
            AutoPromote = true, MinClassUsers = 2, SweepUsersPerSecond = 500, ReseatGrowth = 2,
            RegistryPoll = TimeSpan.FromMilliseconds(100), SeatCheckInterval = TimeSpan.FromMilliseconds(200),
        };
        using var serving = h.Reader(h.Kafka.CloakedTopic);
        h.Seeding = MarkedSeeding;
        using var worker = h.Start();

        // Six users: every class has two; the cold start is seated over them.
        foreach (var u in Enumerable.Range(0, 6)) h.Produce(Update(A, $"u{u}", u, 1));
        h.Flush();
        serving.WaitUntil(m => Enumerable.Range(0, 6).All(u => LastRecords(m).GetValueOrDefault($"u{u}")?.Embedding[0] == Embedding(A, u)[0] + SeatOffset), "A seated");
        var first = (await RegistryAsync(h)).Find(A)!;
        first.SeatEpoch.ShouldBe(1);
        first.SeatedUsers.ShouldBe(6);

        // Five more: served by the live maps (original + 10). 11 < 2 x 6 is not due (SeatingPolicyTests holds the
        // boundary); a wrong seating at 11 would show below as 11 seated users instead of 12.
        foreach (var u in Enumerable.Range(6, 5)) h.Produce(Update(A, $"u{u}", u, 1));
        h.Flush();
        var live = LastRecords(serving.WaitUntil(m => Enumerable.Range(6, 5).All(u => LastRecords(m).ContainsKey($"u{u}")), "five live cloaks"));
        foreach (var u in Enumerable.Range(6, 5)) ShouldBeCloakOf(live[$"u{u}"], A, u, SignatureCloakerFactory.Offset, $"u{u} from the live maps");

        // The twelfth doubles the generation: it is seated again over all 12, and every user is swept out with that seating.
        h.Produce(Update(A, "u11", 11, 1));
        h.Flush();
        var reseated = LastRecords(serving.WaitUntil(
            m => Enumerable.Range(0, 12).All(u => LastRecords(m).GetValueOrDefault($"u{u}")?.Embedding[0] == Embedding(A, u)[0] + SeatOffset), "A re-seated and swept"));
        foreach (var u in Enumerable.Range(0, 12)) ShouldBeCloakOf(reseated[$"u{u}"], A, u, SeatOffset, $"u{u} after the re-seating");
        var second = (await RegistryAsync(h)).Find(A)!;
        second.SeatEpoch.ShouldBe(2);
        second.SeatedUsers.ShouldBe(12);
        worker.Metrics.Seatings.WithLabels("success").Value.ShouldBe(2);
        worker.Stop();
    }
}
