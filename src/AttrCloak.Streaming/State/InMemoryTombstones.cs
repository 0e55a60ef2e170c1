
namespace AttrCloak.Streaming.State;

/// <summary>
/// The forget tombstones of an in-process deployment, shared by its generations' <see cref="InMemoryStateStore"/>s as
/// the Redis ones share <c>{prefix}:tomb:</c>: named by HMAC-SHA256(secret, user id), holding only the forget's version,
/// expiring after the TTL. Thread-safe.
/// </summary>
public sealed class InMemoryTombstones(byte[] secret, TimeSpan ttl, TimeProvider? timeProvider = null)
{
    private readonly TombstoneNames _names = new(secret);
    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;
    private readonly Dictionary<string, (long Version, DateTimeOffset Expires)> _tombstones = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private DateTimeOffset _nextExpirySweep;

    /// <summary>The version of the user's forget, or null when there is none (or it expired).</summary>
    public long? Version(string userId)
    {
        var name = _names.Name(userId);
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            DropExpired(now);
            if (!_tombstones.TryGetValue(name, out var t)) return null;
            if (t.Expires > now) return t.Version;
            _tombstones.Remove(name); // expired, as Redis would have dropped it
            return null;
        }
    }

    /// <summary>Records the user's forget at <paramref name="version"/>.</summary>
    public void Set(string userId, long version)
    {
        var name = _names.Name(userId);
        lock (_lock) _tombstones[name] = (version, _time.GetUtcNow() + ttl);
    }

    /// <summary>Tests: the tombstones' names.</summary>
    internal IReadOnlyList<string> NamesForTests()
    {
        lock (_lock) return _tombstones.Keys.ToList();
    }

    /// <summary>Drops expired tombstones now and then (at most once per tenth of the TTL), so they cannot pile up.</summary>
    private void DropExpired(DateTimeOffset now)
    {
        if (now < _nextExpirySweep) return;
        _nextExpirySweep = now + ttl / 10;
        foreach (var (name, t) in _tombstones.ToList())
            if (t.Expires <= now) _tombstones.Remove(name);
    }
}
