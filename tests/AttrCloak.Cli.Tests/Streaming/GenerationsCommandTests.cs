using static AttrCloak.Cli.Tests.Streaming.StreamingTestSupport;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.Generations;

namespace AttrCloak.Cli.Tests.Streaming;

/// <summary>`attrcloak generations list|promote|retire` against a real redis-server (no worker: what the commands ask).</summary>
public sealed class GenerationsCommandTests(RedisServerFixture redis)
{
    private const int Dimension = 4;

    [Fact]
    public async Task List_names_each_generation_promote_and_retire_ask_the_workers_and_forbidden_requests_are_one_clear_error()
    {
        var ct = TestContext.Current.CancellationToken;
        using var tmp = new TempDirectory();
        var prefix = redis.NewPrefix("generations");
        var config = WriteConfig(tmp["appsettings.json"], $"127.0.0.1:{redis.Port}", prefix, Dimension);

        var (empty, emptyOutput) = await CliRunner.RunAsync("generations", "list", "--config", config);
        empty.ShouldBe(0, emptyOutput);
        emptyOutput.ShouldContain("no model generation");

        await SeedAsync(redis.Redis, prefix, Dimension, users: 12); // generation mf-test, seated and serving
        using var deployment = new RedisGenerationStore(redis.Redis, StoreOptions(prefix, Dimension));
        await deployment.UpdateRegistryAsync(r => r.WithCreated("mf-next", DateTimeOffset.UtcNow), ct);

        var (listed, listOutput) = await CliRunner.RunAsync("generations", "list", "--config", config);
        listed.ShouldBe(0, listOutput);
        listOutput.ShouldMatch(@"mf-next\s+│ filling\s+│ 0 ");
        listOutput.ShouldMatch(@"mf-test\s+│ serving\s+│ 12 \s*│ 1 ");

        var (promoted, promoteOutput) = await CliRunner.RunAsync("generations", "promote", "mf-next", "--config", config);
        promoted.ShouldBe(0, promoteOutput);
        promoteOutput.ShouldContain("promotion of mf-next asked");
        (await deployment.ReadRegistryAsync(ct)).Find("mf-next")!.PromoteRequested.ShouldBeTrue();
        // No worker runs here: --wait says so instead of hanging.
        var (waited, waitOutput) = await CliRunner.RunAsync("generations", "promote", "mf-next", "--config", config, "--wait", "1");
        waited.ShouldBe(1, waitOutput);
        waitOutput.ShouldContain("not promoted within 1 s");

        var (serving, servingOutput) = await CliRunner.RunAsync("generations", "retire", "mf-test", "--config", config);
        ShouldBeOneClearError(serving, servingOutput, "promote its successor first");
        var (unknown, unknownOutput) = await CliRunner.RunAsync("generations", "promote", "nope", "--config", config);
        ShouldBeOneClearError(unknown, unknownOutput, "no generation 'nope'");

        var (retired, retireOutput) = await CliRunner.RunAsync("generations", "retire", "mf-next", "--config", config);
        retired.ShouldBe(0, retireOutput);
        retireOutput.ShouldContain("retirement of mf-next asked");
        (await deployment.ReadRegistryAsync(ct)).Find("mf-next")!.State.ShouldBe(GenerationState.Retiring);
    }
}
