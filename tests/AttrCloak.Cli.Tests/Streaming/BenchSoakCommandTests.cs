using System.Text.Json;
using AttrCloak.Cli.Commands.Streaming;
using StackExchange.Redis;

namespace AttrCloak.Cli.Tests.Streaming;

/// <summary>
/// `attrcloak bench soak` through the real CLI: a short real run (real GuardPipeline, the fixture's redis-server,
/// librdkafka mock cluster, shadow audits) and its output, samples and exit code. The verdict's logic on synthetic
/// series is tested in AttrCloak.Streaming.Tests (SoakVerdictTests).
/// </summary>
public sealed class BenchSoakCommandTests(RedisServerFixture redis)
{
    [Fact]
    public async Task A_short_real_soak_samples_on_schedule_audits_drains_and_passes()
    {
        using var tmp = new TempDirectory();
        var json = tmp["soak.json"];
        var plot = tmp["soak.png"];
        // Memory slopes are meaningless over 15 s (it is all warm-up) and this machine is shared: the memory and lag
        // limits are wide here, and so is the privacy bar (a 500-user audit sample reads a few points of noise); what this
        // test holds is the mechanics (pacing, sampling, audits, drain, verdict, exit code).
        var (code, output) = await CliRunner.RunAsync("bench", "soak", "--duration", "15s", "--rate", "300", "--users", "500",
            "--audit-every", "5s", "--attackers", "lr", "--sample-every", "1s", "--redis", $"127.0.0.1:{redis.Port},allowAdmin=true",
            "--max-heap-slope", "100000", "--max-native-slope", "100000", "--max-lag-seconds", "20", "--max-audit-advantage", "1", "--json", json, "--plot", plot);

        code.ShouldBe(0, output);
        output.ShouldContain("bench soak: 15 s at 300 events/s over 500 users");
        output.ShouldContain("thresholds: over the second half: max lag <= 6,000 events (20 s of input)");
        output.ShouldContain("managed heap slope <= 100000 MiB/min");
        output.ShouldContain("soak PASSED");
        output.ShouldNotContain("FAIL", Case.Sensitive); // no failed check (the thresholds line says "failed" in lower case)
        foreach (var check in new[] { "errors", "dead letters", "stale events", "rate held", "lag bounded", "lag trend", "managed heap flat", "native memory flat", "audits on schedule", "privacy held" })
            output.ShouldContain(check);
        output.ShouldContain("latest shadow audit");
        output.ShouldContain("seeded 500 users with batch AttrCloak-DF in "); // as `attrcloak bootstrap` seeds production

        using var document = JsonDocument.Parse(await File.ReadAllTextAsync(json, TestContext.Current.CancellationToken));
        var root = document.RootElement;
        root.GetProperty("passed").GetBoolean().ShouldBeTrue();
        root.GetProperty("seeding").GetProperty("method").GetString().ShouldBe("batch AttrCloak-DF");
        root.GetProperty("seeding").GetProperty("users").GetInt32().ShouldBe(500);
        var samples = root.GetProperty("samples").EnumerateArray().ToArray();
        // One per second for 15 s (a loaded machine may drop one), plus the final one after the drain.
        samples.Length.ShouldBeInRange(14, 17, output);
        var elapsed = samples.Select(s => s.GetProperty("ElapsedSeconds").GetDouble()).ToArray();
        elapsed.ShouldBe(elapsed.Order().ToArray());
        foreach (var s in samples)
        {
            s.GetProperty("Errors").GetInt64().ShouldBe(0);
            s.GetProperty("DeadLetters").GetInt64().ShouldBe(0);
            s.GetProperty("RssBytes").GetInt64().ShouldBeGreaterThan(0);
            s.GetProperty("ManagedHeapBytes").GetInt64().ShouldBeGreaterThan(0);
        }
        var last = samples[^1];
        var produced = last.GetProperty("Produced").GetInt64();
        // Fixed pacing: 300/s for 15 s, not a burst and not short of it.
        produced.ShouldBeInRange(300 * 15 * 9 / 10, 300 * 16);
        last.GetProperty("Consumed").GetInt64().ShouldBe(produced, "the backlog is drained before the last sample");
        last.GetProperty("Lag").GetInt64().ShouldBe(0);
        last.GetProperty("AuditRuns").GetInt64().ShouldBeGreaterThanOrEqualTo(2);
        double.IsFinite(last.GetProperty("RedisUsedBytes").GetDouble()).ShouldBeTrue();
        var mix = root.GetProperty("mix");
        mix.GetProperty("UpdateAttributes").GetInt64().ShouldBeGreaterThan(0);
        mix.GetProperty("Forgets").GetInt64().ShouldBeGreaterThan(0);
        (mix.GetProperty("EmbeddingUpdates").GetInt64() + mix.GetProperty("UpdateAttributes").GetInt64() + mix.GetProperty("OptOuts").GetInt64()
            + mix.GetProperty("Forgets").GetInt64() + mix.GetProperty("Reappearances").GetInt64()).ShouldBe(produced);

        new FileInfo(plot).Length.ShouldBeGreaterThan(10_000);
        // The run's key prefix is gone afterwards.
        var server = redis.Redis.GetServers()[0];
        (await server.KeysAsync(pattern: "attrcloak-bench-*").CountAsync(TestContext.Current.CancellationToken)).ShouldBe(0);
    }

    [Theory]
    [InlineData("--duration", "ten minutes", "--duration must be a time")]
    [InlineData("--duration", "2s", "--duration must be a time of at least 5s")]
    [InlineData("--attackers", "lr,oracle", "--attackers must name attackers of")]
    [InlineData("--sample-every", "10m", "--sample-every must be a time between 200ms and half the duration")]
    [InlineData("--rate", "0", "--rate must be in 1..1000000")]
    public async Task Bad_options_get_one_clear_line(string option, string value, string expected)
    {
        var (code, output) = await CliRunner.RunAsync("bench", "soak", option, value);
        code.ShouldNotBe(0);
        output.ShouldContain(expected);
        output.ShouldNotContain("   at ");
    }

    [Theory]
    [InlineData("90s", 90)]
    [InlineData("10m", 600)]
    [InlineData("1h", 3600)]
    [InlineData("1m30s", 90)]
    [InlineData("500ms", 0.5)]
    [InlineData("45", 45)]
    public void Times_parse(string text, double seconds)
    {
        BenchSoakCommand.TryParseTime(text, out var value).ShouldBeTrue();
        value.TotalSeconds.ShouldBe(seconds);
    }

    [Theory]
    [InlineData("")]
    [InlineData("10x")]
    [InlineData("m")]
    [InlineData("-5s")]
    public void Bad_times_do_not_parse(string text) => BenchSoakCommand.TryParseTime(text, out _).ShouldBeFalse();
}
