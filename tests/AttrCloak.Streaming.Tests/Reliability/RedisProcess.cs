using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using AttrCloak.Tools.LocalRedis;
using StackExchange.Redis;

namespace AttrCloak.Streaming.Tests.Reliability;

/// <summary>
/// A redis-server of one test that the test can kill (SIGKILL, like a crash) and start again on the same port, with
/// its data (append-only file, fsync on every write, same directory) or without it (a fresh directory: Redis back
/// empty). The connection is configured like the worker's (<c>attrcloak serve</c>): it reconnects by itself, and a
/// call while disconnected fails at once instead of queueing.
/// </summary>
internal sealed class RedisProcess : IDisposable
{
    private static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(20);
    private readonly string _executable;
    private readonly string _root;
    private string _directory;
    private Process? _process;
    private readonly StringBuilder _output = new();

    private RedisProcess(string executable)
    {
        _executable = executable;
        _root = Directory.CreateTempSubdirectory("attrcloak-redis-faults-").FullName;
        _directory = NewDataDirectory();
        Port = RedisServerProcess.FreePort();
    }

    public int Port { get; }

    public ConnectionMultiplexer Connection { get; private set; } = null!;

    /// <summary>Starts one, or skips the test when redis-server is not installed.</summary>
    public static RedisProcess Start()
    {
        var executable = RedisServerProcess.FindExecutable();
        if (executable is null) Assert.Skip("redis-server is not installed (Debian: apt-get install redis-server)");
        var redis = new RedisProcess(executable);
        redis.StartServer();
        var options = new ConfigurationOptions
        {
            EndPoints = { { IPAddress.Loopback, redis.Port } },
            AbortOnConnectFail = false,
            ConnectTimeout = 2000,
            SyncTimeout = 5000,
            AsyncTimeout = 5000,
            AllowAdmin = true,
            BacklogPolicy = BacklogPolicy.FailFast,
            ReconnectRetryPolicy = new LinearRetry(250),
        };
        redis.Connection = ConnectionMultiplexer.Connect(options);
        return redis;
    }

    /// <summary>SIGKILL: no shutdown save, like a crash or an OOM kill.</summary>
    public void Kill()
    {
        if (_process is null) return;
        _process.Kill();
        _process.WaitForExit(10_000);
        _process.Dispose();
        _process = null;
    }

    /// <summary>Starts it again on the same port, with the data it had (<paramref name="keepData"/>) or empty.</summary>
    public void Restart(bool keepData)
    {
        Kill();
        if (!keepData) _directory = NewDataDirectory();
        StartServer();
    }

    private void StartServer()
    {
        _process = RedisServerProcess.Launch(_executable, _directory,
            ["--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", _directory, "--daemonize", "no", "--loglevel", "warning"], _output);
        var deadline = DateTime.UtcNow + StartDeadline;
        while (!Pong())
        {
            if (_process.HasExited || DateTime.UtcNow > deadline)
                lock (_output) throw new InvalidOperationException($"redis-server on port {Port} did not answer PING: {_output}");
            Thread.Sleep(25); // polling interval, bounded by the deadline
        }
    }

    private bool Pong() => RedisServerProcess.Pong(Port);

    private string NewDataDirectory() => Directory.CreateDirectory(Path.Combine(_root, Guid.NewGuid().ToString("N")[..8])).FullName;


    public void Dispose()
    {
        Connection?.Dispose();
        Kill();
        try { Directory.Delete(_root, recursive: true); }
        catch (IOException) { }
    }
}
