using System.Diagnostics;
using AttrCloak.Core.Data;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Monitoring;
using AttrCloak.Streaming.Pipeline;
using Microsoft.Extensions.Logging;
using BatchPlanner = AttrCloak.Streaming.Pipeline.BatchPlanner;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Generations;

/// <summary>
/// Seats generations in the background (never on the consume thread): when a filling generation (or the serving one
/// of a cold start) is ready (<see cref="SeatingPolicy"/>), one worker takes the generation's seat lease, batch-cloaks
/// every stored original of it (<see cref="PopulationSeeding"/>, batch AttrCloak-DF, as <c>attrcloak bootstrap</c>
/// does), writes each cloak back as a re-cloak at the user's version (a user whose event arrived meanwhile keeps the
/// live cloak; the sweep re-cloaks it with the new maps), and marks the generation seated: a filling generation becomes
/// the serving one. Every worker then rebuilds its maps and sweeps its users out to the serving topic. A worker that
/// dies while seating loses its lease; another one seats the generation again from scratch.
/// </summary>
internal sealed class GenerationSeater(
    IGenerationStore store,
    IReadOnlyList<AttributeSpec> catalog,
    GenerationOptions options,
    PopulationSeeding seeding,
    WorkerMetrics metrics,
    ILogger logger,
    string instance,
    TimeProvider? timeProvider = null,
    Poisoning.InputOptions? input = null,
    IUserCloakerFactory? cloakerFactory = null)
{
    private readonly Poisoning.InputOptions _input = input ?? new Poisoning.InputOptions();
    private const int WriteChunk = 256;
    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;
    private readonly Dictionary<string, string> _lastReason = new(StringComparer.Ordinal);
    private string? _lastFailure;
    private DateTimeOffset _lastFailureLogged;


    /// <summary>Checks every <see cref="GenerationOptions.SeatCheckInterval"/> until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await CheckAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // The store is down or lost (the consume loop reports that, loudly), or a seating failed: try again
                // later; said once per kind of failure and then at most once a minute.
                var what = $"{e.GetType().Name}: {e.Message}";
                if (what != _lastFailure || _time.GetUtcNow() - _lastFailureLogged > TimeSpan.FromMinutes(1))
                {
                    logger.LogWarning("Checking or seating model generations failed ({Error}); trying again every {Seconds} s", what, options.SeatCheckInterval.TotalSeconds);
                    _lastFailure = what;
                    _lastFailureLogged = _time.GetUtcNow();
                }
            }
            try { await Task.Delay(options.SeatCheckInterval, _time, cancellationToken).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
        }
    }

    /// <summary>One look at every generation that waits to be seated; seats those that are ready.</summary>
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        var registry = await store.ReadRegistryAsync(cancellationToken).ConfigureAwait(false);
        foreach (var g in registry.Live.Where(g => g.Seated && g.Displacement is null && cloakerFactory is not null))
            await LearnSeatingFiguresAsync(g.ModelVersion, cancellationToken).ConfigureAwait(false); // bootstrapped by the CLI
        foreach (var g in registry.Live.Where(g => g.Domain is null || _time.GetUtcNow() - g.Domain.LearnedAt >= _input.DomainRefresh))
            await LearnDomainAsync(g.ModelVersion, cancellationToken).ConfigureAwait(false);
        if (_time.GetUtcNow() >= _nextUnmigratedCount)
        {
            _nextUnmigratedCount = _time.GetUtcNow() + 12 * options.SeatCheckInterval; // a minute by default
            await CountUnmigratedAsync(registry, cancellationToken).ConfigureAwait(false);
        }
        var serving = registry.Serving;
        (Statistics.StatisticsSnapshot, long)? reference = null;
        if (serving is { Seated: true })
        {
            var s = store.StoreOf(serving.ModelVersion);
            reference = (await s.ReadStatisticsAsync(cancellationToken).ConfigureAwait(false), await s.CountUsersAsync(cancellationToken).ConfigureAwait(false));
        }
        if (serving is { Seated: true })
        {
            var users = reference!.Value.Item2;
            if (serving.SeatedUsers == 0)
                await store.UpdateRegistryAsync(r => r.WithSeatedUsers(serving.ModelVersion, users), cancellationToken).ConfigureAwait(false);
            // Not while another worker holds the seat lease (it is seating already): each check would log it again.
            else if (SeatingPolicy.ReseatDue(serving, users, options) is { } why && !serving.PromoteRequested
                     && !(serving.SeatLease is { } holder && holder != instance && serving.SeatLeaseUntil > _time.GetUtcNow()))
            {
                logger.LogWarning("Re-seating generation '{Model}': {Reason}", serving.ModelVersion, why);
                await SeatAsync(serving.ModelVersion, cancellationToken).ConfigureAwait(false);
            }
        }
        foreach (var g in registry.Live.Where(g => g.State == GenerationState.Filling || (g.State == GenerationState.Serving && (!g.Seated || g.PromoteRequested))))
        {
            var target = store.StoreOf(g.ModelVersion);
            var statistics = await target.ReadStatisticsAsync(cancellationToken).ConfigureAwait(false);
            var users = await target.CountUsersAsync(cancellationToken).ConfigureAwait(false);
            var reason = SeatingPolicy.NotReady(g, statistics, users, g.State == GenerationState.Filling ? reference : null, options);
            metrics.GenerationPromotable.WithLabels(g.ModelVersion).Set(reason is null ? 1 : 0);
            if (reason is not null)
            {
                if (_lastReason.GetValueOrDefault(g.ModelVersion) != reason)
                    logger.LogInformation("Generation '{Model}' ({State}) is not {What} yet: {Reason}", g.ModelVersion, g.StateLabel,
                        g.State == GenerationState.Filling ? "promoted" : "seated", reason);
                _lastReason[g.ModelVersion] = reason;
                continue;
            }
            _lastReason.Remove(g.ModelVersion);
            await SeatAsync(g.ModelVersion, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Seats <paramref name="modelVersion"/> if this worker gets its lease; returns whether it did.</summary>
    public async Task<bool> SeatAsync(string modelVersion, CancellationToken cancellationToken)
    {
        if (!await RenewLeaseAsync(modelVersion, cancellationToken).ConfigureAwait(false)) return false;
        var clock = Stopwatch.StartNew();
        try
        {
            var target = store.StoreOf(modelVersion);
            var states = new List<UserState>();
            await foreach (var state in target.ScanStatesAsync(cancellationToken).ConfigureAwait(false)) states.Add(state);
            var generation = (await store.ReadRegistryAsync(cancellationToken).ConfigureAwait(false)).Find(modelVersion)!;
            var epoch = generation.SeatEpoch + 1;
            // A re-seating removes no class offset beyond the cap its last seating recorded (SeatingFigures), as the maps
            // hold their shift weights.
            var hold = (cloakerFactory as TransportCloakerFactory)?.Options.HoldShiftWeightsAtSeating == true && seeding.Holding is not null
                       && SeatingFigures.Reseating(generation);
            var floors = hold ? SeatingFigures.ReseatingKeepFloors(generation, await target.ReadStatisticsAsync(cancellationToken).ConfigureAwait(false)) : null;
            var cloak = floors is not null ? seeding.Holding!(floors) : seeding;
            logger.LogWarning("Seating generation '{Model}' ({State}): {Method} over its {Users} stored users (seat epoch {Epoch})",
                modelVersion, generation.StateLabel, cloak.Method, states.Count, epoch);

            var cloaked = cloak.Cloak(states.Select(s => s.Original).ToArray(), states.Select(s => s.Classes).ToArray(), catalog, cancellationToken);
            if (cloaked.Length != states.Count || cloaked.Any(row => row.Length != states[0].Original.Length || !row.All(float.IsFinite)))
                throw new InvalidOperationException($"{cloak.Method} did not return {states.Count} finite rows");
            var capped = SeatingFigures.CapReseating(generation.Displacement, _input, states.Select(s => s.Original).ToArray(), cloaked);
            if (capped > 0)
                logger.LogWarning(
                    "Re-seating generation '{Model}': {Capped} of {Users} users' batch cloaks pulled back within the displacement cap of its last seating (poisoned class statistics, or a population that has changed: roll out a new generation to learn a new band)",
                    modelVersion, capped, states.Count);
            if (!await RenewLeaseAsync(modelVersion, cancellationToken).ConfigureAwait(false)) return LeaseLost(modelVersion);

            long written = 0, moved = 0;
            for (var start = 0; start < states.Count; start += WriteChunk)
            {
                var batch = new List<UserStateChange>(WriteChunk);
                for (var i = start; i < Math.Min(states.Count, start + WriteChunk); i++)
                {
                    var s = states[i];
                    var meta = StoredEventId.Parse(s.EventId);
                    var id = StoredEventId.Compose(meta.EventId, modelVersion, BatchPlanner.KnownClassMask(s.Classes), meta.Stream, epoch);
                    batch.Add(UserStateChange.RecloakUser(s.UserId, id, s.Version, cloaked[i]));
                }
                var results = await target.ApplyAsync(batch, cancellationToken).ConfigureAwait(false);
                written += results.Count(r => r.Outcome == ApplyOutcome.Applied);
                moved += results.Count(r => r.Outcome != ApplyOutcome.Applied);
                if ((start / WriteChunk) % 16 == 15 && !await RenewLeaseAsync(modelVersion, cancellationToken).ConfigureAwait(false))
                    return LeaseLost(modelVersion);
            }

            var now = _time.GetUtcNow();
            // The seating's figures first, so that whoever sees the new seat epoch sees them too.
            if (cloakerFactory is not null)
                await SeatingFigures.RecordAsync(store, cloakerFactory, modelVersion, states.Select((u, i) => u with { Cloaked = cloaked[i] }).ToList(), now,
                    cancellationToken).ConfigureAwait(false);
            var after = await store.UpdateRegistryAsync(r => r.WithSeated(modelVersion, instance, now, states.Count), cancellationToken).ConfigureAwait(false);
            if (after.Find(modelVersion) is not { } seated || seated.SeatEpoch != epoch) return LeaseLost(modelVersion);
            metrics.Seatings.WithLabels("success").Inc();
            metrics.SeatingDuration.Set(clock.Elapsed.TotalSeconds);
            logger.LogWarning(
                "Generation '{Model}' seated in {Seconds:F1} s: {Written} users re-cloaked ({Moved} changed meanwhile, re-cloaked by the sweep); it is now {State} (seat epoch {Epoch}); the workers sweep its users out",
                modelVersion, clock.Elapsed.TotalSeconds, written, moved, seated.StateLabel, seated.SeatEpoch);
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            metrics.Seatings.WithLabels("failure").Inc();
            logger.LogError(e, "Seating generation '{Model}' failed; it is tried again once its lease expires", modelVersion);
            return false;
        }
    }

    private DateTimeOffset _nextUnmigratedCount;

    /// <summary>
    /// For each superseded generation, its users that no newer published generation holds (they are still served its
    /// records): <c>attrcloak_generation_unmigrated_users</c>. A scan of its user keys and an existence check per user in
    /// each newer generation; every 12 seat checks (a minute by default), in the background.
    /// </summary>
    private async Task CountUnmigratedAsync(GenerationRegistry registry, CancellationToken cancellationToken)
    {
        var published = registry.PublishOrder.Where(g => g.Published).ToList();
        for (var i = 1; i < published.Count; i++)
        {
            var superseded = published[i];
            var newer = published.Take(i).Select(g => store.StoreOf(g.ModelVersion)).ToList();
            long unmigrated = 0;
            var cursor = "0";
            do
            {
                var page = await store.StoreOf(superseded.ModelVersion).ScanSweepAsync(cursor, 1000, cancellationToken).ConfigureAwait(false);
                cursor = page.Cursor;
                var ids = page.Users.Select(u => u.UserId).ToList();
                var held = new bool[ids.Count];
                foreach (var n in newer)
                {
                    var theirs = await n.ContainsAsync(ids, cancellationToken).ConfigureAwait(false);
                    for (var j = 0; j < ids.Count; j++) held[j] |= theirs[j];
                }
                unmigrated += held.Count(h => !h);
            }
            while (cursor != "0");
            metrics.GenerationUnmigrated.WithLabels(superseded.ModelVersion).Set(unmigrated);
        }
        foreach (var g in registry.Generations.Where(g => g.State is not GenerationState.Superseded))
            metrics.GenerationUnmigrated.RemoveLabelled(g.ModelVersion);
    }

    /// <summary>
    /// Learns the generation's input domain (again) from its stored originals, when it holds enough users: robust figures,
    /// so a minority of users cannot move it (docs/threat-model.md). Stored users outside the new domain are counted.
    /// </summary>
    /// <summary>The figures of a generation seated by <c>attrcloak bootstrap</c> (no worker seated it): see <see cref="SeatingFigures"/>.</summary>
    private async Task LearnSeatingFiguresAsync(string modelVersion, CancellationToken cancellationToken)
    {
        var users = new List<UserState>();
        await foreach (var state in store.StoreOf(modelVersion).ScanStatesAsync(cancellationToken).ConfigureAwait(false))
        {
            users.Add(state);
            if (users.Count >= SeatingFigures.Sample) break;
        }
        await SeatingFigures.RecordAsync(store, cloakerFactory!, modelVersion, users, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
    }

    private async Task LearnDomainAsync(string modelVersion, CancellationToken cancellationToken)
    {
        var originals = new List<float[]>();
        await foreach (var state in store.StoreOf(modelVersion).ScanStatesAsync(cancellationToken).ConfigureAwait(false))
        {
            originals.Add(state.Original);
            if (originals.Count >= SeatingFigures.Sample) break;
        }
        var now = _time.GetUtcNow();
        if (InputDomainEstimator.Learn(originals, now) is not { } domain) return;
        await store.UpdateRegistryAsync(r => r.WithDomain(modelVersion, domain), cancellationToken).ConfigureAwait(false);
        var outside = originals.Count(x => _input.Refuses(x, domain) is not null);
        metrics.GenerationOutliers.WithLabels(modelVersion).Set(outside);
        if (outside > 0)
            logger.LogWarning(
                "Generation '{Model}': {Outside} of {Users} stored originals lie outside its input domain learned now (they were accepted before it existed); `attrcloak stats verify` lists them",
                modelVersion, outside, originals.Count);
    }

    private bool LeaseLost(string modelVersion)
    {
        metrics.Seatings.WithLabels("lease_lost").Inc();
        logger.LogWarning("Lost the seat lease of generation '{Model}' (another worker took it over); this seating is abandoned", modelVersion);
        return false;
    }

    private async Task<bool> RenewLeaseAsync(string modelVersion, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var registry = await store.UpdateRegistryAsync(r => r.WithSeatLease(modelVersion, instance, options.SeatLease, now), cancellationToken).ConfigureAwait(false);
        return registry.Find(modelVersion)?.SeatLease == instance;
    }
}
