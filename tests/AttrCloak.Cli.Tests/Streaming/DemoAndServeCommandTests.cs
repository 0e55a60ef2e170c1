using System.Text.RegularExpressions;

namespace AttrCloak.Cli.Tests.Streaming;

/// <summary>`attrcloak demo` end to end (mock Kafka, in-process store or the real redis-server) and `serve`'s start-up checks.</summary>
public sealed partial class DemoAndServeCommandTests(RedisServerFixture redis)
{
    [Fact]
    public async Task Demo_streams_every_user_through_the_guard_and_prints_the_before_after_table()
    {
        var (code, output) = await CliRunner.RunAsync("demo", "--synthetic-users", "300", "--rate", "0", "--attackers", "lr",
            "--forget-fraction", "0.1", "--audit-interval", "1");
        TestContext.Current.TestOutputHelper?.WriteLine(output);
        code.ShouldBe(0, output);
        output.ShouldContain("an in-process store");
        output.ShouldContain("mock cluster at 127.0.0.1:");
        output.ShouldContain("bootstrapped 150 users");
        // Every streamed event was processed; ~10% of the 150 streamed users were forgotten (a tombstone each).
        var processed = Processed().Match(output);
        processed.Success.ShouldBeTrue(output);
        processed.Groups["processed"].Value.ShouldBe(processed.Groups["streamed"].Value);
        int.Parse(processed.Groups["tombstones"].Value).ShouldBeGreaterThan(0);
        processed.Groups["dead"].Value.ShouldBe("0");
        var served = int.Parse(StreamedRow().Match(output).Groups["users"].Value);
        served.ShouldBe(300 - int.Parse(processed.Groups["tombstones"].Value));
        output.ShouldContain("Batch AttrCloak-DF (all users)");
        output.ShouldContain("streamed vs batch AttrCloak-DF");
        output.ShouldMatch(@"worst \|advantage\| [+-]?[0-9.]+ at most"); // issue 13's headline, both directions
        output.ShouldContain("(|adv| ");
    }

    [Fact]
    public async Task Demo_uses_a_configured_redis_and_leaves_no_key_behind()
    {
        var (code, output) = await CliRunner.RunAsync("demo", "--synthetic-users", "200", "--rate", "0", "--attackers", "lr",
            "--redis", $"127.0.0.1:{redis.Port}");
        code.ShouldBe(0, output);
        output.ShouldContain($"Redis at 127.0.0.1:{redis.Port}");
        var server = redis.Redis.GetServers().Single();
        server.Keys(pattern: "attrcloak-demo-*").ShouldBeEmpty();
    }

    [Fact]
    public async Task Serve_without_brokers_or_redis_says_what_is_missing()
    {
        using var tmp = new TempDirectory();
        var config = StreamingTestSupport.WriteConfig(tmp["appsettings.json"], redis: null, prefix: null, dimension: 8);
        var (code, output) = await CliRunner.RunAsync("serve", "--config", config);
        code.ShouldBe(2, output);
        output.ShouldContain("error: no Kafka brokers configured");
        (code, output) = await CliRunner.RunAsync("serve", "--config", config, "--brokers", "127.0.0.1:1");
        code.ShouldBe(2, output);
        output.ShouldContain("error: no Redis configured");
        output.ShouldNotContain("   at ");
    }

    [GeneratedRegex(@"streamed (?<streamed>\d+) events in [\d.]+ s; the worker processed (?<processed>\d+) \((?<cloaked>\d+) cloaked outputs, (?<tombstones>\d+) tombstones, (?<dead>\d+) dead letters\)")]
    private static partial Regex Processed();

    [GeneratedRegex(@"Streamed through the guard\s*│\s*(?<users>\d+)")]
    private static partial Regex StreamedRow();
}
