using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using AttrCloak.Streaming.Contracts;
using Confluent.Kafka;

namespace AttrCloak.Tools.Replay;

/// <summary>One message to produce; a null <see cref="Value"/> is a tombstone.</summary>
public sealed record OutboundMessage(string Topic, byte[] Key, byte[]? Value, string? ContentType = null, string? Schema = null);

/// <summary>Where a bulk produce stands.</summary>
/// <param name="Produced">Messages handed to the client.</param>
/// <param name="Acked">Messages the broker acknowledged.</param>
/// <param name="Failed">Messages that failed for good (delivery report with an error).</param>
/// <param name="Elapsed">Since the first message.</param>
/// <param name="Flushing">All messages are produced; waiting for the remaining acknowledgements.</param>
public readonly record struct ProduceProgress(long Produced, long Acked, long Failed, TimeSpan Elapsed, bool Flushing)
{
    /// <summary>Acknowledged messages per second so far.</summary>
    public double AckedPerSecond => Elapsed.TotalSeconds > 0 ? Acked / Elapsed.TotalSeconds : 0;
}

/// <summary>The outcome of <see cref="KafkaBulkProducer.ProduceAsync"/>.</summary>
/// <param name="Produced">Messages handed to the client.</param>
/// <param name="Acked">Messages the broker acknowledged (all replicas: the producer is idempotent, acks=all).</param>
/// <param name="Failed">Messages not acknowledged: failed delivery reports, plus any still unacknowledged when it gave up.</param>
/// <param name="FailureReasons">Failure reason -> count.</param>
/// <param name="Elapsed">From the first message to the last acknowledgement.</param>
/// <param name="Cancelled">Stopped early by cancellation (what was produced was still flushed).</param>
public sealed record ProduceSummary(long Produced, long Acked, long Failed, IReadOnlyDictionary<string, long> FailureReasons, TimeSpan Elapsed, bool Cancelled)
{
    public double AckedPerSecond => Elapsed.TotalSeconds > 0 ? Acked / Elapsed.TotalSeconds : 0;
}

/// <summary>
/// Produces many messages into Kafka at a target rate with an idempotent producer (acks=all, no duplicates on retry,
/// per-partition order kept) and waits for every acknowledgement. Used by `attrcloak replay`, `bootstrap --publish`,
/// the demo and the benchmarks.
/// </summary>
public sealed class KafkaBulkProducer : IDisposable
{
    private readonly IProducer<byte[], byte[]?> _producer;
    private readonly ProducerConfig _config;
    private readonly ConcurrentDictionary<string, long> _failures = new(StringComparer.Ordinal);
    private long _acked;
    private long _failed;

    /// <param name="bootstrapServers">Comma-separated host:port list.</param>
    /// <param name="client">Extra librdkafka properties (security etc.), as <c>AttrCloak:Kafka:Client</c>.</param>
    /// <param name="messageTimeout">How long the client retries one message before reporting it failed (default 30 s).</param>
    public KafkaBulkProducer(string bootstrapServers, IReadOnlyDictionary<string, string>? client = null, TimeSpan? messageTimeout = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(bootstrapServers);
        _config = new ProducerConfig
        {
            BootstrapServers = bootstrapServers,
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = 5,
            BatchNumMessages = 10_000,
            QueueBufferingMaxMessages = 200_000,
            MessageTimeoutMs = (int)(messageTimeout ?? TimeSpan.FromSeconds(30)).TotalMilliseconds,
            ClientId = "attrcloak-replay",
        };
        foreach (var (key, value) in client ?? new Dictionary<string, string>()) _config.Set(key, value);
        _producer = new ProducerBuilder<byte[], byte[]?>(_config)
            .SetLogHandler((_, _) => { }) // connection noise; failures surface as delivery reports or the reachability check
            .Build();
    }

    /// <summary>
    /// Asks the cluster for its brokers (a metadata request, no topic), so that a wrong address fails in seconds with
    /// a clear message instead of after <c>message.timeout.ms</c>. Throws <see cref="KafkaException"/>.
    /// </summary>
    public void CheckReachable(TimeSpan timeout)
    {
        using var admin = new AdminClientBuilder(_config).SetLogHandler((_, _) => { }).Build();
        var metadata = admin.GetMetadata(timeout);
        if (metadata.Brokers.Count == 0)
            throw new KafkaException(new Error(ErrorCode.Local_AllBrokersDown, $"no broker of {_config.BootstrapServers} answered"));
    }

