using System.Text.RegularExpressions;
using AttrCloak.Streaming.Hosting;
using Microsoft.Extensions.Configuration;
using YamlDotNet.RepresentationModel;

namespace AttrCloak.Deployment.Tests;

/// <summary>
/// deploy/kubernetes parsed as YAML (no cluster here): the fields Kubernetes requires, probes on the worker's real
/// endpoints and port, secrets only by reference, selectors that select, and a kustomization that applies every file.
/// </summary>
public sealed partial class KubernetesManifestsTests
{
    private static readonly string Root = RepositoryRoot();
    private static readonly string ManifestDirectory = Path.Combine(Root, "deploy", "kubernetes");

    [Fact]
    public void Every_document_has_api_version_kind_and_name()
    {
        var documents = AllDocuments();
        documents.Count.ShouldBeGreaterThanOrEqualTo(6, "deploy/kubernetes should hold the namespace, ConfigMap, Secret template, Deployment, Service, PDB and ServiceMonitor");
        foreach (var (file, doc) in documents)
        {
            Text(doc, "apiVersion").ShouldNotBeNullOrWhiteSpace($"{file}: apiVersion");
            Text(doc, "kind").ShouldNotBeNullOrWhiteSpace($"{file}: kind");
            var name = Text(doc, "metadata", "name");
            name.ShouldNotBeNullOrWhiteSpace($"{file}: metadata.name");
            // Kubernetes object names are DNS-1123 subdomains.
            DnsName().IsMatch(name!).ShouldBeTrue($"{file}: metadata.name '{name}' is not a DNS-1123 name");
        }
        documents.GroupBy(d => (Text(d.Doc, "kind"), Text(d.Doc, "metadata", "name")))
            .Where(g => g.Count() > 1).Select(g => g.Key.ToString()).ShouldBeEmpty("duplicate kind/name");
        documents.Select(d => Text(d.Doc, "kind")).Distinct().ShouldBe(
            ["ConfigMap", "Deployment", "Namespace", "PodDisruptionBudget", "Secret", "Service", "ServiceMonitor"], ignoreOrder: true);
    }

