using static AttrCloak.Cli.Tests.Streaming.StreamingTestSupport;

namespace AttrCloak.Cli.Tests.Streaming;

/// <summary>Configuration problems of the streaming commands: one `error:` line, exit code 2, and the layering file &lt; environment &lt; options.</summary>
public sealed class StreamingConfigurationTests(RedisServerFixture redis)
{
    private string Redis => $"127.0.0.1:{redis.Port}";

    [Fact]
    public async Task Missing_config_file_is_named()
    {
        using var tmp = new TempDirectory();
        var (code, output) = await CliRunner.RunAsync("stats", "verify", "--config", tmp["absent.json"]);
        ShouldBeOneClearError(code, output, "absent.json");
    }

    [Fact]
    public async Task Config_file_that_is_not_json_names_the_file_and_line()
    {
        using var tmp = new TempDirectory();
        File.WriteAllText(tmp["appsettings.json"], "{\n  \"AttrCloak\": { \"Guard\": { \"Dimension\": 8, }\n  oops\n}");
        var (code, output) = await CliRunner.RunAsync("stats", "verify", "--config", tmp["appsettings.json"]);
        ShouldBeOneClearError(code, output, "is not valid JSON");
        output.ShouldContain("appsettings.json");
        output.ShouldContain("LineNumber");
    }

    [Fact]
    public async Task Every_problem_of_a_configuration_is_listed_under_one_error_line()
    {
        using var tmp = new TempDirectory();
        var config = WriteConfig(tmp["appsettings.json"], Redis, "p", dimension: 0,
            catalog: new Dictionary<string, string[]> { ["gender"] = ["F"] });
        var (code, output) = await CliRunner.RunAsync("stats", "verify", "--config", config);
        ShouldBeOneClearError(code, output, "invalid configuration");
        output.ShouldContain("AttrCloak:Guard:Dimension must be in 1..4096");
        output.ShouldContain("needs at least two classes");
    }

    [Fact]
    public async Task Serve_refuses_a_configuration_mistake_in_one_line_before_it_connects_to_anything()
    {
        // The shipped file with an operator's mistakes layered over it by the environment; nothing listens at the
        // addresses, so an answer within seconds that names the mistakes shows nothing was contacted first.
        var example = Path.Combine(TestData.RepositoryRoot!, "deploy", "appsettings.example.json");
        using var tmp = new TempDirectory();
        var overrides = tmp["mistakes.json"];
        File.WriteAllText(overrides, """{ "AttrCloak": { "Audit": { "Attackers": ["lr", "mlp", "lr"], "Intervall": "00:01:00" } } }""");
        var root = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(example))!;
        var audit = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(overrides))!["AttrCloak"]!["Audit"]!;
        root["AttrCloak"]!["Audit"] = audit.DeepClone();
#pragma warning disable CA1507 // keys of the appsettings JSON, not names of members in this scope
        root["AttrCloak"]!["Redis"]!["TombstoneSecret"] = Secret;
        root["AttrCloak"]!["Redis"]!["Configuration"] = "127.0.0.1:1";
