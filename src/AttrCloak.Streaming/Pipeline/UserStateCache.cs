using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// The pipeline's memory of what the store holds for the users it wrote recently, so that a batch of users seen
/// before needs no <see cref="State.IStateStore.GetUsersAsync"/> round trip (Kafka keys messages by user, so a worker
/// keeps seeing the same users). An entry is the state the store was left in by this worker's last applied batch
/// (null: the user has no state). It is only trusted while this worker is the user's only writer:
/// <list type="bullet">
/// <item>it is dropped whole on every partition assignment change (a user's partition may have had another owner)
/// and when a store call fails (a timed-out write may or may not have happened);</item>
/// <item>a user whose outcome the store decided differently from the plan (e.g. Stale where the plan said Applied:
/// someone else wrote) is dropped, so the next batch reads them again.</item>
/// </list>
/// Bounded: two generations of at most <c>capacity / 2</c> entries each; a hit in the old generation moves the entry
/// into the young one, and when the young one is full the old one is dropped (an approximate LRU with O(1) steps and
/// no per-entry bookkeeping). Used by the consume thread only.
/// </summary>
internal sealed class UserStateCache
{
    private readonly int _generationCapacity;
    private Dictionary<string, UserState?> _young = new(StringComparer.Ordinal);
    private Dictionary<string, UserState?> _old = new(StringComparer.Ordinal);

    public UserStateCache(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _generationCapacity = Math.Max(1, capacity / 2);
        Enabled = capacity > 0;
    }

    public bool Enabled { get; }

    public int Count => _young.Count + _old.Count;

    /// <summary>The user's cached state (null = known to have none); false when not cached.</summary>
    public bool TryGet(string userId, out UserState? state)
    {
        if (_young.TryGetValue(userId, out state)) return true;
        if (!_old.Remove(userId, out state)) return false;
        Put(userId, state);
        return true;
    }

    public void Set(string userId, UserState? state)
    {
        if (!Enabled) return;
        _old.Remove(userId);
        Put(userId, state);
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

    private void Put(string userId, UserState? state)
    {
        if (!_young.ContainsKey(userId) && _young.Count >= _generationCapacity)
        {
            // Rotate: the old generation (not touched since the last rotation) goes, the young one becomes old.
            (_old, _young) = (_young, _old);
            _young.Clear();
        }
        _young[userId] = state;
    }
}
