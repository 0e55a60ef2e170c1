using System.Collections.Concurrent;
using System.Text;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Pipeline;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;
using AttrCloak.Tools.Kafka;
using Confluent.Kafka;
using StackExchange.Redis;
using Types = AttrCloak.Streaming.Monitoring.WorkerMetrics.EventTypes;
using Outcomes = AttrCloak.Streaming.Monitoring.WorkerMetrics.Outcomes;

namespace AttrCloak.Streaming.Tests.Pipeline;

/// <summary>
/// The pipelined loop: the next batch's store work runs while the previous batch's acknowledgements are outstanding,
/// yet offsets are stored in order and only after the store write and the acknowledgements. Acknowledgements are
/// held back with the publisher's test gate (the broker acknowledges at once; the pipeline just does not look).
/// </summary>
public sealed class PipelinedBatchTests(RedisServerFixture redis, MockKafkaFixture kafka) : IClassFixture<MockKafkaFixture>
{
    [Fact]
    public async Task The_next_batch_is_stored_while_the_previous_one_awaits_its_acks_and_offsets_follow_in_order_after_the_acks()
    {
        // One message per batch, both in one partition: batch 1 is "first", batch 2 is "second".
        using var h = new GuardHarness(redis, kafka, "pipelined", g => g.MaxBatchEvents = 1);
        h.ProduceTo(0, GuardHarness.Update("first", 1, GuardHarness.Embedding(1)));
        h.ProduceTo(0, GuardHarness.Update("second", 1, GuardHarness.Embedding(2)));
        h.Flush();
        using var gate = new ManualResetEventSlim(false);
        var trace = new ConcurrentQueue<BatchTrace>();
        using var worker = h.Start(batches: new GatedBatchObserver(trace, gate));
        using var committed = new CommittedOffsets(h);

        Wait.Until(() => Sent(trace) >= 2, GuardHarness.Deadline, "the second batch sent while the first awaits its acks");

        // The second batch is in Redis, but nothing is acknowledged as far as the pipeline knows: no offset stored.
        (await worker.Store.GetUserAsync("second", TestContext.Current.CancellationToken)).ShouldNotBeNull();
        Thread.Sleep(1500); // longer than the auto-commit interval (1 s): a stored offset would be committed by now
        trace.ShouldNotContain(t => t.Step != BatchStep.Sent);
        worker.Pipeline.ProcessedEvents.ShouldBe(0);
        committed.Total().ShouldBe(0);

        gate.Set();
        Wait.Until(() => worker.Pipeline.ProcessedEvents == 2, GuardHarness.Deadline, "both batches finished");
        Wait.Until(() => committed.Total() == 2, GuardHarness.Deadline, "both offsets committed");

        var steps = trace.ToList();
        steps.Where(t => t.Step == BatchStep.OffsetsStored).Select(t => t.Batch).ShouldBe([1, 2]);
        foreach (var batch in new long[] { 1, 2 })
        {
            var sent = steps.FindIndex(t => t.Batch == batch && t.Step == BatchStep.Sent);
            var acked = steps.FindIndex(t => t.Batch == batch && t.Step == BatchStep.Acknowledged);
            var stored = steps.FindIndex(t => t.Batch == batch && t.Step == BatchStep.OffsetsStored);
            sent.ShouldBeLessThan(acked);
            acked.ShouldBeLessThan(stored);
        }
        // The overlap: batch 2 was stored and sent before batch 1 was acknowledged.
        steps.FindIndex(t => t.Batch == 2 && t.Step == BatchStep.Sent)
            .ShouldBeLessThan(steps.FindIndex(t => t.Batch == 1 && t.Step == BatchStep.Acknowledged));
        worker.Events(Types.EmbeddingUpdate, Outcomes.Applied).ShouldBe(2);
        worker.Stop();
    }

