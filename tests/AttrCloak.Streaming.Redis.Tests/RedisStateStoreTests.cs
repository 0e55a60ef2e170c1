using StackExchange.Redis;
using static AttrCloak.Tools.Samples.Streaming.StoreSamples;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Redis.Tests;

public sealed class RedisStateStoreTests(RedisServerFixture redis)
{
    private const int D = 8;

    [Fact]
    public async Task Apply_then_read_round_trips_users_and_statistics()
    {
        var options = Options(redis.NewPrefix("roundtrip"), D);
        using var store = new RedisStateStore(redis.Redis, options);
        var rng = new Random(1);
        var model = new PopulationModel(SmallCatalog, D);
        var batch = Enumerable.Range(0, 40).Select(i => NewUser($"u{i}", 1, rng, D)).ToList();

        var results = await store.ApplyAsync(batch, TestContext.Current.CancellationToken);

        results.ShouldAllBe(r => r.Outcome == ApplyOutcome.Applied);
        foreach (var e in batch) model.Set(e.UserId, e.Original!, e.Cloaked!, e.Classes!);
        var u7 = await store.GetUserAsync("u7", TestContext.Current.CancellationToken);
        u7.ShouldNotBeNull();
        u7.Version.ShouldBe(1);
        u7.EventId.ShouldBe("e-u7-1");
        u7.Original.ShouldBe(batch[7].Original);
        u7.Cloaked.ShouldBe(batch[7].Cloaked);
        u7.Classes.ShouldBe(batch[7].Classes);
        (await store.GetUserAsync("nobody", TestContext.Current.CancellationToken)).ShouldBeNull();
        var snapshot = await store.ReadStatisticsAsync(TestContext.Current.CancellationToken);
        model.ShouldMatch(snapshot);
        snapshot.Version.Sequence.ShouldBe(1);
        snapshot["age"].ClassNames.ShouldBe(["<25", "25-44", "45+"]);
    }

    [Fact]
    public async Task Redelivered_and_older_events_change_nothing()
    {
        var options = Options(redis.NewPrefix("idempotent"), D);
        using var store = new RedisStateStore(redis.Redis, options);
        var ct = TestContext.Current.CancellationToken;
        var rng = new Random(2);
        var v1 = NewUser("alice", 1, rng, D);
        var v2 = new UserStateChange("alice", "e-alice-2", 2) { Cloaked = RandomVector(rng, D), Classes = [1, 2] };
        (await store.ApplyAsync([v1, NewUser("bob", 5, rng, D)], ct)).ShouldAllBe(r => r.Outcome == ApplyOutcome.Applied);
        (await store.ApplyAsync([v2], ct))[0].Outcome.ShouldBe(ApplyOutcome.Applied);
        var before = await SnapshotOfKeysAsync(options.Prefix);
        var version = await store.StatisticsSequenceAsync(ct);

        var again = await store.ApplyAsync(
        [
            v2, // redelivered
            v1, // older
            new UserStateChange("alice", "another-event", 2) { Cloaked = RandomVector(rng, D) }, // same version, other event
            new UserStateChange("bob", "e-bob-4", 4) { Classes = [0, 0] }, // older
        ], ct);

        again.Select(r => r.Outcome).ShouldBe([ApplyOutcome.Duplicate, ApplyOutcome.Stale, ApplyOutcome.Stale, ApplyOutcome.Stale]);
        (await store.StatisticsSequenceAsync(ct)).ShouldBe(version);
        (await SnapshotOfKeysAsync(options.Prefix)).ShouldBe(before);
        var alice = (await store.GetUserAsync("alice", ct))!;
        alice.Version.ShouldBe(2);
        alice.Cloaked.ShouldBe(v2.Cloaked);
        alice.Original.ShouldBe(v1.Original); // unchanged by v2
        alice.Classes.ShouldBe([1, 2]);
    }