    [Fact]
    public void Deployment_probes_the_worker_endpoints_on_its_http_port()
    {
        var container = GuardContainer();
        var ports = Sequence(container, "ports").ToArray();
        ports.Length.ShouldBe(1);
        Text(ports[0], "name").ShouldBe("http");
        Text(ports[0], "containerPort").ShouldBe(new GuardOptions().HttpPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Text(ports[0], "containerPort").ShouldBe("8080");

        foreach (var (probe, path) in new[] { ("livenessProbe", GuardEndpoints.LivePath), ("readinessProbe", GuardEndpoints.ReadyPath) })
        {
            Text(container, probe, "httpGet", "path").ShouldBe(path, probe);
            ResolvePort(container, Text(container, probe, "httpGet", "port")).ShouldBe(8080, probe);
        }

        // The pod annotations a scraping Prometheus follows must point at the same port and the metrics path.
        var annotations = Node(Deployment(), "spec", "template", "metadata", "annotations");
        Text(annotations, "prometheus.io/scrape").ShouldBe("true");
        Text(annotations, "prometheus.io/port").ShouldBe("8080");
        Text(annotations, "prometheus.io/path").ShouldBe(GuardEndpoints.MetricsPath);
    }

    [Fact]
    public void Deployment_runs_as_non_root_with_a_read_only_root_and_limits()
    {
        var pod = Node(Deployment(), "spec", "template", "spec");
        Text(pod, "securityContext", "runAsNonRoot").ShouldBe("true");
        int.Parse(Text(pod, "securityContext", "runAsUser")!, System.Globalization.CultureInfo.InvariantCulture).ShouldBeGreaterThan(0);
        var container = GuardContainer();
        Text(container, "securityContext", "allowPrivilegeEscalation").ShouldBe("false");
        Text(container, "securityContext", "readOnlyRootFilesystem").ShouldBe("true");
        // A read-only root needs a writable /tmp for .NET (diagnostic sockets, temporary files).
        var tmp = Sequence(container, "volumeMounts").SingleOrDefault(m => Text(m, "mountPath") == "/tmp");
        tmp.ShouldNotBeNull("/tmp must be a writable volume when the root filesystem is read-only");
        var tmpVolume = Sequence(pod, "volumes").Single(v => Text(v, "name") == Text(tmp, "name"));
        Node(tmpVolume, "emptyDir").ShouldNotBeNull();
        foreach (var kind in new[] { "requests", "limits" })
            Text(container, "resources", kind, "memory").ShouldNotBeNullOrWhiteSpace($"resources.{kind}.memory");
        Text(container, "resources", "requests", "cpu").ShouldNotBeNullOrWhiteSpace();
    }

    [Fact]
    public void Secrets_reach_the_worker_only_by_secret_key_reference()
    {
        var container = GuardContainer();
        var env = Sequence(container, "env").ToDictionary(e => Text(e, "name")!, e => e);
        var templates = AllDocuments().Where(d => Text(d.Doc, "kind") == "Secret").ToDictionary(d => Text(d.Doc, "metadata", "name")!, d => d.Doc);
        foreach (var name in new[] { "AttrCloak__Kafka__Client__sasl.username", "AttrCloak__Kafka__Client__sasl.password", "AttrCloak__Redis__Configuration", "AttrCloak__Redis__TombstoneSecret" })
        {
            env.ShouldContainKey(name);
            Text(env[name], "value").ShouldBeNull($"{name} must not carry a literal value");
            var secret = Text(env[name], "valueFrom", "secretKeyRef", "name");
            var key = Text(env[name], "valueFrom", "secretKeyRef", "key");
            secret.ShouldNotBeNull($"{name}: valueFrom.secretKeyRef.name");
            // Every referenced secret key is documented in the template, so an operator knows what to create.
            templates.ShouldContainKey(secret!, $"{name} references Secret '{secret}', which secret.template.yaml does not describe");
            Text(templates[secret!], "stringData", key!).ShouldNotBeNull($"{name}: key '{key}' missing from the Secret template");
        }
        // Kubernetes accepts these names (dots included); a name it rejects would fail the whole Deployment.
        foreach (var name in env.Keys)
            EnvName().IsMatch(name).ShouldBeTrue($"env name '{name}' is not a valid Kubernetes environment variable name");
        // The CA file the ConfigMap names must be mounted from the CA secret.
        var caPath = AppSettings()["AttrCloak:Kafka:Client:ssl.ca.location"];
        caPath.ShouldNotBeNull();
        var caMount = Sequence(container, "volumeMounts").Single(m => caPath!.StartsWith(Text(m, "mountPath") + "/", StringComparison.Ordinal));
        var caVolume = Sequence(Node(Deployment(), "spec", "template", "spec"), "volumes").Single(v => Text(v, "name") == Text(caMount, "name"));
        var caSecret = Text(caVolume, "secret", "secretName");
        templates.ShouldContainKey(caSecret!);
        Text(templates[caSecret!], "stringData", Path.GetFileName(caPath!)).ShouldNotBeNull();
    }

    [Fact]
    public void Config_map_is_a_valid_worker_configuration_without_secrets_and_the_secret_env_completes_it()
    {
        var fromFile = AppSettings();
        // What the pod sees: the mounted file, then the secret environment variables (their names map "__" to ":").
        var env = Sequence(GuardContainer(), "env").ToDictionary(
            e => Text(e, "name")!.Replace("__", ":", StringComparison.Ordinal),
            e => (string?)"from-secret");
        var settings = StreamingSettings.Bind(new ConfigurationBuilder().AddConfiguration(fromFile).AddInMemoryCollection(env).Build());
        settings.Kafka.Client["security.protocol"].ShouldBe("SASL_SSL");
        settings.Kafka.Client["sasl.mechanism"].ShouldBe("SCRAM-SHA-512");
        settings.Kafka.Client["sasl.username"].ShouldBe("from-secret");
        settings.Kafka.Client["sasl.password"].ShouldBe("from-secret");
        settings.Redis.Configuration.ShouldBe("from-secret");
        settings.Redis.TombstoneSecret.ShouldBe("from-secret");
        settings.Guard.HttpPort.ShouldBe(8080);

        // The file alone carries none of them.
        var fileOnly = StreamingSettings.Bind(fromFile);
        fileOnly.Kafka.Client.Keys.ShouldNotContain("sasl.password");
        fileOnly.Kafka.Client.Keys.ShouldNotContain("sasl.username");
        fileOnly.Redis.Configuration.ShouldBeEmpty();
        fileOnly.Redis.TombstoneSecret.ShouldBeEmpty();
        fromFile.AsEnumerable().Select(p => p.Key).Where(k => k.Contains("password", StringComparison.OrdinalIgnoreCase)).ShouldBeEmpty();

        // serve reads the file the ConfigMap is mounted as.
        var container = GuardContainer();
        var args = Sequence(container, "args").Select(a => ((YamlScalarNode)a).Value).ToArray();
        args[0].ShouldBe("serve");
        var configPath = args[Array.IndexOf(args, "--config") + 1]!;
        var mount = Sequence(container, "volumeMounts").Single(m => Text(m, "mountPath") == Path.GetDirectoryName(configPath));
        var volume = Sequence(Node(Deployment(), "spec", "template", "spec"), "volumes").Single(v => Text(v, "name") == Text(mount, "name"));
        Text(volume, "configMap", "name").ShouldBe(Text(ConfigMap(), "metadata", "name"));
        Node(ConfigMap(), "data", Path.GetFileName(configPath)).ShouldNotBeNull();
    }

    [Fact]
    public void Service_pdb_and_service_monitor_select_the_deployment_pods()
    {
        var deployment = Deployment();
        var podLabels = Map(deployment, "spec", "template", "metadata", "labels");
        Map(deployment, "spec", "selector", "matchLabels").ShouldBeSubsetOf(podLabels);

        var service = Single("Service");
        var selector = Map(service, "spec", "selector");
        selector.ShouldNotBeEmpty();
        selector.ShouldBeSubsetOf(podLabels);
        var servicePort = Sequence(service, "spec", "ports").Single();
        Text(servicePort, "port").ShouldBe("8080");
        Text(servicePort, "name").ShouldBe("http");
        ResolvePort(GuardContainer(), Text(servicePort, "targetPort")).ShouldBe(8080);

        var pdb = Single("PodDisruptionBudget");
        Map(pdb, "spec", "selector", "matchLabels").ShouldBeSubsetOf(podLabels);

        var monitor = Single("ServiceMonitor");
        Text(monitor, "apiVersion").ShouldBe("monitoring.coreos.com/v1");
        Map(monitor, "spec", "selector", "matchLabels").ShouldBeSubsetOf(Map(service, "metadata", "labels"));
        var endpoint = Sequence(monitor, "spec", "endpoints").Single();
        Text(endpoint, "port").ShouldBe(Text(servicePort, "name"));
        Text(endpoint, "path").ShouldBe(GuardEndpoints.MetricsPath);
    }

    [Fact]
    public void Kustomizations_list_every_manifest_except_the_secret_template()
    {
        var kustomizations = Directory.GetFiles(ManifestDirectory, "kustomization.yaml", SearchOption.AllDirectories);
        kustomizations.Length.ShouldBeGreaterThanOrEqualTo(1);
        var applied = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in kustomizations)
        {
            var dir = Path.GetDirectoryName(file)!;
            var doc = Load(file).Single();
            Text(doc, "kind").ShouldBe("Kustomization");
            foreach (var resource in Sequence(doc, "resources").Select(r => ((YamlScalarNode)r).Value!))
            {
                var path = Path.GetFullPath(Path.Combine(dir, resource));
                (File.Exists(path) || Directory.Exists(path)).ShouldBeTrue($"{Relative(file)} lists '{resource}', which does not exist");
                if (File.Exists(path)) applied.Add(path);
            }
            // Each folder's own manifests are all in its kustomization: a forgotten file is never applied.
            foreach (var manifest in Manifests(dir, SearchOption.TopDirectoryOnly))
                applied.ShouldContain(manifest, $"{Relative(manifest)} is not listed in {Relative(file)}");
        }
        // Secret values never come from the repository.
        applied.ShouldNotContain(p => p.EndsWith(".template.yaml", StringComparison.Ordinal));
        applied.Count.ShouldBe(Manifests(ManifestDirectory, SearchOption.AllDirectories).Count());
    }