    [Fact]
    public void A_store_failure_in_the_next_batch_holds_back_its_own_offsets_but_not_those_of_the_acknowledged_batch_before_it()
    {
        // One message per batch, both in one partition: batch 1 is "fine", batch 2 is "doomed".
        using var h = new GuardHarness(redis, kafka, "failnext", g => g.MaxBatchEvents = 1);
        h.ProduceTo(0, GuardHarness.Update("fine", 1, GuardHarness.Embedding(1)));
        h.ProduceTo(0, GuardHarness.Update("doomed", 1, GuardHarness.Embedding(2)));
        h.Flush();
        using var gate = new ManualResetEventSlim(false);
        var trace = new ConcurrentQueue<BatchTrace>();
        FailingStore? failing = null;
        using var worker = h.Start(
            batches: new GatedBatchObserver(trace, gate),
            wrapStore: s => failing = new FailingStore(s, "doomed"));
        using var committed = new CommittedOffsets(h);
        using var serving = h.Reader(h.Kafka.CloakedTopic);

        Wait.Until(() => failing?.Failures >= 1, GuardHarness.Deadline, "the second batch's store write to fail");
        trace.Where(t => t.Step == BatchStep.Sent).Select(t => t.Batch).ShouldBe([1]);
        trace.ShouldNotContain(t => t.Step == BatchStep.OffsetsStored); // batch 1 is not acknowledged yet

        // Batch 1's acknowledgements come in while batch 2 keeps failing: batch 1 is finished, batch 2 is not.
        gate.Set();
        Wait.Until(() => committed.Total() == 1, GuardHarness.Deadline, "the first batch's offset committed");
        Wait.Until(() => failing?.Failures >= 4, GuardHarness.Deadline, "more failed attempts of the second batch");
        Thread.Sleep(1500); // longer than the auto-commit interval
        trace.Where(t => t.Step == BatchStep.OffsetsStored).Select(t => t.Batch).ShouldBe([1]);
        trace.ShouldNotContain(t => t.Batch == 2);
        committed.Total().ShouldBe(1);
        worker.Pipeline.ProcessedEvents.ShouldBe(1);
        worker.Metrics.StoreAvailable.Value.ShouldBe(0);

        failing!.Healthy = true;
        Wait.Until(() => worker.Pipeline.ProcessedEvents == 2, GuardHarness.Deadline, "the second batch after the store recovered");
        Wait.Until(() => committed.Total() == 2, GuardHarness.Deadline, "the second offset committed");
        serving.WaitUntil(m => m.Any(x => Encoding.UTF8.GetString(x.Message.Key) == "doomed"), "the second batch's output");
        trace.Where(t => t.Step == BatchStep.OffsetsStored).Select(t => t.Batch).ShouldBe([1, 2]);
        worker.Metrics.StoreAvailable.Value.ShouldBe(1);
        worker.Stop();
    }

    [Fact]
    public async Task A_user_written_by_someone_else_is_read_again_instead_of_trusting_the_remembered_state()
    {
        using var h = new GuardHarness(redis, kafka, "cache");
        using var worker = h.Start();
        using var serving = h.Reader(h.Kafka.CloakedTopic);
        h.Produce(GuardHarness.Update("shared", 1, GuardHarness.Embedding(1), new() { ["gender"] = "F" }));
        h.Flush();
        Wait.Until(() => worker.Pipeline.ProcessedEvents == 1, GuardHarness.Deadline, "the first event");
        worker.Pipeline.UserLookups.Read.ShouldBe(1);

        // Another writer moves the user on (version 5, other classes) behind the worker's back.
        var other = h.NewModelStore();
        var embedding = GuardHarness.Embedding(5);
        (await other.ApplyAsync([new UserStateChange("shared", StoredEventId.Compose("elsewhere", "mf-test-1", 3u), 5)
        {
            Original = embedding, Cloaked = SignatureCloakerFactory.Expected(embedding), Classes = [1, 2],
        }], TestContext.Current.CancellationToken))[0].Outcome.ShouldBe(ApplyOutcome.Applied);

        // Planned from the remembered version 1, the store says Stale: the user is forgotten by the cache...
        h.Produce(GuardHarness.Update("shared", 2, GuardHarness.Embedding(2)));
        h.Flush();
        Wait.Until(() => worker.Pipeline.ProcessedEvents == 2, GuardHarness.Deadline, "the stale event");
        worker.Events(Types.EmbeddingUpdate, Outcomes.Stale).ShouldBe(1);
        worker.Pipeline.UserLookups.Cached.ShouldBe(1);

        // ...so the next event is planned on what the store holds: the other writer's classes are carried forward.
        h.Produce(GuardHarness.Update("shared", 6, GuardHarness.Embedding(6)));
        h.Flush();
        var latest = serving.WaitUntil(m => m.Any(x => Decode(x).Version == 6), "version 6").Select(Decode).Single(c => c.Version == 6);
        latest.ProtectedAttributes.ShouldBe(["gender", "age"]);
        worker.Pipeline.UserLookups.Read.ShouldBe(2);
        (await worker.Store.GetUserAsync("shared", TestContext.Current.CancellationToken))!.Classes.ShouldBe([1, 2]);
        worker.Stop();
    }

