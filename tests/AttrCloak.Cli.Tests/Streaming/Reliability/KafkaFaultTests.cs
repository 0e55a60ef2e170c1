using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Testing;
using AttrCloak.Cli.Tests.Streaming.Walk;
using Confluent.Kafka;

namespace AttrCloak.Cli.Tests.Streaming.Reliability;

/// <summary>
/// Kafka faults against a real worker process (`attrcloak serve`) and a broker in its own process (`attrcloak
/// kafka-mock` on a fixed port, so that a new broker process is where the worker expects it): the broker not there
/// at start, and killed (SIGKILL) mid-stream and replaced by a new, empty one. The worker must stay alive, say
/// not-ready (/healthz/ready, attrcloak_kafka_up) and recover by itself.
/// </summary>
public sealed class KafkaFaultTests(RedisServerFixture redis)
{
    private const int Dimension = 8;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(45);

    [Fact]
    public async Task Worker_started_before_the_broker_waits_not_ready_then_serves_once_it_starts()
    {
        var ct = TestContext.Current.CancellationToken;
        using var tmp = new TempDirectory();
        var brokerPort = FreePort();
        var prefix = redis.NewPrefix("kafka-start");
        await StreamingTestSupport.SeedAsync(redis.Redis, prefix, Dimension, users: 60);
        var (config, group, topics) = WriteWorkerConfig(tmp, prefix, brokerPort);

        var httpPort = FreePort();
        await using var worker = Start("serve", "--config", config, "--port", httpPort.ToString(CultureInfo.InvariantCulture));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        await worker.WaitForLineAsync("endpoints at ", TimeSpan.FromSeconds(60), ct);
        var baseAddress = $"http://127.0.0.1:{httpPort}";

        Step("worker started, no broker");
        // No broker: alive, not ready, kafka_up 0, for a while (not just at the first instant).
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(4);
        while (DateTime.UtcNow < until)
        {
            worker.HasExited.ShouldBeFalse(worker.Output);
            (await ReadyAsync(http, baseAddress, ct)).ShouldBeFalse(worker.Output);
            await Task.Delay(500, ct);
        }
        (await MetricAsync(http, baseAddress, "attrcloak_kafka_up", ct)).ShouldBe(0);

        await using var broker = await StartBrokerAsync(brokerPort, ct);
        var brokers = $"127.0.0.1:{brokerPort}";
        Step("broker started");
        // The consumer joins only once an input topic exists; a producer's metadata request creates it.
        var sent = Produce(brokers, topics.Embeddings, Enumerable.Range(0, 40).Select(u => ($"start{u}", 1L)), seed: 1);
        await EventuallyAsync(() => ReadyAsync(http, baseAddress, ct), ReadyTimeout, "ready after the broker started", worker);
        (await MetricAsync(http, baseAddress, "attrcloak_kafka_up", ct)).ShouldBe(1);
        Step("ready");

        AssertServedCloaked(sent, ServedLatest(brokers, topics.Cloaked, sent), worker);
        Step("served");
        var checkedOffsets = await AssertNoOffsetBeyondServedAsync(brokers, group, topics);
        Step($"{sent.Count} users served cloaked; {checkedOffsets} committed events checked");
        worker.HasExited.ShouldBeFalse(worker.Output);
    }

