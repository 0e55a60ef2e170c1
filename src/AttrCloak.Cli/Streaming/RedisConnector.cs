using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;
using StackExchange.Redis;

namespace AttrCloak.Cli.Streaming;

/// <summary>The streaming commands' Redis connection: the adapter's <see cref="RedisConnection"/>, its failures as one usage line.</summary>
public static class RedisConnector
{
    /// <inheritdoc cref="RedisConnection.ConnectAsync"/>
    public static async Task<ConnectionMultiplexer> ConnectAsync(string configuration, TimeSpan? connectTimeout = null, Action<ConfigurationOptions>? configure = null,
        bool failFastWhileDisconnected = false)
    {
        try
        {
            return await RedisConnection.ConnectAsync(configuration, connectTimeout, configure, failFastWhileDisconnected).ConfigureAwait(false);
        }
        catch (StreamingConfigurationException e)
        {
            throw new UsageException(e.Message);
        }
        catch (StateStoreUnavailableException e)
        {
            throw new UsageException(e.Message);
        }
    }
}
