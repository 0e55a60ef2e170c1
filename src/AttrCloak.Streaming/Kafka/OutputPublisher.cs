using AttrCloak.Streaming.Pipeline;
using System.Diagnostics;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace AttrCloak.Streaming.Kafka;

/// <summary>
/// Sends batches of output messages (cloaked embeddings, tombstones, dead letters) and waits until Kafka has
/// acknowledged every one of them; a message whose delivery failed is sent again with exponential backoff until it
/// is acknowledged or the worker stops. Nothing is dropped: <see cref="Await"/> returns only when all are in.
/// <see cref="Send"/> does not wait, so the caller can work on the next batch while the acknowledgements come in
/// (librdkafka's poll thread runs the delivery handlers). A fatal producer error (the idempotent producer lost its
/// sequence state) replaces the producer and re-sends what was not acknowledged. Used from one thread at a time.
/// </summary>
public sealed class OutputPublisher : IDisposable
{
    private static readonly TimeSpan FirstRetryDelay = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(5);

    private readonly Func<Action<Error>, IProducer<byte[], byte[]>> _build;
    private readonly ILogger _logger;
    private IProducer<byte[], byte[]> _producer;
    private volatile bool _fatal;
    private readonly OutputDelivery _single = new();
    private readonly IBatchObserver? _observer;

    /// <param name="build">Builds a producer that calls the given action on a fatal error (see <see cref="KafkaClients.ProducerBuilder"/>).</param>
    /// <param name="logger">Where delivery retries are reported (never with keys or values).</param>
    /// <param name="observer">May hold acknowledgements back (<see cref="IBatchObserver.AcknowledgementsAllowed"/>; tests).</param>
    public OutputPublisher(Func<Action<Error>, IProducer<byte[], byte[]>> build, ILogger logger, IBatchObserver? observer = null)
    {
        _build = build ?? throw new ArgumentNullException(nameof(build));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _observer = observer;
        _producer = build(OnFatal);
    }

    /// <summary>Delivery attempts that failed and were retried (tests, logs).</summary>
    public long RetriedDeliveries { get; private set; }

    /// <summary>
    /// Produces every message and blocks until all are acknowledged. <paramref name="cancellationToken"/> abandons the
    /// wait (the caller then must not store the batch's offsets).
    /// </summary>
    public void SendAndAwait(IReadOnlyList<OutboundMessage> messages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0) return;
        Send(messages, _single, cancellationToken);
        // Send now instead of after linger.ms: nothing else is coming while the caller waits.
        _producer.Flush(cancellationToken);
        Await(_single, [], cancellationToken);
    }

    /// <summary>
    /// Produces every message of <paramref name="messages"/> (kept by reference until <see cref="Await"/> returns)
    /// without waiting for acknowledgements, tracked by <paramref name="delivery"/> (reusable once awaited).
    /// </summary>
    public OutputDelivery Send(IReadOnlyList<OutboundMessage> messages, OutputDelivery delivery, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(delivery);
        if (_fatal) ReplaceProducer();
        delivery.Start(messages);
        for (var i = 0; i < messages.Count; i++) Produce(messages[i], delivery, i, cancellationToken);
        return delivery;
    }

    /// <summary>
    /// Blocks until every message of <paramref name="delivery"/> is acknowledged, re-sending failed ones.
    /// <paramref name="later"/> are the deliveries sent after it and not yet awaited: a failed message is re-sent only
    /// after they are settled, together with their messages for the same keys, so that each key's newest output is
    /// still the last one on its partition.
    /// </summary>
    public void Await(OutputDelivery delivery, IReadOnlyList<OutputDelivery> later, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(delivery);
        ArgumentNullException.ThrowIfNull(later);
        _observer?.WaitUntilAcknowledgementsAllowed(cancellationToken);
        var delay = FirstRetryDelay;
        while (true)
        {
            delivery.Wait(cancellationToken);
            var failed = delivery.Failed();
            if (failed.Count == 0) return;

            var resend = new List<OutboundMessage>(failed.Count);
            foreach (var i in failed) resend.Add(delivery.Current[i]);
            if (later.Count > 0)
            {
                var keys = resend.Select(KeyOf).ToHashSet(StringComparer.Ordinal);
                foreach (var next in later)
                {
                    next.Wait(cancellationToken);
                    foreach (var m in next.Current)
                        if (keys.Contains(KeyOf(m))) resend.Add(m);
                }
            }
            RetriedDeliveries += failed.Count;
            _logger.LogWarning("Kafka did not acknowledge {Count} of {Total} output messages ({Error}); sending them again in {Delay} ms",
                failed.Count, delivery.Current.Count, delivery.FirstError, (int)delay.TotalMilliseconds);
            cancellationToken.WaitHandle.WaitOne(delay);
            cancellationToken.ThrowIfCancellationRequested();
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetryDelay.Ticks));
            Send(resend, delivery, cancellationToken);
            _producer.Flush(cancellationToken);
        }
    }

    /// <summary>Whether <see cref="Await"/> of <paramref name="delivery"/> would return at once (every report in, none failed).</summary>
    public bool IsAcknowledged(OutputDelivery delivery)
    {
        ArgumentNullException.ThrowIfNull(delivery);
        return _observer?.AcknowledgementsAllowed != false && delivery.IsSettled && delivery.Failed().Count == 0;
    }

    /// <summary>Sends what librdkafka still holds back for linger.ms now; blocks until everything queued is acknowledged.</summary>
    public void Flush(CancellationToken cancellationToken) => _producer.Flush(cancellationToken);

    private static string KeyOf(OutboundMessage m) => m.Topic + "\n" + (m.Key is null ? "" : Convert.ToBase64String(m.Key));

    private void Produce(OutboundMessage message, OutputDelivery delivery, int index, CancellationToken cancellationToken)
    {
        var kafkaMessage = new Message<byte[], byte[]> { Key = message.Key!, Value = message.Value!, Headers = message.Headers };
        while (true)
        {
            try
            {
                _producer.Produce(message.Topic, kafkaMessage, delivery.Handler(index));
                return;
            }
            catch (ProduceException<byte[], byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
            {
                // The local queue drains as the broker acknowledges; wait a little and try again.
                cancellationToken.ThrowIfCancellationRequested();
                _producer.Poll(TimeSpan.FromMilliseconds(50));
            }
            catch (KafkaException e) when (e.Error.IsFatal)
            {
                ReplaceProducer();
            }
        }
    }

    private void OnFatal(Error error) => _fatal = true;

    private void ReplaceProducer()
    {
        _logger.LogError("The Kafka producer hit a fatal error; replacing it and sending the unacknowledged outputs again");
        var old = _producer;
        _fatal = false;
        _producer = _build(OnFatal);
        try { old.Dispose(); }
        catch (KafkaException) { /* a broken producer may fail to close; its messages are re-sent by the new one */ }
    }

    /// <summary>How long <see cref="Dispose"/> may send what is still queued (the worker sets what is left of its shutdown budget).</summary>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Sends what is still queued (for at most <see cref="CloseTimeout"/>) and closes the producer.</summary>
    public void Dispose()
    {
        try { _producer.Flush(CloseTimeout); }
        catch (KafkaException) { }
        _producer.Dispose();
    }
}

