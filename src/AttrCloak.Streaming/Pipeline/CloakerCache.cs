using System.Diagnostics;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Monitoring;
using Microsoft.Extensions.Logging;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// Holds the current <see cref="IUserCloaker"/> and rebuilds it from the store's statistics when they drifted: after
/// <c>refreshEvents</c> applied users changed them, or when <c>refreshInterval</c> passed with any change. A drift
/// rebuild runs on the thread pool while the consume thread keeps cloaking with the previous maps (double buffer); the
/// new cloaker is swapped in at the start of a later batch. An opt_out needs fresh maps now:
/// <see cref="RefreshNowAsync"/> waits for a rebuild in flight, then rebuilds synchronously if the statistics moved
/// since. Used by one consume thread; the background rebuild only hands its result over.
/// <para>
/// Drift rebuilds are also spaced so that they take at most <c>rebuildShare</c> of one core: the next one starts no
/// sooner than (last build time / rebuildShare) after the last one started. At high event rates the event threshold
/// alone would otherwise rebuild several times a second (a transport-map build costs tens of milliseconds;
/// docs/performance.md). The constructor's default share is 1 (no spacing); the pipeline passes
/// <see cref="GuardPipeline.CloakerRebuildShare"/> (0.02 by default).
/// opt_out still rebuilds at once.
/// </para>
/// </summary>
public sealed class CloakerCache
{
    private readonly IStateStore _store;
    private readonly IUserCloakerFactory _factory;
    private readonly WorkerMetrics _metrics;
    private readonly ILogger _logger;
    private readonly int _refreshEvents;
    private readonly long _refreshIntervalTicks;
    private IUserCloaker? _current;
    private Task<(IUserCloaker Cloaker, StatisticsSnapshot Snapshot)>? _building;
    private readonly Action<StatisticsVersion>? _installed;
    private int _changesAtBuildStart;
    private int _changesSinceBuild;
    private long _builtAt;
    private readonly double _rebuildShare;
    private long _lastBuildTicks;
    private long _buildStartedAt;

