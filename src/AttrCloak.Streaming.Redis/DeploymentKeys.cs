using StackExchange.Redis;

namespace AttrCloak.Streaming.Redis;

/// <summary>A whole deployment's keys in Redis, for tools (see <see cref="StoreLayout"/>, which names them and scans them).</summary>
public static class DeploymentKeys
{
    /// <summary>
    /// Up to <paramref name="limit"/> keys under <paramref name="prefix"/> other than its meta key (a worker started on
    /// an empty store creates only that one): user states, class statistics and tombstones.
    /// </summary>
    public static async Task<IReadOnlyList<string>> DataKeysAsync(IConnectionMultiplexer redis, string prefix, int limit = 10)
    {
        ArgumentNullException.ThrowIfNull(redis);
        var db = redis.GetDatabase();
        var meta = StoreLayout.MetaKeyOf(prefix);
        var found = new List<string>();
        await foreach (var keys in StoreLayout.ScanAsync(db, AllKeysPattern(prefix), 1000).ConfigureAwait(false))
            foreach (var key in keys)
            {
                if (key == meta) continue;
                found.Add(key!);
                if (found.Count >= limit) return found;
            }
        return found;
    }

    /// <summary>Deletes every key under <paramref name="prefix"/> (a throw-away deployment); returns how many.</summary>
    public static async Task<long> DeleteAllAsync(IConnectionMultiplexer redis, string prefix)
    {
        ArgumentNullException.ThrowIfNull(redis);
        var db = redis.GetDatabase();
        long deleted = 0;
        await foreach (var keys in StoreLayout.ScanAsync(db, AllKeysPattern(prefix), 1000).ConfigureAwait(false))
            if (keys.Length > 0) deleted += await db.KeyDeleteAsync(keys).ConfigureAwait(false);
        return deleted;
    }

    private static string AllKeysPattern(string prefix) => StoreLayout.EscapeGlob(prefix) + ":*";
}
