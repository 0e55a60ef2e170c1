using System.ComponentModel;
using AttrCloak.Cli.Rendering;
using AttrCloak.Cli.Streaming;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Tools.Replay;
using Spectre.Console;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Commands.Streaming;

public sealed class ReplaySettings : PopulationSettings
{
    [CommandOption("--config <FILE>")]
    [Description("Configuration file in the appsettings.json layout (default: ./appsettings.json when present): AttrCloak:Kafka gives brokers and topics; AttrCloak:Guard, when present, the dimension and catalog the events must fit. Environment variables AttrCloak__Section__Key override it; options override both.")]
    public string? Config { get; init; }

    [CommandOption("--brokers <LIST>")]
    [Description("Kafka bootstrap servers, e.g. localhost:9092 (overrides AttrCloak:Kafka:BootstrapServers).")]
    public string? Brokers { get; init; }

    [CommandOption("--rate <EVENTS_PER_S>")]
    [Description("Target events per second over both topics (0 = as fast as Kafka takes them).")]
    [DefaultValue(0.0)]
    public double Rate { get; init; }

    [CommandOption("--repeat <N>")]
    [Description("Passes over the users; each pass gives every user a higher version.")]
    [DefaultValue(1)]
    public int Repeat { get; init; } = 1;

    [CommandOption("--shuffle")]
    [Description("Random user order in every pass (seeded by --seed); default: the data set's user order.")]
    public bool Shuffle { get; init; }

    [CommandOption("--seed <S>")]
    [Description("Seed of --shuffle, of the privacy requests drawn and of --after-bootstrap.")]
    [DefaultValue(1)]
    public int Seed { get; init; } = 1;

    [CommandOption("--binary")]
    [Description("Encode embedding updates with the compact binary encoding (content-type application/vnd.attrcloak.embedding+binary) instead of JSON.")]
    public bool Binary { get; init; }

    [CommandOption("--no-attributes")]
    [Description("Do not attach the users' attribute values to their updates (by default they are attached).")]
    public bool NoAttributes { get; init; }

    [CommandOption("--forget-fraction <F>")]
    [Description("Chance per user and pass of a `forget` request after the update (privacy-requests topic).")]
    [DefaultValue(0.0)]
    public double ForgetFraction { get; init; }

    [CommandOption("--opt-out-fraction <F>")]
    [Description("Chance per user and pass of an `opt_out` request after the update.")]
    [DefaultValue(0.0)]
    public double OptOutFraction { get; init; }

    [CommandOption("--update-attributes-fraction <F>")]
    [Description("Chance per user and pass of an `update_attributes` request moving one attribute to another class.")]
    [DefaultValue(0.0)]
    public double UpdateAttributesFraction { get; init; }

    [CommandOption("--first-version <V>")]
    [Description("Version of every user's first event (default 1: above a bootstrap's version 0).")]
    [DefaultValue(1L)]
    public long FirstVersion { get; init; } = 1;

    [CommandOption("--after-bootstrap <F>")]
    [Description("Skip the users that `attrcloak bootstrap --fraction F --seed S` (same data set, same --seed) wrote: stream only the rest.")]
    public double? AfterBootstrap { get; init; }

    public override ValidationResult Validate()
    {
        if (!(Rate >= 0) || double.IsInfinity(Rate)) return ValidationResult.Error($"--rate must be >= 0 events/s, got {Rate}");
        if (Repeat is < 1 or > 1_000_000) return ValidationResult.Error($"--repeat must be in 1..1000000, got {Repeat}");
        if (FirstVersion < 0) return ValidationResult.Error($"--first-version must be >= 0, got {FirstVersion}");
        foreach (var (name, f) in new[] { ("--forget-fraction", ForgetFraction), ("--opt-out-fraction", OptOutFraction), ("--update-attributes-fraction", UpdateAttributesFraction) })
            if (!(f is >= 0 and <= 1)) return ValidationResult.Error($"{name} must be in 0..1, got {f}");
        if (AfterBootstrap is { } b && !(b is > 0 and < 1)) return ValidationResult.Error($"--after-bootstrap must be in (0, 1), got {b}");
        return ValidationResult.Success();
    }
}