    public CloakerCache(IStateStore store, IUserCloakerFactory factory, WorkerMetrics metrics, ILogger logger,
        int refreshEvents, TimeSpan refreshInterval, double rebuildShare = 1.0, Action<StatisticsVersion>? installed = null)
    {
        _installed = installed;
        _store = store ?? throw new ArgumentNullException(nameof(store));
        _factory = factory ?? throw new ArgumentNullException(nameof(factory));
        _metrics = metrics ?? throw new ArgumentNullException(nameof(metrics));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        ArgumentOutOfRangeException.ThrowIfLessThan(refreshEvents, 1);
        _refreshEvents = refreshEvents;
        _refreshIntervalTicks = (long)(refreshInterval.TotalSeconds * Stopwatch.Frequency);
        if (!(rebuildShare is > 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(rebuildShare), rebuildShare, "must be in (0, 1]");
        _rebuildShare = rebuildShare;
    }

    /// <summary>The cloaker to use now: capped at <see cref="DisplacementCap"/>, its moves reported to the observer.</summary>
    public IUserCloaker Current
    {
        get
        {
            var current = _current ?? throw new InvalidOperationException("the cloaker cache was not initialised");
            if (double.IsPositiveInfinity(_cap) && _observe is null) return current;
            if (_capped is null || !ReferenceEquals(_capped.Inner, current) || _capped.Cap != _cap)
                _capped = new CappedCloaker(current, _cap, _observe);
            return _capped;
        }
    }

    /// <summary>How far a served embedding may lie from its original (<see cref="Cloaking.DisplacementCap"/>; infinite: no cap).</summary>
    public double DisplacementCap
    {
        get => _cap;
        set => _cap = value > 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be positive");
    }

    /// <summary>The seated shift weights the maps may not exceed (<see cref="StatisticsSnapshot.ShiftWeightCeilings"/>; null: none).</summary>
    public IReadOnlyDictionary<string, double[]>? ShiftWeightCeilings { get; set; }

    private double _cap = double.PositiveInfinity;
    private CappedCloaker? _capped;
    private Action<CloakMove>? _observe;

    /// <summary>Called with every cloak's move (the served-distribution metrics).</summary>
    public void Observe(Action<CloakMove> observe)
    {
        _observe = observe;
        _capped = null;
    }

    /// <summary>The snapshot the current cloaker was built from.</summary>
    public StatisticsSnapshot? Snapshot { get; private set; }

    /// <summary>Rebuilds (tests, logs).</summary>
    public int Builds { get; private set; }

    /// <summary>Builds the first cloaker (blocking the start-up, not the stream).</summary>
    public async Task<StatisticsSnapshot> InitializeAsync(CancellationToken cancellationToken)
    {
        var (cloaker, snapshot) = await BuildAsync(cancellationToken).ConfigureAwait(false);
        Install(cloaker, snapshot);
        _changesSinceBuild = 0;
        return snapshot;
    }

    /// <summary>
    /// After the store's data was lost and rebuilt: discards a rebuild in flight (it may have read the lost statistics)
    /// and builds the cloaker from the statistics as they are now. Throws what the store throws (e.g. while the state
    /// is still missing), keeping the current cloaker.
    /// </summary>
    public async Task<StatisticsSnapshot> ResetAsync(CancellationToken cancellationToken)
    {
        if (_building is { } pending)
        {
            try { await pending.WaitAsync(cancellationToken).ConfigureAwait(false); }
            catch (Exception e) when (e is not OperationCanceledException) { /* built from the lost state: dropped either way */ }
            _building = null;
        }
        return await InitializeAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Called once per batch before cloaking: installs a finished background rebuild, and starts one when the
    /// statistics drifted enough (event count) or for long enough (interval with any change).
    /// </summary>
    public void BeforeBatch()
    {
        TakeFinishedBuild();
        if (_building is not null || _changesSinceBuild == 0) return;
        var due = _changesSinceBuild >= _refreshEvents
                  || Stopwatch.GetTimestamp() - _builtAt >= _refreshIntervalTicks;
        if (!due) return;
        var now = Stopwatch.GetTimestamp();
        if (now - _buildStartedAt < _lastBuildTicks / _rebuildShare) return; // spacing: bounded CPU share of rebuilds
        _buildStartedAt = now;
        _changesAtBuildStart = _changesSinceBuild;
        _building = Task.Run(() => BuildAsync(CancellationToken.None));
    }

    /// <summary>After a batch was applied: <paramref name="users"/> users changed the statistics.</summary>
    public void NoteApplied(int users) => _changesSinceBuild += users;

    /// <summary>
    /// For opt_out: afterwards <see cref="Current"/> was built from the statistics as they are now in the store (a
    /// rebuild only when they moved since the current cloaker was built).
    /// </summary>
    public async Task RefreshNowAsync(CancellationToken cancellationToken)
    {
        if (_building is { } pending)
        {
            try { await pending.WaitAsync(cancellationToken).ConfigureAwait(false); }
            catch (Exception e) when (e is not OperationCanceledException) { /* reported by TakeFinishedBuild */ }
            TakeFinishedBuild();
        }
        var now = await _store.StatisticsSequenceAsync(cancellationToken).ConfigureAwait(false);
        if (_current is not null && _current.StatisticsVersion == now) return;
        var (cloaker, snapshot) = await BuildAsync(cancellationToken).ConfigureAwait(false);
        Install(cloaker, snapshot);
        _changesSinceBuild = 0;
    }

    private void TakeFinishedBuild()
    {
        if (_building is not { IsCompleted: true } done) return;
        _building = null;
        if (done.IsCompletedSuccessfully)
        {
            var (cloaker, snapshot) = done.Result;
            Install(cloaker, snapshot);
            // Changes applied while the rebuild ran may not be in its snapshot: they count towards the next one.
            _changesSinceBuild = Math.Max(0, _changesSinceBuild - _changesAtBuildStart);
        }
        else
        {
            // Keep cloaking with the previous maps; the next batch tries again.
            _logger.LogWarning(done.Exception?.GetBaseException(),
                "Rebuilding the cloaking maps failed; the previous ones stay in use until the next attempt");
            _builtAt = Stopwatch.GetTimestamp();
        }
    }

    private async Task<(IUserCloaker, StatisticsSnapshot)> BuildAsync(CancellationToken cancellationToken)
    {
        var snapshot = await _store.ReadStatisticsAsync(cancellationToken).ConfigureAwait(false);
        if (ShiftWeightCeilings is { } ceilings) snapshot = snapshot with { ShiftWeightCeilings = ceilings };
        var start = Stopwatch.GetTimestamp();
        var cloaker = _factory.Build(snapshot);
        Interlocked.Exchange(ref _lastBuildTicks, Stopwatch.GetTimestamp() - start);
        return (cloaker, snapshot);
    }

    private void Install(IUserCloaker cloaker, StatisticsSnapshot snapshot)
    {
        _current = cloaker;
        Snapshot = snapshot;
        _builtAt = Stopwatch.GetTimestamp();
        Builds++;
        _metrics.CloakerRefreshes.Inc();
        _installed?.Invoke(snapshot.Version);
        foreach (var attribute in snapshot.Attributes)
            _metrics.StatisticsMinClassUsers.WithLabels(attribute.Attribute).Set(attribute.Counts.Length == 0 ? 0 : attribute.Counts.Min());
    }
}
