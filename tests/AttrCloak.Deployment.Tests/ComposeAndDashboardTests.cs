using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using AttrCloak.Streaming.Monitoring;
using YamlDotNet.RepresentationModel;

namespace AttrCloak.Deployment.Tests;

/// <summary>
/// The deployment files of deploy/ and the top-level docker-compose.yml, checked without a Docker engine: the compose
/// file as docker-compose itself resolves it, the Grafana dashboard against the metrics the worker really exports,
/// the Dockerfile's runtime image and user.
/// </summary>
public sealed partial class ComposeAndDashboardTests
{
    private const string SecretVariable = "ATTRCLOAK_TOMBSTONE_SECRET";

    [Fact]
    public async Task Compose_file_resolves_with_worker_prometheus_and_grafana()
    {
        var result = await RunDockerComposeConfigAsync(new Dictionary<string, string?> { [SecretVariable] = "test-secret" });
        result.ExitCode.ShouldBe(0, $"docker-compose config failed:\n{result.StdErr}");
        var services = ServicesOf(ParseYaml(result.StdOut));
        services.Keys.ShouldBe(["grafana", "kafka", "kafka-init", "prometheus", "redis", "worker"], ignoreOrder: true);

        var worker = services["worker"];
        var build = (YamlMappingNode)worker["build"];
        Scalar(build, "dockerfile").ShouldBe("deploy/Dockerfile");
        File.Exists(Path.Combine(Root, "deploy", "Dockerfile")).ShouldBeTrue();
        PublishedPorts(worker).ShouldContain("8080:8080");
        var env = (YamlMappingNode)worker["environment"];
        Scalar(env, "AttrCloak__Kafka__BootstrapServers").ShouldBe("kafka:19092");   // the broker's in-network listener
        Scalar(env, "AttrCloak__Redis__Configuration").ShouldBe("redis:6379");
        Scalar(env, "AttrCloak__Redis__TombstoneSecret").ShouldBe("test-secret");
        var dependsOn = (YamlMappingNode)worker["depends_on"];
        Scalar((YamlMappingNode)dependsOn["kafka-init"], "condition").ShouldBe("service_completed_successfully");
        Scalar((YamlMappingNode)dependsOn["redis"], "condition").ShouldBe("service_healthy");
        VolumeSources(worker).ShouldContain(Path.Combine(Root, "deploy", "appsettings.example.json"));

        var prometheus = services["prometheus"];
        Scalar(prometheus, "image").ShouldStartWith("prom/prometheus:");
        PublishedPorts(prometheus).ShouldContain("9090:9090");
        // prometheus.yml names its rule files relative to itself, so the whole folder is mounted.
        VolumeSources(prometheus).ShouldContain(Path.Combine(Root, "deploy", "prometheus"));
        ((YamlSequenceNode)prometheus["command"]).Children.Select(c => ((YamlScalarNode)c).Value)
            .ShouldContain("--config.file=/etc/prometheus/prometheus.yml");

        var grafana = services["grafana"];
        Scalar(grafana, "image").ShouldStartWith("grafana/grafana:");
        PublishedPorts(grafana).ShouldContain("3000:3000");
        VolumeSources(grafana).ShouldContain(Path.Combine(Root, "deploy", "grafana", "provisioning"));
        VolumeSources(grafana).ShouldContain(Path.Combine(Root, "deploy", "grafana", "dashboards"));
    }

    [Fact]
    public async Task Compose_refuses_to_start_the_worker_without_a_tombstone_secret()
    {
        var result = await RunDockerComposeConfigAsync(new Dictionary<string, string?> { [SecretVariable] = null });
        result.ExitCode.ShouldNotBe(0);
        result.StdErr.ShouldContain(SecretVariable);
    }