    [Fact]
    public async Task Events_of_one_user_in_one_batch_apply_in_order_and_skip_regressions()
    {
        var options = Options(redis.NewPrefix("order"), D);
        using var store = new RedisStateStore(redis.Redis, options);
        var ct = TestContext.Current.CancellationToken;
        var rng = new Random(3);
        var model = new PopulationModel(SmallCatalog, D);
        var create = NewUser("carol", 10, rng, D);
        var move = new UserStateChange("carol", "e11", 11) { Classes = [0, 1] };
        var reembed = new UserStateChange("carol", "e13", 13) { Cloaked = RandomVector(rng, D) };
        var late = new UserStateChange("carol", "e12", 12) { Classes = [1, 1] };

        var results = await store.ApplyAsync([create, move, reembed, late, create], ct);

        results.Select(r => r.Outcome).ShouldBe(
            [ApplyOutcome.Applied, ApplyOutcome.Applied, ApplyOutcome.Applied, ApplyOutcome.Stale, ApplyOutcome.Stale]);
        var carol = (await store.GetUserAsync("carol", ct))!;
        carol.Version.ShouldBe(13);
        carol.EventId.ShouldBe("e13");
        carol.Classes.ShouldBe([0, 1]);
        carol.Cloaked.ShouldBe(reembed.Cloaked);
        model.Set("carol", create.Original!, reembed.Cloaked!, [0, 1]);
        model.ShouldMatch(await store.ReadStatisticsAsync(ct));
    }

    [Fact]
    public async Task Invalid_events_are_rejected_without_touching_anything()
    {
        var options = Options(redis.NewPrefix("invalid"), D);
        using var store = new RedisStateStore(redis.Redis, options);
        var ct = TestContext.Current.CancellationToken;
        var rng = new Random(4);
        var nan = RandomVector(rng, D);
        nan[3] = float.NaN;

        var results = await store.ApplyAsync(
        [
            new UserStateChange("a", "e1", 1) { Original = RandomVector(rng, D), Cloaked = RandomVector(rng, D - 1) },
            new UserStateChange("b", "e1", 1) { Original = RandomVector(rng, D), Cloaked = nan },
            new UserStateChange("c", "e1", 1) { Cloaked = RandomVector(rng, D) }, // new user without original
            new UserStateChange("d", "e1", 1) { Original = RandomVector(rng, D), Cloaked = RandomVector(rng, D), Classes = [2, 0] },
            new UserStateChange("e", "e1", 1) { Original = RandomVector(rng, D), Cloaked = RandomVector(rng, D), Classes = [0] },
            new UserStateChange("", "e1", 1),
            NewUser("ok", 1, rng, D),
        ], ct);

        results.Take(6).ShouldAllBe(r => r.Outcome == ApplyOutcome.Rejected && r.Reason != null);
        results[6].Outcome.ShouldBe(ApplyOutcome.Applied);
        foreach (var id in new[] { "a", "b", "c", "d", "e" })
            (await store.GetUserAsync(id, ct)).ShouldBeNull();
        var model = new PopulationModel(SmallCatalog, D);
        var ok = (await store.GetUserAsync("ok", ct))!;
        model.Set("ok", ok.Original, ok.Cloaked, ok.Classes);
        model.ShouldMatch(await store.ReadStatisticsAsync(ct));
    }

    [Fact]
    public async Task Statistics_version_changes_only_when_the_statistics_change()
    {
        var options = Options(redis.NewPrefix("version"), D);
        using var store = new RedisStateStore(redis.Redis, options);
        var ct = TestContext.Current.CancellationToken;
        var rng = new Random(5);
        var created = NewUser("x", 1, rng, D);
        await store.ApplyAsync([created], ct);
        var v1 = await store.StatisticsSequenceAsync(ct);

        // The same classes and embeddings again under a new version: the state moves on, the statistics do not.
        await store.ApplyAsync([new UserStateChange("x", "e2", 2) { Classes = created.Classes, Cloaked = created.Cloaked }], ct);
        (await store.StatisticsSequenceAsync(ct)).ShouldBe(v1);
        (await store.GetUserAsync("x", ct))!.Version.ShouldBe(2);

        // A new original embedding moves the original statistics, so the version changes too.
        await store.ApplyAsync([new UserStateChange("x", "e3", 3) { Original = RandomVector(rng, D) }], ct);
        var v3 = await store.StatisticsSequenceAsync(ct);
        v3.Epoch.ShouldBe(v1.Epoch);
        v3.Sequence.ShouldBe(v1.Sequence + 1);

        await store.ApplyAsync([new UserStateChange("x", "e4", 4) { Cloaked = RandomVector(rng, D) }], ct);
        var v4 = await store.StatisticsSequenceAsync(ct);
        v4.Sequence.ShouldBe(v3.Sequence + 1);
        (await store.ReadStatisticsAsync(ct)).Version.ShouldBe(v4);
    }

