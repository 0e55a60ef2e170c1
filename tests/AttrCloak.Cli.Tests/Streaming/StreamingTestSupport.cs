using System.Text.Json;
using AttrCloak.Core.Data;
using AttrCloak.Streaming.Generations;
using Confluent.Kafka;
using Json.Schema;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;

namespace AttrCloak.Cli.Tests.Streaming;

/// <summary>Configuration files, store seeding and output checks shared by the streaming command tests.</summary>
internal static class StreamingTestSupport
{
    private static readonly JsonSerializerOptions IndentedJson = new() { WriteIndented = true };

    public const string Secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // base64 of 32 bytes

    /// <summary>The synthetic data set's gender and age classes (occupation left out: not protected by these tests).</summary>
    public static readonly Dictionary<string, string[]> Catalog = new(StringComparer.Ordinal)
    {
        ["gender"] = ["F", "M"],
        ["age"] = ["<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"],
    };

    /// <summary>Writes an appsettings.json with the given sections; null leaves a value out.</summary>
    public static string WriteConfig(string path, string? redis, string? prefix, int? dimension, string? brokers = null,
        Dictionary<string, string[]>? catalog = null, bool secret = true, string topicSuffix = "")
    {
        var redisSection = new Dictionary<string, object?>();
        if (redis is not null) redisSection["Configuration"] = redis;
        if (prefix is not null) redisSection["Prefix"] = prefix;
        if (secret) redisSection["TombstoneSecret"] = Secret;
        var guard = new Dictionary<string, object?> { ["Attributes"] = catalog ?? Catalog };
        if (dimension is not null) guard["Dimension"] = dimension;
        var root = new Dictionary<string, object?> { ["Redis"] = redisSection, ["Guard"] = guard };
        if (brokers is not null)
            root["Kafka"] = new Dictionary<string, object?>
            {
                ["BootstrapServers"] = brokers,
                ["EmbeddingsTopic"] = "embeddings" + topicSuffix,
                ["PrivacyRequestsTopic"] = "requests" + topicSuffix,
                ["CloakedTopic"] = "cloaked" + topicSuffix,
            };
        File.WriteAllText(path, JsonSerializer.Serialize(new Dictionary<string, object?> { ["AttrCloak"] = root }, IndentedJson));
        return path;
    }

    /// <summary>The model generation <see cref="SeedAsync"/> seeds (as `attrcloak bootstrap --model-version mf-test` would).</summary>
    public const string Model = "mf-test";

    /// <summary>Where the keys of <see cref="Model"/>'s generation live under a deployment <paramref name="prefix"/>.</summary>
    public static string GenerationPrefix(string prefix, string model = Model) => RedisGenerationStore.GenerationPrefix(prefix, model);

    /// <summary>The store options of <paramref name="model"/>'s generation (for verifying or reading it directly).</summary>
    public static StateStoreOptions GenerationStoreOptions(string prefix, int dimension, string model = Model)
    {
        var options = StoreOptions(GenerationPrefix(prefix, model), dimension);
        options.TombstonePrefix = prefix;
        return options;
    }

    public static StateStoreOptions StoreOptions(string prefix, int dimension) => new()
    {
        Prefix = prefix,
        Dimension = dimension,
        Attributes = Catalog.Select(p => new AttributeSpec(p.Key, p.Value)).OrderBy(a => a.Name, StringComparer.Ordinal).ToArray(),
        TombstoneSecret = Convert.FromBase64String(Secret),
    };

    /// <summary>
    /// Seeds <paramref name="users"/> random users into generation <see cref="Model"/> as `attrcloak bootstrap` does
    /// (seated, serving), straight through the store (no CLI, no TorchSharp).
    /// </summary>
    public static async Task SeedAsync(StackExchange.Redis.IConnectionMultiplexer redis, string prefix, int dimension, int users, int seed = 1)
    {
        var options = StoreOptions(prefix, dimension);
        using var deployment = new RedisGenerationStore(redis, options);
        var random = new Random(seed);
        float[] Vector() => Enumerable.Range(0, dimension).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        // Attributes in configuration-binding order (age, gender): class per attribute.
        var seeded = Enumerable.Range(0, users)
            .Select(u => new SeedUser($"u{u}", Vector(), Vector(), options.Attributes.Select(a => random.Next(a.ClassCount)).ToArray())).ToList();
        var result = await GenerationSeeding.SeedAsync(deployment, Model, seeded, version: 1, batchSize: 512, cancellationToken: TestContext.Current.CancellationToken);
        result.Applied.ShouldAllBe(a => a);
    }

