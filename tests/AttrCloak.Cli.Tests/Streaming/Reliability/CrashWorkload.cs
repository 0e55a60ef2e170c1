using System.Diagnostics;
using System.Text;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Tools.Kafka;
using Confluent.Kafka;
using StackExchange.Redis;
using static AttrCloak.Cli.Tests.Streaming.StreamingTestSupport;

namespace AttrCloak.Cli.Tests.Streaming.Reliability;

/// <summary>Embeddings whose originals carry their classes (a mean per age and per gender class) and served ones that do not.</summary>
internal sealed class Population
{
    private readonly float[][] _age, _gender;

    public Population(Random random)
    {
        float[] Shift() => Enumerable.Range(0, 8).Select(_ => (float)(0.8 * Normal(random))).ToArray();
        _age = Enumerable.Range(0, 7).Select(_ => Shift()).ToArray();
        _gender = Enumerable.Range(0, 2).Select(_ => Shift()).ToArray();
    }

    public float[] Original(Random random, int age, int gender) =>
        Enumerable.Range(0, 8).Select(i => (float)(_age[age][i] + _gender[gender][i] + 0.3 * Normal(random))).ToArray();

    public float[] Served(Random random) => Enumerable.Range(0, 8).Select(_ => (float)(0.5 * Normal(random))).ToArray();

    private static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}

/// <summary>One inbound event of the replay; Request = it goes to the privacy-requests topic.</summary>
internal sealed record PlannedEvent(bool Request, InboundEvent Event);

/// <summary>
/// One replayed user's events (versions 1..n): 2-4 embedding updates (the first declares age and gender, later ones
/// sometimes a new age), maybe an update_attributes (gender flipped or age cleared), maybe an opt_out, and for ~15%
/// a final forget; and the state they must end in.
/// </summary>
internal sealed class UserPlan
{
    /// <summary>The model version of every replayed update: one generation (a rollout is tested on its own).</summary>
    public const string Model = "mf-crash";

    private readonly SortedDictionary<long, float[]> _originalByVersion = [];

    private UserPlan(string userId) => UserId = userId;

    public string UserId { get; }
    public List<PlannedEvent> Events { get; } = [];
    public IEnumerable<float[]> Originals => _originalByVersion.Values;
    public long FinalVersion { get; private set; }
    public string FinalModelVersion { get; private set; } = "";
    public float[] FinalOriginal { get; private set; } = [];
    /// <summary>Class per attribute in the store's order (age, gender); -1 = cleared.</summary>
    public int[] FinalClasses { get; private set; } = [];
    public bool Forgotten { get; private set; }

    /// <summary>The original embedding of the user's state at <paramref name="version"/> (their last update up to it), or null.</summary>
    public float[]? OriginalOf(long version) => _originalByVersion.LastOrDefault(p => p.Key <= version).Value;

    public static UserPlan Draw(string userId, Population population, Random random)
    {
        var plan = new UserPlan(userId);
        int trueAge = random.Next(7), trueGender = random.Next(2);
        int[] declared = [trueAge, trueGender];
        var kinds = Enumerable.Repeat('U', 2 + random.Next(3)).ToList();
        if (random.NextDouble() < 0.35) kinds.Insert(random.Next(1, kinds.Count + 1), 'A');
        if (random.NextDouble() < 0.35) kinds.Insert(random.Next(1, kinds.Count + 1), 'O');
        if (random.NextDouble() < 0.15) kinds.Add('F');
        var ages = Catalog["age"];
        var genders = Catalog["gender"];
        long version = 0;
        foreach (var kind in kinds)
        {
            version++;
            var id = $"{userId}-e{version}";
            var at = DateTimeOffset.UtcNow;
            switch (kind)
            {
                case 'U':
                    Dictionary<string, string>? attributes = null;
                    if (version == 1) attributes = new() { ["age"] = ages[declared[0]], ["gender"] = genders[declared[1]] };
                    else if (random.NextDouble() < 0.15)
                    {
                        declared[0] = random.Next(7);
                        attributes = new() { ["age"] = ages[declared[0]] };
                    }
                    var original = population.Original(random, trueAge, trueGender);
                    plan._originalByVersion[version] = original;
                    plan.Events.Add(new(false, new EmbeddingUpdate(id, userId, version, at, Model, original, attributes)));
                    plan.FinalModelVersion = Model;
                    plan.FinalOriginal = original;
                    break;
                case 'A':
                    Dictionary<string, string?> change;
                    if (random.NextDouble() < 0.3)
                    {
                        declared[0] = -1;
                        change = new() { ["age"] = null };
                    }
                    else
                    {
                        declared[1] = 1 - declared[1];
                        change = new() { ["gender"] = genders[declared[1]] };
                    }
                    plan.Events.Add(new(true, new PrivacyRequest(id, userId, version, at, PrivacyRequestType.UpdateAttributes, change)));
                    break;
                case 'O':
                    plan.Events.Add(new(true, new PrivacyRequest(id, userId, version, at, PrivacyRequestType.OptOut, null)));
                    break;
                default:
                    plan.Events.Add(new(true, new PrivacyRequest(id, userId, version, at, PrivacyRequestType.Forget, null)));
                    plan.Forgotten = true;
                    break;
            }
        }
        plan.FinalVersion = version;
        plan.FinalClasses = [.. declared];
        return plan;
    }
}