    [Fact]
    public async Task A_new_original_with_the_same_cloaked_embedding_moves_only_the_original_statistics()
    {
        var options = Options(redis.NewPrefix("original-only"), D);
        using var store = new RedisStateStore(redis.Redis, options);
        var ct = TestContext.Current.CancellationToken;
        var rng = new Random(15);
        var model = new PopulationModel(SmallCatalog, D);
        var batch = Enumerable.Range(0, 12).Select(i => new UserStateChange($"u{i}", "e1", 1)
        {
            Original = RandomVector(rng, D),
            Cloaked = RandomVector(rng, D),
            Classes = [i % 2, i % 3],
        }).ToList();
        await store.ApplyAsync(batch, ct);
        foreach (var e in batch) model.Set(e.UserId, e.Original!, e.Cloaked!, e.Classes!);
        var before = await SnapshotOfKeysAsync(options.Prefix);

        var reembedded = new UserStateChange("u4", "e2", 2) { Original = RandomVector(rng, D, offset: 2), Cloaked = batch[4].Cloaked };
        (await store.ApplyAsync([reembedded], ct))[0].Outcome.ShouldBe(ApplyOutcome.Applied);

        var after = await SnapshotOfKeysAsync(options.Prefix);
        var changed = after.Keys.Where(k => !before.TryGetValue(k, out var v) || v != after[k]).Order().ToList();
        // u4 has gender 0 and age 1: exactly those two original classes, the user and the meta key (sequence) change.
        changed.ShouldBe(new[] { $"{options.Prefix}:meta", $"{options.Prefix}:ostats:age:1", $"{options.Prefix}:ostats:gender:0",
            $"{options.Prefix}:user:u4" }.Order().ToList());
        model.Set("u4", reembedded.Original!, batch[4].Cloaked!, batch[4].Classes!);
        model.ShouldMatch(await store.ReadStatisticsAsync(ct));

        // And a re-cloak alone (same original) moves only the served statistics.
        var recloaked = new UserStateChange("u4", "e3", 3) { Cloaked = RandomVector(rng, D) };
        (await store.ApplyAsync([recloaked], ct))[0].Outcome.ShouldBe(ApplyOutcome.Applied);
        var last = await SnapshotOfKeysAsync(options.Prefix);
        last.Keys.Where(k => last[k] != after[k]).Order().ShouldBe(new[] { $"{options.Prefix}:meta", $"{options.Prefix}:stats:age:1",
            $"{options.Prefix}:stats:gender:0", $"{options.Prefix}:user:u4" }.Order());
    }

    [Fact]
    public async Task Both_write_paths_store_identical_bytes()
    {
        var ct = TestContext.Current.CancellationToken;
        var a = Options(redis.NewPrefix("absolute"), D);
        var b = Options(redis.NewPrefix("delta"), D);
        using var absolute = new RedisStateStore(redis.Redis, a);
        using var delta = new RedisStateStore(redis.Redis, b, new RedisStoreSeams { ServerSideArithmetic = true });
        var rng = new Random(6);
        for (var round = 0; round < 5; round++)
        {
            var batch = Enumerable.Range(0, 30).Select(i => new UserStateChange($"u{rng.Next(20)}", $"r{round}-{i}", round * 100 + i)
            {
                Original = RandomVector(rng, D),
                Cloaked = RandomVector(rng, D),
                Classes = RandomClasses(rng, SmallCatalog, 0.2),
            }).ToList();
            (await absolute.ApplyAsync(batch, ct)).ShouldBe(await delta.ApplyAsync(batch, ct));
        }
        absolute.Counters.AbsoluteWrites.ShouldBe(5);
        delta.Counters.DeltaWrites.ShouldBe(5);
        foreach (var population in new[] { "stats", "ostats" })
            foreach (var (attribute, k) in SmallCatalog.SelectMany(s => Enumerable.Range(0, s.ClassCount).Select(k => (s.Name, k))))
            {
                var x = (byte[]?)await redis.Redis.GetDatabase().StringGetAsync($"{a.Prefix}:{population}:{attribute}:{k}");
                var y = (byte[]?)await redis.Redis.GetDatabase().StringGetAsync($"{b.Prefix}:{population}:{attribute}:{k}");
                x.ShouldNotBeNull($"{population}:{attribute}:{k}");
                x.ShouldBe(y, $"{population}:{attribute}:{k}");
            }
    }

    [Fact]
    public async Task A_store_with_another_layout_refuses_the_prefix()
    {
        var ct = TestContext.Current.CancellationToken;
        var prefix = redis.NewPrefix("layout");
        using var first = new RedisStateStore(redis.Redis, Options(prefix, D));
        await first.ApplyAsync([NewUser("u", 1, new Random(7), D)], ct);
        using var other = new RedisStateStore(redis.Redis, Options(prefix, D + 1));

        var error = await Should.ThrowAsync<StateStoreLayoutException>(() => other.InitializeAsync(ct));

        error.Message.ShouldContain("another layout");
    }

