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
            // Broker connection states every second: how readiness sees a broker come back (PipelineStatus.KafkaUp).
            StatisticsIntervalMs = 1000,
            // Membership changes cost little: a member that stops heartbeating is out of the group after 6 s (the
            // brokers' default minimum), not librdkafka's 45 s, during which its partitions would wait (and on
            // librdkafka's mock broker every rebalance waits one session timeout for the members to rejoin).
            SessionTimeoutMs = 6000,
            HeartbeatIntervalMs = 2000,
            // Static membership (KafkaOptions.GroupInstanceId): a restarted instance takes its partitions back
            // without a rebalance. "auto" is resolved by the host, which knows the HTTP port (GuardHost).
            GroupInstanceId = options.ResolveGroupInstanceId(httpPort: null),
        };
        AddExtra(config, options);
        config.GroupId = options.ConsumerGroup;
        config.EnableAutoOffsetStore = false;
        // The range assignor gives partition p of both input topics (same partition count, same key) to one member,
        // so that one user's updates and privacy requests meet in one instance (its user cache and batch folding rely
        // on it). The cooperative-sticky assignor would keep members consuming through a rebalance, but assigns the
        // topics independently (measured: one instance got every embeddings partition, the other every requests one).
        config.PartitionAssignmentStrategy = PartitionAssignmentStrategy.Range;
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

    /// <summary>
    /// The consumer, with librdkafka's log routed to <paramref name="logger"/> (no payloads are ever logged by
    /// librdkafka); <paramref name="onBrokers"/> sees whether a broker is reachable: false on "all brokers down",
    /// and from each statistics report (<c>statistics.interval.ms</c>) whether any broker connection is up.
    /// </summary>
    public static ConsumerBuilder<byte[], byte[]> ConsumerBuilder(KafkaOptions options, ILogger logger, Action<bool>? onBrokers = null, Action<string>? onStatistics = null)
    {
        var builder = new ConsumerBuilder<byte[], byte[]>(ConsumerConfig(options))
            .SetLogHandler((_, m) => Log(logger, m))
            .SetErrorHandler((_, e) =>
            {
                LogError(logger, "consumer", e);
                if (e.Code == ErrorCode.Local_AllBrokersDown) onBrokers?.Invoke(false);
            });
        if (onBrokers is not null || onStatistics is not null)
            builder.SetStatisticsHandler((_, json) =>
            {
                if (onBrokers is not null && AnyBrokerUp(json) is { } up) onBrokers(up);
                onStatistics?.Invoke(json);
            });
        return builder;
    }

    /// <summary>
    /// From a librdkafka statistics report: whether any broker connection (bootstrap or learned) is in state UP;
    /// null when the report has no broker list (then nothing is concluded).
    /// </summary>
    internal static bool? AnyBrokerUp(string statisticsJson)
    {
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(statisticsJson);
            if (!document.RootElement.TryGetProperty("brokers", out var brokers) || brokers.ValueKind != System.Text.Json.JsonValueKind.Object)
                return null;
            var any = false;
            foreach (var broker in brokers.EnumerateObject())
            {
                // Only real connections count: "configured" (bootstrap) and "learned" (from metadata); the internal
                // pseudo-broker never connects, and a "logical" one (the group coordinator) stands for another.
                if (!broker.Value.TryGetProperty("source", out var source) || source.GetString() is not ("configured" or "learned")) continue;
                any = true;
                if (broker.Value.TryGetProperty("state", out var state) && state.GetString() == "UP") return true;
            }
            return any ? false : null;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// The producer, with librdkafka's log routed to <paramref name="logger"/>; <paramref name="onFatal"/> sees fatal
    /// errors, <paramref name="onBrokers"/> gets false on "all brokers down".
    /// </summary>
    public static ProducerBuilder<byte[], byte[]> ProducerBuilder(KafkaOptions options, ILogger logger, Action<Error>? onFatal = null, Action<bool>? onBrokers = null) =>
        new ProducerBuilder<byte[], byte[]>(ProducerConfig(options))
            .SetLogHandler((_, m) => Log(logger, m))
            .SetErrorHandler((_, e) =>
            {
                LogError(logger, "producer", e);
                if (e.IsFatal) onFatal?.Invoke(e);
                if (e.Code == ErrorCode.Local_AllBrokersDown) onBrokers?.Invoke(false);
            });

    /// <summary>
    /// Creates (and at once disposes) the worker's consumer and producer from <paramref name="options"/>, so that a
    /// client setting librdkafka refuses (an unknown property, SASL without credentials, a bad value) is a one-line
    /// configuration error at start-up, not a crash of the running worker. Connects to nothing on purpose (clients
    /// connect lazily; the bootstrap servers are not contacted before the first request).
    /// </summary>
    /// <exception cref="StreamingConfigurationException">librdkafka refused the configuration; the message is its reason.</exception>
    public static void CheckConfiguration(KafkaOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        try
        {
            using (new ProducerBuilder<byte[], byte[]>(ProducerConfig(options)).SetLogHandler((_, _) => { }).Build()) { }
            using (new ConsumerBuilder<byte[], byte[]>(ConsumerConfig(options)).SetLogHandler((_, _) => { }).Build()) { }
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or KafkaException)
        {
            throw new StreamingConfigurationException(
                $"{KafkaOptions.SectionName}: the Kafka client refuses the configuration: {e.Message} (AttrCloak:Kafka:Client and the environment variables AttrCloak__Kafka__Client__...)");
        }
    }

    /// <summary>
    /// Commits the stored offsets and closes <paramref name="consumer"/> (it leaves its group, so that its partitions
    /// move at once), giving up after <paramref name="budget"/>: librdkafka's close waits for the group coordinator,
    /// which may be gone, for up to a socket timeout or longer. Given up, the consumer is left to the process's end
    /// (its stored offsets are not committed: those events are redelivered, which the worker absorbs); disposing it
    /// would block too. Returns whether it closed in time.
    /// </summary>
    public static bool CloseWithin(IConsumer<byte[], byte[]> consumer, TimeSpan budget, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(consumer);
        ArgumentNullException.ThrowIfNull(logger);
        var closing = new Thread(() =>
        {
            try
            {
                consumer.Commit();
            }
            catch (KafkaException e) when (e.Error.Code is ErrorCode.Local_NoOffset or ErrorCode.Local_State)
            {
                // nothing stored since the last commit, or not in a group
            }
            catch (KafkaException e)
            {
                logger.LogWarning("Committing the stored offsets at shutdown failed ({Reason}); the last batches may be redelivered (idempotent)", e.Error.Reason);
            }
            try { consumer.Close(); }
            catch (KafkaException e) { logger.LogWarning("Closing the Kafka consumer failed: {Reason}", e.Error.Reason); }
            consumer.Dispose();
        })
        {
            Name = "attrcloak-kafka-close",
            IsBackground = true, // never keeps the process alive
        };
        closing.Start();
        if (closing.Join(budget < TimeSpan.Zero ? TimeSpan.Zero : budget)) return true;
        logger.LogWarning(
            "Kafka did not let the consumer commit and leave its group within {Seconds:F1} s (broker gone?); stopping without it: offsets stored since the last commit are redelivered (idempotent), and the group moves this instance's partitions once its session expires",
            budget.TotalSeconds);
        return false;
    }

    private static string Servers(KafkaOptions options) =>
        string.IsNullOrWhiteSpace(options.BootstrapServers)
            ? throw new StreamingConfigurationException(
                $"{KafkaOptions.SectionName}:BootstrapServers is empty: name the brokers (host:port,...), or start a MockKafkaCluster and use its address (demo and tests only)")
            : options.BootstrapServers;

    private static void AddExtra(ClientConfig config, KafkaOptions options)
    {
        // One Client section serves both clients; each gets only the properties it understands, so that e.g. an
        // operator's session.timeout.ms does not make librdkafka warn on every start that the producer ignores it.
        var skip = config is ProducerConfig ? ConsumerOnly : ProducerOnly;
        foreach (var (key, value) in options.Client)
            if (!skip.Contains(key)) config.Set(key, value);
    }

    // librdkafka's CONFIGURATION.md, properties marked C (consumer only) and P (producer only).
    private static readonly HashSet<string> ConsumerOnly = new(StringComparer.Ordinal)
    {
        "group.id", "group.instance.id", "partition.assignment.strategy", "session.timeout.ms", "heartbeat.interval.ms",
        "group.protocol.type", "group.protocol", "group.remote.assignor", "coordinator.query.interval.ms",
        "max.poll.interval.ms", "enable.auto.commit", "auto.commit.interval.ms", "enable.auto.offset.store",
        "queued.min.messages", "queued.max.messages.kbytes", "fetch.wait.max.ms", "fetch.queue.backoff.ms",
        "fetch.message.max.bytes", "max.partition.fetch.bytes", "fetch.max.bytes", "fetch.min.bytes",
        "fetch.error.backoff.ms", "isolation.level", "enable.partition.eof", "check.crcs", "auto.offset.reset",
        "consume.callback.max.messages",
    };

    private static readonly HashSet<string> ProducerOnly = new(StringComparer.Ordinal)
    {
        "transactional.id", "transaction.timeout.ms", "enable.idempotence", "enable.gapless.guarantee",
        "queue.buffering.max.messages", "queue.buffering.max.kbytes", "queue.buffering.max.ms", "linger.ms",
        "message.send.max.retries", "retries", "queue.buffering.backpressure.threshold", "compression.codec",
        "compression.type", "compression.level", "batch.num.messages", "batch.size", "delivery.report.only.error",
        "sticky.partitioning.linger.ms", "request.required.acks", "acks", "request.timeout.ms", "message.timeout.ms",
        "delivery.timeout.ms", "partitioner",
    };

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
