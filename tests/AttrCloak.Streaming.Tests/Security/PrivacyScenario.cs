using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Kafka;
using AttrCloak.Streaming.Tests.Pipeline;
using AttrCloak.Tools.Kafka;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Tests.Security;

/// <summary>
/// One run of the whole guard as `serve` runs it (<see cref="GuardHost"/>: worker, real <see cref="TransportCloakerFactory"/>,
/// shadow auditor, HTTP endpoints) against the real redis-server and the librdkafka mock cluster, with logging at
/// Trace captured; every privacy promise test reads what it left behind. Users, event ids and class names are
/// distinctive strings, so that a leak is found by searching for them.
/// <para>The story: cold start (empty store: the first users are served the warm-up vector), a warm population with
/// the gender in dimension 0, embedding updates, update_attributes (changed and cleared), opt_out, forget, malformed
/// inputs that quote user ids and class values (dead letters), and audits.</para>
/// </summary>
internal sealed class PrivacyScenario
{
    public const int D = 8;
    private const float Signal = 1.5f;
    public const int ColdUsers = 12;
    public const int WarmUsers = 260;

    /// <summary>Class names that occur nowhere else (a search for them finds only leaks).</summary>
    public static readonly Dictionary<string, string[]> Attributes = new(StringComparer.Ordinal)
    {
        ["gender"] = ["cls-Q7xFem4k", "cls-Q7xMal9p"],
        ["age"] = ["cls-Z3aYng1w", "cls-Z3aMid2v", "cls-Z3aOld3u"],
    };

    /// <summary>
    /// A class value no catalog has: dead-lettered, and it must not be repeated anywhere either. (Unknown attribute
    /// names and request types may be quoted in a dead letter's reason: they are field names and enum values, not a
    /// user's attribute value.)
    /// </summary>
    public const string BogusClass = "cls-Q7xBogus8r";

    public static IEnumerable<string> ClassValues => Attributes.Values.SelectMany(v => v).Append(BogusClass);

    private readonly string _run = Guid.NewGuid().ToString("N")[..6];

    /// <summary>Every original embedding each user ever sent (all versions).</summary>
    public ConcurrentDictionary<string, List<float[]>> Originals { get; } = new(StringComparer.Ordinal);

    /// <summary>Every user id the run used, including those only in dead-lettered messages.</summary>
    public HashSet<string> UserIds { get; } = new(StringComparer.Ordinal);

    public List<string> ColdUserIds { get; } = [];
    public List<string> Forgotten { get; } = [];
    public Dictionary<string, long> LastVersion { get; } = new(StringComparer.Ordinal);

    public List<ConsumeResult<byte[], byte[]>> Served { get; private set; } = [];
    public List<ConsumeResult<byte[], byte[]>> DeadLetters { get; private set; } = [];
    public List<string> LogLines { get; } = [];
    public Dictionary<string, string> Scrapes { get; } = new(StringComparer.Ordinal);
    public string Prefix { get; private set; } = "";
    public byte[] TombstoneSecret { get; } = RandomNumberGenerator.GetBytes(32);
    public int ExpectedDeadLetters { get; private set; }
    public int AuditRuns { get; private set; }

    private string NewUser(string kind)
    {
        // Long enough that a chance match in a float's bytes or an unrelated string is impossible.
        var id = $"usr-{kind}{_run}{UserIds.Count:D4}x";
        UserIds.Add(id);
        return id;
    }

    public static async Task<PrivacyScenario> RunAsync(RedisServerFixture redis)
    {
        var scenario = new PrivacyScenario();
        await scenario.ExecuteAsync(redis);
        return scenario;
    }

