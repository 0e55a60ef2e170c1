using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Prometheus;

namespace AttrCloak.Streaming.Hosting;

/// <summary>
/// What readiness depends on: each component (Kafka assignment, state store, ...) reports whether it works now.
/// Components register a probe; the worker is ready when every probe says so.
/// </summary>
public sealed class GuardReadiness
{
    private readonly List<(string Name, Func<(bool Ready, string Detail)> Probe)> _probes = [];
    private readonly Lock _lock = new();

    /// <summary>Adds a component; <paramref name="probe"/> must be cheap and thread-safe (it runs on every /healthz/ready).</summary>
    public void Add(string name, Func<(bool Ready, string Detail)> probe)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(probe);
        lock (_lock) _probes.Add((name, probe));
    }

    /// <summary>Every component's state; ready when all are (and at least one is registered).</summary>
    public (bool Ready, IReadOnlyDictionary<string, string> Components) Check()
    {
        (string Name, Func<(bool Ready, string Detail)> Probe)[] probes;
        lock (_lock) probes = [.. _probes];
        var components = new Dictionary<string, string>(StringComparer.Ordinal);
        var ready = probes.Length > 0;
        foreach (var (name, probe) in probes)
        {
            bool ok;
            string detail;
            try { (ok, detail) = probe(); }
            catch (Exception e) { (ok, detail) = (false, $"probe failed: {e.GetType().Name}"); }
            components[name] = (ok ? "ready: " : "not ready: ") + detail;
            ready &= ok;
        }
        return (ready, components);
    }
}

/// <summary>The readiness health check (ASP.NET Core health checks) over <see cref="GuardReadiness"/>.</summary>
internal sealed class GuardReadinessCheck(GuardReadiness readiness) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var (ready, components) = readiness.Check();
        var data = components.ToDictionary(p => p.Key, p => (object)p.Value);
        return Task.FromResult(ready
            ? HealthCheckResult.Healthy("ready", data)
            : HealthCheckResult.Unhealthy("not ready", data: data));
    }
}

/// <summary>The worker's HTTP surface: <c>/metrics</c> (Prometheus), <c>/healthz/live</c>, <c>/healthz/ready</c>.</summary>
public static class GuardEndpoints
{
    public const string MetricsPath = "/metrics";
    public const string LivePath = "/healthz/live";
    public const string ReadyPath = "/healthz/ready";
    private const string ReadyTag = "ready";

    /// <summary>Registers the health checks: liveness has none (answering is enough), readiness is <see cref="GuardReadiness"/>.</summary>
    public static IServiceCollection AddGuardHealthChecks(this IServiceCollection services, GuardReadiness readiness)
    {
        services.AddSingleton(readiness);
        services.AddHealthChecks().AddCheck<GuardReadinessCheck>("guard", tags: [ReadyTag]);
        return services;
    }

    /// <summary>Maps the three endpoints. Readiness answers 503 with every component's state in JSON when not ready.</summary>
    public static IEndpointRouteBuilder MapGuardEndpoints(this IEndpointRouteBuilder endpoints, CollectorRegistry registry)
    {
        endpoints.MapMetrics(MetricsPath, registry);
        // Liveness: the process answers HTTP. A stalled stream is readiness' and the alerts' business; restarting a
        // worker because Kafka or Redis is down would not help.
        endpoints.MapHealthChecks(LivePath, new HealthCheckOptions { Predicate = _ => false });
        endpoints.MapHealthChecks(ReadyPath, new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(ReadyTag),
            ResponseWriter = WriteReadiness,
        });
        return endpoints;
    }

    private static Task WriteReadiness(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        var body = new
        {
            status = report.Status == HealthStatus.Healthy ? "ready" : "not_ready",
            components = report.Entries.SelectMany(e => e.Value.Data).ToDictionary(p => p.Key, p => p.Value?.ToString()),
        };
        return context.Response.WriteAsync(System.Text.Json.JsonSerializer.Serialize(body));
    }
}
