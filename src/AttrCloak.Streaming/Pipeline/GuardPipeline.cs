using System.Diagnostics;
using System.Text;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Kafka;
using AttrCloak.Streaming.Monitoring;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.Redis.State;
using AttrCloak.Streaming.Redis.Statistics;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Prometheus;
using StackExchange.Redis;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// The consume-apply-publish loop of the privacy guard. One consumer on the embeddings and privacy-requests topics;
/// per poll, a batch (up to <see cref="GuardOptions.MaxBatchEvents"/> events or <see cref="GuardOptions.MaxBatchWait"/>):
/// <list type="number">
/// <item>decode every message (<see cref="EventCodec.TryDecode(ReadOnlySpan{byte}, string?, ContractLimits, AttributeCatalog)"/>
/// and <see cref="EventCodec.KeyMatches"/>); anything malformed is dead-lettered with its reason;</item>
/// <item>read the batch's users in one <see cref="IStateStore.GetUsersAsync"/>, fold each user's events in order
/// into state changes, cloaking with the current cloaker (<see cref="BatchPlanner"/>);</item>
/// <item>apply the whole batch in one <see cref="IStateStore.ApplyAsync"/> (one atomic script);</item>
/// <item>publish, per user whose state changed, the LAST state of the batch (a null value on forget); for a
/// duplicate (a redelivery after a crash between the store write and the publish) the stored state again;</item>
/// <item>wait for every acknowledgement, and only then store the batch's offsets (committed by librdkafka within a
/// second, and on rebalance and close).</item>
/// </list>
/// A failing state-store call (connection, timeout, conflict) retries the whole batch with exponential backoff
/// (Polly), no offsets stored, readiness false meanwhile; failed deliveries are re-sent (<see cref="OutputPublisher"/>).
/// An unexpected fault while processing one event dead-letters that event as <see cref="ReasonCode.InternalError"/>.
/// <see cref="Run"/> blocks (Confluent's Consume blocks): give it a dedicated thread.
/// </summary>
public sealed class GuardPipeline
{
    private static readonly TimeSpan IdlePoll = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan LagRefresh = TimeSpan.FromSeconds(5);
    private static readonly byte[] JsonContentType = Encoding.UTF8.GetBytes(ContentTypes.Json);
    private static readonly byte[] BinaryContentType = Encoding.UTF8.GetBytes(ContentTypes.EmbeddingBinary);

    private readonly KafkaOptions _kafka;
    private readonly GuardOptions _guard;
    private readonly IStateStore _store;
    private readonly IServedPopulationObserver? _observer;
    private readonly WorkerMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ContractLimits _limits;
    private readonly AttributeCatalog _catalog;
    private readonly CloakerCache _cloakers;
    private readonly BatchPlanner _planner;
    private readonly ResiliencePipeline _storeRetry;
    private readonly Headers _cloakedHeaders;
    private readonly Dictionary<string, byte[]> _reasonLabels = new(StringComparer.Ordinal);

    // Per-batch buffers, reused.
    private Slot[] _slots = new Slot[64];
    private int _count;
    private readonly List<string> _userIds = [];
    private readonly HashSet<string> _seenUsers = new(StringComparer.Ordinal);
    private readonly List<OutboundMessage> _outputs = [];
    private readonly List<Served> _served = [];
    private readonly Dictionary<(string Topic, int Partition), long> _nextOffsets = [];
    private ApplyResult[] _results = [];

    private readonly Counter.Child _decodeSeconds, _readSeconds, _cloakSeconds, _applySeconds, _produceSeconds, _commitSeconds, _pollSeconds;
    private volatile bool _assignmentChanged;
    private long _processed;

