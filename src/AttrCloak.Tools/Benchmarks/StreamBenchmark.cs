using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using AttrCloak.Core.Data;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Kafka;
using AttrCloak.Streaming.Monitoring;
using AttrCloak.Streaming.Pipeline;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace AttrCloak.Tools.Benchmarks;

/// <summary>What <see cref="StreamBenchmark.RunAsync"/> runs (<c>attrcloak bench stream</c>).</summary>
public sealed record StreamBenchmarkOptions
{
    /// <summary>The Redis to use (a fresh key prefix is created and deleted afterwards). Required.</summary>
    public required IConnectionMultiplexer Redis { get; init; }

    /// <summary>
    /// The per-user cloaker; null = the real one, <see cref="TransportCloakerFactory"/> with its default options
    /// (per-class Gaussian transport maps from the seeded population). <see cref="AffineCostCloakerFactory"/> is a
    /// cost model only, for comparisons.
    /// </summary>
    public IUserCloakerFactory? CloakerFactory { get; init; }

    /// <summary>Sent batches whose acknowledgements may be outstanding while the next is processed (see <see cref="GuardPipeline.MaxUnacknowledgedBatches"/>).</summary>
    public int MaxUnacknowledgedBatches { get; init; } = 2;

    /// <summary>Users the pipeline remembers instead of reading them back (see <see cref="GuardPipeline.UserCacheCapacity"/>; 0 = read every batch).</summary>
    public int UserCacheCapacity { get; init; } = 100_000;

    /// <summary>Share of a core for background cloaker rebuilds (see <see cref="GuardPipeline.CloakerRebuildShare"/>).</summary>
    public double CloakerRebuildShare { get; init; } = 0.02;

    /// <summary>Offered load in events per second (0 = as fast as the window allows): latency at a given rate.</summary>
    public double ProduceRate { get; init; }

    /// <summary>Embedding updates to stream.</summary>
    public int Events { get; init; } = 100_000;

    /// <summary>Distinct users, re-embedded round-robin (ML-100K has 943).</summary>
    public int Users { get; init; } = 943;

    public int Dimension { get; init; } = 64;

    public int MaxBatchEvents { get; init; } = 384;