    [Fact]
    public async Task Dashboard_queries_only_metrics_the_worker_exports()
    {
        var exported = await ExportedMetricNamesAsync();
        var queried = DashboardQueries().SelectMany(q => MetricName().Matches(q).Select(m => m.Value)).ToHashSet();
        queried.ShouldNotBeEmpty();

        var unknown = queried.Where(name => !exported.Contains(BaseName(name, exported))).OrderBy(n => n).ToList();
        unknown.ShouldBeEmpty($"the dashboard queries metrics the worker does not export; exported: {string.Join(", ", exported.Order())}");
    }

    [Fact]
    public void Dashboard_has_the_panels_operators_need()
    {
        var panels = DashboardPanels().ToList();
        string[] Exprs(JsonNode panel) => (panel["targets"]?.AsArray() ?? []).Select(t => t!["expr"]!.GetValue<string>()).ToArray();

        // Attack accuracy and its chance line in the same panel, one panel per attribute.
        var accuracy = panels.Single(p => Exprs(p).Any(e => e.Contains("attrcloak_audit_balanced_accuracy")));
        Exprs(accuracy).ShouldContain(e => e.Contains("attrcloak_audit_chance"));
        accuracy["repeat"]!.GetValue<string>().ShouldBe("attribute");

        var all = panels.SelectMany(Exprs).ToList();
        all.ShouldContain(e => e.Contains("attrcloak_audit_worst_advantage"));
        all.ShouldContain(e => e.Contains("rate(attrcloak_events_total[1m])") && e.Contains("by (outcome)"));
        all.Count(e => e.StartsWith("histogram_quantile(") && e.Contains("attrcloak_recloak_latency_seconds_bucket")).ShouldBeGreaterThanOrEqualTo(3);
        all.ShouldContain(e => e.Contains("attrcloak_consumer_lag_messages"));
        all.ShouldContain(e => e.Contains("attrcloak_dead_letters_total") && e.Contains("by (reason)"));
        all.ShouldContain(e => e.Contains("attrcloak_audit_age_seconds"));
        all.ShouldContain(e => e.Contains("attrcloak_ready"));

        // Panel ids must be unique or Grafana silently drops panels.
        var ids = panels.Select(p => p["id"]!.GetValue<int>()).ToList();
        ids.Distinct().Count().ShouldBe(ids.Count);
    }

    [Fact]
    public void Dashboard_and_provisioning_refer_to_each_other()
    {
        var datasources = (YamlSequenceNode)ParseYaml(File.ReadAllText(Path.Combine(Root, "deploy", "grafana", "provisioning", "datasources", "prometheus.yml")))["datasources"];
        var datasource = (YamlMappingNode)datasources.Children.Single();
        Scalar(datasource, "type").ShouldBe("prometheus");
        Scalar(datasource, "url").ShouldBe("http://prometheus:9090");   // the compose service name
        var uid = Scalar(datasource, "uid")!;

        var dashboard = Dashboard();
        var referenced = Descendants(dashboard).OfType<JsonObject>()
            .Where(o => o["datasource"] is JsonObject).Select(o => o["datasource"]!["uid"]!.GetValue<string>()).ToHashSet();
        referenced.ShouldBe([uid]);

        var providers = (YamlSequenceNode)ParseYaml(File.ReadAllText(Path.Combine(Root, "deploy", "grafana", "provisioning", "dashboards", "dashboards.yml")))["providers"];
        var path = Scalar((YamlMappingNode)((YamlMappingNode)providers.Children.Single())["options"], "path");
        // The compose file mounts deploy/grafana/dashboards exactly where the provider reads.
        var compose = ServicesOf(ParseYaml(File.ReadAllText(Path.Combine(Root, "docker-compose.yml"))));
        ((YamlSequenceNode)compose["grafana"]["volumes"]).Children.Select(v => ((YamlScalarNode)v).Value!)
            .ShouldContain($"./deploy/grafana/dashboards:{path}:ro");
    }

