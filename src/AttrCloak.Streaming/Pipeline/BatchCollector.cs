using System.Diagnostics;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Kafka;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// The consumer side of the loop: one consumer on the embeddings and privacy-requests topics, its group membership
/// (assignments, revocations, lost partitions), and the polling of a batch: up to <see cref="GuardOptions.MaxBatchEvents"/>
/// messages or <see cref="GuardOptions.MaxBatchWait"/>. After an assignment change the batch keeps only messages of
/// partitions still ours (per-user order), and <c>onAssignmentChanged</c> is told. Also tracks whether a broker is
/// reachable (readiness). Used by the consume thread (librdkafka runs the rebalance callbacks in its polls).
/// </summary>
internal sealed class BatchCollector(
    KafkaOptions kafka,
    GuardOptions guard,
    PipelineStatus status,
    GroupMembership membership,
    BatchAccounting accounting,
    ILogger logger)
{
    private static readonly TimeSpan IdlePoll = TimeSpan.FromMilliseconds(100);
    private volatile bool _assignmentChanged;
    private IConsumer<byte[], byte[]>? _consumer;

    /// <summary>The consumer (after <see cref="Open"/>).</summary>
    public IConsumer<byte[], byte[]> Consumer => _consumer ?? throw new InvalidOperationException("the collector is not open");

    /// <summary>
    /// Builds the consumer. <paramref name="onRevoking"/> runs before partitions are revoked (to store
    /// what is acknowledged, so that the new owner does not redo it); <paramref name="onAssignmentChanged"/> after a
    /// poll that saw the assignment change (with the partitions now held).
    /// </summary>
    public IConsumer<byte[], byte[]> Open(Action onRevoking, Action<IReadOnlyList<TopicPartition>> onAssignmentChanged)
    {
        _onAssignmentChanged = onAssignmentChanged;
        _consumer = KafkaClients.ConsumerBuilder(kafka, logger, OnBrokers, membership.OnStatistics)
            .SetPartitionsAssignedHandler((c, partitions) =>
            {
                OnBrokers(true);
                // The whole new assignment (range assignor, eager protocol); with a cooperative one only what is added.
                logger.LogInformation("Kafka assigned {Partitions}", partitions.Count == 0 ? "no partitions" : KafkaClients.Describe(partitions));
                _assignmentChanged = true;
                membership.Count("assigned");
                membership.SetAssignment(c.Assignment.Concat(partitions).Distinct());
                status.SetGroupJoined(true);
            })
            .SetPartitionsRevokedHandler((c, partitions) =>
            {
                logger.LogInformation("Kafka revoked {Partitions}", KafkaClients.Describe(partitions.Select(p => p.TopicPartition)));
                // Store what is acknowledged before the partitions go, so that the new owner does not redo it.
                onRevoking();
                _assignmentChanged = true;
                membership.Count("revoked");
                var kept = c.Assignment.Except(partitions.Select(p => p.TopicPartition)).ToList();
                membership.SetAssignment(kept);
                // The eager protocol revokes everything; a cooperative one only what moves, leaving the rest served.
                if (kept.Count == 0) status.SetGroupJoined(false);
            })
            .SetPartitionsLostHandler((_, partitions) =>
            {
                logger.LogWarning("Kafka partitions lost: {Partitions}", KafkaClients.Describe(partitions.Select(p => p.TopicPartition)));
                _assignmentChanged = true;
                membership.Count("lost");
                membership.SetAssignment([]);
                status.SetGroupJoined(false);
            })
            .Build();
        return _consumer;
    }

    /// <summary>Subscribes to the two input topics.</summary>
    public void Subscribe() => Consumer.Subscribe([kafka.EmbeddingsTopic, kafka.PrivacyRequestsTopic]);

    private Action<IReadOnlyList<TopicPartition>>? _onAssignmentChanged;

    /// <summary>
    /// Polls one batch into <paramref name="batch"/>. With batches awaiting acknowledgements
    /// (<paramref name="awaitingAcknowledgements"/>) it waits only one batch window for a first message, so that those are finished soon.
    /// </summary>
    public void Collect(Batch batch, bool awaitingAcknowledgements, CancellationToken cancellationToken)
    {
        var consumer = Consumer;
        batch.Count = 0;
        var start = Stopwatch.GetTimestamp();
        var firstWait = awaitingAcknowledgements ? guard.MaxBatchWait : IdlePoll;
        if (Consume(consumer, firstWait, cancellationToken) is { } first)
        {
            batch.Add(first);
            var deadline = Stopwatch.GetTimestamp() + (long)(guard.MaxBatchWait.TotalSeconds * Stopwatch.Frequency);
            while (batch.Count < guard.MaxBatchEvents)
            {
                var remaining = Math.Max(0, deadline - Stopwatch.GetTimestamp());
                var next = Consume(consumer, TimeSpan.FromSeconds((double)remaining / Stopwatch.Frequency), cancellationToken);
                if (next is null) break;
                batch.Add(next);
            }
        }
        accounting.Lap(Stage.Poll, ref start);
        if (_assignmentChanged)
        {
            // A user's partition may have had another owner meanwhile: what we remember of them may be out of date.
            _onAssignmentChanged?.Invoke(consumer.Assignment);
            if (batch.Count > 0) DropUnassigned(consumer, batch);
        }
        _assignmentChanged = false;
    }

    /// <summary>
    /// Whether a Kafka broker is reachable (librdkafka's error and statistics callbacks, assignments, messages): the
    /// worker keeps waiting either way (librdkafka reconnects by itself), readiness follows.
    /// </summary>
    public void OnBrokers(bool up)
    {
        if (up == status.KafkaUp) return;
        if (up) logger.LogInformation("Kafka broker reachable");
        else logger.LogWarning("No Kafka broker reachable; not ready, waiting for the brokers (librdkafka reconnects by itself, no offsets are stored for unacknowledged outputs)");
        status.SetKafkaUp(up);
    }

    /// <summary>Commits what was stored, then leaves the group so that partitions move at once; gives up after <paramref name="budget"/>.</summary>
    public void Close(TimeSpan budget)
    {
        if (_consumer is null) return;
        KafkaClients.CloseWithin(_consumer, budget, logger);
        _consumer = null;
    }

    private ConsumeResult<byte[], byte[]>? Consume(IConsumer<byte[], byte[]> consumer, TimeSpan timeout, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            var result = consumer.Consume(timeout);
            if (result is not null && !status.KafkaUp) OnBrokers(true);
            return result;
        }
        catch (ConsumeException e) when (!e.Error.IsFatal)
        {
            // E.g. a subscribed topic that does not exist yet; librdkafka keeps trying.
            logger.LogWarning("Kafka consume error {Code}: {Reason}", e.Error.Code, e.Error.Reason);
            cancellationToken.WaitHandle.WaitOne(IdlePoll);
            return null;
        }
    }

    /// <summary>After a rebalance, messages of partitions no longer ours are left to their new owner (per-user order).</summary>
    private void DropUnassigned(IConsumer<byte[], byte[]> consumer, Batch batch)
    {
        var assigned = consumer.Assignment.Select(tp => (tp.Topic, tp.Partition.Value)).ToHashSet();
        var slots = batch.Slots;
        var kept = 0;
        for (var i = 0; i < batch.Count; i++)
            if (assigned.Contains((slots[i].Result.Topic, slots[i].Result.Partition.Value)))
                slots[kept++] = slots[i];
        if (kept < batch.Count)
            logger.LogInformation("Left {Count} consumed messages of revoked partitions to their new owner", batch.Count - kept);
        for (var i = kept; i < batch.Count; i++) slots[i] = default;
        batch.Count = kept;
    }
}
