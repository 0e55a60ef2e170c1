using System.ComponentModel;
using System.Diagnostics;
using AttrCloak.Cli.Streaming;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Poisoning;
using Spectre.Console;
using Spectre.Console.Cli;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.Statistics;
using AttrCloak.Streaming.Generations;

namespace AttrCloak.Cli.Commands.Streaming;

/// <summary>Options of the commands that work on the deployment's Redis state store.</summary>
public class StoreCommandSettings : CommandSettings
{
    [CommandOption("--config <FILE>")]
    [Description("Configuration file in the appsettings.json layout (default: ./appsettings.json when present). Environment variables AttrCloak__Section__Key override it; the options below override both.")]
    public string? Config { get; init; }

    [CommandOption("--redis <CONFIG>")]
    [Description("Redis to use, e.g. localhost:6379 (overrides AttrCloak:Redis:Configuration).")]
    public string? Redis { get; init; }

    [CommandOption("--prefix <PREFIX>")]
    [Description("Key prefix of the deployment in Redis (overrides AttrCloak:Redis:Prefix; default attrcloak).")]
    public string? Prefix { get; init; }

    public StreamingOverrides Overrides(string? brokers = null) => new(Config, brokers, Redis, Prefix);
}

public sealed class StatsSettings : StoreCommandSettings
{
    [CommandOption("--attempts <N>")]
    [Description("Passes to try when a running worker changes the statistics during the scan (default 5); pause the worker on a busy deployment.")]
    [DefaultValue(5)]
    public int Attempts { get; init; } = 5;

    [CommandOption("--model-version <NAME>")]
    [Description("Only this model generation (default: every live generation; `attrcloak generations list` names them).")]
    public string? ModelVersion { get; init; }

    [CommandOption("--reseat")]
    [Description("rebuild: also have the workers seat the generation again (its served states recomputed from the stored originals by batch AttrCloak-DF, then republished), even when the statistics agreed; done anyway when they differed.")]
    public bool Reseat { get; init; }

    public override ValidationResult Validate() =>
        Attempts is < 1 or > 100 ? ValidationResult.Error($"--attempts must be in 1..100, got {Attempts}") : ValidationResult.Success();
}

/// <summary>`attrcloak stats verify`: recomputes each generation's class statistics from its user states and compares.</summary>
public sealed class StatsVerifyCommand : StreamingCommand<StatsSettings>
{
    protected override Task<int> RunAsync(StatsSettings s, CancellationToken cancellationToken) =>
        StatsRunner.RunAsync(s, rebuild: false, cancellationToken);
}

/// <summary>
/// `attrcloak stats rebuild`: replaces each generation's class statistics with their recomputation from its user states;
/// when they differed (or with --reseat) the workers then seat the generation again, so that the served states that
/// were cloaked against the wrong statistics are recomputed from the originals and republished (a sweep).
/// </summary>
public sealed class StatsRebuildCommand : StreamingCommand<StatsSettings>
{
    protected override Task<int> RunAsync(StatsSettings s, CancellationToken cancellationToken) =>
        StatsRunner.RunAsync(s, rebuild: true, cancellationToken);
}

internal static class StatsRunner
{
    public static async Task<int> RunAsync(StatsSettings s, bool rebuild, CancellationToken cancellationToken)
    {
        var configuration = StreamingConfiguration.Load(s.Overrides());
        var settings = configuration.Settings();
        // The verifier reads user states and statistics only; tombstones (the only use of the secret) are not touched.
        var options = configuration.StoreOptions(settings, needsTombstoneSecret: false);
        await using var redis = await RedisConnector.ConnectAsync(StreamingConfiguration.RequireRedis(settings), configure: settings.Redis.ApplyTrust);
        using var deployment = new RedisGenerationStore(redis, options);
        // A mistyped prefix would otherwise verify as "consistent, 0 users".
        var registry = await deployment.ReadRegistryAsync(cancellationToken);
        if (registry.Version == 0)
            throw new UsageException(
                $"Redis prefix '{options.Prefix}' holds no streaming-guard data (no model generation in '{options.Prefix}:generations'): check --prefix or AttrCloak:Redis:Prefix; the worker or `attrcloak bootstrap` creates it");
        var targets = s.ModelVersion is { } only
            ? [registry.Find(only) is { Live: true } g ? g : throw new UsageException($"no live model generation '{only}' under prefix '{options.Prefix}' (live: {string.Join(", ", registry.Live.Select(x => x.ModelVersion))})")]
            : registry.Live.ToList();
        var exit = 0;
        foreach (var generation in targets)
            exit = Math.Max(exit, await RunOneAsync(s, rebuild, redis, deployment, generation, settings.Input, cancellationToken));
        return exit;
    }

