using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Monitoring;
using AttrCloak.Streaming.Pipeline;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using AttrCloak.Streaming.Generations;

namespace AttrCloak.Streaming.Hosting;

/// <summary>
/// The whole privacy guard as one web host: the consume-apply-publish worker, the shadow auditor on its served
/// sample, and the HTTP endpoints (/metrics, /healthz/live, /healthz/ready). Used by <c>attrcloak serve</c> and
/// <c>attrcloak demo</c>.
/// </summary>
public sealed class GuardHost : IAsyncDisposable
{
    private GuardHost(WebApplication app, WorkerMetrics metrics, ShadowAuditor auditor, ServedSample sample, PipelineStatus status)
    {
        App = app;
        Metrics = metrics;
        Auditor = auditor;
        Sample = sample;
        Status = status;
    }

    public WebApplication App { get; }
    public WorkerMetrics Metrics { get; }
    public ShadowAuditor Auditor { get; }
    public ServedSample Sample { get; }
    public PipelineStatus Status { get; }

    /// <summary>The error that stopped the privacy guard (it cannot be retried), or null while it runs or after a clean stop.</summary>
    public Exception? Failure => App.Services.GetRequiredService<PrivacyGuardWorker>().Failure;

    /// <summary>The static group membership id in use (<c>group.instance.id</c>), or null for dynamic membership.</summary>
    public string? GroupInstanceId { get; private init; }

    /// <summary>The base address of the HTTP endpoints once started, e.g. <c>http://127.0.0.1:8080</c>.</summary>
    public string? Address => App.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();

    /// <summary>
    /// Builds (does not start) the host. <paramref name="httpPort"/>: the port of the endpoints on all interfaces
    /// (0 = a free port on 127.0.0.1, for the demo and tests). <paramref name="configureLogging"/> replaces the default
    /// console logging. <paramref name="configuration"/>: the configuration <paramref name="settings"/> were bound
    /// from (<see cref="StreamingSettings.Bind"/>); when given, the host also registers the option classes from it
    /// (<see cref="StreamingOptionsRegistration.AddStreamingOptions"/>, <c>IOptions&lt;T&gt;</c> for the worker's
    /// services) and validates them when it starts.
    /// </summary>
    public static GuardHost Build(
        StreamingSettings settings,
        IGenerationStore store,
        IUserCloakerFactory cloakerFactory,
        int httpPort,
        Action<ILoggingBuilder>? configureLogging = null,
        IConfiguration? configuration = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        return Build(settings, services => services.AddSingleton(store), cloakerFactory, httpPort, configureLogging, configuration);
    }

    /// <summary>
    /// As above, with the store registered by an adapter (<paramref name="addStore"/>, e.g. the Redis adapter's
    /// <c>services.AddRedisGenerationStore(redis, options)</c>): the composition root names the adapter, the core only
    /// asks for an <see cref="IGenerationStore"/>.
    /// </summary>
    public static GuardHost Build(
        StreamingSettings settings,
        Action<IServiceCollection> addStore,
        IUserCloakerFactory cloakerFactory,
        int httpPort,
        Action<ILoggingBuilder>? configureLogging = null,
        IConfiguration? configuration = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(addStore);
        // Static membership: "auto" becomes {host}-{port}, unique per instance since two instances on one host need two ports.
        var instanceId = settings.Kafka.ResolveGroupInstanceId(httpPort);
        settings = settings with { Kafka = settings.Kafka.WithGroupInstanceId(instanceId) };
        var builder = WebApplication.CreateSlimBuilder();
        if (configuration is not null)
        {
            // The caller's configuration (file, environment, options) is the host's: what was validated is what binds.
            builder.Configuration.Sources.Clear();
            builder.Configuration.AddConfiguration(configuration);
            builder.Services.AddStreamingOptions();
        }
        builder.WebHost.UseUrls(httpPort == 0 ? "http://127.0.0.1:0" : $"http://0.0.0.0:{httpPort}");
        // A stop never takes longer than the guard's budget (the pipeline bounds its own part, GuardPipeline.Run).
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = settings.Guard.ShutdownTimeout);
        builder.Logging.ClearProviders();
        if (configureLogging is not null) configureLogging(builder.Logging);
        else builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        // Kestrel and hosting chatter is not what an operator reads the worker's log for.
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        // The health-check service logs an error per failed probe; readiness logs its changes instead (GuardReadiness).
        builder.Logging.AddFilter("Microsoft.Extensions.Diagnostics.HealthChecks", LogLevel.None);
        // The host repeats a failed background service's exception with its stack trace, twice; the worker logs the
        // failure in one line itself and `serve` ends with it as its error (Failure).
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None);

        var metrics = new WorkerMetrics();
        var specs = settings.Guard.AttributeSpecs();
        var sample = new ServedSample(settings.Audit.SampleSize, settings.Guard.Dimension, specs.Count);
        addStore(builder.Services);
        builder.Services.AddPrivacyGuard(settings, cloakerFactory, sample, metrics);
        builder.Services.AddSingleton(sp => new ShadowAuditor(sample, specs, settings.Guard.Dimension, settings.Audit, metrics,
            sp.GetRequiredService<ILogger<ShadowAuditor>>(), seed: sp.GetRequiredService<IGenerationStore>().ScanServingAsync));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ShadowAuditor>());

        var readiness = new GuardReadiness();
        builder.Services.AddGuardHealthChecks(readiness);
        var app = builder.Build();
        app.MapGuardEndpoints(metrics.Registry);

        var status = app.Services.GetRequiredService<PipelineStatus>();
        var membership = app.Services.GetRequiredService<GuardPipeline>().Membership;
        var group = instanceId is null ? settings.Kafka.ConsumerGroup : $"{settings.Kafka.ConsumerGroup} as static member {instanceId}";
        readiness.Add("kafka", () => (status.GroupJoined && status.KafkaUp,
            !status.KafkaUp ? "no broker reachable; reconnecting (brokers running? address, credentials?)"
            : status.GroupJoined ? $"joined the consumer group {group}{(membership.Describe() is { Length: > 0 } held ? "; " + held : "")}"
            : $"waiting for the consumer group {group} (brokers reachable? topics exist? a rebalance takes up to the session timeout)"));
        readiness.Add("store", () => (status.StoreInitialized && status.StoreHealthy,
            !status.StoreInitialized ? "not initialised yet" : status.StoreHealthy ? "reachable" : "failing; retrying with backoff"));
        readiness.Add("pipeline", () => (status.Running, status.Running ? "running" : "stopped"));
        var auditor = app.Services.GetRequiredService<ShadowAuditor>();
        if (settings.Audit.Interval > TimeSpan.Zero)
            readiness.AddDetail("audit", () => auditor.Failure is { Error: { } error, InARow: var n }
                ? (false, $"{n} audit(s) in a row failed, latest: {error} (attrcloak_audit_failing, worker log)")
                : (true, auditor.Latest is { } latest ? $"latest audit at {latest.At:HH:mm:ss} UTC on {latest.SampleUsers} served users" : "no audit yet"));
        readiness.LogChangesTo(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("AttrCloak.Streaming.Readiness"));
        return new GuardHost(app, metrics, auditor, sample, status) { GroupInstanceId = instanceId };
    }

    public Task StartAsync(CancellationToken cancellationToken = default) => App.StartAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken = default) => App.StopAsync(cancellationToken);

    public ValueTask DisposeAsync() => App.DisposeAsync();
}
