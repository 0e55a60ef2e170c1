using static AttrCloak.Tools.Samples.Streaming.StoreSamples;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Redis.Tests;

/// <summary>
/// A seeded random stream of creates, re-embeddings, class moves, original-only updates, forgets, re-registrations,
/// redeliveries and stale events, applied through three store instances (two on the absolute path with stale copies
/// of each other's writes, one on the Redis-side arithmetic path), checked after every batch against an independent
/// model: per-event outcomes, user states, snapshot = direct float64 computation, verifier consistent.
/// </summary>
public sealed class RandomSequenceTests(RedisServerFixture redis)
{
    private const int D = 6;

    private sealed class ModelUser
    {
        public long? Last;
        public bool LastIsForget;
        public string? LastEvent;
        public UserState? State;
        public readonly List<UserStateChange> Sent = [];
    }

    [Theory]
    [InlineData(101)]
    [InlineData(202)]
    public async Task Random_streams_keep_state_and_statistics_equal_to_a_direct_computation(int seed)
    {
        var ct = TestContext.Current.CancellationToken;
        var options = Options(redis.NewPrefix($"random{seed}"), D);
        // Three writers: a with a default user cache; b with a tiny one (constant evictions); c with none (every
        // batch read), and Redis-side arithmetic. Each writer's cache goes stale when another one writes.
        using var a = new RedisStateStore(redis.Redis, options);
        StateStoreOptions SameDeployment()
        {
            var o = Options(options.Prefix, D);
            o.TombstoneSecret = options.TombstoneSecret; // same deployment, same tombstone names
            return o;
        }
        using var b = new RedisStateStore(redis.Redis, SameDeployment());
        using var c = new RedisStateStore(redis.Redis, SameDeployment(), new RedisStoreSeams { ServerSideArithmetic = true });
        var stores = new[] { a, b, c };
        var caches = new[] { new UserCache(100_000), new UserCache(3), null };
        var verifier = new StatisticsVerifier(redis.Redis, options);
        var rng = new Random(seed);
        var ids = Enumerable.Range(0, 40).Select(i => $"user{i}").ToArray();
        var users = ids.ToDictionary(id => id, _ => new ModelUser());
        var eventCounter = 0;
        var outcomes = new Dictionary<ApplyOutcome, int>();

        for (var round = 0; round < 60; round++)
        {
            var batch = new List<UserStateChange>();
            var size = rng.Next(3) == 0 ? 1 : rng.Next(1, 40);
            // Versions per user within the batch: the next fresh version continues after what the batch already sent.
            var nextVersion = new Dictionary<string, long>();
            for (var i = 0; i < size; i++)
            {
                var id = ids[rng.Next(ids.Length)];
                var m = users[id];
                var fresh = nextVersion.TryGetValue(id, out var nv) ? nv : (m.Sent.Count == 0 ? 1 : m.Sent.Max(e => e.Version) + 1);
                var roll = rng.NextDouble();
                UserStateChange ev;
                if (m.Sent.Count > 0 && roll < 0.12)
                    ev = m.Sent[rng.Next(m.Sent.Count)]; // redelivery
                else if (m.Sent.Count > 0 && roll < 0.2)
                    ev = new UserStateChange(id, $"old{eventCounter++}", Math.Max(0, (m.Last ?? 1) - rng.Next(0, 3)))
                    { Cloaked = RandomVector(rng, D), Classes = RandomClasses(rng, SmallCatalog) }; // stale or equal version
                else
                {
                    var version = fresh + rng.Next(0, 3);
                    nextVersion[id] = version + 1;
                    var kind = rng.NextDouble();
                    var id2 = $"ev{eventCounter++}";
                    ev = kind switch
                    {
                        < 0.12 => UserStateChange.ForgetUser(id, id2, version),
                        < 0.35 => new UserStateChange(id, id2, version)
                        { Original = RandomVector(rng, D), Cloaked = RandomVector(rng, D, offset: 0.5), Classes = RandomClasses(rng, SmallCatalog, 0.2) },
                        < 0.6 => new UserStateChange(id, id2, version) { Cloaked = RandomVector(rng, D, offset: -0.5) },
                        < 0.8 => new UserStateChange(id, id2, version) { Classes = RandomClasses(rng, SmallCatalog, 0.2) },
                        _ => new UserStateChange(id, id2, version) { Original = RandomVector(rng, D) },
                    };
                }
                batch.Add(ev);
            }

            var expected = batch.Select(ev => Expect(users[ev.UserId], ev)).ToArray();
            foreach (var ev in batch) users[ev.UserId].Sent.Add(ev);
            var writer = rng.Next(stores.Length);
            var results = caches[writer] is { } cache
                ? await stores[writer].ApplyConsumedAsync(batch, [], cache, ct)
                : await stores[writer].ApplyAsync(batch, ct);

            results.Select(r => r.Outcome).ShouldBe(expected, $"round {round}");
            foreach (var r in results) outcomes[r.Outcome] = outcomes.GetValueOrDefault(r.Outcome) + 1;

            if (round % 10 == 9 || round == 59)
            {
                var model = new PopulationModel(SmallCatalog, D);
                foreach (var (id, m) in users)
                    if (m.State is { } s) model.Set(id, s.Original, s.Cloaked, s.Classes);
                model.ShouldMatch(await stores[rng.Next(stores.Length)].ReadStatisticsAsync(ct));
                var stored = await a.GetUsersAsync(ids, ct);
                for (var i = 0; i < ids.Length; i++)
                    stored[i].ShouldBeEquivalentTo(users[ids[i]].State);
                var report = await verifier.VerifyAsync(cancellationToken: ct);
                report.IsConsistent.ShouldBeTrue(string.Join("; ", report.Inconsistent));
                report.UsersScanned.ShouldBe(users.Values.Count(u => u.State is not null));
            }
        }
        // The stream really exercised every path.
        outcomes.Keys.ShouldBe([ApplyOutcome.Applied, ApplyOutcome.Duplicate, ApplyOutcome.Stale, ApplyOutcome.Rejected], ignoreOrder: true);
        c.Counters.DeltaWrites.ShouldBeGreaterThan(0);
        (a.Counters.CacheReloads + b.Counters.CacheReloads).ShouldBeGreaterThan(2);
        a.Counters.UserCacheHits.ShouldBeGreaterThan(0);
        (a.Counters.Conflicts + b.Counters.Conflicts).ShouldBeGreaterThan(0); // stale cached users were caught
        c.Counters.UserCacheHits.ShouldBe(0);
    }

    /// <summary>The specification, independently of the store's code: what this event does to the model user.</summary>
    private static ApplyOutcome Expect(ModelUser m, UserStateChange ev)
    {
        if (m.Last is { } last && ev.Version <= last)
            return ev.Version == last && (m.LastIsForget ? ev.Forget : !ev.Forget && ev.EventId == m.LastEvent)
                ? ApplyOutcome.Duplicate
                : ApplyOutcome.Stale;
        if (ev.Forget)
        {
            m.State = null;
            m.LastIsForget = true;
        }
        else
        {
            if (m.State is null && (ev.Original is null || ev.Cloaked is null)) return ApplyOutcome.Rejected;
            m.State = new UserState(ev.UserId, ev.Version, ev.EventId, ev.Original ?? m.State!.Original, ev.Cloaked ?? m.State!.Cloaked,
                ev.Classes ?? m.State?.Classes ?? [-1, -1]);
            m.LastIsForget = false;
        }
        m.Last = ev.Version;
        m.LastEvent = ev.EventId;
        return ApplyOutcome.Applied;
    }
}
