using System.Diagnostics;
using AttrCloak.Streaming.Monitoring;
using AttrCloak.Streaming.Pipeline;
using Microsoft.Extensions.Logging;
using BatchPlanner = AttrCloak.Streaming.Pipeline.BatchPlanner;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Generations;

/// <summary>One user a sweep publishes: a cloaked record (<see cref="Cloaked"/> set) or a tombstone (null).</summary>
internal readonly record struct SweptUser(string UserId, long Version, float[]? Cloaked, int[]? Classes, uint ProtectedMask);

/// <summary>What one sweep step publishes, from which generation, and whose sweep marks move once it is acknowledged.</summary>
internal sealed record SweepChunk(string ModelVersion, IStateStore Store, GenerationContext? Context, List<SweptUser> Outputs, List<string> Marked, int Mark);

/// <summary>
/// Sweeps: a generation's users published again from their stored state, on the worker that owns them, beside the live
/// stream and rate-limited (<see cref="GenerationOptions.SweepUsersPerSecond"/>). A published generation's users whose
/// sweep mark is below its <see cref="Generation.SweepEpoch"/> are swept (after a seating: the promotion, a cold start
/// warming up, a bootstrap): a user whose cloak is older than the generation's last seating is re-cloaked from the
/// stored original with the current maps first, the others (the seating's batch cloak) are republished as they are; a
/// superseded generation's users held by a newer generation are skipped. A retiring generation's users that no live
/// generation holds get a tombstone; once none is left, its keys are deleted.
/// <para>
/// Ownership keeps every user's outputs in order: a user is swept only by the worker whose consumer owns their input
/// partition (the partition recorded with their last event; users written by a tool, with none, by the owner of
/// partition 0), on the consume thread, through the same producer as the live outputs. The marks move only after the
/// outputs are acknowledged, so a sweep interrupted by a crash resumes where it stopped (users swept twice at most).
/// Used by the consume thread only.
/// </para>
/// </summary>
internal sealed class Sweeper(GenerationSet generations, GenerationOptions options, WorkerMetrics metrics, ILogger logger)
{
    /// <summary>The mark of a retiring generation's handled user.</summary>
    internal const int RetiredMark = int.MaxValue;
    private const int PageSize = 256;
    private const int MaxPagesPerStep = 8;
    private static readonly TimeSpan RetireRescan = TimeSpan.FromSeconds(5);

    private readonly Dictionary<string, Progress> _progress = new(StringComparer.Ordinal);
    private readonly HashSet<int> _owned = [];
    private bool _ownsUnknown;
    private double _tokens;
    private long _lastRefill = Stopwatch.GetTimestamp();

    private int ChunkTarget => Math.Clamp(options.SweepUsersPerSecond / 10, 16, PageSize);

    /// <summary>The consumer's partitions changed: sweeps start their scans again (marks make re-scanning cheap).</summary>
    public void OnAssignment(IEnumerable<(string Topic, int Partition)> assignment, string embeddingsTopic)
    {
        _owned.Clear();
        _ownsUnknown = false;
        foreach (var (topic, partition) in assignment)
        {
            _owned.Add(partition);
            _ownsUnknown |= topic == embeddingsTopic && partition == 0;
        }
        foreach (var p in _progress.Values) p.Restart();
    }

    /// <summary>
    /// The next chunk to publish, or null when no sweep has work (or the rate budget is spent). Reads and re-cloaks
    /// (re-cloaks are written to the store at the user's version; a user changed meanwhile is left to the live stream).
    /// </summary>
    public async Task<SweepChunk?> NextAsync(CancellationToken cancellationToken)
    {
        if (_owned.Count == 0) return null;
        var now = Stopwatch.GetTimestamp();
        _tokens = Math.Min(_tokens + (now - _lastRefill) / (double)Stopwatch.Frequency * options.SweepUsersPerSecond, Math.Max(ChunkTarget, options.SweepUsersPerSecond));
        _lastRefill = now;
        if (_tokens < ChunkTarget) return null;

        var registry = generations.Registry;
        foreach (var context in generations.PublishOrder)
        {
            if (!context.Info.Published || context.Info.SweepEpoch == 0) continue;
            var progress = ProgressOf(context.ModelVersion, context.Info.SweepEpoch);
            if (progress.Done) continue;
            var chunk = await SweepPublishedAsync(context, progress, cancellationToken).ConfigureAwait(false);
            if (chunk is not null) return chunk;
        }
        foreach (var retiring in registry.Generations.Where(g => g.State == GenerationState.Retiring))
        {
            var progress = ProgressOf(retiring.ModelVersion, RetiredMark);
            if (progress.Done && Stopwatch.GetElapsedTime(progress.FinishedAt) < RetireRescan) continue;
            if (progress.Done) progress.Restart();
            var chunk = await SweepRetiringAsync(retiring, progress, cancellationToken).ConfigureAwait(false);
            if (chunk is not null) return chunk;
        }
        return null;
    }

