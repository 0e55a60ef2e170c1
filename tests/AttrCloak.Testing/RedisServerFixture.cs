using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
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
    public const string ExecutableVariable = "ATTRCLOAK_REDIS_SERVER";

    private static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(20);
    private Process? _process;
    private string? _directory;
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
        var executable = string.IsNullOrEmpty(configured) ? FindExecutable("redis-server") : File.Exists(configured) ? configured : null;
        if (executable is null)
        {
            _skipReason = string.IsNullOrEmpty(configured)
                ? "redis-server is not installed (Debian: apt-get install redis-server; scripts/prerequisites.sh test does it)"
                : $"{ExecutableVariable}={configured} does not exist";
            return;
        }
        var failures = new StringBuilder();
        // A port found free can be taken before redis binds it: try a few.
        for (var attempt = 1; attempt <= 3 && _connection is null; attempt++)
        {
            Port = RedisServerProcess.FreePort();
            _directory = Directory.CreateTempSubdirectory("attrcloak-redis-").FullName;
            var output = new StringBuilder();
            _process = RedisServerProcess.Launch(executable, _directory,
                ["--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", _directory, "--daemonize", "no", "--loglevel", "warning"], output);
            if (await WaitForPingAsync(_process, Port))
            {
                _connection = await ConnectionMultiplexer.ConnectAsync(new ConfigurationOptions
                {
                    EndPoints = { { IPAddress.Loopback, Port } },
                    AbortOnConnectFail = true,
                    AllowAdmin = true, // INFO for the benchmark's Redis CPU figures
                    ConnectTimeout = 10_000,
                    SyncTimeout = 30_000,
                    AsyncTimeout = 30_000,
                });
                return;
            }
            lock (output) failures.AppendLine($"attempt {attempt} on port {Port}: {output}");
            StopProcess();
        }
        throw new InvalidOperationException($"redis-server ({executable}) did not answer PING: {failures}");
    }

    public ValueTask DisposeAsync()
    {
        _connection?.Dispose();
        StopProcess();
        return ValueTask.CompletedTask;
    }

    private void StopProcess()
    {
        if (_process is not null)
        {
            try
            {
                if (!_process.HasExited)
                {
                    _process.Kill(entireProcessTree: true);
                    _process.WaitForExit(10_000);
                }
            }
            catch (InvalidOperationException)
            {
                // already gone
            }
            _process.Dispose();
            _process = null;
        }
        if (_directory is not null && Directory.Exists(_directory))
        {
            try { Directory.Delete(_directory, recursive: true); }
            catch (IOException) { }
            _directory = null;
        }
    }

    private static async Task<bool> WaitForPingAsync(Process process, int port)
    {
        var deadline = DateTime.UtcNow + StartDeadline;
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited) return false;
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                var stream = client.GetStream();
                await stream.WriteAsync("PING\r\n"u8.ToArray());
                var buffer = new byte[64];
                var n = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(2));
                if (Encoding.ASCII.GetString(buffer, 0, n).StartsWith("+PONG", StringComparison.Ordinal)) return true;
            }
            catch (Exception e) when (e is SocketException or IOException or TimeoutException)
            {
                // not listening yet
            }
            await Task.Delay(25); // polling interval, bounded by the deadline
        }
        return false;
    }


    private static string? FindExecutable(string name)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(Path.PathSeparator).Append("/usr/bin").Append("/usr/local/bin").Append("/usr/sbin"))
        {
            if (string.IsNullOrEmpty(dir)) continue;
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }
}
