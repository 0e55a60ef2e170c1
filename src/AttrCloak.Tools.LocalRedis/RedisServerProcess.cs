using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace AttrCloak.Tools.LocalRedis;

/// <summary>
/// The mechanics every local redis-server needs (the CLI's throw-away server, the tests' shared, TLS and killable
/// servers): finding the binary, a free port, launching with its output drained, and the PING that says it is ready.
/// </summary>
public static class RedisServerProcess
{
    /// <summary>Optional path of the redis-server binary; otherwise it is looked up on PATH and in the usual folders.</summary>
    public const string ExecutableVariable = "ATTRCLOAK_REDIS_SERVER";

    /// <summary>
    /// The redis-server binary: <see cref="ExecutableVariable"/> when it names a file, else the first redis-server on
    /// PATH, /usr/bin, /usr/local/bin or /usr/sbin; null when there is none.
    /// </summary>
    public static string? FindExecutable()
    {
        var configured = Environment.GetEnvironmentVariable(ExecutableVariable);
        if (!string.IsNullOrEmpty(configured) && File.Exists(configured)) return configured;
        return (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Append("/usr/bin").Append("/usr/local/bin").Append("/usr/sbin")
            .Where(d => d.Length > 0).Select(d => Path.Combine(d, "redis-server")).FirstOrDefault(File.Exists);
    }

    /// <summary>
    /// Starts <paramref name="executable"/> in <paramref name="directory"/> with <paramref name="arguments"/>, its stdout
    /// and stderr read asynchronously into <paramref name="output"/> (a full pipe would block the server).
    /// </summary>
    public static Process Launch(string executable, string directory, IEnumerable<string> arguments, StringBuilder output)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(output);
        var start = new ProcessStartInfo(executable)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = directory,
        };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>A loopback port free right now (it can be taken before the server binds it: callers retry).</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Whether a server on the loopback <paramref name="port"/> answers PING with +PONG now.</summary>
    public static bool Pong(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, port);
            var stream = client.GetStream();
            stream.Write("PING\r\n"u8);
            stream.ReadTimeout = 2000;
            var buffer = new byte[64];
            var n = stream.Read(buffer);
            return Encoding.ASCII.GetString(buffer, 0, n).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            return false; // not listening yet
        }
    }

    /// <summary>Polls PING until the server answers (true), exits or <paramref name="deadline"/> passes (false).</summary>
    public static async Task<bool> WaitForPingAsync(Process process, int port, TimeSpan deadline)
    {
        ArgumentNullException.ThrowIfNull(process);
        var until = DateTime.UtcNow + deadline;
        while (DateTime.UtcNow < until)
        {
            if (process.HasExited) return false;
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port).ConfigureAwait(false);
                var stream = client.GetStream();
                await stream.WriteAsync("PING\r\n"u8.ToArray()).ConfigureAwait(false);
                var buffer = new byte[64];
                var n = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
                if (Encoding.ASCII.GetString(buffer, 0, n).StartsWith("+PONG", StringComparison.Ordinal)) return true;
            }
            catch (Exception e) when (e is SocketException or IOException or TimeoutException)
            {
                // not listening yet
            }
            await Task.Delay(25).ConfigureAwait(false); // polling interval, bounded by the deadline
        }
        return false;
    }
}
