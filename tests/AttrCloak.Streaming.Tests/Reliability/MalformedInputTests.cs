using System.Text;
using System.Text.RegularExpressions;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Pipeline;
using AttrCloak.Streaming.Tests.Pipeline;
using Confluent.Kafka;
using Types = AttrCloak.Streaming.Monitoring.WorkerMetrics.EventTypes;
using Outcomes = AttrCloak.Streaming.Monitoring.WorkerMetrics.Outcomes;
using AttrCloak.Streaming.Redis;

namespace AttrCloak.Streaming.Tests.Reliability;

/// <summary>
/// Bad input through the worker (real producer, the librdkafka mock cluster, real redis-server): every file of the
/// contract tests' malformed corpus, and the out-of-order / conflicting versions of Corpus/versions, each lands once in
/// the dead-letter topic with its reason and original bytes, the worker keeps consuming, and later valid events of the
/// same users are served. A redelivery after a crash is no bad input: it produces no dead letter.
/// </summary>
[Collection(RunsAlone.Name)]
public sealed partial class MalformedInputTests(RedisServerFixture redis, MockKafkaFixture kafka) : IClassFixture<MockKafkaFixture>
{
    private static string CorpusDirectory => Path.Combine(AppContext.BaseDirectory, "Corpus");

    /// <summary>The worker configured as Corpus/corpus.json says: dimension 4, 1024 bytes, gender/age.</summary>
    private static void CorpusSettings(GuardOptions guard)
    {
        guard.Dimension = 4;
        guard.MaxMessageBytes = 1024;
        guard.Attributes = new Dictionary<string, string[]>(StringComparer.Ordinal)
        {
            ["gender"] = ["female", "male"],
            ["age"] = ["under_18", "18_24", "25_34", "35_44", "45_49", "50_55", "56_plus"],
        };
    }

    [Fact]
    public async Task Every_malformed_corpus_file_is_dead_lettered_once_with_its_reason_and_the_users_later_events_are_served()
    {
        using var h = new GuardHarness(redis, kafka, "corpus", CorpusSettings);
        var files = Directory.GetFiles(Path.Combine(CorpusDirectory, "malformed")).Order(StringComparer.Ordinal).ToList();
        files.Count.ShouldBeGreaterThanOrEqualTo(50);
        using var worker = h.Start();
        using var serving = h.Reader(h.Kafka.CloakedTopic);
        using var deadLetters = h.Reader(h.Kafka.DeadLetterTopic);

        var sent = new List<(string Name, ReasonCode Reason, byte[] Bytes, Task<DeliveryResult<byte[], byte[]>> Delivery)>();
        var users = new HashSet<string>(StringComparer.Ordinal);
        foreach (var path in files)
        {
            var name = Path.GetFileName(path);
            var bytes = File.ReadAllBytes(path);
            var (topic, contentType) = Route(h, name, bytes);
            var user = UserOf(bytes);
            if (user is not null) users.Add(user);
            var headers = contentType is null ? null : new Headers { { KafkaHeaders.ContentType, Encoding.UTF8.GetBytes(contentType) } };
            sent.Add((name, Enum.Parse<ReasonCode>(name[..name.IndexOf('.')]), bytes,
                h.ProduceRaw(topic, user is null ? null : EventCodec.KeyOf(user), bytes, headers)));
        }
        // Valid events of the same users after the bad ones: same key, so the same partition, so consumed after them.
        users.ShouldContain("user-42");
        foreach (var user in users) h.Produce(Update(user, 100, [0.1f, 0.2f, -0.3f, 0.4f], "female"));
        h.Flush();
        // The requests topic is not ordered with the embeddings topic: the opt_out goes once the update is served.
        serving.WaitUntil(m => Latest(m, "user-42") is { Version: 100 }, "user-42's later update");
        h.Produce(new PrivacyRequest("later-opt-out", "user-42", 101, GuardHarness.Time, PrivacyRequestType.OptOut, null));
        h.Flush();

        var letters = deadLetters.WaitUntil(m => m.Count >= sent.Count, $"{sent.Count} dead letters");
        serving.WaitUntil(m => users.All(u => Latest(m, u) is { } c && c.Version == (u == "user-42" ? 101 : 100)), "the users' later events");
        Wait.Until(() => worker.Pipeline.ProcessedEvents == sent.Count + users.Count + 1, GuardHarness.Deadline, "every event handled");
        Thread.Sleep(300); // a second dead letter per file would show up by now (batches take milliseconds)
        letters = deadLetters.Snapshot();
        letters.Count.ShouldBe(sent.Count, "one dead letter per file, nothing else");
        worker.Failure.ShouldBeNull();

        var byPosition = letters.ToDictionary(m => Record(m).SourcePosition());
        foreach (var (name, reason, bytes, delivery) in sent)
        {
            var at = await delivery;
            byPosition.TryGetValue((at.Topic, at.Partition.Value, at.Offset.Value), out var letter).ShouldBeTrue($"{name}: no dead letter");
            Header(letter!, KafkaHeaders.DeadLetterReason).ShouldBe(reason.Label(), $"{name}: reason header");
            var record = Record(letter!);
            record.Reason.ShouldBe(reason, $"{name}: {record.Message}");
            record.OriginalSizeBytes.ShouldBe(bytes.Length, name);
            (letter!.Message.Value ?? []).ShouldBe(bytes, $"{name}: the original bytes");
        }
        foreach (var group in sent.GroupBy(s => s.Reason))
            worker.DeadLetters(group.Key).ShouldBe(group.Count(), $"attrcloak_dead_lettered_total{{reason=\"{group.Key.Label()}\"}}");
        worker.Events(Types.EmbeddingUpdate, Outcomes.Applied).ShouldBe(users.Count);
        worker.Events(Types.OptOut, Outcomes.Applied).ShouldBe(1);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{sent.Count} malformed files through the worker: " + string.Join(", ", sent.GroupBy(s => s.Reason).OrderBy(g => g.Key).Select(g => $"{g.Key.Label()} {g.Count()}")));
        worker.Stop();
    }