/// <summary>
/// Replays the users' events at a steady rate, users interleaved at random. A user's next event on the OTHER input
/// topic waits until Redis shows their previous one applied: the contract orders a user's events by version across
/// both topics and ignores an older one that arrives after a newer one, and two topics give no order between them.
/// Without the wait the test would measure that documented race, not crashes. Same-topic events go out back to back
/// (one partition per user keeps their order).
/// </summary>
internal sealed class PacedProducer(string brokers, string embeddingsTopic, string requestsTopic, IConnectionMultiplexer redis, string prefix,
    UserPlan[] plans, Random random)
{
    private static readonly TimeSpan RefreshEvery = TimeSpan.FromMilliseconds(100);
    private int _sent, _crossTopic, _failed;
    private string? _firstError;

    public int Sent => Volatile.Read(ref _sent);
    public int CrossTopic => _crossTopic;

    public async Task RunAsync(double eventsPerSecond, CancellationToken ct)
    {
        var next = new int[plans.Length];
        var applied = new long[plans.Length];
        var candidates = new List<int>(plans.Length);
        var remaining = plans.Sum(p => p.Events.Count);
        var db = redis.GetDatabase();
        using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig
        {
            BootstrapServers = brokers,
            EnableIdempotence = true,
            LingerMs = 5,
        }).SetLogHandler((_, _) => { }).Build();
        var json = Encoding.UTF8.GetBytes(ContentTypes.Json);
        var clock = Stopwatch.StartNew();
        var lastRefresh = TimeSpan.Zero;

        bool Blocked(int u) => next[u] > 0 && plans[u].Events[next[u]].Request != plans[u].Events[next[u] - 1].Request
            && applied[u] < plans[u].Events[next[u] - 1].Event.Version;

        async Task RefreshAsync()
        {
            var blocked = Enumerable.Range(0, plans.Length).Where(u => next[u] < plans[u].Events.Count && Blocked(u)).ToArray();
            var versions = await Task.WhenAll(blocked.Select(u => db.HashGetAsync($"{StreamingTestSupport.GenerationPrefix(prefix, UserPlan.Model)}:user:{plans[u].UserId}", "v")));
            for (var i = 0; i < blocked.Length; i++)
                if (versions[i].HasValue) applied[blocked[i]] = (long)versions[i];
            lastRefresh = clock.Elapsed;
        }

        while (remaining > 0)
        {
            ct.ThrowIfCancellationRequested();
            if ((long)(clock.Elapsed.TotalSeconds * eventsPerSecond) <= _sent)
            {
                await Task.Delay(5, ct); // pacing
                continue;
            }
            if (clock.Elapsed - lastRefresh > RefreshEvery) await RefreshAsync();
            candidates.Clear();
            for (var u = 0; u < plans.Length; u++)
                if (next[u] < plans[u].Events.Count && !Blocked(u)) candidates.Add(u);
            if (candidates.Count == 0)
            {
                await Task.Delay(50, ct); // every remaining user waits for the worker (e.g. it was just killed)
                continue;
            }
            var user = candidates[random.Next(candidates.Count)];
            var planned = plans[user].Events[next[user]];
            if (next[user] > 0 && planned.Request != plans[user].Events[next[user] - 1].Request) _crossTopic++;
            var value = planned.Event switch
            {
                EmbeddingUpdate update => EventCodec.Encode(update),
                PrivacyRequest request => EventCodec.Encode(request),
                _ => throw new InvalidOperationException("unknown event"),
            };
            producer.Produce(planned.Request ? requestsTopic : embeddingsTopic, new Message<byte[], byte[]>
            {
                Key = EventCodec.KeyOf(plans[user].UserId),
                Value = value,
                Headers = new Headers { { KafkaHeaders.ContentType, json } },
            }, report =>
            {
                if (report.Error.IsError && Interlocked.Increment(ref _failed) == 1) _firstError = report.Error.Reason;
            });
            next[user]++;
            remaining--;
            Interlocked.Increment(ref _sent);
        }
        producer.Flush(TimeSpan.FromSeconds(30)).ShouldBe(0, "events still unsent after 30 s");
        _failed.ShouldBe(0, $"the test's producer failed to send: {_firstError}");
    }
}

