using System.ComponentModel;
using System.Diagnostics;
using AttrCloak.Cli.Experiments;
using AttrCloak.Cli.Rendering;
using AttrCloak.Cli.Streaming;
using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;
using AttrCloak.Tools.Replay;
using Spectre.Console;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Commands.Streaming;

public sealed class BootstrapSettings : PopulationSettings
{
    [CommandOption("--config <FILE>")]
    [Description("Configuration file in the appsettings.json layout (default: ./appsettings.json when present); AttrCloak:Guard gives the dimension and the protected attributes, AttrCloak:Redis the store. Environment variables AttrCloak__Section__Key override it; options override both.")]
    public string? Config { get; init; }

    [CommandOption("--redis <CONFIG>")]
    [Description("Redis to seed, e.g. localhost:6379 (overrides AttrCloak:Redis:Configuration).")]
    public string? Redis { get; init; }

    [CommandOption("--prefix <PREFIX>")]
    [Description("Key prefix of the deployment (overrides AttrCloak:Redis:Prefix).")]
    public string? Prefix { get; init; }

    [CommandOption("--fraction <F>")]
    [Description("Bootstrap only this random part of the users (0 < F <= 1, drawn with --seed); the rest is left for streaming (`attrcloak replay --after-bootstrap F --seed S` streams exactly them).")]
    [DefaultValue(1.0)]
    public double Fraction { get; init; } = 1.0;

    [CommandOption("--seed <S>")]
    [Description("Seed of the --fraction draw.")]
    [DefaultValue(1)]
    public int Seed { get; init; } = 1;

    [CommandOption("--version <V>")]
    [Description("Version of every bootstrapped user's state; streamed events need a higher one (replay starts at 1).")]
    [DefaultValue(0L)]
    public long Version { get; init; }

    [CommandOption("--force")]
    [Description("Write into a prefix that already holds users or statistics (they stay; users already at a version >= --version are left as they are). The generation's users are published again: the workers sweep it (and --publish publishes the users this bootstrap wrote, now or before).")]
    public bool Force { get; init; }

    [CommandOption("--batch-size <N>")]
    [Description("Users per atomic store write (default 512).")]
    [DefaultValue(512)]
    public int BatchSize { get; init; } = 512;

    [CommandOption("--privacy-target <EPS>")]
    [Description("Cloak the drawn users to a privacy target instead of with the DF preset at full strength: the largest |balanced accuracy - chance| per attribute, reached in a closed loop on shadow audits of these users (as `cloak --privacy-target`); the stream's maps follow the strengths it chose.")]
    public double? PrivacyTarget { get; init; }

    [CommandOption("--utility-floor <F>")]
    [Description("With --privacy-target: never go below this validation NDCG@10 ratio of the drawn users, with one standard error to spare (needs the backbone's items: --model without --embeddings, or a backbone trained on the fly).")]
    public double? UtilityFloor { get; init; }

    [CommandOption("--publish")]
    [Description("Also produce the written users' cloaked embeddings to the serving topic (AttrCloak:Kafka:CloakedTopic), keyed by user id.")]
    public bool Publish { get; init; }

    [CommandOption("--brokers <LIST>")]
    [Description("With --publish: Kafka bootstrap servers (overrides AttrCloak:Kafka:BootstrapServers).")]
    public string? Brokers { get; init; }

    public override ValidationResult Validate()
    {
        if (!(Fraction is > 0 and <= 1)) return ValidationResult.Error($"--fraction must be in (0, 1], got {Fraction}");
        if (Version < 0) return ValidationResult.Error($"--version must be >= 0, got {Version}");
        if (BatchSize is < 1 or > 10_000) return ValidationResult.Error($"--batch-size must be in 1..10000, got {BatchSize}");
        if (Brokers is not null && !Publish) return ValidationResult.Error("--brokers is only used with --publish");
        if (PrivacyTarget is { } eps && !(eps is > 0 and < 1)) return ValidationResult.Error($"--privacy-target must be in (0, 1), got {eps}");
        if (UtilityFloor is { } floor && !(floor is > 0 and <= 1)) return ValidationResult.Error($"--utility-floor must be in (0, 1], got {floor}");
        if (UtilityFloor is not null && PrivacyTarget is null) return ValidationResult.Error("--utility-floor is only used with --privacy-target");
        return ValidationResult.Success();
    }
}

