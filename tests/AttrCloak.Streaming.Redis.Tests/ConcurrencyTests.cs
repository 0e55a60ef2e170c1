using static AttrCloak.Tools.Samples.Streaming.StoreSamples;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Redis.Tests;

/// <summary>
/// Two workers writing at the same time (a rebalance overlap, or two instances on different partitions): the
/// compare-and-set on users and on the statistics version must keep every batch all-or-nothing and the statistics
/// equal to the users' final states.
/// </summary>
public sealed class ConcurrencyTests(RedisServerFixture redis)
{
    private const int D = 8;

    [Fact]
    public async Task Concurrent_writers_keep_users_and_statistics_consistent()
    {
        var ct = TestContext.Current.CancellationToken;
        var prefix = redis.NewPrefix("concurrent");
        var options = Options(prefix, D);
        options.MaxApplyAttempts = 50;
        using var first = new RedisStateStore(redis.Redis, options);
        using var second = new RedisStateStore(redis.Redis, options);
        var rng = new Random(41);

        // Own users per writer, plus shared users whose identical event stream both writers apply (redelivery after a
        // rebalance): the newest version must win exactly once.
        var streams = new List<UserStateChange>[2];
        var finalState = new Dictionary<string, (float[] Original, float[] Cloaked, int[] Classes)>();
        for (var w = 0; w < 2; w++) streams[w] = [];
        var shared = new List<UserStateChange>();
        for (var v = 1; v <= 30; v++)
            for (var u = 0; u < 10; u++)
            {
                var e = new UserStateChange($"s{u}", $"s{u}-{v}", v)
                {
                    Original = RandomVector(rng, D),
                    Cloaked = RandomVector(rng, D),
                    Classes = RandomClasses(rng, SmallCatalog, 0.1),
                };
                shared.Add(e);
                finalState[e.UserId] = (e.Original!, e.Cloaked!, e.Classes!);
            }
        for (var w = 0; w < 2; w++)
            for (var v = 1; v <= 30; v++)
                for (var u = 0; u < 10; u++)
                {
                    var e = new UserStateChange($"w{w}u{u}", $"w{w}u{u}-{v}", v)
                    {
                        Original = RandomVector(rng, D),
                        Cloaked = RandomVector(rng, D),
                        Classes = RandomClasses(rng, SmallCatalog, 0.1),
                    };
                    streams[w].Add(e);
                    finalState[e.UserId] = (e.Original!, e.Cloaked!, e.Classes!);
                }

        async Task RunAsync(RedisStateStore store, List<UserStateChange> own)
        {
            for (var i = 0; i < 30; i++)
            {
                var batch = own.Skip(i * 10).Take(10).Concat(shared.Skip(i * 10).Take(10)).ToList();
                var results = await store.ApplyAsync(batch, ct);
                results.ShouldAllBe(r => r.Outcome != ApplyOutcome.Rejected);
            }
        }

        await Task.WhenAll(Task.Run(() => RunAsync(first, streams[0]), ct), Task.Run(() => RunAsync(second, streams[1]), ct));

        var model = new PopulationModel(SmallCatalog, D);
        foreach (var (id, s) in finalState) model.Set(id, s.Original, s.Cloaked, s.Classes);
        model.ShouldMatch(await first.ReadStatisticsAsync(ct));
        (await new StatisticsVerifier(redis.Redis, options).VerifyAsync(cancellationToken: ct)).IsConsistent.ShouldBeTrue();
        foreach (var id in finalState.Keys)
            (await second.GetUserAsync(id, ct))!.Version.ShouldBe(30);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"conflicts: {first.Counters.Conflicts} + {second.Counters.Conflicts}, server-side additions: " +
            $"{first.Counters.DeltaWrites + second.Counters.DeltaWrites}, cache reloads: {first.Counters.CacheReloads + second.Counters.CacheReloads}");
    }
}

/// <summary>Another writer slipped in between a batch's read and its write, deterministically.</summary>
public sealed class InterleavingTests(RedisServerFixture redis)
{
    private const int D = 8;

    [Fact]
    public async Task A_user_changed_between_read_and_write_makes_the_batch_retry_from_the_new_state()
    {
        var ct = TestContext.Current.CancellationToken;
        var options = Options(redis.NewPrefix("interleave-user"), D);
        Func<int, Task>? beforeWrite = null;
        using var worker = new RedisStateStore(redis.Redis, options, new RedisStoreSeams { BeforeWrite = a => beforeWrite?.Invoke(a) ?? Task.CompletedTask });
        using var intruder = new RedisStateStore(redis.Redis, options);
        var rng = new Random(51);
        var created = NewUser("u", 1, rng, D);
        await worker.ApplyAsync([created, NewUser("v", 1, rng, D)], ct);
        var intrusion = new UserStateChange("u", "intruder", 2) { Cloaked = RandomVector(rng, D), Classes = [1, 1] };
        beforeWrite = async attempt =>
        {
            if (attempt == 1) (await intruder.ApplyAsync([intrusion], ct))[0].Outcome.ShouldBe(ApplyOutcome.Applied);
        };

        // Written against version 1, the worker's delta would remove the wrong contribution; the CAS must catch it.
        var results = await worker.ApplyAsync([new UserStateChange("u", "worker", 3) { Classes = [0, 2] }], ct);

        results[0].Outcome.ShouldBe(ApplyOutcome.Applied);
        worker.Counters.Conflicts.ShouldBe(1);
        var u = (await worker.GetUserAsync("u", ct))!;
        u.Version.ShouldBe(3);
        u.Cloaked.ShouldBe(intrusion.Cloaked);
        u.Classes.ShouldBe([0, 2]);
        (await new StatisticsVerifier(redis.Redis, options).VerifyAsync(cancellationToken: ct)).IsConsistent.ShouldBeTrue();
    }

    [Fact]
    public async Task Statistics_moved_by_another_writer_make_the_batch_fall_back_to_server_side_addition()
    {
        var ct = TestContext.Current.CancellationToken;
        var options = Options(redis.NewPrefix("interleave-stats"), D);
        Func<int, Task>? beforeWrite = null;
        using var worker = new RedisStateStore(redis.Redis, options, new RedisStoreSeams { BeforeWrite = a => beforeWrite?.Invoke(a) ?? Task.CompletedTask });
        using var intruder = new RedisStateStore(redis.Redis, options);
        var rng = new Random(52);
        var model = new PopulationModel(SmallCatalog, D);
        var initial = new[] { NewUser("a", 1, rng, D), NewUser("b", 1, rng, D) };
        await worker.ApplyAsync(initial, ct);
        foreach (var e in initial) model.Set(e.UserId, e.Original!, e.Cloaked!, e.Classes!);
        var other = NewUser("c", 1, rng, D);
        beforeWrite = async attempt =>
        {
            if (attempt == 1) await intruder.ApplyAsync([other], ct);
        };
        var change = new UserStateChange("a", "e2", 2) { Cloaked = RandomVector(rng, D) };

        (await worker.ApplyAsync([change], ct))[0].Outcome.ShouldBe(ApplyOutcome.Applied);

        worker.Counters.Conflicts.ShouldBe(1);
        worker.Counters.DeltaWrites.ShouldBe(1);
        model.Set("c", other.Original!, other.Cloaked!, other.Classes!);
        model.Set("a", model.Users["a"].Original, change.Cloaked!, model.Users["a"].Classes);
        model.ShouldMatch(await worker.ReadStatisticsAsync(ct));
    }
}
