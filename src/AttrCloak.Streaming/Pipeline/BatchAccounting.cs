using System.Diagnostics;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Monitoring;
using Confluent.Kafka;
using Prometheus;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>The loop's stages whose time is counted (<c>attrcloak_stage_seconds_total</c>).</summary>
internal enum Stage
{
    Poll,
    Decode,
    StoreRead,
    Cloak,
    StoreApply,
    Encode,
    Produce,
    AckWait,
    Commit,
}

/// <summary>
/// What the loop reports: time per stage, and once a batch is acknowledged its events' outcomes, dead letters,
/// latencies, published records and the served-population observer; the consumer lag; counts for tests and benchmarks.
/// Used by the consume thread; the counts may be read from any thread.
/// </summary>
internal sealed class BatchAccounting
{
    private readonly WorkerMetrics _metrics;
    private readonly IServedPopulationObserver? _observer;
    private readonly KafkaOptions _kafka;
    private readonly Counter.Child[] _stages;
    private long _processed;
    private long _userReads, _userCacheHits;

    public BatchAccounting(WorkerMetrics metrics, IServedPopulationObserver? observer, KafkaOptions kafka)
    {
        _metrics = metrics;
        _observer = observer;
        _kafka = kafka;
        _stages =
        [
            metrics.StageSeconds.WithLabels("poll"),
            metrics.StageSeconds.WithLabels("decode"),
            metrics.StageSeconds.WithLabels("store_read"),
            metrics.StageSeconds.WithLabels("cloak"),
            metrics.StageSeconds.WithLabels("store_apply"),
            metrics.StageSeconds.WithLabels("encode"),
            metrics.StageSeconds.WithLabels("produce"),
            metrics.StageSeconds.WithLabels("ack_wait"),
            metrics.StageSeconds.WithLabels("commit"),
        ];
    }

    /// <summary>Inbound events fully handled (output acknowledged, offset stored), dead letters included.</summary>
    public long ProcessedEvents => Interlocked.Read(ref _processed);

    /// <summary>Users read from the store, and users taken from the worker's cache instead.</summary>
    public (long Read, long Cached) UserLookups => (Interlocked.Read(ref _userReads), Interlocked.Read(ref _userCacheHits));

    public void CountUserLookups(int read, int cached)
    {
        Interlocked.Add(ref _userReads, read);
        Interlocked.Add(ref _userCacheHits, cached);
    }

    /// <summary>Counts the time since <paramref name="since"/> to <paramref name="stage"/> and moves <paramref name="since"/> to now.</summary>
    public void Lap(Stage stage, ref long since)
    {
        var now = Stopwatch.GetTimestamp();
        _stages[(int)stage].Inc(Seconds(now - since));
        since = now;
    }

    /// <summary>Optional: per-event consume-to-acknowledgement latencies (benchmarks).</summary>
    public LatencyRecorder? Latencies { get; set; }

    /// <summary>Metrics and the observer, once everything of <paramref name="batch"/> is acknowledged.</summary>
    public void Account(Batch batch)
    {
        // Latency ends when the outputs were acknowledged (the moment they are published), not when the pipeline
        // got round to looking: with pipelining that is after the next batch's store work.
        var now = batch.Outputs.Count > 0 ? batch.Delivery.SettledAt : Stopwatch.GetTimestamp();
        for (var i = 0; i < batch.Count; i++)
        {
            ref var slot = ref batch.Slots[i];
            var type = slot.Type ?? WorkerMetrics.EventTypes.Undecodable;
            if ((slot.DecodeError ?? slot.PlanError) is { } error)
            {
                _metrics.Events.WithLabels(type, WorkerMetrics.Outcomes.DeadLettered).Inc();
                _metrics.DeadLetters.WithLabels(error.Reason.Label()).Inc();
                if (error.Reason is ReasonCode.UnknownUser or ReasonCode.StoreRejected or ReasonCode.InternalError && slot.Event is not null)
                    _metrics.FailClosed.WithLabels(type).Inc();
                continue;
            }
            var outcome = slot.Retired ? WorkerMetrics.Outcomes.Retired
                : !slot.Decided ? WorkerMetrics.Outcomes.Stale
                : slot.Outcome switch
                {
                    ApplyOutcome.Applied => WorkerMetrics.Outcomes.Applied,
                    ApplyOutcome.Duplicate => WorkerMetrics.Outcomes.Duplicate,
                    _ => WorkerMetrics.Outcomes.Stale,
                };
            _metrics.Events.WithLabels(type, outcome).Inc();
            if (slot.Decided && slot.Outcome is ApplyOutcome.Applied or ApplyOutcome.Duplicate)
            {
                var seconds = Seconds(now - slot.ConsumedAt);
                _metrics.RecloakLatency.Observe(seconds);
                Latencies?.Record(seconds);
            }
        }
        _metrics.BatchSize.Observe(batch.Count);
        foreach (var s in batch.Served)
            _metrics.Published.WithLabels(s.Cloaked is null ? "tombstone" : "cloaked").Inc();
        if (_observer is not null)
            foreach (var s in batch.Served)
            {
                if (s.Cloaked is null) _observer.OnForgotten(s.UserId);
                else _observer.OnServed(s.UserId, s.ModelVersion!, s.Cloaked, s.Classes!);
            }
        Interlocked.Add(ref _processed, batch.Count);
    }

    /// <summary>One published serving record (a tombstone when <paramref name="cloaked"/> is null): the metric and the observer.</summary>
    public void Served(string userId, string? modelVersion, float[]? cloaked, int[]? classes)
    {
        _metrics.Published.WithLabels(cloaked is null ? "tombstone" : "cloaked").Inc();
        if (_observer is null) return;
        if (cloaked is null) _observer.OnForgotten(userId);
        else _observer.OnServed(userId, modelVersion!, cloaked, classes!);
    }

    /// <summary>The consumer lag per input topic, from watermarks cached from fetch responses and local positions (no broker round trip).</summary>
    public void RefreshLag(IConsumer<byte[], byte[]> consumer)
    {
        long embeddings = 0, requests = 0;
        foreach (var tp in consumer.Assignment)
        {
            var high = consumer.GetWatermarkOffsets(tp).High;
            var position = consumer.Position(tp);
            if (high == Offset.Unset || position == Offset.Unset) continue;
            var lag = Math.Max(0, high.Value - position.Value);
            if (tp.Topic == _kafka.EmbeddingsTopic) embeddings += lag;
            else requests += lag;
        }
        _metrics.ConsumerLag.WithLabels(_kafka.EmbeddingsTopic).Set(embeddings);
        _metrics.ConsumerLag.WithLabels(_kafka.PrivacyRequestsTopic).Set(requests);
    }

    public static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;
}
