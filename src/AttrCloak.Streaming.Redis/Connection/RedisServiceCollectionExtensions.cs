using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.State;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using StackExchange.Redis;

namespace AttrCloak.Streaming.Redis;

/// <summary>The Redis adapter's registration: the deployment's generations on Redis, for the guard core to use.</summary>
public static class RedisServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="RedisGenerationStore"/> as the <see cref="IGenerationStore"/> (owned and disposed by the
    /// container) over <paramref name="redis"/>, which the caller connected (<see cref="RedisConnection.ConnectAsync"/>:
    /// an unreachable Redis is one clear line before anything starts) and keeps.
    /// </summary>
    public static IServiceCollection AddRedisGenerationStore(this IServiceCollection services, IConnectionMultiplexer redis, StateStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentNullException.ThrowIfNull(options);
        services.TryAddSingleton(redis);
        services.TryAddSingleton<IGenerationStore>(_ => new RedisGenerationStore(redis, options));
        return services;
    }
}
