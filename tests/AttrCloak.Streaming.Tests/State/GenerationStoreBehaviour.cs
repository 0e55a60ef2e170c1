using System.Security.Cryptography;
using AttrCloak.Core.Data;
using AttrCloak.Streaming.State;
using StackExchange.Redis;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.Generations;

namespace AttrCloak.Streaming.Tests.State;

/// <summary>
/// What every <see cref="IGenerationStore"/> must do, against Redis (real redis-server) and in process: the registry
/// written only over the version it was read at, generations apart from each other, forget tombstones shared.
/// </summary>
public abstract class GenerationStoreBehaviour
{
    protected const int D = 4;
    protected static readonly AttributeSpec[] Catalog = [new("gender", ["F", "M"])];
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected virtual StateStoreOptions NewOptions() => new() { Dimension = D, Attributes = Catalog, TombstoneSecret = RandomNumberGenerator.GetBytes(32) };

    protected abstract IGenerationStore NewStore(StateStoreOptions options);

    protected static UserStateChange User(string id, long version, float value, int gender = 0) =>
        new(id, $"{id}-v{version}", version) { Original = [value, 0, 0, 0], Cloaked = [0, value, 0, 0], Classes = [gender] };

    [Fact]
    public async Task The_registry_is_written_only_over_the_version_it_was_read_at()
    {
        using var store = NewStore(NewOptions());
        var empty = await store.ReadRegistryAsync(Ct);
        empty.Version.ShouldBe(0);
        (await store.TryWriteRegistryAsync(0, empty.WithCreated("A", T0), Ct)).ShouldBeTrue();
        (await store.TryWriteRegistryAsync(0, empty.WithCreated("B", T0), Ct)).ShouldBeFalse("someone wrote version 1 meanwhile");
        var one = await store.ReadRegistryAsync(Ct);
        one.Version.ShouldBe(1);
        (await store.RegistryVersionAsync(Ct)).ShouldBe(1);
        one.Serving!.ModelVersion.ShouldBe("A");
        one.Serving.CreatedAt.ShouldBe(T0);

        var after = await store.UpdateRegistryAsync(r => r.WithCreated("B", T0.AddMinutes(1)), Ct);
        after.Version.ShouldBe(2);
        var read = await store.ReadRegistryAsync(Ct);
        read.Generations.Select(g => (g.ModelVersion, g.State)).ShouldBe([("A", GenerationState.Serving), ("B", GenerationState.Filling)]);
        read.Find("B")!.ShouldBeEquivalentTo(after.Find("B"));
    }

    [Fact]
    public async Task Generations_keep_their_users_and_statistics_apart_but_share_forget_tombstones()
    {
        using var store = NewStore(NewOptions());
        var a = store.StoreOf("A");
        var b = store.StoreOf("B");
        store.StoreOf("A").ShouldBeSameAs(a);
        (await a.ApplyAsync([User("u", 1, 1f), User("v", 1, 2f, 1)], Ct)).ShouldAllBe(r => r.Outcome == ApplyOutcome.Applied);
        (await b.ApplyAsync([User("u", 2, 5f)], Ct))[0].Outcome.ShouldBe(ApplyOutcome.Applied);

        (await a.GetUserAsync("u", Ct))!.Original[0].ShouldBe(1f);
        (await b.GetUserAsync("u", Ct))!.Original[0].ShouldBe(5f);
        (await b.GetUserAsync("v", Ct)).ShouldBeNull();
        (await a.CountUsersAsync(Ct)).ShouldBe(2);
        (await b.CountUsersAsync(Ct)).ShouldBe(1);
        (await a.ReadStatisticsAsync(Ct)).Originals[0].GlobalMean[0].ShouldBe(1.5, 1e-12);
        (await b.ReadStatisticsAsync(Ct)).Originals[0].GlobalMean[0].ShouldBe(5, 1e-12);

        // A forget in one generation keeps an older event of the user out of every other one.
        (await a.ApplyAsync([UserStateChange.ForgetUser("v", "v-forget", 5)], Ct))[0].Outcome.ShouldBe(ApplyOutcome.Applied);
        (await b.ApplyAsync([User("v", 4, 9f, 1)], Ct))[0].Outcome.ShouldBe(ApplyOutcome.Stale);
        (await b.GetUserAsync("v", Ct)).ShouldBeNull();
        (await b.ApplyAsync([User("v", 6, 9f, 1)], Ct))[0].Outcome.ShouldBe(ApplyOutcome.Applied); // newer: a new registration
        (await a.ApplyAsync([User("v", 3, 9f, 1)], Ct))[0].Outcome.ShouldBe(ApplyOutcome.Stale, "the tombstone stays for the other generations");
    }

    [Fact]
    public async Task A_retired_generations_store_is_gone_and_the_others_are_untouched()
    {
        using var store = NewStore(NewOptions());
        var a = store.StoreOf("A");
        await a.ApplyAsync([User("u", 1, 1f)], Ct);
        await store.StoreOf("B").ApplyAsync([User("u", 2, 2f)], Ct);
        await a.DeleteAllAsync(Ct);
        await Should.ThrowAsync<StateStoreLostException>(() => a.GetUsersAsync(["u"], Ct)); // a writer still holding it fails whole
        store.Release("A");
        (await store.StoreOf("B").GetUserAsync("u", Ct))!.Original[0].ShouldBe(2f);
    }
}