    [Fact]
    public async Task Broker_killed_mid_stream_worker_goes_not_ready_and_recovers_on_a_new_broker()
    {
        var ct = TestContext.Current.CancellationToken;
        using var tmp = new TempDirectory();
        var brokerPort = FreePort();
        var brokers = $"127.0.0.1:{brokerPort}";
        var prefix = redis.NewPrefix("kafka-kill");
        await StreamingTestSupport.SeedAsync(redis.Redis, prefix, Dimension, users: 60);
        var (config, group, topics) = WriteWorkerConfig(tmp, prefix, brokerPort);

        var first = await StartBrokerAsync(brokerPort, ct);
        var httpPort = FreePort();
        await using var worker = Start("serve", "--config", config, "--port", httpPort.ToString(CultureInfo.InvariantCulture));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        await worker.WaitForLineAsync("endpoints at ", TimeSpan.FromSeconds(60), ct);
        var baseAddress = $"http://127.0.0.1:{httpPort}";

        var before = Produce(brokers, topics.Embeddings, Enumerable.Range(0, 30).Select(u => ($"a{u}", 1L)), seed: 2);
        await EventuallyAsync(() => ReadyAsync(http, baseAddress, ct), ReadyTimeout, "ready on the first broker", worker);
        Step("ready on the first broker");
        AssertServedCloaked(before, ServedLatest(brokers, topics.Cloaked, before), worker);

        // Events flowing while the broker is killed: a producer keeps sending in the background.
        using var flowing = new CancellationTokenSource();
        var stream = Task.Run(() => ProduceUntil(brokers, topics.Embeddings, "flow", flowing.Token), ct);
        await Task.Delay(1500, ct);
        (await ReadyAsync(http, baseAddress, ct)).ShouldBeTrue("ready while the first broker serves");
        await first.KillAsync();
        Step("first broker killed");

        // Not ready within a bounded time, and the process stays alive and waiting.
        var killed = Stopwatch.StartNew();
        await EventuallyAsync(async () => !await ReadyAsync(http, baseAddress, ct), TimeSpan.FromSeconds(15), "not ready after the broker died", worker);
        var notReadyAfter = killed.Elapsed;
        Step("not ready");
        (await MetricAsync(http, baseAddress, "attrcloak_kafka_up", ct)).ShouldBe(0);
        await Task.Delay(3000, ct);
        worker.HasExited.ShouldBeFalse(worker.Output);
        (await ReadyAsync(http, baseAddress, ct)).ShouldBeFalse(worker.Output);
        await flowing.CancelAsync();
        await stream;

        // A new, empty broker on the same address: the worker reconnects, rejoins and serves new events.
        await using var second = await StartBrokerAsync(brokerPort, ct);
        Step("second broker started");
        var after = Produce(brokers, topics.Embeddings,
            Enumerable.Range(0, 30).Select(u => ($"b{u}", 1L))
                // Users served before the crash, with a newer version: their state in Redis survived the broker.
                .Concat(Enumerable.Range(0, 10).Select(u => ($"a{u}", 2L))), seed: 3);
        await EventuallyAsync(() => ReadyAsync(http, baseAddress, ct), ReadyTimeout, "ready on the new broker", worker);
        (await MetricAsync(http, baseAddress, "attrcloak_kafka_up", ct)).ShouldBe(1);
        Step("ready on the second broker");

        AssertServedCloaked(after, ServedLatest(brokers, topics.Cloaked, after), worker);
        Step("served on the second broker");
        var checkedOffsets = await AssertNoOffsetBeyondServedAsync(brokers, group, topics);
        worker.HasExited.ShouldBeFalse(worker.Output);
        worker.Output.ShouldContain("No Kafka broker reachable");
        // Timing decides whether outputs were in flight at the kill: reported, not asserted.
        var log = worker.Output;
        Step($"worker log: {Count(log, "The Kafka producer hit a fatal error")} producer replacements, "
             + $"{Count(log, "Kafka did not acknowledge")} re-sent rounds, {Count(log, "committing the acknowledged positions explicitly")} rewound commits");
        Step(
            $"not ready {notReadyAfter.TotalSeconds:F1} s after the kill; {after.Count} users served cloaked on the new broker; {checkedOffsets} committed events checked");
    }

    // ---- the worker and the broker as processes ---------------------------------------------------------------

    private sealed record Topics(string Embeddings, string Requests, string Cloaked);

    private (string Config, string Group, Topics Topics) WriteWorkerConfig(TempDirectory tmp, string prefix, int brokerPort)
    {
        var path = StreamingTestSupport.WriteConfig(tmp["appsettings.json"], $"127.0.0.1:{redis.Port}", prefix, Dimension,
            $"127.0.0.1:{brokerPort}", topicSuffix: "-" + prefix);
        var root = JsonNode.Parse(File.ReadAllText(path))!;
        var kafka = root["AttrCloak"]!["Kafka"]!;
        var group = "guard-" + prefix;
        kafka["ConsumerGroup"] = group;
        kafka["DeadLetterTopic"] = "dead-" + prefix;
        kafka["Client"] = new JsonObject
        {
            // A restarted broker is found within a second or two (librdkafka's default backoff grows to 10 s).
            ["reconnect.backoff.max.ms"] = "1000",
            ["session.timeout.ms"] = "6000",
            ["heartbeat.interval.ms"] = "1000",
        };
        File.WriteAllText(path, root.ToJsonString());
        return (path, group, new Topics(kafka["EmbeddingsTopic"]!.GetValue<string>(), kafka["PrivacyRequestsTopic"]!.GetValue<string>(),
            kafka["CloakedTopic"]!.GetValue<string>()));
    }

