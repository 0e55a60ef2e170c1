using StackExchange.Redis;
using static AttrCloak.Cli.Tests.Streaming.StreamingTestSupport;
using AttrCloak.Streaming.Redis;

namespace AttrCloak.Cli.Tests.Streaming;

/// <summary>`attrcloak stats verify` / `stats rebuild` against a real redis-server.</summary>
public sealed class StatsCommandTests(RedisServerFixture redis)
{
    private const int Dimension = 4;

    [Fact]
    public async Task Verify_passes_on_a_consistent_store_fails_on_a_corrupted_one_and_rebuild_repairs_it()
    {
        using var tmp = new TempDirectory();
        var prefix = redis.NewPrefix("stats");
        await SeedAsync(redis.Redis, prefix, Dimension, users: 60);
        var config = WriteConfig(tmp["appsettings.json"], $"127.0.0.1:{redis.Port}", prefix, Dimension);

        var (consistent, output) = await CliRunner.RunAsync("stats", "verify", "--config", config);
        consistent.ShouldBe(0, output);
        output.ShouldContain("60 users scanned");
        output.ShouldContain("consistent: all 18 class statistics (served and original embeddings) agree");
        output.ShouldNotContain("DIFFERS");

        // Corrupt one class: its stored count (the first float64 of the value) gains one user.
        var key = $"{GenerationPrefix(prefix)}:stats:gender:1";
        var bytes = (byte[])(await redis.Redis.GetDatabase().StringGetAsync(key))!;
        var count = BitConverter.ToDouble(bytes, 0);
        BitConverter.GetBytes(count + 1).CopyTo(bytes, 0);
        await redis.Redis.GetDatabase().StringSetAsync(key, bytes);

        var (inconsistent, corrupted) = await CliRunner.RunAsync("stats", "verify", "--config", config);
        inconsistent.ShouldBe(1, corrupted);
        corrupted.ShouldContain("DIFFERS");
        corrupted.ShouldContain("1 (M)");
        corrupted.ShouldContain("+1");
        corrupted.ShouldContain("`attrcloak stats rebuild` repairs them");

        var (rebuilt, rebuildOutput) = await CliRunner.RunAsync("stats", "rebuild", "--config", config);
        rebuilt.ShouldBe(0, rebuildOutput);
        rebuildOutput.ShouldContain("repaired");
        rebuildOutput.ShouldContain("1 of 18 class statistics differed");
        BitConverter.ToDouble((byte[])(await redis.Redis.GetDatabase().StringGetAsync(key))!, 0).ShouldBe(count);

        var (again, againOutput) = await CliRunner.RunAsync("stats", "verify", "--config", config);
        again.ShouldBe(0, againOutput);
        (await new StatisticsVerifier(redis.Redis, GenerationStoreOptions(prefix, Dimension)).VerifyAsync(cancellationToken: TestContext.Current.CancellationToken)).IsConsistent.ShouldBeTrue();
    }

    [Fact]
    public async Task Malformed_statistics_value_is_reported_as_such()
    {
        using var tmp = new TempDirectory();
        var prefix = redis.NewPrefix("malformed");
        await SeedAsync(redis.Redis, prefix, Dimension, users: 30);
        await redis.Redis.GetDatabase().StringSetAsync($"{GenerationPrefix(prefix)}:stats:age:2", "garbage");
        var (code, output) = await CliRunner.RunAsync("stats", "verify", "--redis", $"127.0.0.1:{redis.Port}", "--prefix", prefix,
            "--config", WriteConfig(tmp["appsettings.json"], redis: null, prefix: null, Dimension));
        code.ShouldBe(1, output);
        output.ShouldContain("malformed");
    }

    [Fact]
    public async Task A_prefix_of_another_layout_is_refused()
    {
        using var tmp = new TempDirectory();
        var prefix = redis.NewPrefix("layout");
        await SeedAsync(redis.Redis, prefix, Dimension, users: 5);
        var config = WriteConfig(tmp["appsettings.json"], $"127.0.0.1:{redis.Port}", prefix, dimension: Dimension + 1);
        var (code, output) = await CliRunner.RunAsync("stats", "verify", "--config", config);
        ShouldBeOneClearError(code, output, "another layout");
        (await redis.Redis.GetDatabase().HashGetAsync($"{GenerationPrefix(prefix)}:meta", "dimension")).ShouldBe((RedisValue)Dimension);
    }
}