    public GuardPipeline(
        KafkaOptions kafka,
        GuardOptions guard,
        IStateStore store,
        IUserCloakerFactory cloakerFactory,
        IServedPopulationObserver? observer,
        WorkerMetrics metrics,
        ILogger logger)
    {
        _kafka = kafka ?? throw new ArgumentNullException(nameof(kafka));
        _guard = guard ?? throw new ArgumentNullException(nameof(guard));
        _store = store ?? throw new ArgumentNullException(nameof(store));
        ArgumentNullException.ThrowIfNull(cloakerFactory);
        _observer = observer;
        _metrics = metrics ?? throw new ArgumentNullException(nameof(metrics));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _limits = new ContractLimits(guard.Dimension, guard.MaxMessageBytes);
        _catalog = guard.Catalog();
        _planner = new BatchPlanner(guard.Dimension, _catalog);
        _cloakers = new CloakerCache(store, cloakerFactory, metrics, logger, guard.CloakerRefreshEvents, guard.CloakerRefreshInterval);
        Status = new PipelineStatus(metrics);
        _cloakedHeaders = new Headers
        {
            { KafkaHeaders.ContentType, JsonContentType },
            { KafkaHeaders.Schema, Encoding.UTF8.GetBytes(SchemaNames.CloakedEmbeddingV1) },
        };
        foreach (var reason in ReasonCodes.All) _reasonLabels[reason.Label()] = Encoding.UTF8.GetBytes(reason.Label());
        _storeRetry = new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder()
                .Handle<RedisConnectionException>()
                .Handle<RedisTimeoutException>()
                .Handle<StateStoreConflictException>(),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(50),
            MaxDelay = TimeSpan.FromSeconds(5),
            MaxRetryAttempts = int.MaxValue,
            OnRetry = args =>
            {
                Status.SetStoreHealthy(false);
                _logger.LogWarning("State store call failed ({Error}: {Message}); retrying the batch in {Delay} ms (attempt {Attempt}), no offsets stored meanwhile",
                    args.Outcome.Exception?.GetType().Name, args.Outcome.Exception?.Message, (int)args.RetryDelay.TotalMilliseconds, args.AttemptNumber + 1);
                return default;
            },
        }).Build();
        _decodeSeconds = metrics.StageSeconds.WithLabels("decode");
        _readSeconds = metrics.StageSeconds.WithLabels("store_read");
        _cloakSeconds = metrics.StageSeconds.WithLabels("cloak");
        _applySeconds = metrics.StageSeconds.WithLabels("store_apply");
        _produceSeconds = metrics.StageSeconds.WithLabels("produce");
        _commitSeconds = metrics.StageSeconds.WithLabels("commit");
        _pollSeconds = metrics.StageSeconds.WithLabels("poll");
    }

    /// <summary>Readiness, for the health endpoint.</summary>
    public PipelineStatus Status { get; }

    /// <summary>Optional: per-event consume-to-acknowledgement latencies (benchmarks).</summary>
    public LatencyRecorder? Latencies { get; init; }

    /// <summary>Inbound events fully handled (output acknowledged, offset stored), dead letters included.</summary>
    public long ProcessedEvents => Interlocked.Read(ref _processed);

    /// <summary>Cloaker rebuilds so far (tests).</summary>
    internal int CloakerBuilds => _cloakers.Builds;

    /// <summary>
    /// Runs until <paramref name="cancellationToken"/> is cancelled: initialises the store (with retries), logs the
    /// start-up facts, then consumes. On cancellation the batch in progress is abandoned without storing its offsets,
    /// the stored offsets are committed and the consumer leaves its group. Throws on faults that retrying cannot
    /// fix (e.g. the store holds another layout); offsets of unfinished batches are then not stored either.
    /// </summary>
    public void Run(CancellationToken cancellationToken)
    {
        var snapshot = _storeRetry.ExecuteAsync(async ct => await _cloakers.InitializeAsync(ct).ConfigureAwait(false), cancellationToken)
            .AsTask().GetAwaiter().GetResult();
        Status.SetStoreHealthy(true);
        Status.SetStoreInitialized();
        LogStartup(snapshot);

        using var publisher = new OutputPublisher(onFatal => KafkaClients.ProducerBuilder(_kafka, _logger, onFatal).Build(), _logger);
        var consumer = KafkaClients.ConsumerBuilder(_kafka, _logger)
            .SetPartitionsAssignedHandler((_, partitions) =>
            {
                _logger.LogInformation("Kafka assigned {Partitions}", partitions.Count == 0 ? "no partitions" : KafkaClients.Describe(partitions));
                _assignmentChanged = true;
                Status.SetGroupJoined(true);
            })
            .SetPartitionsRevokedHandler((_, partitions) =>
            {
                _logger.LogInformation("Kafka revoked {Partitions}", KafkaClients.Describe(partitions.Select(p => p.TopicPartition)));
                _assignmentChanged = true;
                Status.SetGroupJoined(false);
            })
            .SetPartitionsLostHandler((_, partitions) =>
            {
                _logger.LogWarning("Kafka partitions lost: {Partitions}", KafkaClients.Describe(partitions.Select(p => p.TopicPartition)));
                _assignmentChanged = true;
                Status.SetGroupJoined(false);
            })
            .Build();
        try
        {
            consumer.Subscribe([_kafka.EmbeddingsTopic, _kafka.PrivacyRequestsTopic]);
            Status.SetRunning(true);
            var nextLag = Stopwatch.GetTimestamp();
            while (!cancellationToken.IsCancellationRequested)
            {
                Collect(consumer, cancellationToken);
                if (_count > 0) ProcessBatch(consumer, publisher, cancellationToken);
                if (Stopwatch.GetTimestamp() >= nextLag)
                {
                    RefreshLag(consumer);
                    nextLag = Stopwatch.GetTimestamp() + (long)(LagRefresh.TotalSeconds * Stopwatch.Frequency);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Shutdown: the batch in progress (if any) is abandoned; its offsets were not stored, so it is redelivered.
        }
        finally
        {
            Status.SetRunning(false);
            Status.SetGroupJoined(false);
            Close(consumer);
        }
    }

    private void LogStartup(StatisticsSnapshot snapshot)
    {
        _logger.LogInformation(
            "Privacy guard starting: brokers {Brokers}; consumer group {Group}; input topics {Embeddings}, {Requests}; serving topic {Cloaked}; dead-letter topic {DeadLetter}",
            _kafka.BootstrapServers, _kafka.ConsumerGroup, _kafka.EmbeddingsTopic, _kafka.PrivacyRequestsTopic, _kafka.CloakedTopic, _kafka.DeadLetterTopic);
        _logger.LogInformation(
            "State store {Store}; dimension {Dimension}; catalog {Catalog}; batches of up to {MaxBatch} events / {Wait} ms; cloaker {Cloaker} rebuilt after {RefreshEvents} changed users or {RefreshSeconds} s with changes",
            _store.GetType().Name, _guard.Dimension,
            string.Join(", ", _catalog.AttributeNames.Select(a => $"{a} ({_catalog.ClassesOf(a).Count} classes)")),
            _guard.MaxBatchEvents, _guard.MaxBatchWait.TotalMilliseconds, _cloakers.Current.GetType().Name,
            _guard.CloakerRefreshEvents, _guard.CloakerRefreshInterval.TotalSeconds);
        foreach (var attribute in snapshot.Attributes)
            _logger.LogInformation("Served-population statistics of {Attribute}: users per class [{Counts}] (statistics version {Version})",
                attribute.Attribute, string.Join(", ", attribute.Counts), snapshot.Version);
        if (snapshot.Attributes.All(a => a.Counts.All(c => c == 0)))
            _logger.LogWarning(
                "The state store is EMPTY (cold start): no served users yet; cloaking is conservative until every class has enough users (the warm-up threshold of {Cloaker}), and it tightens as the statistics fill (attrcloak_statistics_min_class_users). Run `attrcloak bootstrap` to seed it from a batch run",
                _cloakers.Current.GetType().Name);
    }

    // ---- collecting a batch ---------------------------------------------------------------------------------------

    private void Collect(IConsumer<byte[], byte[]> consumer, CancellationToken cancellationToken)
    {
        _count = 0;
        var start = Stopwatch.GetTimestamp();
        if (Consume(consumer, IdlePoll, cancellationToken) is { } first)
        {
            Add(first);
            var deadline = Stopwatch.GetTimestamp() + (long)(_guard.MaxBatchWait.TotalSeconds * Stopwatch.Frequency);
            while (_count < _guard.MaxBatchEvents)
            {
                var remaining = Math.Max(0, deadline - Stopwatch.GetTimestamp());
                var next = Consume(consumer, TimeSpan.FromSeconds((double)remaining / Stopwatch.Frequency), cancellationToken);
                if (next is null) break;
                Add(next);
            }
        }
        _pollSeconds.Inc(Seconds(Stopwatch.GetTimestamp() - start));
        if (_assignmentChanged && _count > 0) DropUnassigned(consumer);
        _assignmentChanged = false;
    }

    private ConsumeResult<byte[], byte[]>? Consume(IConsumer<byte[], byte[]> consumer, TimeSpan timeout, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            return consumer.Consume(timeout);
        }
        catch (ConsumeException e) when (!e.Error.IsFatal)
        {
            // E.g. a subscribed topic that does not exist yet; librdkafka keeps trying.
            _logger.LogWarning("Kafka consume error {Code}: {Reason}", e.Error.Code, e.Error.Reason);
            cancellationToken.WaitHandle.WaitOne(IdlePoll);
            return null;
        }
    }

    private void Add(ConsumeResult<byte[], byte[]> result)
    {
        if (_count == _slots.Length) Array.Resize(ref _slots, _slots.Length * 2);
        _slots[_count++] = new Slot { Result = result, ConsumedAt = Stopwatch.GetTimestamp() };
    }

    /// <summary>After a rebalance, messages of partitions no longer ours are left to their new owner (per-user order).</summary>
    private void DropUnassigned(IConsumer<byte[], byte[]> consumer)
    {
        var assigned = consumer.Assignment.Select(tp => (tp.Topic, tp.Partition.Value)).ToHashSet();
        var kept = 0;
        for (var i = 0; i < _count; i++)
            if (assigned.Contains((_slots[i].Result.Topic, _slots[i].Result.Partition.Value)))
                _slots[kept++] = _slots[i];
        if (kept < _count)
            _logger.LogInformation("Left {Count} consumed messages of revoked partitions to their new owner", _count - kept);
        _count = kept;
    }

    // ---- processing a batch ---------------------------------------------------------------------------------------

    private void ProcessBatch(IConsumer<byte[], byte[]> consumer, OutputPublisher publisher, CancellationToken cancellationToken)
    {
        var t = Stopwatch.GetTimestamp();
        Decode();
        Stage(_decodeSeconds, ref t);

        _cloakers.BeforeBatch();
        var anyOptOut = false;
        _userIds.Clear();
        _seenUsers.Clear();
        for (var i = 0; i < _count; i++)
        {
            if (_slots[i].Event is not { } e) continue;
            if (_seenUsers.Add(e.UserId)) _userIds.Add(e.UserId);
            anyOptOut |= e is PrivacyRequest { Type: PrivacyRequestType.OptOut };
        }

        if (_userIds.Count > 0)
        {
            _storeRetry.ExecuteAsync(async ct => await ReadPlanApplyAsync(anyOptOut, ct).ConfigureAwait(false), cancellationToken)
                .AsTask().GetAwaiter().GetResult();
            Status.SetStoreHealthy(true);
        }
        t = Stopwatch.GetTimestamp();

        BuildOutputs();
        publisher.SendAndAwait(_outputs, cancellationToken);
        Stage(_produceSeconds, ref t);

        Account();
        StoreOffsets(consumer);
        Stage(_commitSeconds, ref t);
    }

    private void Decode()
    {
        for (var i = 0; i < _count; i++)
        {
            ref var slot = ref _slots[i];
            var message = slot.Result.Message;
            var decoded = EventCodec.TryDecode(message.Value, ContentType(message.Headers), _limits, _catalog);
            if (!decoded.IsSuccess)
            {
                slot.DecodeError = decoded.Error;
                continue;
            }
            if (!EventCodec.KeyMatches(message.Key, decoded.Event.UserId))
            {
                slot.Type = WorkerMetrics.TypeLabel(decoded.Event);
                slot.DecodeError = new DecodeError(ReasonCode.KeyMismatch,
                    message.Key is null ? "the message has no key; the key must be the event's user id" : "the Kafka key is not the event's user id");
                continue;
            }
            slot.Event = decoded.Event;
            slot.Type = WorkerMetrics.TypeLabel(decoded.Event);
        }
    }

    private async Task ReadPlanApplyAsync(bool anyOptOut, CancellationToken cancellationToken)
    {
        var t = Stopwatch.GetTimestamp();
        var states = await _store.GetUsersAsync(_userIds, cancellationToken).ConfigureAwait(false);
        Stage(_readSeconds, ref t);

        // opt_out: cloak with maps built from the statistics as they are now.
        if (anyOptOut) await _cloakers.RefreshNowAsync(cancellationToken).ConfigureAwait(false);
        var cloaker = _cloakers.Current;
        _planner.Reset();
        for (var u = 0; u < _userIds.Count; u++) _planner.AddUser(_userIds[u], states[u]);
        for (var i = 0; i < _count; i++)
        {
            ref var slot = ref _slots[i];
            slot.PlanError = null;
            if (slot.Event is not { } e) continue;
            try
            {
                slot.PlanError = _planner.Plan(i, e, cloaker);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // A poison event must not stop the stream: dead-letter it, keep going.
                slot.PlanError = new DecodeError(ReasonCode.InternalError, $"processing fault ({ex.GetType().Name})");
                _logger.LogError(ex, "Processing one {Type} event failed; it goes to the dead-letter topic", slot.Type);
            }
        }
        Stage(_cloakSeconds, ref t);

        _results = _planner.Changes.Count == 0 ? [] : await _store.ApplyAsync(_planner.Changes, cancellationToken).ConfigureAwait(false);
        Stage(_applySeconds, ref t);
    }

    private void BuildOutputs()
    {
        _outputs.Clear();
        _served.Clear();
        var now = DateTimeOffset.UtcNow;

        for (var j = 0; j < _results.Length; j++)
        {
            var index = _planner.Planned[j].MessageIndex;
            var result = _results[j];
            _slots[index].Outcome = result.Outcome;
            if (result.Outcome == ApplyOutcome.Rejected)
                _slots[index].PlanError = new DecodeError(ReasonCode.StoreRejected, Printable(result.Reason ?? "rejected by the state store"));
        }
        for (var i = 0; i < _count; i++)
        {
            ref var slot = ref _slots[i];
            if ((slot.DecodeError ?? slot.PlanError) is { } error)
                _outputs.Add(DeadLetterOf(ref slot, error, now));
        }

        foreach (var user in _planner.Users)
        {
            var lastApplied = -1;
            var duplicate = false;
            foreach (var j in user.ChangeIndices)
            {
                if (_results[j].Outcome == ApplyOutcome.Applied) lastApplied = j;
                else if (_results[j].Outcome == ApplyOutcome.Duplicate) duplicate = true;
            }
            if (lastApplied >= 0)
            {
                var planned = _planner.Planned[lastApplied];
                var key = _slots[planned.MessageIndex].Result.Message.Key;
                if (planned.Kind == PlannedKind.Forget)
                    AddTombstone(user.UserId, key);
                else
                    AddCloaked(user.UserId, key, planned.Version, planned.ModelVersion, planned.Cloaked!, planned.Classes!, planned.ProtectedMask, now);
            }
            else if (duplicate)
            {
                // A redelivery: the store has this state already, but its output may never have been acknowledged.
                var key = _slots[_planner.Planned[user.ChangeIndices[^1]].MessageIndex].Result.Message.Key;
                if (user.Stored is { } stored)
                    AddCloaked(user.UserId, key, stored.Version, user.StoredMeta.ModelVersion, stored.Cloaked, stored.Classes,
                        user.StoredMeta.HasMask ? user.StoredMeta.ProtectedMask : BatchPlanner.KnownClassMask(stored.Classes), now);
                else
                    AddTombstone(user.UserId, key);
            }
        }
    }

    private void AddCloaked(string userId, byte[] key, long version, string modelVersion, float[] cloaked, int[] classes, uint mask, DateTimeOffset now)
    {
        var value = EventCodec.Encode(new CloakedEmbedding(userId, version, modelVersion, cloaked, _planner.ProtectedNames(mask), now));
        _outputs.Add(new OutboundMessage(_kafka.CloakedTopic, key, value, _cloakedHeaders));
        _served.Add(new Served(userId, cloaked, classes));
    }

    private void AddTombstone(string userId, byte[] key)
    {
        _outputs.Add(new OutboundMessage(_kafka.CloakedTopic, key, null, null));
        _served.Add(new Served(userId, null, null));
    }

    private OutboundMessage DeadLetterOf(ref Slot slot, DecodeError error, DateTimeOffset now)
    {
        var r = slot.Result;
        var record = DeadLetter.For(error, r.Topic, r.Partition.Value, r.Offset.Value, r.Message.Value?.Length ?? 0, now);
        var headers = new Headers();
        if (r.Message.Headers is { } original)
            foreach (var h in original)
                headers.Add(h.Key, h.GetValueBytes());
        headers.Add(KafkaHeaders.DeadLetter, EventCodec.Encode(record));
        headers.Add(KafkaHeaders.DeadLetterReason, _reasonLabels[error.Reason.Label()]);
        return new OutboundMessage(_kafka.DeadLetterTopic, r.Message.Key, r.Message.Value, headers);
    }

    /// <summary>Metrics and the observer, once everything is acknowledged.</summary>
    private void Account()
    {
        var now = Stopwatch.GetTimestamp();
        var appliedUsers = 0;
        foreach (var user in _planner.Users)
            foreach (var j in user.ChangeIndices)
                if (_results[j].Outcome == ApplyOutcome.Applied)
                {
                    appliedUsers++;
                    break;
                }
        _cloakers.NoteApplied(appliedUsers);

        for (var i = 0; i < _count; i++)
        {
            ref var slot = ref _slots[i];
            var type = slot.Type ?? WorkerMetrics.EventTypes.Undecodable;
            if ((slot.DecodeError ?? slot.PlanError) is { } error)
            {
                _metrics.Events.WithLabels(type, WorkerMetrics.Outcomes.DeadLettered).Inc();
                _metrics.DeadLetters.WithLabels(error.Reason.Label()).Inc();
                if (error.Reason is ReasonCode.UnknownUser or ReasonCode.StoreRejected or ReasonCode.InternalError && slot.Event is not null)
                    _metrics.FailClosed.WithLabels(type).Inc();
                continue;
            }
            var outcome = slot.Outcome switch
            {
                ApplyOutcome.Applied => WorkerMetrics.Outcomes.Applied,
                ApplyOutcome.Duplicate => WorkerMetrics.Outcomes.Duplicate,
                _ => WorkerMetrics.Outcomes.Stale,
            };
            _metrics.Events.WithLabels(type, outcome).Inc();
            if (slot.Outcome is ApplyOutcome.Applied or ApplyOutcome.Duplicate)
            {
                var seconds = Seconds(now - slot.ConsumedAt);
                _metrics.RecloakLatency.Observe(seconds);
                Latencies?.Record(seconds);
            }
        }
        _metrics.BatchSize.Observe(_count);
        foreach (var s in _served)
            _metrics.Published.WithLabels(s.Cloaked is null ? "tombstone" : "cloaked").Inc();

        if (_observer is not null)
            foreach (var s in _served)
            {
                if (s.Cloaked is null) _observer.OnForgotten(s.UserId);
                else _observer.OnServed(s.UserId, s.Cloaked, s.Classes);
            }
        Interlocked.Add(ref _processed, _count);
    }

    private void StoreOffsets(IConsumer<byte[], byte[]> consumer)
    {
        _nextOffsets.Clear();
        for (var i = 0; i < _count; i++)
        {
            var r = _slots[i].Result;
            var key = (r.Topic, r.Partition.Value);
            if (!_nextOffsets.TryGetValue(key, out var next) || r.Offset.Value + 1 > next)
                _nextOffsets[key] = r.Offset.Value + 1;
        }
        foreach (var ((topic, partition), next) in _nextOffsets)
        {
            try
            {
                consumer.StoreOffset(new TopicPartitionOffset(topic, partition, next));
            }
            catch (KafkaException e)
            {
                // The partition was revoked meanwhile: its new owner gets these messages again (idempotent).
                _logger.LogInformation("Could not store an offset of {Topic}[{Partition}] ({Reason}); its new owner reprocesses the batch", topic, partition, e.Error.Reason);
            }
        }
        for (var i = 0; i < _count; i++) _slots[i] = default; // drop references to the batch's messages
    }

    private void RefreshLag(IConsumer<byte[], byte[]> consumer)
    {
        // Watermarks cached from fetch responses and local positions: no broker round trip.
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

    private void Close(IConsumer<byte[], byte[]> consumer)
    {
        try
        {
            // Commits what was stored (acknowledged batches only), then leaves the group so that partitions move at once.
            consumer.Commit();
        }
        catch (KafkaException e) when (e.Error.Code is ErrorCode.Local_NoOffset or ErrorCode.Local_State)
        {
            // nothing stored since the last commit, or not in a group
        }
        catch (KafkaException e)
        {
            _logger.LogWarning("Committing the stored offsets at shutdown failed ({Reason}); the last batches may be redelivered (idempotent)", e.Error.Reason);
        }
        try { consumer.Close(); }
        catch (KafkaException e) { _logger.LogWarning("Closing the Kafka consumer failed: {Reason}", e.Error.Reason); }
        consumer.Dispose();
        _logger.LogInformation("Privacy guard stopped after {Events} events", ProcessedEvents);
    }

    private static string? ContentType(Headers? headers)
    {
        if (headers is null || !headers.TryGetLastBytes(KafkaHeaders.ContentType, out var bytes)) return null;
        // The two known values without allocating a string per message.
        if (bytes.AsSpan().SequenceEqual(JsonContentType)) return ContentTypes.Json;
        if (bytes.AsSpan().SequenceEqual(BinaryContentType)) return ContentTypes.EmbeddingBinary;
        return Encoding.UTF8.GetString(bytes);
    }

    private static void Stage(Counter.Child counter, ref long since)
    {
        var now = Stopwatch.GetTimestamp();
        counter.Inc(Seconds(now - since));
        since = now;
    }

    private static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;

    private struct Slot
    {
        public ConsumeResult<byte[], byte[]> Result;
        public long ConsumedAt;
        public InboundEvent? Event;
        public string? Type;
        public DecodeError? DecodeError;
        public DecodeError? PlanError;
        public ApplyOutcome Outcome;
    }

    private readonly record struct Served(string UserId, float[]? Cloaked, int[]? Classes);

    /// <summary>The store's own wording (no ids, no values), without control characters, for the dead-letter header.</summary>
    private static string Printable(string text) =>
        string.Create(text.Length, text, (span, source) =>
        {
            for (var i = 0; i < span.Length; i++) span[i] = char.IsControl(source[i]) ? ' ' : source[i];
        });
}
