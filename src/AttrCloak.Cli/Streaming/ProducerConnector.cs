using AttrCloak.Streaming.Hosting;
using AttrCloak.Tools.Replay;

namespace AttrCloak.Cli.Streaming;

/// <summary>The bulk producer of `replay` and `bootstrap --publish`, checked to reach the brokers before any work starts.</summary>
public static class ProducerConnector
{
    /// <summary>
    /// A producer for <paramref name="kafka"/>'s brokers that has fetched their metadata within 5 s; a usage error
    /// (<paramref name="whenNoBrokers"/> when none is configured) otherwise.
    /// </summary>
    public static KafkaBulkProducer Connect(KafkaOptions kafka, string whenNoBrokers)
    {
        ArgumentNullException.ThrowIfNull(kafka);
        if (string.IsNullOrWhiteSpace(kafka.BootstrapServers)) throw new UsageException(whenNoBrokers);
        var producer = new KafkaBulkProducer(kafka.BootstrapServers, kafka.Client);
        try
        {
            producer.CheckReachable(TimeSpan.FromSeconds(5));
        }
        catch (Confluent.Kafka.KafkaException e)
        {
            producer.Dispose();
            throw new UsageException($"cannot reach Kafka at {kafka.BootstrapServers}: {e.Error.Reason}");
        }
        return producer;
    }
}
