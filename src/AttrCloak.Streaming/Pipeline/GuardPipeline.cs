using System.Diagnostics;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Kafka;
using AttrCloak.Streaming.Monitoring;
using AttrCloak.Streaming.Poisoning;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;
using Microsoft.Extensions.Logging;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// The consume-apply-publish loop of the privacy guard. Per poll, a batch (<see cref="BatchCollector"/>: up to
/// <see cref="GuardOptions.MaxBatchEvents"/> events or <see cref="GuardOptions.MaxBatchWait"/>):
/// <list type="number">
/// <item>decode every message; anything malformed is dead-lettered with its reason (<see cref="BatchDecoder"/>);</item>
/// <item>read the batch's users, fold each user's events in order into state changes, cloaking with the current
/// cloaker, and apply the whole batch in one atomic store call, retrying store faults and holding the batch while the
/// store's data is lost (<see cref="BatchProcessor"/>, <see cref="StateLossGuard"/>);</item>
/// <item>publish, per user whose state changed, the LAST state of the batch (a null value on forget); for a
/// duplicate (a redelivery after a crash between the store write and the publish) the stored state again; dead
/// letters (<see cref="OutputBuilder"/>, <see cref="OutputPublisher"/>);</item>
/// <item>wait for every acknowledgement, and only then store the batch's offsets (<see cref="OffsetTracker"/>), and
/// count what happened (<see cref="BatchAccounting"/>).</item>
/// </list>
/// Pipelined: the acknowledgements of up to <see cref="MaxUnacknowledgedBatches"/> sent batches are awaited only after
/// the next batch was collected, stored and sent, so the broker round trip overlaps the next batch's work. The store
/// writes stay strictly sequential (batch N+1 reads what batch N wrote), offsets are stored batch by batch in
/// consumption order, each only after the store write and every acknowledgement of its batch (and of all earlier
/// ones). A crash loses at most the unacknowledged batches' offsets: they are redelivered and republished as
/// duplicates (at-least-once). Between batches the sweeps take a step (<see cref="SweepDriver"/>).
/// <see cref="Run"/> blocks (Confluent's Consume blocks): give it a dedicated thread.
/// </summary>
public sealed class GuardPipeline
{
    private static readonly TimeSpan LagRefresh = TimeSpan.FromSeconds(5);

    private readonly KafkaOptions _kafka;
    private readonly GuardOptions _guard;
    private readonly IGenerationStore _store;
    private readonly GenerationOptions _generationOptions;
    private readonly IServedPopulationObserver? _observer;
    private readonly IBatchObserver? _batchObserver;
    private readonly WorkerMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly IUserCloakerFactory _cloakerFactory;
    private readonly BatchDecoder _decoder;
    private readonly BatchAccounting _accounting;
    private GenerationSet? _generationSet;
    private long _batchNumber;

    /// <param name="kafka">Brokers, topics and consumer group.</param>
    /// <param name="guard">Dimension, catalog, batching, refresh and shutdown settings.</param>
    /// <param name="store">The deployment's generations and their stores.</param>
    /// <param name="cloakerFactory">Builds each generation's cloaking maps.</param>
    /// <param name="observer">Sees the served population (the shadow audit's sample), or null.</param>
    /// <param name="metrics">Where the loop reports.</param>
    /// <param name="logger">The worker's log.</param>
    /// <param name="generations">Rollout settings (default: <see cref="GenerationOptions"/>' defaults).</param>
    /// <param name="timeProvider">The clock of output timestamps and of the lost-state wait (default: the system's).</param>
    /// <param name="batchObserver">Sees each batch's steps and may hold acknowledgements back (tests).</param>
    public GuardPipeline(
        KafkaOptions kafka,
        GuardOptions guard,
        IGenerationStore store,
        IUserCloakerFactory cloakerFactory,
        IServedPopulationObserver? observer,
        WorkerMetrics metrics,
        ILogger logger,
        GenerationOptions? generations = null,
        TimeProvider? timeProvider = null,
        IBatchObserver? batchObserver = null)
    {
        _kafka = kafka ?? throw new ArgumentNullException(nameof(kafka));
        _guard = guard ?? throw new ArgumentNullException(nameof(guard));
        _store = store ?? throw new ArgumentNullException(nameof(store));
        _generationOptions = generations ?? new GenerationOptions();
        _cloakerFactory = cloakerFactory ?? throw new ArgumentNullException(nameof(cloakerFactory));
        _observer = observer;
        _batchObserver = batchObserver;
        _metrics = metrics ?? throw new ArgumentNullException(nameof(metrics));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _time = timeProvider ?? TimeProvider.System;
        Status = new PipelineStatus(metrics);
        Membership = new GroupMembership(metrics, [kafka.EmbeddingsTopic, kafka.PrivacyRequestsTopic]);
        _decoder = new BatchDecoder(new ContractLimits(guard.Dimension, guard.MaxMessageBytes), guard.Catalog(),
            new InputTopicRule(kafka.EmbeddingsTopic, kafka.PrivacyRequestsTopic));
        _accounting = new BatchAccounting(metrics, observer, kafka);
    }

