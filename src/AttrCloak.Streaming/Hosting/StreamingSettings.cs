using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Poisoning;
using AttrCloak.Streaming.State;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

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

    /// <summary>Which embedding updates are accepted (<c>AttrCloak:Input</c>).</summary>
    public InputOptions Input { get; init; } = new();

    /// <summary>
    /// Binds and validates every section the way the worker host does (<see cref="StreamingOptionsRegistration.AddStreamingOptions"/>:
    /// <c>AddOptions&lt;T&gt;().BindConfiguration(section)</c> with the worker's validators), before anything connects;
    /// throws <see cref="StreamingConfigurationException"/> listing all problems, one per line.
    /// </summary>
    public static StreamingSettings Bind(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var services = new ServiceCollection().AddSingleton(configuration).AddStreamingOptions();
        using var provider = services.BuildServiceProvider();
        var errors = new List<string>();
        var kafka = Resolve<KafkaOptions>(provider, configuration, KafkaOptions.SectionName, errors);
        var redis = Resolve<RedisConnectionOptions>(provider, configuration, RedisConnectionOptions.SectionName, errors);
        var guard = Resolve<GuardOptions>(provider, configuration, GuardOptions.SectionName, errors);
        var audit = Resolve<AuditOptions>(provider, configuration, AuditOptions.SectionName, errors);
        var generations = Resolve<GenerationOptions>(provider, configuration, GenerationOptions.SectionName, errors);
        var input = Resolve<InputOptions>(provider, configuration, InputOptions.SectionName, errors);
        foreach (var section in configuration.GetSection(RootSectionName).GetChildren())
            if (!SectionNames.Contains(section.Key, StringComparer.OrdinalIgnoreCase))
                errors.Add($"{RootSectionName}:{section.Key} is not a section (known: {string.Join(", ", SectionNames)})");
        if (errors.Count > 0)
            throw new StreamingConfigurationException(string.Join(Environment.NewLine, errors));
        return new StreamingSettings(kafka!, redis!, guard!, audit!) { Generations = generations!, Input = input! };
    }

    /// <summary>
    /// The bound and validated options of one section, or null with its problems added to <paramref name="errors"/>.
    /// A value of the wrong type is reported for its key, without binding (the binder would throw at the first one).
    /// </summary>
    private static T? Resolve<T>(IServiceProvider provider, IConfiguration configuration, string section, List<string> errors) where T : class
    {
        var typeErrors = new List<string>();
        OptionsBinding.CheckTypes(typeof(T), configuration, section, typeErrors);
        if (typeErrors.Count > 0)
        {
            OptionsBinding.CheckKeys(typeof(T), configuration, section, errors,
                typeof(T) == typeof(RedisConnectionOptions) ? StoreLayoutKeys : []);
            errors.AddRange(typeErrors);
            return null;
        }
        try
        {
            return provider.GetRequiredService<IOptions<T>>().Value;
        }
        catch (OptionsValidationException e)
        {
            errors.AddRange(e.Failures);
            return null;
        }
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
    private const string StateStoreOptions_SectionName = AttrCloak.Streaming.State.StateStoreOptions.SectionName;

    public const string RootSectionName = "AttrCloak";

    /// <summary>The sections under <c>AttrCloak</c> that the streaming commands read; anything else is a mistake (a typo).</summary>
    public static readonly string[] SectionNames = ["Kafka", "Redis", "Guard", "Audit", "Generations", "Input"];

    /// <summary>Keys of <c>AttrCloak:Redis</c> that <see cref="StateStoreOptions"/> reads (beside <see cref="RedisConnectionOptions"/>).</summary>
    public static readonly string[] StoreLayoutKeys = ["Prefix", "TombstoneTtl", "ReferencePoint"];
}
