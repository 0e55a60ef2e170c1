using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using AttrCloak.Core.Data;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Kafka;
using AttrCloak.Streaming.Monitoring;
using AttrCloak.Streaming.Pipeline;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Tools.Kafka;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace AttrCloak.Tools.Benchmarks;

/// <summary>How a benchmark rig's pipeline is tuned (the pipeline's init-only properties).</summary>
internal sealed record RigTuning(
    LatencyRecorder? Latencies,
    int MaxUnacknowledgedBatches,
    int UserCacheCapacity,
    double CloakerRebuildShare,
    int MaxBatchEvents,
    TimeSpan MaxBatchWait);

/// <summary>
/// What the streaming benchmarks (<see cref="StreamBenchmark"/>, <see cref="SoakBenchmark"/>) share: a librdkafka mock
/// cluster with fresh topics, a fresh key prefix in the given Redis, a synthetic population of
/// <see cref="BenchmarkPopulation"/> seeded into the store as <c>attrcloak bootstrap</c> would, and the real
/// <see cref="GuardPipeline"/> running on its own thread. Disposing stops the worker and deletes the prefix.
/// </summary>
internal sealed class BenchmarkRig : IAsyncDisposable
{
    /// <summary>An ML-1M-like catalog: gender, age, occupation.</summary>
    public static readonly AttributeSpec[] Catalog = [MovieLensAttributes.Gender, MovieLensAttributes.Age, MovieLensAttributes.Occupation1M];

    private readonly IConnectionMultiplexer _redis;
    private readonly CancellationTokenSource _stop;
    private readonly Thread _worker;
    private readonly PopulationSeeding? _seeding;
    private Exception? _workerFailure;

    public BenchmarkRig(IConnectionMultiplexer redis, int users, int dimension, IUserCloakerFactory factory, RigTuning tuning,
        IServedPopulationObserver? observer, ILogger logger, CancellationToken cancellationToken, PopulationSeeding? seeding = null,
        string? brokers = null)
    {
        _redis = redis;
        _seeding = seeding;
        Factory = factory;
        var id = Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();
        // An external broker (e.g. `attrcloak kafka-mock` in its own process) keeps the broker's retained log out of
        // this process's memory figures; without one, librdkafka's mock cluster runs in-process.
        Cluster = brokers is null ? new MockKafkaCluster() : null;
        Kafka = new KafkaOptions
        {
            BootstrapServers = Cluster?.BootstrapServers ?? brokers!,
            ConsumerGroup = $"bench-{id}",
            EmbeddingsTopic = $"bench-{id}.embeddings",
            PrivacyRequestsTopic = $"bench-{id}.requests",
            CloakedTopic = $"bench-{id}.cloaked",
            DeadLetterTopic = $"bench-{id}.dead-letter",
        };
        string[] topics = [Kafka.EmbeddingsTopic, Kafka.PrivacyRequestsTopic, Kafka.CloakedTopic, Kafka.DeadLetterTopic];
        if (Cluster is not null) Cluster.CreateTopics(topics);
        else MockKafkaCluster.CreateTopicsOn(Kafka.BootstrapServers, topics);
        var guard = new GuardOptions
        {
            Dimension = dimension,
            Attributes = Catalog.ToDictionary(a => a.Name, a => a.ClassNames.ToArray(), StringComparer.Ordinal),
            MaxBatchEvents = tuning.MaxBatchEvents,
            MaxBatchWait = tuning.MaxBatchWait,
        };
        StoreOptions = new StateStoreOptions
        {
            Prefix = $"attrcloak-bench-{id}",
            Dimension = dimension,
            Attributes = Catalog,
            TombstoneSecret = RandomNumberGenerator.GetBytes(32),
        };
        Generations = new RedisGenerationStore(redis, StoreOptions);
        Store = (RedisStateStore)Generations.StoreOf(ModelVersion);
        Population = BenchmarkPopulation.Create(users, dimension, Catalog);
        Metrics = new WorkerMetrics();
        Pipeline = new GuardPipeline(Kafka, guard, Generations, factory, observer, Metrics, logger)
        {
            Latencies = tuning.Latencies,
            MaxUnacknowledgedBatches = tuning.MaxUnacknowledgedBatches,
            UserCacheCapacity = tuning.UserCacheCapacity,
            CloakerRebuildShare = tuning.CloakerRebuildShare,
        };
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _worker = new Thread(() =>
        {
            try { Pipeline.Run(_stop.Token); }
            catch (Exception e) when (e is not OperationCanceledException) { _workerFailure = e; }
        }) { Name = "attrcloak-bench-guard", IsBackground = true };
    }

    /// <summary>The in-process mock cluster; null when the rig uses an external broker.</summary>
    public MockKafkaCluster? Cluster { get; }
    public KafkaOptions Kafka { get; }
    public StateStoreOptions StoreOptions { get; }
    /// <summary>The deployment's generations (the benches stream one model, <see cref="ModelVersion"/>).</summary>
    public RedisGenerationStore Generations { get; }

    /// <summary>The store of the benches' generation.</summary>
    public RedisStateStore Store { get; }

    /// <summary>The <c>model_version</c> of every bench event, and the generation it is seeded into.</summary>
    public const string ModelVersion = "bench-1";
    public BenchmarkPopulation Population { get; }
    public WorkerMetrics Metrics { get; }
    public GuardPipeline Pipeline { get; }
    public IUserCloakerFactory Factory { get; }

    /// <summary>Cancelled when the rig stops (pass it to producers).</summary>
    public CancellationToken Stopping => _stop.Token;

