using AttrCloak.Streaming.Redis.Scripts;
using StackExchange.Redis;

namespace AttrCloak.Streaming.Redis.Statistics;

/// <summary>Every slot's raw sums (see <see cref="SufficientStatistics"/>) at one version, as read from Redis.</summary>
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

    /// <summary>Means and covariances per attribute, plus each attribute's global fit (the sums of its classes).</summary>
    public static StatisticsSnapshot ToSnapshot(StoreLayout layout, StatisticsVersion version, double[][] slots)
    {
        var d = layout.Dimension;
        var attributes = new List<ClassStatisticsSnapshot>(layout.Attributes.Length);
        for (var a = 0; a < layout.Attributes.Length; a++)
        {
            var spec = layout.Attributes[a];
            var k = spec.ClassCount;
            var counts = new long[k];
            var means = new double[k][];
            var covariances = new double[k][];
            var pooled = new double[SufficientStatistics.Length(d)];
            for (var c = 0; c < k; c++)
            {
                var raw = slots[layout.SlotOffsets[a] + c];
                (counts[c], means[c], covariances[c]) = SufficientStatistics.Moments(raw, layout.Reference);
                for (var i = 0; i < pooled.Length; i++) pooled[i] += raw[i];
            }
            var (globalCount, globalMean, globalCovariance) = SufficientStatistics.Moments(pooled, layout.Reference);
            attributes.Add(new ClassStatisticsSnapshot(spec.Name, spec.ClassNames, counts, means, covariances,
                globalCount, globalMean, globalCovariance));
        }
        return new StatisticsSnapshot(version, d, attributes);
    }
}
