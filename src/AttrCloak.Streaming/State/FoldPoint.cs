namespace AttrCloak.Streaming.State;

/// <summary>
/// How far a user's fold has come: the last applied version (null: none known), whether that was a forget, the event
/// id that set it, and whether the user has a state. <see cref="Decide"/> is the one place where an event is found
/// Applied, Duplicate, Stale or Rejected (no state to change): the store's fold (<see cref="ApplyFold"/>) decides
/// with it over what the store holds, and the worker's planner (<c>Pipeline.BatchPlanner</c>) calls the same method
/// over the state it read, to know before the write which events to cloak. The two calls are not two rules: the
/// store's call only finds something else when its prior differs from the worker's (another writer, a tombstone
/// the worker cannot see), and the worker then forgets what it knew of the user (<c>GenerationContext.Remember</c>).
/// Pure.
/// </summary>
public readonly record struct FoldPoint(long? Last, bool LastIsForget, string? LastEventId, bool HasState)
{
    /// <summary>Why an event is Rejected by <see cref="Decide"/>.</summary>
    public const string NoStateReason = "the user has no stored state, so the event needs both the original and the cloaked embedding";

    /// <summary>Nothing known of the user: every event applies (or is rejected for want of a state).</summary>
    public static readonly FoldPoint Nothing = new(null, false, null, false);

    /// <summary>The point of a stored user: their state, or their forget's tombstone, or nothing.</summary>
    public static FoldPoint Of(PriorUser prior) => prior.State is { } s
        ? new FoldPoint(s.Version, false, s.EventId, true)
        : prior.TombstoneVersion is { } t ? new FoldPoint(t, true, null, false) : Nothing;

    /// <summary>
    /// What an event does here: a re-cloak applies only at exactly the user's version (a newer event won, an older
    /// state is gone: Stale); any other event applies only above the last version (<see cref="VersionRule"/>: at or
    /// below it a Duplicate of the last applied event, or Stale), and, unless it is a forget, only to a user with a
    /// state or when it <paramref name="carriesEmbeddings"/> (both the original and the cloaked one; Rejected otherwise).
    /// </summary>
    public ApplyOutcome Decide(long version, string eventId, bool forget, bool recloak, bool carriesEmbeddings)
    {
        if (recloak) return HasState && !LastIsForget && Last == version ? ApplyOutcome.Applied : ApplyOutcome.Stale;
        if (!VersionRule.Applies(Last, version))
            return VersionRule.IsDuplicate(Last!.Value, LastIsForget, LastEventId, version, forget, eventId) ? ApplyOutcome.Duplicate : ApplyOutcome.Stale;
        if (forget || HasState || carriesEmbeddings) return ApplyOutcome.Applied;
        return ApplyOutcome.Rejected;
    }

    /// <summary>The point after an applied event (a re-cloak keeps the version and takes the event id).</summary>
    public static FoldPoint After(long version, string eventId, bool forget) => new(version, forget, eventId, !forget);
}