    [Fact]
    public async Task A_prefix_written_in_the_previous_store_format_is_refused_with_a_clear_message()
    {
        var ct = TestContext.Current.CancellationToken;
        var options = Options(redis.NewPrefix("format1"), D);
        // What a format-1 store (served statistics only) left behind: its meta hash and a served class.
        var db = redis.Redis.GetDatabase();
        await db.HashSetAsync($"{options.Prefix}:meta",
            [new("layout", "v1-0123456789abcdef01234567"), new("epoch", "e1"), new("seq", "3"), new("dimension", D), new("catalog", "gender=F,M")]);
        await db.StringSetAsync($"{options.Prefix}:stats:gender:0", new byte[8 * AttrCloak.Streaming.Statistics.SufficientStatistics.Length(D)]);
        using var store = new RedisStateStore(redis.Redis, options);

        var error = await Should.ThrowAsync<StateStoreLayoutException>(() => store.ApplyAsync([NewUser("u", 1, new Random(1), D)], ct));

        error.Message.ShouldContain("format 1");
        error.Message.ShouldContain("format 3");
        error.Message.ShouldContain("original embeddings");
        error.Message.ShouldContain("new prefix");
        (await db.KeyExistsAsync($"{options.Prefix}:user:u")).ShouldBeFalse();
        var verifier = new StatisticsVerifier(redis.Redis, options);
        (await Should.ThrowAsync<StateStoreLayoutException>(() => verifier.VerifyAsync(cancellationToken: ct))).Message.ShouldContain("format 1");
        (await Should.ThrowAsync<StateStoreLayoutException>(() => verifier.RebuildAsync(cancellationToken: ct))).Message.ShouldContain("format 1");
        (await db.HashGetAsync($"{options.Prefix}:meta", "seq")).ToString().ShouldBe("3");
    }

    /// <summary>
    /// Replaces the old "a wiped cache is re-created" behaviour (issue 5): carrying on after the meta key vanished built
    /// statistics of a partial population and forgot every user's history. Now every call of the instance that saw the
    /// meta key fails with StateStoreLostException and writes nothing, until something else (bootstrap's own store
    /// instance) re-creates the state; then the same instance carries on under the new epoch.
    /// </summary>
    [Fact]
    public async Task A_wiped_store_says_the_state_is_lost_writes_nothing_and_resumes_once_it_is_rebuilt()
    {
        var ct = TestContext.Current.CancellationToken;
        var options = Options(redis.NewPrefix("wipe"), D);
        using var store = new RedisStateStore(redis.Redis, options);
        var rng = new Random(8);
        var u1 = NewUser("u1", 1, rng, D);
        var cache = new UserCache(100); // the worker's memory of the users, handed over with each batch
        await store.ApplyConsumedAsync([u1], [], cache, ct);
        var before = await store.StatisticsSequenceAsync(ct);
        await DeleteAllKeysAsync(options.Prefix);

        // u1 is in the caller's user cache (no read first): the apply script itself notices the missing meta key.
        var lost = await Should.ThrowAsync<StateStoreLostException>(() => store.ApplyConsumedAsync([NewUser("u1", 2, rng, D)], [], cache, ct));
        lost.Message.ShouldContain($"{options.Prefix}:meta");
        lost.Prefix.ShouldBe(options.Prefix);
        var u2 = NewUser("u2", 1, rng, D);
        await Should.ThrowAsync<StateStoreLostException>(() => store.ApplyAsync([u2], ct)); // via the read
        await Should.ThrowAsync<StateStoreLostException>(() => store.GetUsersAsync(["u1", "u2"], ct));
        await Should.ThrowAsync<StateStoreLostException>(() => store.ReadStatisticsAsync(ct));
        await Should.ThrowAsync<StateStoreLostException>(() => store.StatisticsSequenceAsync(ct));
        await Should.ThrowAsync<StateStoreLostException>(() => store.InitializeAsync(ct));
        (await SnapshotOfKeysAsync(options.Prefix)).ShouldBeEmpty(); // nothing written, no meta key re-created

        // The rebuild (what `attrcloak bootstrap` does): a new store instance creates the meta key and writes users.
        using (var bootstrap = new RedisStateStore(redis.Redis, options))
            (await bootstrap.ApplyAsync([u1], ct))[0].Outcome.ShouldBe(ApplyOutcome.Applied);

        (await store.ApplyAsync([u2], ct))[0].Outcome.ShouldBe(ApplyOutcome.Applied);
        (await store.ApplyConsumedAsync([u1], [], cache, ct))[0].Outcome.ShouldBe(ApplyOutcome.Duplicate); // read again, not from the old cache
        cache.Count.ShouldBe(1);
        var model = new PopulationModel(SmallCatalog, D);
        model.Set("u1", u1.Original!, u1.Cloaked!, u1.Classes!);
        model.Set("u2", u2.Original!, u2.Cloaked!, u2.Classes!);
        var snapshot = await store.ReadStatisticsAsync(ct);
        snapshot.Version.Epoch.ShouldNotBe(before.Epoch);
        model.ShouldMatch(snapshot);
    }