    private static async Task<int> RunOneAsync(StatsSettings s, bool rebuild, StackExchange.Redis.IConnectionMultiplexer redis, RedisGenerationStore deployment,
        Generation generation, InputOptions input, CancellationToken cancellationToken)
    {
        var options = deployment.GenerationOptions(generation.ModelVersion);
        // A generation of another layout (dimension, catalog) would be compared slot by slot against the wrong classes.
        await deployment.StoreOf(generation.ModelVersion).StatisticsSequenceAsync(cancellationToken);
        var verifier = new StatisticsVerifier(redis, options);
        var clock = Stopwatch.StartNew();
        StatisticsVerificationReport report;
        try
        {
            report = rebuild
                ? await verifier.RebuildAsync(s.Attempts, cancellationToken)
                : await verifier.VerifyAsync(s.Attempts, cancellationToken);
        }
        catch (InvalidOperationException e) when (e.Message.Contains("pause the worker", StringComparison.Ordinal))
        {
            throw new UsageException(e.Message); // a worker kept writing during every pass
        }
        catch (InvalidDataException e)
        {
            throw new UsageException($"{e.Message}; inspect or delete that user's key, then run `attrcloak stats rebuild`");
        }

        AnsiConsole.MarkupLineInterpolated(
            $"model generation [blue]{generation.ModelVersion}[/] ({generation.StateLabel}, keys under {options.Prefix}): {report.UsersScanned} users scanned, statistics version {report.Version}, {clock.Elapsed.TotalSeconds:F2} s{(report.Attempts > 1 ? $", {report.Attempts} passes (a writer was active)" : "")}");
        AnsiConsole.Write(StatisticsReportTable.Build(report, rebuild));
        var bad = report.Inconsistent.Count();
        // Served states against their band (docs/threat-model.md), with the maps of the statistics as they are now.
        var store = deployment.StoreOf(generation.ModelVersion);
        IUserCloaker? maps = null;
        if (bad == 0 || rebuild)
            maps = new TransportCloakerFactory().Build(await store.ReadStatisticsAsync(cancellationToken)); // unreadable statistics have no maps
        var band = await ServedBandCheck.RunAsync(store.ScanStatesAsync(cancellationToken), generation, input, maps, cancellationToken);
        ServedBandRendering.Write(band);
        if (rebuild)
        {
            AnsiConsole.WriteLine(bad == 0
                ? $"rebuilt: every class already agreed with the user states; the statistics were rewritten from {report.UsersScanned} users (version {report.Version})"
                : $"rebuilt: {bad} of {report.Classes.Count} class statistics differed and now hold the recomputation from {report.UsersScanned} users (version {report.Version})");
            if (bad > 0 || s.Reseat || band.ServedOutliers.Count > 0 || band.MapsOutOfBand)
            {
                // Served states cloaked against wrong or poisoned statistics are wrong too: seat again from the originals.
                await deployment.UpdateRegistryAsync(r => r.WithSeatRequested(generation.ModelVersion), cancellationToken);
                AnsiConsole.WriteLine(
                    $"re-seating asked: a worker recomputes the served states of '{generation.ModelVersion}' from the stored originals (batch AttrCloak-DF) and the workers republish them (attrcloak_generation_seat_epoch, attrcloak_sweep_pending_users)");
            }
            return 0;
        }
        if (bad == 0)
            AnsiConsole.MarkupLineInterpolated($"[green]consistent[/]: all {report.Classes.Count} class statistics (served and original embeddings) agree with the {report.UsersScanned} user states");
        else
            AnsiConsole.MarkupLineInterpolated(
                $"[red]inconsistent[/]: {bad} of {report.Classes.Count} class statistics (served and original embeddings) differ from the user states; `attrcloak stats rebuild` repairs them (pause the worker first on a busy deployment)");
        return bad == 0 && band.Healthy ? 0 : 1;
    }
}

