using System.Runtime.InteropServices;
using System.Text;
using StackExchange.Redis;
using static AttrCloak.Tools.Samples.Streaming.StoreSamples;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Redis.Tests;

public sealed class ForgetTests(RedisServerFixture redis)
{
    private const int D = 8;
    private const string Target = "user-forget-me-4711";

    [Fact]
    public async Task Forget_leaves_no_key_or_value_holding_the_users_data()
    {
        var ct = TestContext.Current.CancellationToken;
        var options = Options(redis.NewPrefix("forget"), D);
        using var store = new RedisStateStore(redis.Redis, options);
        var rng = new Random(11);
        var model = new PopulationModel(SmallCatalog, D);
        var others = Enumerable.Range(0, 30).Select(i => NewUser($"other{i}", 1, rng, D)).ToList();
        foreach (var o in others) model.Set(o.UserId, o.Original!, o.Cloaked!, o.Classes!);
        var created = new UserStateChange(Target, "e-create", 1)
        {
            Original = RandomVector(rng, D, offset: 7.25),
            Cloaked = RandomVector(rng, D, offset: -3.5),
            Classes = [1, 2],
        };
        var moved = new UserStateChange(Target, "e-move", 2) { Cloaked = RandomVector(rng, D, offset: 2.5), Classes = [0, 2] };
        await store.ApplyAsync([.. others, created], ct);
        await store.ApplyAsync([moved], ct);
        var secrets = new[] { created.Original!, created.Cloaked!, moved.Cloaked! };

        var forget = UserStateChange.ForgetUser(Target, "e-forget", 3);
        (await store.ApplyAsync([forget], ct))[0].Outcome.ShouldBe(ApplyOutcome.Applied);

        (await store.GetUserAsync(Target, ct)).ShouldBeNull();
        await AssertNoTraceAsync(options.Prefix, secrets);
        model.ShouldMatch(await store.ReadStatisticsAsync(ct)); // served and original contributions both removed
        (await new StatisticsVerifier(redis.Redis, options).VerifyAsync(cancellationToken: ct)).IsConsistent.ShouldBeTrue();

        // The tombstone (a keyed hash, with a TTL) keeps late redeliveries from resurrecting the user.
        var tombs = (await RedisStateStoreTests.ScanAsync(redis.Redis.GetDatabase(), options.Prefix)).Where(k => k.ToString().Contains(":tomb:")).ToList();
        tombs.Count.ShouldBe(1);
        (await redis.Redis.GetDatabase().KeyTimeToLiveAsync(tombs[0])).ShouldNotBeNull();
        var late = await store.ApplyAsync([forget, moved, created, new UserStateChange(Target, "e-late", 3) { Classes = [1, 1] }], ct);
        late.Select(r => r.Outcome).ShouldBe([ApplyOutcome.Duplicate, ApplyOutcome.Stale, ApplyOutcome.Stale, ApplyOutcome.Stale]);
        (await store.GetUserAsync(Target, ct)).ShouldBeNull();
        await AssertNoTraceAsync(options.Prefix, secrets);

        // A newer event re-registers the user. The tombstone stays until it expires: the deployment's model generations
        // share it, and another generation may still hold an older event of the user that must stay stale.
        var again = new UserStateChange(Target, "e-again", 4) { Original = RandomVector(rng, D), Cloaked = RandomVector(rng, D), Classes = [0, 0] };
        (await store.ApplyAsync([again], ct))[0].Outcome.ShouldBe(ApplyOutcome.Applied);
        (await RedisStateStoreTests.ScanAsync(redis.Redis.GetDatabase(), options.Prefix)).Count(k => k.ToString().Contains(":tomb:")).ShouldBe(1);
        (await store.ApplyAsync([forget], ct))[0].Outcome.ShouldBe(ApplyOutcome.Stale); // the old forget is older than the new state
        model.Set(Target, again.Original!, again.Cloaked!, again.Classes!);
        model.ShouldMatch(await store.ReadStatisticsAsync(ct));
    }

    [Fact]
    public async Task Forgetting_an_unknown_user_still_blocks_its_older_events()
    {
        var ct = TestContext.Current.CancellationToken;
        var options = Options(redis.NewPrefix("forget-unknown"), D);
        using var store = new RedisStateStore(redis.Redis, options);
        var rng = new Random(12);

        var results = await store.ApplyAsync([UserStateChange.ForgetUser("ghost", "f", 9), NewUser("ghost", 8, rng, D)], ct);

        results.Select(r => r.Outcome).ShouldBe([ApplyOutcome.Applied, ApplyOutcome.Stale]);
        (await store.GetUserAsync("ghost", ct)).ShouldBeNull();
        (await store.ReadStatisticsAsync(ct)).Attributes.ShouldAllBe(a => a.GlobalCount == 0);
    }

    [Fact]
    public async Task Forget_within_a_batch_after_updates_removes_exactly_the_stored_contribution()
    {
        var ct = TestContext.Current.CancellationToken;
        var options = Options(redis.NewPrefix("forget-batch"), D);
        using var store = new RedisStateStore(redis.Redis, options);
        var rng = new Random(13);
        var model = new PopulationModel(SmallCatalog, D);
        var keep = NewUser("keep", 1, rng, D);
        model.Set("keep", keep.Original!, keep.Cloaked!, keep.Classes!);
        await store.ApplyAsync([keep, NewUser("gone", 1, rng, D)], ct);

        await store.ApplyAsync(
        [
            new UserStateChange("gone", "e2", 2) { Cloaked = RandomVector(rng, D), Classes = [0, 0] },
            UserStateChange.ForgetUser("gone", "e3", 3),
        ], ct);

        model.ShouldMatch(await store.ReadStatisticsAsync(ct));
        await AssertNoTraceAsync(options.Prefix, [], "gone");
    }

    /// <summary>SCAN over the whole prefix: no key name contains the user id, no value contains it or the embeddings' bytes.</summary>
    private async Task AssertNoTraceAsync(string prefix, float[][] embeddings, string userId = Target)
    {
        var db = redis.Redis.GetDatabase();
        var id = Encoding.UTF8.GetBytes(userId);
        var patterns = embeddings.Select(e => MemoryMarshal.AsBytes(e.AsSpan()).ToArray()).Append(id).ToList();
        var keys = await RedisStateStoreTests.ScanAsync(db, prefix);
        keys.ShouldNotBeEmpty();
        foreach (var key in keys)
        {
            key.ToString().ShouldNotContain(userId);
            List<byte[]> values = await db.KeyTypeAsync(key) switch
            {
                RedisType.String => [(byte[])(await db.StringGetAsync(key))!],
                RedisType.Hash => (await db.HashGetAllAsync(key)).SelectMany(e => new[] { (byte[])e.Name!, (byte[])e.Value! }).ToList(),
                var other => throw new ShouldAssertException($"unexpected key type {other}"),
            };
            foreach (var value in values)
                foreach (var pattern in patterns)
                    value.AsSpan().IndexOf(pattern).ShouldBe(-1, $"key {key} holds data of the forgotten user");
        }
    }
}
