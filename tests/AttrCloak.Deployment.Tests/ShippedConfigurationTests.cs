using System.Text;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Kafka;
using Confluent.Kafka;
using Microsoft.Extensions.Configuration;
using YamlDotNet.RepresentationModel;

namespace AttrCloak.Deployment.Tests;

/// <summary>
/// Every configuration the project ships, layered as the worker layers it (the file, then environment variables), bound
/// and validated exactly as `attrcloak serve` does (<see cref="StreamingSettings.Bind"/>), and the options it produces
/// checked: deploy/appsettings.example.json alone; the same file with docker-compose.yml's worker environment; the
/// Kubernetes ConfigMap's appsettings.json with the Deployment's environment (Secrets stand in as placeholders). Found
/// this way: lists in a file were appended to the built-in defaults ("Attackers": ["lr", "mlp"] became lr, mlp, lr,
/// mlp, and every shadow audit failed).
/// </summary>
public sealed class ShippedConfigurationTests
{
    private static readonly string Root = TestData.RepositoryRoot ?? throw new InvalidOperationException("no repository root");
    private const string Secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    public static TheoryData<string> Shipped() => ["appsettings.example.json", "docker-compose.yml", "kubernetes"];

    [Theory]
    [MemberData(nameof(Shipped))]
    public void Shipped_configuration_binds_without_problems_and_gives_the_documented_options(string shipped)
    {
        var (configuration, environment) = Load(shipped);
        var settings = StreamingSettings.Bind(configuration); // throws with every problem listed

        // The audit runs exactly the attackers the file lists (not the defaults plus the file's).
        settings.Audit.Attackers.ShouldBe(["lr", "mlp"]);
        settings.Audit.Interval.ShouldBe(TimeSpan.FromMinutes(5));
        settings.Audit.SampleSize.ShouldBe(2000);
        settings.Audit.Folds.ShouldBe(3);

        settings.Guard.Dimension.ShouldBe(64);
        settings.Guard.Attributes.Keys.ShouldBe(["gender", "age", "occupation"], ignoreOrder: true);
        settings.Guard.Attributes["gender"].ShouldBe(["F", "M"]);
        settings.Guard.Attributes["age"].Length.ShouldBe(7);
        settings.Guard.Attributes["occupation"].Length.ShouldBe(21);
        settings.Guard.HttpPort.ShouldBe(8080);
        settings.Guard.MaxBatchEvents.ShouldBe(384);
        settings.Guard.ShutdownTimeout.ShouldBe(TimeSpan.FromSeconds(10));

        settings.Kafka.ConsumerGroup.ShouldBe("attrcloak-guard");
        settings.Kafka.Topics().Select(t => t.Topic).ShouldBe(["attrcloak.embeddings", "attrcloak.privacy-requests", "attrcloak.cloaked", "attrcloak.dead-letter"]);
        settings.Kafka.BootstrapServers.ShouldNotBeNullOrWhiteSpace();
        var consumer = KafkaClients.ConsumerConfig(settings.Kafka);
        consumer.SessionTimeoutMs.ShouldBe(6000);
        consumer.PartitionAssignmentStrategy.ShouldBe(PartitionAssignmentStrategy.Range);
        consumer.GroupInstanceId.ShouldBeNull(); // dynamic membership: a stopping instance leaves the group at once
        consumer.EnableAutoOffsetStore.ShouldBe(false);

        // The state store's layout and the tombstone secret (from the environment where the deployment gives one).
        var store = settings.StateStoreOptions(configuration, allowEphemeralSecret: shipped == "appsettings.example.json");
        store.Prefix.ShouldBe("attrcloak");
        store.TombstoneTtl.ShouldBe(TimeSpan.FromDays(30));
        store.Attributes.Count.ShouldBe(3);

        switch (shipped)
        {
            case "docker-compose.yml":
                settings.Kafka.BootstrapServers.ShouldBe("kafka:19092");
                settings.Redis.Configuration.ShouldBe("redis:6379");
                settings.Redis.TombstoneSecret.ShouldBe(Secret);
                // docker stop waits stop_grace_period before SIGKILL: the worker's bounded stop fits in it.
                environment["stop_grace_period"].ShouldBe("30s");
                break;
            case "kubernetes":
                settings.Kafka.Client["security.protocol"].ShouldBe("SASL_SSL");
                settings.Kafka.Client["sasl.mechanism"].ShouldBe("SCRAM-SHA-512");
                settings.Kafka.Client["sasl.username"].ShouldBe("secret:attrcloak-guard-kafka/sasl-username");
                settings.Redis.Configuration.ShouldBe("secret:attrcloak-guard-redis/configuration");
                consumer.Get("security.protocol").ShouldBe("SASL_SSL");
                int.Parse(environment["terminationGracePeriodSeconds"], System.Globalization.CultureInfo.InvariantCulture)
                    .ShouldBeGreaterThan((int)settings.Guard.ShutdownTimeout.TotalSeconds, "Kubernetes kills the pod after its grace period");
                break;
        }
    }