    public TimeSpan MaxBatchWait { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>Send the embeddings in the compact binary encoding instead of JSON.</summary>
    public bool BinaryEncoding { get; init; }

    /// <summary>
    /// Most events produced but not yet handled: the producer runs at full speed within this window. The mock cluster
    /// keeps only a bounded tail of each partition, so an unbounded backlog would lose events.
    /// </summary>
    public int MaxInFlight { get; init; } = 20_000;

    /// <summary>How often memory and throughput are sampled.</summary>
    public TimeSpan SampleInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Gives up after this long.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>How the population is cloaked before streaming (the CLI: batch AttrCloak-DF, as bootstrap); null: the rig's fallback.</summary>
    public PopulationSeeding? Seeding { get; init; }

    public ILoggerFactory? LoggerFactory { get; init; }
}

/// <summary>A progress report, about once per <see cref="StreamBenchmarkOptions.SampleInterval"/>.</summary>
public sealed record StreamBenchmarkProgress(TimeSpan Elapsed, long Produced, long Processed, double RecentEventsPerSecond, long ManagedBytes, long RssBytes);

/// <summary>One sample of the run: how far it got and the process's memory.</summary>
public sealed record StreamBenchmarkSample(TimeSpan Elapsed, long Processed, long ManagedBytes, long RssBytes);

/// <summary>Seconds a pipeline stage took in total, and its share of the stages' sum.</summary>
public sealed record StageTime(string Stage, double Seconds, double Share, double MicrosecondsPerEvent);

/// <summary>The figures of one <see cref="StreamBenchmark.RunAsync"/> run.</summary>
/// <param name="Events">Events handled end to end (consumed, stored, output acknowledged).</param>
/// <param name="Elapsed">From the first produced event to the last handled one.</param>
/// <param name="EventsPerSecond"><see cref="Events"/> / <see cref="Elapsed"/>.</param>
/// <param name="SteadyEventsPerSecond">Throughput between 10 % and 90 % of the events (no warm-up, no tail).</param>
/// <param name="P50Milliseconds">Median consume-to-acknowledgement latency per event.</param>
/// <param name="P99Milliseconds">99th percentile of the same.</param>
/// <param name="MaxMilliseconds">Largest (of the kept sample).</param>
/// <param name="Stages">Where the consume thread's time went.</param>
/// <param name="Samples">Progress and memory over time.</param>
/// <param name="Batches">Batches handled.</param>
/// <param name="DeadLetters">Events dead-lettered (0 expected).</param>
/// <param name="CloakerRefreshes">Cloaker rebuilds during the run.</param>
/// <param name="ProcessCpuSeconds">CPU time of this process during the run (worker, producer and mock broker together).</param>
/// <param name="CloakerName">The cloaker used.</param>
/// <param name="RedisCpuSeconds">CPU time of redis-server during the run (from INFO cpu; NaN if unavailable).</param>
/// <param name="Collections">Garbage collections during the run, generations 0, 1 and 2.</param>
/// <param name="GcPause">Time the runtime paused threads for garbage collection during the run.</param>
/// <param name="ServerGc">Whether the process runs the server garbage collector.</param>
/// <param name="UserReads">Users read from the store (the rest came from the pipeline's cache).</param>
/// <param name="UserCacheHits">Users taken from the pipeline's cache.</param>
/// <param name="StoreClientSeconds">Of store_apply: the store's client-side work (fold, statistics deltas, encoding).</param>
/// <param name="StoreScriptSeconds">Of store_apply: waiting for the apply script (round trip and Redis time).</param>
public sealed record StreamBenchmarkResult(
    long Events,
    TimeSpan Elapsed,
    double EventsPerSecond,
    double SteadyEventsPerSecond,
    double P50Milliseconds,
    double P99Milliseconds,
    double MaxMilliseconds,
    IReadOnlyList<StageTime> Stages,
    IReadOnlyList<StreamBenchmarkSample> Samples,
    long Batches,
    long DeadLetters,
    long CloakerRefreshes,
    double ProcessCpuSeconds,
    string CloakerName,
    double RedisCpuSeconds,
    int[] Collections,
    TimeSpan GcPause,
    bool ServerGc,
    long UserReads,
    long UserCacheHits,
    double StoreClientSeconds,
    double StoreScriptSeconds)
{
    /// <summary>How the population was seeded before the run.</summary>
    public SeedReport? Seeded { get; init; }
}

/// <summary>
/// <c>attrcloak bench stream</c>: streams embedding updates (d = 64 by default, an ML-100K-like catalog of gender,
/// age and occupation, <see cref="StreamBenchmarkOptions.Users"/> users re-embedded over and over) through the real
/// worker pipeline: a producer writes into the librdkafka mock cluster at full speed (within a bounded in-flight
/// window) WHILE the worker consumes, stores in Redis and publishes acknowledged outputs. Measures end-to-end
/// throughput, consume-to-acknowledgement latency, memory over time and the stage breakdown. Prints nothing: the
/// caller reports the result.
/// </summary>
public static class StreamBenchmark
{
    /// <summary>The consume thread's stages: all but poll are busy time (ack_wait: blocked on acknowledgements).</summary>
    public static readonly IReadOnlyList<string> Stages = ["poll", "decode", "store_read", "cloak", "store_apply", "encode", "produce", "ack_wait", "commit"];

    public static async Task<StreamBenchmarkResult> RunAsync(
        StreamBenchmarkOptions options, IProgress<StreamBenchmarkProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.Redis);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Events, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Users, 1);