    private static int Sent(ConcurrentQueue<BatchTrace> trace) => trace.Count(t => t.Step == BatchStep.Sent);

    private static CloakedEmbedding Decode(ConsumeResult<byte[], byte[]> message) =>
        EventCodec.TryDecodeCloaked(message.Message.Value, out var cloaked, out var error)
            ? cloaked
            : throw new InvalidOperationException($"not a cloaked embedding: {error}");

    /// <summary>The consumer group's committed offsets of the embeddings topic, as the broker has them.</summary>
    private sealed class CommittedOffsets : IDisposable
    {
        private readonly IConsumer<byte[], byte[]> _consumer;
        private readonly List<TopicPartition> _partitions;

        public CommittedOffsets(GuardHarness h)
        {
            // Same group id, never subscribed: it only asks the coordinator, it does not join the group.
            _consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig
            {
                BootstrapServers = h.Kafka.BootstrapServers,
                GroupId = h.Kafka.ConsumerGroup,
                EnableAutoCommit = false,
            }).SetLogHandler((_, _) => { }).SetErrorHandler((_, _) => { }).Build();
            _partitions = Enumerable.Range(0, MockKafkaCluster.PartitionsPerTopic)
                .Select(p => new TopicPartition(h.Kafka.EmbeddingsTopic, p)).ToList();
        }

        /// <summary>Committed messages over all partitions (the offsets start at 0 in a fresh topic).</summary>
        public long Total() =>
            _consumer.Committed(_partitions, TimeSpan.FromSeconds(10)).Sum(o => o.Offset == Offset.Unset ? 0 : o.Offset.Value);

        public void Dispose() => _consumer.Dispose();
    }

    /// <summary>The real store, whose writes fail with a connection error while a batch holds the given user.</summary>
    private sealed class FailingStore(IStateStore inner, string user) : IStateStore
    {
        private int _failures;

        public int Failures => Volatile.Read(ref _failures);

        public volatile bool Healthy;

        public Task<ApplyResult[]> ApplyAsync(IReadOnlyList<UserStateChange> batch, CancellationToken cancellationToken = default)
        {
            if (!Healthy && batch.Any(c => c.UserId == user))
            {
                Interlocked.Increment(ref _failures);
                throw new RedisConnectionException(ConnectionFailureType.SocketFailure, CommandFlags.None, "injected: Redis is unreachable");
            }
            return inner.ApplyAsync(batch, cancellationToken);
        }

        public Task<UserState?> GetUserAsync(string userId, CancellationToken cancellationToken = default) => inner.GetUserAsync(userId, cancellationToken);

        public Task<UserState?[]> GetUsersAsync(IReadOnlyList<string> userIds, CancellationToken cancellationToken = default) =>
            inner.GetUsersAsync(userIds, cancellationToken);

        public Task<StatisticsSnapshot> ReadStatisticsAsync(CancellationToken cancellationToken = default) => inner.ReadStatisticsAsync(cancellationToken);

        public Task<StatisticsVersion> StatisticsSequenceAsync(CancellationToken cancellationToken = default) =>
            inner.StatisticsSequenceAsync(cancellationToken);

        public IAsyncEnumerable<ServedUser> ScanServedAsync(CancellationToken cancellationToken = default) => inner.ScanServedAsync(cancellationToken);

        public IAsyncEnumerable<UserState> ScanStatesAsync(CancellationToken cancellationToken = default) => inner.ScanStatesAsync(cancellationToken);

        public Task<UserSweepPage> ScanSweepAsync(string cursor, int count, CancellationToken cancellationToken = default) =>
            inner.ScanSweepAsync(cursor, count, cancellationToken);

        public Task MarkSweptAsync(IReadOnlyList<string> userIds, int epoch, CancellationToken cancellationToken = default) =>
            inner.MarkSweptAsync(userIds, epoch, cancellationToken);

        public Task<long> CountUsersAsync(CancellationToken cancellationToken = default) => inner.CountUsersAsync(cancellationToken);

        public Task<bool[]> ContainsAsync(IReadOnlyList<string> userIds, CancellationToken cancellationToken = default) =>
            inner.ContainsAsync(userIds, cancellationToken);

        public Task DeleteAllAsync(CancellationToken cancellationToken = default) => inner.DeleteAllAsync(cancellationToken);
    }
}
