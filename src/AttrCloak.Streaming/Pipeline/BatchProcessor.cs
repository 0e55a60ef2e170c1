using System.Diagnostics;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Poisoning;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// The store work of one decoded batch, retried until it succeeds: routes each event to its model generations, reads
/// the batch's users (those this worker wrote recently from its cache), marks redeliveries, folds every user's events
/// into state changes, cloaking with each generation's own maps (<see cref="BatchPlanner"/>), and applies each
/// generation's changes in one atomic store call. A failing store call (connection, timeout, conflict) retries the
/// whole batch with exponential backoff (Polly), readiness false meanwhile; a store whose data is gone holds the batch
/// until it is rebuilt (<see cref="StateLossGuard"/>). An unexpected fault while planning one event dead-letters that
/// event as <see cref="ReasonCode.InternalError"/>. The outcomes stay in the generations' contexts for the outputs.
/// </summary>
internal sealed class BatchProcessor
{
    private readonly GenerationSet _generations;
    private readonly StateLossGuard _lossGuard;
    private readonly PipelineStatus _status;
    private readonly BatchAccounting _accounting;
    private readonly InputOptions _input;
    private readonly GenerationOptions _generationOptions;
    private readonly ILogger _logger;
    private readonly ResiliencePipeline _storeRetry;

    private readonly List<GenerationContext> _touched = [];
    private readonly List<string> _userIds = [];
    private readonly HashSet<string> _seenUsers = new(StringComparer.Ordinal);
    private readonly List<string> _missingUsers = [];
    private readonly List<ConsumedOffset> _consumedAsk = [];
    private readonly Dictionary<(string Topic, int Partition), long> _batchMaxOffsets = [];
    private readonly Dictionary<string, (GenerationContext? Context, Resolution Resolution)> _resolved = new(StringComparer.Ordinal);

    public BatchProcessor(GenerationSet generations, StateLossGuard lossGuard, PipelineStatus status, BatchAccounting accounting, InputOptions input,
        GenerationOptions generationOptions, ILogger logger)
    {
        _generations = generations;
        _lossGuard = lossGuard;
        _status = status;
        _accounting = accounting;
        _input = input;
        _generationOptions = generationOptions;
        _logger = logger;
        _storeRetry = StoreRetry(generations.Faults, status, logger);
    }

    /// <summary>The generations the batch in hand reads or changes (their planners and results hold its outcomes).</summary>
    public IReadOnlyList<GenerationContext> Touched => _touched;

