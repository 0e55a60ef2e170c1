using System.Diagnostics;
using System.Text;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Poisoning;
using AttrCloak.Streaming.Kafka;
using AttrCloak.Streaming.Monitoring;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.Redis.Generations;
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
/// Pipelined: the acknowledgements of up to <see cref="MaxUnacknowledgedBatches"/> sent batches are awaited only after
/// the next batch was collected, stored and sent, so the broker round trip overlaps the next batch's work. The store
/// writes stay strictly sequential (batch N+1 reads what batch N wrote), offsets are stored batch by batch in
/// consumption order, each only after the store write and every acknowledgement of its batch (and of all earlier
/// ones). A crash loses at most the unacknowledged batches' offsets: they are redelivered and republished as
/// duplicates (at-least-once). Users written recently are not read back from the store (<see cref="UserStateCache"/>).
/// A failing state-store call (connection, timeout, conflict) retries the whole batch with exponential backoff
/// (Polly), no offsets stored, readiness false meanwhile; failed deliveries are re-sent (<see cref="OutputPublisher"/>).
/// A store whose data is gone (<see cref="StateStoreLostException"/>: Redis back empty) holds the batch until the state
/// is rebuilt, publishing nothing (<see cref="AwaitRebuiltState"/>).
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
    private readonly IGenerationStore _store;
    private readonly GenerationOptions _generationOptions;
    private readonly IServedPopulationObserver? _observer;
    private readonly WorkerMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ContractLimits _limits;
    private readonly AttributeCatalog _catalog;
    private readonly IUserCloakerFactory _cloakerFactory;
    private GenerationSet? _generationSet;

    /// <summary>
    /// The deployment's generations, each with its store, maps and user cache. Built on first use, so that
    /// <see cref="CloakerRebuildShare"/> and <see cref="UserCacheCapacity"/> (init properties) are in force.
    /// </summary>
    private GenerationSet Generations => _generationSet ??= new GenerationSet(_store, _cloakerFactory, _guard, _generationOptions, _metrics, _logger,
        UserCacheCapacity, CloakerRebuildShare, Input);
    private readonly ResiliencePipeline _storeRetry;
    private readonly Headers _cloakedHeaders;
    private readonly Dictionary<string, byte[]> _reasonLabels = new(StringComparer.Ordinal);

    // Batches: the one being collected and processed, then those sent and awaiting acknowledgements (oldest first);
    // finished ones are reused.
    private readonly Queue<Batch> _unacknowledged = new();
    private readonly Stack<Batch> _spare = new();
    private readonly List<OutputDelivery> _later = [];
    private long _batchNumber;
    private readonly List<string> _userIds = [];
    private readonly List<string> _missingUsers = [];
    private readonly HashSet<string> _seenUsers = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Topic, int Partition), long> _nextOffsets = [];
    private readonly Dictionary<(string Topic, int Partition), long> _lastStored = [];
    private readonly List<TopicPartitionOffset> _rewound = [];
    private readonly InputTopicRule _topicRule;

    private bool _emptyStoreToCheck; // started on an empty store: compare with the group's committed offsets once
    private readonly List<ConsumedOffset> _consumedAsk = [];
    private readonly Dictionary<(string Topic, int Partition), long> _batchMaxOffsets = [];
    private readonly List<GenerationContext> _touched = [];

    private readonly Counter.Child _decodeSeconds, _readSeconds, _cloakSeconds, _applySeconds, _encodeSeconds, _produceSeconds, _ackWaitSeconds, _commitSeconds, _pollSeconds;
    private volatile bool _assignmentChanged;
    private long _processed;
    private long _userReads, _userCacheHits;
    private IConsumer<byte[], byte[]>? _consumer;
    private OutputPublisher? _publisher;

    public GuardPipeline(
        KafkaOptions kafka,
        GuardOptions guard,
        IGenerationStore store,
        IUserCloakerFactory cloakerFactory,
        IServedPopulationObserver? observer,
        WorkerMetrics metrics,
        ILogger logger,
        GenerationOptions? generations = null)
    {
        _kafka = kafka ?? throw new ArgumentNullException(nameof(kafka));
        _guard = guard ?? throw new ArgumentNullException(nameof(guard));
        _store = store ?? throw new ArgumentNullException(nameof(store));
        _generationOptions = generations ?? new GenerationOptions();
        ArgumentNullException.ThrowIfNull(cloakerFactory);
        _observer = observer;
        _metrics = metrics ?? throw new ArgumentNullException(nameof(metrics));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _limits = new ContractLimits(guard.Dimension, guard.MaxMessageBytes);
        _catalog = guard.Catalog();
        _cloakerFactory = cloakerFactory;
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
        _encodeSeconds = metrics.StageSeconds.WithLabels("encode");
        _ackWaitSeconds = metrics.StageSeconds.WithLabels("ack_wait");
        Membership = new GroupMembership(metrics, [kafka.EmbeddingsTopic, kafka.PrivacyRequestsTopic]);
        _topicRule = new InputTopicRule(kafka.EmbeddingsTopic, kafka.PrivacyRequestsTopic);
    }

    /// <summary>The input partitions this instance holds and the group changes it saw (metrics, readiness detail).</summary>
    public GroupMembership Membership { get; }

    /// <summary>
    /// Sent batches whose acknowledgements may still be outstanding while the next batch is collected and processed
    /// (0: wait for each batch's acknowledgements before the next, the unpipelined loop). Each one holds its events'
    /// offsets back until it is acknowledged.
    /// </summary>
    public int MaxUnacknowledgedBatches { get; init; } = 2;

    /// <summary>
    /// At most this share of one core goes to background cloaker rebuilds after drift (see <see cref="CloakerCache"/>);
    /// 1 = rebuild whenever the drift thresholds say so. Default 0.02 (a ~100 ms rebuild every ~5 s at most): larger
    /// shares took the CPU Redis and librdkafka needed and raised p99 latency (docs/performance.md). An opt_out still
    /// rebuilds at once; streamed quality did not depend on the refresh rate (StreamingQualityExperiment: every 5, 25 or
    /// 200 users gave the same).
    /// </summary>
    public double CloakerRebuildShare { get; init; } = 0.02;

    /// <summary>Users whose state the pipeline remembers instead of reading it back from the store (0: always read).</summary>
    public int UserCacheCapacity
    {
        get => _userCacheCapacity;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _userCacheCapacity = value;
        }
    }
    private readonly int _userCacheCapacity = 100_000;

    /// <summary>Users read from the store, and users taken from the pipeline's cache instead (benchmarks, tests).</summary>
    public (long Read, long Cached) UserLookups => (Interlocked.Read(ref _userReads), Interlocked.Read(ref _userCacheHits));

    /// <summary>Tests: what happened to each batch, in order (called on the consume thread).</summary>
    internal Action<BatchTrace>? Trace { get; set; }

    /// <summary>Tests: while reset, acknowledgements are not taken in (see <see cref="OutputPublisher.AcknowledgementGateForTests"/>).</summary>
    internal ManualResetEventSlim? AcknowledgementGateForTests { get; set; }

    /// <summary>Readiness, for the health endpoint.</summary>
    public PipelineStatus Status { get; }

    /// <summary>Which embedding updates are accepted (hard limits, and each generation's learned input domain).</summary>
    public InputOptions Input { get; init; } = new();

    /// <summary>How this worker batch-cloaks a generation it seats (default: batch AttrCloak-DF, as bootstrap).</summary>
    public PopulationSeeding? Seeding { get; init; }

    /// <summary>This worker's name in seat leases (default: host name, process id and a random suffix).</summary>
    public string InstanceId { get; init; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>Sweeps of this worker (tests); null before <see cref="Run"/>.</summary>
    internal Sweeper? Sweeps => _sweeper;

    /// <summary>Seatings of this worker (tests); null before <see cref="Run"/>.</summary>
    internal GenerationSeater? Seater => _seater;

    /// <summary>Optional: per-event consume-to-acknowledgement latencies (benchmarks).</summary>
    public LatencyRecorder? Latencies { get; init; }

    /// <summary>Inbound events fully handled (output acknowledged, offset stored), dead letters included.</summary>
    public long ProcessedEvents => Interlocked.Read(ref _processed);

    /// <summary>Cloaker rebuilds so far (tests).</summary>
    internal int CloakerBuilds => Generations.CloakerBuilds;

    /// <summary>The statistics version the current maps of <paramref name="modelVersion"/> were built from (tests).</summary>
    internal StatisticsVersion? CloakerVersion(string modelVersion) => Generations.Context(modelVersion)?.Cloakers.Snapshot?.Version;

    /// <summary>The generations as this worker last saw them (tests).</summary>
    internal GenerationRegistry GenerationRegistry => Generations.Registry;

    /// <summary>
    /// Runs until <paramref name="cancellationToken"/> is cancelled: initialises the store (with retries), logs the
    /// start-up facts, then consumes. On cancellation the batch in progress is abandoned without storing its offsets,
    /// the stored offsets are committed and the consumer leaves its group. Throws on faults that retrying cannot
    /// fix (e.g. the store holds another layout); offsets of unfinished batches are then not stored either.
    /// </summary>
    public void Run(CancellationToken cancellationToken)
    {
        _storeRetry.ExecuteAsync(async ct => await Generations.InitializeAsync(ct).ConfigureAwait(false), cancellationToken)
            .AsTask().GetAwaiter().GetResult();
        Status.SetStoreHealthy(true);
        Status.SetStoreInitialized();
        LogStartup();
        _emptyStoreToCheck = Generations.StartedEmpty;
        NotifyServing();
        _sweeper = new Sweeper(Generations, _generationOptions, _metrics, _logger);
        _seater = new GenerationSeater(_store, _guard.AttributeSpecs(), _generationOptions, Seeding ?? PopulationSeeding.DataFree, _metrics, _logger, InstanceId,
            input: Input, cloakerFactory: _cloakerFactory);
        using var seating = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var seater = _seater;
        var seaterTask = Task.Run(() => seater.RunAsync(seating.Token), CancellationToken.None);

        using var publisher = new OutputPublisher(onFatal => KafkaClients.ProducerBuilder(_kafka, _logger, onFatal, OnBrokers).Build(), _logger);
        publisher.AcknowledgementGateForTests = AcknowledgementGateForTests;
        _publisher = publisher;
        var consumer = KafkaClients.ConsumerBuilder(_kafka, _logger, OnBrokers, Membership.OnStatistics)
            .SetPartitionsAssignedHandler((c, partitions) =>
            {
                OnBrokers(true);
                // The whole new assignment (range assignor, eager protocol); with a cooperative one only what is added.
                _logger.LogInformation("Kafka assigned {Partitions}", partitions.Count == 0 ? "no partitions" : KafkaClients.Describe(partitions));
                _assignmentChanged = true;
                Membership.Count("assigned");
                Membership.SetAssignment(c.Assignment.Concat(partitions).Distinct());
                Status.SetGroupJoined(true);
            })
            .SetPartitionsRevokedHandler((c, partitions) =>
            {
                _logger.LogInformation("Kafka revoked {Partitions}", KafkaClients.Describe(partitions.Select(p => p.TopicPartition)));
                // Store what is acknowledged before the partitions go, so that the new owner does not redo it.
                try { FinishUnacknowledged(cancellationToken); }
                catch (OperationCanceledException) { /* shutting down: the unacknowledged batches are redelivered */ }
                _assignmentChanged = true;
                Membership.Count("revoked");
                var kept = c.Assignment.Except(partitions.Select(p => p.TopicPartition)).ToList();
                Membership.SetAssignment(kept);
                // The eager protocol revokes everything; a cooperative one only what moves, leaving the rest served.
                if (kept.Count == 0) Status.SetGroupJoined(false);
            })
            .SetPartitionsLostHandler((_, partitions) =>
            {
                _logger.LogWarning("Kafka partitions lost: {Partitions}", KafkaClients.Describe(partitions.Select(p => p.TopicPartition)));
                _assignmentChanged = true;
                Membership.Count("lost");
                Membership.SetAssignment([]);
                Status.SetGroupJoined(false);
            })
            .Build();
        _consumer = consumer;
        var graceful = false;
        try
        {
            consumer.Subscribe([_kafka.EmbeddingsTopic, _kafka.PrivacyRequestsTopic]);
            Status.SetRunning(true);
            var nextLag = Stopwatch.GetTimestamp();
            while (!cancellationToken.IsCancellationRequested)
            {
                var batch = _spare.Count > 0 ? _spare.Pop() : new Batch();
                Collect(consumer, batch, cancellationToken);
                if (_emptyStoreToCheck && consumer.Assignment.Count > 0) CheckEmptyStoreAgainstCommittedOffsets(consumer);
                if (batch.Count > 0)
                {
                    ProcessBatch(batch, cancellationToken);
                    _unacknowledged.Enqueue(batch);
                    // Finish what is acknowledged already, and wait for the oldest while too many are outstanding.
                    while (_unacknowledged.Count > 0
                           && (_unacknowledged.Count > MaxUnacknowledgedBatches || publisher.IsAcknowledged(_unacknowledged.Peek().Delivery)))
                        FinishOldest(cancellationToken);
                }
                else
                {
                    _spare.Push(batch);
                    // Nothing new within the batch window: finish the outstanding batches now rather than at the next one.
                    FinishUnacknowledged(cancellationToken);
                }
                SweepStep(cancellationToken);
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
            graceful = true;
        }
        finally
        {
            // Bounded: the whole stop takes at most GuardOptions.ShutdownTimeout, even with the brokers gone.
            var stopping = Stopwatch.StartNew();
            Status.SetRunning(false);
            Status.SetGroupJoined(false);
            seating.Cancel();
            // A seating in progress is abandoned (its lease expires and a worker seats the generation again); it gets
            // at most a fifth of the shutdown budget to notice.
            if (!seaterTask.Wait(_guard.ShutdownTimeout * 0.2)) _logger.LogInformation("A seating was still running at shutdown; its lease expires and it is redone");
            if (graceful || cancellationToken.IsCancellationRequested) DrainAtShutdown(_guard.ShutdownTimeout * 0.3);
            _unacknowledged.Clear();
            // The rest, less a reserve for the producer's last flush, for committing and leaving the group.
            var flushReserve = _guard.ShutdownTimeout * 0.15;
            Close(consumer, _guard.ShutdownTimeout - stopping.Elapsed - flushReserve);
            publisher.CloseTimeout = Max(TimeSpan.Zero, _guard.ShutdownTimeout - stopping.Elapsed - TimeSpan.FromMilliseconds(200));
            Membership.SetAssignment([]);
            _consumer = null;
            _publisher = null;
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <summary>Sent batches acknowledged within a short grace period still get their offsets stored (fewer redeliveries).</summary>
    private void DrainAtShutdown(TimeSpan gracePeriod)
    {
        if (_unacknowledged.Count == 0) return;
        using var grace = new CancellationTokenSource(gracePeriod);
        try
        {
            FinishUnacknowledged(grace.Token);
        }
        catch (OperationCanceledException)
        {
            _logger.LogInformation("{Batches} sent batches were not acknowledged at shutdown; their events are redelivered (idempotent)", _unacknowledged.Count);
        }
    }

    /// <summary>Waits for every sent batch's acknowledgements, oldest first, storing their offsets.</summary>
    private void FinishUnacknowledged(CancellationToken cancellationToken)
    {
        while (_unacknowledged.Count > 0) FinishOldest(cancellationToken);
    }

    private void FinishOldest(CancellationToken cancellationToken)
    {
        var batch = _unacknowledged.Peek();
        var t = Stopwatch.GetTimestamp();
        _later.Clear();
        foreach (var b in _unacknowledged)
            if (!ReferenceEquals(b, batch)) _later.Add(b.Delivery);
        _publisher!.Await(batch.Delivery, _later, cancellationToken);
        Trace?.Invoke(new BatchTrace(BatchStep.Acknowledged, batch.Number, []));
        Stage(_ackWaitSeconds, ref t);
        Account(batch);
        StoreOffsets(_consumer!, batch);
        Stage(_commitSeconds, ref t);
        _unacknowledged.Dequeue();
        batch.Clear();
        _spare.Push(batch);
    }

    private void LogStartup()
    {
        _logger.LogInformation(
            "Privacy guard starting: brokers {Brokers}; consumer group {Group}; input topics {Embeddings}, {Requests}; serving topic {Cloaked}; dead-letter topic {DeadLetter}",
            _kafka.BootstrapServers, _kafka.ConsumerGroup, _kafka.EmbeddingsTopic, _kafka.PrivacyRequestsTopic, _kafka.CloakedTopic, _kafka.DeadLetterTopic);
        _logger.LogInformation(
            "State store {Store}; dimension {Dimension}; catalog {Catalog}; batches of up to {MaxBatch} events / {Wait} ms; maps rebuilt after {RefreshEvents} changed users or {RefreshSeconds} s with changes",
            _store.GetType().Name, _guard.Dimension,
            string.Join(", ", _catalog.AttributeNames.Select(a => $"{a} ({_catalog.ClassesOf(a).Count} classes)")),
            _guard.MaxBatchEvents, _guard.MaxBatchWait.TotalMilliseconds, _guard.CloakerRefreshEvents, _guard.CloakerRefreshInterval.TotalSeconds);
        var registry = Generations.Registry;
        foreach (var g in registry.Generations.Where(g => g.State != GenerationState.Retired))
        {
            var snapshot = Generations.Context(g.ModelVersion)?.Cloakers.Snapshot;
            _logger.LogInformation("Model generation '{Model}': {State}, seat epoch {Seat}, sweep epoch {Sweep}; users per class {Counts}",
                g.ModelVersion, g.StateLabel, g.SeatEpoch, g.SweepEpoch,
                snapshot is null ? "-" : string.Join("; ", snapshot.Attributes.Select(a => $"{a.Attribute} [{string.Join(", ", a.Counts)}]")));
        }
        if (registry.Serving is null)
            _logger.LogWarning(
                "The state store is EMPTY (cold start): no model generation yet. The first model_version that arrives serves at once with conservative maps, " +
                "and is seated with batch AttrCloak-DF once every class has {MinClassUsers} users. Run `attrcloak bootstrap` to seed it from a batch run instead",
                _generationOptions.MinClassUsers);
    }

    // ---- collecting a batch ---------------------------------------------------------------------------------------

    private void Collect(IConsumer<byte[], byte[]> consumer, Batch batch, CancellationToken cancellationToken)
    {
        batch.Count = 0;
        var start = Stopwatch.GetTimestamp();
        // With batches awaiting acknowledgements, wait only one batch window for new messages, then finish those.
        var firstWait = _unacknowledged.Count > 0 ? _guard.MaxBatchWait : IdlePoll;
        if (Consume(consumer, firstWait, cancellationToken) is { } first)
        {
            batch.Add(first);
            var deadline = Stopwatch.GetTimestamp() + (long)(_guard.MaxBatchWait.TotalSeconds * Stopwatch.Frequency);
            while (batch.Count < _guard.MaxBatchEvents)
            {
                var remaining = Math.Max(0, deadline - Stopwatch.GetTimestamp());
                var next = Consume(consumer, TimeSpan.FromSeconds((double)remaining / Stopwatch.Frequency), cancellationToken);
                if (next is null) break;
                batch.Add(next);
            }
        }
        _pollSeconds.Inc(Seconds(Stopwatch.GetTimestamp() - start));
        if (_assignmentChanged)
        {
            // A user's partition may have had another owner meanwhile: what we remember of them may be out of date.
            foreach (var context in Generations.Live) context.Forget();
            _sweeper?.OnAssignment(consumer.Assignment.Select(tp => (tp.Topic, tp.Partition.Value)), _kafka.EmbeddingsTopic);
            if (batch.Count > 0) DropUnassigned(consumer, batch);
        }
        _assignmentChanged = false;
    }

    private ConsumeResult<byte[], byte[]>? Consume(IConsumer<byte[], byte[]> consumer, TimeSpan timeout, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            var result = consumer.Consume(timeout);
            if (result is not null && !Status.KafkaUp) OnBrokers(true);
            return result;
        }
        catch (ConsumeException e) when (!e.Error.IsFatal)
        {
            // E.g. a subscribed topic that does not exist yet; librdkafka keeps trying.
            _logger.LogWarning("Kafka consume error {Code}: {Reason}", e.Error.Code, e.Error.Reason);
            cancellationToken.WaitHandle.WaitOne(IdlePoll);
            return null;
        }
    }

    /// <summary>
    /// Whether a Kafka broker is reachable (librdkafka's error and statistics callbacks, assignments, messages): the
    /// worker keeps waiting either way (librdkafka reconnects by itself), readiness follows.
    /// </summary>
    private void OnBrokers(bool up)
    {
        if (up == Status.KafkaUp) return;
        if (up) _logger.LogInformation("Kafka broker reachable");
        else _logger.LogWarning("No Kafka broker reachable; not ready, waiting for the brokers (librdkafka reconnects by itself, no offsets are stored for unacknowledged outputs)");
        Status.SetKafkaUp(up);
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
            _logger.LogInformation("Left {Count} consumed messages of revoked partitions to their new owner", batch.Count - kept);
        for (var i = kept; i < batch.Count; i++) slots[i] = default;
        batch.Count = kept;
    }

    // ---- processing a batch ---------------------------------------------------------------------------------------

    private void ProcessBatch(Batch batch, CancellationToken cancellationToken)
    {
        batch.Number = ++_batchNumber;
        var t = Stopwatch.GetTimestamp();
        Decode(batch);
        Stage(_decodeSeconds, ref t);

        foreach (var context in Generations.Live) context.Cloakers.BeforeBatch();
        _touched.Clear();
        var anyOptOut = false;
        _userIds.Clear();
        _seenUsers.Clear();
        for (var i = 0; i < batch.Count; i++)
        {
            if (batch.Slots[i].Event is not { } e) continue;
            if (_seenUsers.Add(e.UserId)) _userIds.Add(e.UserId);
            anyOptOut |= e is PrivacyRequest { Type: PrivacyRequestType.OptOut };
        }

        if (_userIds.Count > 0)
        {
            var attempt = 0;
            while (true)
            {
                try
                {
                    _storeRetry.ExecuteAsync(async ct =>
                    {
                        if (attempt++ > 0)
                        {
                            // A failed store call: what we remember may be off (a timed-out write may have happened). The
                            // batches sent before this one need no store work: finish them, so their offsets are not held
                            // back by this batch's retries.
                            foreach (var context in Generations.Live) context.Forget(); // a timed-out write may have raised the watermarks
                            FinishUnacknowledged(ct);
                        }
                        await ReadPlanApplyAsync(batch, anyOptOut, ct).ConfigureAwait(false);
                    }, cancellationToken).AsTask().GetAwaiter().GetResult();
                    break;
                }
                catch (StateStoreLostException lost)
                {
                    // Nothing of this batch was written or sent. A generation retired meanwhile (its keys deleted) is
                    // no loss: redo the batch without it. Otherwise wait for the rebuild, then redo it from scratch.
                    if (!RetiredMeanwhile(cancellationToken)) AwaitRebuiltState(lost, cancellationToken);
                    attempt = 0;
                }
            }
            Status.SetStoreHealthy(true);
        }
        Remember();
        t = Stopwatch.GetTimestamp();

        BuildOutputs(batch);
        Stage(_encodeSeconds, ref t);
        _publisher!.Send(batch.Outputs, batch.Delivery, cancellationToken);
        if (MaxUnacknowledgedBatches == 0) _publisher.Flush(cancellationToken); // unpipelined: nothing else to wait for
        Trace?.Invoke(new BatchTrace(BatchStep.Sent, batch.Number, []));
        Stage(_produceSeconds, ref t);
    }

    /// <summary>
    /// The store's data is gone (Redis came back empty): serving on would cloak against statistics of a partial
    /// population and treat every known user as new. Blocks the consume loop (nothing published, no offsets stored,
    /// not ready, <c>attrcloak_state_missing</c> 1), logs what happened and how to rebuild at most once a minute, and
    /// checks every <see cref="GuardOptions.StateCheckInterval"/> whether the meta key is back (a rebuild, e.g.
    /// <c>attrcloak bootstrap</c>); then it rebuilds the cloaker from the new statistics and returns, and the caller
    /// redoes the batch in hand. Sent batches stay unfinished meanwhile (they predate the loss; their offsets are
    /// stored once the loop moves on). A wait longer than the consumer's max.poll.interval.ms (300 s by default) makes
    /// librdkafka leave the group; the next poll rejoins it.
    /// </summary>
    private void AwaitRebuiltState(StateStoreLostException lost, CancellationToken cancellationToken)
    {
        Status.SetStateMissing(true);
        foreach (var context in Generations.Live) context.Forget(); // the redelivery watermarks went with the state; read again after the rebuild
        var since = Stopwatch.GetTimestamp();
        var nextLog = since;
        while (true)
        {
            if (Stopwatch.GetTimestamp() >= nextLog)
            {
                LogLostState(lost, Stopwatch.GetElapsedTime(since));
                nextLog = Stopwatch.GetTimestamp() + (long)(LostStateLogInterval.TotalSeconds * Stopwatch.Frequency);
            }
            if (cancellationToken.WaitHandle.WaitOne(_guard.StateCheckInterval)) cancellationToken.ThrowIfCancellationRequested();
            try
            {
                Generations.InitializeAsync(cancellationToken).GetAwaiter().GetResult();
                if (Generations.Registry.Version == 0) throw new StateStoreLostException(lost.Prefix); // the registry is not back yet
                Status.SetStoreHealthy(true);
                Status.SetStateMissing(false);
                _logger.LogWarning(
                    "The state store's data is back after {Seconds:F0} s (generations: {Generations}); resuming with the batch in hand",
                    Stopwatch.GetElapsedTime(since).TotalSeconds,
                    string.Join("; ", Generations.Registry.Generations.Select(g => $"'{g.ModelVersion}' {g.StateLabel}")));
                return;
            }
            catch (StateStoreLostException)
            {
                // still missing
            }
            catch (Exception e) when (e is RedisConnectionException or RedisTimeoutException)
            {
                Status.SetStoreHealthy(false);
                _logger.LogWarning("Checking whether the state store's data is back failed ({Error}: {Message}); trying again in {Seconds} s",
                    e.GetType().Name, e.Message, _guard.StateCheckInterval.TotalSeconds);
            }
        }
    }

    private static readonly TimeSpan LostStateLogInterval = TimeSpan.FromMinutes(1);

    /// <summary>
    /// After a lost-state error: true when a generation of the batch is no longer live (retired meanwhile, its store
    /// deleted), so the batch is simply redone without it; false when the state really is gone.
    /// </summary>
    private bool RetiredMeanwhile(CancellationToken cancellationToken)
    {
        try
        {
            var touched = _touched.Select(c => c.ModelVersion).ToList();
            Generations.RefreshAsync(force: true, cancellationToken).GetAwaiter().GetResult();
            var registry = Generations.Registry;
            var gone = touched.Where(m => registry.Find(m) is not { Live: true }).ToList();
            if (gone.Count == 0) return false;
            _logger.LogInformation("Generation(s) {Models} retired during the batch; redoing it without them", string.Join(", ", gone));
            return true;
        }
        catch (StateStoreLostException)
        {
            return false;
        }
    }

    /// <summary>
    /// An empty store is normal for a new deployment, but not when the consumer group has already consumed input that
    /// is still in the log: then Redis lost the state while no worker was running (a restart without persistence), and
    /// a worker that was running would have seen the loss (<see cref="AwaitRebuiltState"/>). Checked once, at the
    /// first assignment after a start on an empty store. The worker keeps going (an empty store serves the warm-up
    /// vector, never a user's own embedding), but says loudly what happened and how to rebuild.
    /// </summary>
    private void CheckEmptyStoreAgainstCommittedOffsets(IConsumer<byte[], byte[]> consumer)
    {
        _emptyStoreToCheck = false;
        try
        {
            var consumed = 0L;
            foreach (var committed in consumer.Committed(consumer.Assignment, TimeSpan.FromSeconds(10)))
            {
                if (committed.Offset.Value < 0) continue; // never committed
                var low = consumer.QueryWatermarkOffsets(committed.TopicPartition, TimeSpan.FromSeconds(10)).Low.Value;
                if (committed.Offset.Value > low) consumed += committed.Offset.Value - low;
            }
            if (consumed == 0) return;
            _logger.LogError(
                "The state store is EMPTY, but consumer group {Group} has already consumed {Events} events of its partitions that are still in the input topics: " +
                "Redis most likely lost the guard's state while no worker was running (restarted without persistence, flushed, evicted). The worker carries on from the " +
                "committed offsets (an empty store serves the population mean, never a user's own embedding), but those users' states and the statistics are gone. " +
                "To rebuild: stop the workers, seed the served population with `attrcloak bootstrap --config <appsettings.json> --model <DIR>`, reset the consumer group to the " +
                "earliest offsets (`kafka-consumer-groups --bootstrap-server <brokers> --group {Group} --reset-offsets --to-earliest --topic {Embeddings} --topic {Requests} --execute`), " +
                "start the workers and check with `attrcloak stats verify`. If this is a deliberate fresh start with an existing group, reset the group instead.",
                _kafka.ConsumerGroup, consumed, _kafka.ConsumerGroup, _kafka.EmbeddingsTopic, _kafka.PrivacyRequestsTopic);
        }
        catch (KafkaException e)
        {
            _logger.LogWarning("Could not compare the empty state store with the group's committed offsets ({Reason})", e.Error.Reason);
        }
    }

    private void LogLostState(StateStoreLostException lost, TimeSpan missingFor)
    {
        var reset = $"kafka-consumer-groups --bootstrap-server <brokers> --group {_kafka.ConsumerGroup} --reset-offsets --to-earliest " +
                    $"--topic {_kafka.EmbeddingsTopic} --topic {_kafka.PrivacyRequestsTopic} --execute";
        _logger.LogError(
            "STATE LOST ({Missing:F0} s so far): {What}. The worker does not re-create it: it would cloak against statistics of a partial population and treat every known user as new. " +
            "Until the state is back it publishes nothing, stores no offsets and reports not ready (attrcloak_state_missing 1); it checks every {Check} s and resumes by itself. " +
            "To rebuild: (1) re-seed the served population from the last batch-cloaked population with `attrcloak bootstrap --config <appsettings.json> --model <DIR> [--embeddings <FILE>]` " +
            "against prefix '{Prefix}' (it re-creates the meta key and writes every user at --version 0; the worker resumes with the events it holds); " +
            "(2) the events applied since that population are not in it: to restore them, stop the workers, reset the consumer group to the earliest offsets of the input topics " +
            "(`{Reset}`) and start them again: replayed events newer than a user's stored version are applied, older ones are stale. Then `attrcloak stats verify` must say consistent. " +
            "(`attrcloak stats rebuild` cannot help: it recomputes the statistics from stored users, and there are none.)",
            missingFor.TotalSeconds, lost.Message, _guard.StateCheckInterval.TotalSeconds, lost.Prefix, reset);
    }

    private void Decode(Batch batch)
    {
        for (var i = 0; i < batch.Count; i++)
        {
            ref var slot = ref batch.Slots[i];
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
            slot.Type = WorkerMetrics.TypeLabel(decoded.Event);
            if (_topicRule.Check(slot.Result.Topic, decoded.Event) is { } wrongTopic)
            {
                slot.DecodeError = wrongTopic;
                continue;
            }
            slot.Event = decoded.Event;
        }
    }

    private async Task ReadPlanApplyAsync(Batch batch, bool anyOptOut, CancellationToken cancellationToken)
    {
        var t = Stopwatch.GetTimestamp();
        var generations = Generations;
        await generations.RefreshAsync(force: false, cancellationToken).ConfigureAwait(false);
        // The generation of each embedding update's model (created on the model's first event) before routing.
        _resolved.Clear();
        for (var i = 0; i < batch.Count; i++)
            if (batch.Slots[i].Event is EmbeddingUpdate update) _resolved.TryAdd(update.ModelVersion, default);
        foreach (var model in _resolved.Keys.ToList())
            _resolved[model] = await generations.ResolveAsync(model, cancellationToken).ConfigureAwait(false);
        Route(batch);

        // Each generation's users: the ones this worker wrote recently are known, the others read (one round trip each).
        foreach (var context in _touched)
        {
            _missingUsers.Clear();
            foreach (var user in context.BatchUsers)
                if (context.Users.TryGet(user, out var cached)) context.Planner.AddUser(user, cached);
                else _missingUsers.Add(user);
            if (_missingUsers.Count > 0)
            {
                var states = await context.Store.GetUsersAsync(_missingUsers, cancellationToken).ConfigureAwait(false);
                for (var u = 0; u < _missingUsers.Count; u++) context.Planner.AddUser(_missingUsers[u], states[u]);
            }
            Interlocked.Add(ref _userReads, _missingUsers.Count);
            Interlocked.Add(ref _userCacheHits, context.BatchUsers.Count - _missingUsers.Count);
        }
        Stage(_readSeconds, ref t);

        await MarkRedeliveriesAsync(batch, cancellationToken).ConfigureAwait(false);

        // opt_out: cloak with maps built from the statistics as they are now.
        if (anyOptOut)
            foreach (var context in _touched)
                await context.Cloakers.RefreshNowAsync(cancellationToken).ConfigureAwait(false);
        PlanAll(batch);
        Stage(_cloakSeconds, ref t);

        foreach (var context in _touched)
        {
            var changes = context.Planner.Changes;
            context.Results = changes.Count == 0 ? [] : await context.Store.ApplyConsumedAsync(changes, batch.Consumed, cancellationToken).ConfigureAwait(false);
            if (changes.Count > 0)
                foreach (var c in batch.Consumed)
                    if (context.ConsumedMarks.GetValueOrDefault((c.Topic, c.Partition), -1) < c.Offset) context.ConsumedMarks[(c.Topic, c.Partition)] = c.Offset;
        }
        Stage(_applySeconds, ref t);
    }

    private readonly Dictionary<string, (GenerationContext? Context, Resolution Resolution)> _resolved = new(StringComparer.Ordinal);

    /// <summary>
    /// Which generations the batch reads: an embedding update's own, and every generation before it in the publish
    /// order (whether one of those holds the user decides where their serving record comes from); a privacy request
    /// every live generation. Updates of a retired model are marked; a new model beyond the filling limit is dead-lettered.
    /// </summary>
    private void Route(Batch batch)
    {
        var generations = Generations;
        foreach (var context in generations.Live) context.ResetBatch();
        for (var i = 0; i < batch.Count; i++)
        {
            ref var slot = ref batch.Slots[i];
            slot.PlanError = null;
            slot.Retired = false;
            if (slot.Event is not { } e) continue;
            if (e is EmbeddingUpdate update)
            {
                var (target, resolution) = _resolved[update.ModelVersion];
                if (target is null)
                {
                    if (resolution == Resolution.Limit) slot.PlanError = GenerationLimitError();
                    else slot.Retired = true;
                    continue;
                }
                foreach (var before in generations.PublishOrder)
                {
                    before.Touch(e.UserId);
                    if (ReferenceEquals(before, target)) break;
                }
                target.Touch(e.UserId);
            }
            else
                foreach (var context in generations.Live) context.Touch(e.UserId);
        }
        _touched.Clear();
        foreach (var context in generations.Live)
            if (context.InBatch) _touched.Add(context);
    }

    private DecodeError GenerationLimitError() => new(ReasonCode.GenerationLimit,
        $"a new model_version while {_generationOptions.MaxFilling} generation(s) are filling (AttrCloak:Generations:MaxFilling); retire an abandoned rollout or raise the limit");

    /// <summary>
    /// Folds every event into its generations in batch order, cloaking with each generation's own maps: an embedding
    /// update in its model's generation; a privacy request in every live generation that holds the user at that point
    /// (or, when none does, in the newest one: an unknown user's request is dead-lettered there, or found older than
    /// their forget).
    /// </summary>
    private void PlanAll(Batch batch)
    {
        var live = Generations.Live;
        for (var i = 0; i < batch.Count; i++)
        {
            ref var slot = ref batch.Slots[i];
            if (slot.Event is not { } e || slot.PlanError is not null || slot.Retired) continue;
            if (e is EmbeddingUpdate update)
            {
                var target = _resolved[update.ModelVersion].Context!;
                // Outside what the deployment accepts: never in the statistics, never served (docs/threat-model.md).
                if (Input.Refuses(update.Embedding, target.Info.Domain) is { } why)
                {
                    slot.PlanError = new DecodeError(ReasonCode.OutOfRange, why);
                    continue;
                }
                PlanIn(target, i, ref slot);
                continue;
            }
            var planned = false;
            foreach (var context in live)
                if (context.Planner.Holds(e.UserId))
                {
                    PlanIn(context, i, ref slot);
                    planned = true;
                }
            if (planned) continue;
            if (live.Count > 0) PlanIn(live[0], i, ref slot);
            else if (e is PrivacyRequest { Type: PrivacyRequestType.Forget }) slot.Retired = true; // nothing stored anywhere: nothing to forget
            else slot.PlanError = BatchPlanner.UnknownUserError(e);
        }
    }

    private void PlanIn(GenerationContext context, int index, ref Slot slot)
    {
        try
        {
            var sweepMark = context.Info.Published ? context.Info.SweepEpoch : (int?)null;
            if (context.Planner.Plan(index, slot.Event!, context.Cloakers.Current, context.Info.SeatEpoch, slot.Result.Partition.Value, sweepMark) is { } error)
                slot.PlanError = error;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A poison event must not stop the stream: dead-letter it, keep going.
            slot.PlanError = new DecodeError(ReasonCode.InternalError, $"processing fault ({ex.GetType().Name})");
            _logger.LogError(ex, "Processing one {Type} event failed; it goes to the dead-letter topic", slot.Type);
        }
    }

    /// <summary>
    /// Marks the batch's events at or below their partition's applied-offset watermark (in any generation the batch
    /// reads) as redeliveries, and collects the batch's highest offset per partition (raised in each generation's
    /// store with the batch's apply there).
    /// </summary>
    private async Task MarkRedeliveriesAsync(Batch batch, CancellationToken cancellationToken)
    {
        batch.Consumed.Clear();
        _batchMaxOffsets.Clear();
        for (var i = 0; i < batch.Count; i++)
        {
            var r = batch.Slots[i].Result;
            var key = (r.Topic, r.Partition.Value);
            if (!_batchMaxOffsets.TryGetValue(key, out var max) || r.Offset.Value > max) _batchMaxOffsets[key] = r.Offset.Value;
        }
        foreach (var ((topic, partition), max) in _batchMaxOffsets) batch.Consumed.Add(new ConsumedOffset(topic, partition, max));
        var keepsMarks = true;
        foreach (var context in _touched)
        {
            _consumedAsk.Clear();
            foreach (var c in batch.Consumed)
                if (context.StoreKeepsMarks && !context.ConsumedMarks.ContainsKey((c.Topic, c.Partition))) _consumedAsk.Add(new ConsumedOffset(c.Topic, c.Partition, -1));
            if (_consumedAsk.Count > 0)
            {
                var marks = await context.Store.ReadConsumedOffsetsAsync(_consumedAsk, cancellationToken).ConfigureAwait(false);
                if (marks is null) context.StoreKeepsMarks = false; // every stale version then passes as a redelivery (the old behaviour)
                else for (var p = 0; p < _consumedAsk.Count; p++) context.ConsumedMarks[(_consumedAsk[p].Topic, _consumedAsk[p].Partition)] = marks[p];
            }
            keepsMarks &= context.StoreKeepsMarks;
        }
        for (var i = 0; i < batch.Count; i++)
        {
            ref var slot = ref batch.Slots[i];
            var r = slot.Result;
            var key = (r.Topic, r.Partition.Value);
            var redelivered = !keepsMarks;
            foreach (var context in _touched)
                redelivered |= r.Offset.Value <= context.ConsumedMarks.GetValueOrDefault(key, -1);
            slot.Redelivered = redelivered;
        }
    }

    /// <summary>
    /// After the store writes: each user of the batch is remembered, per generation, in the state the store now holds
    /// when the store decided every one of their events there as planned; otherwise (someone else wrote) they are read
    /// again next time.
    /// </summary>
    private void Remember()
    {
        foreach (var context in _touched)
        {
            var planner = context.Planner;
            var appliedUsers = 0;
            foreach (var user in planner.Users)
            {
                var asPlanned = true;
                var applied = false;
                foreach (var j in user.ChangeIndices)
                {
                    var outcome = context.Results[j].Outcome;
                    applied |= outcome == ApplyOutcome.Applied;
                    asPlanned &= planner.Planned[j].Kind switch
                    {
                        PlannedKind.NotApplicable => outcome is ApplyOutcome.Duplicate or ApplyOutcome.Stale,
                        PlannedKind.UnknownUser => outcome is not ApplyOutcome.Applied,
                        _ => outcome == ApplyOutcome.Applied,
                    };
                }
                if (applied) appliedUsers++;
                if (!asPlanned || !context.Users.Enabled) context.Users.Remove(user.UserId);
                else context.Users.Set(user.UserId, user.Exists
                    ? new UserState(user.UserId, user.Version, user.StoredId!, user.Original!, user.Cloaked!, user.Classes!)
                    : null);
            }
            context.Cloakers.NoteApplied(appliedUsers);
        }
    }

    private void BuildOutputs(Batch batch)
    {
        var outputs = batch.Outputs;
        outputs.Clear();
        batch.Served.Clear();
        var now = DateTimeOffset.UtcNow;
        var slots = batch.Slots;

        // Each event's outcome: the best of its changes over the generations it went to.
        for (var i = 0; i < batch.Count; i++)
        {
            slots[i].Decided = false;
            slots[i].Conflict = null;
            slots[i].RejectError = null;
        }
        foreach (var context in _touched)
        {
            var planned = context.Planner.Planned;
            for (var j = 0; j < planned.Count; j++)
            {
                ref var slot = ref slots[planned[j].MessageIndex];
                var result = context.Results[j];
                if (!slot.Decided || Rank(result.Outcome) > Rank(slot.Outcome)) slot.Outcome = result.Outcome;
                slot.Decided = true;
                if (result.Outcome == ApplyOutcome.Rejected)
                    slot.RejectError ??= planned[j].Kind == PlannedKind.UnknownUser
                        ? BatchPlanner.UnknownUserError(slot.Event)
                        : new DecodeError(ReasonCode.StoreRejected, Printable(result.Reason ?? "rejected by the state store"));
                else if (result.Outcome == ApplyOutcome.Stale && planned[j].Conflict is { } conflict)
                    slot.Conflict ??= conflict;
            }
        }
        for (var i = 0; i < batch.Count; i++)
        {
            ref var slot = ref slots[i];
            if (!slot.Decided || slot.PlanError is not null) continue;
            if (slot.Outcome == ApplyOutcome.Rejected) slot.PlanError = slot.RejectError;
            else if (slot.Outcome == ApplyOutcome.Stale && !slot.Redelivered && slot.Conflict is { } conflict)
                // First delivered now, yet not above the user's applied version from the same topic: an out-of-order or conflicting producer.
                slot.PlanError = conflict == ReasonCode.VersionConflict
                    ? new DecodeError(ReasonCode.VersionConflict, "the user's applied version again with another event id; the applied event stays")
                    : new DecodeError(ReasonCode.StaleVersion, "a version older than the user's applied one, first delivered after it; nothing changed");
        }
        for (var i = 0; i < batch.Count; i++)
        {
            ref var slot = ref slots[i];
            if ((slot.DecodeError ?? slot.PlanError) is { } error)
                outputs.Add(DeadLetterOf(ref slot, error, now));
        }

        _publishedUsers.Clear();
        foreach (var context in _touched)
            foreach (var user in context.Planner.Users)
                if (_publishedUsers.Add(user.UserId)) Publish(batch, user.UserId, now);
    }

    private readonly HashSet<string> _publishedUsers = new(StringComparer.Ordinal);

    private Sweeper? _sweeper;
    private GenerationSeater? _seater;
    private string? _servingNotified;
    private long _sweepBackoffUntil;
    private readonly List<OutboundMessage> _sweepOutputs = [];
    private static readonly TimeSpan SweepBackoff = TimeSpan.FromSeconds(5);

    /// <summary>The audit follows the serving generation.</summary>
    private void NotifyServing()
    {
        if (_observer is null || Generations.Registry.Serving?.ModelVersion is not { } model || model == _servingNotified) return;
        _observer.OnServingGeneration(model);
        _servingNotified = model;
    }

    /// <summary>
    /// Between batches: follows the registry (promotions, retirements) and runs one step of the sweeps when their rate
    /// budget allows: every output of earlier batches is acknowledged first, then the chunk's outputs are sent and
    /// awaited, then the users' sweep marks move (so each user's outputs stay in order, and a crash redoes the chunk).
    /// A store failure only postpones the sweeps (the consume loop reports the store's health).
    /// </summary>
    private void SweepStep(CancellationToken cancellationToken)
    {
        if (_sweeper is null || Stopwatch.GetTimestamp() < _sweepBackoffUntil) return;
        try
        {
            Generations.RefreshAsync(force: false, cancellationToken).GetAwaiter().GetResult();
            NotifyServing();
            var chunk = _sweeper.NextAsync(cancellationToken).GetAwaiter().GetResult();
            if (chunk is null) return;
            if (chunk.Outputs.Count > 0)
            {
                FinishUnacknowledged(cancellationToken);
                var now = DateTimeOffset.UtcNow;
                _sweepOutputs.Clear();
                foreach (var u in chunk.Outputs)
                {
                    var value = u.Cloaked is null ? null
                        : EventCodec.Encode(new CloakedEmbedding(u.UserId, u.Version, chunk.ModelVersion, u.Cloaked, chunk.Context!.Planner.ProtectedNames(u.ProtectedMask), now));
                    _sweepOutputs.Add(new OutboundMessage(_kafka.CloakedTopic, EventCodec.KeyOf(u.UserId), value, value is null ? null : _cloakedHeaders));
                }
                _publisher!.SendAndAwait(_sweepOutputs, cancellationToken);
                foreach (var u in chunk.Outputs)
                {
                    _metrics.Published.WithLabels(u.Cloaked is null ? "tombstone" : "cloaked").Inc();
                    if (u.Cloaked is null) _observer?.OnForgotten(u.UserId);
                    else _observer?.OnServed(u.UserId, chunk.ModelVersion, u.Cloaked, u.Classes!);
                }
            }
            _sweeper.CompleteAsync(chunk, cancellationToken).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is RedisException or StateStoreConflictException or StateStoreLostException or TimeoutException or InvalidDataException)
        {
            _sweepBackoffUntil = Stopwatch.GetTimestamp() + (long)(SweepBackoff.TotalSeconds * Stopwatch.Frequency);
            _logger.LogWarning("A sweep step failed ({Error}: {Message}); sweeps resume in {Seconds} s", e.GetType().Name, e.Message, SweepBackoff.TotalSeconds);
        }
    }

    private static int Rank(ApplyOutcome outcome) => outcome switch
    {
        ApplyOutcome.Applied => 3,
        ApplyOutcome.Duplicate => 2,
        ApplyOutcome.Stale => 1,
        _ => 0,
    };

    /// <summary>
    /// The user's serving record after the batch: from the first generation of the publish order that holds them
    /// (its last applied state, or for a redelivery its stored state), only when the batch changed them there; a
    /// tombstone when no generation holds them any more and a forget applied (or was redelivered).
    /// </summary>
    private void Publish(Batch batch, string userId, DateTimeOffset now)
    {
        var slots = batch.Slots;
        foreach (var context in Generations.PublishOrder)
        {
            if (!context.Touches(userId)) continue;
            var fold = context.Planner.FoldOf(userId);
            if (!context.HoldsAfterBatch(fold)) continue;
            var lastApplied = -1;
            var duplicate = false;
            foreach (var j in fold.ChangeIndices)
            {
                if (context.Results[j].Outcome == ApplyOutcome.Applied) lastApplied = j;
                else if (context.Results[j].Outcome == ApplyOutcome.Duplicate) duplicate = true;
            }
            if (lastApplied >= 0)
            {
                var planned = context.Planner.Planned[lastApplied];
                var key = slots[planned.MessageIndex].Result.Message.Key;
                AddCloaked(batch, context, userId, key, planned.Version, planned.Cloaked!, planned.Classes!, planned.ProtectedMask, now);
            }
            else if (duplicate && fold.Stored is { } stored)
            {
                // A redelivery: the store has this state already, but its output may never have been acknowledged.
                var key = slots[context.Planner.Planned[fold.ChangeIndices[^1]].MessageIndex].Result.Message.Key;
                AddCloaked(batch, context, userId, key, stored.Version, stored.Cloaked, stored.Classes,
                    fold.StoredMeta.HasMask ? fold.StoredMeta.ProtectedMask : BatchPlanner.KnownClassMask(stored.Classes), now);
            }
            return; // the generation serving this user decides; others' changes are not published
        }
        // No generation holds the user: a tombstone if a forget applied, or was redelivered, in any of them.
        foreach (var context in _touched)
        {
            if (!context.Touches(userId)) continue;
            var fold = context.Planner.FoldOf(userId);
            foreach (var j in fold.ChangeIndices)
                if (context.Results[j].Outcome is ApplyOutcome.Applied or ApplyOutcome.Duplicate)
                {
                    AddTombstone(batch, userId, slots[context.Planner.Planned[fold.ChangeIndices[^1]].MessageIndex].Result.Message.Key);
                    return;
                }
        }
    }

    private void AddCloaked(Batch batch, GenerationContext source, string userId, byte[] key, long version, float[] cloaked, int[] classes, uint mask, DateTimeOffset now)
    {
        var value = EventCodec.Encode(new CloakedEmbedding(userId, version, source.ModelVersion, cloaked, source.Planner.ProtectedNames(mask), now));
        batch.Outputs.Add(new OutboundMessage(_kafka.CloakedTopic, key, value, _cloakedHeaders));
        batch.Served.Add(new Served(userId, source.ModelVersion, cloaked, classes));
    }

    private void AddTombstone(Batch batch, string userId, byte[] key)
    {
        batch.Outputs.Add(new OutboundMessage(_kafka.CloakedTopic, key, null, null));
        batch.Served.Add(new Served(userId, null, null, null));
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
    private void Account(Batch batch)
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

    private void StoreOffsets(IConsumer<byte[], byte[]> consumer, Batch batch)
    {
        _nextOffsets.Clear();
        for (var i = 0; i < batch.Count; i++)
        {
            var r = batch.Slots[i].Result;
            var key = (r.Topic, r.Partition.Value);
            if (!_nextOffsets.TryGetValue(key, out var next) || r.Offset.Value + 1 > next)
                _nextOffsets[key] = r.Offset.Value + 1;
        }
        List<TopicPartitionOffset>? stored = Trace is null ? null : [];
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
                _logger.LogInformation("Could not store an offset of {Topic}[{Partition}] ({Reason}); its new owner reprocesses the batch", topic, partition, e.Error.Reason);
            }
        }
        if (_rewound.Count > 0) CommitRewound(consumer);
        if (stored is not null) Trace?.Invoke(new BatchTrace(BatchStep.OffsetsStored, batch.Number, stored));
    }

    /// <summary>
    /// A partition consumed again from an earlier offset than we stored before: its log was replaced (a new, empty
    /// cluster after a broker loss, or a recreated topic) and librdkafka reset the position, or it was redelivered
    /// after a rebalance. librdkafka's auto-commit only moves a committed offset forward, so the old, higher offset
    /// would stay committed, and a restarted worker would skip the events written below it since: commit the real
    /// position explicitly (rare, one round trip).
    /// </summary>
    private void CommitRewound(IConsumer<byte[], byte[]> consumer)
    {
        _logger.LogWarning("Consuming {Partitions} from earlier offsets than stored before (a new or truncated log, or a redelivery); committing the acknowledged positions explicitly",
            KafkaClients.Describe(_rewound.Select(o => o.TopicPartition)));
        try
        {
            consumer.Commit(_rewound);
        }
        catch (KafkaException e)
        {
            _logger.LogWarning("Committing the rewound offsets failed ({Reason}); the auto-commit takes over once they pass the old ones", e.Error.Reason);
        }
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
        Membership.SetAssignment(consumer.Assignment);
    }

    private void Close(IConsumer<byte[], byte[]> consumer, TimeSpan budget)
    {
        // Commits what was stored (acknowledged batches only), then leaves the group so that partitions move at once;
        // gives up when Kafka does not answer within the budget.
        KafkaClients.CloseWithin(consumer, budget, _logger);
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
        /// <summary>At or below its partition's applied-offset watermark: decided once already (at-least-once redelivery).</summary>
        public bool Redelivered;
        /// <summary>An embedding update of a retired model generation (or a forget with nothing stored anywhere): nothing to do.</summary>
        public bool Retired;
        /// <summary>The generations it went to have decided it (<see cref="Outcome"/> is the best of their outcomes).</summary>
        public bool Decided;
        /// <summary>Stale somewhere, and bad input if it is no redelivery (stale_version / version_conflict).</summary>
        public ReasonCode? Conflict;
        /// <summary>Why a generation rejected it (dead-lettered when no generation did better).</summary>
        public DecodeError? RejectError;
    }

    private readonly record struct Served(string UserId, string? ModelVersion, float[]? Cloaked, int[]? Classes);

    /// <summary>One batch's messages and everything derived from them, kept until its outputs are acknowledged; reused.</summary>
    private sealed class Batch
    {
        public Slot[] Slots = new Slot[64];
        public int Count;
        public long Number;
        public List<ConsumedOffset> Consumed { get; } = [];
        public List<OutboundMessage> Outputs { get; } = [];
        public List<Served> Served { get; } = [];
        public OutputDelivery Delivery { get; } = new();

        public void Add(ConsumeResult<byte[], byte[]> result)
        {
            if (Count == Slots.Length) Array.Resize(ref Slots, Slots.Length * 2);
            Slots[Count++] = new Slot { Result = result, ConsumedAt = Stopwatch.GetTimestamp() };
        }

        /// <summary>Drops the references to the batch's messages, states and outputs.</summary>
        public void Clear()
        {
            Array.Clear(Slots, 0, Count);
            Count = 0;
            Outputs.Clear();
            Served.Clear();
        }
    }

    /// <summary>The store's own wording (no ids, no values), without control characters, for the dead-letter header.</summary>
    private static string Printable(string text) =>
        string.Create(text.Length, text, (span, source) =>
        {
            for (var i = 0; i < span.Length; i++) span[i] = char.IsControl(source[i]) ? ' ' : source[i];
        });
}

/// <summary>What <see cref="GuardPipeline"/> did with one batch (tests).</summary>
internal enum BatchStep
{
    /// <summary>Stored in the state store and every output handed to the producer.</summary>
    Sent,
    /// <summary>Every output acknowledged.</summary>
    Acknowledged,
    /// <summary>The batch's offsets stored (committed by librdkafka soon after).</summary>
    OffsetsStored,
}

/// <summary>One step of one batch, numbered in consumption order.</summary>
internal sealed record BatchTrace(BatchStep Step, long Batch, IReadOnlyList<TopicPartitionOffset> Offsets);
