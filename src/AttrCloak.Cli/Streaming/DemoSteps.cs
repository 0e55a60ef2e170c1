using System.Diagnostics;
using AttrCloak.Audit;
using AttrCloak.Cli.Rendering;
using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;
using AttrCloak.Learning.Backbones;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Monitoring;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.State;
using AttrCloak.Tools.Replay;
using StackExchange.Redis;

namespace AttrCloak.Cli.Streaming;

/// <summary>
/// The demo's state store: a fresh key prefix in the configured Redis (every key of it deleted at the end), or an
/// in-process store when no Redis is configured.
/// </summary>
internal sealed class DemoStore : IAsyncDisposable
{
    private readonly ConnectionMultiplexer? _redis;
    private readonly string _prefix;

    private DemoStore(IGenerationStore store, ConnectionMultiplexer? redis, string prefix, string description)
    {
        Store = store;
        _redis = redis;
        _prefix = prefix;
        Description = description;
    }

    public IGenerationStore Store { get; }

    /// <summary>Where the state lives, for the demo's step line.</summary>
    public string Description { get; }

    public static async Task<DemoStore> OpenAsync(string? redisConfiguration, StateStoreOptions options)
    {
        if (string.IsNullOrWhiteSpace(redisConfiguration))
            return new DemoStore(new InMemoryGenerationStore(options), null, options.Prefix,
                "an in-process store (no Redis configured: give --redis host:port to use one)");
        var redis = await RedisConnector.ConnectAsync(redisConfiguration);
        return new DemoStore(new RedisGenerationStore(redis, options), redis, options.Prefix,
            $"Redis at {redis.GetEndPoints().FirstOrDefault()} (prefix {options.Prefix}, removed at the end)");
    }

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
        {
            await DeploymentKeys.DeleteAllAsync(_redis, _prefix);
            await _redis.DisposeAsync();
        }
        Store.Dispose();
    }
}

/// <summary>What the demo streamed: events the broker acknowledged, and the producer's summary (null when nothing was streamed).</summary>
internal sealed record DemoStreamResult(long Produced, ProduceSummary? Summary, TimeSpan Elapsed);

/// <summary>The demo's stream: the users' events produced at a rate with live progress, then the worker's catch-up.</summary>
internal static class DemoStream
{
    public static async Task<DemoStreamResult> RunAsync(GuardHost host, string brokers, KafkaOptions kafka, IReadOnlyList<ReplayUser> users,
        ReplayOptions replay, double rate, CancellationToken cancellationToken)
    {
        var produced = 0L;
        ProduceSummary? summary = null;
        var clock = Stopwatch.StartNew();
        if (users.Count > 0)
        {
            using var producer = new KafkaBulkProducer(brokers);
            var messages = EventReplay.Generate(users, replay).Select(m =>
                new OutboundMessage(m.IsPrivacyRequest ? kafka.PrivacyRequestsTopic : kafka.EmbeddingsTopic, m.Key, m.Value, m.ContentType, m.Event.SchemaName));
            var expected = EventReplay.UpdateCount(users.Count, replay) * (1 + replay.ForgetFraction + replay.OptOutFraction);
            summary = await LiveStatus.RunAsync($"streaming ~{expected:F0} events{(rate > 0 ? $" at {rate:G4}/s" : "")}", expected, async progress =>
            {
                var report = new InlineProgress<ProduceProgress>(p =>
                {
                    produced = p.Acked;
                    progress.Report(new LiveUpdate(Processed(host.Metrics), Status(p.AckedPerSecond, host)));
                });
                var result = await producer.ProduceAsync(messages, rate, report, cancellationToken: cancellationToken);
                // Then wait for the worker to catch up with everything acknowledged.
                var deadline = Stopwatch.StartNew();
                while (Processed(host.Metrics) < result.Acked && deadline.Elapsed < TimeSpan.FromSeconds(120))
                {
                    progress.Report(new LiveUpdate(Processed(host.Metrics), "catching up: " + Status(result.AckedPerSecond, host)));
                    await Task.Delay(200, cancellationToken);
                }
                return result;
            });
        }
        return new DemoStreamResult(produced, summary, clock.Elapsed);
    }

    /// <summary>Events the worker finished (any outcome).</summary>
    public static double Processed(WorkerMetrics metrics) =>
        metrics.Events.GetAllLabelValues().Sum(labels => metrics.Events.WithLabels(labels).Value);

    public static double DeadLetters(WorkerMetrics metrics) =>
        metrics.DeadLetters.GetAllLabelValues().Sum(labels => metrics.DeadLetters.WithLabels(labels).Value);

    private static string Status(double producedPerSecond, GuardHost host)
    {
        var lag = host.Metrics.ConsumerLag.GetAllLabelValues().Sum(l => host.Metrics.ConsumerLag.WithLabels(l).Value);
        var audit = host.Auditor.Latest is { } latest
            ? "latest audit: " + string.Join(", ", latest.Attributes.Select(a => $"{a.Name} {a.WorstBalancedAccuracy:F2} (chance {a.Chance:F2})"))
            : "no audit yet";
        return $"{producedPerSecond:F0} events/s produced, {Processed(host.Metrics):F0} processed, lag {lag:F0}; {audit}";
    }
}

/// <summary>One row of the demo's before/after table: a method's users, its privacy audit and its utility.</summary>
internal sealed record DemoRow(string Method, int Users, AuditResult Privacy, RankingMetrics Utility);

/// <summary>The demo's before/after audits: each embedding matrix audited (privacy) and evaluated (utility) on a set of users.</summary>
internal static class DemoAudit
{
    /// <summary>Audits each (method, matrix, users) on those users' rows, with the data set's labels and the model's items.</summary>
    public static List<DemoRow> Run(IEnumerable<(string Method, EmbeddingMatrix Matrix, int[] Users)> methods, AttributeSpec[] specs, int[][] labels,
        TrainedModel model, LeaveOneOutSplit split, AttrCloak.Audit.AuditOptions audit, CancellationToken cancellationToken)
    {
        var rows = new List<DemoRow>();
        foreach (var (method, matrix, subset) in methods)
        {
            var users = matrix.SelectRows(subset);
            var audited = specs.Select((a, i) => new AuditedAttribute(a.Name, a.ClassCount, subset.Select(u => labels[i][u]).ToArray())).ToArray();
            var privacy = ConsoleProgress.RunAudit(p => PrivacyAudit.Run(users, audited, audit, p, cancellationToken));
            var utility = UtilityEvaluator.Evaluate(users, model.Items, subset.Select(u => split.TestCandidates[u]).ToArray());
            rows.Add(new DemoRow(method, subset.Length, privacy, utility));
        }
        return rows;
    }
}
