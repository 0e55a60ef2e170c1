using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using AttrCloak.Cli.Streaming;
using Spectre.Console;
using Spectre.Console.Cli;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.Generations;

namespace AttrCloak.Cli.Commands.Streaming;

public sealed class GenerationsListSettings : StoreCommandSettings;

public sealed class GenerationChangeSettings : StoreCommandSettings
{
    [CommandArgument(0, "<MODEL_VERSION>")]
    [Description("The model generation (its model_version; `attrcloak generations list` names them).")]
    public string ModelVersion { get; init; } = "";

    [CommandOption("--wait <SECONDS>")]
    [Description("Wait up to this long for the workers to finish (promoted and swept / retired and deleted); 0 = return at once.")]
    [DefaultValue(0.0)]
    public double Wait { get; init; }

    public override ValidationResult Validate()
    {
        if (string.IsNullOrWhiteSpace(ModelVersion)) return ValidationResult.Error("name the model version");
        return Wait is < 0 or > 86_400 ? ValidationResult.Error($"--wait must be in 0..86400 s, got {Wait}") : ValidationResult.Success();
    }
}

/// <summary>`attrcloak generations list`: the deployment's model generations, their state, users and seatings.</summary>
public sealed class GenerationsListCommand : StreamingCommand<GenerationsListSettings>
{
    protected override async Task<int> RunAsync(GenerationsListSettings s, CancellationToken cancellationToken)
    {
        await using var session = await GenerationsSession.OpenAsync(s, cancellationToken);
        var registry = await session.Store.ReadRegistryAsync(cancellationToken);
        var table = new Table().Border(TableBorder.Rounded).Title($"model generations under prefix {Markup.Escape(session.Prefix)}");
        foreach (var c in new[] { "model version", "state", "users", "seat epoch", "users at last seating", "sweep epoch", "created", "promoted", "notes" }) table.AddColumn(c);
        foreach (var g in registry.Generations.OrderByDescending(g => g.Order))
        {
            var users = g.Live || g.State == GenerationState.Retiring
                ? (await session.Store.StoreOf(g.ModelVersion).CountUsersAsync(cancellationToken)).ToString(CultureInfo.InvariantCulture)
                : "-";
            var notes = new List<string>();
            if (g.PromoteRequested) notes.Add(g.State == GenerationState.Filling ? "promotion asked" : "seating asked");
            if (g.SeatLease is { } lease && g.SeatLeaseUntil > DateTimeOffset.UtcNow) notes.Add($"being seated by {lease}");
            if (g.State == GenerationState.Serving && !g.Seated) notes.Add("cold start: seated once every class has enough users (AttrCloak:Generations:MinClassUsers) or it holds ColdSeatUsers users");
            table.AddRow(new Text(g.ModelVersion), new Text(g.StateLabel), new Text(users), new Text(g.SeatEpoch.ToString(CultureInfo.InvariantCulture)),
                new Text(g.SeatedUsers > 0 ? g.SeatedUsers.ToString(CultureInfo.InvariantCulture) : "-"), new Text(g.SweepEpoch.ToString(CultureInfo.InvariantCulture)), new Text(g.CreatedAt.ToString("u", CultureInfo.InvariantCulture)),
                new Text(g.PromotedAt?.ToString("u", CultureInfo.InvariantCulture) ?? "-"), new Text(string.Join("; ", notes)));
        }
        if (registry.Generations.Count == 0)
            AnsiConsole.MarkupLineInterpolated($"no model generation under prefix [blue]{session.Prefix}[/] yet (the worker creates one on the first embedding update, `attrcloak bootstrap` seeds one)");
        else
            AnsiConsole.Write(table);
        return 0;
    }
}

/// <summary>`attrcloak generations promote`: a filling generation is promoted now (the workers seat it without waiting for the thresholds).</summary>
public sealed class GenerationsPromoteCommand : StreamingCommand<GenerationChangeSettings>
{
    protected override async Task<int> RunAsync(GenerationChangeSettings s, CancellationToken cancellationToken)
    {
        await using var session = await GenerationsSession.OpenAsync(s, cancellationToken);
        var registry = await session.UpdateAsync(r => r.WithPromoteRequested(s.ModelVersion), cancellationToken);
        var g = registry.Find(s.ModelVersion)!;
        if (g.State == GenerationState.Serving)
        {
            AnsiConsole.MarkupLineInterpolated($"generation [blue]{s.ModelVersion}[/] is already the serving one (seat epoch {g.SeatEpoch})");
            return 0;
        }
        AnsiConsole.MarkupLineInterpolated(
            $"promotion of [blue]{s.ModelVersion}[/] asked: a worker seats it (batch AttrCloak-DF over its stored originals) within a few seconds, then the workers publish its users");
        if (s.Wait <= 0) return 0;
        var done = await session.WaitAsync(s.ModelVersion, r => r.Find(s.ModelVersion) is { State: GenerationState.Serving }, "promoted", s.Wait, cancellationToken);
        return done ? 0 : 1;
    }
}

