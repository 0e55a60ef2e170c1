using AttrCloak.Core.Data;
using AttrCloak.Streaming.Contracts;

namespace AttrCloak.Streaming.Hosting;

/// <summary>
/// Kafka settings (section <c>AttrCloak:Kafka</c>). Environment variables use the usual double underscore, e.g.
/// <c>AttrCloak__Kafka__BootstrapServers=broker:9092</c>.
/// </summary>
public sealed class KafkaOptions
{
    public const string SectionName = "AttrCloak:Kafka";

    /// <summary>
    /// Comma-separated host:port list; required: empty is a configuration error for the worker (serve,
    /// <c>AddPrivacyGuard</c> and the Kafka clients refuse it). The demo
    /// and tests start a librdkafka mock cluster themselves and put its address here.
    /// </summary>
    public string BootstrapServers { get; set; } = "";

    /// <summary>Consumer group of the worker; all instances of one deployment share it (and the partitions).</summary>
    public string ConsumerGroup { get; set; } = "attrcloak-guard";

    /// <summary>Inbound embedding updates, keyed by user id.</summary>
    public string EmbeddingsTopic { get; set; } = TopicDefaults.Embeddings;

    /// <summary>Inbound privacy requests, keyed by user id.</summary>
    public string PrivacyRequestsTopic { get; set; } = TopicDefaults.PrivacyRequests;

    /// <summary>Outbound cloaked embeddings (compacted), keyed by user id; a null value (tombstone) on forget.</summary>
    public string CloakedTopic { get; set; } = TopicDefaults.Cloaked;

    /// <summary>Outbound rejected messages with the reason in a header.</summary>
    public string DeadLetterTopic { get; set; } = TopicDefaults.DeadLetter;

