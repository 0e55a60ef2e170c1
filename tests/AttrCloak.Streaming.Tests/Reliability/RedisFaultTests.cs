using System.Text;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Tests.Pipeline;
using Confluent.Kafka;
using Outcomes = AttrCloak.Streaming.Monitoring.WorkerMetrics.Outcomes;
using Types = AttrCloak.Streaming.Monitoring.WorkerMetrics.EventTypes;
using AttrCloak.Streaming.Redis;

namespace AttrCloak.Streaming.Tests.Reliability;

/// <summary>
/// Redis faults under a running worker: the test's own redis-server (<see cref="RedisProcess"/>) is killed mid-stream
/// and started again, once with its data (append-only file, fsync always) and once empty. Kafka is the mock cluster
/// through Confluent.Kafka; the worker is <see cref="Streaming.Pipeline.GuardPipeline"/> on its own thread.
/// </summary>
[Collection(RunsAlone.Name)]
public sealed class RedisFaultTests(RedisServerFixture redis, MockKafkaFixture kafka) : IClassFixture<MockKafkaFixture>
{
    private static readonly string[] Genders = ["F", "M"];
    private static readonly string[] Ages = ["young", "middle", "old"];

    [Fact]
    public async Task Redis_killed_and_restarted_with_its_data_the_worker_holds_offsets_is_not_ready_and_recovers_losing_and_double_counting_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        using var server = RedisProcess.Start();
        using var h = new GuardHarness(redis, kafka, "redis-down");
        var model = new Model();
        using var worker = StartWorker(h, server);
        using var serving = h.Reader(h.Kafka.CloakedTopic);

        // Phase 1: 30 users, served and committed.
        for (var u = 0; u < 30; u++) model.Produce(h, u, 1, withAttributes: true);
        h.Flush();
        serving.WaitUntil(m => model.AllServed(m), "phase 1 served");
        var committedBefore = WaitForCommittedToReachEnd(h);

        server.Kill();
        // Phase 2 while Redis is down: a new version of every user (a third of them changing class), 10 new users.
        for (var u = 0; u < 30; u++) model.Produce(h, u, 2, withAttributes: u % 3 == 0);
        for (var u = 30; u < 40; u++) model.Produce(h, u, 1, withAttributes: true);
        h.Flush();
        Wait.Until(() => !worker.Pipeline.Status.Ready && worker.Metrics.StoreAvailable.Value == 0 && worker.Metrics.Ready.Value == 0
                         && worker.Logs.Lines.Count(l => l.Contains("retrying the batch")) >= 3,
            GuardHarness.Deadline, "the worker to retry the store and report not ready");
        var servedWhileDown = serving.Snapshot().Count;
        Thread.Sleep(TimeSpan.FromSeconds(2)); // more retries, with backoff; auto-commit runs every second meanwhile
        Committed(h).ShouldBe(committedBefore, "no offset may be stored while the batch is not in Redis");
        serving.Snapshot().Count.ShouldBe(servedWhileDown, "nothing is published while the store write fails");
        var retries = worker.Logs.Lines.Where(l => l.Contains("retrying the batch")).ToList();
        retries.ShouldContain(l => l.Contains("RedisConnectionException"));
        // Exponential backoff with a cap: the logged delays grow (50 ms * 2^n, jittered) instead of hammering Redis.
        retries.Count.ShouldBeLessThan(40, "backoff: a few dozen attempts at most in these seconds");

        server.Restart(keepData: true);
        var messages = serving.WaitUntil(m => model.AllServed(m), "phase 2 served after the restart");
        Wait.Until(() => worker.Pipeline.Status.Ready && worker.Metrics.StoreAvailable.Value == 1, GuardHarness.Deadline, "ready again");
        Wait.Until(() => worker.Pipeline.ProcessedEvents == model.Events, GuardHarness.Deadline, "every event handled");
        WaitForCommittedToReachEnd(h);

