using Confluent.Kafka;

namespace AttrCloak.Tools.Kafka;

/// <summary>
/// librdkafka's built-in mock Kafka cluster: real TCP listeners on 127.0.0.1 that speak the Kafka protocol (produce,
/// fetch, metadata, consumer groups, offset commits), hosted by a client created with <c>test.mock.num.brokers</c>.
/// It lives as long as this object. A stand-in broker for tests and the local demo, never for production. Known
/// behaviour (observed with librdkafka's mock cluster): topics are auto-created with 4 partitions on first use (do not call
/// CreateTopics against it); it keeps only a bounded tail of each partition, so consume while producing.
/// </summary>
public sealed class MockKafkaCluster : IDisposable
{
    private readonly IAdminClient _host;

    /// <param name="brokers">Number of mock brokers (1 is enough for one machine).</param>
    public MockKafkaCluster(int brokers = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(brokers, 1);
        var config = new AdminClientConfig { BootstrapServers = "" };
        config.Set("test.mock.num.brokers", brokers.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _host = new AdminClientBuilder(config).SetLogHandler((_, _) => { }).Build();
        var metadata = _host.GetMetadata(TimeSpan.FromSeconds(10));
        if (metadata.Brokers.Count == 0)
            throw new InvalidOperationException("the librdkafka mock cluster did not report any broker");
        BootstrapServers = string.Join(',', metadata.Brokers.Select(b => $"{b.Host}:{b.Port}"));
    }

    /// <summary>The <c>bootstrap.servers</c> value other clients (and kcat) use, e.g. <c>127.0.0.1:39113</c>.</summary>
    public string BootstrapServers { get; }

    /// <summary>Partitions of every topic the mock creates.</summary>
    public const int PartitionsPerTopic = 4;

    /// <summary>
    /// Creates the topics (4 partitions each) if they do not exist yet, through the mock's auto-creation on a metadata
    /// request (it does not answer CreateTopics). Create the input topics before a consumer subscribes: a consumer
    /// does not join its group while none of its topics exists.
    /// </summary>
    /// <exception cref="InvalidOperationException">A topic did not appear within 10 s.</exception>
    public void CreateTopics(params string[] topics) => CreateTopics(_host, topics);

    /// <summary>
    /// <see cref="CreateTopics(string[])"/> against a mock broker in another process (<c>attrcloak kafka-mock</c>) or
    /// any broker that creates topics on a metadata request.
    /// </summary>
    public static void CreateTopicsOn(string bootstrapServers, params string[] topics)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrapServers }).SetLogHandler((_, _) => { }).Build();
        CreateTopics(admin, topics);
    }

    private static void CreateTopics(IAdminClient admin, string[] topics)
    {
        ArgumentNullException.ThrowIfNull(topics);
        foreach (var topic in topics)
        {
            var metadata = admin.GetMetadata(topic, TimeSpan.FromSeconds(10));
            var found = metadata.Topics.FirstOrDefault(t => t.Topic == topic);
            if (found is null || found.Error.IsError || found.Partitions.Count == 0)
                throw new InvalidOperationException($"the mock cluster did not create topic '{topic}' ({found?.Error.Reason ?? "not in the metadata"})");
        }
    }

    public void Dispose() => _host.Dispose();
}
