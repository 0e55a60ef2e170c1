using StackExchange.Redis;

namespace AttrCloak.Cli.Streaming;

/// <summary>
/// The Redis a benchmark measures against: the one given (<c>--redis</c>), or a throw-away local redis-server
/// (<see cref="LocalRedisServer"/>) when none is. Disposing closes the connection or stops the server.
/// </summary>
internal sealed class BenchRedis : IAsyncDisposable
{
    private readonly LocalRedisServer? _local;

    private BenchRedis(LocalRedisServer? local, ConnectionMultiplexer connection, string where)
    {
        _local = local;
        Connection = connection;
        Where = where;
    }

    public ConnectionMultiplexer Connection { get; }

    /// <summary>Where the data goes, for the benchmark's header line (never a password).</summary>
    public string Where { get; }

    public static async Task<BenchRedis> OpenAsync(string? configuration)
    {
        if (configuration is null)
        {
            var local = await LocalRedisServer.StartAsync();
            return new BenchRedis(local, local.Connection, $"a throw-away redis-server on port {local.Port}");
        }
        return new BenchRedis(null, await RedisConnector.ConnectAsync(configuration), $"Redis at {configuration}");
    }

    public async ValueTask DisposeAsync()
    {
        if (_local is not null) await _local.DisposeAsync();
        else await Connection.DisposeAsync();
    }
}