    [Fact]
    public async Task Older_and_conflicting_versions_are_dead_lettered_exact_redeliveries_are_not()
    {
        using var h = new GuardHarness(redis, kafka, "versions", CorpusSettings);
        var files = Directory.GetFiles(Path.Combine(CorpusDirectory, "versions")).Order(StringComparer.Ordinal)
            .Select(path => (Name: Path.GetFileName(path), Bytes: File.ReadAllBytes(path)))
            .ToList();
        using var worker = h.Start();
        using var serving = h.Reader(h.Kafka.CloakedTopic);
        using var deadLetters = h.Reader(h.Kafka.DeadLetterTopic);

        // Phase by phase (file name: <phase>.<expected>.<what>.json): the two input topics are not ordered with each other.
        // Expected: Applied, Duplicate (exact redelivery), Stale (older than a version from the OTHER topic: may be a
        // race between the topics, so no bad input), or the dead letter's reason.
        var bad = new List<(string Name, ReasonCode Reason, Task<DeliveryResult<byte[], byte[]>> Delivery)>();
        var handled = 0;
        foreach (var phase in files.GroupBy(f => f.Name[..f.Name.IndexOf('.')]).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            foreach (var (name, bytes) in phase)
            {
                var (topic, _) = Route(h, name, bytes);
                var delivery = h.ProduceRaw(topic, EventCodec.KeyOf(UserOf(bytes)!), bytes);
                var expected = name.Split('.')[1];
                if (expected is not ("Applied" or "Duplicate" or "Stale")) bad.Add((name, Enum.Parse<ReasonCode>(expected), delivery));
            }
            h.Flush();
            handled += phase.Count();
            Wait.Until(() => worker.Pipeline.ProcessedEvents == handled, GuardHarness.Deadline, $"phase {phase.Key} handled");
        }
        var users = new[] { "user-50", "user-51", "user-52", "user-53" };
        foreach (var user in users) h.Produce(Update(user, 10, [0.3f, -0.1f, 0.2f, 0.0f], "male"));
        h.Flush();
        serving.WaitUntil(m => users.All(u => Latest(m, u) is { Version: 10 }), "the users' later events");
        var letters = deadLetters.WaitUntil(m => m.Count >= bad.Count, $"{bad.Count} dead letters");
        Wait.Until(() => worker.Pipeline.ProcessedEvents == handled + users.Length, GuardHarness.Deadline, "every event handled");
        Thread.Sleep(300);
        letters = deadLetters.Snapshot();
        letters.Count.ShouldBe(bad.Count, "exact redeliveries are no dead letter");

        var byPosition = letters.ToDictionary(m => Record(m).SourcePosition());
        foreach (var (name, reason, delivery) in bad)
        {
            var at = await delivery;
            byPosition.TryGetValue((at.Topic, at.Partition.Value, at.Offset.Value), out var letter).ShouldBeTrue($"{name}: no dead letter");
            Header(letter!, KafkaHeaders.DeadLetterReason).ShouldBe(reason.Label(), name);
            Record(letter!).Reason.ShouldBe(reason, name);
            letter!.Message.Value.ShouldBe(files.Single(f => f.Name == name).Bytes, name);
        }
        worker.DeadLetters(ReasonCode.StaleVersion).ShouldBe(bad.Count(b => b.Reason == ReasonCode.StaleVersion));
        worker.DeadLetters(ReasonCode.VersionConflict).ShouldBe(bad.Count(b => b.Reason == ReasonCode.VersionConflict));
        worker.Events(Types.EmbeddingUpdate, Outcomes.Duplicate).ShouldBe(1);
        worker.Events(Types.Forget, Outcomes.Duplicate).ShouldBe(1);
        worker.Events(Types.UpdateAttributes, Outcomes.Duplicate).ShouldBe(1);
        new[] { Types.EmbeddingUpdate, Types.OptOut, Types.Forget, Types.UpdateAttributes }.Sum(t => worker.Events(t, Outcomes.Stale))
            .ShouldBe(files.Count(f => f.Name.Split('.')[1] == "Stale"));

        // Nothing of the bad events reached the state or the serving topic: the applied versions stayed until v10.
        var served = serving.Snapshot().Where(m => m.Message.Value is not null).Select(Decode).ToList();
        served.Where(c => c.UserId == "user-50").Select(c => c.Version).Distinct().Order().ShouldBe([5L, 10L]);
        served.Where(c => c.UserId == "user-52").Select(c => c.Version).Distinct().Order().ShouldBe([9L, 10L]);
        (await worker.Store.GetUserAsync("user-50", TestContext.Current.CancellationToken))!.Version.ShouldBe(10);
        worker.Stop();
    }

