using System.Globalization;
using StackExchange.Redis;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Redis;

/// <summary>
/// What the store last read or wrote for a user, with its compare-and-set token (<c>U{version}|{event id}</c> for a
/// state, <c>T{version}</c> for a tombstone, empty for nothing). A record taken from the caller's
/// <see cref="UserCache"/> is only a guess about Redis: the apply script compares the token, so a stale record costs
/// one retry, never a wrong write.
/// </summary>
internal readonly record struct UserRecord(RedisValue Token, UserState? State, long? TombstoneVersion)
{
    public static readonly UserRecord Nothing = new(RedisValue.EmptyString, null, null);

    /// <summary>The token of a state: its version and event id (a re-cloak keeps the version and changes the event id).</summary>
    public static UserRecord ForState(UserState state) =>
        new("U" + state.Version.ToString(CultureInfo.InvariantCulture) + "|" + state.EventId, state, null);

    public static UserRecord ForTombstone(long version) => new("T" + version.ToString(CultureInfo.InvariantCulture), null, version);

    /// <summary>The record of a cache entry.</summary>
    public static UserRecord Of(PriorUser prior) =>
        prior.State is { } s ? ForState(s) : prior.TombstoneVersion is { } t ? ForTombstone(t) : Nothing;

    /// <summary>The cache entry of this record.</summary>
    public PriorUser Prior => new(State, TombstoneVersion);
}
