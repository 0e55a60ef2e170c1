using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Monitoring;
using AttrCloak.Streaming.Pipeline;
using AttrCloak.Streaming.Redis.Generations;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

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

    /// <summary>The base address of the HTTP endpoints once started, e.g. <c>http://127.0.0.1:8080</c>.</summary>
    public string? Address => App.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();

    /// <summary>
    /// Builds (does not start) the host. <paramref name="httpPort"/>: the port of the endpoints on all interfaces
    /// (0 = a free port on 127.0.0.1, for the demo and tests). <paramref name="configureLogging"/> replaces the default
    /// console logging.
    /// </summary>
    public static GuardHost Build(
        StreamingSettings settings,
        IGenerationStore store,
        IUserCloakerFactory cloakerFactory,
        int httpPort,
        Action<ILoggingBuilder>? configureLogging = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(httpPort == 0 ? "http://127.0.0.1:0" : $"http://0.0.0.0:{httpPort}");
        builder.Logging.ClearProviders();
        if (configureLogging is not null) configureLogging(builder.Logging);
        else builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        // Kestrel and hosting chatter is not what an operator reads the worker's log for.
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);

        var metrics = new WorkerMetrics();
        var specs = settings.Guard.AttributeSpecs();
        var sample = new ServedSample(settings.Audit.SampleSize, settings.Guard.Dimension, specs.Count);
        builder.Services.AddPrivacyGuard(settings, store, cloakerFactory, sample, metrics);
        builder.Services.AddSingleton(sp => new ShadowAuditor(sample, specs, settings.Guard.Dimension, settings.Audit, metrics,
            sp.GetRequiredService<ILogger<ShadowAuditor>>(), seed: store.ScanServingAsync));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ShadowAuditor>());

        var readiness = new GuardReadiness();
        builder.Services.AddGuardHealthChecks(readiness);
        var app = builder.Build();
        app.MapGuardEndpoints(metrics.Registry);

        var status = app.Services.GetRequiredService<PipelineStatus>();
        readiness.Add("kafka", () => (status.GroupJoined && status.KafkaUp,
            !status.KafkaUp ? "no broker reachable; reconnecting (brokers running? address, credentials?)"
            : status.GroupJoined ? "joined the consumer group" : "waiting for the consumer group (brokers reachable? topics exist?)"));
        readiness.Add("store", () => (status.StoreInitialized && status.StoreHealthy,
            !status.StoreInitialized ? "not initialised yet" : status.StoreHealthy ? "reachable" : "failing; retrying with backoff"));
        readiness.Add("pipeline", () => (status.Running, status.Running ? "running" : "stopped"));
        return new GuardHost(app, metrics, app.Services.GetRequiredService<ShadowAuditor>(), sample, status);
    }

    public Task StartAsync(CancellationToken cancellationToken = default) => App.StartAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken = default) => App.StopAsync(cancellationToken);

    public ValueTask DisposeAsync() => App.DisposeAsync();
}