        var factory = options.CloakerFactory ?? new TransportCloakerFactory();
        var latencies = new LatencyRecorder(Math.Min(options.Events, 1_000_000));
        var loggerFactory = options.LoggerFactory ?? NullLoggerFactory.Instance;
        await using var rig = new BenchmarkRig(options.Redis, options.Users, options.Dimension, factory,
            new RigTuning(latencies, options.MaxUnacknowledgedBatches, options.UserCacheCapacity, options.CloakerRebuildShare, options.MaxBatchEvents, options.MaxBatchWait),
            observer: null, loggerFactory.CreateLogger("AttrCloak.Streaming.Benchmark"), cancellationToken, options.Seeding);
        var (kafka, store, population, metrics, pipeline) = (rig.Kafka, rig.Store, rig.Population, rig.Metrics, rig.Pipeline);
        var samples = new List<StreamBenchmarkSample>();
        await rig.StartAsync(cancellationToken).ConfigureAwait(false);

        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var redisCpuBefore = await RedisCpuSecondsAsync(options.Redis).ConfigureAwait(false);
        var gcBefore = new[] { GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2) };
        var pauseBefore = GC.GetTotalPauseDuration();
        var (clientTicks, writeTicks) = (store.Counters.ClientTicks, store.Counters.WriteTicks);
        var clock = Stopwatch.StartNew();
        var produced = new StrongBox<long>();
        var lost = new StrongBox<long>();
        var producer = Task.Run(() => Produce(options, kafka, population, pipeline, produced, lost, rig.Stopping), rig.Stopping);
        var nextSample = TimeSpan.Zero;
        long lastProcessed = 0;
        var lastTime = TimeSpan.Zero;
        using var process = Process.GetCurrentProcess();
        while (pipeline.ProcessedEvents < options.Events)
        {
            rig.ThrowIfWorkerFailed();
            if (producer.IsFaulted) await producer.ConfigureAwait(false);
            if (Interlocked.Read(ref lost.Value) > 0)
                throw new InvalidOperationException($"the benchmark producer lost {lost.Value} messages; the figures would be wrong");
            if (clock.Elapsed > options.Timeout)
                throw new TimeoutException($"only {pipeline.ProcessedEvents:N0} of {options.Events:N0} events were handled in {options.Timeout}");
            if (clock.Elapsed >= nextSample)
            {
                process.Refresh();
                var now = clock.Elapsed;
                var processed = pipeline.ProcessedEvents;
                var sample = new StreamBenchmarkSample(now, processed, GC.GetTotalMemory(false), process.WorkingSet64);
                samples.Add(sample);
                var rate = now > lastTime ? (processed - lastProcessed) / (now - lastTime).TotalSeconds : 0;
                progress?.Report(new StreamBenchmarkProgress(now, Interlocked.Read(ref produced.Value), processed, rate, sample.ManagedBytes, sample.RssBytes));
                (lastProcessed, lastTime) = (processed, now);
                nextSample = now + options.SampleInterval;
            }
            await Task.Delay(5, cancellationToken).ConfigureAwait(false); // polling interval of the measurement loop
        }
        var elapsed = clock.Elapsed;
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
        var redisCpu = await RedisCpuSecondsAsync(options.Redis).ConfigureAwait(false) - redisCpuBefore;
        int[] collections = [GC.CollectionCount(0) - gcBefore[0], GC.CollectionCount(1) - gcBefore[1], GC.CollectionCount(2) - gcBefore[2]];
        var pause = GC.GetTotalPauseDuration() - pauseBefore;
        await producer.ConfigureAwait(false);
        process.Refresh();
        samples.Add(new StreamBenchmarkSample(elapsed, pipeline.ProcessedEvents, GC.GetTotalMemory(false), process.WorkingSet64));

        var events = pipeline.ProcessedEvents;
        var stageSeconds = Stages.Select(s => (Stage: s, Seconds: metrics.StageSeconds.WithLabels(s).Value)).ToList();
        var busy = stageSeconds.Where(s => s.Stage != "poll").Sum(s => s.Seconds);
        var stages = stageSeconds
            .Select(s => new StageTime(s.Stage, s.Seconds, s.Stage == "poll" ? double.NaN : s.Seconds / Math.Max(busy, 1e-9), s.Seconds / events * 1e6))
            .ToList();
        return new StreamBenchmarkResult(
            events,
            elapsed,
            events / elapsed.TotalSeconds,
            SteadyRate(samples, options.Events),
            latencies.Percentile(0.50) * 1000,
            latencies.Percentile(0.99) * 1000,
            latencies.Percentile(1.0) * 1000,
            stages,
            samples,
            (long)metrics.BatchSize.Count,
            (long)ReasonCodes.All.Sum(r => metrics.DeadLetters.WithLabels(r.Label()).Value),
            (long)metrics.CloakerRefreshes.Value,
            cpu,
            factory.GetType().Name,
            redisCpu,
            collections,
            pause,
            System.Runtime.GCSettings.IsServerGC,
            pipeline.UserLookups.Read,
            pipeline.UserLookups.Cached,
            (double)(store.Counters.ClientTicks - clientTicks) / Stopwatch.Frequency,
            (double)(store.Counters.WriteTicks - writeTicks) / Stopwatch.Frequency) { Seeded = rig.Seeded };
    }

    private static void Produce(StreamBenchmarkOptions options, KafkaOptions kafka, BenchmarkPopulation population, GuardPipeline pipeline,
        StrongBox<long> produced, StrongBox<long> lost, CancellationToken cancellationToken)
    {
        using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig
        {
            BootstrapServers = kafka.BootstrapServers,
            EnableIdempotence = true,
            LingerMs = 5,
            Partitioner = Partitioner.Murmur2Random,
        }).Build();
        var rng = new Random(20250302);
        var keys = population.UserIds.Select(EventCodec.KeyOf).ToArray();
        var headers = new Headers { { KafkaHeaders.ContentType, System.Text.Encoding.UTF8.GetBytes(options.BinaryEncoding ? ContentTypes.EmbeddingBinary : ContentTypes.Json) } };
        var time = DateTimeOffset.UtcNow;
        Action<DeliveryReport<byte[], byte[]>> onDelivery = r =>
        {
            // Runs on librdkafka's poll thread: count, never throw there.
            if (r.Error.IsError) Interlocked.Increment(ref lost.Value);
        };
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < options.Events; i++)
        {
            while (i - pipeline.ProcessedEvents >= options.MaxInFlight)
            {
                cancellationToken.ThrowIfCancellationRequested();
                producer.Poll(TimeSpan.FromMilliseconds(1));
            }
            if (options.ProduceRate > 0 && i > clock.Elapsed.TotalSeconds * options.ProduceRate)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Thread.Sleep(1); // pacing to the offered rate
            }
            var u = i % population.UserIds.Length;
            // The seed wrote versions 1 and 2; classes are in the store, so updates carry no attributes.
            var version = i / population.UserIds.Length + 3;
            var embedding = (float[])population.Originals[u].Clone();
            embedding[0] += (float)(rng.NextDouble() - 0.5) * 0.1f;
            var update = new EmbeddingUpdate($"e{i}", population.UserIds[u], version, time, "bench-1", embedding, null);
            var value = EventCodec.Encode(update, options.BinaryEncoding);
            while (true)
            {
                try
                {
                    producer.Produce(kafka.EmbeddingsTopic, new Message<byte[], byte[]> { Key = keys[u], Value = value, Headers = headers }, onDelivery);
                    break;
                }
                catch (ProduceException<byte[], byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(5));
                }
            }
            Interlocked.Increment(ref produced.Value);
        }
        producer.Flush(cancellationToken);
    }

    private static Task<double> RedisCpuSecondsAsync(IConnectionMultiplexer redis) => BenchmarkRig.RedisInfoAsync(redis, "cpu", "used_cpu_user", "used_cpu_sys");

    private static double SteadyRate(List<StreamBenchmarkSample> samples, long total)
    {
        var from = samples.FirstOrDefault(s => s.Processed >= total / 10);
        var to = samples.LastOrDefault(s => s.Processed <= total * 9 / 10);
        if (from is null || to is null || to.Elapsed <= from.Elapsed) return double.NaN;
        return (to.Processed - from.Processed) / (to.Elapsed - from.Elapsed).TotalSeconds;
    }
}