    /// <summary>
    /// The deployment's generations, each with its store, maps and user cache. Built on first use, so that
    /// <see cref="CloakerRebuildShare"/> and <see cref="UserCacheCapacity"/> (init properties) are in force.
    /// </summary>
    private GenerationSet Generations => _generationSet ??= new GenerationSet(_store, _cloakerFactory, _guard, _generationOptions, _metrics, _logger,
        UserCacheCapacity, CloakerRebuildShare, Input, mapsBuilt: _batchObserver is { } o ? o.OnMapsBuilt : null);

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
    /// 1 = rebuild whenever the drift thresholds say so. Default 0.02: larger
    /// shares took the CPU Redis and librdkafka needed and raised p99 latency (docs/performance.md). An opt_out still
    /// rebuilds at once; streamed quality did not depend on the refresh rate (the streaming-quality experiment: every 5, 25 or
    /// 200 users gave the same).
    /// </summary>
    public double CloakerRebuildShare { get; init; } = 0.02;

    /// <summary>
    /// Users whose state the pipeline remembers instead of reading it back from the store (0: always read): the one user
    /// cache per generation (<see cref="UserCache"/>), which the store also takes the batch's priors from.
    /// </summary>
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
    public (long Read, long Cached) UserLookups => _accounting.UserLookups;

    /// <summary>Readiness, for the health endpoint.</summary>
    public PipelineStatus Status { get; }

    /// <summary>Which embedding updates are accepted (hard limits, and each generation's learned input domain).</summary>
    public InputOptions Input { get; init; } = new();

    /// <summary>How this worker batch-cloaks a generation it seats (default: <see cref="GenerationOptions.Seeding"/>).</summary>
    public PopulationSeeding? Seeding { get; init; }

