using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.State;

/// <summary>What a store knows about a user before a batch: their state, or the version of their forget, or neither.</summary>
public readonly record struct PriorUser(UserState? State, long? TombstoneVersion)
{
    public static readonly PriorUser Nothing = new(null, null);
}

/// <summary>
/// The effect of a batch on one user: <see cref="Op"/> 'C' create (no state before), 'U' update, 'F' forget, or 'N'
/// nothing applied. <see cref="Version"/> / <see cref="EventId"/> are those of the last applied event.
/// </summary>
public sealed record UserPlan(string UserId, char Op, long Version, string EventId, UserState? Initial, UserState? Final);

/// <summary>
/// A batch's effect: one <see cref="UserPlan"/> per user (order of first appearance) and the statistics change as one
/// delta per touched slot (<see cref="Slots"/> ascending, <see cref="Deltas"/> parallel).
/// </summary>
public sealed record BatchPlan(UserPlan[] Users, int[] Slots, double[][] Deltas);

/// <summary>The batch's valid events grouped per user, in order of each user's first event.</summary>
public sealed record GroupedBatch(List<string> Users, Dictionary<string, List<int>> EventsOf);

/// <summary>
/// The store-independent part of <see cref="IStateStore.ApplyAsync"/>: validating events, folding each user's events
/// in batch order over what the store holds (version rules, Duplicate/Stale/Rejected), and summing the statistics
/// change of the whole batch per slot, for the served and the original population. Pure: Redis and in-process stores
/// call the same code, so their outcomes and statistics cannot drift apart.
/// </summary>
public sealed class ApplyFold(StatisticsShape shape)
{
    /// <summary>
    /// One delta buffer per slot, reused by every batch: allocating them per batch (2 x 30 x 17 KB at d = 64) made the
    /// garbage collector a visible share of the store's time. So a <see cref="BatchPlan"/>'s deltas are valid until the
    /// next <see cref="Plan"/> call, and calls must not overlap (both stores serialise them).
    /// </summary>
    private readonly double[]?[] _deltaBuffers = new double[shape.SlotCount][];

    public StatisticsShape Shape => shape;

    /// <summary>Validates every event (rejected ones get their result now) and groups the rest per user.</summary>
    public GroupedBatch Group(IReadOnlyList<UserStateChange> batch, ApplyResult[] results)
    {
        var eventsOf = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        var users = new List<string>();
        for (var i = 0; i < batch.Count; i++)
        {
            var problem = Validate(batch[i]);
            if (problem is not null)
            {
                results[i] = ApplyResult.Rejected(problem);
                continue;
            }
            if (!eventsOf.TryGetValue(batch[i].UserId, out var list))
            {
                eventsOf[batch[i].UserId] = list = [];
                users.Add(batch[i].UserId);
            }
            list.Add(i);
        }
        return new GroupedBatch(users, eventsOf);
    }

    /// <summary>Why the event cannot be applied whatever the stored state, or null.</summary>
    public string? Validate(UserStateChange? change)
    {
        if (change is null) return "the event is null";
        if (string.IsNullOrEmpty(change.UserId)) return "the user id is empty";
        if (change.EventId is null) return "the event id is missing";
        if (change.Version < 0) return $"version {change.Version} is negative";
        if (change.Partition is < 0) return $"partition {change.Partition} is negative";
        if (change.Recloak && (change.Forget || change.Cloaked is null || change.Original is not null || change.Classes is not null))
            return "a re-cloak carries the cloaked embedding and nothing else";
        if (change.Forget) return null;
        var d = shape.Dimension;
        if (change.Original is { } o && (o.Length != d || !AllFinite(o)))
            return $"the original embedding must be {d} finite values (got {o.Length})";
        if (change.Cloaked is { } c && (c.Length != d || !AllFinite(c)))
            return $"the cloaked embedding must be {d} finite values (got {c.Length})";
        if (change.Classes is { } classes)
        {
            if (classes.Length != shape.Attributes.Length)
                return $"expected a class for each of the {shape.Attributes.Length} attributes, got {classes.Length}";
            for (var a = 0; a < classes.Length; a++)
                if (classes[a] < -1 || classes[a] >= shape.Attributes[a].ClassCount)
                    return $"class {classes[a]} of attribute '{shape.Attributes[a].Name}' is outside -1..{shape.Attributes[a].ClassCount - 1}";
        }
        return null;
    }

    private static bool AllFinite(float[] values)
    {
        foreach (var v in values)
            if (!float.IsFinite(v)) return false;
        return true;
    }

