using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Redis;
using Microsoft.Extensions.Configuration;

namespace AttrCloak.Streaming.Hosting;

/// <summary>A configuration the worker cannot run with; the message lists every problem, one per line.</summary>
public sealed class StreamingConfigurationException(string message) : Exception(message);

/// <summary>
/// Everything the worker and the streaming commands (serve, demo, bootstrap, replay, stats) read from configuration
/// (appsettings.json, then environment variables <c>AttrCloak__Section__Key</c>, then command-line overrides),
/// bound and validated in one place.
/// </summary>
public sealed record StreamingSettings(
    KafkaOptions Kafka,
    RedisConnectionOptions Redis,
    GuardOptions Guard,
    AuditOptions Audit)
{
    /// <summary>How model generations roll out (<c>AttrCloak:Generations</c>).</summary>
    public GenerationOptions Generations { get; init; } = new();

    /// <summary>Binds every section; throws <see cref="StreamingConfigurationException"/> listing all problems.</summary>
    public static StreamingSettings Bind(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var errors = new List<string>();
        var kafka = OptionsBinding.Bind<KafkaOptions>(configuration, KafkaOptions.SectionName, errors);
        // The Redis section also holds the state store's layout keys, read by StateStoreOptions below.
        var redis = OptionsBinding.Bind<RedisConnectionOptions>(configuration, RedisConnectionOptions.SectionName, errors, StoreLayoutKeys);
        var guard = OptionsBinding.Bind<GuardOptions>(configuration, GuardOptions.SectionName, errors);
        var audit = OptionsBinding.Bind<AuditOptions>(configuration, AuditOptions.SectionName, errors);
        var generations = OptionsBinding.Bind<GenerationOptions>(configuration, GenerationOptions.SectionName, errors);
        foreach (var section in configuration.GetSection(RootSectionName).GetChildren())
            if (!SectionNames.Contains(section.Key, StringComparer.OrdinalIgnoreCase))
                errors.Add($"{RootSectionName}:{section.Key} is not a section (known: {string.Join(", ", SectionNames)})");
        kafka.Validate(errors);
        guard.Validate(errors);
        audit.Validate(errors);
        generations.Validate(errors);
        if (errors.Count > 0)
            throw new StreamingConfigurationException(string.Join(Environment.NewLine, errors));
        return new StreamingSettings(kafka, redis, guard, audit) { Generations = generations };
    }

    /// <summary>
    /// The state-store layout options (prefix etc. from <c>AttrCloak:Redis</c>, dimension and catalog from the guard
    /// section). The tombstone secret comes from <c>AttrCloak:Redis:TombstoneSecret</c> (base64); without one, a
    /// random per-process key is used only when <paramref name="allowEphemeralSecret"/> (the demo's in-process store).
    /// </summary>
    public StateStoreOptions StateStoreOptions(IConfiguration configuration, bool allowEphemeralSecret = false)
    {
        var options = new StateStoreOptions();
        var section = configuration.GetSection(StateStoreOptions_SectionName);
        if (section["Prefix"] is { } prefix) options.Prefix = prefix;
        if (section["TombstoneTtl"] is { } ttl)
            options.TombstoneTtl = TimeSpan.TryParse(ttl, System.Globalization.CultureInfo.InvariantCulture, out var parsed)
                ? parsed
                : throw new StreamingConfigurationException($"{StateStoreOptions_SectionName}:TombstoneTtl '{ttl}' is not a time span (e.g. 30.00:00:00)");
        if (section["ReferencePoint"] is { Length: > 0 } || section.GetSection("ReferencePoint").GetChildren().Any())
            options.ReferencePoint = section.GetSection("ReferencePoint").Get<float[]>();
        options.Dimension = Guard.Dimension;
        options.Attributes = Guard.AttributeSpecs();
        if (!string.IsNullOrEmpty(Redis.TombstoneSecret))
        {
            try { options.TombstoneSecret = Convert.FromBase64String(Redis.TombstoneSecret); }
            catch (FormatException) { throw new StreamingConfigurationException($"{StateStoreOptions_SectionName}:TombstoneSecret is not base64"); }
        }
        else if (allowEphemeralSecret)
            options.TombstoneSecret = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
        else
            throw new StreamingConfigurationException(
                $"{StateStoreOptions_SectionName}:TombstoneSecret is required with Redis (base64 of at least 16 random bytes, e.g. `openssl rand -base64 32`; set it as the environment variable AttrCloak__Redis__TombstoneSecret)");
        try { options.Validate(); }
        catch (ArgumentException e) { throw new StreamingConfigurationException(e.Message); }
        return options;
    }

    // The record's Redis property and StateStoreOptions method hide the type names, hence the full name.
    private const string StateStoreOptions_SectionName = AttrCloak.Streaming.Redis.StateStoreOptions.SectionName;

    public const string RootSectionName = "AttrCloak";

    /// <summary>The sections under <c>AttrCloak</c> that the streaming commands read; anything else is a mistake (a typo).</summary>
    public static readonly string[] SectionNames = ["Kafka", "Redis", "Guard", "Audit", "Generations"];

    /// <summary>Keys of <c>AttrCloak:Redis</c> that <see cref="StateStoreOptions"/> reads (beside <see cref="RedisConnectionOptions"/>).</summary>
    public static readonly string[] StoreLayoutKeys = ["Prefix", "TombstoneTtl", "ReferencePoint"];
}
