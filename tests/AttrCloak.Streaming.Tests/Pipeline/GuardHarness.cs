using System.Collections.Concurrent;
using System.Security.Cryptography;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Kafka;
using AttrCloak.Streaming.Monitoring;
using AttrCloak.Streaming.Pipeline;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;
using AttrCloak.Tools.Kafka;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace AttrCloak.Streaming.Tests.Pipeline;

/// <summary>One librdkafka mock cluster per test class (topics and groups are unique per test).</summary>
public sealed class MockKafkaFixture : IDisposable
{
    public MockKafkaCluster Cluster { get; } = new();

    public void Dispose() => Cluster.Dispose();
}

/// <summary>
/// One test's world: unique topics, group and Redis prefix; a real producer for the inputs, readers of the serving
/// and dead-letter topics, and workers (<see cref="GuardPipeline"/> on a thread, as the hosted service runs it) that can
/// be started and stopped, each with a fresh store instance like a restarted process.
/// </summary>
internal sealed class GuardHarness : IDisposable
{
    public const int D = 8;

    /// <summary>The <c>model_version</c> of <see cref="Update"/>: the generation every test event goes to.</summary>
    public const string Model = "mf-test-1";
    public static readonly DateTimeOffset Time = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90); // generous: a loaded 2-core CI machine, never reached when things work

    private readonly IProducer<byte[], byte[]> _producer;
    private readonly List<Task> _produced = [];
    private readonly List<TopicReader> _readers = [];

    public GuardHarness(RedisServerFixture redis, MockKafkaFixture kafka, string name, Action<GuardOptions>? configure = null)
    {
        Redis = redis.Redis;
        var id = $"{name}-{Guid.NewGuid():N}"[..(name.Length + 9)];
        var guard = new GuardOptions
        {
            Dimension = D,
            Attributes = new Dictionary<string, string[]>(StringComparer.Ordinal)
            {
                ["gender"] = ["F", "M"],
                ["age"] = ["young", "middle", "old"],
            },
            MaxBatchWait = TimeSpan.FromMilliseconds(5),
        };
        configure?.Invoke(guard);
        Settings = new StreamingSettings(
            new KafkaOptions
            {
                BootstrapServers = kafka.Cluster.BootstrapServers,
                ConsumerGroup = $"guard-{id}",
                EmbeddingsTopic = $"{id}.embeddings",
                PrivacyRequestsTopic = $"{id}.requests",
                CloakedTopic = $"{id}.cloaked",
                DeadLetterTopic = $"{id}.dead-letter",
                Client = ClientProperties(),
            },
            new RedisConnectionOptions(),
            guard,
            new AuditOptions());
        StoreOptions = new StateStoreOptions
        {
            Prefix = redis.NewPrefix(name),
            Dimension = guard.Dimension, // D unless configure changed it (the corpus tests use the corpus's dimension)
            Attributes = guard.AttributeSpecs(),
            TombstoneSecret = RandomNumberGenerator.GetBytes(32),
        };
        Catalog = guard.Catalog();
        kafka.Cluster.CreateTopics(Kafka.EmbeddingsTopic, Kafka.PrivacyRequestsTopic, Kafka.CloakedTopic, Kafka.DeadLetterTopic);
        _producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig
        {
            BootstrapServers = kafka.Cluster.BootstrapServers,
            EnableIdempotence = true,
            LingerMs = 1,
        }).Build();
    }

    /// <summary>
    /// The mock's group coordinator makes a member that joins after the last one left wait for the old session
    /// timeout (45 s by default); a short one keeps the restart test fast. ATTRCLOAK_KAFKA_DEBUG=cgrp,... adds
    /// librdkafka debug contexts to the worker's log (shown for failed tests).
    /// </summary>
    private static Dictionary<string, string> ClientProperties()
    {
        var properties = new Dictionary<string, string> { ["session.timeout.ms"] = "6000", ["heartbeat.interval.ms"] = "1000" };
        if (Environment.GetEnvironmentVariable("ATTRCLOAK_KAFKA_DEBUG") is { Length: > 0 } debug) properties["debug"] = debug;
        return properties;
    }

    public IConnectionMultiplexer Redis { get; }
    public StreamingSettings Settings { get; }
    public StateStoreOptions StoreOptions { get; }
    public AttributeCatalog Catalog { get; }
    public SignatureCloakerFactory Factory { get; } = new();

    /// <summary>The maps the workers build (<see cref="Factory"/>, the signature cloaker, unless a test wants the real ones).</summary>
    public AttrCloak.Streaming.Cloaking.IUserCloakerFactory? CloakerFactory { get; set; }

    /// <summary>The workers' input limits and displacement cap (AttrCloak:Input).</summary>
    public AttrCloak.Streaming.Poisoning.InputOptions Input { get; set; } = new();
    public KafkaOptions Kafka => Settings.Kafka;

    /// <summary>
    /// The workers' rollout options: automatic seating is off by default, so that a test's outputs are only those of
    /// its events (a seating republishes every user); the generation tests switch it on.
    /// </summary>
    public GenerationOptions Generations { get; set; } = new() { AutoPromote = false, RegistryPoll = TimeSpan.FromMilliseconds(100), SeatCheckInterval = TimeSpan.FromMilliseconds(200) };

    /// <summary>How the workers seat a generation (null: batch AttrCloak-DF, the default).</summary>
    public PopulationSeeding? Seeding { get; set; }

    /// <summary>A new store instance on this test's prefix (as a restarted process would have).</summary>
    public RedisGenerationStore NewStore() => new(Redis, StoreOptions);

    /// <summary>A new store instance of the test model's generation (for seeding and inspecting).</summary>
    public IStateStore NewModelStore() => NewStore().StoreOf(Model);

    /// <summary>Starts a worker and waits until it is ready (group joined, store initialised).</summary>
    /// <param name="observer">Sees the served population.</param>
    /// <param name="batches">Sees the pipeline's batch steps (and may hold acknowledgements back).</param>
    /// <param name="wrapStore">Wraps the Redis store (e.g. to inject failures).</param>
    /// <param name="rebuildShare">The pipeline's <see cref="GuardPipeline.CloakerRebuildShare"/> (1: rebuilds not spaced out).</param>
    public WorkerRun Start(RecordingObserver? observer = null, IBatchObserver? batches = null, Func<IStateStore, IStateStore>? wrapStore = null,
        double rebuildShare = 0.02)
    {
        IGenerationStore store = NewStore();
        if (wrapStore is not null) store = new WrappedGenerationStore(store, wrapStore);
        var run = new WorkerRun(this, store, observer, batches, rebuildShare);
        try
        {
            Wait.Until(() => run.Pipeline.Status.Ready || run.Failure is not null, Deadline, "the worker to become ready");
            if (run.Failure is not null) throw new InvalidOperationException("the worker failed to start", run.Failure);
            return run;
        }
        catch
        {
            run.Dispose();
            throw;
        }
    }

    // ---- inputs ---------------------------------------------------------------------------------------------------

    public static float[] Embedding(int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, D).Select(_ => (float)Math.Round(rng.NextDouble() * 2 - 1, 3)).ToArray();
    }

    public static EmbeddingUpdate Update(string user, long version, float[] embedding, Dictionary<string, string>? attributes = null, string? eventId = null) =>
        new(eventId ?? $"{user}-u{version}", user, version, Time.AddSeconds(version), "mf-test-1", embedding, attributes);

    public static PrivacyRequest Request(string user, long version, PrivacyRequestType type, Dictionary<string, string?>? attributes = null) =>
        new($"{user}-r{version}", user, version, Time.AddSeconds(version), type, attributes);

    public void Produce(EmbeddingUpdate update) => ProduceRaw(Kafka.EmbeddingsTopic, EventCodec.KeyOf(update.UserId), EventCodec.Encode(update));

    public void Produce(PrivacyRequest request) => ProduceRaw(Kafka.PrivacyRequestsTopic, EventCodec.KeyOf(request.UserId), EventCodec.Encode(request));

    /// <summary>Into one partition of the embeddings topic: messages of several users then arrive in this order.</summary>
    public void ProduceTo(int partition, EmbeddingUpdate update)
    {
        lock (_produced)
            _produced.Add(_producer.ProduceAsync(new TopicPartition(Kafka.EmbeddingsTopic, partition),
                new Message<byte[], byte[]> { Key = EventCodec.KeyOf(update.UserId), Value = EventCodec.Encode(update) }));
    }

    /// <summary>Produces one message as it is; the task gives its partition and offset.</summary>
    public Task<DeliveryResult<byte[], byte[]>> ProduceRaw(string topic, byte[]? key, byte[]? value, Headers? headers = null)
    {
        var task = _producer.ProduceAsync(topic, new Message<byte[], byte[]> { Key = key!, Value = value!, Headers = headers });
        lock (_produced) _produced.Add(task);
        return task;
    }

    /// <summary>Waits until every input produced so far is acknowledged by the broker.</summary>
    public void Flush()
    {
        Task[] all;
        lock (_produced) all = [.. _produced];
        Task.WaitAll(all, Deadline);
    }

    // ---- outputs --------------------------------------------------------------------------------------------------

    public TopicReader Reader(string topic)
    {
        var reader = new TopicReader(Settings.Kafka.BootstrapServers, topic);
        _readers.Add(reader);
        return reader;
    }

    public void Dispose()
    {
        foreach (var r in _readers) r.Dispose();
        _producer.Flush(TimeSpan.FromSeconds(5));
        _producer.Dispose();
    }
}