    [Fact]
    public void Dockerfile_runs_the_cli_on_a_debian_runtime_as_a_non_root_user()
    {
        var lines = File.ReadAllLines(Path.Combine(Root, "deploy", "Dockerfile"))
            .Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        var args = lines.Where(l => l.StartsWith("ARG ")).Select(l => l[4..].Split('=', 2)).Where(a => a.Length == 2)
            .ToDictionary(a => a[0], a => a[1]);
        string Resolve(string s) => Regex.Replace(s, @"\$\{(\w+)\}", m => args[m.Groups[1].Value]);

        // FROM [--platform=...] image [AS name]
        var froms = lines.Where(l => l.StartsWith("FROM ")).Select(l => Resolve(l.Split(' ').Skip(1).First(t => !t.StartsWith("--")))).ToList();
        froms.Count.ShouldBeGreaterThanOrEqualTo(2, "multi-stage: SDK build, runtime image");
        froms[0].ShouldStartWith("mcr.microsoft.com/dotnet/sdk:10.0");
        var runtime = froms[^1];
        (runtime.StartsWith("debian:") || runtime.Contains("-bookworm") || runtime.Contains("-trixie"))
            .ShouldBeTrue($"runtime image {runtime} is not Debian-based");

        var runtimeStage = lines.Skip(lines.FindLastIndex(l => l.StartsWith("FROM "))).ToList();
        var user = runtimeStage.Last(l => l.StartsWith("USER "))[5..].Split(':')[0];
        user.ShouldNotBeOneOf("root", "0");
        runtimeStage.ShouldContain("EXPOSE 8080");

        var assembly = Regex.Match(File.ReadAllText(Path.Combine(Root, "src", "AttrCloak.Cli", "AttrCloak.Cli.csproj")), "<AssemblyName>(.+)</AssemblyName>").Groups[1].Value;
        runtimeStage.ShouldContain($"ENTRYPOINT [\"dotnet\", \"{assembly}.dll\"]");
        runtimeStage.ShouldContain("CMD [\"serve\"]");

        // The restore layer copies every project file the CLI builds from: a new project must be added there.
        var copied = lines.Where(l => l.StartsWith("COPY src/") && l.Contains(".csproj")).Select(l => l.Split(' ')[1]).ToHashSet();
        copied.ShouldBe(ProjectClosure("src/AttrCloak.Cli/AttrCloak.Cli.csproj"), ignoreOrder: true);
    }

    // ---- helpers ----