/// <summary>
/// A COST MODEL of a per-user cloaker, for comparisons only (the benchmark uses the real TransportCloakerFactory unless this is passed in): for each attribute
/// whose class is known it applies a per-class affine map y = A_k (x - m_k) + m (d x d multiply-adds, the shape of a
/// per-class whitening/colouring map), with A_k = identity and m_k, m from the snapshot's class and global means. It
/// moves each class mean onto the global one, nothing more; it is not AttrCloak's cloak.
/// </summary>
public sealed class AffineCostCloakerFactory : IUserCloakerFactory
{
    public IUserCloaker Build(StatisticsSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var d = snapshot.Dimension;
        var identity = new float[d * d];
        for (var i = 0; i < d; i++) identity[i * d + i] = 1f;
        var maps = snapshot.Attributes.Select(a => a.Means.Select(m => (Shift: ToFloat(m, d), Map: identity)).ToArray()).ToArray();
        var globals = snapshot.Attributes.Select(a => ToFloat(a.GlobalMean, d)).ToArray();
        return new Cloaker(snapshot.Version, d, maps, globals);
    }

    private static float[] ToFloat(double[] values, int d) => values.Length == d ? values.Select(v => (float)v).ToArray() : new float[d];

    private sealed class Cloaker(StatisticsVersion version, int d, (float[] Shift, float[] Map)[][] maps, float[][] globals) : IUserCloaker
    {
        public StatisticsVersion StatisticsVersion { get; } = version;

        public CloakOutcome Cloak(ReadOnlySpan<float> original, ReadOnlySpan<int> classes, Span<float> cloaked)
        {
            original.CopyTo(cloaked);
            Span<float> centred = stackalloc float[d];
            var mask = 0u;
            for (var a = 0; a < classes.Length && a < maps.Length; a++)
            {
                var k = classes[a];
                if (k < 0) continue;
                var (shift, map) = maps[a][k];
                for (var i = 0; i < d; i++) centred[i] = cloaked[i] - shift[i];
                var global = globals[a];
                for (var i = 0; i < d; i++)
                {
                    var row = map.AsSpan(i * d, d);
                    var sum = 0f;
                    for (var j = 0; j < d; j++) sum += row[j] * centred[j];
                    cloaked[i] = sum + global[i];
                }
                mask |= 1u << a;
            }
            return new CloakOutcome(mask);
        }
    }
}