        model.CheckServed(messages);
        // Nothing double-counted: each event applied exactly once (no store write was in flight at the kill).
        worker.Events(Types.EmbeddingUpdate, Outcomes.Applied).ShouldBe(model.Events);
        await model.CheckStoreAsync(server, h, ct);
        worker.Stop();
    }

    [Fact]
    public async Task Redis_back_empty_the_worker_serves_nothing_says_how_to_rebuild_and_resumes_once_the_state_is_bootstrapped()
    {
        var ct = TestContext.Current.CancellationToken;
        using var server = RedisProcess.Start();
        using var h = new GuardHarness(redis, kafka, "redis-empty", g => g.StateCheckInterval = TimeSpan.FromMilliseconds(300));
        var model = new Model();
        using var worker = StartWorker(h, server);
        using var serving = h.Reader(h.Kafka.CloakedTopic);

        for (var u = 0; u < 20; u++) model.Produce(h, u, 1, withAttributes: true);
        h.Flush();
        serving.WaitUntil(m => model.AllServed(m), "phase 1 served");
        var committedBefore = WaitForCommittedToReachEnd(h);
        var servedBefore = serving.Snapshot().Count;
        var population = model.Snapshot(); // what the last batch run would have cloaked: phase 1

        server.Restart(keepData: false);
        for (var u = 0; u < 20; u++) model.Produce(h, u, 2, withAttributes: u % 4 == 0);
        for (var u = 20; u < 25; u++) model.Produce(h, u, 1, withAttributes: true);
        h.Flush();
        Wait.Until(() => worker.Pipeline.Status.StateMissing, GuardHarness.Deadline, "the worker to notice the lost state");
        worker.Pipeline.Status.Ready.ShouldBeFalse();
        worker.Metrics.Ready.Value.ShouldBe(0);
        worker.Metrics.StateMissing.Value.ShouldBe(1);
        Thread.Sleep(TimeSpan.FromSeconds(2)); // several state checks
        var db = server.Connection.GetDatabase();
        (await db.KeyExistsAsync($"{h.StoreOptions.Prefix}:meta")).ShouldBeFalse("the worker must not re-create the lost state");
        (await db.ExecuteAsync("DBSIZE")).ToString().ShouldBe("0", "nothing written into the empty Redis");
        serving.Snapshot().Count.ShouldBe(servedBefore, "no message at all while the state is missing");
        Committed(h).ShouldBe(committedBefore);
        worker.Pipeline.Status.StateMissing.ShouldBeTrue();
        var errors = worker.Logs.Lines.Where(l => l.StartsWith("Error:", StringComparison.Ordinal)).ToList();
        errors.Count.ShouldBe(1, "the instructions are repeated at most once a minute");
        errors[0].ShouldContain("STATE LOST");
        errors[0].ShouldContain($"'{h.StoreOptions.Prefix}:generations' vanished"); // the registry of the model generations
        errors[0].ShouldContain("attrcloak bootstrap --config");
        errors[0].ShouldContain($"--group {h.Kafka.ConsumerGroup} --reset-offsets --to-earliest --topic {h.Kafka.EmbeddingsTopic} --topic {h.Kafka.PrivacyRequestsTopic}");
        errors[0].ShouldContain("attrcloak stats verify");

        // The rebuild as the log says: bootstrap seeds the batch-cloaked population at version 0 with a new store.
        using (var bootstrap = new RedisGenerationStore(server.Connection, h.StoreOptions))
        {
            var seeded = await GenerationSeeding.SeedAsync(bootstrap, GuardHarness.Model,
                population.Select(p => new SeedUser(p.Key, p.Value.Embedding, SignatureCloakerFactory.Expected(p.Value.Embedding), p.Value.Classes)).ToList(),
                version: 0, batchSize: 512, cancellationToken: ct);
            seeded.Applied.ShouldAllBe(a => a);
        }
        var messages = serving.WaitUntil(m => model.AllServed(m), "phase 2 served after the rebuild");
        Wait.Until(() => worker.Pipeline.Status.Ready, GuardHarness.Deadline, "ready again");
        worker.Metrics.StateMissing.Value.ShouldBe(0);
        worker.Logs.Lines.ShouldContain(l => l.Contains("data is back") && l.Contains("resuming with the batch in hand"));
        Wait.Until(() => worker.Pipeline.ProcessedEvents == model.Events, GuardHarness.Deadline, "every event handled");
        WaitForCommittedToReachEnd(h);

        model.CheckServed(messages);
        await model.CheckStoreAsync(server, h, ct);
        worker.Stop();
    }

    [Fact]
    public void A_worker_started_on_an_emptied_Redis_while_its_group_has_consumed_input_says_the_state_was_lost_and_how_to_rebuild()
    {
        using var server = RedisProcess.Start();
        using var h = new GuardHarness(redis, kafka, "redis-empty-at-start");
        var model = new Model();
        using (var first = StartWorker(h, server))
        {
            using var serving = h.Reader(h.Kafka.CloakedTopic);
            for (var u = 0; u < 12; u++) model.Produce(h, u, 1, withAttributes: true);
            h.Flush();
            serving.WaitUntil(m => model.AllServed(m), "served before the outage");
            WaitForCommittedToReachEnd(h);
            first.Stop();
            first.Logs.Lines.ShouldNotContain(l => l.Contains("has already consumed"), "a new deployment: its group had consumed nothing");
        }

        server.Restart(keepData: false); // lost while no worker ran
        using var second = StartWorker(h, server);
        Wait.Until(() => second.Logs.Lines.Any(l => l.Contains("has already consumed")), GuardHarness.Deadline, "the start-up check");
        var line = second.Logs.Lines.Single(l => l.Contains("has already consumed"));
        line.ShouldContain("consumer group " + h.Kafka.ConsumerGroup + " has already consumed 12 events");
        line.ShouldContain("attrcloak bootstrap");
        line.ShouldContain("--reset-offsets --to-earliest");
        line.ShouldContain("attrcloak stats verify");
        second.Stop();
    }

    // ---- helpers -------------------------------------------------------------------------------------------------

    private static WorkerRun StartWorker(GuardHarness h, RedisProcess server)
    {
        var worker = new WorkerRun(h, new RedisGenerationStore(server.Connection, h.StoreOptions), observer: null);
        Wait.Until(() => worker.Pipeline.Status.Ready || worker.Failure is not null, GuardHarness.Deadline, "the worker to become ready");
        if (worker.Failure is not null) throw new InvalidOperationException("the worker failed to start", worker.Failure);
        return worker;
    }

    private static List<TopicPartition> InputPartitions(GuardHarness h) =>
        [.. new[] { h.Kafka.EmbeddingsTopic, h.Kafka.PrivacyRequestsTopic }.SelectMany(t => Enumerable.Range(0, 4).Select(p => new TopicPartition(t, p)))];

    /// <summary>The group's committed offsets of the input topics, as the broker holds them (-1001 = none).</summary>
    private static Dictionary<string, long> Committed(GuardHarness h)
    {
        using var reader = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig
        {
            BootstrapServers = h.Kafka.BootstrapServers,
            GroupId = h.Kafka.ConsumerGroup, // reads the group's offsets; does not join it
            EnableAutoCommit = false,
        }).SetLogHandler((_, _) => { }).Build();
        return reader.Committed(InputPartitions(h), TimeSpan.FromSeconds(10)).ToDictionary(o => o.TopicPartition.ToString(), o => o.Offset.Value);
    }

    private static Dictionary<string, long> WaitForCommittedToReachEnd(GuardHarness h)
    {
        using var reader = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = h.Kafka.BootstrapServers, GroupId = "watermarks" })
            .SetLogHandler((_, _) => { }).Build();
        var end = InputPartitions(h).ToDictionary(tp => tp.ToString(), tp => reader.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10)).High.Value);
        Dictionary<string, long>? committed = null;
        Wait.Until(() => (committed = Committed(h)).All(c => end[c.Key] == 0 ? c.Value is -1001 or 0 : c.Value == end[c.Key]),
            GuardHarness.Deadline, "the committed offsets to reach the end of the input topics");
        return committed!;
    }

    /// <summary>What the events imply: every user's latest version, original embedding and classes.</summary>
    private sealed class Model
    {
        private readonly Dictionary<string, (long Version, float[] Embedding, int[] Classes)> _users = new(StringComparer.Ordinal);
        private readonly List<float[]> _originals = [];

        public int Events { get; private set; }

        public void Produce(GuardHarness h, int user, long version, bool withAttributes)
        {
            var id = $"user-{user}";
            var embedding = GuardHarness.Embedding(user * 100 + (int)version);
            var classes = _users.TryGetValue(id, out var before) ? before.Classes : [-1, -1];
            Dictionary<string, string>? attributes = null;
            if (withAttributes)
            {
                classes = [(user + (int)version) % 2, (user / 2 + (int)version) % 3];
                attributes = new() { ["gender"] = Genders[classes[0]], ["age"] = Ages[classes[1]] };
            }
            _users[id] = (version, embedding, classes);
            _originals.Add(embedding);
            Events++;
            h.Produce(GuardHarness.Update(id, version, embedding, attributes));
        }

        public Dictionary<string, (long Version, float[] Embedding, int[] Classes)> Snapshot() => new(_users, StringComparer.Ordinal);

        public bool AllServed(List<ConsumeResult<byte[], byte[]>> messages)
        {
            var latest = LatestVersions(messages);
            return _users.All(u => latest.TryGetValue(u.Key, out var v) && v == u.Value.Version);
        }

        private static Dictionary<string, long> LatestVersions(List<ConsumeResult<byte[], byte[]>> messages)
        {
            var latest = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var m in messages)
                if (m.Message.Value is not null && EventCodec.TryDecodeCloaked(m.Message.Value, out var c, out _))
                    latest[c.UserId] = Math.Max(latest.GetValueOrDefault(c.UserId), c.Version);
            return latest;
        }

        /// <summary>Every user's last message is their latest version, cloaked; no message ever carries an original.</summary>
        public void CheckServed(List<ConsumeResult<byte[], byte[]>> messages)
        {
            foreach (var m in messages)
            {
                EventCodec.TryDecodeCloaked(m.Message.Value, out var c, out var error).ShouldBeTrue(error?.ToString());
                Encoding.UTF8.GetString(m.Message.Key).ShouldBe(c.UserId);
                _originals.ShouldNotContain(o => o.SequenceEqual(c.Embedding), "an original embedding on the serving topic");
            }
            foreach (var (user, state) in _users)
            {
                EventCodec.TryDecodeCloaked(messages.Last(m => Encoding.UTF8.GetString(m.Message.Key) == user).Message.Value, out var last, out _).ShouldBeTrue();
                last.Version.ShouldBe(state.Version);
                last.Embedding.ShouldBe(SignatureCloakerFactory.Expected(state.Embedding), tolerance: 1e-6);
            }
        }

        /// <summary>Redis holds exactly the model's users and classes, and the statistics equal a recomputation.</summary>
        public async Task CheckStoreAsync(RedisProcess server, GuardHarness h, CancellationToken ct)
        {
            using var deployment = new RedisGenerationStore(server.Connection, h.StoreOptions);
            var generation = deployment.GenerationOptions(GuardHarness.Model);
            var report = await new StatisticsVerifier(server.Connection, generation).VerifyAsync(cancellationToken: ct);
            report.IsConsistent.ShouldBeTrue(string.Join("; ", report.Inconsistent));
            report.UsersScanned.ShouldBe(_users.Count);
            using var store = new RedisStateStore(server.Connection, generation);
            var snapshot = await store.ReadStatisticsAsync(ct);
            for (var a = 0; a < 2; a++)
            {
                var name = a == 0 ? "gender" : "age";
                var expected = Enumerable.Range(0, a == 0 ? 2 : 3).Select(k => (long)_users.Values.Count(u => u.Classes[a] == k)).ToArray();
                snapshot[name].Counts.Select(c => (long)c).ToArray().ShouldBe(expected, $"users per {name} class");
            }
            var states = await store.GetUsersAsync([.. _users.Keys], ct);
            foreach (var s in states)
            {
                s.ShouldNotBeNull();
                s.Version.ShouldBe(_users[s.UserId].Version);
                s.Classes.ShouldBe(_users[s.UserId].Classes);
            }
        }
    }
}