    /// <summary>After the chunk's outputs were acknowledged: the users' marks move, the counts and metrics follow.</summary>
    public async Task CompleteAsync(SweepChunk chunk, CancellationToken cancellationToken)
    {
        await chunk.Store.MarkSweptAsync(chunk.Marked, chunk.Mark, cancellationToken).ConfigureAwait(false);
        _tokens -= chunk.Marked.Count;
    }

    private async Task<SweepChunk?> SweepPublishedAsync(GenerationContext context, Progress progress, CancellationToken cancellationToken)
    {
        var epoch = context.Info.SweepEpoch;
        var pending = await FillAsync(context.Store, progress, e => e.SweepMark < epoch, cancellationToken).ConfigureAwait(false);
        if (pending.Count == 0)
        {
            // Nothing due in this step's pages: done only when the scan is (SCAN walks the whole keyspace, so pages
            // of other generations' keys can hold none of this one's).
            if (progress.ScanDone) Finish(context.ModelVersion, progress, "published");
            return null;
        }
        var ids = pending.Select(e => e.UserId).ToList();
        var states = await context.Store.GetUsersAsync(ids, cancellationToken).ConfigureAwait(false);
        // A superseded generation serves only users no newer published generation holds.
        var heldNewer = new bool[ids.Count];
        foreach (var newer in generations.PublishOrder)
        {
            if (ReferenceEquals(newer, context)) break;
            var theirs = await newer.Store.GetUsersAsync(ids, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < ids.Count; i++) heldNewer[i] |= theirs[i] is not null;
        }

        var outputs = new List<SweptUser>(ids.Count);
        var recloaks = new List<UserStateChange>();
        var recloaked = new List<SweptUser>();
        var cloaker = context.Cloakers.Current;
        var dimension = context.Planner.Dimension;
        for (var i = 0; i < ids.Count; i++)
        {
            if (states[i] is not { } state || heldNewer[i])
            {
                metrics.SweepUsers.WithLabels(context.ModelVersion, WorkerMetrics.SweepActions.Skipped).Inc();
                continue;
            }
            var meta = StoredEventId.Parse(state.EventId);
            if (meta.SeatEpoch >= context.Info.SeatEpoch)
            {
                outputs.Add(new SweptUser(state.UserId, state.Version, state.Cloaked, state.Classes,
                    meta.HasMask ? meta.ProtectedMask : BatchPlanner.KnownClassMask(state.Classes)));
                metrics.SweepUsers.WithLabels(context.ModelVersion, WorkerMetrics.SweepActions.Republished).Inc();
                continue;
            }
            // Cloaked before the generation's last seating: with the maps of the seated statistics now.
            var cloaked = new float[dimension];
            var mask = cloaker.Cloak(state.Original, state.Classes, cloaked).ProtectedMask;
            if (!cloaked.All(float.IsFinite)) continue; // fail closed: never serve it; the next event re-cloaks the user
            recloaks.Add(UserStateChange.RecloakUser(state.UserId, StoredEventId.Compose(meta.EventId, context.ModelVersion, mask, meta.Stream, context.Info.SeatEpoch),
                state.Version, cloaked));
            recloaked.Add(new SweptUser(state.UserId, state.Version, cloaked, state.Classes, mask));
        }
        if (recloaks.Count > 0)
        {
            var results = await context.Store.ApplyAsync(recloaks, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < results.Length; i++)
            {
                context.Users.Remove(recloaked[i].UserId); // the pipeline's memory of them is older than this write
                if (results[i].Outcome != ApplyOutcome.Applied) continue; // changed meanwhile: the live stream published it
                outputs.Add(recloaked[i]);
                metrics.SweepUsers.WithLabels(context.ModelVersion, WorkerMetrics.SweepActions.Recloaked).Inc();
            }
            context.Cloakers.NoteApplied(results.Count(r => r.Outcome == ApplyOutcome.Applied));
        }
        progress.Handled += ids.Count;
        metrics.SweepPending.WithLabels(context.ModelVersion).Set(progress.Pending.Count);
        return new SweepChunk(context.ModelVersion, context.Store, context, outputs, ids, epoch);
    }

