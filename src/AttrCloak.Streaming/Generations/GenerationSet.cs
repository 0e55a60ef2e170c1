using System.Diagnostics;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Monitoring;
using AttrCloak.Streaming.Pipeline;
using AttrCloak.Streaming.Statistics;
using Microsoft.Extensions.Logging;

namespace AttrCloak.Streaming.Generations;

/// <summary>How an embedding update's model version resolved to a generation.</summary>
internal enum Resolution
{
    /// <summary>A live generation (possibly created now).</summary>
    Live,
    /// <summary>A retiring or retired generation: the update is not applied.</summary>
    Retired,
    /// <summary>A new model while <see cref="GenerationOptions.MaxFilling"/> generations fill: dead-lettered.</summary>
    Limit,
}

/// <summary>
/// The consume thread's view of the deployment's generations: the registry (polled every
/// <see cref="GenerationOptions.RegistryPoll"/>, so promotions and retirements by other workers or the CLI arrive within
/// about a second) and a <see cref="GenerationContext"/> per live generation. Creates the generation of a new model
/// version on its first event. When a generation is seated again, its maps are rebuilt from its statistics at once
/// (the sweep re-cloaks users cloaked before). Used by the consume thread only.
/// </summary>
internal sealed class GenerationSet(
    IGenerationStore store,
    IUserCloakerFactory cloakerFactory,
    GuardOptions guard,
    GenerationOptions options,
    WorkerMetrics metrics,
    ILogger logger,
    int userCacheCapacity,
    double rebuildShare,
    Poisoning.InputOptions input,
    TimeProvider? timeProvider = null,
    Action<string, StatisticsVersion>? mapsBuilt = null)
{
    private static readonly TimeSpan UserCountRefresh = TimeSpan.FromSeconds(10);

    private readonly AttributeCatalog _catalog = guard.Catalog();
    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;
    private readonly Dictionary<string, GenerationContext> _contexts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _stateLabels = new(StringComparer.Ordinal);
    private List<GenerationContext> _live = [];
    private List<GenerationContext> _publishOrder = [];
    private long _nextPoll;
    private long _nextUserCount;

    public IGenerationStore Store => store;

    /// <summary>What the store's exceptions mean for the loop.</summary>
    public StoreFaults Faults { get; } = new(store);

    public GenerationOptions Options => options;

    /// <summary>The registry as last read.</summary>
    public GenerationRegistry Registry { get; private set; } = GenerationRegistry.Empty;

    /// <summary>Contexts of the live generations, newest first.</summary>
    public IReadOnlyList<GenerationContext> Live => _live;

    /// <summary>Contexts in <see cref="GenerationRegistry.PublishOrder"/>: where a user's serving record comes from.</summary>
    public IReadOnlyList<GenerationContext> PublishOrder => _publishOrder;

    /// <summary>The registry was empty at start-up: a new deployment (or one whose state is gone).</summary>
    public bool StartedEmpty { get; private set; }

    /// <summary>The context of a live generation, or null.</summary>
    public GenerationContext? Context(string modelVersion) => _contexts.GetValueOrDefault(modelVersion);

    /// <summary>Reads the registry and builds every live generation's maps (start-up, and after the state came back).</summary>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        _contexts.Clear();
        Registry = await store.ReadRegistryAsync(cancellationToken).ConfigureAwait(false);
        StartedEmpty = Registry.Version == 0;
        await SyncAsync(cancellationToken).ConfigureAwait(false);
        _nextPoll = Stopwatch.GetTimestamp() + Ticks(options.RegistryPoll);
    }

    /// <summary>Reads the registry again when it changed (at most every poll interval unless <paramref name="force"/>).</summary>
    public async Task RefreshAsync(bool force, CancellationToken cancellationToken)
    {
        var now = Stopwatch.GetTimestamp();
        if (now >= _nextUserCount)
        {
            _nextUserCount = now + Ticks(UserCountRefresh);
            foreach (var context in _live)
                metrics.GenerationUsers.WithLabels(context.ModelVersion).Set(await context.Store.CountUsersAsync(cancellationToken).ConfigureAwait(false));
        }
        if (!force && now < _nextPoll) return;
        _nextPoll = now + Ticks(options.RegistryPoll);
        var version = await store.RegistryVersionAsync(cancellationToken).ConfigureAwait(false);
        if (version == Registry.Version) return;
        Registry = await store.ReadRegistryAsync(cancellationToken).ConfigureAwait(false);
        await SyncAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The generation of an embedding update's model version: a live one (created now, filling, on the model's first
    /// event), or why there is none.
    /// </summary>
    public async Task<(GenerationContext? Context, Resolution Resolution)> ResolveAsync(string modelVersion, CancellationToken cancellationToken)
    {
        if (Registry.Find(modelVersion) is null)
        {
            // Another worker may have created it since the last poll.
            await RefreshAsync(force: true, cancellationToken).ConfigureAwait(false);
            if (Registry.Find(modelVersion) is null)
            {
                var limited = false;
                var now = _time.GetUtcNow();
                Registry = await store.UpdateRegistryAsync(r =>
                {
                    limited = r.Find(modelVersion) is null && r.Serving is not null
                        && r.Generations.Count(g => g.State == GenerationState.Filling) >= options.MaxFilling;
                    return limited ? [] : r.WithCreated(modelVersion, now);
                }, cancellationToken).ConfigureAwait(false);
                if (limited) return (null, Resolution.Limit);
                var created = Registry.Find(modelVersion)!;
                if (created.State == GenerationState.Serving)
                    logger.LogWarning("First model generation '{Model}' created ({Keys}); it serves at once (cold start) and is seated with batch AttrCloak-DF once every class has {MinClassUsers} users",
                        modelVersion, store.Describe(modelVersion), options.MinClassUsers);
                else
                    logger.LogWarning("New model generation '{Model}' created ({Keys}); it fills in the background while the serving one serves, and is promoted once every class has enough users (at least {MinClassUsers}, and {Share:P0} of the serving generation's users)",
                        modelVersion, store.Describe(modelVersion), options.MinClassUsers, options.MinUserShare);
                await SyncAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        var g = Registry.Find(modelVersion)!;
        return g.Live ? (_contexts[modelVersion], Resolution.Live) : (null, Resolution.Retired);
    }

    /// <summary>Contexts follow the registry: new live generations get maps, re-seated ones new maps, gone ones leave.</summary>
    private async Task SyncAsync(CancellationToken cancellationToken)
    {
        foreach (var g in Registry.Generations)
        {
            if (g.Live)
            {
                if (_contexts.TryGetValue(g.ModelVersion, out var context))
                {
                    var reseated = context.Info.SeatEpoch != g.SeatEpoch;
                    // A bootstrapped generation's weights are recorded after its maps were first built: rebuild them then.
                    var newCeilings = context.Info.ShiftWeights is null && g.ShiftWeights is not null;
                    context.Info = g;
                    context.Cloakers.DisplacementCap = input.DisplacementCapOf(g.Displacement);
                    context.Cloakers.ShiftWeightCeilings = g.ShiftWeights;
                    if (newCeilings && !reseated)
                        await context.Cloakers.ResetAsync(cancellationToken).ConfigureAwait(false);
                    if (reseated)
                    {
                        // Seated (by this worker or another): cloak with maps of the new statistics from now on.
                        context.Forget();
                        await context.Cloakers.ResetAsync(cancellationToken).ConfigureAwait(false);
                        logger.LogInformation("Generation '{Model}' seated (seat epoch {Epoch}, state {State}); its maps were rebuilt", g.ModelVersion, g.SeatEpoch, g.StateLabel);
                    }
                }
                else
                {
                    var generationStore = store.StoreOf(g.ModelVersion);
                    var cloakers = new CloakerCache(generationStore, cloakerFactory, metrics, logger, guard.CloakerRefreshEvents, guard.CloakerRefreshInterval, rebuildShare,
                        mapsBuilt is null ? null : v => mapsBuilt(g.ModelVersion, v));
                    context = new GenerationContext(g, generationStore, cloakers, userCacheCapacity, guard.Dimension, _catalog);
                    cloakers.DisplacementCap = input.DisplacementCapOf(g.Displacement);
                    cloakers.ShiftWeightCeilings = g.ShiftWeights;
                    cloakers.Observe(ServedBandObserver(context));
                    await cloakers.InitializeAsync(cancellationToken).ConfigureAwait(false);
                    _contexts[g.ModelVersion] = context;
                }
            }
            else if (_contexts.Remove(g.ModelVersion))
                logger.LogInformation("Generation '{Model}' is {State}: no longer written or served by this worker", g.ModelVersion, g.StateLabel);
            if (g.State == GenerationState.Retired) store.Release(g.ModelVersion);
            Export(g);
        }
        _live = Registry.Live.Select(g => _contexts[g.ModelVersion]).ToList();
        _publishOrder = Registry.PublishOrder.Select(g => _contexts[g.ModelVersion]).ToList();
    }

    /// <summary>
    /// Reports each cloak's move of a generation: the maps' displacement over the generation's seated one, the served
    /// norm over the original's, and the capped users (docs/threat-model.md, alerts ServedDisplacementOutOfBand and
    /// ServedNormOutOfBand).
    /// </summary>
    private Action<CloakMove> ServedBandObserver(GenerationContext context)
    {
        var model = context.ModelVersion;
        var capped = metrics.DisplacementCapped.WithLabels(model);
        var displacement = metrics.MapDisplacementRatio.WithLabels(model);
        var norm = metrics.ServedNormRatio.WithLabels(model);
        return move =>
        {
            if (context.Info.Displacement is { MapsP99: > 0 } seated) displacement.Observe(move.Displacement / seated.MapsP99);
            norm.Observe(move.NormRatio);
            if (move.Capped) capped.Inc();
        };
    }

    private void Export(Generation g)
    {
        if (_stateLabels.TryGetValue(g.ModelVersion, out var previous) && previous != g.StateLabel)
            metrics.GenerationInfo.RemoveLabelled(g.ModelVersion, previous);
        if (g.State == GenerationState.Retired)
        {
            if (previous is not null)
            {
                metrics.GenerationUsers.RemoveLabelled(g.ModelVersion);
                metrics.GenerationSeatEpoch.RemoveLabelled(g.ModelVersion);
                metrics.GenerationCreated.RemoveLabelled(g.ModelVersion);
                metrics.GenerationPromotable.RemoveLabelled(g.ModelVersion);
                _stateLabels.Remove(g.ModelVersion);
            }
            return;
        }
        _stateLabels[g.ModelVersion] = g.StateLabel;
        metrics.GenerationInfo.WithLabels(g.ModelVersion, g.StateLabel).Set(1);
        metrics.GenerationSeatEpoch.WithLabels(g.ModelVersion).Set(g.SeatEpoch);
        metrics.GenerationCreated.WithLabels(g.ModelVersion).Set(g.CreatedAt.ToUnixTimeMilliseconds() / 1000.0);
    }

    private static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);
}
