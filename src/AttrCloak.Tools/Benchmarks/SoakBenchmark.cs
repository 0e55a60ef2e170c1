using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Monitoring;
using AttrCloak.Streaming.Pipeline;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace AttrCloak.Tools.Benchmarks;

/// <summary>What <see cref="SoakBenchmark.RunAsync"/> runs (<c>attrcloak bench soak</c>).</summary>
public sealed record SoakOptions
{
    /// <summary>The Redis to use (a fresh key prefix is created and deleted afterwards). Required.</summary>
    public required IConnectionMultiplexer Redis { get; init; }

    public TimeSpan Duration { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Events per second, paced evenly (not in bursts).</summary>
    public double Rate { get; init; } = 2000;

    /// <summary>The fixed user population the events are drawn from (uniformly).</summary>
    public int Users { get; init; } = 5000;

    public int Dimension { get; init; } = 64;

    /// <summary>Time between shadow audits (0: none).</summary>
    public TimeSpan AuditEvery { get; init; } = TimeSpan.FromSeconds(60);

    public TimeSpan SampleEvery { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Served users the shadow audit trains and tests its attackers on.</summary>
    public int AuditSampleSize { get; init; } = 2000;

    /// <summary>Attackers of the shadow audit (AttackerCatalog names).</summary>
    public IReadOnlyList<string> Attackers { get; init; } = ["lr", "mlp"];

    /// <summary>Share of events that are update_attributes requests (one attribute moves to another class).</summary>
    public double UpdateAttributesShare { get; init; } = 0.02;

    /// <summary>Share of events that are forget requests; a forgotten user re-appears (update with attributes) when next drawn.</summary>
    public double ForgetShare { get; init; } = 0.005;

    /// <summary>Share of events that are opt_out requests (each forces a cloaker rebuild: kept rare, as in production).</summary>
    public double OptOutShare { get; init; } = 0.0005;

    public IUserCloakerFactory? CloakerFactory { get; init; }

    /// <summary>How the population is cloaked before streaming (the CLI: batch AttrCloak-DF, as bootstrap); null: the rig's fallback.</summary>
    public PopulationSeeding? Seeding { get; init; }

    /// <summary>
    /// An external broker (e.g. <c>attrcloak kafka-mock</c> in its own process, or a real Kafka that creates topics on
    /// first use); null = librdkafka's mock cluster in this process, whose retained log then counts in its memory.
    /// </summary>
    public string? Brokers { get; init; }

    public ILoggerFactory? LoggerFactory { get; init; }
}

/// <summary>One sample of a soak run. Counters are cumulative; rates and latencies cover the interval since the previous sample.</summary>
/// <param name="ElapsedSeconds">Since the producer started.</param>
/// <param name="Produced">Events handed to the producer so far.</param>
/// <param name="Consumed">Events the worker handled end to end (stored, output acknowledged, offset stored).</param>
/// <param name="ProducedPerSecond">Over the interval.</param>
/// <param name="ConsumedPerSecond">Over the interval.</param>
/// <param name="Lag">Produced minus consumed: events waiting in the producer, the broker or the worker.</param>
/// <param name="P50Milliseconds">Consume-to-acknowledgement latency over the interval (NaN when none).</param>
/// <param name="P99Milliseconds">Same, 99th percentile.</param>
/// <param name="ManagedHeapBytes">Lowest GC heap size after a collection (GCMemoryInfo.HeapSizeBytes, read every 200 ms) within the interval: the heap's floor, without the gen0 sawtooth.</param>
/// <param name="ManagedCommittedBytes">Memory the GC has committed.</param>
/// <param name="RssBytes">Process resident set.</param>
/// <param name="NativeBytes">RSS minus managed committed: native allocations (librdkafka, TorchSharp-free here) and runtime.</param>
/// <param name="RedisUsedBytes">Redis INFO used_memory (NaN when unavailable).</param>
/// <param name="DeadLetters">Events dead-lettered so far.</param>
/// <param name="Stale">Events found stale (older than their user's applied version) so far.</param>
/// <param name="Errors">Errors so far: worker log entries at Error or above, failed deliveries of the producer, a worker fault.</param>
/// <param name="FirstError">The first error's message, if any.</param>
/// <param name="AuditRuns">Successful shadow audits so far.</param>
/// <param name="AuditFailures">Failed shadow audits so far.</param>
/// <param name="AuditWorstAdvantage">Latest audit: the largest |balanced accuracy - chance| over attributes and attackers, both directions (NaN before the first).</param>
public sealed record SoakSample(
    double ElapsedSeconds,
    long Produced,
    long Consumed,
    double ProducedPerSecond,
    double ConsumedPerSecond,
    long Lag,
    double P50Milliseconds,
    double P99Milliseconds,
    long ManagedHeapBytes,
    long ManagedCommittedBytes,
    long RssBytes,
    long NativeBytes,
    double RedisUsedBytes,
    long DeadLetters,
    long Stale,
    long Errors,
    string? FirstError,
    long AuditRuns,
    long AuditFailures,
    double AuditWorstAdvantage);

/// <summary>What the producer sent, by kind.</summary>
public sealed record SoakMix(long EmbeddingUpdates, long UpdateAttributes, long OptOuts, long Forgets, long Reappearances);

/// <summary>The figures of a soak run.</summary>
/// <param name="Samples">In elapsed order; the last one is taken after the producer stopped and the backlog drained (or the drain timed out).</param>
/// <param name="Mix">Events sent by kind.</param>
/// <param name="P50Milliseconds">Over the whole run (a uniform sample of the latencies).</param>
/// <param name="P99Milliseconds">Same.</param>
/// <param name="LatestAudit">The last audit, per attribute: worst balanced accuracy, chance and attacker; null when none ran.</param>
public sealed record SoakResult(
    IReadOnlyList<SoakSample> Samples,
    SoakMix Mix,
    double P50Milliseconds,
    double P99Milliseconds,
    ShadowAuditReport? LatestAudit)
{
    /// <summary>How the population was seeded before the soak.</summary>
    public SeedReport? Seeded { get; init; }
}

/// <summary>
/// <c>attrcloak bench soak</c>: the real worker (<see cref="GuardPipeline"/>, real Redis, librdkafka mock cluster,
/// periodic shadow audits by <see cref="ShadowAuditor"/>) fed for a fixed duration at a fixed, evenly paced rate with a
/// realistic mix over a fixed population (see <see cref="SoakOptions"/>), consuming while producing (the mock keeps
/// only a bounded tail). Samples throughput, lag, latency, memory (managed, RSS, native, Redis), dead letters, errors
/// and audits every <see cref="SoakOptions.SampleEvery"/>; <see cref="SoakVerdict.Judge"/> decides. Prints nothing.
/// </summary>
public static class SoakBenchmark
{
    /// <summary>
    /// A user's events go to two topics (updates and privacy requests), whose relative order Kafka does not keep: a
    /// user's next event switches topic only after this gap, so that the previous one has been handled (a stale event
    /// in the results means the worker fell further behind than this).
    /// </summary>
    public static readonly TimeSpan TopicSwitchGap = TimeSpan.FromSeconds(2);

    /// <summary>After the producer stops, at most this long is given to the worker to drain the backlog.</summary>
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(30);

    public static async Task<SoakResult> RunAsync(SoakOptions options, IProgress<SoakSample>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.Redis);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Users, 10);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.Rate, 0);