    /// <summary>This worker's name in seat leases (default: host name, process id and a random suffix).</summary>
    public string InstanceId { get; init; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>Optional: per-event consume-to-acknowledgement latencies (benchmarks).</summary>
    public LatencyRecorder? Latencies
    {
        get => _accounting.Latencies;
        init => _accounting.Latencies = value;
    }

    /// <summary>Inbound events fully handled (output acknowledged, offset stored), dead letters included.</summary>
    public long ProcessedEvents => _accounting.ProcessedEvents;

    /// <summary>
    /// Runs until <paramref name="cancellationToken"/> is cancelled: initialises the store (with retries), logs the
    /// start-up facts, then consumes. On cancellation the batch in progress is abandoned without storing its offsets,
    /// the stored offsets are committed and the consumer leaves its group. Throws on faults that retrying cannot
    /// fix (e.g. the store holds another layout); offsets of unfinished batches are then not stored either.
    /// </summary>
    public void Run(CancellationToken cancellationToken)
    {
        var generations = Generations;
        BatchProcessor.StoreRetry(generations.Faults, Status, _logger).ExecuteAsync(async ct => await generations.InitializeAsync(ct).ConfigureAwait(false), cancellationToken)
            .AsTask().GetAwaiter().GetResult();
        Status.SetStoreHealthy(true);
        Status.SetStoreInitialized();
        StartupLog.Write(_logger, _kafka, _guard, _store, generations, _generationOptions);
        var lossGuard = new StateLossGuard(generations, Status, _kafka, _guard, _time, _logger) { EmptyStoreToCheck = generations.StartedEmpty };
        var processor = new BatchProcessor(generations, lossGuard, Status, _accounting, Input, _generationOptions, _logger);
        var outputs = new OutputBuilder(_kafka, generations, _time);
        var sweeper = new Sweeper(generations, _generationOptions, _metrics, _logger);
        var seater = new GenerationSeater(_store, _guard.AttributeSpecs(), _generationOptions, Seeding ?? _generationOptions.Seeding(), _metrics, _logger, InstanceId,
            input: Input, cloakerFactory: _cloakerFactory);
        using var seating = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var seaterTask = Task.Run(() => seater.RunAsync(seating.Token), CancellationToken.None);

        var collector = new BatchCollector(_kafka, _guard, Status, Membership, _accounting, _logger);
        using var publisher = new OutputPublisher(onFatal => KafkaClients.ProducerBuilder(_kafka, _logger, onFatal, collector.OnBrokers).Build(), _logger, _batchObserver);
        OffsetTracker? offsets = null;
        var consumer = collector.Open(
            onRevoking: () =>
            {
                try { offsets?.FinishAll(cancellationToken); }
                catch (OperationCanceledException) { /* shutting down: the unacknowledged batches are redelivered */ }
            },
            onAssignmentChanged: assignment =>
            {
                foreach (var context in generations.Live) context.Forget();
                sweeper.OnAssignment(assignment.Select(tp => (tp.Topic, tp.Partition.Value)), _kafka.EmbeddingsTopic);
            });
        offsets = new OffsetTracker(consumer, publisher, _accounting, _batchObserver, _logger);
        var sweeps = new SweepDriver(sweeper, generations, outputs, publisher, _accounting, _observer, _logger);
        sweeps.NotifyServing();
        var graceful = false;
        try
        {
            collector.Subscribe();
            Status.SetRunning(true);
            var nextLag = Stopwatch.GetTimestamp();
            while (!cancellationToken.IsCancellationRequested)
            {
                var batch = offsets.Rent();
                collector.Collect(batch, awaitingAcknowledgements: offsets.Unacknowledged > 0, cancellationToken);
                lossGuard.CheckEmptyStoreAgainstCommittedOffsets(consumer);
                if (batch.Count > 0)
                {
                    Process(batch, processor, outputs, publisher, offsets, cancellationToken);
                    offsets.Sent(batch);
                    // Finish what is acknowledged already, and wait for the oldest while too many are outstanding.
                    offsets.FinishAcknowledged(MaxUnacknowledgedBatches, cancellationToken);
                }
                else
                {
                    offsets.Return(batch);
                    // Nothing new within the batch window: finish the outstanding batches now rather than at the next one.
                    offsets.FinishAll(cancellationToken);
                }
                sweeps.Step(offsets.FinishAll, cancellationToken);
                if (Stopwatch.GetTimestamp() >= nextLag)
                {
                    _accounting.RefreshLag(consumer);
                    Membership.SetAssignment(consumer.Assignment);
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
            if (!seaterTask.Wait(_guard.ShutdownTimeout * 0.2, CancellationToken.None)) _logger.LogInformation("A seating was still running at shutdown; its lease expires and it is redone");
            if (graceful || cancellationToken.IsCancellationRequested) offsets.DrainAtShutdown(_guard.ShutdownTimeout * 0.3);
            offsets.Abandon();
            // The rest, less a reserve for the producer's last flush, for committing and leaving the group.
            var flushReserve = _guard.ShutdownTimeout * 0.15;
            collector.Close(_guard.ShutdownTimeout - stopping.Elapsed - flushReserve);
            _logger.LogInformation("Privacy guard stopped after {Events} events", ProcessedEvents);
            publisher.CloseTimeout = Max(TimeSpan.Zero, _guard.ShutdownTimeout - stopping.Elapsed - TimeSpan.FromMilliseconds(200));
            Membership.SetAssignment([]);
        }
    }

    /// <summary>One collected batch: decoded, stored (with retries), its outputs built and sent (not awaited).</summary>
    private void Process(Batch batch, BatchProcessor processor, OutputBuilder outputs, OutputPublisher publisher, OffsetTracker offsets,
        CancellationToken cancellationToken)
    {
        batch.Number = ++_batchNumber;
        var t = Stopwatch.GetTimestamp();
        _decoder.Decode(batch);
        _accounting.Lap(Stage.Decode, ref t);
        processor.Process(batch, offsets.FinishAll, cancellationToken);
        t = Stopwatch.GetTimestamp();
        outputs.Build(batch, processor.Touched);
        _accounting.Lap(Stage.Encode, ref t);
        publisher.Send(batch.Outputs, batch.Delivery, cancellationToken);
        if (MaxUnacknowledgedBatches == 0) publisher.Flush(cancellationToken); // unpipelined: nothing else to wait for
        _batchObserver?.OnStep(new BatchTrace(BatchStep.Sent, batch.Number, []));
        _accounting.Lap(Stage.Produce, ref t);
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