    /// <summary>
    /// Produces <paramref name="messages"/> in order at <paramref name="ratePerSecond"/> (0 = as fast as the client
    /// accepts them), reporting <paramref name="progress"/> about every <paramref name="progressInterval"/>, then waits
    /// until every message is acknowledged or has failed. Cancellation stops producing; what was produced is still
    /// flushed (bounded by the message timeout).
    /// </summary>
    public async Task<ProduceSummary> ProduceAsync(IEnumerable<OutboundMessage> messages, double ratePerSecond,
        IProgress<ProduceProgress>? progress = null, TimeSpan? progressInterval = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (!(ratePerSecond >= 0) || double.IsInfinity(ratePerSecond)) throw new ArgumentOutOfRangeException(nameof(ratePerSecond), ratePerSecond, "must be a finite number >= 0");
        var interval = progressInterval ?? TimeSpan.FromMilliseconds(250);
        var clock = Stopwatch.StartNew();
        var nextReport = interval;
        long produced = 0;
        var cancelled = false;
        var onDelivery = new Action<DeliveryReport<byte[], byte[]?>>(OnDelivery);
        // Counters are per instance; a second call reports only its own messages.
        var ackedBefore = Interlocked.Read(ref _acked);
        var failedBefore = Interlocked.Read(ref _failed);
        var failuresBefore = new Dictionary<string, long>(_failures, StringComparer.Ordinal);
        long Acked() => Interlocked.Read(ref _acked) - ackedBefore;
        long Failed() => Interlocked.Read(ref _failed) - failedBefore;

        foreach (var m in messages)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                cancelled = true;
                break;
            }
            if (ratePerSecond > 0)
            {
                // Pace against the schedule from the start, so that short sleeps do not accumulate drift.
                var ahead = TimeSpan.FromSeconds(produced / ratePerSecond) - clock.Elapsed;
                if (ahead > TimeSpan.FromMilliseconds(1))
                {
                    try { await Task.Delay(ahead, cancellationToken).ConfigureAwait(false); }
                    catch (OperationCanceledException) { cancelled = true; break; }
                }
            }
            var message = new Message<byte[], byte[]?> { Key = m.Key, Value = m.Value, Headers = HeadersOf(m) };
            while (true)
            {
                try
                {
                    _producer.Produce(m.Topic, message, onDelivery);
                    break;
                }
                catch (ProduceException<byte[], byte[]?> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    _producer.Poll(TimeSpan.FromMilliseconds(20)); // the client's queue is full: let deliveries drain it
                }
            }
            produced++;
            if (clock.Elapsed >= nextReport)
            {
                progress?.Report(new ProduceProgress(produced, Acked(), Failed(), clock.Elapsed, false));
                nextReport = clock.Elapsed + interval;
            }
        }

        // Every message either gets acknowledged or fails by its message timeout, so this loop ends.
        while (_producer.Flush(interval) > 0)
            progress?.Report(new ProduceProgress(produced, Acked(), Failed(), clock.Elapsed, true));
        var acked = Acked();
        var failed = Failed();
        progress?.Report(new ProduceProgress(produced, acked, failed, clock.Elapsed, true));
        var reasons = _failures.Select(p => (p.Key, Count: p.Value - failuresBefore.GetValueOrDefault(p.Key)))
            .Where(p => p.Count > 0).ToDictionary(p => p.Key, p => p.Count, StringComparer.Ordinal);
        return new ProduceSummary(produced, acked, failed, reasons, clock.Elapsed, cancelled);
    }

    private void OnDelivery(DeliveryReport<byte[], byte[]?> report)
    {
        if (report.Error.IsError)
        {
            Interlocked.Increment(ref _failed);
            _failures.AddOrUpdate($"{report.Error.Reason} ({report.Error.Code})", 1, (_, n) => n + 1);
        }
        else
        {
            Interlocked.Increment(ref _acked);
        }
    }

    private static Headers? HeadersOf(OutboundMessage m)
    {
        if (m.ContentType is null && m.Schema is null) return null;
        var headers = new Headers();
        if (m.ContentType is not null) headers.Add(KafkaHeaders.ContentType, Encoding.UTF8.GetBytes(m.ContentType));
        if (m.Schema is not null) headers.Add(KafkaHeaders.Schema, Encoding.UTF8.GetBytes(m.Schema));
        return headers;
    }

    public void Dispose() => _producer.Dispose();
}
