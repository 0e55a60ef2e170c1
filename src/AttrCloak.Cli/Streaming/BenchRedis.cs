using AttrCloak.Tools.LocalRedis;
using StackExchange.Redis;

namespace AttrCloak.Cli.Streaming;

/// <summary>
/// The Redis a benchmark measures against: the one given (<c>--redis</c>), or a throw-away local redis-server
/// (<see cref="LocalRedisServer"/>, no persistence, slow log off) when none is. Disposing closes the connection and
/// stops the server.
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
        if (configuration is not null)
            return new BenchRedis(null, await RedisConnector.ConnectAsync(configuration), $"Redis at {configuration}");
        var executable = RedisServerProcess.FindExecutable()
            ?? throw new UsageException("no redis-server to start: install it (Debian: apt-get install redis-server) or give --redis host:port");
        LocalRedisServer local;
        try
        {
            local = await LocalRedisServer.StartAsync(executable, ["--slowlog-log-slower-than", "-1"], TimeSpan.FromSeconds(15), attempts: 1,
                directoryPrefix: "attrcloak-bench-redis-");
        }
        catch (InvalidOperationException e)
        {
            throw new UsageException($"redis-server did not start within 15 s: {e.Message}");
        }
        try
        {
            var connection = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{local.Port},connectTimeout=1000,allowAdmin=true");
            return new BenchRedis(local, connection, $"a throw-away redis-server on port {local.Port}");
        }
        catch
        {
            await local.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Connection.DisposeAsync();
        if (_local is not null) await _local.DisposeAsync();
    }
}
