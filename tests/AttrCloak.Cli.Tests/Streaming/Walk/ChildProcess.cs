using System.Diagnostics;
using System.Text;

namespace AttrCloak.Cli.Tests.Streaming.Walk;

/// <summary>
/// A separate OS process of the production walk: `dotnet attrcloak.dll ...` (the CLI built into this test project's
/// output) or another program (prometheus). Output is read asynchronously (a full pipe would block the child) into a
/// buffer for waits and failure messages; environment variables are the child's own (as an operator's shell sets them).
/// </summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Lock _gate = new();

    private ChildProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public string Name { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Output { get { lock (_gate) return _output.ToString(); } }

    /// <summary>`attrcloak args...` as a child process with <paramref name="environment"/> added to this process's.</summary>
    public static ChildProcess Attrcloak(string name, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "attrcloak.dll");
        File.Exists(dll).ShouldBeTrue($"{dll} is built with this test project");
        // The dotnet host that runs the tests says where it is; otherwise the one on PATH.
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        return Start(name, dotnet, [dll, .. args], environment);
    }

    public static ChildProcess Start(string name, string executable, IEnumerable<string> args, IReadOnlyDictionary<string, string> environment)
    {
        var info = new ProcessStartInfo(executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["NO_COLOR"] = "1";
        // As the ./attrcloak launcher and the image set it for the long-running commands (docs/reliability.md, "Soak").
        info.Environment["MALLOC_ARENA_MAX"] = "2";
        foreach (var (key, value) in environment) info.Environment[key] = value;
        var child = new ChildProcess(name, new Process { StartInfo = info, EnableRaisingEvents = true });
        child._process.OutputDataReceived += (_, e) => child.Append(e.Data);
        child._process.ErrorDataReceived += (_, e) => child.Append(e.Data);
        child._process.Start();
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        return child;
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_gate) _output.AppendLine(line);
    }

    /// <summary>The first output line containing <paramref name="text"/>, waiting up to <paramref name="timeout"/>.</summary>
    public async Task<string> WaitForLineAsync(string text, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var line = Output.Split('\n').FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal));
            if (line is not null) return line.TrimEnd('\r');
            if (HasExited || DateTime.UtcNow > deadline)
                throw new TimeoutException($"{Name}: no line with '{text}' within {timeout.TotalSeconds:F0} s (exited: {HasExited}); output:\n{Output}");
            await Task.Delay(100, ct);
        }
    }

    /// <summary>Waits for the process to end by itself; its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout, CancellationToken ct)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout);
        try
        {
            await _process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"{Name} did not end within {timeout.TotalSeconds:F0} s; output:\n{Output}");
        }
        return _process.ExitCode;
    }

    /// <summary>SIGKILL, as a crash or an OOM kill: no shutdown code of the child runs.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: false);
        await _process.WaitForExitAsync();
    }

    /// <summary>SIGTERM (what docker stop and Kubernetes send); how long the child took to exit, or null past the timeout.</summary>
    public async Task<TimeSpan?> TerminateAsync(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        if (!_process.HasExited)
        {
            using var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
            await kill.WaitForExitAsync();
        }
        using var limit = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        return clock.Elapsed;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        catch (InvalidOperationException)
        {
            // never started or already gone
        }
        _process.Dispose();
    }
}