    [Fact]
    public void A_list_given_in_the_environment_replaces_the_files_list_and_the_default()
    {
        var settings = StreamingSettings.Bind(Layered(File.ReadAllText(Example), new() { ["AttrCloak:Audit:Attackers:0"] = "lgbm" }));
        // Environment variables override the file by index (":0" replaces the file's first item), so the file's
        // second item stays: configuration's own layering. What must not happen is the defaults coming back.
        settings.Audit.Attackers.ShouldBe(["lgbm", "mlp"]);
        var fileOnly = StreamingSettings.Bind(Layered("""{ "AttrCloak": { "Guard": { "Dimension": 4, "Attributes": { "g": ["a", "b"] } }, "Audit": { "Attackers": ["mlp-wide"] } } }""", []));
        fileOnly.Audit.Attackers.ShouldBe(["mlp-wide"]);
        var none = Should.Throw<StreamingConfigurationException>(() =>
            StreamingSettings.Bind(Layered("""{ "AttrCloak": { "Guard": { "Dimension": 4, "Attributes": { "g": ["a", "b"] } }, "Audit": { "Attackers": [] } } }""", [])));
        none.Message.ShouldBe("AttrCloak:Audit:Attackers must name at least one attacker");
    }

    [Theory]
    [InlineData("\"Audit\": { \"Attackers\": [\"lr\", \"LR\"] }", "AttrCloak:Audit:Attackers lists 'LR' twice")]
    [InlineData("\"Audit\": { \"Attackers\": [\"lr\", \"xgboost\"] }", "AttrCloak:Audit:Attackers: unknown attacker 'xgboost'")]
    [InlineData("\"Audit\": { \"Attakers\": [\"lr\"] }", "AttrCloak:Audit:Attakers is not a setting (known: Attackers, Folds, Interval, MinUsersPerClass, SampleSize)")]
    [InlineData("\"Kafka\": { \"CloakedTopic\": \"attrcloak.embeddings\" }", "AttrCloak:Kafka: EmbeddingsTopic and CloakedTopic are all 'attrcloak.embeddings'")]
    [InlineData("\"Kafka\": { \"GroupInstanceId\": \"a b\" }", "AttrCloak:Kafka:GroupInstanceId 'a b' must be")]
    [InlineData("\"Guard\": { \"ShutdownTimeout\": \"00:10:00\" }", "AttrCloak:Guard:ShutdownTimeout must be between 1 s and 5 min")]
    [InlineData("\"Guard\": { \"Dimension\": \"sixty-four\" }", "'AttrCloak:Guard:Dimension'")]
    [InlineData("\"Gaurd\": { }", "AttrCloak:Gaurd is not a section")]
    public void A_mistake_is_named_with_its_key(string section, string expected)
    {
        // The mistake is layered over the shipped file, as an operator's override would be.
        var mistake = $$"""{ "AttrCloak": { {{section}} } }""";
        var configuration = new ConfigurationBuilder()
            .AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(File.ReadAllText(Example))))
            .AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(mistake)))
            .Build();
        var e = Should.Throw<StreamingConfigurationException>(() => StreamingSettings.Bind(configuration));
        e.Message.ShouldContain(expected);
        // One line per problem, each naming its key (a value of the wrong type also leaves the option invalid: two).
        e.Message.Split('\n').ShouldAllBe(line => line.StartsWith("AttrCloak:", StringComparison.Ordinal));
        e.Message.Split('\n').Length.ShouldBeLessThanOrEqualTo(2, e.Message);
    }

    [Fact]
    public void Static_membership_auto_is_host_and_port_so_two_instances_on_one_host_differ()
    {
        var kafka = new KafkaOptions { GroupInstanceId = KafkaOptions.AutoInstanceId };
        kafka.ResolveGroupInstanceId(8080, "attrcloak-guard-5d8f-x2k").ShouldBe("attrcloak-guard-5d8f-x2k-8080");
        kafka.ResolveGroupInstanceId(8081, "host").ShouldNotBe(kafka.ResolveGroupInstanceId(8082, "host"));
        kafka.ResolveGroupInstanceId(0, "host").ShouldBeNull(); // no fixed port: no stable identity
        kafka.ResolveGroupInstanceId(null, "host").ShouldBeNull();
        new KafkaOptions().ResolveGroupInstanceId(8080, "host").ShouldBeNull(); // default: dynamic
        new KafkaOptions { GroupInstanceId = "guard-0" }.ResolveGroupInstanceId(8080, "host").ShouldBe("guard-0");
        KafkaClients.ConsumerConfig(new KafkaOptions { BootstrapServers = "b:9092" }.WithGroupInstanceId("guard-0")).GroupInstanceId.ShouldBe("guard-0");
    }

    // ---- the shipped files ---------------------------------------------------------------------------------------

    private static string Example => Path.Combine(Root, "deploy", "appsettings.example.json");

    /// <summary>The configuration of one shipped deployment, and its orchestration facts (grace periods).</summary>
    private static (IConfiguration Configuration, Dictionary<string, string> Facts) Load(string shipped)
    {
        switch (shipped)
        {
            case "appsettings.example.json":
                return (Layered(File.ReadAllText(Example), []), []);
            case "docker-compose.yml":
            {
                var worker = (YamlMappingNode)Node(Yaml(Path.Combine(Root, "docker-compose.yml")), "services", "worker")!;
                // The compose file mounts the example file as the worker's appsettings.json and adds its environment.
                ((YamlSequenceNode)worker["volumes"]).Select(v => ((YamlScalarNode)v).Value!)
                    .ShouldContain(v => v.StartsWith("./deploy/appsettings.example.json:/app/appsettings.json", StringComparison.Ordinal));
                var environment = ((YamlMappingNode)worker["environment"]).Children
                    .ToDictionary(p => ((YamlScalarNode)p.Key).Value!, p => Interpolate(((YamlScalarNode)p.Value).Value!));
                return (Layered(File.ReadAllText(Example), environment), new() { ["stop_grace_period"] = ((YamlScalarNode)worker["stop_grace_period"]).Value! });
            }
            case "kubernetes":
            {
                var documents = Directory.GetFiles(Path.Combine(Root, "deploy", "kubernetes"), "*.yaml").SelectMany(YamlDocuments).ToList();
                var configMap = documents.Single(d => Text(d, "kind") == "ConfigMap");
                var deployment = documents.Single(d => Text(d, "kind") == "Deployment");
                var json = Text(configMap, "data", "appsettings.json").ShouldNotBeNull();
                var podSpec = Node(deployment, "spec", "template", "spec")!;
                var guard = ((YamlSequenceNode)Node(podSpec, "containers")!).Cast<YamlMappingNode>().Single(c => Text(c, "name") == "guard");
                // Secrets arrive as environment variables; stand-ins name the Secret and key they would come from.
                var environment = ((YamlSequenceNode)guard["env"]).Cast<YamlMappingNode>().ToDictionary<YamlMappingNode, string, string?>(
                    e => Text(e, "name")!,
                    e => Text(e, "value") ?? $"secret:{Text(e, "valueFrom", "secretKeyRef", "name")}/{Text(e, "valueFrom", "secretKeyRef", "key")}");
                environment["AttrCloak__Redis__TombstoneSecret"] = Secret; // must be base64 to be usable
                return (Layered(json, environment), new() { ["terminationGracePeriodSeconds"] = Text(podSpec, "terminationGracePeriodSeconds")! });
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(shipped));
        }
    }

    /// <summary>The file, then environment variables (AttrCloak__Section__Key, as the worker reads them).</summary>
    private static IConfiguration Layered(string json, Dictionary<string, string?> environment) =>
        new ConfigurationBuilder()
            .AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json)))
            .AddInMemoryCollection(environment.ToDictionary(p => p.Key.Replace("__", ":", StringComparison.Ordinal), p => p.Value))
            .Build();

    /// <summary>docker-compose's ${VAR:?message} and ${VAR:-default} with the tombstone secret set.</summary>
    private static string? Interpolate(string value) =>
        System.Text.RegularExpressions.Regex.Replace(value, @"\$\{(?<name>[A-Z_]+)(:[?-][^}]*)?\}",
            m => m.Groups["name"].Value == "ATTRCLOAK_TOMBSTONE_SECRET" ? Secret : "");

    private static YamlMappingNode Yaml(string path) => YamlDocuments(path).Single();

    private static IEnumerable<YamlMappingNode> YamlDocuments(string path)
    {
        var stream = new YamlStream();
        using (var reader = new StreamReader(path)) stream.Load(reader);
        return stream.Documents.Select(d => d.RootNode).OfType<YamlMappingNode>().ToList();
    }

    private static YamlNode? Node(YamlNode? node, params string[] path)
    {
        foreach (var key in path)
            if (node is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode(key), out node)) return null;
        return node;
    }

    private static string? Text(YamlNode? node, params string[] path) => (Node(node, path) as YamlScalarNode)?.Value;
}