    /// <summary>
    /// Folds each user's events in order over <paramref name="priors"/> (parallel to <paramref name="grouped"/>'s
    /// users), fills <paramref name="results"/>, and sums the statistics change of the batch per slot: only the first
    /// and the last state of a user matter. New states hold copies of the events' arrays, so a caller reusing its
    /// buffers cannot change what a store remembers.
    /// </summary>
    public BatchPlan Plan(IReadOnlyList<UserStateChange> batch, GroupedBatch grouped, PriorUser[] priors, ApplyResult[] results)
    {
        var users = grouped.Users;
        var plans = new UserPlan[users.Count];
        var deltas = new Dictionary<int, double[]>();
        var attributeCount = shape.Attributes.Length;
        for (var u = 0; u < users.Count; u++)
        {
            var p = priors[u];
            var state = p.State;
            var point = FoldPoint.Of(p);
            var changed = false;
            foreach (var i in grouped.EventsOf[users[u]])
            {
                var ev = batch[i];
                var outcome = point.Decide(ev.Version, ev.EventId, ev.Forget, ev.Recloak, carriesEmbeddings: ev.Original is not null && ev.Cloaked is not null);
                if (outcome != ApplyOutcome.Applied)
                {
                    results[i] = outcome switch
                    {
                        ApplyOutcome.Duplicate => ApplyResult.Duplicate,
                        ApplyOutcome.Stale => ApplyResult.Stale,
                        _ => ApplyResult.Rejected(FoldPoint.NoStateReason),
                    };
                    continue;
                }
                point = FoldPoint.After(ev.Version, ev.EventId, ev.Forget);
                changed = true;
                results[i] = ApplyResult.Applied;
                if (ev.Recloak)
                {
                    state = state! with { EventId = ev.EventId, Cloaked = (float[])ev.Cloaked!.Clone(), SweepMark = ev.SweepMark ?? state.SweepMark };
                    continue;
                }
                if (ev.Forget) state = null;
                else
                {
                    state = new UserState(users[u], ev.Version, ev.EventId,
                        ev.Original is { } o ? (float[])o.Clone() : state!.Original,
                        ev.Cloaked is { } c ? (float[])c.Clone() : state!.Cloaked,
                        ev.Classes is { } k ? (int[])k.Clone() : state?.Classes ?? Enumerable.Repeat(-1, attributeCount).ToArray())
                    {
                        Partition = ev.Partition ?? state?.Partition ?? -1,
                        SweepMark = ev.SweepMark ?? state?.SweepMark ?? 0,
                    };
                }
            }
            if (!changed)
            {
                plans[u] = new UserPlan(users[u], 'N', 0, "", p.State, p.State);
                continue;
            }
            var op = state is null ? 'F' : p.State is not null ? 'U' : 'C';
            plans[u] = new UserPlan(users[u], op, point.Last!.Value, point.LastEventId!, p.State, state);
            AddContribution(deltas, p.State, state);
        }
        var slots = deltas.Keys.Order().ToArray();
        return new BatchPlan(plans, slots, slots.Select(s => deltas[s]).ToArray());
    }

    /// <summary>
    /// Removes <paramref name="before"/>'s contribution and adds <paramref name="after"/>'s, for each population only
    /// where its embedding or a class changed, so that an event touching only the served embedding (a re-cloak) sends
    /// no original slot, and the reverse.
    /// </summary>
    private void AddContribution(Dictionary<int, double[]> deltas, UserState? before, UserState? after)
    {
        AddContribution(deltas, StatisticsPopulation.Served, before, before?.Cloaked, after, after?.Cloaked);
        AddContribution(deltas, StatisticsPopulation.Original, before, before?.Original, after, after?.Original);
    }

    private void AddContribution(Dictionary<int, double[]> deltas, StatisticsPopulation population,
        UserState? before, float[]? xBefore, UserState? after, float[]? xAfter)
    {
        var sameEmbedding = xBefore is not null && xAfter is not null && xBefore.AsSpan().SequenceEqual(xAfter);
        double[]? yBefore = null, yAfter = null;
        for (var a = 0; a < shape.Attributes.Length; a++)
        {
            var k0 = before?.Classes[a] ?? -1;
            var k1 = after?.Classes[a] ?? -1;
            if (sameEmbedding && k0 == k1) continue;
            if (k0 >= 0)
            {
                yBefore ??= SufficientStatistics.Centre(xBefore!, shape.Reference);
                SufficientStatistics.AddOuter(Delta(deltas, shape.Slot(population, a, k0)), yBefore, -1.0);
            }
            if (k1 >= 0)
            {
                yAfter ??= SufficientStatistics.Centre(xAfter!, shape.Reference);
                SufficientStatistics.AddOuter(Delta(deltas, shape.Slot(population, a, k1)), yAfter, +1.0);
            }
        }
    }

    private double[] Delta(Dictionary<int, double[]> deltas, int slot)
    {
        if (!deltas.TryGetValue(slot, out var delta))
        {
            delta = _deltaBuffers[slot] ??= new double[shape.StatsLength];
            Array.Clear(delta);
            deltas[slot] = delta;
        }
        return delta;
    }
}