    [Fact]
    public async Task A_redelivery_after_a_crash_is_no_bad_input_but_a_later_out_of_order_version_is()
    {
        using var h = new GuardHarness(redis, kafka, "redeliver", CorpusSettings);
        // One user's versions 1..3 in order, and a second user whose event carries the same version twice.
        for (var v = 1; v <= 3; v++) h.Produce(Update("crashy", v, [0.1f * v, 0.2f, 0.3f, 0.4f], "female"));
        h.Produce(Update("twice", 4, [0.5f, 0.5f, 0.5f, 0.5f], "male"));
        h.Flush();

        // "Crash": the first worker writes Redis but never sees an acknowledgement, so it stores no offset.
        using var gate = new ManualResetEventSlim(false);
        var trace = new System.Collections.Concurrent.ConcurrentQueue<BatchTrace>();
        using (var first = h.Start(batches: new GatedBatchObserver(trace, gate)))
        {
            Wait.Until(() => trace.Any(t => t.Step == BatchStep.Sent) && StoredVersion(h, "crashy") == 3 && StoredVersion(h, "twice") == 4,
                GuardHarness.Deadline, "the first worker's store writes");
            first.Pipeline.ProcessedEvents.ShouldBe(0);
            first.Stop(); // gives up on the acknowledgements after its grace period: the offsets stay unstored
            trace.ShouldNotContain(t => t.Step == BatchStep.OffsetsStored);
        }

        using var deadLetters = h.Reader(h.Kafka.DeadLetterTopic);
        using var serving = h.Reader(h.Kafka.CloakedTopic);
        using var second = h.Start();
        Wait.Until(() => second.Pipeline.ProcessedEvents == 4, GuardHarness.Deadline, "the four events redelivered");
        // Redelivered: versions 1 and 2 are older than the stored 3, and 3 and 4 are the stored events; none is bad input.
        second.Events(Types.EmbeddingUpdate, Outcomes.Stale).ShouldBe(2);
        second.Events(Types.EmbeddingUpdate, Outcomes.Duplicate).ShouldBe(2);
        ReasonCodes.All.Sum(r => second.DeadLetters(r)).ShouldBe(0);

        // First delivered now: an out-of-order version and a conflicting one are bad input.
        h.Produce(Update("crashy", 2, [0.9f, 0.9f, 0.9f, 0.9f], "male", eventId: "late-2"));
        h.Produce(Update("twice", 4, [0.7f, 0.7f, 0.7f, 0.7f], "female", eventId: "other-4"));
        h.Flush();
        var letters = deadLetters.WaitUntil(m => m.Count >= 2, "two dead letters");
        letters.Select(m => Header(m, KafkaHeaders.DeadLetterReason)).Order().ShouldBe(["stale_version", "version_conflict"]);
        Wait.Until(() => second.Pipeline.ProcessedEvents == 6, GuardHarness.Deadline, "the two bad events handled");
        second.DeadLetters(ReasonCode.StaleVersion).ShouldBe(1);
        second.DeadLetters(ReasonCode.VersionConflict).ShouldBe(1);
        (await second.Store.GetUserAsync("crashy", TestContext.Current.CancellationToken))!.Version.ShouldBe(3);
        Thread.Sleep(300);
        deadLetters.Snapshot().Count.ShouldBe(2);
        serving.Snapshot().Where(m => m.Message.Value is not null).Select(Decode).ShouldAllBe(c => c.Version == 3 || c.Version == 4);
        second.Stop();
    }