    /// <summary>
    /// Extra librdkafka properties passed to every client as they are (e.g. <c>security.protocol</c>,
    /// <c>sasl.mechanism</c>, <c>sasl.username</c>, <c>sasl.password</c>, <c>ssl.ca.location</c>). Secrets belong in
    /// environment variables or a mounted secret, never in appsettings.json.
    /// </summary>
    public Dictionary<string, string> Client { get; set; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Static group membership (<c>group.instance.id</c>, KIP-345). <c>none</c> (default, or empty): dynamic membership:
    /// a stopping instance leaves the group at once, so its partitions move within one rebalance. <c>auto</c>:
    /// <c>{host}-{http port}</c>, the host from the <c>HOSTNAME</c> environment variable (the pod or container name) or
    /// the machine name, so that two instances on one host (which need two HTTP ports) never share an id; without a
    /// fixed HTTP port (0) the membership stays dynamic. Anything else is used as the id (it must be unique in the
    /// group: Kafka fences the older of two members with one id). A static member does not leave the group when it
    /// stops: Kafka keeps its partitions for it until its session times out, and gives them back without a rebalance
    /// when it returns in time. That pays with stable names (a StatefulSet) and a session timeout longer than a
    /// restart (<c>Client:session.timeout.ms</c>); with the 6 s default and a Deployment's new pod names it only holds
    /// partitions back (docs/operations.md "Membership, restarts and shutdown", measured figures).
    /// </summary>
    public string GroupInstanceId { get; set; } = NoInstanceId;

    public const string AutoInstanceId = "auto";
    public const string NoInstanceId = "none";

    /// <summary>A copy with <see cref="GroupInstanceId"/> set to <paramref name="instanceId"/> (null: dynamic membership).</summary>
    public KafkaOptions WithGroupInstanceId(string? instanceId)
    {
        var copy = (KafkaOptions)MemberwiseClone();
        copy.Client = new Dictionary<string, string>(Client, StringComparer.Ordinal);
        copy.GroupInstanceId = instanceId ?? NoInstanceId;
        return copy;
    }

    /// <summary>Kafka's rule for topic names: letters, digits, '.', '_', '-'; 1 to 249 characters.</summary>
    public static bool IsValidTopicName(string? topic) =>
        !string.IsNullOrWhiteSpace(topic) && topic.Length <= 249 && topic.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');

    /// <summary>The four topic names, with their configuration keys.</summary>
    public IEnumerable<(string Key, string Topic)> Topics() =>
        [("EmbeddingsTopic", EmbeddingsTopic), ("PrivacyRequestsTopic", PrivacyRequestsTopic), ("CloakedTopic", CloakedTopic), ("DeadLetterTopic", DeadLetterTopic)];

    /// <summary>
    /// The <c>group.instance.id</c> to use, or null for dynamic membership. <paramref name="httpPort"/> is the port of
    /// the instance's HTTP endpoints (0 or null: not known or not fixed, so no automatic id).
    /// </summary>
    public string? ResolveGroupInstanceId(int? httpPort, string? hostName = null)
    {
        var value = GroupInstanceId?.Trim() ?? "";
        if (value.Length == 0 || value.Equals(NoInstanceId, StringComparison.OrdinalIgnoreCase)) return null;
        if (!value.Equals(AutoInstanceId, StringComparison.OrdinalIgnoreCase)) return value;
        if (httpPort is not > 0) return null;
        var host = hostName ?? Environment.GetEnvironmentVariable("HOSTNAME");
        if (string.IsNullOrWhiteSpace(host)) host = Environment.MachineName;
        var clean = new string(host.Trim().Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-').ToArray());
        return $"{clean}-{httpPort.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
    }

    public void Validate(List<string> errors)
    {
        foreach (var (name, topic) in Topics())
            if (!IsValidTopicName(topic))
                errors.Add($"{SectionName}:{name} '{topic}' is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249)");
        // One topic in two roles: the worker would consume its own output, or could not tell the event types' topics apart.
        foreach (var same in Topics().GroupBy(t => t.Topic, StringComparer.Ordinal).Where(g => g.Count() > 1 && !string.IsNullOrWhiteSpace(g.Key)))
            errors.Add($"{SectionName}: {string.Join(" and ", same.Select(t => t.Key))} are all '{same.Key}'; each role needs its own topic");
        if (string.IsNullOrWhiteSpace(ConsumerGroup))
            errors.Add($"{SectionName}:ConsumerGroup must not be empty");
        var instance = GroupInstanceId?.Trim() ?? "";
        if (instance.Length > 249 || instance.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-')))
            errors.Add($"{SectionName}:GroupInstanceId '{GroupInstanceId}' must be '{AutoInstanceId}', '{NoInstanceId}' or an id of letters, digits, '.', '_', '-' (at most 249)");
    }
}

/// <summary>Where Redis is (section <c>AttrCloak:Redis</c>, beside the state-store layout options bound from the same section).</summary>
public sealed class RedisConnectionOptions
{
    public const string SectionName = "AttrCloak:Redis";

    /// <summary>
    /// A StackExchange.Redis configuration string, e.g. <c>redis:6379,password=...,ssl=true</c>. Empty = no Redis: the
    /// demo then uses the in-process store; <c>serve</c> refuses to start.
    /// </summary>
    public string Configuration { get; set; } = "";

    /// <summary>Base64 of the tombstone HMAC key (at least 16 bytes); from a secret, never from appsettings.json in production.</summary>
    public string TombstoneSecret { get; set; } = "";

    /// <summary>
    /// With <c>ssl=true</c>: a PEM file of the private CA that signed Redis's certificate, trusted in addition to the
    /// machine's CAs (e.g. a mounted Kubernetes secret). Empty = the machine's trust store only.
    /// </summary>
    public string TrustedCaFile { get; set; } = "";
}

/// <summary>What the worker protects and how it batches (section <c>AttrCloak:Guard</c>).</summary>
public sealed class GuardOptions
{
    public const string SectionName = "AttrCloak:Guard";

    /// <summary>Embedding dimension of the deployment (every event must carry exactly this many values).</summary>
    public int Dimension { get; set; }

    /// <summary>
    /// The protected attributes and their classes, in a fixed order (statistics are keyed by class position), e.g.
    /// <c>"Attributes": { "gender": ["F", "M"], "age": ["1", "18", ...] }</c>.
    /// </summary>
    public Dictionary<string, string[]> Attributes { get; set; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Most events handled as one batch (one store script, one wait for produce acknowledgements). Larger batches cost
    /// less per event and add latency; the default was chosen with <c>attrcloak bench stream</c> (docs/performance.md).
    /// </summary>
    public int MaxBatchEvents { get; set; } = 384;

    /// <summary>
    /// Sent batches whose acknowledgements may still be outstanding while the next batch is collected and processed
    /// (0: wait for each batch's acknowledgements before the next). Each one holds its events' offsets back until it is
    /// acknowledged. Passed to <see cref="Pipeline.GuardPipeline.MaxUnacknowledgedBatches"/>.
    /// </summary>
    public int MaxUnacknowledgedBatches { get; set; } = 2;

    /// <summary>
    /// At most this share of one core goes to background rebuilds of the re-cloak maps after drift (1 = rebuild
    /// whenever the drift thresholds say so). Passed to <see cref="Pipeline.GuardPipeline.CloakerRebuildShare"/>.
    /// </summary>
    public double CloakerRebuildShare { get; set; } = 0.02;

    /// <summary>Users whose state the worker remembers instead of reading it back from the store (0: always read).</summary>
    public int UserCacheCapacity { get; set; } = 100_000;

    /// <summary>How long a batch waits for more events once it has one.</summary>
    public TimeSpan MaxBatchWait { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>Rebuild the per-class cloaking maps after this many applied users changed the statistics.</summary>
    public int CloakerRefreshEvents { get; set; } = 2000;

    /// <summary>... or when the maps are older than this and the statistics changed at all.</summary>
    public TimeSpan CloakerRefreshInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// While the state store's data is lost (Redis came back empty), how often the worker checks whether it was rebuilt
    /// (the meta key re-created, e.g. by <c>attrcloak bootstrap</c>).
    /// </summary>
    public TimeSpan StateCheckInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Largest accepted inbound message value in bytes.</summary>
    public int MaxMessageBytes { get; set; } = ContractLimits.DefaultMaxBytes;

    /// <summary>Port of the HTTP endpoints (/metrics, /healthz/live, /healthz/ready); 0 = pick a free one.</summary>
    public int HttpPort { get; set; } = 8080;

    /// <summary>
    /// The longest a stop (SIGTERM, Ctrl+C) takes: the batch in hand is abandoned, acknowledged work is committed and the
    /// consumer leaves its group within this budget; what Kafka does not answer in time (a broker that is gone) is
    /// given up (its events are redelivered). Keep it below the orchestrator's grace period (Kubernetes: 30 s).
    /// </summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The catalog as the contracts and the store use it.</summary>
    public AttributeCatalog Catalog() => new(AttributeSpecs());

    /// <summary>The catalog as <see cref="AttributeSpec"/>s (state store, audit).</summary>
    public IReadOnlyList<AttributeSpec> AttributeSpecs() => Attributes.Select(p => new AttributeSpec(p.Key, p.Value)).ToArray();

    public void Validate(List<string> errors)
    {
        if (Dimension is < 1 or > 4096)
            errors.Add($"{SectionName}:Dimension must be in 1..4096 (the embedding size of your model), got {Dimension}");
        if (Attributes.Count == 0)
            errors.Add($"{SectionName}:Attributes must list at least one protected attribute with its classes");
        else
        {
            try { Catalog(); }
            catch (ArgumentException e) { errors.Add($"{SectionName}:Attributes: {e.Message}"); }
        }
        if (MaxBatchEvents is < 1 or > 10_000)
            errors.Add($"{SectionName}:MaxBatchEvents must be in 1..10000, got {MaxBatchEvents}");
        if (MaxUnacknowledgedBatches is < 0 or > 64)
            errors.Add($"{SectionName}:MaxUnacknowledgedBatches must be in 0..64, got {MaxUnacknowledgedBatches}");
        if (!(CloakerRebuildShare is > 0 and <= 1))
            errors.Add($"{SectionName}:CloakerRebuildShare must be in (0, 1], got {CloakerRebuildShare}");
        if (UserCacheCapacity is < 0 or > 100_000_000)
            errors.Add($"{SectionName}:UserCacheCapacity must be in 0..100000000, got {UserCacheCapacity}");
        if (MaxBatchWait < TimeSpan.Zero || MaxBatchWait > TimeSpan.FromSeconds(5))
            errors.Add($"{SectionName}:MaxBatchWait must be between 0 and 5 s, got {MaxBatchWait}");
        if (CloakerRefreshEvents < 1)
            errors.Add($"{SectionName}:CloakerRefreshEvents must be at least 1, got {CloakerRefreshEvents}");
        if (StateCheckInterval <= TimeSpan.Zero || StateCheckInterval > TimeSpan.FromMinutes(10))
            errors.Add($"{SectionName}:StateCheckInterval must be between 0 (exclusive) and 10 min, got {StateCheckInterval}");
        if (MaxMessageBytes is < 1024 or > 64 * 1024 * 1024)
            errors.Add($"{SectionName}:MaxMessageBytes must be in 1 KiB..64 MiB, got {MaxMessageBytes}");
        if (HttpPort is < 0 or > 65535)
            errors.Add($"{SectionName}:HttpPort must be in 0..65535, got {HttpPort}");
        if (ShutdownTimeout < TimeSpan.FromSeconds(1) || ShutdownTimeout > TimeSpan.FromMinutes(5))
            errors.Add($"{SectionName}:ShutdownTimeout must be between 1 s and 5 min, got {ShutdownTimeout}");
    }
}

/// <summary>The shadow audit (section <c>AttrCloak:Audit</c>).</summary>
public sealed class AuditOptions
{
    public const string SectionName = "AttrCloak:Audit";

    /// <summary>Time between audits; 0 disables them.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Served users kept (uniformly sampled, forgotten users removed) to train and test the shadow attackers on.</summary>
    public int SampleSize { get; set; } = 2000;

    /// <summary>Attackers of the core (names of AttackerCatalog: lr, lr+cal, mlp, mlp-wide, lgbm, lgbm+cal).</summary>
    public string[] Attackers { get; set; } = ["lr", "mlp"];

    /// <summary>An attribute is audited only when every class has at least this many sampled users.</summary>
    public int MinUsersPerClass { get; set; } = 5;

    /// <summary>Cross-validation folds of the audit.</summary>
    public int Folds { get; set; } = 3;

    public void Validate(List<string> errors)
    {
        if (Interval < TimeSpan.Zero)
            errors.Add($"{SectionName}:Interval must not be negative, got {Interval}");
        if (SampleSize is < 50 or > 1_000_000)
            errors.Add($"{SectionName}:SampleSize must be in 50..1000000, got {SampleSize}");
        if (Attackers.Length == 0)
            errors.Add($"{SectionName}:Attackers must name at least one attacker");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var attacker in Attackers)
        {
            var name = attacker?.Trim().ToLowerInvariant() ?? "";
            var baseName = name.EndsWith("+cal", StringComparison.Ordinal) ? name[..^4] : name;
            if (!AttrCloak.Audit.Attackers.AttackerCatalog.BaseNames.Contains(baseName))
                errors.Add($"{SectionName}:Attackers: unknown attacker '{attacker}' (known: {string.Join(", ", AttrCloak.Audit.Attackers.AttackerCatalog.BaseNames)}, each optionally with '+cal')");
            else if (!seen.Add(name))
                errors.Add($"{SectionName}:Attackers lists '{attacker}' twice");
        }
        if (MinUsersPerClass < 2)
            errors.Add($"{SectionName}:MinUsersPerClass must be at least 2, got {MinUsersPerClass}");
        if (Folds is < 2 or > 10)
            errors.Add($"{SectionName}:Folds must be in 2..10, got {Folds}");
    }
}