    // ---- helpers ---------------------------------------------------------------------------------------------

    private static IEnumerable<string> Manifests(string dir, SearchOption option) =>
        Directory.GetFiles(dir, "*.yaml", option).Concat(Directory.GetFiles(dir, "*.yml", option))
            .Where(f => Path.GetFileName(f) != "kustomization.yaml" && !f.EndsWith(".template.yaml", StringComparison.Ordinal))
            .Select(Path.GetFullPath);

    private static List<(string File, YamlMappingNode Doc)> AllDocuments() =>
        Directory.GetFiles(ManifestDirectory, "*.y*ml", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f) != "kustomization.yaml")
            .Order(StringComparer.Ordinal)
            .SelectMany(f => Load(f).Select(d => (Relative(f), d)))
            .ToList();

    private static List<YamlMappingNode> Load(string file)
    {
        var stream = new YamlStream();
        using (var reader = new StreamReader(file)) stream.Load(reader);
        var documents = new List<YamlMappingNode>();
        foreach (var document in stream.Documents)
        {
            if (document.RootNode is YamlScalarNode { Value: null or "" }) continue; // an empty document after '---'
            documents.Add(document.RootNode as YamlMappingNode
                ?? throw new InvalidDataException($"{Relative(file)}: a document is not a mapping"));
        }
        return documents;
    }

    private static YamlMappingNode Single(string kind) => AllDocuments().Single(d => Text(d.Doc, "kind") == kind).Doc;
    private static YamlMappingNode Deployment() => Single("Deployment");
    private static YamlMappingNode ConfigMap() => Single("ConfigMap");

    private static YamlMappingNode GuardContainer() =>
        (YamlMappingNode)Sequence(Deployment(), "spec", "template", "spec", "containers").Single(c => Text(c, "name") == "guard");

    private static IConfigurationRoot AppSettings()
    {
        var json = Text(ConfigMap(), "data", "appsettings.json");
        json.ShouldNotBeNull("the ConfigMap carries appsettings.json");
        return new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json!))).Build();
    }

    /// <summary>A probe or service port given by name or number, as the container's port number.</summary>
    private static int ResolvePort(YamlNode container, string? port)
    {
        port.ShouldNotBeNull();
        if (int.TryParse(port, System.Globalization.CultureInfo.InvariantCulture, out var number)) return number;
        var named = Sequence(container, "ports").SingleOrDefault(p => Text(p, "name") == port);
        named.ShouldNotBeNull($"no container port named '{port}'");
        return int.Parse(Text(named, "containerPort")!, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static YamlNode? Node(YamlNode? node, params string[] path)
    {
        foreach (var key in path)
        {
            if (node is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode(key), out node)) return null;
        }
        return node;
    }

    private static string? Text(YamlNode? node, params string[] path) => (Node(node, path) as YamlScalarNode)?.Value;

    private static IEnumerable<YamlNode> Sequence(YamlNode? node, params string[] path) =>
        Node(node, path) as YamlSequenceNode ?? throw new ShouldAssertException($"{string.Join('.', path)} is not a list");

    private static Dictionary<string, string?> Map(YamlNode? node, params string[] path) =>
        (Node(node, path) as YamlMappingNode ?? throw new ShouldAssertException($"{string.Join('.', path)} is not a mapping"))
        .Children.ToDictionary(p => ((YamlScalarNode)p.Key).Value!, p => (p.Value as YamlScalarNode)?.Value);

    private static string Relative(string path) => Path.GetRelativePath(Root, path);

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "AttrCloak.Streaming.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"No AttrCloak.Streaming.sln above {AppContext.BaseDirectory}.");
    }

    [GeneratedRegex("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
    private static partial Regex DnsName();

    // Kubernetes' rule for environment variable names before 1.32 relaxed it (dots and dashes were always allowed).
    [GeneratedRegex("^[-._a-zA-Z][-._a-zA-Z0-9]*$")]
    private static partial Regex EnvName();
}
