using System.Globalization;
using AttrCloak.Streaming.Hosting;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace AttrCloak.Streaming.Kafka;

/// <summary>
/// Builds the worker's Kafka clients from <see cref="KafkaOptions"/>: the settings at-least-once needs are fixed here
/// (manual offset store, idempotent producer); <see cref="KafkaOptions.Client"/> adds connection properties (security,
/// SASL, TLS) and may tune others, but cannot switch the fixed ones off.
/// </summary>
public static class KafkaClients
{
    /// <summary>
    /// Consumer of the input topics. Offsets are stored by the pipeline only after Redis is updated and the outputs are
    /// acknowledged (<c>enable.auto.offset.store=false</c>); librdkafka then commits the stored ones every
    /// second and on rebalance and close, so an acknowledged batch is committed within a second.
    /// </summary>
    public static ConsumerConfig ConsumerConfig(KafkaOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var config = new ConsumerConfig
        {
            BootstrapServers = Servers(options),
            GroupId = options.ConsumerGroup,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = true,
            AutoCommitIntervalMs = 1000,
            // A quiet partition must not hold a batch back for the broker's default 500 ms.
            FetchWaitMaxMs = 10,
            // New input topics (e.g. created after the worker started) are noticed within seconds, not minutes.
            TopicMetadataRefreshIntervalMs = 5000,
        };
        AddExtra(config, options);
        config.GroupId = options.ConsumerGroup;
        config.EnableAutoOffsetStore = false;
        config.ClientId ??= "attrcloak-guard";
        return config;
    }

    /// <summary>Producer of cloaked embeddings, tombstones and dead letters: idempotent, acks from all in-sync replicas.</summary>
    public static ProducerConfig ProducerConfig(KafkaOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var config = new ProducerConfig
        {
            BootstrapServers = Servers(options),
            LingerMs = 2,
            // Java clients partition by murmur2 of the key: the serving topic then agrees with them on where a user is.
            Partitioner = Partitioner.Murmur2Random,
            DeliveryReportFields = "status",
        };
        AddExtra(config, options);
        config.EnableIdempotence = true;
        config.Acks = Acks.All;
        config.ClientId ??= "attrcloak-guard";
        return config;
    }

    /// <summary>The consumer, with librdkafka's log routed to <paramref name="logger"/> (no payloads are ever logged by librdkafka).</summary>
    public static ConsumerBuilder<byte[], byte[]> ConsumerBuilder(KafkaOptions options, ILogger logger) =>
        new ConsumerBuilder<byte[], byte[]>(ConsumerConfig(options))
            .SetLogHandler((_, m) => Log(logger, m))
            .SetErrorHandler((_, e) => LogError(logger, "consumer", e));

    /// <summary>The producer, with librdkafka's log routed to <paramref name="logger"/>; <paramref name="onFatal"/> sees fatal errors.</summary>
    public static ProducerBuilder<byte[], byte[]> ProducerBuilder(KafkaOptions options, ILogger logger, Action<Error>? onFatal = null) =>
        new ProducerBuilder<byte[], byte[]>(ProducerConfig(options))
            .SetLogHandler((_, m) => Log(logger, m))
            .SetErrorHandler((_, e) =>
            {
                LogError(logger, "producer", e);
                if (e.IsFatal) onFatal?.Invoke(e);
            });

    private static string Servers(KafkaOptions options) =>
        string.IsNullOrWhiteSpace(options.BootstrapServers)
            ? throw new StreamingConfigurationException(
                $"{KafkaOptions.SectionName}:BootstrapServers is empty: name the brokers (host:port,...), or start a {nameof(MockKafkaCluster)} and use its address (demo and tests only)")
            : options.BootstrapServers;

    private static void AddExtra(ClientConfig config, KafkaOptions options)
    {
        foreach (var (key, value) in options.Client)
            config.Set(key, value);
    }

    private static void Log(ILogger logger, LogMessage m)
    {
        var level = m.Level switch
        {
            SyslogLevel.Emergency or SyslogLevel.Alert or SyslogLevel.Critical or SyslogLevel.Error => LogLevel.Error,
            SyslogLevel.Warning => LogLevel.Warning,
            SyslogLevel.Notice or SyslogLevel.Info => LogLevel.Information,
            _ => LogLevel.Debug,
        };
        if (logger.IsEnabled(level))
            logger.Log(level, "librdkafka {Facility} {Name}: {Message}", m.Facility, m.Name, m.Message);
    }

    private static void LogError(ILogger logger, string client, Error e)
    {
        // Transient broker errors are retried by librdkafka itself; only fatal ones need the worker's attention.
        var level = e.IsFatal ? LogLevel.Error : LogLevel.Warning;
        logger.Log(level, "Kafka {Client} error {Code} ({Fatal}): {Reason}", client, e.Code,
            e.IsFatal ? "fatal" : "transient", e.Reason);
    }

    internal static string Describe(IEnumerable<TopicPartition> partitions) =>
        string.Join(", ", partitions.GroupBy(p => p.Topic).Select(g =>
            $"{g.Key}[{string.Join(',', g.Select(p => p.Partition.Value.ToString(CultureInfo.InvariantCulture)))}]"));
}
