using System.Text;
using AttrCloak.Streaming.Contracts;
using Confluent.Kafka;

namespace AttrCloak.Cli.Tests.Streaming.Walk;

/// <summary>
/// What a recommender reading a topic sees: every partition from the beginning, the LAST value per key (the compacted
/// view of the serving topic; null = a tombstone). Reads on as the topic grows; assigned partitions, no group (no
/// rebalance waits).
/// </summary>
internal sealed class ServingTopic : IDisposable
{
    private readonly IConsumer<byte[], byte[]?> _consumer;
    private readonly Dictionary<string, byte[]?> _latest = new(StringComparer.Ordinal);

    public ServingTopic(string brokers, string topic)
    {
        Topic = topic;
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = brokers }).SetLogHandler((_, _) => { }).Build();
        var partitions = admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.Single().Partitions
            .Select(p => new TopicPartitionOffset(topic, p.PartitionId, Offset.Beginning)).ToList();
        partitions.ShouldNotBeEmpty($"topic {topic} has no partitions");
        _consumer = new ConsumerBuilder<byte[], byte[]?>(new ConsumerConfig
        {
            BootstrapServers = brokers,
            GroupId = "walk-reader-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
        }).SetLogHandler((_, _) => { }).Build();
        _consumer.Assign(partitions);
    }

    public string Topic { get; }

    /// <summary>Messages read so far (every record, not only the latest per key).</summary>
    public int Messages { get; private set; }

    /// <summary>The last value per key read so far.</summary>
    public IReadOnlyDictionary<string, byte[]?> Latest => _latest;

    /// <summary>Reads what is there now (until <paramref name="quiet"/> passes without a message).</summary>
    public void ReadAvailable(TimeSpan quiet)
    {
        while (_consumer.Consume(quiet) is { } r)
        {
            if (r.IsPartitionEOF) continue;
            Messages++;
            _latest[r.Message.Key is null ? "" : Encoding.UTF8.GetString(r.Message.Key)] = r.Message.Value;
        }
    }

    /// <summary>Reads until <paramref name="done"/> holds for the latest values, or throws after <paramref name="timeout"/>.</summary>
    public async Task WaitUntilAsync(Func<IReadOnlyDictionary<string, byte[]?>, bool> done, TimeSpan timeout, Func<string> describe, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            ReadAvailable(TimeSpan.FromMilliseconds(200));
            if (done(_latest)) return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{Topic}: not within {timeout.TotalSeconds:F0} s: {describe()}");
            await Task.Delay(200, ct);
        }
    }

    /// <summary>The serving record of a latest value (null for a tombstone).</summary>
    public static CloakedEmbedding? Decode(byte[]? value) =>
        value is null ? null
        : EventCodec.TryDecodeCloaked(value, out var cloaked, out var error) ? cloaked
        : throw new InvalidOperationException($"not a serving record: {error}");

    public void Dispose()
    {
        _consumer.Close();
        _consumer.Dispose();
    }
}