/// <summary>`attrcloak generations retire`: a superseded or filling generation stops being served; its users without a newer embedding get a tombstone; its keys go.</summary>
public sealed class GenerationsRetireCommand : StreamingCommand<GenerationChangeSettings>
{
    protected override async Task<int> RunAsync(GenerationChangeSettings s, CancellationToken cancellationToken)
    {
        await using var session = await GenerationsSession.OpenAsync(s, cancellationToken);
        var registry = await session.UpdateAsync(r => r.WithRetiring(s.ModelVersion, DateTimeOffset.UtcNow), cancellationToken);
        var g = registry.Find(s.ModelVersion)!;
        if (g.State == GenerationState.Retired)
        {
            AnsiConsole.MarkupLineInterpolated($"generation [blue]{s.ModelVersion}[/] is retired already");
            return 0;
        }
        AnsiConsole.MarkupLineInterpolated(
            $"retirement of [blue]{s.ModelVersion}[/] asked: the workers stop writing and serving it, publish a tombstone for its users who have no newer embedding, then delete its keys ({Markup.Escape(session.Store.Describe(s.ModelVersion))}:*)");
        if (s.Wait <= 0) return 0;
        var done = await session.WaitAsync(s.ModelVersion, r => r.Find(s.ModelVersion) is { State: GenerationState.Retired }, "retired", s.Wait, cancellationToken);
        return done ? 0 : 1;
    }
}

/// <summary>A connection to the deployment's generation registry for the `generations` commands.</summary>
internal sealed class GenerationsSession : IAsyncDisposable
{
    private readonly StackExchange.Redis.ConnectionMultiplexer _redis;

    private GenerationsSession(StackExchange.Redis.ConnectionMultiplexer redis, RedisGenerationStore store, string prefix)
    {
        _redis = redis;
        Store = store;
        Prefix = prefix;
    }

    public RedisGenerationStore Store { get; }
    public string Prefix { get; }

    public static async Task<GenerationsSession> OpenAsync(StoreCommandSettings s, CancellationToken cancellationToken)
    {
        var configuration = StreamingConfiguration.Load(s.Overrides());
        var settings = configuration.Settings();
        // Registry reads and writes only: no tombstone is read or written.
        var options = configuration.StoreOptions(settings, needsTombstoneSecret: false);
        var redis = await RedisConnector.ConnectAsync(StreamingConfiguration.RequireRedis(settings), configure: settings.Redis.ApplyTrust);
        var store = new RedisGenerationStore(redis, options);
        await store.ReadRegistryAsync(cancellationToken); // refuses a prefix of an earlier format
        return new GenerationsSession(redis, store, options.Prefix);
    }

    public async Task<GenerationRegistry> UpdateAsync(Func<GenerationRegistry, IReadOnlyList<Generation>> change, CancellationToken cancellationToken)
    {
        try
        {
            return await Store.UpdateRegistryAsync(change, cancellationToken);
        }
        catch (GenerationRuleException e)
        {
            throw new UsageException(e.Message);
        }
    }

    /// <summary>Polls the registry (and the generation's users) until <paramref name="done"/> or the time is up.</summary>
    public async Task<bool> WaitAsync(string modelVersion, Func<GenerationRegistry, bool> done, string what, double seconds, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var registry = await Store.ReadRegistryAsync(cancellationToken);
            if (done(registry))
            {
                AnsiConsole.MarkupLineInterpolated($"generation [blue]{modelVersion}[/] {what} after {clock.Elapsed.TotalSeconds:F1} s");
                return true;
            }
            if (clock.Elapsed.TotalSeconds >= seconds)
            {
                var g = registry.Find(modelVersion);
                AnsiConsole.MarkupLineInterpolated(
                    $"[yellow]not {what} within {seconds:F0} s[/] (state {g?.StateLabel ?? "?"}); is a worker running (`attrcloak serve`)? its log and attrcloak_generation_* metrics say more");
                return false;
            }
            await Task.Delay(500, cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Store.Dispose();
        await _redis.DisposeAsync();
    }
}