/// <summary>A worker run on its own thread, like <see cref="PrivacyGuardWorker"/> runs it.</summary>
internal sealed class WorkerRun : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;

    public WorkerRun(GuardHarness harness, IGenerationStore store, RecordingObserver? observer, IBatchObserver? batches = null, double rebuildShare = 0.02)
    {
        Generations = store;
        Logs = new CapturingLoggerProvider();
        Metrics = new WorkerMetrics();
        Pipeline = new GuardPipeline(harness.Settings.Kafka, harness.Settings.Guard, store, harness.CloakerFactory ?? harness.Factory, observer, Metrics,
            Logs.CreateLogger("test"), harness.Generations, batchObserver: Maps = new MapsRecorder(batches)) { CloakerRebuildShare = rebuildShare, Seeding = harness.Seeding, Input = harness.Input };
        _thread = new Thread(() =>
        {
            try { Pipeline.Run(_stop.Token); }
            catch (Exception e) { Failure = e; }
        }) { IsBackground = true, Name = "guard-under-test" };
        _thread.Start();
    }

    public GuardPipeline Pipeline { get; }
    public WorkerMetrics Metrics { get; }

    /// <summary>The statistics version each generation's current maps were built from.</summary>
    public MapsRecorder Maps { get; }

    /// <summary>The deployment the worker runs on.</summary>
    public IGenerationStore Generations { get; }

    /// <summary>The store of the serving generation (of <see cref="GuardHarness.Model"/> before there is one).</summary>
    public IStateStore Store => Generations.StoreOf(
        Generations.ReadRegistryAsync().GetAwaiter().GetResult().Serving?.ModelVersion ?? GuardHarness.Model);
    public CapturingLoggerProvider Logs { get; }
    public Exception? Failure { get; private set; }

    public double Events(string type, string outcome) => Metrics.Events.WithLabels(type, outcome).Value;

    public double DeadLetters(ReasonCode reason) => Metrics.DeadLetters.WithLabels(reason.Label()).Value;

    /// <summary>Graceful stop: cancel, wait for the loop to commit and leave the group.</summary>
    public void Stop()
    {
        _stop.Cancel();
        if (!_thread.Join(GuardHarness.Deadline)) throw new TimeoutException("the worker did not stop");
        if (Failure is not null) throw new InvalidOperationException("the worker failed", Failure);
    }

    public void Dispose()
    {
        try
        {
            if (_thread.IsAlive) Stop();
        }
        finally
        {
            // The worker's log goes to the test output (shown for failed tests).
            if (TestContext.Current.TestOutputHelper is { } output)
                foreach (var line in Logs.Lines) output.WriteLine(line);
            _stop.Dispose();
        }
    }
}