/// <summary>
/// `attrcloak bootstrap`: cold start of the streaming guard. Cloaks an initial population in batch with AttrCloak-DF
/// (the CLI's DF preset, or to a privacy target: <see cref="BootstrapCloak"/>; against the deployment's protected
/// attributes) and seeds the Redis state store with every
/// user's original and cloaked embedding and classes, so that the class statistics the worker re-cloaks against start
/// from a full batch run instead of from nothing.
/// </summary>
public sealed class BootstrapCommand : StreamingCommand<BootstrapSettings>
{
    protected override async Task<int> RunAsync(BootstrapSettings s, CancellationToken cancellationToken)
    {
        var total = Stopwatch.StartNew();
        // Everything cheap is checked before the batch run: configuration, Redis, the prefix, Kafka.
        var configuration = StreamingConfiguration.Load(new StreamingOverrides(s.Config, s.Brokers, s.Redis, s.Prefix));
        var settings = configuration.Settings();
        var storeOptions = configuration.StoreOptions(settings, needsTombstoneSecret: true);
        await using var redis = await RedisConnector.ConnectAsync(StreamingConfiguration.RequireRedis(settings), configure: settings.Redis.ApplyTrust);
        using var generations = new RedisGenerationStore(redis, storeOptions);
        var registry = await generations.ReadRegistryAsync(cancellationToken); // refuses a prefix of an earlier format
        using var publisher = s.Publish
            ? ProducerConnector.Connect(settings.Kafka, "--publish needs Kafka: give --brokers host:port or set AttrCloak:Kafka:BootstrapServers")
            : null;

        CatalogMapping? mapping = null;
        var population = Population.Load(s, settings.Guard.Dimension, data => mapping = CatalogMapping.Create(data, settings.Guard.Attributes), cancellationToken);
        var store = generations.StoreOf(population.ModelVersion);
        await CheckTargetAsync(s, store, registry.Find(population.ModelVersion), population, settings.Guard.Dimension, storeOptions.Prefix, cancellationToken);
        var data = population.Data;
        ArgumentNullException.ThrowIfNull(mapping);
        var chosen = UserSample.Draw(data.UserCount, s.Fraction, s.Seed);
        var loadSeconds = total.Elapsed.TotalSeconds;
        AnsiConsole.MarkupLineInterpolated(
            $"bootstrapping [blue]{chosen.Count}[/] of {data.UserCount} users ({population.Description}) into Redis prefix [blue]{storeOptions.Prefix}[/], protecting {string.Join(", ", mapping.AttributeNames)}");

        // The batch run: AttrCloak-DF over the chosen users only (they are the served population).
        var catalog = mapping.AttributeNames.Select((name, a) => new AttributeSpec(name, mapping.ClassNames[a])).ToArray();
        var seedPopulation = SeedPopulation.Of(chosen.Select(u => data.UserIds[u]).ToArray(), population.Embeddings.SelectRows(chosen), chosen.Select(mapping.ClassesOf).ToArray());
        try { PopulationSeeder.CheckAttributes(seedPopulation, catalog); }
        catch (ArgumentException e) { throw new UsageException($"{e.Message} among the {chosen.Count} users drawn; raise --fraction"); }
        var cloakClock = Stopwatch.StartNew();
        var cloaked = BootstrapCloak.Run(s, population, chosen, seedPopulation, catalog, cancellationToken);
        var cloakSeconds = cloakClock.Elapsed.TotalSeconds;

        // Seed the generation: one atomic write per batch, deterministic event ids (a re-run is a no-op: Duplicate),
        // then the generation is seated and serves; the workers' sweep publishes its users.
        var writeClock = Stopwatch.StartNew();
        SeedResult seeded = null!;
        await LiveStatus.RunAsync($"writing {chosen.Count} users to Redis", chosen.Count, async progress =>
        {
            seeded = await PopulationSeeder.WriteAsync(generations, population.ModelVersion, seedPopulation, PopulationSeeder.Rows(cloaked), s.Version, s.BatchSize,
                new InlineProgress<int>(done => progress.Report(new LiveUpdate(done, $"wrote {done}/{chosen.Count} users ({done / Math.Max(writeClock.Elapsed.TotalSeconds, 1e-9):F0} users/s)"))),
                cancellationToken);
            return 0;
        });
        var writeSeconds = writeClock.Elapsed.TotalSeconds;
        var applied = seeded.Applied;
        var outcomes = Enum.GetValues<ApplyOutcome>().Select(o => seeded.Outcomes[o]).ToArray();
        var rejections = seeded.Rejections;
        // The workers publish the generation's users in a sweep. A forced re-run that wrote nothing new leaves the
        // generation as it was, so no sweep would follow: ask for one, so that every user of it is published again
        // (e.g. run again after the serving topic lost them; issue 12: such a re-run published nothing).
        var generation = s.Force ? await PopulationSeeder.ResweepUnchangedAsync(generations, population.ModelVersion, seeded, cancellationToken) : seeded.Generation;

        double publishSeconds = 0;
        ProduceSummary? published = null;
        if (publisher is not null)
        {
            var publishClock = Stopwatch.StartNew();
            // The users whose stored state is this bootstrap's (written now, or by an earlier run: a --force re-run
            // publishes them again), as the store holds them; users the stream has moved on from are left out.
            published = await BootstrapPublishing.PublishAsync(publisher, settings.Kafka.CloakedTopic, store, seedPopulation.UserIds, s.Version,
                population.ModelVersion, mapping.AttributeNames.ToArray(), s.BatchSize, cancellationToken);
            publishSeconds = publishClock.Elapsed.TotalSeconds;
        }

        // What the store now holds, per class, beside what this run wrote.
        var snapshot = await store.ReadStatisticsAsync(cancellationToken);
        RenderClasses(mapping, chosen, applied, snapshot);
        RenderSummary(new BootstrapFigures(outcomes, rejections, population.ModelVersion, generation, snapshot.Version, loadSeconds, cloakSeconds,
            writeSeconds, s.BatchSize, published, publishSeconds, total.Elapsed.TotalSeconds));

        if (outcomes[(int)ApplyOutcome.Rejected] > 0 || published is { Failed: > 0 })
        {
            if (published is { Failed: > 0 })
                AnsiConsole.MarkupLineInterpolated($"[red]{published.Failed} cloaked embeddings were not acknowledged[/]: {string.Join("; ", published.FailureReasons.Select(p => $"{p.Key} x{p.Value}"))}");
            return 1;
        }
        AnsiConsole.MarkupLineInterpolated($"check the store with `attrcloak stats verify{(s.Config is null ? "" : $" --config {s.Config}")} --prefix {storeOptions.Prefix}`");
        return 0;
    }

