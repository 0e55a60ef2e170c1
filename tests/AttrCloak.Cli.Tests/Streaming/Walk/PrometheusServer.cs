using System.Globalization;
using System.Text.Json;

namespace AttrCloak.Cli.Tests.Streaming.Walk;

/// <summary>
/// A real `prometheus` (Debian package) in its own process, from deploy/prometheus/prometheus.yml with only what the
/// test machine needs changed: the scrape targets (the walk's workers on 127.0.0.1), the rule file's path (absolute),
/// and the scrape and evaluation intervals (2 s instead of 15 s, so that a `for: 1m` alert fires a minute after its
/// cause, not up to 15 s later). The rules themselves are deploy/prometheus/rules/attrcloak.rules.yml unchanged.
/// </summary>
internal sealed class PrometheusServer : IAsyncDisposable
{
    private readonly ChildProcess _process;
    private readonly HttpClient _http;

    private PrometheusServer(ChildProcess process, string address)
    {
        _process = process;
        Address = address;
        _http = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(10) };
    }

    public string Address { get; }

    public string Output => _process.Output;

    /// <summary>The prometheus executable on PATH, or null (the walk then skips, saying how to install it).</summary>
    public static string? Executable() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "prometheus")).FirstOrDefault(File.Exists);

    public static async Task<PrometheusServer> StartAsync(string executable, string repositoryRoot, string directory, IEnumerable<string> targets, CancellationToken ct)
    {
        var shipped = File.ReadAllText(Path.Combine(repositoryRoot, "deploy", "prometheus", "prometheus.yml"));
        var rules = Path.Combine(repositoryRoot, "deploy", "prometheus", "rules", "attrcloak.rules.yml");
        var config = shipped
            .Replace("scrape_interval: 15s", "scrape_interval: 2s", StringComparison.Ordinal)
            .Replace("evaluation_interval: 15s", "evaluation_interval: 2s", StringComparison.Ordinal)
            .Replace("- rules/attrcloak.rules.yml", $"- {rules}", StringComparison.Ordinal)
            .Replace("""- targets: ["worker:8080"]""", $"- targets: [{string.Join(", ", targets.Select(t => $"\"{t}\""))}]", StringComparison.Ordinal);
        // Each replacement must have found its text: a changed shipped file must not silently scrape nothing.
        config.ShouldNotContain("worker:8080");
        config.ShouldNotContain("15s");
        config.ShouldContain(rules);
        var configFile = Path.Combine(directory, "prometheus.yml");
        File.WriteAllText(configFile, config);

        var port = AttrCloak.Tools.LocalRedis.RedisServerProcess.FreePort();
        var address = $"http://127.0.0.1:{port}";
        var process = ChildProcess.Start("prometheus", executable,
            [$"--config.file={configFile}", $"--storage.tsdb.path={Path.Combine(directory, "tsdb")}", $"--web.listen-address=127.0.0.1:{port}"],
            new Dictionary<string, string>());
        var server = new PrometheusServer(process, address);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                if ((await server._http.GetAsync("/-/ready", ct)).IsSuccessStatusCode) return server;
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            if (process.HasExited || DateTime.UtcNow > deadline)
            {
                await server.DisposeAsync();
                throw new InvalidOperationException($"prometheus did not become ready (exited: {process.HasExited}):\n{process.Output}");
            }
            await Task.Delay(250, ct);
        }
    }

    /// <summary>An instant query: each series' labels and value.</summary>
    public async Task<List<(Dictionary<string, string> Labels, double Value)>> QueryAsync(string expression, CancellationToken ct)
    {
        using var document = await GetAsync($"/api/v1/query?query={Uri.EscapeDataString(expression)}", ct);
        return document.RootElement.GetProperty("data").GetProperty("result").EnumerateArray()
            .Select(r => (Labels(r.GetProperty("metric")), double.Parse(r.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture)))
            .ToList();
    }

    /// <summary>The alerts Prometheus holds now (pending or firing), with their labels.</summary>
    public async Task<List<(string Name, string State, Dictionary<string, string> Labels)>> AlertsAsync(CancellationToken ct)
    {
        using var document = await GetAsync("/api/v1/alerts", ct);
        return document.RootElement.GetProperty("data").GetProperty("alerts").EnumerateArray()
            .Select(a => (Name: Labels(a.GetProperty("labels"))["alertname"], State: a.GetProperty("state").GetString()!, Labels: Labels(a.GetProperty("labels"))))
            .ToList();
    }

    /// <summary>Scrape targets and their health ("up", "down", "unknown").</summary>
    public async Task<List<(string Instance, string Health)>> TargetsAsync(CancellationToken ct)
    {
        using var document = await GetAsync("/api/v1/targets", ct);
        return document.RootElement.GetProperty("data").GetProperty("activeTargets").EnumerateArray()
            .Select(t => (Labels(t.GetProperty("labels"))["instance"], t.GetProperty("health").GetString()!))
            .ToList();
    }

    private async Task<JsonDocument> GetAsync(string path, CancellationToken ct)
    {
        var response = await _http.GetAsync(path, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        response.IsSuccessStatusCode.ShouldBeTrue($"prometheus {path}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body);
    }

    private static Dictionary<string, string> Labels(JsonElement element) =>
        element.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "", StringComparer.Ordinal);

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _process.DisposeAsync();
    }
}