/// <summary>Everything a topic receives, read from the start on all partitions by a background thread.</summary>
internal sealed class TopicTail : IDisposable
{
    private readonly List<(byte[] Key, byte[]? Value, long Version)> _messages = [];
    private readonly List<string> _deadLetterHeaders = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private long _lastReceived = Stopwatch.GetTimestamp();
    private Exception? _fault;

    public TopicTail(string brokers, string topic)
    {
        var consumer = new ConsumerBuilder<byte[], byte[]?>(new ConsumerConfig
        {
            BootstrapServers = brokers,
            GroupId = "tail-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
        }).SetLogHandler((_, _) => { }).Build();
        // Assigned partitions, not a group subscription: no rebalance wait.
        consumer.Assign(Enumerable.Range(0, MockKafkaCluster.PartitionsPerTopic)
            .Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        _thread = new Thread(() =>
        {
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is not { IsPartitionEOF: false } r) continue;
                    var version = r.Message.Value is { } v && EventCodec.TryDecodeCloaked(v, out var record, out _) ? record.Version : -1;
                    lock (_messages)
                    {
                        _messages.Add((r.Message.Key, r.Message.Value, version));
                        if (r.Message.Headers?.TryGetLastBytes(KafkaHeaders.DeadLetter, out var why) == true)
                            _deadLetterHeaders.Add($"{Encoding.UTF8.GetString(r.Message.Key)}: {Encoding.UTF8.GetString(why)} value {Encoding.UTF8.GetString(r.Message.Value ?? [])}");
                    }
                    Interlocked.Exchange(ref _lastReceived, Stopwatch.GetTimestamp());
                }
            }
            catch (Exception e)
            {
                _fault = e;
            }
            finally
            {
                consumer.Close();
                consumer.Dispose();
            }
        }) { IsBackground = true, Name = "tail-" + topic };
        _thread.Start();
    }

    public int Count
    {
        get
        {
            if (_fault is not null) throw new InvalidOperationException("the topic reader failed", _fault);
            lock (_messages) return _messages.Count;
        }
    }

    public List<(byte[] Key, byte[]? Value, long Version)> All()
    {
        lock (_messages) return [.. _messages];
    }

    /// <summary>Key, dead-letter header and value of every dead letter received.</summary>
    public List<string> DeadLetters()
    {
        lock (_messages) return [.. _deadLetterHeaders];
    }

    /// <summary>The last value per key (user id); null = a tombstone.</summary>
    public Dictionary<string, byte[]?> LastByUser()
    {
        var last = new Dictionary<string, byte[]?>(StringComparer.Ordinal);
        lock (_messages)
            foreach (var (key, value, _) in _messages)
                last[Encoding.UTF8.GetString(key)] = value;
        return last;
    }

    /// <summary>Waits until nothing arrived for <paramref name="quiet"/>.</summary>
    public async Task WaitQuietAsync(TimeSpan quiet, CancellationToken ct)
    {
        while (Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastReceived)) < quiet)
            await Task.Delay(100, ct);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join(TimeSpan.FromSeconds(10));
        _stop.Dispose();
    }
}