        var errors = new ErrorCounter();
        var loggers = new CountingLoggerFactory(options.LoggerFactory ?? NullLoggerFactory.Instance, errors);
        var catalog = BenchmarkRig.Catalog;
        var sample = new ServedSample(options.AuditSampleSize, options.Dimension, catalog.Length);
        var latencies = new LatencyRecorder(1_000_000);
        var overall = new LatencyRecorder(200_000);
        await using var rig = new BenchmarkRig(options.Redis, options.Users, options.Dimension, options.CloakerFactory ?? new TransportCloakerFactory(),
            new RigTuning(latencies, MaxUnacknowledgedBatches: 2, UserCacheCapacity: 100_000, CloakerRebuildShare: 0.02, MaxBatchEvents: 384, MaxBatchWait: TimeSpan.FromMilliseconds(5)),
            sample, loggers.CreateLogger("AttrCloak.Streaming.Soak"), cancellationToken, options.Seeding, options.Brokers);
        using var auditor = new ShadowAuditor(sample, catalog, options.Dimension,
            new AuditOptions { Interval = options.AuditEvery, SampleSize = options.AuditSampleSize, Attackers = [.. options.Attackers] },
            rig.Metrics, new Logger<ShadowAuditor>(loggers), seed: rig.Generations.ScanServingAsync);
        ShadowAuditReport? latestAudit = null;
        auditor.Completed += report => latestAudit = report;