    private static async Task<ChildProcess> StartBrokerAsync(int port, CancellationToken ct)
    {
        var broker = Start("kafka-mock", "--port", port.ToString(CultureInfo.InvariantCulture));
        var line = await broker.WaitForLineAsync("mock Kafka broker listening on ", TimeSpan.FromSeconds(30), ct);
        line.ShouldEndWith($"127.0.0.1:{port}");
        return broker;
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>A child `dotnet attrcloak.dll args...` (the walk's <see cref="ChildProcess"/>), with no extra environment.</summary>
    private static ChildProcess Start(params string[] args) => ChildProcess.Attrcloak(args[0], new Dictionary<string, string>(), args);

    // ---- events in, served out ----------------------------------------------------------------------------------

    private static readonly string[] Ages = ["<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"];

    private static EmbeddingUpdate Update(string userId, long version, Random random)
    {
        var x = new float[Dimension];
        for (var j = 0; j < Dimension; j++) x[j] = (float)(random.NextDouble() * 2 - 1);
        return new EmbeddingUpdate($"{userId}-v{version}", userId, version, DateTimeOffset.UtcNow, "mf-test", x,
            new Dictionary<string, string> { ["gender"] = random.Next(2) == 0 ? "F" : "M", ["age"] = Ages[random.Next(Ages.Length)] });
    }

    /// <summary>Produces the updates (acknowledged) and returns them by user (the last version of each).</summary>
    private static Dictionary<string, EmbeddingUpdate> Produce(string brokers, string topic, IEnumerable<(string User, long Version)> events, int seed)
    {
        var random = new Random(seed);
        var sent = new Dictionary<string, EmbeddingUpdate>(StringComparer.Ordinal);
        using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = brokers, EnableIdempotence = true })
            .SetLogHandler((_, _) => { }).Build();
        foreach (var (user, version) in events)
        {
            var update = Update(user, version, random);
            producer.Produce(topic, new Message<byte[], byte[]> { Key = EventCodec.KeyOf(user), Value = EventCodec.Encode(update) });
            sent[user] = update;
        }
        producer.Flush(TimeSpan.FromSeconds(30)).ShouldBe(0, "every test event acknowledged by the broker");
        return sent;
    }

