using System.ComponentModel;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using AttrCloak.Streaming.Kafka;
using Spectre.Console;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Commands.Streaming;

public sealed class KafkaMockSettings : CommandSettings
{
    [CommandOption("--port <PORT>")]
    [Description("Port to listen on and advertise (default 9092; 0 picks a free one).")]
    [DefaultValue(9092)]
    public int Port { get; init; } = 9092;

    [CommandOption("--host <ADDRESS>")]
    [Description("Local address to listen on and advertise (default 127.0.0.1).")]
    [DefaultValue("127.0.0.1")]
    public string Host { get; init; } = "127.0.0.1";

    public override ValidationResult Validate()
    {
        if (Port is < 0 or > 65535) return ValidationResult.Error($"--port must be in 0..65535, got {Port}");
        if (Host != "localhost" && !System.Net.IPAddress.TryParse(Host, out _))
            return ValidationResult.Error($"--host must be a local IP address (e.g. 127.0.0.1), got '{Host}'");
        return ValidationResult.Success();
    }
}

/// <summary>
/// `attrcloak kafka-mock`: librdkafka's in-memory mock Kafka broker on a fixed address, in its own process, for local
/// runs (`serve --brokers`, kcat) and fault tests (end it, start another on the same port). Runs until Ctrl+C or
/// SIGTERM; everything it holds is lost when it ends.
/// </summary>
public sealed class KafkaMockCommand : AsyncCommand<KafkaMockSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, KafkaMockSettings settings, CancellationToken cancellationToken)
    {
        MockKafkaBroker broker;
        try
        {
            broker = MockKafkaBroker.Start(settings.Port, settings.Host);
        }
        catch (SocketException e)
        {
            throw new UsageException($"cannot listen on {settings.Host}:{settings.Port}: {e.Message}");
        }
        await using (broker)
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            // SIGTERM (docker stop, kill) ends it as cleanly as Ctrl+C.
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
            // One line a script can parse (tests do): the address is its last word.
            Console.Out.WriteLine($"mock Kafka broker listening on {broker.BootstrapServers}");
            Console.Out.Flush();
            AnsiConsole.MarkupLine("[grey]in memory only: topics, offsets and groups are gone when it stops; topics are created with 4 partitions on first use; Ctrl+C stops it[/]");
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
            }
        }
        AnsiConsole.MarkupLine("mock Kafka broker stopped");
        return 0;
    }
}