#pragma warning restore CA1507
        root["AttrCloak"]!["Kafka"]!["BootstrapServers"] = "127.0.0.1:1";
        File.WriteAllText(tmp["appsettings.json"], root.ToJsonString());
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (code, output) = await CliRunner.RunAsync("serve", "--config", tmp["appsettings.json"], "--port", "0");
        ShouldBeOneClearError(code, output, "invalid configuration");
        output.ShouldContain("AttrCloak:Audit:Attackers lists 'lr' twice");
        output.ShouldContain("AttrCloak:Audit:Intervall is not a setting");
        output.ShouldNotContain("Redis");
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(20));
    }

    [Fact]
    public async Task Serve_with_kafka_client_settings_librdkafka_refuses_is_one_line_before_it_starts()
    {
        // The ConfigMap's SASL_SSL settings without the Secret's credentials: librdkafka refuses to create a client.
        using var tmp = new TempDirectory();
        var config = WriteConfig(tmp["appsettings.json"], "127.0.0.1:1", "p", dimension: 4, brokers: "127.0.0.1:1");
        var root = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(config))!;
        root["AttrCloak"]!["Kafka"]!["Client"] = new System.Text.Json.Nodes.JsonObject { ["security.protocol"] = "SASL_SSL", ["sasl.mechanism"] = "SCRAM-SHA-512" };
        File.WriteAllText(config, root.ToJsonString());
        var (code, output) = await CliRunner.RunAsync("serve", "--config", config, "--port", "0");
        ShouldBeOneClearError(code, output, "the Kafka client refuses the configuration: sasl.username and sasl.password must be set");
    }

    [Fact]
    public async Task Wrongly_typed_value_is_a_configuration_error()
    {
        using var tmp = new TempDirectory();
        File.WriteAllText(tmp["appsettings.json"], """{ "AttrCloak": { "Guard": { "Dimension": "sixty-four", "Attributes": { "gender": ["F", "M"] } } } }""");
        var (code, output) = await CliRunner.RunAsync("stats", "verify", "--config", tmp["appsettings.json"], "--redis", Redis);
        ShouldBeOneClearError(code, output, "AttrCloak:Guard");
    }

    [Fact]
    public async Task Missing_redis_says_how_to_configure_it()
    {
        using var tmp = new TempDirectory();
        var config = WriteConfig(tmp["appsettings.json"], redis: null, "p", dimension: 4);
        var (code, output) = await CliRunner.RunAsync("stats", "verify", "--config", config);
        ShouldBeOneClearError(code, output, "no Redis configured");
        output.ShouldContain("--redis");
    }

    [Fact]
    public async Task Unreachable_redis_is_one_line_within_seconds()
    {
        using var tmp = new TempDirectory();
        var config = WriteConfig(tmp["appsettings.json"], "127.0.0.1:1", "p", dimension: 4);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (code, output) = await CliRunner.RunAsync("stats", "verify", "--config", config);
        ShouldBeOneClearError(code, output, "cannot reach Redis at 127.0.0.1:1");
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(15));
    }

    [Fact]
    public async Task Bootstrap_without_a_tombstone_secret_says_where_to_set_it()
    {
        using var tmp = new TempDirectory();
        var config = WriteConfig(tmp["appsettings.json"], Redis, redis.NewPrefix("nosecret"), dimension: 4, secret: false);
        var (code, output) = await CliRunner.RunAsync("bootstrap", "--config", config, "--synthetic-users", "50");
        ShouldBeOneClearError(code, output, "TombstoneSecret is required");
        output.ShouldContain("AttrCloak__Redis__TombstoneSecret");
    }

    [Fact]
    public async Task Environment_overrides_the_file_and_options_override_the_environment()
    {
        using var tmp = new TempDirectory();
        var prefix = redis.NewPrefix("layers");
        await SeedAsync(redis.Redis, prefix, dimension: 4, users: 20);
        var config = WriteConfig(tmp["appsettings.json"], Redis, "wrong-prefix", dimension: 4);

        // The file's prefix holds nothing: the error names it.
        var (fileOnly, fileOutput) = await CliRunner.RunAsync("stats", "verify", "--config", config);
        ShouldBeOneClearError(fileOnly, fileOutput, "'wrong-prefix'");

        const string variable = "AttrCloak__Redis__Prefix";
        Environment.SetEnvironmentVariable(variable, prefix);
        try
        {
            var (fromEnvironment, environmentOutput) = await CliRunner.RunAsync("stats", "verify", "--config", config);
            fromEnvironment.ShouldBe(0, environmentOutput);
            environmentOutput.ShouldContain("20 users scanned");

            var (fromOption, optionOutput) = await CliRunner.RunAsync("stats", "verify", "--config", config, "--prefix", "option-prefix");
            ShouldBeOneClearError(fromOption, optionOutput, "'option-prefix'");
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public async Task Default_config_is_appsettings_json_in_the_working_directory()
    {
        using var tmp = new TempDirectory();
        var prefix = redis.NewPrefix("cwd");
        await SeedAsync(redis.Redis, prefix, dimension: 4, users: 7);
        WriteConfig(tmp["appsettings.json"], Redis, prefix, dimension: 4);
        var previous = Directory.GetCurrentDirectory();
        Directory.SetCurrentDirectory(tmp.Path);
        try
        {
            var (code, output) = await CliRunner.RunAsync("stats", "verify");
            code.ShouldBe(0, output);
            output.ShouldContain("7 users scanned");
        }
        finally
        {
            Directory.SetCurrentDirectory(previous);
        }
    }

    [Fact]
    public async Task Replay_without_brokers_says_how_to_give_them()
    {
        using var tmp = new TempDirectory();
        var config = WriteConfig(tmp["appsettings.json"], redis: null, prefix: null, dimension: null);
        var (code, output) = await CliRunner.RunAsync("replay", "--config", config, "--synthetic-users", "50");
        ShouldBeOneClearError(code, output, "no Kafka brokers configured");
    }

    [Fact]
    public async Task Bad_option_values_are_one_line()
    {
        var (code, output) = await CliRunner.RunAsync("replay", "--brokers", "127.0.0.1:1", "--forget-fraction", "1.5");
        ShouldBeOneClearError(code, output, "--forget-fraction must be in 0..1");
        (code, output) = await CliRunner.RunAsync("bootstrap", "--fraction", "0");
        ShouldBeOneClearError(code, output, "--fraction must be in (0, 1]");
        (code, output) = await CliRunner.RunAsync("kafka-mock", "--port", "0", "--topics", "good,bad topic");
        ShouldBeOneClearError(code, output, "--topics: 'bad topic' is not a valid Kafka topic name");
        (code, output) = await CliRunner.RunAsync("kafka-mock", "--port", "0", "--topics", "a:0");
        ShouldBeOneClearError(code, output, "--topics: 'a:0' must be name or name:partitions with 1..1000 partitions");
        (code, output) = await CliRunner.RunAsync("kafka-mock", "--port", "0", "--config", "no-such-file.json");
        ShouldBeOneClearError(code, output, "configuration file 'no-such-file.json' not found");
    }
}
