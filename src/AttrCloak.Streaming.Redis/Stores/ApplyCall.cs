using System.Globalization;
using AttrCloak.Streaming.State;
using StackExchange.Redis;

namespace AttrCloak.Streaming.Redis;

/// <summary>The apply script's call: which users it writes or checks, and its keys and arguments.</summary>
internal static class ApplyCall
{
    internal sealed record UserWrite(string UserId, RedisValue ExpectedToken, char Op, long Version, string EventId, UserState? Initial, UserState? Final);

    /// <summary>Arguments per user of the apply script (see its header).</summary>
    private const int ArgsPerUser = 10;

    /// <summary>
    /// The users the apply script writes or checks: every changed user, against the token of the record the plan
    /// started from, and the unchanged users whose outcomes were decided on a cached record ('N': compare only, so
    /// that Duplicate/Stale decided on a stale cache cannot slip through). This check is the store's whole part in the
    /// decision: the outcomes themselves come from the one rule (<see cref="FoldPoint.Decide"/>) over those records.
    /// </summary>
    public static List<UserWrite> Writes(BatchPlan plan, UserRecord[] priors, bool[] fromCache)
    {
        var writes = new List<UserWrite>(plan.Users.Length);
        for (var u = 0; u < plan.Users.Length; u++)
        {
            var p = plan.Users[u];
            if (p.Op == 'N' && !fromCache[u]) continue;
            writes.Add(new UserWrite(p.UserId, priors[u].Token, p.Op, p.Version, p.EventId, p.Initial, p.Final));
        }
        return writes;
    }

    /// <summary>
    /// The apply script's keys and arguments (see its header) for <paramref name="writes"/> and, unless the mode is 'N',
    /// the plan's statistics slots: new absolute values from <paramref name="statistics"/> ('A', returned as Absolute to
    /// install once the write succeeded) or the deltas for the script to add ('D').
    /// </summary>
    public static (RedisKey[] Keys, RedisValue[] Args, double[][]? Absolute) Build(StoreLayout layout, StatisticsCopy statistics, string ttlMilliseconds,
        BatchPlan plan, List<UserWrite> writes, char mode, string expected, IReadOnlyList<ConsumedOffset> consumed)
    {
        var ns = mode == 'N' ? 0 : plan.Slots.Length;
        var nu = writes.Count;
        var keys = new RedisKey[1 + ns + nu];
        var args = new RedisValue[6 + ns + ArgsPerUser * nu];
        keys[0] = layout.MetaKey;
        args[0] = layout.Fingerprint;
        args[1] = mode.ToString();
        args[2] = expected;
        args[3] = ns;
        args[4] = nu;
        args[5] = ttlMilliseconds;
        double[][]? absolute = mode == 'A' ? new double[ns][] : null;
        for (var s = 0; s < ns; s++)
        {
            var slot = plan.Slots[s];
            keys[1 + s] = layout.StatsKeys[slot];
            args[6 + s] = mode == 'A' ? statistics.EncodeAbsolute(slot, plan.Deltas[s], out absolute![s]) : statistics.EncodeDelta(slot, plan.Deltas[s]);
        }
        var tombs = new List<RedisKey>();
        for (var u = 0; u < nu; u++)
        {
            var w = writes[u];
            keys[1 + ns + u] = layout.UserKey(w.UserId);
            var o = 6 + ns + ArgsPerUser * u;
            args[o] = w.ExpectedToken;
            args[o + 1] = w.Op.ToString();
            args[o + 2] = w.Version.ToString(CultureInfo.InvariantCulture);
            args[o + 3] = w.EventId;
            args[o + 4] = args[o + 5] = args[o + 6] = args[o + 8] = args[o + 9] = RedisValue.EmptyString;
            if (w.Op != 'N' && w.Final is { } f)
            {
                // An update sends only the fields that changed; a create sends all of them.
                var i = w.Op == 'U' ? w.Initial : null;
                if (i is null || !i.Original.AsSpan().SequenceEqual(f.Original)) args[o + 4] = Codec.FloatsToBytes(f.Original);
                if (i is null || !i.Cloaked.AsSpan().SequenceEqual(f.Cloaked)) args[o + 5] = Codec.FloatsToBytes(f.Cloaked);
                if (i is null || !i.Classes.AsSpan().SequenceEqual(f.Classes)) args[o + 6] = Codec.ClassesToBytes(f.Classes);
                if (f.Partition >= 0 && (i is null || i.Partition != f.Partition)) args[o + 8] = f.Partition;
                if (i is null ? f.SweepMark != 0 : i.SweepMark != f.SweepMark) args[o + 9] = f.SweepMark;
            }
            // The tombstone key (a keyed hash, costly to compute) only where the script may read or write it: to
            // create or forget, or when no state is expected (the compare-and-set then looks at the tombstone).
            var needsTomb = w.Op is 'C' or 'F' || ((string?)w.ExpectedToken)?.StartsWith('U') != true;
            if (needsTomb) tombs.Add(layout.TombKey(w.UserId));
            args[o + 7] = needsTomb ? tombs.Count : 0;
        }
        if (tombs.Count > 0)
        {
            Array.Resize(ref keys, keys.Length + tombs.Count);
            tombs.CopyTo(keys, 1 + ns + nu);
        }
        if (consumed.Count > 0)
        {
            // The applied-offset watermarks: the last key, then (field, offset) pairs after the users' arguments.
            Array.Resize(ref keys, keys.Length + 1);
            keys[^1] = layout.ConsumedKey;
            var at = args.Length;
            Array.Resize(ref args, at + 2 * consumed.Count);
            for (var c = 0; c < consumed.Count; c++)
            {
                args[at + 2 * c] = StoreLayout.ConsumedField(consumed[c]);
                args[at + 2 * c + 1] = consumed[c].Offset;
            }
        }
        return (keys, args, absolute);
    }
}
