using AttrCloak.Streaming.Redis.Scripts;
using StackExchange.Redis;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Redis;

/// <summary>Every slot's raw sums (both populations; see <see cref="SufficientStatistics"/>) at one version, as read from Redis.</summary>
internal sealed record RawStatistics(string Layout, StatisticsVersion Version, double[][] Slots, bool[] Malformed)
{
    /// <summary>Reads every statistics key and the version in one atomic script call.</summary>
    public static async Task<RawStatistics> ReadAsync(IDatabaseAsync db, StoreLayout layout)
    {
        var keys = new RedisKey[1 + layout.SlotCount];
        keys[0] = layout.MetaKey;
        layout.StatsKeys.CopyTo(keys, 1);
        var r = (RedisValue[])(await db.ScriptEvaluateAsync(LuaScripts.ReadStatistics, keys).ConfigureAwait(false))!;
        var length = SufficientStatistics.Length(layout.Dimension);
        var slots = new double[layout.SlotCount][];
        var malformed = new bool[layout.SlotCount];
        for (var s = 0; s < slots.Length; s++)
        {
            slots[s] = new double[length];
            var bytes = (byte[]?)r[3 + s];
            if (bytes is null || bytes.Length == 0) continue;
            if (bytes.Length != length * sizeof(double))
            {
                malformed[s] = true;
                continue;
            }
            Codec.BytesToDoubles(bytes, slots[s]);
        }
        return new RawStatistics((string?)r[0] ?? "", new StatisticsVersion((string?)r[1] ?? "", (long)r[2]), slots, malformed);
    }
}