    private async Task ExecuteAsync(RedisServerFixture redis)
    {
        var ct = TestContext.Current.CancellationToken;
        using var cluster = new MockKafkaCluster();
        var kafka = new KafkaOptions
        {
            BootstrapServers = cluster.BootstrapServers,
            ConsumerGroup = $"sec-{_run}",
            EmbeddingsTopic = $"sec{_run}.embeddings",
            PrivacyRequestsTopic = $"sec{_run}.requests",
            CloakedTopic = $"sec{_run}.cloaked",
            DeadLetterTopic = $"sec{_run}.dead-letter",
            // librdkafka's own debug log goes to the worker's logger too: it must not carry keys or values either.
            Client = new Dictionary<string, string> { ["session.timeout.ms"] = "6000", ["debug"] = "cgrp,topic,msg" },
        };
        cluster.CreateTopics(kafka.EmbeddingsTopic, kafka.PrivacyRequestsTopic, kafka.CloakedTopic, kafka.DeadLetterTopic);
        var guard = new GuardOptions
        {
            Dimension = D,
            Attributes = Attributes,
            HttpPort = 0,
            CloakerRefreshEvents = 40, // real maps soon after the population is warm
            CloakerRefreshInterval = TimeSpan.FromMilliseconds(500),
        };
        var settings = new StreamingSettings(kafka, new RedisConnectionOptions(), guard,
            new AuditOptions { Interval = TimeSpan.FromMilliseconds(400), Attackers = ["lr"], Folds = 3, SampleSize = 1000 });
        Prefix = redis.NewPrefix("privacy");
        using var generations = new RedisGenerationStore(redis.Redis, new StateStoreOptions
        {
            Prefix = Prefix,
            Dimension = D,
            Attributes = guard.AttributeSpecs(),
            TombstoneSecret = TombstoneSecret,
        });
        var logs = new FullLogCapture();
        await using var host = GuardHost.Build(settings, generations, new TransportCloakerFactory(), httpPort: 0, logging =>
        {
            logging.AddProvider(logs);
            logging.SetMinimumLevel(LogLevel.Trace);
        });
        await host.StartAsync(ct);
        using var http = new HttpClient { BaseAddress = new Uri(host.Address!) };
        using var served = new TopicReader(kafka.BootstrapServers, kafka.CloakedTopic);
        using var deadLetters = new TopicReader(kafka.BootstrapServers, kafka.DeadLetterTopic);
        Wait.Until(() => host.Status.GroupJoined, GuardHarness.Deadline, "the worker to join its group");

        using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers, EnableIdempotence = true, LingerMs = 2 }).Build();
        var random = new Random(20250301);
        float[] Embedding(int gender)
        {
            // Full-precision values (not rounded): their decimal text and bytes are unique to the user.
            var x = new float[D];
            for (var j = 0; j < D; j++) x[j] = (float)(random.NextDouble() * 2 - 1);
            x[0] += gender == 1 ? Signal : -Signal;
            return x;
        }
        Dictionary<string, string> Classes(int gender, int age) => new(StringComparer.Ordinal)
        {
            ["gender"] = Attributes["gender"][gender],
            ["age"] = Attributes["age"][age],
        };
        var time = DateTimeOffset.UtcNow;
        void Update(string user, long version, int gender, int age, bool withAttributes = true)
        {
            var x = Embedding(gender);
            Originals.GetOrAdd(user, _ => []).Add(x);
            LastVersion[user] = version;
            var update = new EmbeddingUpdate($"evt-{user}-v{version}", user, version, time, "mf-sec-1", x, withAttributes ? Classes(gender, age) : null);
            producer.Produce(kafka.EmbeddingsTopic, new Message<byte[], byte[]> { Key = EventCodec.KeyOf(user), Value = EventCodec.Encode(update, binary: version % 2 == 0) ,
                Headers = version % 2 == 0 ? new Headers { { KafkaHeaders.ContentType, Encoding.UTF8.GetBytes(ContentTypes.EmbeddingBinary) } } : null });
        }
        void Request(string user, long version, PrivacyRequestType type, Dictionary<string, string?>? attributes = null)
        {
            LastVersion[user] = version;
            var request = new PrivacyRequest($"req-{user}-v{version}", user, version, time, type, attributes);
            producer.Produce(kafka.PrivacyRequestsTopic, new Message<byte[], byte[]> { Key = EventCodec.KeyOf(user), Value = EventCodec.Encode(request) });
        }
        void Raw(string topic, string user, string text) =>
            producer.Produce(topic, new Message<byte[], byte[]> { Key = EventCodec.KeyOf(user), Value = Encoding.UTF8.GetBytes(text) });

        // 1. Cold start: an empty store; these users are served before any statistics exist.
        for (var u = 0; u < ColdUsers; u++)
        {
            var user = NewUser("c");
            ColdUserIds.Add(user);
            Update(user, 1, u % 2, u % 3);
        }
        producer.Flush(ct);
        served.WaitUntil(m => m.Count >= ColdUsers, "the cold-start users to be served");

        // 2. A warm population (the gender leaks through dimension 0).
        var warm = new List<(string User, int Gender, int Age)>();
        for (var u = 0; u < WarmUsers; u++)
        {
            var user = NewUser("w");
            warm.Add((user, u % 2, u % 3));
            Update(user, 1, u % 2, u % 3);
        }
        producer.Flush(ct);
        served.WaitUntil(m => m.Count >= ColdUsers + WarmUsers, "the warm population to be served");
        Wait.Until(() => host.Metrics.CloakerRefreshes.Value >= 1, GuardHarness.Deadline, "a cloaker built from warm statistics");

        // 3. Changes: new embeddings (some without attributes), changed and cleared attributes, opt_out, forget.
        for (var i = 0; i < 60; i++) Update(warm[i].User, 2, warm[i].Gender, warm[i].Age, withAttributes: i % 3 != 0);
        for (var i = 60; i < 90; i++)
            Request(warm[i].User, 2, PrivacyRequestType.UpdateAttributes, i % 2 == 0
                ? new Dictionary<string, string?> { ["gender"] = Attributes["gender"][1 - warm[i].Gender] }
                : new Dictionary<string, string?> { ["age"] = null });
        for (var i = 90; i < 110; i++) Request(warm[i].User, 2, PrivacyRequestType.OptOut);
        for (var i = 110; i < 122; i++)
        {
            Request(warm[i].User, 2, PrivacyRequestType.Forget);
            Forgotten.Add(warm[i].User);
        }
        Request(ColdUserIds[0], 2, PrivacyRequestType.Forget);
        Forgotten.Add(ColdUserIds[0]);

        // 4. Bad input quoting user ids and class values: each must be dead-lettered without the worker repeating them.
        var bad = NewUser("b");
        var badUpdate = new EmbeddingUpdate($"evt-{bad}-v1", bad, 1, time, "mf-sec-1", Embedding(0), Classes(0, 0));
        var json = Encoding.UTF8.GetString(EventCodec.Encode(badUpdate));
        Raw(kafka.EmbeddingsTopic, bad, json[..(json.Length / 2)]); // truncated JSON
        Raw(kafka.EmbeddingsTopic, bad, json.Replace(Attributes["gender"][0], BogusClass, StringComparison.Ordinal)); // unknown class
        Raw(kafka.EmbeddingsTopic, bad, json.Replace("\"gender\"", "\"gender-unknown7q\"", StringComparison.Ordinal)); // unknown attribute
        Raw(kafka.EmbeddingsTopic, warm[200].User, json); // key of another user than the payload's
        var optOut = Encoding.UTF8.GetString(EventCodec.Encode(new PrivacyRequest($"req-{bad}-v1", bad, 1, time, PrivacyRequestType.OptOut, null)));
        Raw(kafka.PrivacyRequestsTopic, bad, optOut.Replace(EventCodec.WireName(PrivacyRequestType.OptOut), "purge_all", StringComparison.Ordinal)); // unknown request type
        var wrongDimension = new EmbeddingUpdate($"evt-{bad}-v2", bad, 2, time, "mf-sec-1", [1f, 2f, 3f], Classes(1, 1));
        Raw(kafka.EmbeddingsTopic, bad, Encoding.UTF8.GetString(EventCodec.Encode(wrongDimension)));
        ExpectedDeadLetters = 6;
        producer.Flush(ct);

        var expectedLast = LastVersion.Where(p => p.Key != bad).ToDictionary();
        Served = served.WaitUntil(m =>
        {
            var latest = Latest(m);
            return expectedLast.All(p => latest.TryGetValue(p.Key, out var v) && v >= p.Value);
        }, "every user's last version (or forget) to be served");
        DeadLetters = deadLetters.WaitUntil(m => m.Count >= ExpectedDeadLetters, "the dead letters");

        // 5. A shadow audit, then the endpoints as a scraper sees them.
        // A successful audit in the run (not "more after the last event": the auditor runs only when
        // something was served since its last run, so once the stream is idle at most one more audit comes).
        var audits = host.Metrics.AuditRuns.WithLabels("success");
        try { Wait.Until(() => audits.Value >= 1, GuardHarness.Deadline, "a successful shadow audit"); }
        catch (TimeoutException e)
        {
            var auditLines = logs.Lines.Where(l => l.Contains("audit", StringComparison.OrdinalIgnoreCase)).TakeLast(8);
            throw new TimeoutException($"{e.Message}; audit runs: success {audits.Value}, failure {host.Metrics.AuditRuns.WithLabels("failure").Value}, " +
                $"skipped {host.Metrics.AuditRuns.WithLabels("skipped").Value}; last audit log lines:\n{string.Join("\n", auditLines)}", e);
        }
        foreach (var path in new[] { GuardEndpoints.MetricsPath, GuardEndpoints.LivePath, GuardEndpoints.ReadyPath })
            Scrapes[path] = await http.GetStringAsync(path, ct);
        AuditRuns = (int)audits.Value;
        await host.StopAsync(ct);
        Served = served.Snapshot();
        DeadLetters = deadLetters.Snapshot();
        LogLines.AddRange(logs.Lines);
    }

    /// <summary>Highest version served per user (a tombstone counts as the forget's version, read from <see cref="LastVersion"/>).</summary>
    private Dictionary<string, long> Latest(List<ConsumeResult<byte[], byte[]>> messages)
    {
        var latest = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var m in messages)
        {
            var user = Encoding.UTF8.GetString(m.Message.Key);
            long version;
            if (m.Message.Value is null) version = LastVersion.GetValueOrDefault(user);
            else if (EventCodec.TryDecodeCloaked(m.Message.Value, out var cloaked, out _)) version = cloaked.Version;
            else continue;
            latest[user] = Math.Max(latest.GetValueOrDefault(user), version);
        }
        return latest;
    }
}

/// <summary>
/// Keeps every log record in full: the formatted message, every structured argument, scopes, and the whole exception
/// (type, message, stack, inner exceptions), so that a user id hidden in any of them is found.
/// </summary>
internal sealed class FullLogCapture : ILoggerProvider, ISupportExternalScope
{
    private readonly ConcurrentQueue<string> _lines = new();
    private IExternalScopeProvider? _scopes;

    public IReadOnlyList<string> Lines => [.. _lines];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose() { }

    private sealed class Logger(FullLogCapture owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => owner._scopes?.Push(state);

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var line = new StringBuilder($"{logLevel} {category}: {formatter(state, exception)}");
            if (state is IEnumerable<KeyValuePair<string, object?>> pairs)
                foreach (var (key, value) in pairs) line.Append(" | ").Append(key).Append('=').Append(value);
            owner._scopes?.ForEachScope((scope, sb) => sb.Append(" | scope ").Append(scope), line);
            if (exception is not null) line.Append(" | ").Append(exception);
            owner._lines.Enqueue(line.ToString());
        }
    }
}
