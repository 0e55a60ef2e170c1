using System.Text;
using AttrCloak.Streaming.Hosting;
using Microsoft.Extensions.Configuration;
using AttrCloak.Streaming.State;

namespace AttrCloak.Cli.Streaming;

/// <summary>Values given on the command line that override the configuration file and the environment (null = not given).</summary>
/// <param name="ConfigFile">--config FILE; null = ./appsettings.json when present.</param>
/// <param name="Brokers">--brokers: AttrCloak:Kafka:BootstrapServers.</param>
/// <param name="Redis">--redis: AttrCloak:Redis:Configuration.</param>
/// <param name="Prefix">--prefix: AttrCloak:Redis:Prefix.</param>
public sealed record StreamingOverrides(string? ConfigFile, string? Brokers = null, string? Redis = null, string? Prefix = null);

/// <summary>
/// The configuration of the streaming commands (serve, demo, bootstrap, replay, stats), layered like the worker's host:
/// the appsettings.json-style file (<c>--config FILE</c>, else <c>./appsettings.json</c> when present), then
/// environment variables (<c>AttrCloak__Kafka__BootstrapServers</c> ...), then explicit options. Every problem becomes a
/// <see cref="UsageException"/> (one <c>error:</c> line, exit 2) that says where the value came from.
/// </summary>
public sealed class StreamingConfiguration
{
    public const string DefaultFileName = "appsettings.json";

    private StreamingConfiguration(IConfiguration configuration, string sources)
    {
        Configuration = configuration;
        Sources = sources;
    }

    /// <summary>The layered configuration (for binding further sections).</summary>
    public IConfiguration Configuration { get; }

    /// <summary>Where the values came from, for messages, e.g. "/etc/attrcloak/appsettings.json + environment + options".</summary>
    public string Sources { get; }

    /// <summary>Builds the layered configuration; <paramref name="workingDirectory"/> is where ./appsettings.json is looked for.</summary>
    public static StreamingConfiguration Load(StreamingOverrides overrides, string? workingDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(overrides);
        var builder = new ConfigurationBuilder();
        var sources = new List<string>();
        string? file = null;
        if (overrides.ConfigFile is { } given)
        {
            if (string.IsNullOrWhiteSpace(given)) throw new UsageException("--config needs a file name");
            file = Path.GetFullPath(given);
            if (!File.Exists(file))
                throw new UsageException($"configuration file '{given}' not found (--config); see deploy/appsettings.example.json for the layout");
        }
        else
        {
            var local = Path.Combine(workingDirectory ?? Directory.GetCurrentDirectory(), DefaultFileName);
            if (File.Exists(local)) file = Path.GetFullPath(local);
        }
        if (file is not null)
        {
            builder.AddJsonFile(file, optional: false, reloadOnChange: false);
            sources.Add(file);
        }
        builder.AddEnvironmentVariables();
        sources.Add("environment");

        var explicitValues = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        if (overrides.Brokers is not null) explicitValues[$"{KafkaOptions.SectionName}:BootstrapServers"] = overrides.Brokers;
        if (overrides.Redis is not null) explicitValues[$"{RedisConnectionOptions.SectionName}:Configuration"] = overrides.Redis;
        if (overrides.Prefix is not null)
        {
            if (string.IsNullOrWhiteSpace(overrides.Prefix)) throw new UsageException("--prefix must not be empty");
            explicitValues[$"{StateStoreOptions.SectionName}:Prefix"] = overrides.Prefix;
        }
        if (explicitValues.Count > 0)
        {
            builder.AddInMemoryCollection(explicitValues);
            sources.Add("options");
        }

        IConfiguration configuration;
        try
        {
            configuration = builder.Build();
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or System.Text.Json.JsonException)
        {
            // The provider's message is generic ("Failed to load configuration from file"); the innermost one has the line.
            throw new UsageException($"configuration file '{file}' is not valid JSON: {Innermost(e)}");
        }
        return new StreamingConfiguration(configuration, string.Join(" + ", sources));
    }

    /// <summary>Every section bound and validated (what serve, demo, bootstrap and stats need).</summary>
    public StreamingSettings Settings()
    {
        try
        {
            return StreamingSettings.Bind(Configuration);
        }
        catch (StreamingConfigurationException e)
        {
            throw Invalid(e.Message);
        }
    }

    /// <summary>
    /// Only the Kafka section (what a producer such as <c>replay</c> needs: it runs without a guard section), plus the
    /// guard section when one is configured, so that replay can check its events against the deployment's catalog.
    /// </summary>
    public (KafkaOptions Kafka, GuardOptions? Guard) KafkaAndOptionalGuard()
    {
        var errors = new List<string>();
        var kafka = OptionsBinding.Bind<KafkaOptions>(Configuration, KafkaOptions.SectionName, errors);
        kafka.Validate(errors);
        GuardOptions? guard = null;
        var guardSection = Configuration.GetSection(GuardOptions.SectionName);
        if (guardSection.Exists())
        {
            guard = OptionsBinding.Bind<GuardOptions>(Configuration, GuardOptions.SectionName, errors);
            // A partial guard section (e.g. only attributes) is fine here: only what is given is checked.
            if (guard.Attributes.Count > 0)
            {
                try { guard.Catalog(); }
                catch (ArgumentException e) { errors.Add($"{GuardOptions.SectionName}:Attributes: {e.Message}"); }
            }
            if (guard.Dimension < 0 || guard.Dimension > 4096)
                errors.Add($"{GuardOptions.SectionName}:Dimension must be in 1..4096, got {guard.Dimension}");
        }
        if (errors.Count > 0) throw Invalid(string.Join(Environment.NewLine, errors));
        return (kafka, guard);
    }

    /// <summary>
    /// The state-store options (prefix from <c>AttrCloak:Redis:Prefix</c>, dimension and catalog from the guard section).
    /// <paramref name="needsTombstoneSecret"/>: writers must use the deployment's secret (a bootstrap with another key
    /// would not see existing tombstones); read-only maintenance (stats) never touches tombstones and runs without it.
    /// </summary>
    public StateStoreOptions StoreOptions(StreamingSettings settings, bool needsTombstoneSecret)
    {
        try
        {
            return settings.StateStoreOptions(Configuration, allowEphemeralSecret: !needsTombstoneSecret);
        }
        catch (StreamingConfigurationException e)
        {
            throw Invalid(e.Message);
        }
    }

    /// <summary>The Redis configuration string, or a message saying how to give one.</summary>
    public static string RequireRedis(StreamingSettings settings) =>
        string.IsNullOrWhiteSpace(settings.Redis.Configuration)
            ? throw new UsageException(
                $"no Redis configured: give --redis host:port, set {RedisConnectionOptions.SectionName}:Configuration in appsettings.json, or the environment variable AttrCloak__Redis__Configuration")
            : settings.Redis.Configuration;

    private UsageException Invalid(string problems)
    {
        var lines = problems.Split(["\r\n", "\n"], StringSplitOptions.RemoveEmptyEntries);
        // One `error:` line for the user; several problems follow it indented, all at once rather than one per run.
        var text = new StringBuilder($"invalid configuration ({Sources}): ");
        if (lines.Length == 1) text.Append(lines[0]);
        else foreach (var line in lines) text.Append(Environment.NewLine).Append("  - ").Append(line);
        return new UsageException(text.ToString());
    }

    private static string Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e.Message;
    }
}