/// <summary>
/// Acknowledgement bookkeeping of one batch's outputs (<see cref="OutputPublisher.Send"/>): reusable once awaited, so
/// that its per-position delivery handlers are made once.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "Owned by one OutputPublisher for the worker's lifetime and reused batch after batch; ManualResetEventSlim blocks on a monitor and allocates a kernel handle only when its WaitHandle is read, which this type never does.")]
public sealed class OutputDelivery
{
    private readonly ManualResetEventSlim _done = new(false);
    private int _outstanding;
    private Error?[] _errors = [];
    private Action<DeliveryReport<byte[], byte[]>>?[] _handlers = [];
    private readonly List<int> _failed = [];

    /// <summary>The messages of the current send round.</summary>
    internal IReadOnlyList<OutboundMessage> Current { get; private set; } = [];

    internal Error? FirstError { get; private set; }

    /// <summary>When the last delivery report of the current round came in (<see cref="System.Diagnostics.Stopwatch"/> ticks).</summary>
    public long SettledAt => Volatile.Read(ref _settledAt);

    private long _settledAt;

    /// <summary>Every message of the current round has a delivery report (acknowledged or failed).</summary>
    public bool IsSettled => Volatile.Read(ref _outstanding) == 0;

    internal void Start(IReadOnlyList<OutboundMessage> messages)
    {
        var count = messages.Count;
        if (_errors.Length < count)
        {
            Array.Resize(ref _errors, Math.Max(count, _errors.Length * 2));
            Array.Resize(ref _handlers, _errors.Length);
        }
        Current = messages;
        FirstError = null;
        Array.Clear(_errors);
        _done.Reset();
        Volatile.Write(ref _outstanding, count);
        if (count == 0)
        {
            _settledAt = System.Diagnostics.Stopwatch.GetTimestamp();
            _done.Set();
        }
    }

    internal Action<DeliveryReport<byte[], byte[]>> Handler(int index) =>
        // One delegate per message position, made once and reused by later rounds and batches.
        _handlers[index] ??= report =>
        {
            if (report.Error.IsError) _errors[index] = report.Error;
            if (Interlocked.Decrement(ref _outstanding) == 0)
            {
                Volatile.Write(ref _settledAt, System.Diagnostics.Stopwatch.GetTimestamp());
                _done.Set();
            }
        };

    internal void Wait(CancellationToken cancellationToken) => _done.Wait(cancellationToken);

    internal List<int> Failed()
    {
        _failed.Clear();
        for (var i = 0; i < Current.Count; i++)
            if (_errors[i] is { } e)
            {
                FirstError ??= e;
                _failed.Add(i);
            }
        return _failed;
    }
}

/// <summary>One message for <see cref="OutputPublisher"/>; a null <see cref="Value"/> is a tombstone.</summary>
public readonly record struct OutboundMessage(string Topic, byte[]? Key, byte[]? Value, Headers? Headers);
