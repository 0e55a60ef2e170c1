namespace AttrCloak.Streaming.State;

/// <summary>
/// The one rule that decides whether an event changes a user, given the last event applied to them: it applies only
/// above their last version; at or below it nothing changes, and it is a Duplicate (a redelivery of that very event)
/// or Stale. Used through <see cref="FoldPoint.Decide"/>, which both the store's fold (<see cref="ApplyFold"/>) and
/// the worker's planner (<c>Pipeline.BatchPlanner</c>) call.
/// </summary>
public static class VersionRule
{
    /// <summary>Whether an event of <paramref name="version"/> applies over a user whose last applied version is <paramref name="last"/> (null: none).</summary>
    public static bool Applies(long? last, long version) => last is not { } l || version > l;

    /// <summary>
    /// Of an event that does not apply: whether it is the user's last applied event again. A forget repeats a forget
    /// of the same version (a tombstone holds no event id); any other event repeats the state-setting event with the
    /// same version and event id.
    /// </summary>
    public static bool IsDuplicate(long last, bool lastIsForget, string? lastEventId, long version, bool forget, string eventId) =>
        version == last && (lastIsForget ? forget : !forget && eventId == lastEventId);
}