    /// <summary>
    /// Refuses a generation of another dimension or catalog, one that already holds users (unless --force: two
    /// populations would mix in the class statistics), and embeddings of another dimension than the configured one.
    /// </summary>
    private static async Task CheckTargetAsync(BootstrapSettings s, IStateStore store, Generation? existing, Population population, int dimension, string prefix,
        CancellationToken cancellationToken)
    {
        await store.ReadStatisticsAsync(cancellationToken); // refuses a generation of another dimension or catalog
        if (existing is { Live: true } && await store.CountUsersAsync(cancellationToken) > 0 && !s.Force)
            throw new UsageException(
                $"model generation '{population.ModelVersion}' under Redis prefix '{prefix}' already holds {await store.CountUsersAsync(cancellationToken)} users ({existing.StateLabel}); " +
                "bootstrapping into it would mix two populations in the class statistics the worker cloaks against. " +
                "Use another --model-version (a new generation), another --prefix, or pass --force to add these users anyway");
        if (population.Embeddings.Cols != dimension)
            throw new UsageException($"the embeddings have {population.Embeddings.Cols} dimensions but AttrCloak:Guard:Dimension is {dimension}");
    }

    private static void RenderClasses(CatalogMapping mapping, IReadOnlyList<int> chosen, bool[] applied, StatisticsSnapshot snapshot)
    {
        var table = new Table().Border(TableBorder.Rounded).Title("users per class");
        foreach (var c in new[] { "attribute", "class", "bootstrapped now", "in the store's statistics" }) table.AddColumn(c);
        for (var a = 0; a < mapping.AttributeNames.Count; a++)
        {
            var stats = snapshot[mapping.AttributeNames[a]];
            for (var k = 0; k < mapping.ClassNames[a].Count; k++)
            {
                var written = Enumerable.Range(0, chosen.Count).Count(row => applied[row] && mapping.Labels[a][chosen[row]] == k);
                table.AddRow(Markup.Escape(mapping.AttributeNames[a]), Markup.Escape($"{k} ({mapping.ClassNames[a][k]})"), written.ToString(), stats.Counts[k].ToString());
            }
            var unknown = chosen.Count(u => mapping.Labels[a][u] < 0);
            if (unknown > 0) table.AddRow(Markup.Escape(mapping.AttributeNames[a]), "unknown", unknown.ToString(), "-");
        }
        AnsiConsole.Write(table);
    }

