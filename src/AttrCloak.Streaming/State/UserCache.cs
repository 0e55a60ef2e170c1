namespace AttrCloak.Streaming.State;

/// <summary>
/// The one memory of what a store holds for the users a worker wrote or read recently (<see cref="PriorUser"/>: their
/// state, or their forget's tombstone version, or nothing), so that a batch of users seen before needs no read round
/// trip (Kafka keys messages by user, so a worker keeps seeing the same users). The worker plans from it
/// (<c>Pipeline.BatchPlanner</c>) and hands it to the store with the batch
/// (<see cref="IStateStore.ApplyConsumedAsync(IReadOnlyList{UserStateChange}, IReadOnlyList{ConsumedOffset}, UserCache, CancellationToken)"/>),
/// which takes its priors from it instead of reading them, still checks each under its atomic write (a store on
/// Redis compares every user's version and event id: a stale entry costs a retry, never a wrong write), and records
/// what it read and wrote back into it. One per worker and store (generation); there is no second copy in the store.
/// <para>
/// The worker only trusts an entry while it is the user's only writer: the whole cache is dropped on every partition
/// assignment change, when a store call fails (a timed-out write may or may not have happened) and when the state is
/// lost; a user whose outcome the store decided differently from the plan (someone else wrote) is dropped, so the
/// next batch reads them again.
/// </para>
/// Bounded: two generations of at most <c>capacity / 2</c> entries each; a hit in the old generation moves the entry
/// into the young one, and when the young one is full the old one is dropped (an approximate LRU with O(1) steps and
/// no per-entry bookkeeping). Not thread-safe: used by one worker's consume thread and the store calls it awaits.
/// </summary>
public sealed class UserCache
{
    private readonly int _generationCapacity;
    private Dictionary<string, PriorUser> _young = new(StringComparer.Ordinal);
    private Dictionary<string, PriorUser> _old = new(StringComparer.Ordinal);

    public UserCache(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _generationCapacity = Math.Max(1, capacity / 2);
        Enabled = capacity > 0;
    }

    public bool Enabled { get; }

    public int Count => _young.Count + _old.Count;

    /// <summary>What the store held for the user when last read or written; false when not cached.</summary>
    public bool TryGet(string userId, out PriorUser prior)
    {
        if (_young.TryGetValue(userId, out prior)) return true;
        if (!_old.Remove(userId, out prior)) return false;
        Put(userId, prior);
        return true;
    }

    public void Set(string userId, PriorUser prior)
    {
        if (!Enabled) return;
        _old.Remove(userId);
        Put(userId, prior);
    }

    public void Remove(string userId)
    {
        _young.Remove(userId);
        _old.Remove(userId);
    }

    public void Clear()
    {
        _young.Clear();
        _old.Clear();
    }

    private void Put(string userId, PriorUser prior)
    {
        if (!_young.ContainsKey(userId) && _young.Count >= _generationCapacity)
        {
            // Rotate: the old generation (not touched since the last rotation) goes, the young one becomes old.
            (_old, _young) = (_young, _old);
            _young.Clear();
        }
        _young[userId] = prior;
    }
}