        await rig.StartAsync(cancellationToken).ConfigureAwait(false);
        await auditor.StartAsync(cancellationToken).ConfigureAwait(false);
        var samples = new List<SoakSample>();
        var clock = Stopwatch.StartNew();
        var producerState = new ProducerState();
        using var producerStop = CancellationTokenSource.CreateLinkedTokenSource(rig.Stopping);
        var producer = Task.Factory.StartNew(() => Produce(options, rig, producerState, errors, clock, producerStop.Token),
            producerStop.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        using var process = Process.GetCurrentProcess();
        var previous = (Seconds: 0.0, Produced: 0L, Consumed: 0L);
        // The heap after a collection swings by tens of MiB with the gen0 budget (a sawtooth that drowns a slope);
        // its lowest value within each sampling interval follows what survives, which is what a leak grows.
        var managedFloor = long.MaxValue;
        try
        {
            var nextSample = options.SampleEvery;
            while (clock.Elapsed < options.Duration)
            {
                await Task.Delay(Min(nextSample - clock.Elapsed, TimeSpan.FromMilliseconds(200)), cancellationToken).ConfigureAwait(false);
                managedFloor = Math.Min(managedFloor, GC.GetGCMemoryInfo().HeapSizeBytes);
                if (!ProducerAndWorkerAlive()) break;
                if (clock.Elapsed < nextSample) continue;
                samples.Add(await SampleAsync().ConfigureAwait(false));
                progress?.Report(samples[^1]);
                nextSample += options.SampleEvery;
            }
            // Stop producing and let the worker finish what was sent: the last sample shows the drained state.
            await producerStop.CancelAsync().ConfigureAwait(false);
            try { await producer.ConfigureAwait(false); }
            catch (OperationCanceledException) { }
            var drainBy = Stopwatch.StartNew();
            while (rig.Pipeline.ProcessedEvents < Interlocked.Read(ref producerState.Produced) && drainBy.Elapsed < DrainTimeout && ProducerAndWorkerAlive())
                await Task.Delay(20, cancellationToken).ConfigureAwait(false); // polling interval of the drain
            samples.Add(await SampleAsync().ConfigureAwait(false));
        }
        finally
        {
            await producerStop.CancelAsync().ConfigureAwait(false);
            await auditor.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
        var all = overall.TakeWindow();
        return new SoakResult(samples, producerState.Mix(),
            LatencyRecorder.PercentileOfSorted(all, 0.50) * 1000, LatencyRecorder.PercentileOfSorted(all, 0.99) * 1000, latestAudit) { Seeded = rig.Seeded };

        bool ProducerAndWorkerAlive()
        {
            try { rig.ThrowIfWorkerFailed(); }
            catch (InvalidOperationException e)
            {
                errors.Add(e.Message);
                return false;
            }
            if (producer.IsFaulted)
            {
                errors.Add($"the producer failed: {producer.Exception?.GetBaseException().Message}");
                return false;
            }
            return true;
        }

        async Task<SoakSample> SampleAsync()
        {
            var now = clock.Elapsed.TotalSeconds;
            var produced = Interlocked.Read(ref producerState.Produced);
            var consumed = rig.Pipeline.ProcessedEvents;
            var window = latencies.TakeWindow();
            foreach (var v in window) overall.Record(v);
            process.Refresh();
            var gc = GC.GetGCMemoryInfo();
            var committed = gc.TotalCommittedBytes;
            var managed = Math.Min(managedFloor, gc.HeapSizeBytes);
            managedFloor = long.MaxValue;
            var redisUsed = await BenchmarkRig.RedisInfoAsync(options.Redis, "memory", "used_memory").ConfigureAwait(false);
            var metrics = rig.Metrics;
            var deadLetters = (long)ReasonCodes.All.Sum(r => metrics.DeadLetters.WithLabels(r.Label()).Value);
            var stale = (long)EventTypes.Sum(t => metrics.Events.WithLabels(t, WorkerMetrics.Outcomes.Stale).Value);
            var report = latestAudit;
            var dt = Math.Max(1e-9, now - previous.Seconds);
            var s = new SoakSample(now, produced, consumed, (produced - previous.Produced) / dt, (consumed - previous.Consumed) / dt, produced - consumed,
                LatencyRecorder.PercentileOfSorted(window, 0.50) * 1000, LatencyRecorder.PercentileOfSorted(window, 0.99) * 1000,
                managed, committed, process.WorkingSet64, Math.Max(0, process.WorkingSet64 - committed), redisUsed,
                deadLetters, stale, errors.Count, errors.First,
                (long)metrics.AuditRuns.WithLabels("success").Value, (long)metrics.AuditRuns.WithLabels("failure").Value,
                report is null ? double.NaN : report.Attributes.Max(a => a.MaxAbsAdvantage));
            previous = (now, produced, consumed);
            return s;
        }
    }

    private static readonly string[] EventTypes =
        [WorkerMetrics.EventTypes.EmbeddingUpdate, WorkerMetrics.EventTypes.UpdateAttributes, WorkerMetrics.EventTypes.OptOut, WorkerMetrics.EventTypes.Forget];

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? (a < TimeSpan.Zero ? TimeSpan.Zero : a) : b;

    private sealed class ProducerState
    {
        public long Produced;
        public long Updates, UpdateAttributes, OptOuts, Forgets, Reappearances;

        public SoakMix Mix() => new(Interlocked.Read(ref Updates), Interlocked.Read(ref UpdateAttributes), Interlocked.Read(ref OptOuts),
            Interlocked.Read(ref Forgets), Interlocked.Read(ref Reappearances));
    }

    private enum Kind { Update, UpdateAttributes, OptOut, Forget }

    /// <summary>
    /// Sends events at the fixed rate until cancelled: event i is due at i / rate seconds, so the load is steady, not
    /// bursty. Users are drawn uniformly; each user's versions increase by one per event (the seed used 1 and 2).
    /// </summary>
    private static void Produce(SoakOptions options, BenchmarkRig rig, ProducerState state, ErrorCounter errors, Stopwatch clock, CancellationToken cancellationToken)
    {
        var population = rig.Population;
        var catalog = BenchmarkRig.Catalog;
        var kafka = rig.Kafka;
        using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig
        {
            BootstrapServers = kafka.BootstrapServers,
            EnableIdempotence = true,
            LingerMs = 5,
            Partitioner = Partitioner.Murmur2Random,
        }).Build();
        var rng = new Random(20250303);
        var n = population.UserIds.Length;
        var keys = population.UserIds.Select(EventCodec.KeyOf).ToArray();
        var versions = Enumerable.Repeat(2L, n).ToArray();
        var classes = population.Classes.Select(c => (int[])c.Clone()).ToArray();
        var embeddings = population.Originals.Select(x => (float[])x.Clone()).ToArray();
        var forgotten = new bool[n];
        var lastTopicIsRequest = new bool[n];
        var lastAt = Enumerable.Repeat(TimeSpan.FromDays(-1), n).ToArray(); // "long ago" (MinValue would overflow the subtraction)
        var headers = new Headers { { KafkaHeaders.ContentType, Encoding.UTF8.GetBytes(ContentTypes.Json) } };
        var gap = TopicSwitchGap;
        Action<DeliveryReport<byte[], byte[]>> onDelivery = r =>
        {
            // Runs on librdkafka's poll thread: count, never throw there.
            if (r.Error.IsError) errors.Add($"a produced event was not delivered: {r.Error.Reason}");
        };
        var (forgetShare, optOutShare, attributesShare) = (options.ForgetShare, options.OptOutShare, options.UpdateAttributesShare);
        try
        {
            Loop();
        }
        finally
        {
            // Deliver what is queued, so that "produced" counts only events the worker can get (bounded: a stopping rig).
            producer.Flush(TimeSpan.FromSeconds(10));
        }

        void Loop()
        {
            for (long i = 0; ; i++)
            {
                // Pacing: wait until event i is due.
                while (i > clock.Elapsed.TotalSeconds * options.Rate)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    Thread.Sleep(1);
                }
                cancellationToken.ThrowIfCancellationRequested();
                var now = clock.Elapsed;
                var r = rng.NextDouble();
                var kind = r < forgetShare ? Kind.Forget
                    : r < forgetShare + optOutShare ? Kind.OptOut
                    : r < forgetShare + optOutShare + attributesShare ? Kind.UpdateAttributes
                    : Kind.Update;
                // A user whose last event went to the other topic within the gap is not drawn (per-user order); a forgotten
                // user only re-appears with an update. Retries are few: most users are idle for longer than the gap.
                var u = -1;
                for (var attempt = 0; attempt < 64 && u < 0; attempt++)
                {
                    var candidate = rng.Next(n);
                    var request = kind != Kind.Update;
                    if (request && forgotten[candidate]) continue;
                    if (lastTopicIsRequest[candidate] != request && now - lastAt[candidate] < gap) continue;
                    u = candidate;
                }
                if (u < 0) continue; // nobody eligible right now (tiny populations): skip this slot rather than break the order
                var version = ++versions[u];
                var id = population.UserIds[u];
                var eventId = $"s{i}";
                string topic;
                byte[] value;
                switch (kind)
                {
                    case Kind.Update:
                        var embedding = (float[])embeddings[u].Clone();
                        embedding[(int)(i % embedding.Length)] += (float)(rng.NextDouble() - 0.5) * 0.1f;
                        Dictionary<string, string>? attributes = null;
                        if (forgotten[u])
                        {
                            // Re-appearing after a forget: the user registers again, with their attribute values.
                            attributes = catalog.Select((a, k) => (a.Name, Class: a.ClassNames[classes[u][k]])).ToDictionary(x => x.Name, x => x.Class, StringComparer.Ordinal);
                            forgotten[u] = false;
                            Interlocked.Increment(ref state.Reappearances);
                        }
                        else Interlocked.Increment(ref state.Updates);
                        value = EventCodec.Encode(new EmbeddingUpdate(eventId, id, version, DateTimeOffset.UtcNow, BenchmarkRig.ModelVersion, embedding, attributes));
                        topic = kafka.EmbeddingsTopic;
                        break;
                    case Kind.UpdateAttributes:
                        var a = rng.Next(catalog.Length);
                        var old = classes[u][a];
                        classes[u][a] = (old + 1 + rng.Next(catalog[a].ClassCount - 1)) % catalog[a].ClassCount;
                        // The user's later embeddings carry the new class's shift (the model learns the change): a
                        // label that contradicts the embedding for ever would be a signal the cloak cannot hide.
                        var (from, to) = (population.Shifts[a][old], population.Shifts[a][classes[u][a]]);
                        for (var k = 0; k < embeddings[u].Length; k++) embeddings[u][k] += to[k] - from[k];
                        value = EventCodec.Encode(new PrivacyRequest(eventId, id, version, DateTimeOffset.UtcNow, PrivacyRequestType.UpdateAttributes,
                            new Dictionary<string, string?>(StringComparer.Ordinal) { [catalog[a].Name] = catalog[a].ClassNames[classes[u][a]] }));
                        topic = kafka.PrivacyRequestsTopic;
                        Interlocked.Increment(ref state.UpdateAttributes);
                        break;
                    case Kind.OptOut:
                        value = EventCodec.Encode(new PrivacyRequest(eventId, id, version, DateTimeOffset.UtcNow, PrivacyRequestType.OptOut, null));
                        topic = kafka.PrivacyRequestsTopic;
                        Interlocked.Increment(ref state.OptOuts);
                        break;
                    default:
                        value = EventCodec.Encode(new PrivacyRequest(eventId, id, version, DateTimeOffset.UtcNow, PrivacyRequestType.Forget, null));
                        topic = kafka.PrivacyRequestsTopic;
                        forgotten[u] = true;
                        Interlocked.Increment(ref state.Forgets);
                        break;
                }
                lastTopicIsRequest[u] = kind != Kind.Update;
                lastAt[u] = now;
                while (true)
                {
                    try
                    {
                        producer.Produce(topic, new Message<byte[], byte[]> { Key = keys[u], Value = value, Headers = headers }, onDelivery);
                        break;
                    }
                    catch (ProduceException<byte[], byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        producer.Poll(TimeSpan.FromMilliseconds(5));
                    }
                }
                Interlocked.Increment(ref state.Produced);
            }
        }
    }

    /// <summary>Errors seen during the run (thread-safe); the first message is kept.</summary>
    private sealed class ErrorCounter
    {
        private long _count;
        private string? _first;

        public long Count => Interlocked.Read(ref _count);
        public string? First => Volatile.Read(ref _first);

        public void Add(string message)
        {
            Interlocked.CompareExchange(ref _first, message, null);
            Interlocked.Increment(ref _count);
        }
    }

    /// <summary>Forwards to the caller's loggers and counts entries at Error or above as errors of the run.</summary>
    private sealed class CountingLoggerFactory(ILoggerFactory inner, ErrorCounter errors) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) => new CountingLogger(inner.CreateLogger(categoryName), errors);
        public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);
        public void Dispose() { /* the inner factory belongs to the caller */ }

        private sealed class CountingLogger(ILogger inner, ErrorCounter errors) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);
            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error || inner.IsEnabled(logLevel);

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (logLevel >= LogLevel.Error) errors.Add(formatter(state, exception));
                if (inner.IsEnabled(logLevel)) inner.Log(logLevel, eventId, state, exception, formatter);
            }
        }
    }
}