/// <summary>Prints a <see cref="ServedBandReport"/>: one line when healthy, the outliers (at most 10 of each kind) otherwise.</summary>
internal static class ServedBandRendering
{
    private const int Listed = 10;

    public static void Write(ServedBandReport band)
    {
        var cap = double.IsPositiveInfinity(band.Cap) ? "none (never seated)" : band.Cap.ToString("G3");
        if (band.Healthy)
        {
            AnsiConsole.MarkupLineInterpolated(
                $"[green]in band[/]: every served embedding of the {band.Users} users lies within the displacement cap ({cap}) of its original, every stored original inside the input domain; the current maps move {band.MapsBeyondCap} users beyond the cap");
            return;
        }
        List(band.ServedOutliers, "served outside the band (re-cloaked by `attrcloak stats rebuild`)");
        List(band.DomainOutliers, "with a stored original outside the input domain (accepted before the domain was learned; `attrcloak stats rebuild --reseat` recomputes everyone's cloak, forgetting them removes them)");
        if (band.MapsOutOfBand)
            AnsiConsole.MarkupLineInterpolated(
                $"[red]maps out of band[/]: the current maps would move {band.MapsBeyondCap} of {band.Users} users beyond the cap ({cap}): poisoned statistics or a drifted model; `attrcloak stats rebuild` re-seats the generation");
    }

    private static void List(IReadOnlyList<BandOutlier> outliers, string what)
    {
        if (outliers.Count == 0) return;
        AnsiConsole.MarkupLineInterpolated($"[red]{outliers.Count} users {what}[/]:");
        foreach (var o in outliers.Take(Listed))
            AnsiConsole.Write(new Text($"  {o.UserId}: {o.Why}\n"));
        if (outliers.Count > Listed) AnsiConsole.WriteLine($"  ... and {outliers.Count - Listed} more");
    }
}

/// <summary>One row per (attribute, class) of a verification report; the report decides which rows there are.</summary>
internal static class StatisticsReportTable
{
    public static Table Build(StatisticsVerificationReport report, bool rebuilt)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title(rebuilt ? "class statistics before the rebuild vs recomputed from user states" : "class statistics vs recomputed from user states");
        foreach (var c in new[] { "population", "attribute", "class", "stored n", "recomputed n", "count diff", "max |dS|", "max |dM|", "tolerance", "status" })
            table.AddColumn(c);
        foreach (var row in report.Classes)
        {
            // Names as plain Text: configured names are data, not markup (nor emoji codes).
            table.AddRow(
                new Text(row.Population == StatisticsPopulation.Served ? "served" : "original"),
                new Text(row.Attribute),
                new Text($"{row.ClassIndex} ({row.ClassName})"),
                new Text(row.Malformed ? "malformed" : row.StoredCount.ToString()),
                new Text(row.RecomputedCount.ToString()),
                new Text(row.Malformed || row.CountDifference == long.MaxValue ? "-" : row.CountDifference.ToString("+0;-0;0")),
                new Text(Number(row.MaxAbsSumDifference)),
                new Text(Number(row.MaxAbsCoMomentDifference)),
                new Text(Number(row.Tolerance)),
                new Markup(row.IsConsistent ? "[green]ok[/]" : rebuilt ? "[yellow]repaired[/]" : "[red]DIFFERS[/]"));
        }
        return table;
    }

    private static string Number(double x) => double.IsPositiveInfinity(x) ? "inf" : x == 0 ? "0" : x.ToString("G3");
}
