using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace AttrCloak.Testing;

/// <summary>What every test redis-server needs (the shared fixture, the TLS server, the killable one of the fault tests).</summary>
public static class RedisServerProcess
{
    /// <summary>
    /// Starts <paramref name="executable"/> in <paramref name="directory"/> with <paramref name="arguments"/>, its stdout
    /// and stderr read asynchronously into <paramref name="output"/> (a full pipe would block the server).
    /// </summary>
    public static Process Launch(string executable, string directory, IEnumerable<string> arguments, StringBuilder output)
    {
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
}
