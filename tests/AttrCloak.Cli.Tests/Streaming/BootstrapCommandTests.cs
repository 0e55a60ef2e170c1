using System.Text;
using AttrCloak.Cli.Commands.Streaming;
using AttrCloak.Cli.Experiments;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Kafka;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;
using AttrCloak.Tools.Kafka;
using static AttrCloak.Cli.Tests.Streaming.StreamingTestSupport;

namespace AttrCloak.Cli.Tests.Streaming;

/// <summary>`attrcloak bootstrap` on a small synthetic set, into a real redis-server (and the mock Kafka cluster for --publish).</summary>
public sealed class BootstrapCommandTests(RedisServerFixture redis)
{
    private const int Dimension = 8;
    private const int Users = 200;

    [Fact]
    public async Task Bootstrap_of_half_a_synthetic_set_seeds_the_store_publishes_and_refuses_to_mix_populations()
    {
        using var tmp = new TempDirectory();
        using var kafka = new MockKafkaCluster();
        var prefix = redis.NewPrefix("bootstrap");
        var config = WriteConfig(tmp["appsettings.json"], $"127.0.0.1:{redis.Port}", prefix, Dimension, kafka.BootstrapServers);
        string[] args = ["bootstrap", "--config", config, "--synthetic-users", $"{Users}", "--train-epochs", "3", "--fraction", "0.5", "--seed", "5"];

        var (code, output) = await CliRunner.RunAsync([.. args, "--publish"]);
        code.ShouldBe(0, output);
        TestContext.Current.TestOutputHelper?.WriteLine(output);
        output.ShouldContain("bootstrapping 100 of 200 users");
        output.ShouldMatch(@"users written \(applied\)\s+│ 100 ");

        // The store holds exactly the drawn users, with consistent statistics whose counts are the data set's.
        var data = new DataSource("synthetic", null, Users).Load();
        var chosen = UserSample.Draw(Users, 0.5, 5);
        var options = GenerationStoreOptions(prefix, Dimension, "mf-synthetic"); // the default model version: mf-<data set>
        var report = await new StatisticsVerifier(redis.Redis, options).VerifyAsync(cancellationToken: TestContext.Current.CancellationToken);
        report.IsConsistent.ShouldBeTrue();
        report.UsersScanned.ShouldBe(100);
        using var store = new RedisStateStore(redis.Redis, options);
        var snapshot = await store.ReadStatisticsAsync(TestContext.Current.CancellationToken);
        foreach (var (name, classes) in Catalog)
        {
            var a = data.AttributeIndex(name);
            for (var k = 0; k < classes.Length; k++)
            {
                var dataClass = data.Attributes[a].ClassNames.ToList().IndexOf(classes[k]);
                var expected = chosen.Count(u => data.Labels[a][u] == dataClass);
                snapshot[name].Counts[k].ShouldBe(expected, $"{name}={classes[k]}");
            }
        }
        var inside = await store.GetUserAsync(data.UserIds[chosen[0]], TestContext.Current.CancellationToken);
        inside.ShouldNotBeNull();
        inside.Version.ShouldBe(0);
        inside.Cloaked.ShouldNotBe(inside.Original); // cloaked by the DF run, not copied
        var outside = Enumerable.Range(0, Users).First(u => !chosen.Contains(u));
        (await store.GetUserAsync(data.UserIds[outside], TestContext.Current.CancellationToken)).ShouldBeNull();

        // --publish: every written user's cloaked embedding is on the serving topic, valid, and what the store serves.
        var published = ConsumeAll(kafka.BootstrapServers, "cloaked", expected: 100);
        published.Count.ShouldBe(100);
        var ids = chosen.Select(u => data.UserIds[u]).ToHashSet();
        foreach (var m in published)
        {
            SchemaErrors("cloaked_embedding", m.Message.Value!).ShouldBeNull();
            EventCodec.TryDecodeCloaked(m.Message.Value, out var cloaked, out var error).ShouldBeTrue(error?.ToString());
            Encoding.UTF8.GetString(m.Message.Key).ShouldBe(cloaked.UserId);
            ids.Remove(cloaked.UserId).ShouldBeTrue(cloaked.UserId);
            cloaked.ProtectedAttributes.ShouldBe(["age", "gender"], ignoreOrder: true);
            if (cloaked.UserId == inside.UserId) cloaked.Embedding.ShouldBe(inside.Cloaked);
        }
        ids.ShouldBeEmpty();

        var (verified, verifyOutput) = await CliRunner.RunAsync("stats", "verify", "--config", config);
        verified.ShouldBe(0, verifyOutput);

        // A second bootstrap into the same prefix would mix populations: refused, unless forced (then a no-op here).
        var (refused, refusedOutput) = await CliRunner.RunAsync(args);
        ShouldBeOneClearError(refused, refusedOutput, "--force");
        var (forced, forcedOutput) = await CliRunner.RunAsync([.. args, "--force"]);
        forced.ShouldBe(0, forcedOutput);
        forcedOutput.ShouldMatch(@"already bootstrapped \(duplicate\)\s+│ 100 ");
        (await new StatisticsVerifier(redis.Redis, options).VerifyAsync(cancellationToken: TestContext.Current.CancellationToken)).UsersScanned.ShouldBe(100);
        // Issue 12: a forced re-run published nothing. Now it asks the workers for another sweep of the generation
        // (every user published again), and with --publish it publishes the users it wrote before, as Redis holds them.
        SweepEpoch(forcedOutput).ShouldBe(SweepEpoch(output) + 1, forcedOutput);
        var (again, againOutput) = await CliRunner.RunAsync([.. args, "--force", "--publish"]);
        again.ShouldBe(0, againOutput);
        againOutput.ShouldMatch(@"published\s+│ 100 acknowledged, 0 failed");
        var republished = ConsumeAll(kafka.BootstrapServers, "cloaked", expected: 200);
        republished.Count.ShouldBe(200);
        republished.Select(m => Encoding.UTF8.GetString(m.Message.Key)).Distinct().Count().ShouldBe(100);
        var inside2 = republished.Last(m => Encoding.UTF8.GetString(m.Message.Key) == inside.UserId);
        EventCodec.TryDecodeCloaked(inside2.Message.Value, out var again2, out _).ShouldBeTrue();
        again2.Embedding.ShouldBe(inside.Cloaked);
    }

