using StackExchange.Redis;

namespace AttrCloak.Cli.Streaming;

/// <summary>Looks at a deployment's keys in Redis without knowing the store's internals beyond the documented layout.</summary>
public static class StoreKeys
{
    /// <summary>
    /// Up to <paramref name="limit"/> keys under <paramref name="prefix"/> other than its meta key (a worker started on
    /// an empty store creates only that one): user states, class statistics and tombstones.
    /// </summary>
    public static async Task<IReadOnlyList<string>> DataKeysAsync(IConnectionMultiplexer redis, string prefix, int limit = 10)
    {
        var db = redis.GetDatabase();
        var meta = prefix + ":meta";
        var found = new List<string>();
        var pattern = EscapeGlob(prefix) + ":*";
        RedisValue cursor = 0;
        do
        {
            var page = (RedisResult[])(await db.ExecuteAsync("SCAN", cursor, "MATCH", pattern, "COUNT", 1000).ConfigureAwait(false))!;
            cursor = (RedisValue)page[0];
            foreach (var key in (RedisKey[])page[1]!)
            {
                if (key == meta) continue;
                found.Add(key!);
                if (found.Count >= limit) return found;
            }
        }
        while ((string?)cursor != "0");
        return found;
    }

    /// <summary>Deletes every key under <paramref name="prefix"/> (the demo's throw-away deployment); returns how many.</summary>
    public static async Task<long> DeleteAllAsync(IConnectionMultiplexer redis, string prefix)
    {
        var db = redis.GetDatabase();
        var pattern = EscapeGlob(prefix) + ":*";
        long deleted = 0;
        RedisValue cursor = 0;
        do
        {
            var page = (RedisResult[])(await db.ExecuteAsync("SCAN", cursor, "MATCH", pattern, "COUNT", 1000).ConfigureAwait(false))!;
            cursor = (RedisValue)page[0];
            var keys = (RedisKey[])page[1]!;
            if (keys.Length > 0) deleted += await db.KeyDeleteAsync(keys).ConfigureAwait(false);
        }
        while ((string?)cursor != "0");
        return deleted;
    }

    // SCAN patterns are globs: a prefix with * ? [ ] or \ must match only itself.
    private static string EscapeGlob(string text)
    {
        var escaped = new System.Text.StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c is '*' or '?' or '[' or ']' or '\\') escaped.Append('\\');
            escaped.Append(c);
        }
        return escaped.ToString();
    }
}
