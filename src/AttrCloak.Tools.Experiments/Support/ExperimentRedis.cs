using System.Net;
using AttrCloak.Tools.LocalRedis;
using StackExchange.Redis;

namespace AttrCloak.Tools.Experiments.Support;

/// <summary>
/// A throw-away local redis-server for the experiments that measure against Redis (started as the tests' fixture
/// starts it: no persistence, a temp directory, admin commands allowed for INFO, CONFIG and SLOWLOG). Runs isolate
/// themselves by key prefix (<see cref="NewPrefix"/>). Disposing closes the connection and stops the server.
/// </summary>
internal sealed class ExperimentRedis : IAsyncDisposable
{
    private static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(20);
    private readonly LocalRedisServer _server;
    private readonly ConnectionMultiplexer _connection;
    private int _prefixCounter;

    private ExperimentRedis(LocalRedisServer server, ConnectionMultiplexer connection)
    {
        _server = server;
        _connection = connection;
    }

    public IConnectionMultiplexer Redis => _connection;

    /// <summary>A key prefix no other run in this process uses.</summary>
    public string NewPrefix(string name) => $"exp{Interlocked.Increment(ref _prefixCounter)}-{name}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <exception cref="ExperimentUnavailableException">redis-server is not installed or did not start.</exception>
    public static async Task<ExperimentRedis> StartAsync()
    {
        var executable = RedisServerProcess.FindExecutable()
            ?? throw new ExperimentUnavailableException(
                $"redis-server is not installed (Debian: apt-get install redis-server) and {RedisServerProcess.ExecutableVariable} does not name one");
        LocalRedisServer server;
        try
        {
            server = await LocalRedisServer.StartAsync(executable, ["--daemonize", "no", "--loglevel", "warning"], StartDeadline,
                directoryPrefix: "attrcloak-experiment-redis-").ConfigureAwait(false);
        }
        catch (InvalidOperationException e)
        {
            throw new ExperimentUnavailableException($"redis-server did not start: {e.Message}", e);
        }
        try
        {
            var connection = await ConnectionMultiplexer.ConnectAsync(new ConfigurationOptions
            {
                EndPoints = { { IPAddress.Loopback, server.Port } },
                AbortOnConnectFail = true,
                AllowAdmin = true, // INFO (Redis CPU), CONFIG SET and SLOWLOG (script durations)
                ConnectTimeout = 10_000,
                SyncTimeout = 30_000,
                AsyncTimeout = 30_000,
            }).ConfigureAwait(false);
            return new ExperimentRedis(server, connection);
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _connection.DisposeAsync().ConfigureAwait(false);
        await _server.DisposeAsync().ConfigureAwait(false);
    }
}
