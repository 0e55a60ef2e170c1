using AttrCloak.Core.Data;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Monitoring;
using Prometheus;

namespace AttrCloak.Streaming.Tests.Monitoring;

public sealed class ShadowAuditorTests
{
    private static readonly AttributeSpec[] Catalog = [new("gender", ["F", "M"]), new("age", ["young", "middle", "old"])];

    /// <summary>Users whose embedding carries their gender in dimension 0 (when leaky) and nothing about age.</summary>
    private static ServedSample Sample(bool leaky, int users = 300)
    {
        var random = new Random(42);
        var sample = new ServedSample(users, dimension: 4, attributes: 2, hashKey: 1);
        for (var u = 0; u < users; u++)
        {
            var gender = u % 2;
            var x = new float[4];
            for (var j = 0; j < 4; j++) x[j] = (float)(random.NextDouble() * 2 - 1);
            if (leaky) x[0] += gender == 1 ? 1.5f : -1.5f;
            sample.OnServed($"u{u}", "m1", x, [gender, u % 3]);
        }
        return sample;
    }

    private static ShadowAuditor Auditor(ServedSample sample, WorkerMetrics metrics) =>
        new(sample, Catalog, 4, new AuditOptions { Attackers = ["lr"], Folds = 3, Interval = TimeSpan.FromMinutes(5) }, metrics);

    [Fact]
    public void Sees_leakage_and_exports_it()
    {
        var metrics = new WorkerMetrics();
        var report = Auditor(Sample(leaky: true), metrics).RunOnce(cancellationToken: TestContext.Current.CancellationToken).ShouldNotBeNull();
        var gender = report.Attributes.Single(a => a.Name == "gender");
        gender.WorstBalancedAccuracy.ShouldBeGreaterThan(0.85);
        metrics.AuditWorstAdvantage.WithLabels("gender").Value.ShouldBeGreaterThan(0.35);
        // The alert's gauge is the headline in both directions, for every attribute.
        foreach (var a in report.Attributes)
            metrics.AuditWorstAdvantage.WithLabels(a.Name).Value.ShouldBe(a.MaxAbsAdvantage);
        metrics.AuditBalancedAccuracy.WithLabels("gender", "lr").Value.ShouldBeGreaterThan(0.85);
        metrics.AuditAuc.WithLabels("gender", "lr").Value.ShouldBeGreaterThan(0.9);
        metrics.AuditChance.WithLabels("age").Value.ShouldBe(1.0 / 3, 1e-12);
        metrics.AuditRuns.WithLabels("success").Value.ShouldBe(1);
        metrics.AuditLastSuccess.Value.ShouldBeGreaterThan(0);
    }

    [Fact]
    public void Reports_near_chance_when_nothing_leaks()
    {
        var metrics = new WorkerMetrics();
        var report = Auditor(Sample(leaky: false), metrics).RunOnce(cancellationToken: TestContext.Current.CancellationToken).ShouldNotBeNull();
        foreach (var attribute in report.Attributes)
            (attribute.WorstBalancedAccuracy - attribute.Chance).ShouldBeLessThan(0.12, attribute.Name);
    }

    [Fact]
    public void Skips_when_classes_are_too_small_and_when_nothing_changed()
    {
        var metrics = new WorkerMetrics();
        var tiny = new ServedSample(10, 4, 2);
        tiny.OnServed("a", "m1", [0, 0, 0, 0], [0, -1]);
        tiny.OnServed("b", "m1", [1, 1, 1, 1], [1, -1]);
        Auditor(tiny, metrics).RunOnce(cancellationToken: TestContext.Current.CancellationToken).ShouldBeNull();
        metrics.AuditRuns.WithLabels("skipped").Value.ShouldBe(1);

        var auditor = Auditor(Sample(leaky: true), metrics);
        auditor.RunOnce(onlyIfChanged: true, TestContext.Current.CancellationToken).ShouldNotBeNull();
        auditor.RunOnce(onlyIfChanged: true, TestContext.Current.CancellationToken).ShouldBeNull();
    }

    [Fact]
    public async Task Audit_age_is_exported_at_scrape_time()
    {
        var metrics = new WorkerMetrics();
        using var stream = new MemoryStream();
        await metrics.Registry.CollectAndExportAsTextAsync(stream, TestContext.Current.CancellationToken);
        var text = System.Text.Encoding.UTF8.GetString(stream.ToArray());
        text.ShouldContain("attrcloak_audit_age_seconds");
        metrics.AuditAge.Value.ShouldBeGreaterThanOrEqualTo(0);
    }
}