    private static int SweepEpoch(string output) =>
        int.Parse(System.Text.RegularExpressions.Regex.Match(output, @"sweep epoch (\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Embeddings_of_another_dimension_than_configured_are_refused()
    {
        using var tmp = new TempDirectory();
        var config = WriteConfig(tmp["appsettings.json"], $"127.0.0.1:{redis.Port}", redis.NewPrefix("dim"), Dimension);
        var (code, output) = await CliRunner.RunAsync("bootstrap", "--config", config, "--synthetic-users", "60", "--train-epochs", "1", "--dim", "4");
        ShouldBeOneClearError(code, output, "AttrCloak:Guard:Dimension is 8");
    }

    [Fact]
    public async Task A_catalog_attribute_the_data_set_lacks_is_named()
    {
        using var tmp = new TempDirectory();
        var catalog = new Dictionary<string, string[]>(Catalog) { ["religion"] = ["a", "b"] };
        var config = WriteConfig(tmp["appsettings.json"], $"127.0.0.1:{redis.Port}", redis.NewPrefix("catalog"), Dimension, catalog: catalog);
        var (code, output) = await CliRunner.RunAsync("bootstrap", "--config", config, "--synthetic-users", "60", "--train-epochs", "1");
        ShouldBeOneClearError(code, output, "'religion' is not an attribute of data set");
    }

    [Fact]
    public async Task Bootstrap_to_a_privacy_target_runs_the_loop_on_the_drawn_users_and_seeds_its_result()
    {
        using var tmp = new TempDirectory();
        var prefix = redis.NewPrefix("target");
        var config = WriteConfig(tmp["appsettings.json"], $"127.0.0.1:{redis.Port}", prefix, Dimension);
        // Tastes shaped strongly by the attributes: the embeddings leak well beyond the audit's noise on 240 users.
        var (code, output) = await CliRunner.RunAsync("bootstrap", "--config", config, "--synthetic-users", "300", "--synthetic-strength", "1",
            "--train-epochs", "10", "--fraction", "0.8", "--privacy-target", "0.05", "--utility-floor", "0.9");
        TestContext.Current.TestOutputHelper?.WriteLine(output);
        code.ShouldBe(0, output);
        output.ShouldContain("privacy target 0.05 (utility floor 0.9): shadow audits of the 240 drawn users");
        output.ShouldContain("round 0: strengths age=0 gender=0");
        output.ShouldMatch("round 1: .*validation NDCG@10 [0-9.]+x \\+/- [0-9.]+"); // the floor is checked with its standard error
        output.ShouldMatch("target (met after [1-9]|NOT met)"); // the synthetic users leak gender: round 0 cannot meet it

        // The store holds the 240 drawn users with consistent statistics, cloaked by the loop (not copied).
        var options = GenerationStoreOptions(prefix, Dimension, "mf-synthetic");
        var report = await new StatisticsVerifier(redis.Redis, options).VerifyAsync(cancellationToken: TestContext.Current.CancellationToken);
        report.IsConsistent.ShouldBeTrue();
        report.UsersScanned.ShouldBe(240);
        using var store = new RedisStateStore(redis.Redis, options);
        var data = new DataSource("synthetic", null, 300, SyntheticStrength: 1).Load();
        var stored = await store.GetUsersAsync(UserSample.Draw(300, 0.8, 1).Select(u => data.UserIds[u]).ToList(), TestContext.Current.CancellationToken);
        stored.ShouldAllBe(u => u != null);
        stored.Count(u => !u!.Cloaked.SequenceEqual(u.Original)).ShouldBeGreaterThan(200);
    }

    [Theory]
    [InlineData("--utility-floor is only used with --privacy-target", "--utility-floor", "0.9")]
    [InlineData("--privacy-target must be in (0, 1), got 2", "--privacy-target", "2")]
    [InlineData("--utility-floor needs the backbone's item embeddings", "--privacy-target", "0.05", "--utility-floor", "0.9", "--embeddings", "EMBEDDINGS")]
    public async Task A_privacy_target_that_cannot_work_is_one_clear_line(string expected, params string[] options)
    {
        using var tmp = new TempDirectory();
        var config = WriteConfig(tmp["appsettings.json"], $"127.0.0.1:{redis.Port}", redis.NewPrefix("target-bad"), Dimension);
        var embeddings = tmp["users.npy"];
        AttrCloak.Core.IO.NpyFile.Write(embeddings, new AttrCloak.Core.Data.EmbeddingMatrix(60, Dimension, new float[60 * Dimension]));
        var (code, output) = await CliRunner.RunAsync(["bootstrap", "--config", config, "--synthetic-users", "60", "--train-epochs", "1",
            .. options.Select(o => o == "EMBEDDINGS" ? embeddings : o)]);
        ShouldBeOneClearError(code, output, expected);
    }
}