    /// <summary>The project and every project it references, transitively, as repository-relative paths.</summary>
    private static HashSet<string> ProjectClosure(string project)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>([project]);
        while (pending.TryPop(out var current))
        {
            if (!seen.Add(current)) continue;
            var directory = Path.GetDirectoryName(Path.Combine(Root, current))!;
            foreach (Match m in Regex.Matches(File.ReadAllText(Path.Combine(Root, current)), "<ProjectReference Include=\"([^\"]+)\""))
                pending.Push(Path.GetRelativePath(Root, Path.GetFullPath(Path.Combine(directory, m.Groups[1].Value))).Replace('\\', '/'));
        }
        return seen;
    }

    [GeneratedRegex(@"attrcloak_[a-z0-9_]+")]
    private static partial Regex MetricName();

    private static readonly Lazy<string> RootPath = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "AttrCloak.Streaming.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"No AttrCloak.Streaming.sln above {AppContext.BaseDirectory}.");
    });

    private static string Root => RootPath.Value;

    private static JsonNode Dashboard() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Root, "deploy", "grafana", "dashboards", "attrcloak.json")))!;

    private static IEnumerable<JsonNode> DashboardPanels() =>
        Dashboard()["panels"]!.AsArray().Select(p => p!).Where(p => p["type"]!.GetValue<string>() != "row");

    /// <summary>Every PromQL string of the dashboard: panel targets and template variable queries.</summary>
    private static IEnumerable<string> DashboardQueries() =>
        Descendants(Dashboard()).OfType<JsonObject>()
            .SelectMany(o => new[] { o["expr"], o["definition"], o["query"] })
            .OfType<JsonValue>().Select(v => v.GetValue<string>());

    private static IEnumerable<JsonNode> Descendants(JsonNode node)
    {
        yield return node;
        var children = node switch
        {
            JsonObject o => o.Select(p => p.Value),
            JsonArray a => a.AsEnumerable(),
            _ => [],
        };
        foreach (var child in children.OfType<JsonNode>())
            foreach (var d in Descendants(child))
                yield return d;
    }

    /// <summary>Metric family names in the text exposition of a fresh worker's registry.</summary>
    private static async Task<HashSet<string>> ExportedMetricNamesAsync()
    {
        var metrics = new WorkerMetrics();
        using var stream = new MemoryStream();
        await metrics.Registry.CollectAndExportAsTextAsync(stream, TestContext.Current.CancellationToken);
        var text = Encoding.UTF8.GetString(stream.ToArray());
        return text.Split('\n').Where(l => l.StartsWith("# TYPE ")).Select(l => l.Split(' ')[2]).ToHashSet();
    }

    /// <summary>A histogram's or summary's series (_bucket, _sum, _count) belong to its family name.</summary>
    private static string BaseName(string series, HashSet<string> exported)
    {
        foreach (var suffix in new[] { "_bucket", "_sum", "_count" })
            if (series.EndsWith(suffix) && exported.Contains(series[..^suffix.Length]))
                return series[..^suffix.Length];
        return series;
    }

    private static YamlMappingNode ParseYaml(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    private static Dictionary<string, YamlMappingNode> ServicesOf(YamlMappingNode compose) =>
        ((YamlMappingNode)compose["services"]).Children.ToDictionary(p => ((YamlScalarNode)p.Key).Value!, p => (YamlMappingNode)p.Value);

    private static string? Scalar(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var value) ? ((YamlScalarNode)value).Value : null;

    /// <summary>"published:target" of a resolved service (long syntax, as `config` prints it) or short syntax.</summary>
    private static List<string> PublishedPorts(YamlMappingNode service) =>
        ((YamlSequenceNode)service["ports"]).Children.Select(p => p switch
        {
            YamlMappingNode m => $"{Scalar(m, "published")}:{Scalar(m, "target")}",
            YamlScalarNode s => s.Value!,
            _ => "",
        }).ToList();

    /// <summary>Host paths of a resolved service's bind mounts (long or short syntax).</summary>
    private static List<string> VolumeSources(YamlMappingNode service) =>
        ((YamlSequenceNode)service["volumes"]).Children.Select(v => v switch
        {
            YamlMappingNode m => Scalar(m, "source")!,
            YamlScalarNode s => s.Value!.Split(':')[0],
            _ => "",
        }).Select(p => p.TrimEnd('/')).ToList();

    private sealed record CommandResult(int ExitCode, string StdOut, string StdErr);

    /// <summary>
    /// Resolves docker-compose.yml as docker-compose does (interpolation, defaults, schema); skips when no compose
    /// client is installed. Debian's docker-compose 1.29 first, then the `docker compose` plugin.
    /// </summary>
    private static async Task<CommandResult> RunDockerComposeConfigAsync(Dictionary<string, string?> environment)
    {
        var ct = TestContext.Current.CancellationToken;
        (string File, string[] Args)? tool = null;
        if (OnPath("docker-compose") is { } compose)
            tool = (compose, ["-f", "docker-compose.yml", "config"]);
        else if (OnPath("docker") is { } docker && (await RunAsync(docker, ["compose", "version"], [], ct)).ExitCode == 0)
            tool = (docker, ["compose", "-f", "docker-compose.yml", "config"]);
        if (tool is null)
            Assert.Skip("neither docker-compose nor the `docker compose` plugin is installed: cannot resolve docker-compose.yml");
        return await RunAsync(tool.Value.File, tool.Value.Args, environment, ct);
    }

    private static string? OnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private static async Task<CommandResult> RunAsync(string file, string[] args, Dictionary<string, string?> environment, CancellationToken ct)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in args)
            start.ArgumentList.Add(a);
        foreach (var (key, value) in environment)
            if (value is null) start.Environment.Remove(key); else start.Environment[key] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return new CommandResult(process.ExitCode, await stdout, await stderr);
    }
}