    /// <summary>Seeds the store, starts the worker and waits until it has joined its consumer group.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await SeedAsync(cancellationToken).ConfigureAwait(false);
        _worker.Start();
        var readyBy = Stopwatch.StartNew();
        while (!Pipeline.Status.Ready)
        {
            if (_workerFailure is not null) throw new InvalidOperationException($"the worker failed to start: {_workerFailure.Message}", _workerFailure);
            if (readyBy.Elapsed > TimeSpan.FromSeconds(60)) throw new TimeoutException("the worker did not join its consumer group within 60 s");
            await Task.Delay(20, cancellationToken).ConfigureAwait(false); // polling interval, bounded above
        }
    }

    /// <summary>Throws when the worker thread ended with a fault.</summary>
    public void ThrowIfWorkerFailed()
    {
        if (_workerFailure is not null) throw new InvalidOperationException($"the worker failed: {_workerFailure.Message}", _workerFailure);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        // A background thread that never started reads Unstarted | Background: test the flag (a failed seed left it so).
        if ((_worker.ThreadState & System.Threading.ThreadState.Unstarted) == 0) _worker.Join(TimeSpan.FromSeconds(30));
        try { await DeploymentKeys.DeleteAllAsync(_redis, StoreOptions.Prefix).ConfigureAwait(false); }
        finally
        {
            Generations.Dispose();
            Cluster?.Dispose();
            _stop.Dispose();
        }
    }

    /// <summary>How the population was seeded; null until <see cref="StartAsync"/> has seeded it.</summary>
    public SeedReport? Seeded { get; private set; }

    /// <summary>
    /// A warm store, as <c>attrcloak bootstrap</c> leaves it: the population batch-cloaked (the given seeding, batch
    /// AttrCloak-DF by default, what bootstrap runs) and written with <see cref="GenerationSeeding"/> at version 2 into
    /// the seated, serving generation <see cref="ModelVersion"/>, so the class statistics the worker maps streamed users
    /// onto are those of a cloaked population.
    /// </summary>
    private async Task SeedAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var seeding = _seeding ?? PopulationSeeding.DataFree;
        var population = new SeedPopulation(Population.UserIds, Population.Originals, Population.Classes);
        // The batch cloak is CPU-bound (TorchSharp): off the caller's thread.
        var cloaked = await Task.Run(() => PopulationSeeder.Cloak(seeding, population, Catalog, cancellationToken), cancellationToken).ConfigureAwait(false);
        await PopulationSeeder.WriteAsync(Generations, ModelVersion, population, cloaked, version: 2, batchSize: 500, cancellationToken: cancellationToken).ConfigureAwait(false);
        var n = population.Count;
        Seeded = new SeedReport(seeding.Method, n, clock.Elapsed);
    }

    /// <summary>A numeric field of INFO (e.g. used_cpu_user in section cpu); NaN when unavailable.</summary>
    public static async Task<double> RedisInfoAsync(IConnectionMultiplexer redis, string section, params string[] fields)
    {
        try
        {
            var info = await redis.GetServers()[0].InfoAsync(section).ConfigureAwait(false);
            var values = info.SelectMany(g => g).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
            return fields.Sum(f => double.Parse(values[f], CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is RedisException or RedisCommandException or KeyNotFoundException or FormatException)
        {
            return double.NaN; // e.g. INFO disabled, or a connection without admin mode: the figure is reported as unavailable
        }
    }
}

/// <summary>How a benchmark's population was seeded into the store: method, users and wall time (cloak + writes).</summary>
public sealed record SeedReport(string Method, int Users, TimeSpan Elapsed)
{
    public string Describe() => string.Create(CultureInfo.InvariantCulture, $"seeded {Users:N0} users with {Method} in {Elapsed.TotalSeconds:F1} s");
}

/// <summary>
/// The benchmarks' users: ids, classes (uniform per attribute) and original embeddings with class-dependent means:
/// each embedding is Gaussian-like factors plus <see cref="Shifts"/>[attribute][class] for each of the user's classes.
/// </summary>
internal sealed record BenchmarkPopulation(string[] UserIds, int[][] Classes, float[][] Originals, float[][][] Shifts)
{
    public static BenchmarkPopulation Create(int users, int dimension, AttributeSpec[] catalog)
    {
        var rng = new Random(20250301);
        var d = dimension;
        // Each class shifts the embedding a little (what the cloak has to hide), on top of Gaussian-like factors.
        var shifts = catalog.Select(a => Enumerable.Range(0, a.ClassCount)
            .Select(_ => Enumerable.Range(0, d).Select(_ => (float)(rng.NextDouble() * 2 - 1) * 0.1f).ToArray()).ToArray()).ToArray();
        var ids = Enumerable.Range(0, users).Select(u => $"u{u + 1}").ToArray();
        var classes = new int[users][];
        var originals = new float[users][];
        for (var u = 0; u < users; u++)
        {
            classes[u] = catalog.Select(a => rng.Next(a.ClassCount)).ToArray();
            var x = new float[d];
            for (var i = 0; i < d; i++)
            {
                // Sum of uniforms: roughly Gaussian, sd about 0.3.
                var g = 0.0;
                for (var k = 0; k < 3; k++) g += rng.NextDouble() * 2 - 1;
                x[i] = (float)(g * 0.3);
                for (var a = 0; a < catalog.Length; a++) x[i] += shifts[a][classes[u][a]][i];
            }
            originals[u] = x;
        }
        return new BenchmarkPopulation(ids, classes, originals, shifts);
    }
}