/// <summary>Reads a topic from the beginning on a background thread, keeping every message.</summary>
internal sealed class TopicReader : IDisposable
{
    private readonly IConsumer<byte[], byte[]> _consumer;
    private readonly List<ConsumeResult<byte[], byte[]>> _messages = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;

    public TopicReader(string servers, string topic)
    {
        _consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig
        {
            BootstrapServers = servers,
            GroupId = $"reader-{Guid.NewGuid():N}",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
            FetchWaitMaxMs = 10,
            TopicMetadataRefreshIntervalMs = 1000,
        }).SetErrorHandler((_, _) => { }).SetLogHandler((_, _) => { }).Build();
        _consumer.Subscribe(topic);
        _thread = new Thread(() =>
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    if (_consumer.Consume(TimeSpan.FromMilliseconds(50)) is { } r)
                        lock (_messages) _messages.Add(r);
                }
                catch (ConsumeException)
                {
                    // the topic may not exist yet
                }
            }
        }) { IsBackground = true };
        _thread.Start();
    }

    public List<ConsumeResult<byte[], byte[]>> Snapshot()
    {
        lock (_messages) return [.. _messages];
    }

    /// <summary>Waits until <paramref name="done"/> holds for the messages read so far; returns them.</summary>
    public List<ConsumeResult<byte[], byte[]>> WaitUntil(Func<List<ConsumeResult<byte[], byte[]>>, bool> done, string what)
    {
        List<ConsumeResult<byte[], byte[]>>? seen = null;
        Wait.Until(() => done(seen = Snapshot()), GuardHarness.Deadline, what);
        return seen!;
    }

    public void Dispose()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _thread.Join(TimeSpan.FromSeconds(10));
        _consumer.Close();
        _consumer.Dispose();
    }
}