    /// <summary>
    /// A state-store call retried with exponential backoff for as long as it fails with a retryable fault
    /// (<see cref="StoreFaults.IsRetryable"/>), readiness false meanwhile.
    /// </summary>
    public static ResiliencePipeline StoreRetry(StoreFaults faults, PipelineStatus status, ILogger logger) =>
        new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<Exception>(faults.IsRetryable),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(50),
            MaxDelay = TimeSpan.FromSeconds(5),
            MaxRetryAttempts = int.MaxValue,
            OnRetry = args =>
            {
                status.SetStoreHealthy(false);
                logger.LogWarning("State store call failed ({Error}: {Message}); retrying the batch in {Delay} ms (attempt {Attempt}), no offsets stored meanwhile",
                    args.Outcome.Exception?.GetType().Name, args.Outcome.Exception?.Message, (int)args.RetryDelay.TotalMilliseconds, args.AttemptNumber + 1);
                return default;
            },
        }).Build();

    /// <summary>
    /// Does the batch's store work. <paramref name="finishSent"/> finishes the batches sent before this one: called
    /// before a retry, so that their offsets are not held back by this batch's retries (they need no store work).
    /// </summary>
    public void Process(Batch batch, Action<CancellationToken> finishSent, CancellationToken cancellationToken)
    {
        foreach (var context in _generations.Live) context.Cloakers.BeforeBatch();
        _touched.Clear();
        var anyOptOut = false;
        _userIds.Clear();
        _seenUsers.Clear();
        for (var i = 0; i < batch.Count; i++)
        {
            if (batch.Slots[i].Event is not { } e) continue;
            if (_seenUsers.Add(e.UserId)) _userIds.Add(e.UserId);
            anyOptOut |= e is PrivacyRequest { Type: PrivacyRequestType.OptOut };
        }

        if (_userIds.Count > 0)
        {
            var attempt = 0;
            while (true)
            {
                try
                {
                    _storeRetry.ExecuteAsync(async ct =>
                    {
                        if (attempt++ > 0)
                        {
                            // A failed store call: what we remember may be off (a timed-out write may have happened). The
                            // batches sent before this one need no store work: finish them, so their offsets are not held
                            // back by this batch's retries.
                            foreach (var context in _generations.Live) context.Forget(); // a timed-out write may have raised the watermarks
                            finishSent(ct);
                        }
                        await ReadPlanApplyAsync(batch, anyOptOut, ct).ConfigureAwait(false);
                    }, cancellationToken).AsTask().GetAwaiter().GetResult();
                    break;
                }
                catch (StateStoreLostException lost)
                {
                    // Nothing of this batch was written or sent. A generation retired meanwhile (its keys deleted) is
                    // no loss: redo the batch without it. Otherwise wait for the rebuild, then redo it from scratch.
                    if (!_lossGuard.RetiredMeanwhile(_touched, cancellationToken)) _lossGuard.AwaitRebuilt(lost, cancellationToken);
                    attempt = 0;
                }
            }
            _status.SetStoreHealthy(true);
        }
        foreach (var context in _touched) context.Remember();
    }

    private async Task ReadPlanApplyAsync(Batch batch, bool anyOptOut, CancellationToken cancellationToken)
    {
        var t = Stopwatch.GetTimestamp();
        var generations = _generations;
        await generations.RefreshAsync(force: false, cancellationToken).ConfigureAwait(false);
        // The generation of each embedding update's model (created on the model's first event) before routing.
        _resolved.Clear();
        for (var i = 0; i < batch.Count; i++)
            if (batch.Slots[i].Event is EmbeddingUpdate update) _resolved.TryAdd(update.ModelVersion, default);
        foreach (var model in _resolved.Keys.ToList())
            _resolved[model] = await generations.ResolveAsync(model, cancellationToken).ConfigureAwait(false);
        Route(batch);

        // Each generation's users: the ones this worker wrote recently are known, the others read (one round trip each).
        foreach (var context in _touched)
        {
            _missingUsers.Clear();
            foreach (var user in context.BatchUsers)
                if (context.Users.TryGet(user, out var cached)) context.Planner.AddUser(user, cached.State);
                else _missingUsers.Add(user);
            if (_missingUsers.Count > 0)
            {
                // Recorded in the cache too (with tombstones), where the store takes the batch's priors from.
                var states = await context.Store.GetUsersAsync(_missingUsers, context.Users, cancellationToken).ConfigureAwait(false);
                for (var u = 0; u < _missingUsers.Count; u++) context.Planner.AddUser(_missingUsers[u], states[u]);
            }
            _accounting.CountUserLookups(_missingUsers.Count, context.BatchUsers.Count - _missingUsers.Count);
        }
        _accounting.Lap(Stage.StoreRead, ref t);

        await MarkRedeliveriesAsync(batch, cancellationToken).ConfigureAwait(false);

        // opt_out: cloak with maps built from the statistics as they are now.
        if (anyOptOut)
            foreach (var context in _touched)
                await context.Cloakers.RefreshNowAsync(cancellationToken).ConfigureAwait(false);
        PlanAll(batch);
        _accounting.Lap(Stage.Cloak, ref t);

        foreach (var context in _touched)
        {
            var changes = context.Planner.Changes;
            context.Results = changes.Count == 0 ? [] : await context.Store.ApplyConsumedAsync(changes, batch.Consumed, context.Users, cancellationToken).ConfigureAwait(false);
            if (changes.Count > 0)
                foreach (var c in batch.Consumed)
                    if (context.ConsumedMarks.GetValueOrDefault((c.Topic, c.Partition), -1) < c.Offset) context.ConsumedMarks[(c.Topic, c.Partition)] = c.Offset;
        }
        _accounting.Lap(Stage.StoreApply, ref t);
    }

    /// <summary>
    /// Which generations the batch reads: an embedding update's own, and every generation before it in the publish
    /// order (whether one of those holds the user decides where their serving record comes from); a privacy request
    /// every live generation. Updates of a retired model are marked; a new model beyond the filling limit is dead-lettered.
    /// </summary>
    private void Route(Batch batch)
    {
        var generations = _generations;
        foreach (var context in generations.Live) context.ResetBatch();
        for (var i = 0; i < batch.Count; i++)
        {
            ref var slot = ref batch.Slots[i];
            slot.PlanError = null;
            slot.Retired = false;
            if (slot.Event is not { } e) continue;
            if (e is EmbeddingUpdate update)
            {
                var (target, resolution) = _resolved[update.ModelVersion];
                if (target is null)
                {
                    if (resolution == Resolution.Limit) slot.PlanError = GenerationLimitError();
                    else slot.Retired = true;
                    continue;
                }
                foreach (var before in generations.PublishOrder)
                {
                    before.Touch(e.UserId);
                    if (ReferenceEquals(before, target)) break;
                }
                target.Touch(e.UserId);
            }
            else
                foreach (var context in generations.Live) context.Touch(e.UserId);
        }
        _touched.Clear();
        foreach (var context in generations.Live)
            if (context.InBatch) _touched.Add(context);
    }

    private DecodeError GenerationLimitError() => new(ReasonCode.GenerationLimit,
        $"a new model_version while {_generationOptions.MaxFilling} generation(s) are filling (AttrCloak:Generations:MaxFilling); retire an abandoned rollout or raise the limit");

    /// <summary>
    /// Folds every event into its generations in batch order, cloaking with each generation's own maps: an embedding
    /// update in its model's generation; a privacy request in every live generation that holds the user at that point
    /// (or, when none does, in the newest one: an unknown user's request is dead-lettered there, or found older than
    /// their forget).
    /// </summary>
    private void PlanAll(Batch batch)
    {
        var live = _generations.Live;
        for (var i = 0; i < batch.Count; i++)
        {
            ref var slot = ref batch.Slots[i];
            if (slot.Event is not { } e || slot.PlanError is not null || slot.Retired) continue;
            if (e is EmbeddingUpdate update)
            {
                var target = _resolved[update.ModelVersion].Context!;
                // Outside what the deployment accepts: never in the statistics, never served (docs/threat-model.md).
                if (_input.Refuses(update.Embedding, target.Info.Domain) is { } why)
                {
                    slot.PlanError = new DecodeError(ReasonCode.OutOfRange, why);
                    continue;
                }
                PlanIn(target, i, ref slot);
                continue;
            }
            var planned = false;
            foreach (var context in live)
                if (context.Planner.Holds(e.UserId))
                {
                    PlanIn(context, i, ref slot);
                    planned = true;
                }
            if (planned) continue;
            if (live.Count > 0) PlanIn(live[0], i, ref slot);
            else if (e is PrivacyRequest { Type: PrivacyRequestType.Forget }) slot.Retired = true; // nothing stored anywhere: nothing to forget
            else slot.PlanError = BatchPlanner.UnknownUserError(e);
        }
    }

    private void PlanIn(GenerationContext context, int index, ref Slot slot)
    {
        try
        {
            var sweepMark = context.Info.Published ? context.Info.SweepEpoch : (int?)null;
            if (context.Planner.Plan(index, slot.Event!, context.Cloakers.Current, context.Info.SeatEpoch, slot.Result.Partition.Value, sweepMark) is { } error)
                slot.PlanError = error;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A poison event must not stop the stream: dead-letter it, keep going.
            slot.PlanError = new DecodeError(ReasonCode.InternalError, $"processing fault ({ex.GetType().Name})");
            _logger.LogError(ex, "Processing one {Type} event failed; it goes to the dead-letter topic", slot.Type);
        }
    }

    /// <summary>
    /// Marks the batch's events at or below their partition's applied-offset watermark (in any generation the batch
    /// reads) as redeliveries, and collects the batch's highest offset per partition (raised in each generation's
    /// store with the batch's apply there).
    /// </summary>
    private async Task MarkRedeliveriesAsync(Batch batch, CancellationToken cancellationToken)
    {
        batch.Consumed.Clear();
        _batchMaxOffsets.Clear();
        for (var i = 0; i < batch.Count; i++)
        {
            var r = batch.Slots[i].Result;
            var key = (r.Topic, r.Partition.Value);
            if (!_batchMaxOffsets.TryGetValue(key, out var max) || r.Offset.Value > max) _batchMaxOffsets[key] = r.Offset.Value;
        }
        foreach (var ((topic, partition), max) in _batchMaxOffsets) batch.Consumed.Add(new ConsumedOffset(topic, partition, max));
        var keepsMarks = true;
        foreach (var context in _touched)
        {
            _consumedAsk.Clear();
            foreach (var c in batch.Consumed)
                if (context.StoreKeepsMarks && !context.ConsumedMarks.ContainsKey((c.Topic, c.Partition))) _consumedAsk.Add(new ConsumedOffset(c.Topic, c.Partition, -1));
            if (_consumedAsk.Count > 0)
            {
                var marks = await context.Store.ReadConsumedOffsetsAsync(_consumedAsk, cancellationToken).ConfigureAwait(false);
                if (marks is null) context.StoreKeepsMarks = false; // every stale version then passes as a redelivery (the old behaviour)
                else for (var p = 0; p < _consumedAsk.Count; p++) context.ConsumedMarks[(_consumedAsk[p].Topic, _consumedAsk[p].Partition)] = marks[p];
            }
            keepsMarks &= context.StoreKeepsMarks;
        }
        for (var i = 0; i < batch.Count; i++)
        {
            ref var slot = ref batch.Slots[i];
            var r = slot.Result;
            var key = (r.Topic, r.Partition.Value);
            var redelivered = !keepsMarks;
            foreach (var context in _touched)
                redelivered |= r.Offset.Value <= context.ConsumedMarks.GetValueOrDefault(key, -1);
            slot.Redelivered = redelivered;
        }
    }
}