    /// <summary>Exit code 2 and exactly one `error:` line containing <paramref name="expected"/>, no stack trace.</summary>
    public static void ShouldBeOneClearError(int code, string output, string expected)
    {
        code.ShouldBe(2, output);
        output.ShouldNotContain("   at ");
        output.ShouldNotContain("Exception");
        var errorLines = output.Split('\n').Where(l => l.Contains("error:", StringComparison.Ordinal)).ToArray();
        errorLines.Length.ShouldBe(1, output);
        output.ShouldContain(expected, Case.Sensitive, output);
    }

    /// <summary>
    /// Reads <paramref name="expected"/> messages of <paramref name="topic"/> from the start (all partitions), or
    /// whatever arrived by the deadline; then waits briefly for any unexpected extra message.
    /// </summary>
    public static List<ConsumeResult<byte[], byte[]?>> ConsumeAll(string brokers, string topic, int expected)
    {
        // Assigned partitions, not a group subscription: no rebalance wait (seconds on the mock cluster).
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = brokers }).SetLogHandler((_, _) => { }).Build();
        var partitions = admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.Single().Partitions
            .Select(p => new TopicPartitionOffset(topic, p.PartitionId, Offset.Beginning)).ToList();
        partitions.ShouldNotBeEmpty();
        using var consumer = new ConsumerBuilder<byte[], byte[]?>(new ConsumerConfig
        {
            BootstrapServers = brokers,
            GroupId = "test-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
        }).SetLogHandler((_, _) => { }).Build();
        consumer.Assign(partitions);
        var messages = new List<ConsumeResult<byte[], byte[]?>>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (messages.Count < expected && DateTime.UtcNow < deadline)
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false } r) messages.Add(r);
        // Extra messages would be a bug too: give them a moment to show up.
        var extra = DateTime.UtcNow + TimeSpan.FromMilliseconds(500);
        while (DateTime.UtcNow < extra)
            if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is { IsPartitionEOF: false } r) messages.Add(r);
        consumer.Close();
        return messages;
    }

    public static string Header(ConsumeResult<byte[], byte[]?> message, string name) =>
        message.Message.Headers?.TryGetLastBytes(name, out var value) == true ? System.Text.Encoding.UTF8.GetString(value) : "";

    private static readonly Lazy<Dictionary<string, JsonSchema>> Schemas = new(() =>
    {
        var dir = RepositoryRoot();
        var build = new BuildOptions { SchemaRegistry = new SchemaRegistry() };
        var result = new Dictionary<string, JsonSchema>(StringComparer.Ordinal);
        foreach (var file in new[] { "envelope", "embedding_update", "privacy_request", "cloaked_embedding" })
            result[file] = JsonSchema.FromFile(Path.Combine(dir, "schemas", "v1", file + ".schema.json"), build);
        return result;
    });

    private static readonly Lock SchemaGate = new();

    /// <summary>Null when <paramref name="json"/> is valid against schemas/v1/<paramref name="schema"/>.schema.json; otherwise why not.</summary>
    public static string? SchemaErrors(string schema, byte[] json)
    {
        using var document = JsonDocument.Parse(json);
        EvaluationResults results;
        lock (SchemaGate)
            results = Schemas.Value[schema].Evaluate(document.RootElement, new EvaluationOptions { RequireFormatValidation = true, OutputFormat = OutputFormat.List });
        if (results.IsValid) return null;
        return string.Join("; ", (results.Details ?? []).SelectMany(d => (d.Errors ?? new Dictionary<string, string>()).Select(e => $"{d.InstanceLocation} {e.Key}: {e.Value}")));
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "AttrCloak.Streaming.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no AttrCloak.Streaming.sln above {AppContext.BaseDirectory}");
    }
}
