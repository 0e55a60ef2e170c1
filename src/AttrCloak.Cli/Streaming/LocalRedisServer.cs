using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

namespace AttrCloak.Cli.Streaming;

/// <summary>
/// A throw-away redis-server child process on a free local port (no persistence, slow log off), for commands that
/// measure against "a local Redis" when none is given (`bench stream`). Killed on dispose.
/// </summary>
public sealed class LocalRedisServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;

    private LocalRedisServer(Process process, string directory, int port, ConnectionMultiplexer connection)
    {
        _process = process;
        _directory = directory;
        Port = port;
        Connection = connection;
    }

    public int Port { get; }
    public ConnectionMultiplexer Connection { get; }

    /// <summary>Starts redis-server (from PATH or /usr/bin) and connects; a clear error when it is not installed.</summary>
    public static async Task<LocalRedisServer> StartAsync()
    {
        var executable = new[] { Environment.GetEnvironmentVariable("ATTRCLOAK_REDIS_SERVER") }
            .Concat((Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Select(p => Path.Combine(p, "redis-server")))
            .Append("/usr/bin/redis-server")
            .FirstOrDefault(p => !string.IsNullOrEmpty(p) && File.Exists(p))
            ?? throw new UsageException("no redis-server to start: install it (Debian: apt-get install redis-server) or give --redis host:port");
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var directory = Directory.CreateTempSubdirectory("attrcloak-bench-redis-").FullName;
        var start = new ProcessStartInfo(executable)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no", "--slowlog-log-slower-than", "-1", "--dir", directory })
            start.ArgumentList.Add(arg);
        var process = Process.Start(start) ?? throw new UsageException($"could not start {executable}");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var connection = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{port},connectTimeout=1000,allowAdmin=true");
                if (connection.IsConnected) return new LocalRedisServer(process, directory, port, connection);
                await connection.DisposeAsync();
            }
            catch (RedisConnectionException) when (deadline.Elapsed < TimeSpan.FromSeconds(15) && !process.HasExited)
            {
            }
            if (process.HasExited || deadline.Elapsed > TimeSpan.FromSeconds(15))
            {
                if (!process.HasExited) process.Kill();
                throw new UsageException($"redis-server did not start on port {port} within 15 s");
            }
            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Connection.DisposeAsync();
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
        try { Directory.Delete(_directory, recursive: true); }
        catch (IOException) { }
    }
}
