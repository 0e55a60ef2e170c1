using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Pipeline;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace AttrCloak.Streaming.Tests.Pipeline;

public sealed class HostingTests(RedisServerFixture redis, MockKafkaFixture kafka) : IClassFixture<MockKafkaFixture>
{
    [Fact]
    public async Task AddPrivacyGuard_hosts_the_worker_which_becomes_ready_serves_and_stops_gracefully()
    {
        using var h = new GuardHarness(redis, kafka, "host");
        h.Produce(GuardHarness.Update("hosted-user", 1, GuardHarness.Embedding(1)));
        h.Flush();
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddPrivacyGuard(h.Settings, h.NewStore(), h.Factory);
        using var host = builder.Build();
        var worker = host.Services.GetRequiredService<PrivacyGuardWorker>();
        host.Services.GetRequiredService<PipelineStatus>().ShouldBeSameAs(worker.Pipeline.Status);
        await host.StartAsync(TestContext.Current.CancellationToken);
        Wait.Until(() => worker.Ready, GuardHarness.Deadline, "the hosted worker to become ready");
        Wait.Until(() => worker.Pipeline.ProcessedEvents == 1, GuardHarness.Deadline, "the event handled");
        await host.StopAsync(TestContext.Current.CancellationToken);
        worker.Ready.ShouldBeFalse();
        worker.Pipeline.Status.Running.ShouldBeFalse();
    }

    [Fact]
    public void AddPrivacyGuard_without_brokers_says_what_to_do()
    {
        using var h = new GuardHarness(redis, kafka, "nobrokers");
        var settings = h.Settings with { Kafka = new KafkaOptions() };
        Should.Throw<StreamingConfigurationException>(() => new ServiceCollection().AddPrivacyGuard(settings, h.NewStore(), h.Factory))
            .Message.ShouldContain("BootstrapServers is empty");
    }
}