    /// <summary>Keeps producing new users' updates until cancelled; what the dying broker had is lost with it.</summary>
    private static void ProduceUntil(string brokers, string topic, string prefix, CancellationToken stop)
    {
        var random = new Random(4);
        using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = brokers, MessageTimeoutMs = 5000 })
            .SetLogHandler((_, _) => { }).SetErrorHandler((_, _) => { }).Build();
        for (var u = 0; !stop.IsCancellationRequested; u++)
        {
            var update = Update($"{prefix}{u}", 1, random);
            try { producer.Produce(topic, new Message<byte[], byte[]> { Key = EventCodec.KeyOf(update.UserId), Value = EventCodec.Encode(update) }); }
            catch (ProduceException<byte[], byte[]>) { /* local queue full while the broker is gone */ }
            stop.WaitHandle.WaitOne(20);
        }
        producer.Flush(TimeSpan.FromSeconds(1));
    }

    /// <summary>
    /// The serving topic read from the start to its end (all partitions): the newest message per user. Read again
    /// until every user of <paramref name="sent"/> is there at its version, or 45 s passed.
    /// </summary>
    private static Dictionary<string, CloakedEmbedding> ServedLatest(string brokers, string topic, Dictionary<string, EmbeddingUpdate>? sent = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(45);
        while (true)
        {
            var served = ReadServing(brokers, topic);
            var complete = sent is null || sent.All(p => served.TryGetValue(p.Key, out var c) && c.Version >= p.Value.Version);
            if (complete || DateTime.UtcNow >= deadline) return served;
            Thread.Sleep(500);
        }
    }

    private static Dictionary<string, CloakedEmbedding> ReadServing(string brokers, string topic)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = brokers }).SetLogHandler((_, _) => { }).Build();
        var metadata = admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.Single();
        var served = new Dictionary<string, CloakedEmbedding>(StringComparer.Ordinal);
        if (metadata.Error.IsError) return served; // not created yet: nothing served
        using var consumer = new ConsumerBuilder<byte[], byte[]?>(new ConsumerConfig
        {
            BootstrapServers = brokers,
            GroupId = "reader-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
            EnablePartitionEof = true,
        }).SetLogHandler((_, _) => { }).Build();
        consumer.Assign(metadata.Partitions.Select(p => new TopicPartitionOffset(topic, p.PartitionId, Offset.Beginning)));
        var atEnd = new HashSet<int>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (atEnd.Count < metadata.Partitions.Count && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is not { } r) continue;
            if (r.IsPartitionEOF) { atEnd.Add(r.Partition.Value); continue; }
            if (r.Message.Value is not { } value) continue; // a tombstone: none in these tests
            EventCodec.TryDecodeCloaked(value, out var cloaked, out var error).ShouldBeTrue(error?.Message);
            if (!served.TryGetValue(cloaked.UserId, out var known) || known.Version <= cloaked.Version) served[cloaked.UserId] = cloaked;
        }
        return served;
    }

    private static void AssertServedCloaked(Dictionary<string, EmbeddingUpdate> sent, Dictionary<string, CloakedEmbedding> served, ChildProcess worker)
    {
        foreach (var (user, update) in sent)
        {
            served.TryGetValue(user, out var cloaked).ShouldBeTrue($"user {user} version {update.Version} was not served; worker output:\n{Tail(worker.Output)}");
            cloaked!.Version.ShouldBe(update.Version, $"user {user}");
            cloaked.Embedding.ShouldNotBe(update.Embedding, $"user {user} was served uncloaked");
            cloaked.ProtectedAttributes.ShouldBe(["age", "gender"], ignoreOrder: true);
        }
    }

    /// <summary>
    /// At-least-once on the broker the worker consumes from now: every input event below the group's committed
    /// offset has its output on the serving topic, at that version or a newer one (an offset is stored only after
    /// the batch's outputs were acknowledged). Returns the number of events checked.
    /// </summary>
    private static async Task<int> AssertNoOffsetBeyondServedAsync(string brokers, string group, Topics topics)
    {
        // librdkafka commits stored offsets every second: give the last acknowledged batch time to be committed.
        await Task.Delay(2500);
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = brokers }).SetLogHandler((_, _) => { }).Build();
        var partitions = admin.GetMetadata(topics.Embeddings, TimeSpan.FromSeconds(10)).Topics.Single().Partitions
            .Select(p => new TopicPartition(topics.Embeddings, p.PartitionId)).ToList();
        using var reader = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = brokers, GroupId = group, EnableAutoCommit = false })
            .SetLogHandler((_, _) => { }).Build();
        // Committed offsets first, the serving topic after: whatever was committed was acknowledged before.
        var committed = reader.Committed(partitions, TimeSpan.FromSeconds(10));
        var served = ReadServing(brokers, topics.Cloaked);
        var checkedEvents = 0;
        foreach (var c in committed)
        {
            var high = reader.QueryWatermarkOffsets(c.TopicPartition, TimeSpan.FromSeconds(10)).High;
            Step($"{c.TopicPartition}: committed {c.Offset}, end {high}");
            // Beyond the end would make a restarted worker skip events written there later.
            if (c.Offset.Value > 0) c.Offset.Value.ShouldBeLessThanOrEqualTo(high.Value, $"{c.TopicPartition} committed beyond its end");
        }
        foreach (var c in committed.Where(c => c.Offset.Value > 0))
        {
            reader.Assign(new TopicPartitionOffset(c.TopicPartition, Offset.Beginning));
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (DateTime.UtcNow < deadline)
            {
                if (reader.Consume(TimeSpan.FromMilliseconds(200)) is not { } r || r.IsPartitionEOF) continue;
                if (r.Offset.Value >= c.Offset.Value) break;
                using var json = System.Text.Json.JsonDocument.Parse(r.Message.Value);
                var user = json.RootElement.GetProperty("user_id").GetString()!;
                var version = json.RootElement.GetProperty("version").GetInt64();
                served.TryGetValue(user, out var output).ShouldBeTrue($"offset {r.TopicPartitionOffset} committed but user {user} never served");
                output!.Version.ShouldBeGreaterThanOrEqualTo(version, $"offset {r.TopicPartitionOffset} committed before version {version} of {user} was served");
                checkedEvents++;
                if (r.Offset.Value + 1 >= c.Offset.Value) break;
            }
            reader.Unassign();
        }
        checkedEvents.ShouldBeGreaterThan(0, "the worker committed offsets on the broker it consumes from");
        return checkedEvents;
    }

    private static async Task<bool> ReadyAsync(HttpClient http, string baseAddress, CancellationToken ct)
    {
        try { return (await http.GetAsync(baseAddress + "/healthz/ready", ct)).StatusCode == HttpStatusCode.OK; }
        catch (HttpRequestException) { return false; }
    }

    private static async Task<double> MetricAsync(HttpClient http, string baseAddress, string name, CancellationToken ct)
    {
        var text = await http.GetStringAsync(baseAddress + "/metrics", ct);
        var line = text.Split('\n').Single(l => l.StartsWith(name + " ", StringComparison.Ordinal));
        return double.Parse(line[(name.Length + 1)..], CultureInfo.InvariantCulture);
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, ChildProcess worker)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) return;
            worker.HasExited.ShouldBeFalse($"the worker exited while waiting for: {what}\n{worker.Output}");
            await Task.Delay(250);
        }
        throw new TimeoutException($"not {what} within {timeout.TotalSeconds} s; worker output:\n{Tail(worker.Output)}");
    }

    private static readonly Stopwatch Clock = Stopwatch.StartNew();

    /// <summary>Where the time goes (test output).</summary>
    private static void Step(string what) =>
        TestContext.Current.TestOutputHelper?.WriteLine($"[{Clock.Elapsed.TotalSeconds:F1} s] {what}");

    private static int Count(string text, string what) =>
        (text.Length - text.Replace(what, "", StringComparison.Ordinal).Length) / what.Length;

    private static string Tail(string text) => text.Length <= 6000 ? text : text[^6000..];
}
