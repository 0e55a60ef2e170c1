using StackExchange.Redis;

namespace AttrCloak.Streaming.Redis;

/// <summary>
/// The public view of a deployment's key space for tools (the demo's and the benches' throw-away deployments): every
/// key of a deployment lives under <c>{prefix}:</c> (the layout is described on the internal <c>StoreLayout</c>, which
/// names every key and runs every SCAN, and in this project's README), found with SCAN and a glob pattern whose prefix
/// is escaped.
/// </summary>
public static class DeploymentKeys
{
    /// <summary>SCAN MATCH pattern of every key under <paramref name="prefix"/>; glob characters of the prefix are escaped.</summary>
    public static string Pattern(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        return StoreLayout.EscapeGlob(prefix) + ":*";
    }

    /// <summary>The keys under <paramref name="prefix"/>, one SCAN page at a time (<paramref name="pageSize"/> is SCAN's COUNT hint).</summary>
    public static IAsyncEnumerable<RedisKey[]> ScanAsync(IDatabase db, string prefix, int pageSize = 1000)
    {
        ArgumentNullException.ThrowIfNull(db);
        return StoreLayout.ScanAsync(db, Pattern(prefix), pageSize);
    }

    /// <summary>Deletes every key under <paramref name="prefix"/> (all generations, registry and tombstones); returns how many.</summary>
    public static async Task<long> DeleteAllAsync(IConnectionMultiplexer redis, string prefix)
    {
        ArgumentNullException.ThrowIfNull(redis);
        var db = redis.GetDatabase();
        long deleted = 0;
        await foreach (var keys in ScanAsync(db, prefix).ConfigureAwait(false))
            if (keys.Length > 0) deleted += await db.KeyDeleteAsync(keys).ConfigureAwait(false);
        return deleted;
    }
}