    [Fact]
    public async Task An_event_on_the_other_input_topic_is_dead_lettered_as_wrong_topic_and_changes_nothing()
    {
        using var h = new GuardHarness(redis, kafka, "topics", CorpusSettings);
        var files = Directory.GetFiles(Path.Combine(CorpusDirectory, "topics")).Order(StringComparer.Ordinal)
            .Select(path => (Name: Path.GetFileName(path), Bytes: File.ReadAllBytes(path)))
            .ToList();
        files.Count.ShouldBeGreaterThanOrEqualTo(4);
        var users = files.Select(f => UserOf(f.Bytes).ShouldNotBeNull(f.Name)).ToList();
        using var worker = h.Start();
        using var serving = h.Reader(h.Kafka.CloakedTopic);
        using var deadLetters = h.Reader(h.Kafka.DeadLetterTopic);

        // The users exist first (version 1), so that a privacy request accepted from the wrong topic would apply.
        foreach (var user in users) h.Produce(Update(user, 1, [0.1f, 0.2f, 0.3f, 0.4f], "female"));
        h.Flush();
        serving.WaitUntil(m => users.All(u => Latest(m, u) is { Version: 1 }), "the users' first updates");

        var sent = new List<(string Name, Task<DeliveryResult<byte[], byte[]>> Delivery)>();
        foreach (var (name, bytes) in files)
        {
            var topic = name.StartsWith("embeddings.", StringComparison.Ordinal) ? h.Kafka.EmbeddingsTopic : h.Kafka.PrivacyRequestsTopic;
            var headers = name.EndsWith(".bin", StringComparison.Ordinal)
                ? new Headers { { KafkaHeaders.ContentType, Encoding.UTF8.GetBytes(ContentTypes.EmbeddingBinary) } }
                : null;
            sent.Add((name, h.ProduceRaw(topic, EventCodec.KeyOf(UserOf(bytes)!), bytes, headers)));
        }
        h.Flush();
        deadLetters.WaitUntil(m => m.Count >= files.Count, $"{files.Count} dead letters");
        Wait.Until(() => worker.Pipeline.ProcessedEvents == users.Count + files.Count, GuardHarness.Deadline, "every event handled");
        var letters = deadLetters.Snapshot();
        letters.Count.ShouldBe(files.Count);
        var byPosition = letters.ToDictionary(m => Record(m).SourcePosition());
        foreach (var (name, delivery) in sent)
        {
            var at = await delivery;
            byPosition.TryGetValue((at.Topic, at.Partition.Value, at.Offset.Value), out var letter).ShouldBeTrue($"{name}: no dead letter");
            Header(letter!, KafkaHeaders.DeadLetterReason).ShouldBe("wrong_topic", name);
            Record(letter!).Reason.ShouldBe(ReasonCode.WrongTopic, name);
            letter!.Message.Value.ShouldBe(files.Single(f => f.Name == name).Bytes, name);
        }
        worker.DeadLetters(ReasonCode.WrongTopic).ShouldBe(files.Count);
        worker.Failure.ShouldBeNull();

        // Nothing of them was applied: every user is still at version 1 (the forget on the embeddings topic forgot nobody).
        foreach (var user in users)
            (await worker.Store.GetUserAsync(user, TestContext.Current.CancellationToken)).ShouldNotBeNull(user).Version.ShouldBe(1, user);
        serving.Snapshot().ShouldAllBe(m => m.Message.Value != null && Decode(m).Version == 1);
        worker.Stop();
    }

