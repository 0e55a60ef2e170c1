using StackExchange.Redis;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Redis;

/// <summary>
/// What the store last read or wrote for a user: the compare-and-set token (<c>U{version}|{event id}</c> for a state,
/// <c>T{version}</c> for a tombstone, empty for nothing) and the state. A record is only a guess about Redis: the apply
/// script compares the token, so a stale record costs one retry, never a wrong write.
/// </summary>
internal readonly record struct UserRecord(RedisValue Token, UserState? State, long? TombstoneVersion)
{
    public static readonly UserRecord Nothing = new(RedisValue.EmptyString, null, null);

    public long? Version => State?.Version ?? TombstoneVersion;

    /// <summary>The token of a state: its version and event id (a re-cloak keeps the version and changes the event id).</summary>
    public static UserRecord ForState(UserState state) =>
        new("U" + state.Version.ToString(System.Globalization.CultureInfo.InvariantCulture) + "|" + state.EventId, state, null);

    public static UserRecord ForTombstone(long version) => new("T" + version.ToString(System.Globalization.CultureInfo.InvariantCulture), null, version);
}

/// <summary>
/// Bounded least-recently-used map of <see cref="UserRecord"/>s, so that a batch of users this process wrote or just
/// read needs no read round trip (Kafka keys records by user, so a worker keeps seeing the same users). A forgotten
/// user's record holds no embedding. Thread-safe.
/// </summary>
internal sealed class UserRecordCache(int capacity)
{
    private readonly Dictionary<string, LinkedListNode<(string User, UserRecord Record)>> _map = new(StringComparer.Ordinal);
    private readonly LinkedList<(string User, UserRecord Record)> _order = new();
    private readonly Lock _lock = new();

    public int Count
    {
        get { lock (_lock) return _map.Count; }
    }

    public bool TryGet(string user, out UserRecord record)
    {
        lock (_lock)
        {
            if (_map.TryGetValue(user, out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
                record = node.Value.Record;
                return true;
            }
        }
        record = default;
        return false;
    }

    /// <summary>Stores what was written (authoritative for this process).</summary>
    public void Set(string user, UserRecord record) => Put(user, record, onlyIfNotOlder: false);

    /// <summary>Stores what was read, unless a newer record is already known (a read racing a write).</summary>
    public void Offer(string user, UserRecord record) => Put(user, record, onlyIfNotOlder: true);

    public void Remove(string user)
    {
        lock (_lock)
            if (_map.Remove(user, out var node)) _order.Remove(node);
    }

    public void Clear()
    {
        lock (_lock)
        {
            _map.Clear();
            _order.Clear();
        }
    }

    private void Put(string user, UserRecord record, bool onlyIfNotOlder)
    {
        if (capacity <= 0) return;
        lock (_lock)
        {
            if (_map.TryGetValue(user, out var node))
            {
                if (onlyIfNotOlder && node.Value.Record.Version > (record.Version ?? -1)) return;
                _order.Remove(node);
                node.Value = (user, record);
                _order.AddFirst(node);
                return;
            }
            _map[user] = _order.AddFirst((user, record));
            if (_map.Count > capacity)
            {
                var last = _order.Last!;
                _order.RemoveLast();
                _map.Remove(last.Value.User);
            }
        }
    }
}
