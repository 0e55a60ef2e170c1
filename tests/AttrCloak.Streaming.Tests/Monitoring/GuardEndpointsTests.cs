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
}
