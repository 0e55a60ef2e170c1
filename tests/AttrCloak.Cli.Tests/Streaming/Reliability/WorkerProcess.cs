using System.Diagnostics;
using System.Text;

namespace AttrCloak.Cli.Tests.Streaming.Reliability;

/// <summary>
/// `attrcloak serve --config FILE` as a separate OS process (the attrcloak.dll built into this test project's output),
/// so that a test can kill -9 it. Its console output is read asynchronously (a full pipe would block the worker) and
/// appended, tagged with the run number, to a log shared by all runs for failure messages.
/// </summary>
internal sealed class WorkerProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log;
    private readonly int _run;

    private WorkerProcess(Process process, StringBuilder log, int run)
    {
        _process = process;
        _log = log;
        _run = run;
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Lines this run printed so far containing <paramref name="text"/>.</summary>
    public bool Printed(string text)
    {
        lock (_log) return Lines().Any(l => l.Contains(text, StringComparison.Ordinal));
    }

    private IEnumerable<string> Lines()
    {
        var tag = $"[run {_run}] ";
        return _log.ToString().Split('\n').Where(l => l.StartsWith(tag, StringComparison.Ordinal));
    }

    public static WorkerProcess Start(string config, string workingDirectory, StringBuilder log, int run)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "attrcloak.dll");
        if (!File.Exists(dll)) throw new FileNotFoundException($"the CLI was not built into the test output: {dll}");
        // The dotnet CLI that runs the tests tells its own path; otherwise the one on PATH.
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory,
        };
        foreach (var a in new[] { dll, "serve", "--config", config }) start.ArgumentList.Add(a);
        // Plain console output (no ANSI) and no terminal width guessing in the child.
        start.Environment["NO_COLOR"] = "1";
        var process = new Process { StartInfo = start };
        void Append(string? line)
        {
            if (line is null) return;
            lock (log) log.Append("[run ").Append(run).Append("] ").AppendLine(line);
        }
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        lock (log) log.Append("[run ").Append(run).Append("] ---- started pid ").Append(process.Id).AppendLine();
        return new WorkerProcess(process, log, run);
    }

    /// <summary>kill -9: Process.Kill sends SIGKILL on Linux; no shutdown code of the worker runs.</summary>
    public void KillHard()
    {
        if (_process.HasExited) return;
        _process.Kill(entireProcessTree: false);
        if (!_process.WaitForExit(10_000)) throw new InvalidOperationException($"worker pid {_process.Id} survived SIGKILL for 10 s");
        lock (_log) _log.Append("[run ").Append(_run).Append("] ---- SIGKILL").AppendLine();
    }

    /// <summary>SIGTERM (a clean stop, as systemd or Kubernetes do it); the exit code, or null when it did not exit in time.</summary>
    public int? Terminate(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            using var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", _process.Id.ToString()]) { UseShellExecute = false })!;
            kill.WaitForExit(5_000);
        }
        if (!_process.WaitForExit((int)timeout.TotalMilliseconds)) return null;
        _process.WaitForExit(); // flushes the asynchronous output readers
        return _process.ExitCode;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
        _process.Dispose();
    }
}
