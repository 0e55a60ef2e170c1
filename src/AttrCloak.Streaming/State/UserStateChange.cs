namespace AttrCloak.Streaming.State;

/// <summary>
/// One event's effect on a user's stored state, as the worker computed it. <see cref="Version"/> is the per-user
/// version assigned upstream (strictly increasing per user); an event whose version is not above the last applied one
/// changes nothing. Null fields are unchanged; a user seen for the first time needs <see cref="Original"/> and
/// <see cref="Cloaked"/> (classes default to unknown). <see cref="Forget"/> erases the user.
/// </summary>
public sealed record UserStateChange(string UserId, string EventId, long Version)
{
    /// <summary>The user's original (uncloaked) embedding, d float32 values; null = unchanged.</summary>
    public float[]? Original { get; init; }

    /// <summary>The embedding served for the user (cloaked), d float32 values; null = unchanged. It is what the class statistics accumulate.</summary>
    public float[]? Cloaked { get; init; }

    /// <summary>Class index per attribute of the catalog (-1 = unknown, not counted for that attribute); null = unchanged.</summary>
    public int[]? Classes { get; init; }

    /// <summary>Erase the user: state deleted, contribution removed from the statistics, a keyed-hash tombstone left behind.</summary>
    public bool Forget { get; init; }

    /// <summary>
    /// A re-cloak of the stored state without a new event: <see cref="Cloaked"/> and <see cref="EventId"/> replace the
    /// stored ones only if the user's stored version is exactly <see cref="Version"/> (otherwise Stale: a newer event
    /// won). Used by a generation's seating and by sweeps; carries nothing else.
    /// </summary>
    public bool Recloak { get; init; }

    /// <summary>The input partition the user's events arrive on (the one that owns the user); null = unchanged.</summary>
    public int? Partition { get; init; }

    /// <summary>
    /// The user's sweep mark after this change (the generation's sweep epoch when the change is published by the live
    /// stream, so that no sweep publishes it again); null = unchanged.
    /// </summary>
    public int? SweepMark { get; init; }

    /// <summary>A re-cloak (see <see cref="Recloak"/>).</summary>
    public static UserStateChange RecloakUser(string userId, string eventId, long version, float[] cloaked) =>
        new(userId, eventId, version) { Recloak = true, Cloaked = cloaked };

    /// <summary>A forget request.</summary>
    public static UserStateChange ForgetUser(string userId, string eventId, long version) =>
        new(userId, eventId, version) { Forget = true };
}

/// <summary>A user's stored state: the last applied event and the embeddings and classes it left.</summary>
public sealed record UserState(string UserId, long Version, string EventId, float[] Original, float[] Cloaked, int[] Classes)
{
    /// <summary>The input partition the user's events arrive on, -1 when not known (written by a tool, not from Kafka).</summary>
    public int Partition { get; init; } = -1;

    /// <summary>The generation sweep epoch up to which the user's state was published (0: none; see the sweeps).</summary>
    public int SweepMark { get; init; }
}

/// <summary>A stored user as served: the cloaked embedding and the class per catalog attribute (-1 unknown).</summary>
public sealed record ServedUser(string UserId, float[] Cloaked, int[] Classes);

/// <summary>What happened to one event of a batch.</summary>
public enum ApplyOutcome
{
    /// <summary>The event changed the user's state (and the statistics, when the served embedding or a class changed).</summary>
    Applied,
    /// <summary>The same event (same version and event id, or the forget at that version) was applied before; nothing changed.</summary>
    Duplicate,
    /// <summary>A newer or equal version was applied before (or the user was forgotten at a newer version); nothing changed.</summary>
    Stale,
    /// <summary>The event cannot be applied (see <see cref="ApplyResult.Reason"/>); nothing changed. Dead-letter it.</summary>
    Rejected,
}

/// <summary>The outcome of one event, at the same position as the event in the batch.</summary>
public readonly record struct ApplyResult(ApplyOutcome Outcome, string? Reason = null)
{
    public static readonly ApplyResult Applied = new(ApplyOutcome.Applied);
    public static readonly ApplyResult Duplicate = new(ApplyOutcome.Duplicate);
    public static readonly ApplyResult Stale = new(ApplyOutcome.Stale);
    public static ApplyResult Rejected(string reason) => new(ApplyOutcome.Rejected, reason);
}
