using AttrCloak.Streaming.Redis.State;
using AttrCloak.Streaming.Redis.Statistics;

namespace AttrCloak.Streaming.Redis;

/// <summary>
/// Per-user state and the class statistics of the served (cloaked) and of the original embeddings, changed together
/// atomically. Implemented on Redis by <see cref="RedisStateStore"/> and in process by <c>InMemoryStateStore</c>
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

    /// <summary>The user's state, or null when unknown or forgotten.</summary>
    Task<UserState?> GetUserAsync(string userId, CancellationToken cancellationToken = default);

    /// <summary>The states of several users in one round trip (null entries for unknown users), in the order asked.</summary>
    Task<UserState?[]> GetUsersAsync(IReadOnlyList<string> userIds, CancellationToken cancellationToken = default);

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
}
