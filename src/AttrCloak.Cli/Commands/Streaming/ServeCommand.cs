using System.ComponentModel;
using AttrCloak.Cli.Streaming;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Kafka;
using Microsoft.Extensions.Hosting;
using Spectre.Console;
using Spectre.Console.Cli;
using AttrCloak.Streaming.Redis;

namespace AttrCloak.Cli.Commands.Streaming;

public sealed class ServeSettings : StoreCommandSettings
{
    [CommandOption("--brokers <LIST>")]
    [Description("Kafka bootstrap servers, host:port,... (overrides AttrCloak:Kafka:BootstrapServers).")]
    public string? Brokers { get; init; }

    [CommandOption("--port <PORT>")]
    [Description("Port of /metrics, /healthz/live and /healthz/ready (overrides the HttpPort of the Guard section; default 8080).")]
    public int? Port { get; init; }

    public override ValidationResult Validate() =>
        Port is < 0 or > 65535 ? ValidationResult.Error($"--port must be in 0..65535, got {Port}") : ValidationResult.Success();
}

/// <summary>
/// `attrcloak serve`: the privacy guard as a long-running worker against a real Kafka and Redis, configured by
/// appsettings.json and environment variables; stops cleanly on Ctrl+C or SIGTERM (offsets of acknowledged work are
/// committed, the consumer leaves its group).
/// </summary>
public sealed class ServeCommand : StreamingCommand<ServeSettings>
{
    protected override async Task<int> RunAsync(ServeSettings s, CancellationToken cancellationToken)
    {
        var configuration = StreamingConfiguration.Load(s.Overrides(s.Brokers));
        var settings = configuration.Settings();
        if (string.IsNullOrWhiteSpace(settings.Kafka.BootstrapServers))
            throw new UsageException(
                $"no Kafka brokers configured: give --brokers host:port, set {KafkaOptions.SectionName}:BootstrapServers, or AttrCloak__Kafka__BootstrapServers (`attrcloak demo` runs everything on one machine without Kafka)");
        var storeOptions = configuration.StoreOptions(settings, needsTombstoneSecret: true);
        KafkaClients.CheckConfiguration(settings.Kafka); // a client setting librdkafka refuses: one line now, not a crash later
        // Fail fast while disconnected: a Redis outage turns readiness off and starts the backoff at once.
        await using var redis = await RedisConnector.ConnectAsync(StreamingConfiguration.RequireRedis(settings), configure: settings.Redis.ApplyTrust, failFastWhileDisconnected: true);
        await using var host = GuardHost.Build(settings, services => services.AddRedisGenerationStore(redis, storeOptions), new TransportCloakerFactory(),
            s.Port ?? settings.Guard.HttpPort, configuration: configuration.Configuration);
        await host.StartAsync(cancellationToken);
        AnsiConsole.MarkupLineInterpolated(
            $"privacy guard serving; endpoints at [blue]{host.Address}[/] (/metrics, /healthz/live, /healthz/ready); consumer group {settings.Kafka.ConsumerGroup}{(host.GroupInstanceId is { } id ? $" as static member {id}" : "")}; Ctrl+C stops it (within {settings.Guard.ShutdownTimeout.TotalSeconds:F0} s)");
        try
        {
            await host.App.WaitForShutdownAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        await host.StopAsync(CancellationToken.None);
        if (host.Failure is { } failure)
            throw new UsageException($"the privacy guard stopped: {failure.Message}");
        return 0;
    }
}
