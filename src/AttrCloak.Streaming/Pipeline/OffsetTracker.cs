using System.Diagnostics;
using AttrCloak.Streaming.Kafka;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// The batches sent and awaiting their acknowledgements (oldest first), and the offsets stored for them: a batch's
/// offsets are stored only after its every output, and every output of all earlier batches, is acknowledged, so they
/// are stored in consumption order (committed by librdkafka within a second, and on rebalance and close). A
/// partition consumed again from below what was stored before is committed explicitly (<see cref="CommitRewound"/>).
/// Finished batches are kept for reuse. Used by the consume thread (and the rebalance callbacks it runs).
/// </summary>
internal sealed class OffsetTracker(
    IConsumer<byte[], byte[]> consumer,
    OutputPublisher publisher,
    BatchAccounting accounting,
    IBatchObserver? observer,
    ILogger logger)
{
    private readonly Queue<Batch> _unacknowledged = new();
    private readonly Stack<Batch> _spare = new();
    private readonly List<OutputDelivery> _later = [];
    private readonly Dictionary<(string Topic, int Partition), long> _nextOffsets = [];
    private readonly Dictionary<(string Topic, int Partition), long> _lastStored = [];
    private readonly List<TopicPartitionOffset> _rewound = [];

    /// <summary>Sent batches not finished yet.</summary>
    public int Unacknowledged => _unacknowledged.Count;

    /// <summary>A batch to collect into (a finished one, reused).</summary>
    public Batch Rent() => _spare.Count > 0 ? _spare.Pop() : new Batch();

    /// <summary>Gives back a batch that came to nothing (no messages).</summary>
    public void Return(Batch batch) => _spare.Push(batch);

    /// <summary>A batch whose outputs were sent: finished once they are acknowledged.</summary>
    public void Sent(Batch batch) => _unacknowledged.Enqueue(batch);

    /// <summary>
    /// Finishes the batches already acknowledged, oldest first, and waits for the oldest while more than
    /// <paramref name="maxUnacknowledged"/> are outstanding.
    /// </summary>
    public void FinishAcknowledged(int maxUnacknowledged, CancellationToken cancellationToken)
    {
        while (_unacknowledged.Count > 0
               && (_unacknowledged.Count > maxUnacknowledged || publisher.IsAcknowledged(_unacknowledged.Peek().Delivery)))
            FinishOldest(cancellationToken);
    }

    /// <summary>Waits for every sent batch's acknowledgements, oldest first, storing their offsets.</summary>
    public void FinishAll(CancellationToken cancellationToken)
    {
        while (_unacknowledged.Count > 0) FinishOldest(cancellationToken);
    }

    /// <summary>Sent batches acknowledged within a short grace period still get their offsets stored (fewer redeliveries).</summary>
    public void DrainAtShutdown(TimeSpan gracePeriod)
    {
        if (_unacknowledged.Count == 0) return;
        using var grace = new CancellationTokenSource(gracePeriod);
        try
        {
            FinishAll(grace.Token);
        }
        catch (OperationCanceledException)
        {
            logger.LogInformation("{Batches} sent batches were not acknowledged at shutdown; their events are redelivered (idempotent)", _unacknowledged.Count);
        }
    }

    /// <summary>Forgets the unfinished batches (shutdown: their offsets are not stored, they are redelivered).</summary>
    public void Abandon() => _unacknowledged.Clear();

    private void FinishOldest(CancellationToken cancellationToken)
    {
        var batch = _unacknowledged.Peek();
        var t = Stopwatch.GetTimestamp();
        _later.Clear();
        foreach (var b in _unacknowledged)
            if (!ReferenceEquals(b, batch)) _later.Add(b.Delivery);
        publisher.Await(batch.Delivery, _later, cancellationToken);
        observer?.OnStep(new BatchTrace(BatchStep.Acknowledged, batch.Number, []));
        accounting.Lap(Stage.AckWait, ref t);
        accounting.Account(batch);
        StoreOffsets(batch);
        accounting.Lap(Stage.Commit, ref t);
        _unacknowledged.Dequeue();
        batch.Clear();
        _spare.Push(batch);
    }

    private void StoreOffsets(Batch batch)
    {
        _nextOffsets.Clear();
        for (var i = 0; i < batch.Count; i++)
        {
            var r = batch.Slots[i].Result;
            var key = (r.Topic, r.Partition.Value);
            if (!_nextOffsets.TryGetValue(key, out var next) || r.Offset.Value + 1 > next)
                _nextOffsets[key] = r.Offset.Value + 1;
        }
        List<TopicPartitionOffset>? stored = observer is null ? null : [];
        _rewound.Clear();
        foreach (var ((topic, partition), next) in _nextOffsets)
        {
            try
            {
                var offset = new TopicPartitionOffset(topic, partition, next);
                consumer.StoreOffset(offset);
                stored?.Add(offset);
                if (_lastStored.TryGetValue((topic, partition), out var last) && next < last) _rewound.Add(offset);
                _lastStored[(topic, partition)] = next;
            }
            catch (KafkaException e)
            {
                // The partition was revoked meanwhile: its new owner gets these messages again (idempotent).
                logger.LogInformation("Could not store an offset of {Topic}[{Partition}] ({Reason}); its new owner reprocesses the batch", topic, partition, e.Error.Reason);
            }
        }
        if (_rewound.Count > 0) CommitRewound();
        if (stored is not null) observer!.OnStep(new BatchTrace(BatchStep.OffsetsStored, batch.Number, stored));
    }

    /// <summary>
    /// A partition consumed again from an earlier offset than we stored before: its log was replaced (a new, empty
    /// cluster after a broker loss, or a recreated topic) and librdkafka reset the position, or it was redelivered
    /// after a rebalance. librdkafka's auto-commit only moves a committed offset forward, so the old, higher offset
    /// would stay committed, and a restarted worker would skip the events written below it since: commit the real
    /// position explicitly (rare, one round trip).
    /// </summary>
    private void CommitRewound()
    {
        logger.LogWarning("Consuming {Partitions} from earlier offsets than stored before (a new or truncated log, or a redelivery); committing the acknowledged positions explicitly",
            KafkaClients.Describe(_rewound.Select(o => o.TopicPartition)));
        try
        {
            consumer.Commit(_rewound);
        }
        catch (KafkaException e)
        {
            logger.LogWarning("Committing the rewound offsets failed ({Reason}); the auto-commit takes over once they pass the old ones", e.Error.Reason);
        }
    }
}