    [Fact]
    public void The_stored_event_id_keeps_the_stream_of_the_applied_event_and_older_ids_read_as_unknown()
    {
        var withStream = StoredEventId.Parse(StoredEventId.Compose("e-1", "mf-1", 0x3u, StoredEventId.RequestStream));
        withStream.ShouldBe(new StoredEventId("e-1", "mf-1", 0x3u, true, StoredEventId.RequestStream));
        StoredEventId.Parse(StoredEventId.Compose("e-1", "mf-1", 0x3u)).ShouldBe(new StoredEventId("e-1", "mf-1", 0x3u, true, StoredEventId.UnknownStream));
        StoredEventId.Parse("bootstrap-7").ShouldBe(new StoredEventId("bootstrap-7", StoredEventId.UnknownModelVersion, 0, false, StoredEventId.UnknownStream));
        StoredEventId.Parse("e-1\u001Fmf-1\u001F3\u001Fxy").Stream.ShouldBe(StoredEventId.UnknownStream);
    }

    // ---- helpers -------------------------------------------------------------------------------------------------

    /// <summary>The version field of the user's Redis record (0: none), read directly so that a poll need not block on a task.</summary>
    private static long StoredVersion(GuardHarness h, string user) =>
        h.Redis.GetDatabase().HashGet($"{RedisGenerationStore.GenerationPrefix(h.StoreOptions.Prefix, "mf-1")}:user:{user}", "v") is { IsNull: false } v ? (long)v : 0;

    private static EmbeddingUpdate Update(string user, long version, float[] embedding, string gender, string? eventId = null) =>
        new(eventId ?? $"{user}-v{version}", user, version, GuardHarness.Time.AddSeconds(version), "mf-1", embedding,
            new Dictionary<string, string> { ["gender"] = gender });

    /// <summary>
    /// Privacy requests (by their schema name) go to the requests topic, everything else to the embeddings topic;
    /// .bin as the binary encoding, .txt as text/plain, .json without a content type (Corpus/README.md).
    /// </summary>
    private static (string Topic, string? ContentType) Route(GuardHarness h, string name, byte[] bytes)
    {
        var topic = Encoding.Latin1.GetString(bytes).Contains("privacy_request", StringComparison.Ordinal) ? h.Kafka.PrivacyRequestsTopic : h.Kafka.EmbeddingsTopic;
        return Path.GetExtension(name) switch
        {
            ".json" => (topic, null),
            ".bin" => (h.Kafka.EmbeddingsTopic, ContentTypes.EmbeddingBinary),
            ".txt" => (topic, "text/plain"),
            var other => throw new InvalidOperationException($"unexpected corpus file type {other}"),
        };
    }

    /// <summary>The user id a file names (its Kafka key), if a plain one is in it; the corpus uses user-NN ids.</summary>
    private static string? UserOf(byte[] bytes) => UserId().Match(Encoding.Latin1.GetString(bytes)) is { Success: true } m ? m.Value : null;

    [GeneratedRegex("user-[0-9]+")]
    private static partial Regex UserId();

    private static DeadLetter Record(ConsumeResult<byte[], byte[]> message)
    {
        var header = message.Message.Headers.GetLastBytes(KafkaHeaders.DeadLetter);
        ServingSchemas.Errors(ServingSchemas.DeadLetter, header).ShouldBeNull();
        return EventCodec.TryDecodeDeadLetter(header, out var record, out var error)
            ? record
            : throw new InvalidOperationException($"not a dead-letter record: {error}");
    }

    private static string Header(ConsumeResult<byte[], byte[]> message, string name) =>
        Encoding.UTF8.GetString(message.Message.Headers.GetLastBytes(name));

    private static CloakedEmbedding Decode(ConsumeResult<byte[], byte[]> message) =>
        EventCodec.TryDecodeCloaked(message.Message.Value, out var cloaked, out var error)
            ? cloaked
            : throw new InvalidOperationException($"not a cloaked embedding: {error}");

    private static CloakedEmbedding? Latest(List<ConsumeResult<byte[], byte[]>> messages, string user) =>
        messages.LastOrDefault(m => m.Message.Key is { } k && Encoding.UTF8.GetString(k) == user && m.Message.Value is not null) is { } last ? Decode(last) : null;
}

internal static class DeadLetterPositions
{
    /// <summary>Where the dead-lettered message was consumed.</summary>
    public static (string Topic, int Partition, long Offset) SourcePosition(this DeadLetter record) =>
        (record.SourceTopic, record.SourcePartition, record.SourceOffset);
}
