using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace AttrCloak.Tools.LocalRedis;

/// <summary>
/// A throw-away redis-server child process: a free TCP port on 127.0.0.1, no persistence, a temp directory; ready
/// when it answers PING (polled against a deadline); a port taken before the server binds it is retried on another.
/// Killed, and its directory deleted, on dispose. Callers connect with their own client options.
/// </summary>
public sealed class LocalRedisServer : IDisposable, IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;

    private LocalRedisServer(Process process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        Port = port;
    }

    /// <summary>The loopback port it listens on.</summary>
    public int Port { get; }

    /// <summary>
    /// Starts <paramref name="executable"/> with <c>--port P --bind 127.0.0.1 --save "" --appendonly no --dir DIR</c>
    /// and <paramref name="extraArguments"/>, trying up to <paramref name="attempts"/> ports.
    /// </summary>
    /// <exception cref="InvalidOperationException">No attempt answered PING within <paramref name="startDeadline"/>; the message holds the server's output.</exception>
    public static async Task<LocalRedisServer> StartAsync(string executable, IEnumerable<string> extraArguments, TimeSpan startDeadline,
        int attempts = 3, string directoryPrefix = "attrcloak-redis-")
    {
        ArgumentNullException.ThrowIfNull(executable);
        var extra = extraArguments.ToArray();
        var failures = new StringBuilder();
        for (var attempt = 1; attempt <= attempts; attempt++)
        {
            var port = RedisServerProcess.FreePort();
            var directory = Directory.CreateTempSubdirectory(directoryPrefix).FullName;
            var output = new StringBuilder();
            var process = RedisServerProcess.Launch(executable, directory,
                ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory, .. extra],
                output);
            if (await RedisServerProcess.WaitForPingAsync(process, port, startDeadline).ConfigureAwait(false))
                return new LocalRedisServer(process, directory, port);
            lock (output) failures.AppendLine(CultureInfo.InvariantCulture, $"attempt {attempt} on port {port}: {output}");
            Stop(process, directory);
        }
        throw new InvalidOperationException($"redis-server ({executable}) did not answer PING: {failures}");
    }

    public void Dispose() => Stop(_process, _directory);

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private static void Stop(Process process, string directory)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
        process.Dispose();
        try { Directory.Delete(directory, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
