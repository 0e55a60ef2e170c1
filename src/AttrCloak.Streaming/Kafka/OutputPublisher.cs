using System.Diagnostics;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace AttrCloak.Streaming.Kafka;

/// <summary>
/// Sends one batch of output messages (cloaked embeddings, tombstones, dead letters) and waits until Kafka has
/// acknowledged every one of them; a message whose delivery failed is sent again with exponential backoff until it
/// is acknowledged or the worker stops. Nothing is dropped: <see cref="SendAndAwait"/> returns only when all are in.
/// A fatal producer error (the idempotent producer lost its sequence state) replaces the producer and re-sends what
/// was not acknowledged. Used from one thread at a time.
/// </summary>
public sealed class OutputPublisher : IDisposable
{
    private static readonly TimeSpan FirstRetryDelay = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(5);

    private readonly Func<Action<Error>, IProducer<byte[], byte[]>> _build;
    private readonly ILogger _logger;
    private IProducer<byte[], byte[]> _producer;
    private volatile bool _fatal;
    private readonly Pending _pending = new();

    /// <param name="build">Builds a producer that calls the given action on a fatal error (see <see cref="KafkaClients.ProducerBuilder"/>).</param>
    /// <param name="logger">Where delivery retries are reported (never with keys or values).</param>
    public OutputPublisher(Func<Action<Error>, IProducer<byte[], byte[]>> build, ILogger logger)
    {
        _build = build ?? throw new ArgumentNullException(nameof(build));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
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
        var pending = _pending;
        pending.EnsureCapacity(messages.Count);
        var todo = new List<int>(messages.Count);
        for (var i = 0; i < messages.Count; i++) todo.Add(i);
        var delay = FirstRetryDelay;
        while (true)
        {
            if (_fatal) ReplaceProducer();
            pending.Reset(todo.Count);
            foreach (var i in todo) Produce(messages[i], pending, i, cancellationToken);
            // Flush sends now instead of after linger.ms, then the delivery handlers (on librdkafka's poll thread) finish.
            _producer.Flush(cancellationToken);
            pending.Wait(cancellationToken);

            todo.Clear();
            todo.AddRange(pending.Failed());
            if (todo.Count == 0) return;
            RetriedDeliveries += todo.Count;
            _logger.LogWarning("Kafka did not acknowledge {Count} of {Total} output messages ({Error}); sending them again in {Delay} ms",
                todo.Count, messages.Count, pending.FirstError, (int)delay.TotalMilliseconds);
            cancellationToken.WaitHandle.WaitOne(delay);
            cancellationToken.ThrowIfCancellationRequested();
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetryDelay.Ticks));
        }
    }

    private void Produce(OutboundMessage message, Pending pending, int index, CancellationToken cancellationToken)
    {
        var kafkaMessage = new Message<byte[], byte[]> { Key = message.Key!, Value = message.Value!, Headers = message.Headers };
        while (true)
        {
            try
            {
                _producer.Produce(message.Topic, kafkaMessage, pending.Handler(index));
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

    /// <summary>Sends what is still queued (for at most 5 s) and closes the producer.</summary>
    public void Dispose()
    {
        try { _producer.Flush(TimeSpan.FromSeconds(5)); }
        catch (KafkaException) { }
        _producer.Dispose();
    }

    /// <summary>Acknowledgement bookkeeping of one send round.</summary>
    private sealed class Pending
    {
        private readonly ManualResetEventSlim _done = new(false);
        private int _outstanding;
        private Error?[] _errors = [];
        private Action<DeliveryReport<byte[], byte[]>>?[] _handlers = [];
        private readonly List<int> _indices = [];

        public void EnsureCapacity(int count)
        {
            if (_errors.Length >= count) return;
            Array.Resize(ref _errors, Math.Max(count, _errors.Length * 2));
            Array.Resize(ref _handlers, _errors.Length);
        }

        public Error? FirstError { get; private set; }

        public void Reset(int count)
        {
            _outstanding = count;
            _done.Reset();
            FirstError = null;
            Array.Clear(_errors);
            if (count == 0) _done.Set();
        }

        public Action<DeliveryReport<byte[], byte[]>> Handler(int index)
        {
            // One delegate per message position, made once and reused by later rounds and batches.
            return _handlers[index] ??= report =>
            {
                if (report.Error.IsError) _errors[index] = report.Error;
                if (Interlocked.Decrement(ref _outstanding) == 0) _done.Set();
            };
        }

        public void Wait(CancellationToken cancellationToken) => _done.Wait(cancellationToken);

        public IEnumerable<int> Failed()
        {
            _indices.Clear();
            for (var i = 0; i < _errors.Length; i++)
                if (_errors[i] is { } e)
                {
                    FirstError ??= e;
                    _indices.Add(i);
                }
            return _indices;
        }
    }
}

/// <summary>One message for <see cref="OutputPublisher"/>; a null <see cref="Value"/> is a tombstone.</summary>
public readonly record struct OutboundMessage(string Topic, byte[]? Key, byte[]? Value, Headers? Headers);