    [Fact]
    public async Task A_new_store_instance_creates_the_meta_key_of_an_empty_prefix()
    {
        var ct = TestContext.Current.CancellationToken;
        var options = Options(redis.NewPrefix("fresh"), D);
        using var store = new RedisStateStore(redis.Redis, options);
        // Never seen: nothing is lost, a new deployment starts empty.
        (await store.GetUsersAsync(["u1"], ct)).ShouldBe([null]);
        (await store.ReadStatisticsAsync(ct)).Version.Sequence.ShouldBe(0);
        (await redis.Redis.GetDatabase().KeyExistsAsync($"{options.Prefix}:meta")).ShouldBeTrue();
    }

    [Fact]
    public async Task Attribute_names_with_key_syntax_stay_inside_their_own_keys()
    {
        var ct = TestContext.Current.CancellationToken;
        var catalog = new AttrCloak.Core.Data.AttributeSpec[] { new("job title: {a}*[b]", ["x:y", "z"]), new("age", ["young", "old"]) };
        var options = Options(redis.NewPrefix("names"), D, catalog);
        using var store = new RedisStateStore(redis.Redis, options);
        var rng = new Random(9);
        var model = new PopulationModel(catalog, D);
        var batch = Enumerable.Range(0, 12).Select(i => NewUser($"u{i}", 1, rng, D, catalog)).ToList();
        await store.ApplyAsync(batch, ct);
        foreach (var e in batch) model.Set(e.UserId, e.Original!, e.Cloaked!, e.Classes!);

        model.ShouldMatch(await store.ReadStatisticsAsync(ct));
        (await new StatisticsVerifier(redis.Redis, options).VerifyAsync(cancellationToken: ct)).IsConsistent.ShouldBeTrue();
        var keys = (await ScanAsync(redis.Redis.GetDatabase(), options.Prefix)).Select(k => k.ToString()).ToList();
        keys.ShouldContain($"{options.Prefix}:stats:job%20title%3A%20%7Ba%7D%2A%5Bb%5D:0");
        keys.ShouldContain($"{options.Prefix}:ostats:job%20title%3A%20%7Ba%7D%2A%5Bb%5D:0");
        keys.ShouldAllBe(k => k.Count(c => c == ':') <= 3 + options.Prefix.Count(c => c == ':'));
    }

    internal static async Task<SortedDictionary<string, string>> SnapshotOfKeysAsync(string prefix, IConnectionMultiplexer redis)
    {
        var db = redis.GetDatabase();
        // Sorted: SCAN's order may change between two scans of the same keys (the snapshots are compared in order).
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var key in await ScanAsync(db, prefix))
        {
            var type = await db.KeyTypeAsync(key);
            result[key!] = type switch
            {
                RedisType.String => Convert.ToHexString((byte[])(await db.StringGetAsync(key))!),
                RedisType.Hash => string.Join('|', (await db.HashGetAllAsync(key)).OrderBy(e => (string)e.Name!)
                    .Select(e => $"{e.Name}={Convert.ToHexString((byte[])e.Value!)}")),
                _ => type.ToString(),
            };
        }
        return result;
    }

    internal static async Task<List<RedisKey>> ScanAsync(IDatabase db, string prefix)
    {
        var keys = new List<RedisKey>();
        RedisValue cursor = 0;
        do
        {
            var page = (RedisResult[])(await db.ExecuteAsync("SCAN", cursor, "MATCH", StoreLayout.EscapeGlob(prefix) + ":*", "COUNT", 1000))!;
            cursor = (RedisValue)page[0];
            keys.AddRange((RedisKey[])page[1]!);
        }
        while ((string?)cursor != "0");
        return keys;
    }

    private Task<SortedDictionary<string, string>> SnapshotOfKeysAsync(string prefix) => SnapshotOfKeysAsync(prefix, redis.Redis);

    private async Task DeleteAllKeysAsync(string prefix)
    {
        var db = redis.Redis.GetDatabase();
        foreach (var key in await ScanAsync(db, prefix)) await db.KeyDeleteAsync(key);
    }
}
