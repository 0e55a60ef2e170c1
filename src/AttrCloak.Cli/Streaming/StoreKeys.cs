using AttrCloak.Streaming.Redis;
using StackExchange.Redis;

namespace AttrCloak.Cli.Streaming;

/// <summary>Looks at a deployment's keys in Redis (the key layout and its SCAN loop live in the Redis adapter: <see cref="DeploymentKeys"/>).</summary>
public static class StoreKeys
{
    /// <inheritdoc cref="DeploymentKeys.DataKeysAsync"/>
    public static Task<IReadOnlyList<string>> DataKeysAsync(IConnectionMultiplexer redis, string prefix, int limit = 10) =>
        DeploymentKeys.DataKeysAsync(redis, prefix, limit);

    /// <inheritdoc cref="DeploymentKeys.DeleteAllAsync"/>
    public static Task<long> DeleteAllAsync(IConnectionMultiplexer redis, string prefix) => DeploymentKeys.DeleteAllAsync(redis, prefix);
}
