using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace AttrCloak.Streaming.Hosting;

/// <summary>
/// What readiness depends on: each component (Kafka assignment, state store, ...) reports whether it works now.
/// Components register a probe; the worker is ready when every probe says so.
/// </summary>
public sealed class GuardReadiness
{
    private readonly List<(string Name, Func<(bool Ready, string Detail)> Probe, bool Decides)> _probes = [];
    private readonly Lock _lock = new();
    private ILogger? _logger;
    private string? _lastState;

    /// <summary>Adds a component; <paramref name="probe"/> must be cheap and thread-safe (it runs on every /healthz/ready).</summary>
    public void Add(string name, Func<(bool Ready, string Detail)> probe) => Add(name, probe, decides: true);

    /// <summary>
    /// Adds a component that is reported but does not decide readiness (e.g. the shadow audit: a failing audit does not
    /// stop the guard from cloaking, but the operator must see it): "ok: ..." or "failing: ...".
    /// </summary>
    public void AddDetail(string name, Func<(bool Healthy, string Detail)> probe) => Add(name, probe, decides: false);

    private void Add(string name, Func<(bool Ready, string Detail)> probe, bool decides)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(probe);
        lock (_lock) _probes.Add((name, probe, decides));
    }

    /// <summary>
    /// Logs readiness when it CHANGES (not at every probe: a not-ready worker is probed every few seconds, and a line
    /// per probe buried the log): which components turned ready or not ready, and why.
    /// </summary>
    public void LogChangesTo(ILogger logger) => _logger = logger;

    /// <summary>Every component's state; ready when all deciding ones are (and at least one is registered).</summary>
    public (bool Ready, IReadOnlyDictionary<string, string> Components) Check()
    {
        (string Name, Func<(bool Ready, string Detail)> Probe, bool Decides)[] probes;
        lock (_lock) probes = [.. _probes];
        var components = new Dictionary<string, string>(StringComparer.Ordinal);
        var state = new System.Text.StringBuilder();
        var ready = probes.Any(p => p.Decides);
        foreach (var (name, probe, decides) in probes)
        {
            bool ok;
            string detail;
            try { (ok, detail) = probe(); }
            catch (Exception e) { (ok, detail) = (false, $"probe failed: {e.GetType().Name}"); }
            components[name] = (decides ? (ok ? "ready: " : "not ready: ") : (ok ? "ok: " : "failing: ")) + detail;
            if (decides) ready &= ok;
            // What counts as a change: a component's verdict, and the reason while it is not ready/failing (the
            // details of a healthy component carry counts that move all the time).
            state.Append(name).Append(ok ? "+" : "-").Append(ok ? "" : detail).Append('|');
        }
        LogIfChanged(ready, components, state.ToString());
        return (ready, components);
    }

    private void LogIfChanged(bool ready, Dictionary<string, string> components, string state)
    {
        if (_logger is not { } logger) return;
        lock (_lock)
        {
            if (state == _lastState) return;
            var first = _lastState is null;
            _lastState = state;
            if (first && ready) return; // nothing to say: ready from the first probe on
        }
        var text = string.Join("; ", components.Select(p => $"{p.Key}: {p.Value}"));
        if (ready) logger.LogInformation("Readiness: READY ({Components})", text);
        else logger.LogWarning("Readiness: NOT READY ({Components}); logged again when this changes", text);
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
