using System.ComponentModel;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using AttrCloak.Cli.Streaming;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Kafka;
using AttrCloak.Tools.Kafka;
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

    [CommandOption("--topics <LIST>")]
    [Description("Topics to create at start, comma-separated, each optionally with its partition count (name:partitions), e.g. attrcloak.embeddings,attrcloak.privacy-requests:8. Subscribing does not create topics: a worker started before its topics exist waits.")]
    public string? Topics { get; init; }

    [CommandOption("--config <FILE>")]
    [Description("Create the four topics of a deployment's configuration (AttrCloak:Kafka: EmbeddingsTopic, PrivacyRequestsTopic, CloakedTopic, DeadLetterTopic; environment variables AttrCloak__Kafka__... override the file).")]
    public string? Config { get; init; }

    [CommandOption("--partitions <N>")]
    [Description("Partitions of each created topic that names none (default 4, as topics created on first use get).")]
    [DefaultValue(4)]
    public int Partitions { get; init; } = 4;

    public override ValidationResult Validate()
    {
        if (Port is < 0 or > 65535) return ValidationResult.Error($"--port must be in 0..65535, got {Port}");
        if (Partitions is < 1 or > 1000) return ValidationResult.Error($"--partitions must be in 1..1000, got {Partitions}");
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
        // Checked before anything listens: a wrong --topics or --config is one error line.
        var topics = TopicsToCreate(settings);
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
            foreach (var (topic, partitions) in topics)
            {
                try { broker.CreateTopic(topic, partitions); }
                catch (InvalidOperationException e) { throw new UsageException(e.Message); }
            }
            if (topics.Count > 0)
                Console.Out.WriteLine($"created topics: {string.Join(", ", topics.Select(t => $"{t.Topic} ({t.Partitions} partitions)"))}");
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            // SIGTERM (docker stop, kill) ends it as cleanly as Ctrl+C.
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
            // One line a script can parse (tests do): the address is its last word.
            Console.Out.WriteLine($"mock Kafka broker listening on {broker.BootstrapServers}");
            Console.Out.Flush();
            AnsiConsole.MarkupLine("[grey]in memory only: topics, offsets and groups are gone when it stops; other topics are created with 4 partitions when a producer first names them (subscribing does not create them); Ctrl+C stops it[/]");
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

    /// <summary>The topics of --config and --topics (a name given twice keeps the --topics partition count).</summary>
    internal static List<(string Topic, int Partitions)> TopicsToCreate(KafkaMockSettings settings)
    {
        var topics = new List<(string Topic, int Partitions)>();
        void Add(string topic, int partitions)
        {
            var at = topics.FindIndex(t => t.Topic == topic);
            if (at >= 0) topics[at] = (topic, partitions);
            else topics.Add((topic, partitions));
        }
        if (settings.Config is not null)
        {
            var (kafka, _) = StreamingConfiguration.Load(new StreamingOverrides(settings.Config)).KafkaAndOptionalGuard();
            foreach (var (_, topic) in kafka.Topics()) Add(topic, settings.Partitions);
        }
        if (settings.Topics is not null)
        {
            foreach (var item in settings.Topics.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var colon = item.LastIndexOf(':');
                var name = colon < 0 ? item : item[..colon];
                var partitions = settings.Partitions;
                if (colon >= 0 && !(int.TryParse(item[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out partitions) && partitions is >= 1 and <= 1000))
                    throw new UsageException($"--topics: '{item}' must be name or name:partitions with 1..1000 partitions");
                if (!KafkaOptions.IsValidTopicName(name)) throw new UsageException($"--topics: '{name}' is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249)");
                Add(name, partitions);
            }
            if (topics.Count == 0) throw new UsageException("--topics names no topic");
        }
        return topics;
    }
}