/// <summary>
/// `attrcloak replay`: produces a data set's embeddings as embedding-update events (and, optionally, privacy requests)
/// into any Kafka, keyed by user id: for load tests, for the quality experiment, and for users wiring their systems up.
/// </summary>
public sealed class ReplayCommand : StreamingCommand<ReplaySettings>
{
    protected override async Task<int> RunAsync(ReplaySettings s, CancellationToken cancellationToken)
    {
        var configuration = StreamingConfiguration.Load(new StreamingOverrides(s.Config, s.Brokers));
        var (kafka, guard) = configuration.KafkaAndOptionalGuard();
        using var producer = ProducerConnector.Connect(kafka,
            "no Kafka brokers configured: give --brokers host:port, set AttrCloak:Kafka:BootstrapServers in appsettings.json, or the environment variable AttrCloak__Kafka__BootstrapServers");

        var configuredDimension = guard is { Dimension: > 0 } ? guard.Dimension : (int?)null;
        // With a configured catalog, attach exactly its attributes (the worker rejects others); otherwise the data set's.
        CatalogMapping? mapping = null;
        var population = Population.Load(s, configuredDimension,
            data => mapping = guard is { Attributes.Count: > 0 } ? CatalogMapping.Create(data, guard.Attributes) : CatalogMapping.Identity(data),
            cancellationToken);
        var data = population.Data;
        if (configuredDimension is { } d && population.Embeddings.Cols != d)
            throw new UsageException($"the embeddings have {population.Embeddings.Cols} dimensions but AttrCloak:Guard:Dimension is {d}; the worker would dead-letter every update");
        ArgumentNullException.ThrowIfNull(mapping);

        IEnumerable<int> indices = Enumerable.Range(0, data.UserCount);
        if (s.AfterBootstrap is { } fraction)
        {
            var bootstrapped = UserSample.Draw(data.UserCount, fraction, s.Seed).ToHashSet();
            indices = indices.Where(u => !bootstrapped.Contains(u));
        }
        var users = indices.Select(u => new ReplayUser(data.UserIds[u], population.Embeddings.Row(u).ToArray(), mapping.AttributesOf(u))).ToArray();
        if (users.Length == 0) throw new UsageException("no users to replay");

        var options = new ReplayOptions
        {
            Passes = s.Repeat,
            Shuffle = s.Shuffle,
            Seed = s.Seed,
            FirstVersion = s.FirstVersion,
            ModelVersion = population.ModelVersion,
            Binary = s.Binary,
            WithAttributes = !s.NoAttributes,
            ForgetFraction = s.ForgetFraction,
            OptOutFraction = s.OptOutFraction,
            UpdateAttributesFraction = s.UpdateAttributesFraction,
            AttributeClasses = Enumerable.Range(0, mapping.AttributeNames.Count).ToDictionary(a => mapping.AttributeNames[a], a => mapping.ClassNames[a], StringComparer.Ordinal),
        };
        IEnumerable<ReplayMessage> events;
        try
        {
            events = EventReplay.Generate(users, options);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"cannot replay this population: {e.Message}");
        }

        var counts = new long[Enum.GetValues<ReplayEventKind>().Length];
        long lastVersion = 0;
        var messages = events.Select(m =>
        {
            counts[(int)m.Kind]++;
            lastVersion = Math.Max(lastVersion, m.Event.Version);
            return new OutboundMessage(m.IsPrivacyRequest ? kafka.PrivacyRequestsTopic : kafka.EmbeddingsTopic, m.Key, m.Value, m.ContentType, m.Event.SchemaName);
        });
        var updates = EventReplay.UpdateCount(users.Length, options);
        var expected = updates * (1 + s.ForgetFraction + s.OptOutFraction + s.UpdateAttributesFraction);
        AnsiConsole.MarkupLineInterpolated(
            $"replaying {users.Length} users ({population.Description}) x {s.Repeat} pass(es) into [blue]{kafka.BootstrapServers}[/]: updates -> {kafka.EmbeddingsTopic}{(expected > updates ? $", requests -> {kafka.PrivacyRequestsTopic}" : "")}, run id {options.RunId}");

        ProduceSummary summary;
        try
        {
            summary = await LiveStatus.RunAsync($"producing ~{expected:F0} events{(s.Rate > 0 ? $" at {s.Rate:G4}/s" : "")}", expected, progress =>
                producer.ProduceAsync(messages, s.Rate, new InlineProgress<ProduceProgress>(p => progress.Report(new LiveUpdate(p.Produced,
                    $"{(p.Flushing ? "flushing: " : "")}produced {p.Produced}, acknowledged {p.Acked}, failed {p.Failed}, {p.AckedPerSecond:F0} events/s"))),
                    cancellationToken: cancellationToken));
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"cannot encode an event: {e.Message}"); // e.g. a user id the contract does not allow
        }

        Render(s, kafka, counts, lastVersion, summary);

        if (summary.Failed > 0)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]{summary.Failed} events were not acknowledged[/]: {string.Join("; ", summary.FailureReasons.Select(p => $"{p.Key} x{p.Value}"))}");
            return 1;
        }
        if (summary.Cancelled)
        {
            AnsiConsole.MarkupLine("[yellow]cancelled[/]: the events produced so far were acknowledged");
            return 130;
        }
        return 0;
    }

    private static void Render(ReplaySettings s, KafkaOptions kafka, long[] counts, long lastVersion, ProduceSummary summary)
    {
        var table = new Table().Border(TableBorder.Rounded).HideHeaders().Title("replay");
        table.AddColumn("");
        table.AddColumn("");
        table.AddRow("embedding updates", $"{counts[(int)ReplayEventKind.EmbeddingUpdate]} ({(s.Binary ? "binary" : "JSON")}{(s.NoAttributes ? "" : ", with attributes")}) -> {Markup.Escape(kafka.EmbeddingsTopic)}");
        foreach (var (kind, name) in new[] { (ReplayEventKind.UpdateAttributes, "update_attributes"), (ReplayEventKind.OptOut, "opt_out"), (ReplayEventKind.Forget, "forget") })
            if (counts[(int)kind] > 0) table.AddRow(name, $"{counts[(int)kind]} -> {Markup.Escape(kafka.PrivacyRequestsTopic)}");
        table.AddRow("versions", $"{s.FirstVersion}..{lastVersion}");
        table.AddRow("acknowledged", $"{summary.Acked} of {summary.Produced}");
        table.AddRow("failed", summary.Failed == 0 ? "0" : $"[red]{summary.Failed}[/]");
        table.AddRow("time", $"{summary.Elapsed.TotalSeconds:F2} s ({summary.AckedPerSecond:F0} events/s acknowledged{(s.Rate > 0 ? $", target {s.Rate:G4}/s" : "")})");
        AnsiConsole.Write(table);
    }
}
