using System.Net;
using AttrCloak.Tools.LocalRedis;
using StackExchange.Redis;
using Xunit;

namespace AttrCloak.Testing;

/// <summary>
/// One throw-away <c>redis-server</c> for the test assembly: a free TCP port on 127.0.0.1, no persistence, a temp
/// directory; ready when it answers PING (polled against a deadline), killed on dispose. Tests isolate themselves by
/// key prefix (<see cref="NewPrefix"/>). When redis-server is not installed, every test that needs it skips with the
/// reason.
/// </summary>
public sealed class RedisServerFixture : IAsyncLifetime
{
    /// <summary>Optional path of the redis-server binary; otherwise it is looked up on PATH and in /usr/bin.</summary>
    public const string ExecutableVariable = RedisServerProcess.ExecutableVariable;

    private static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(20);
    private LocalRedisServer? _server;
    private ConnectionMultiplexer? _connection;
    private string? _skipReason;
    private int _prefixCounter;

    public int Port { get; private set; }

    /// <summary>The shared connection; skips the calling test when no redis-server could be started.</summary>
    public IConnectionMultiplexer Redis
    {
        get
        {
            if (_connection is null) Assert.Skip(_skipReason ?? "redis-server did not start");
            return _connection;
        }
    }

    /// <summary>A key prefix no other test uses.</summary>
    public string NewPrefix(string name) => $"test{Interlocked.Increment(ref _prefixCounter)}-{name}-{Guid.NewGuid().ToString("N")[..8]}";

    public async ValueTask InitializeAsync()
    {
        var configured = Environment.GetEnvironmentVariable(ExecutableVariable);
        var executable = RedisServerProcess.FindExecutable();
        if (executable is null || (!string.IsNullOrEmpty(configured) && executable != configured))
        {
            _skipReason = string.IsNullOrEmpty(configured)
                ? "redis-server is not installed (Debian: apt-get install redis-server; scripts/prerequisites.sh test does it)"
                : $"{ExecutableVariable}={configured} does not exist";
            return;
        }
        _server = await LocalRedisServer.StartAsync(executable, ["--daemonize", "no", "--loglevel", "warning"], StartDeadline);
        Port = _server.Port;
        _connection = await ConnectionMultiplexer.ConnectAsync(new ConfigurationOptions
        {
            EndPoints = { { IPAddress.Loopback, Port } },
            AbortOnConnectFail = true,
            AllowAdmin = true, // INFO for the benchmark's Redis CPU figures
            ConnectTimeout = 10_000,
            SyncTimeout = 30_000,
            AsyncTimeout = 30_000,
        });
    }

    public ValueTask DisposeAsync()
    {
        _connection?.Dispose();
        _server?.Dispose();
        return ValueTask.CompletedTask;
    }
}