/// <summary><see cref="GenerationStoreBehaviour"/> against <see cref="RedisGenerationStore"/>, plus what only Redis has.</summary>
public sealed class RedisGenerationStoreBehaviourTests(RedisServerFixture redis) : GenerationStoreBehaviour
{
    protected override StateStoreOptions NewOptions()
    {
        var options = base.NewOptions();
        options.Prefix = redis.NewPrefix("generations");
        return options;
    }

    protected override IGenerationStore NewStore(StateStoreOptions options) => new RedisGenerationStore(redis.Redis, options);

    private async Task<List<string>> KeysAsync(string pattern)
    {
        var keys = new List<string>();
        await foreach (var key in redis.Redis.GetServers()[0].KeysAsync(pattern: pattern)) keys.Add(key!);
        return keys;
    }

    [Fact]
    public async Task Retiring_deletes_every_key_of_the_generation_and_nothing_else()
    {
        var options = NewOptions();
        using var store = new RedisGenerationStore(redis.Redis, options);
        await store.UpdateRegistryAsync(r => r.WithCreated("A", DateTimeOffset.UtcNow), Ct);
        await store.StoreOf("A").ApplyAsync([User("u", 1, 1f), User("w", 1, 3f, 1)], Ct);
        await store.StoreOf("A").ApplyAsync([UserStateChange.ForgetUser("w", "w-f", 2)], Ct);
        await store.StoreOf("A:B").ApplyAsync([User("u", 2, 2f)], Ct); // a model version that would collide without escaping
        (await KeysAsync($"{options.Prefix}:g:A:*")).ShouldNotBeEmpty();

        await store.StoreOf("A").DeleteAllAsync(Ct);
        (await KeysAsync($"{options.Prefix}:g:A:*")).ShouldBeEmpty();
        (await KeysAsync($"{options.Prefix}:g:A%3AB:*")).ShouldNotBeEmpty();
        (await KeysAsync($"{options.Prefix}:tomb:*")).Count.ShouldBe(1); // the deployment's tombstone outlives the generation
        (await KeysAsync($"{options.Prefix}:generations")).ShouldHaveSingleItem();
        await Should.ThrowAsync<StateStoreLostException>(() => store.StoreOf("A").GetUsersAsync(["u"], Ct));
    }

    [Fact]
    public async Task A_model_version_cannot_break_the_key_structure()
    {
        RedisGenerationStore.GenerationPrefix("{dep}", "a:b{c}*?[x] y").ShouldBe("{dep}:g:a%3Ab%7Bc%7D%2A%3F%5Bx%5D%20y");
        var options = NewOptions();
        using var store = new RedisGenerationStore(redis.Redis, options);
        await store.StoreOf("a:b{c}*?[x] y").ApplyAsync([User("u", 1, 1f)], Ct);
        (await store.StoreOf("a:b{c}*?[x] y").GetUserAsync("u", Ct)).ShouldNotBeNull();
        (await store.StoreOf("a").GetUserAsync("u", Ct)).ShouldBeNull();
    }

    [Fact]
    public async Task A_prefix_of_the_format_before_generations_is_refused_and_a_vanished_registry_is_a_lost_state()
    {
        var options = NewOptions();
        var db = redis.Redis.GetDatabase();
        await db.HashSetAsync(options.Prefix + ":meta", [new HashEntry("layout", "v2-0123456789abcdef01234567")]);
        using (var old = new RedisGenerationStore(redis.Redis, options))
        {
            var error = await Should.ThrowAsync<StateStoreLayoutException>(() => old.ReadRegistryAsync(Ct));
            error.Message.ShouldContain("earlier format");
            error.Message.ShouldContain("new prefix");
        }
        await db.KeyDeleteAsync(options.Prefix + ":meta");

        using var store = new RedisGenerationStore(redis.Redis, options);
        await store.UpdateRegistryAsync(r => r.WithCreated("A", DateTimeOffset.UtcNow), Ct);
        await db.KeyDeleteAsync(options.Prefix + ":generations"); // Redis lost the state
        (await Should.ThrowAsync<StateStoreLostException>(() => store.ReadRegistryAsync(Ct))).Message.ShouldContain(":generations' vanished");
        await Should.ThrowAsync<StateStoreLostException>(() => store.RegistryVersionAsync(Ct));
        // A new instance (bootstrap) may create it again.
        using var fresh = new RedisGenerationStore(redis.Redis, options);
        (await fresh.ReadRegistryAsync(Ct)).Version.ShouldBe(0);
    }
}

/// <summary><see cref="GenerationStoreBehaviour"/> against <see cref="InMemoryGenerationStore"/>.</summary>
public sealed class InMemoryGenerationStoreBehaviourTests : GenerationStoreBehaviour
{
    protected override IGenerationStore NewStore(StateStoreOptions options) => new InMemoryGenerationStore(options);
}
