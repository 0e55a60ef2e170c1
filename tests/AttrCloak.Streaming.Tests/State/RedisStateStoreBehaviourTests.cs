using System.Runtime.InteropServices;
using System.Text;
using StackExchange.Redis;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Tests.State;

/// <summary>The shared store behaviour against <see cref="RedisStateStore"/> on the real throw-away redis-server.</summary>
public sealed class RedisStateStoreBehaviourTests(RedisServerFixture redis) : StateStoreBehaviour
{
    protected override StateStoreOptions NewOptions()
    {
        var options = base.NewOptions();
        options.Prefix = redis.NewPrefix("behaviour");
        return options;
    }

    protected override IStateStore NewStore(StateStoreOptions options) => new RedisStateStore(redis.Redis, options);

    protected override Task<StatisticsVerificationReport> VerifyAsync(IStateStore store, StateStoreOptions options) =>
        new StatisticsVerifier(redis.Redis, options).VerifyAsync(cancellationToken: TestContext.Current.CancellationToken);

    protected override async Task CorruptAsync(IStateStore store, StateStoreOptions options, StatisticsPopulation population,
        int attribute, int cls, int index, double delta)
    {
        // The documented key layout: stats = served, ostats = original; float64 little-endian.
        var key = $"{options.Prefix}:{(population == StatisticsPopulation.Served ? "stats" : "ostats")}:{options.Attributes[attribute].Name}:{cls}";
        var db = redis.Redis.GetDatabase();
        var bytes = (byte[])(await db.StringGetAsync(key))!;
        var values = MemoryMarshal.Cast<byte, double>(bytes.AsSpan());
        values[index] += delta;
        await db.StringSetAsync(key, bytes);
    }

    protected override async Task AssertNoTraceAsync(IStateStore store, StateStoreOptions options, string userId, IReadOnlyList<float[]> embeddings)
    {
        var db = redis.Redis.GetDatabase();
        var patterns = embeddings.Select(e => MemoryMarshal.AsBytes(e.AsSpan()).ToArray()).Append(Encoding.UTF8.GetBytes(userId)).ToList();
        var keys = new List<RedisKey>();
        RedisValue cursor = 0;
        do
        {
            var page = (RedisResult[])(await db.ExecuteAsync("SCAN", cursor, "MATCH", options.Prefix + ":*", "COUNT", 1000))!;
            cursor = (RedisValue)page[0];
            keys.AddRange((RedisKey[])page[1]!);
        }
        while ((string?)cursor != "0");
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
