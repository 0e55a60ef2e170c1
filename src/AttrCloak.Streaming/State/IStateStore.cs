using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.State;

/// <summary>
/// Per-user state and the class statistics of the served (cloaked) and of the original embeddings, changed together
/// atomically. Implemented on Redis by <c>RedisStateStore</c> (AttrCloak.Streaming.Redis) and in process by <c>InMemoryStateStore</c>
/// (AttrCloak.Streaming.State), on the same batch logic; the worker depends on this interface.
/// </summary>
public interface IStateStore
{
    /// <summary>
    /// Applies a batch in order: for each user, the events with a version above the last applied one change the state;
    /// the users' new states, their forget tombstones and the statistics change in one atomic step, or not at all.
    /// Returns one result per event, at the event's position.
    /// </summary>
    Task<ApplyResult[]> ApplyAsync(IReadOnlyList<UserStateChange> batch, CancellationToken cancellationToken = default);

    /// <summary>
    /// <see cref="ApplyAsync"/>, and in the same atomic step raises
    /// each partition's applied-offset watermark to <paramref name="consumed"/>'s offset (a maximum: never lowered).
    /// The watermark tells the worker a redelivery after a crash (at or below it: already decided once) from an event
    /// first seen now (above it: an older version then is an out-of-order producer, a dead letter). A store that does
    /// not keep watermarks (the default) ignores them; <see cref="ReadConsumedOffsetsAsync"/> then returns null.
    /// </summary>
    Task<ApplyResult[]> ApplyConsumedAsync(IReadOnlyList<UserStateChange> batch, IReadOnlyList<ConsumedOffset> consumed, CancellationToken cancellationToken = default) =>
        ApplyAsync(batch, cancellationToken);

    /// <summary>
    /// <see cref="ApplyConsumedAsync(IReadOnlyList{UserStateChange}, IReadOnlyList{ConsumedOffset}, CancellationToken)"/> for a
    /// caller that planned the batch on the users in <paramref name="cache"/> (the worker): the store takes their
    /// priors from there instead of reading them, checks under its atomic write that each is still what it holds
    /// (another writer meanwhile: those users are read again and the batch decided again), and records in the cache
    /// what it read and wrote. A store that holds its state at hand (in process) needs no priors and ignores the cache.
    /// </summary>
    Task<ApplyResult[]> ApplyConsumedAsync(IReadOnlyList<UserStateChange> batch, IReadOnlyList<ConsumedOffset> consumed, UserCache cache,
        CancellationToken cancellationToken = default) =>
        ApplyConsumedAsync(batch, consumed, cancellationToken);

    /// <summary>
    /// The applied-offset watermark of each partition asked (-1: none yet), or null when this store keeps none
    /// (then no event can be told apart from a redelivery, and the worker dead-letters no stale version).
    /// </summary>
    Task<long[]?> ReadConsumedOffsetsAsync(IReadOnlyList<ConsumedOffset> partitions, CancellationToken cancellationToken = default) =>
        Task.FromResult<long[]?>(null);

    /// <summary>
    /// True when this instance found no state at all and created it (an empty Redis: a new deployment, or a lost one).
    /// A store that cannot tell says false.
    /// </summary>
    bool CreatedEmpty => false;

    /// <summary>The user's state, or null when unknown or forgotten.</summary>
    Task<UserState?> GetUserAsync(string userId, CancellationToken cancellationToken = default);

    /// <summary>The states of several users in one round trip (null entries for unknown users), in the order asked.</summary>
    Task<UserState?[]> GetUsersAsync(IReadOnlyList<string> userIds, CancellationToken cancellationToken = default);

    /// <summary>
    /// <see cref="GetUsersAsync(IReadOnlyList{string}, CancellationToken)"/>, recording in <paramref name="cache"/> what
    /// was read (a forgotten user's tombstone too), so that a batch planned on these states is applied with them
    /// (<see cref="ApplyConsumedAsync(IReadOnlyList{UserStateChange}, IReadOnlyList{ConsumedOffset}, UserCache, CancellationToken)"/>)
    /// without reading them again. A store that needs no priors from its caller records nothing.
    /// </summary>
    Task<UserState?[]> GetUsersAsync(IReadOnlyList<string> userIds, UserCache cache, CancellationToken cancellationToken = default) =>
        GetUsersAsync(userIds, cancellationToken);

    /// <summary>
    /// A consistent snapshot of all class statistics with its version: <see cref="StatisticsSnapshot.Attributes"/> of
    /// the served embeddings, <see cref="StatisticsSnapshot.Originals"/> of the original ones.
    /// </summary>
    Task<StatisticsSnapshot> ReadStatisticsAsync(CancellationToken cancellationToken = default);

    /// <summary>The current statistics version (one small read): refresh a cached snapshot when it differs.</summary>
    Task<StatisticsVersion> StatisticsSequenceAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Every stored user's served (cloaked) embedding and classes, in no particular order, without their original
    /// embedding: O(n), for maintenance and for seeding the shadow audit's sample at start-up, never on the event path.
    /// Not a snapshot: users changed during the scan may be seen in either state (or, for users created or forgotten
    /// during it, seen or not).
    /// </summary>
    IAsyncEnumerable<ServedUser> ScanServedAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Every stored user's whole state (original and cloaked embedding, classes, version, event id, partition): O(n),
    /// for seating a generation (a batch cloak over its originals) and maintenance. Not a snapshot (as
    /// <see cref="ScanServedAsync"/>).
    /// </summary>
    IAsyncEnumerable<UserState> ScanStatesAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// One page of the users' sweep view (id, input partition, sweep mark), for sweeps that visit every user: start
    /// with cursor "0"; the page's <see cref="UserSweepPage.Cursor"/> continues, "0" when done. A user present during
    /// the whole scan is returned at least once (SCAN's guarantee); users created during it may be missed.
    /// </summary>
    Task<UserSweepPage> ScanSweepAsync(string cursor, int count, CancellationToken cancellationToken = default);

    /// <summary>Sets the sweep mark of each listed user that still has a state (forgotten users are not re-created).</summary>
    Task MarkSweptAsync(IReadOnlyList<string> userIds, int epoch, CancellationToken cancellationToken = default);

    /// <summary>The number of users with a state.</summary>
    Task<long> CountUsersAsync(CancellationToken cancellationToken = default);

    /// <summary>Whether each user has a state (in the order asked; cheap: no state is read).</summary>
    Task<bool[]> ContainsAsync(IReadOnlyList<string> userIds, CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes every key of this store (the deployment's shared tombstones stay): retiring a generation. Its meta key
    /// goes first, so that a writer still holding the store fails whole (as on a lost state) instead of writing into a
    /// half-deleted one.
    /// </summary>
    Task DeleteAllAsync(CancellationToken cancellationToken = default);
}

/// <summary>A user as a sweep sees them: the input partition that owns them (-1 unknown) and their sweep mark (0 none).</summary>
public readonly record struct SweepEntry(string UserId, int Partition, int SweepMark);

/// <summary>One page of <see cref="IStateStore.ScanSweepAsync"/>; <see cref="Cursor"/> "0" = the scan is complete.</summary>
public sealed record UserSweepPage(string Cursor, IReadOnlyList<SweepEntry> Users)
{
    public bool Done => Cursor == "0";
}

/// <summary>The highest offset of a Kafka topic partition whose event a batch decided (see <see cref="IStateStore.ReadConsumedOffsetsAsync"/>; ignored there).</summary>
public readonly record struct ConsumedOffset(string Topic, int Partition, long Offset);