    private async Task<SweepChunk?> SweepRetiringAsync(Generation retiring, Progress progress, CancellationToken cancellationToken)
    {
        var store = generations.Store.StoreOf(retiring.ModelVersion);
        var pending = await FillAsync(store, progress, e => e.SweepMark != RetiredMark, cancellationToken).ConfigureAwait(false);
        if (pending.Count == 0)
        {
            if (!progress.ScanDone) return null; // this step's pages held nothing due; the scan goes on next step
            if (!progress.SawUnowned) await DeleteIfDueAsync(retiring, store, cancellationToken).ConfigureAwait(false);
            Finish(retiring.ModelVersion, progress, "tombstoned");
            return null;
        }
        var ids = pending.Select(e => e.UserId).ToList();
        var held = new bool[ids.Count];
        foreach (var live in generations.Live)
        {
            var theirs = await live.Store.GetUsersAsync(ids, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < ids.Count; i++) held[i] |= theirs[i] is not null;
        }
        var states = await store.GetUsersAsync(ids, cancellationToken).ConfigureAwait(false);
        var outputs = new List<SweptUser>();
        for (var i = 0; i < ids.Count; i++)
        {
            if (held[i] || states[i] is null)
            {
                metrics.SweepUsers.WithLabels(retiring.ModelVersion, WorkerMetrics.SweepActions.Skipped).Inc();
                continue;
            }
            // Their only embedding is of a model no longer served: no record rather than one no item tower can score.
            outputs.Add(new SweptUser(ids[i], states[i]!.Version, null, null, 0));
            metrics.SweepUsers.WithLabels(retiring.ModelVersion, WorkerMetrics.SweepActions.Tombstoned).Inc();
        }
        progress.Handled += ids.Count;
        metrics.SweepPending.WithLabels(retiring.ModelVersion).Set(progress.Pending.Count);
        return new SweepChunk(retiring.ModelVersion, store, null, outputs, ids, RetiredMark);
    }

    /// <summary>Once every user of the retiring generation is handled (by every worker) and the grace passed: its keys go.</summary>
    private async Task DeleteIfDueAsync(Generation retiring, IStateStore store, CancellationToken cancellationToken)
    {
        if (retiring.RetiringSince is { } since && DateTimeOffset.UtcNow - since < options.RetireGrace) return;
        await store.DeleteAllAsync(cancellationToken).ConfigureAwait(false);
        await generations.Store.UpdateRegistryAsync(r => r.WithRetired(retiring.ModelVersion), cancellationToken).ConfigureAwait(false);
        logger.LogWarning("Generation '{Model}' retired: its keys are deleted", retiring.ModelVersion);
        metrics.SweepPending.RemoveLabelled(retiring.ModelVersion);
        metrics.SweepActive.RemoveLabelled(retiring.ModelVersion);
        _progress.Remove(retiring.ModelVersion);
        await generations.RefreshAsync(force: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Up to a chunk of this worker's users still to sweep, scanning on as needed.</summary>
    private async Task<List<SweepEntry>> FillAsync(IStateStore store, Progress progress, Func<SweepEntry, bool> due, CancellationToken cancellationToken)
    {
        var target = (int)Math.Min(_tokens, PageSize);
        // A bounded number of pages per step: a scan over users swept before must not stall the consume thread.
        for (var pages = 0; progress.Pending.Count < target && !progress.ScanDone && pages < MaxPagesPerStep; pages++)
        {
            var page = await store.ScanSweepAsync(progress.Cursor, PageSize, cancellationToken).ConfigureAwait(false);
            progress.Cursor = page.Cursor;
            progress.ScanDone = page.Done;
            foreach (var entry in page.Users)
            {
                if (!due(entry)) continue;
                if (entry.Partition >= 0 ? _owned.Contains(entry.Partition) : _ownsUnknown) progress.Pending.Enqueue(entry);
                else progress.SawUnowned = true;
            }
        }
        var chunk = new List<SweepEntry>(Math.Min(target, progress.Pending.Count));
        while (chunk.Count < target && progress.Pending.TryDequeue(out var entry)) chunk.Add(entry);
        return chunk;
    }

    private Progress ProgressOf(string modelVersion, int epoch)
    {
        if (!_progress.TryGetValue(modelVersion, out var progress) || progress.Epoch != epoch)
        {
            _progress[modelVersion] = progress = new Progress(epoch);
            metrics.SweepActive.WithLabels(modelVersion).Set(1);
        }
        return progress;
    }

    private void Finish(string modelVersion, Progress progress, string what)
    {
        if (progress.Done) return;
        progress.Done = true;
        progress.FinishedAt = Stopwatch.GetTimestamp();
        metrics.SweepActive.WithLabels(modelVersion).Set(0);
        metrics.SweepPending.WithLabels(modelVersion).Set(0);
        if (progress.Handled > 0)
            logger.LogInformation("Sweep of generation '{Model}' done on this worker: {Users} users {What} or skipped in {Seconds:F1} s",
                modelVersion, progress.Handled, what, Stopwatch.GetElapsedTime(progress.StartedAt).TotalSeconds);
    }

    private sealed class Progress(int epoch)
    {
        public int Epoch { get; } = epoch;
        public string Cursor { get; set; } = "0";
        public bool ScanDone { get; set; }
        public bool SawUnowned { get; set; }
        public Queue<SweepEntry> Pending { get; } = new();
        public long Handled { get; set; }
        public bool Done { get; set; }
        public long StartedAt { get; private set; } = Stopwatch.GetTimestamp();
        public long FinishedAt { get; set; }

        public void Restart()
        {
            Cursor = "0";
            ScanDone = false;
            SawUnowned = false;
            Pending.Clear();
            Handled = 0;
            Done = false;
            StartedAt = Stopwatch.GetTimestamp();
        }
    }
}
