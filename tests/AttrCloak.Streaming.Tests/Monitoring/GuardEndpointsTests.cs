using System.Net;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Monitoring;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AttrCloak.Streaming.Tests.Monitoring;

public sealed class GuardEndpointsTests
{
    [Fact]
    public async Task Serves_metrics_liveness_and_readiness_over_http()
    {
        var ct = TestContext.Current.CancellationToken;
        var metrics = new WorkerMetrics();
        metrics.AuditWorstAdvantage.WithLabels("gender").Set(0.07);
        var storeUp = false;
        var readiness = new GuardReadiness();
        readiness.Add("store", () => (storeUp, storeUp ? "reachable" : "connection refused"));
        readiness.Add("kafka", () => (true, "4 partitions assigned"));

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddGuardHealthChecks(readiness);
        await using var app = builder.Build();
        app.MapGuardEndpoints(metrics.Registry);
        await app.StartAsync(ct);
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        using var http = new HttpClient { BaseAddress = new Uri(address) };

        var text = await http.GetStringAsync(GuardEndpoints.MetricsPath, ct);
        text.ShouldContain("attrcloak_audit_worst_advantage{attribute=\"gender\"} 0.07");
        text.ShouldContain("attrcloak_dead_letters_total{reason=\"wrong_dimension\"} 0");
        text.ShouldContain("attrcloak_audit_age_seconds");

        (await http.GetAsync(GuardEndpoints.LivePath, ct)).StatusCode.ShouldBe(HttpStatusCode.OK);

        var notReady = await http.GetAsync(GuardEndpoints.ReadyPath, ct);
        notReady.StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable);
        var body = await notReady.Content.ReadAsStringAsync(ct);
        body.ShouldContain("not ready: connection refused");
        body.ShouldContain("not_ready");

        storeUp = true;
        var ready = await http.GetAsync(GuardEndpoints.ReadyPath, ct);
        ready.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await ready.Content.ReadAsStringAsync(ct)).ShouldContain("\"status\":\"ready\"");
        await app.StopAsync(ct);
    }

    [Fact]
    public void Readiness_logs_when_it_changes_not_at_every_probe_and_details_do_not_decide_it()
    {
        var log = new ListLogger();
        var storeUp = false;
        var held = 4;
        var auditError = (string?)null;
        var readiness = new GuardReadiness();
        readiness.Add("store", () => (storeUp, storeUp ? "reachable" : "connection refused"));
        readiness.Add("kafka", () => (true, $"holds {held} of 8 input partitions"));
        readiness.AddDetail("audit", () => (auditError is null, auditError ?? "latest audit at 10:00"));
        readiness.LogChangesTo(log);

        for (var probe = 0; probe < 50; probe++) readiness.Check().Ready.ShouldBeFalse();
        log.Lines.Count.ShouldBe(1, "one line while nothing changes, however often it is probed");
        log.Lines[0].ShouldContain("NOT READY");
        log.Lines[0].ShouldContain("store: not ready: connection refused");

        storeUp = true;
        for (var probe = 0; probe < 50; probe++)
        {
            held = probe % 8; // a ready component's detail moves all the time: no new line for that
            readiness.Check().Ready.ShouldBeTrue();
        }
        log.Lines.Count.ShouldBe(2);
        log.Lines[1].ShouldContain("READY");

        // A failing detail is reported (and logged once) but leaves the worker ready.
        auditError = "attacker 'lr' is listed twice";
        var (ready, components) = readiness.Check();
        ready.ShouldBeTrue();
        components["audit"].ShouldBe("failing: attacker 'lr' is listed twice");
        readiness.Check();
        log.Lines.Count.ShouldBe(3);
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Lines { get; } = [];
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add(formatter(state, exception));
    }
}