    /// <summary>What a bootstrap did and how long each part took, for its summary table.</summary>
    private sealed record BootstrapFigures(long[] Outcomes, IReadOnlyDictionary<string, long> Rejections, string ModelVersion, Generation Generation,
        StatisticsVersion StatisticsVersion, double LoadSeconds, double CloakSeconds, double WriteSeconds, int BatchSize, ProduceSummary? Published, double PublishSeconds,
        double TotalSeconds);

    private static void RenderSummary(BootstrapFigures f)
    {
        var outcomes = f.Outcomes;
        var summary = new Table().Border(TableBorder.Rounded).HideHeaders().Title("bootstrap");
        summary.AddColumn("");
        summary.AddColumn("");
        summary.AddRow("users written (applied)", outcomes[(int)ApplyOutcome.Applied].ToString());
        if (outcomes[(int)ApplyOutcome.Duplicate] > 0) summary.AddRow("already bootstrapped (duplicate)", outcomes[(int)ApplyOutcome.Duplicate].ToString());
        if (outcomes[(int)ApplyOutcome.Stale] > 0) summary.AddRow("left alone (store has a newer version)", outcomes[(int)ApplyOutcome.Stale].ToString());
        if (outcomes[(int)ApplyOutcome.Rejected] > 0)
            summary.AddRow("[red]rejected[/]", Markup.Escape($"{outcomes[(int)ApplyOutcome.Rejected]}: {string.Join("; ", f.Rejections.Select(p => $"{p.Key} ({p.Value})"))}"));
        summary.AddRow("model generation", Markup.Escape($"{f.ModelVersion}: {f.Generation.StateLabel}, seat epoch {f.Generation.SeatEpoch}, sweep epoch {f.Generation.SweepEpoch} (the workers publish its users)"));
        summary.AddRow("statistics version", f.StatisticsVersion.ToString());
        summary.AddRow("load, checks (and training)", $"{f.LoadSeconds:F2} s");
        summary.AddRow(MethodNames.Df, $"{f.CloakSeconds:F2} s");
        summary.AddRow("Redis writes", $"{f.WriteSeconds:F2} s ({outcomes.Sum() / Math.Max(f.WriteSeconds, 1e-9):F0} users/s, batches of {f.BatchSize})");
        if (f.Published is not null)
            summary.AddRow("published", $"{f.Published.Acked} acknowledged, {f.Published.Failed} failed, {f.PublishSeconds:F2} s");
        summary.AddRow("total", $"{f.TotalSeconds:F2} s");
        AnsiConsole.Write(summary);
    }
}

/// <summary>The random part of a population a bootstrap takes; replay uses the same draw to stream the rest.</summary>
public static class UserSample
{
    /// <summary>round(fraction x n) (at least 1) user indices drawn with <paramref name="seed"/>, ascending.</summary>
    public static IReadOnlyList<int> Draw(int users, double fraction, int seed)
    {
        var count = Math.Clamp((int)Math.Round(fraction * users), 1, users);
        if (count == users) return Enumerable.Range(0, users).ToArray();
        var order = Enumerable.Range(0, users).ToArray();
        new Random(seed).Shuffle(order);
        var chosen = order[..count];
        Array.Sort(chosen);
        return chosen;
    }
}