internal static class Wait
{
    /// <summary>Polls <paramref name="condition"/> until it holds; fails the test with <paramref name="what"/> at the deadline.</summary>
    public static void Until(Func<bool> condition, TimeSpan deadline, string what)
    {
        var end = DateTime.UtcNow + deadline;
        while (!condition())
        {
            if (DateTime.UtcNow > end) throw new TimeoutException($"timed out after {deadline.TotalSeconds} s waiting for {what}");
            Thread.Sleep(20); // polling interval, bounded by the deadline
        }
    }
}

/// <summary>Keeps every log line (to check start-up facts and that no user id is ever logged).</summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyList<string> Lines => [.. _lines];

    public ILogger CreateLogger(string categoryName) => new Logger(_lines);

    public void Dispose() { }

    private sealed class Logger(ConcurrentQueue<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue($"{logLevel}: {formatter(state, exception)}{(exception is null ? "" : " | " + exception.Message)}");
    }
}

/// <summary>Records what the pipeline told the served-population observer.</summary>
internal sealed class RecordingObserver : IServedPopulationObserver
{
    public ConcurrentQueue<(string User, float[] Cloaked, int[] Classes)> Served { get; } = new();
    public ConcurrentQueue<string> Forgotten { get; } = new();
    public ConcurrentQueue<string> ModelVersions { get; } = new();

    public void OnServed(string userId, string modelVersion, ReadOnlySpan<float> cloaked, ReadOnlySpan<int> classes)
    {
        ModelVersions.Enqueue(modelVersion);
        Served.Enqueue((userId, cloaked.ToArray(), classes.ToArray()));
    }

    public void OnForgotten(string userId) => Forgotten.Enqueue(userId);
}

/// <summary>A deployment whose generation stores are wrapped (to inject failures into the worker's store calls).</summary>
internal sealed class WrappedGenerationStore(IGenerationStore inner, Func<IStateStore, IStateStore> wrap) : IGenerationStore
{
    private readonly Dictionary<string, IStateStore> _wrapped = new(StringComparer.Ordinal);

    public Task<GenerationRegistry> ReadRegistryAsync(CancellationToken cancellationToken = default) => inner.ReadRegistryAsync(cancellationToken);

    public Task<long> RegistryVersionAsync(CancellationToken cancellationToken = default) => inner.RegistryVersionAsync(cancellationToken);

    public Task<bool> TryWriteRegistryAsync(long expectedVersion, IReadOnlyList<Generation> changed, CancellationToken cancellationToken = default) =>
        inner.TryWriteRegistryAsync(expectedVersion, changed, cancellationToken);

    public IStateStore StoreOf(string modelVersion)
    {
        lock (_wrapped)
        {
            if (!_wrapped.TryGetValue(modelVersion, out var store)) _wrapped[modelVersion] = store = wrap(inner.StoreOf(modelVersion));
            return store;
        }
    }

    public void Release(string modelVersion)
    {
        lock (_wrapped) _wrapped.Remove(modelVersion);
        inner.Release(modelVersion);
    }

    public string Describe(string modelVersion) => inner.Describe(modelVersion);

    public StoreFault ClassifyFault(Exception exception) => inner.ClassifyFault(exception);

    public void Dispose() => inner.Dispose();
}

/// <summary>Records the statistics version of each generation's latest maps; forwards every call to <paramref name="inner"/>.</summary>
internal sealed class MapsRecorder(IBatchObserver? inner) : IBatchObserver
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, StatisticsVersion> _built = new(StringComparer.Ordinal);

    /// <summary>The version the current maps of <paramref name="modelVersion"/> were built from; null before the first.</summary>
    public StatisticsVersion? Version(string modelVersion) => _built.TryGetValue(modelVersion, out var v) ? v : null;

    public void OnStep(BatchTrace trace) => inner?.OnStep(trace);

    public bool AcknowledgementsAllowed => inner?.AcknowledgementsAllowed ?? true;

    public void WaitUntilAcknowledgementsAllowed(CancellationToken cancellationToken) => inner?.WaitUntilAcknowledgementsAllowed(cancellationToken);

    public void OnMapsBuilt(string modelVersion, StatisticsVersion version)
    {
        _built[modelVersion] = version;
        inner?.OnMapsBuilt(modelVersion, version);
    }
}
