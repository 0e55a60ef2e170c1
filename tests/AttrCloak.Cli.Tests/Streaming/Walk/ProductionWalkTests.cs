using System.Diagnostics;
using System.Globalization;
using System.Text;
using AttrCloak.Cli.Experiments;
using AttrCloak.Core.Data;
using AttrCloak.Streaming.Contracts;
using Confluent.Kafka;
using System.Text.RegularExpressions;

namespace AttrCloak.Cli.Tests.Streaming.Walk;

/// <summary>
/// README "Running in production", walked as an operator would, every part its own process: `attrcloak kafka-mock`
/// as the broker (creating the deployment's topics), a real redis-server, `attrcloak train` and `attrcloak bootstrap`,
/// two `attrcloak serve` in one consumer group (one from deploy/appsettings.example.json, one from the Kubernetes
/// ConfigMap's appsettings.json), `attrcloak replay` as the recommender's producer, and a real `prometheus` scraping
/// both with the rules of deploy/prometheus. Only addresses and secrets are given on top of the shipped files
/// (environment variables, as compose and Kubernetes give them), plus, for the ConfigMap's instance,
/// security.protocol=PLAINTEXT: the mock broker speaks neither TLS nor SASL.
/// Checked: every user of the data set is on the serving topic (last value per key); the shadow audit runs and
/// attrcloak_audit_worst_advantage is in Prometheus; a burst of bad events fires DeadLetters; a killed instance's
/// partitions move to the other and no event is lost. Restart and shutdown times are printed (figures, not asserted).
/// ML-100K when present (by path, never copied), else the built-in synthetic data set, saying so.
/// </summary>
public sealed class ProductionWalkTests
{
    private const string Secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // base64 of 32 bytes, for this test only
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);
    private static readonly string Root = TestData.RepositoryRoot ?? throw new InvalidOperationException("no repository root");
    private static string Example => Path.Combine(Root, "deploy", "appsettings.example.json");

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<string> _figures = [];

    [Fact]
    public async Task The_README_production_walk_serves_every_user_audits_alerts_and_survives_a_killed_instance()
    {
        var ct = TestContext.Current.CancellationToken;
        var prometheusExecutable = PrometheusServer.Executable();
        Assert.SkipWhen(prometheusExecutable is null, "prometheus is not installed (Debian: apt-get install prometheus; scripts/prerequisites.sh test does it)");
        using var tmp = new TempDirectory();
        await using var redis = new RedisServerFixture();
        await redis.InitializeAsync(); // its own redis-server process: the shipped prefix "attrcloak" is this test's alone
        _ = redis.Redis; // skips, with the reason, when redis-server is not installed

        // The data set: ML-100K by path, else the synthetic one (its occupations are ML-1M's: the catalog says so).
        var ml100k = TestData.MovieLens100KDirectory;
        var dataArgs = ml100k is null ? new[] { "--dataset", "synthetic" } : ["--dataset", "ml-100k", "--data", ml100k];
        var catalogOverride = new Dictionary<string, string>();
        if (ml100k is null)
        {
            Step($"ML-100K not found ({TestData.MovieLens100KMissingReason}): walking with the synthetic data set, whose occupations (ML-1M's) replace the catalog's by environment");
            for (var k = 0; k < MovieLensAttributes.Occupation1M.ClassCount; k++)
                catalogOverride[$"AttrCloak__Guard__Attributes__occupation__{k}"] = MovieLensAttributes.Occupation1M.ClassNames[k];
        }
        var data = (ml100k is null ? new DataSource("synthetic", null) : new DataSource("ml-100k", ml100k)).Load();
        Step($"data set {data.Name}: {data.UserCount} users");

        // What an operator exports (README): the broker and Redis addresses and the tombstone secret.
        var brokerPort = AttrCloak.Tools.LocalRedis.RedisServerProcess.FreePort();
        var brokers = $"127.0.0.1:{brokerPort}";
        var env = new Dictionary<string, string>(catalogOverride)
        {
            ["AttrCloak__Kafka__BootstrapServers"] = brokers,
            ["AttrCloak__Redis__Configuration"] = $"127.0.0.1:{redis.Port}",
            ["AttrCloak__Redis__TombstoneSecret"] = Secret,
        };
        // The Kubernetes ConfigMap's file, as the pod mounts it; its Secrets come as environment variables.
        var configMap = tmp["configmap-appsettings.json"];
        File.WriteAllText(configMap, ConfigMapAppSettings());
        var configMapEnv = new Dictionary<string, string>(env) { ["AttrCloak__Kafka__Client__security.protocol"] = "PLAINTEXT" };

        // 1. The broker, with the deployment's topics (README: `attrcloak kafka-mock --config ...`).
        await using var broker = ChildProcess.Attrcloak("kafka-mock", env, "kafka-mock", "--port", $"{brokerPort}", "--config", Example);
        (await broker.WaitForLineAsync("mock Kafka broker listening on ", TimeSpan.FromSeconds(60), ct)).ShouldEndWith(brokers);
        broker.Output.ShouldContain("created topics: attrcloak.embeddings (4 partitions), attrcloak.privacy-requests (4 partitions), attrcloak.cloaked (4 partitions), attrcloak.dead-letter (4 partitions)");
        Step("kafka-mock up with the deployment's topics");

        // 2. A model, and half of its users bootstrapped (batch AttrCloak-DF) into Redis; the workers publish them.
        var model = tmp["model"];
        await RunAsync("train", env, ["train", .. dataArgs, "--out", model], ct);
        var bootstrap = await RunAsync("bootstrap", env, ["bootstrap", "--config", Example, "--model", model, "--fraction", "0.5"], ct);
        var bootstrapped = UserSampleCount(data.UserCount);
        bootstrap.ShouldContain($"bootstrapping {bootstrapped} of {data.UserCount} users");
        bootstrap.ShouldMatch($@"users written \(applied\)\s+│ {bootstrapped} ");
        bootstrap.ShouldContain("(the workers publish its users)");

        // 3. Two workers in one consumer group, and Prometheus scraping both.
        var ports = new[] { AttrCloak.Tools.LocalRedis.RedisServerProcess.FreePort(), AttrCloak.Tools.LocalRedis.RedisServerProcess.FreePort() };
        var configs = new[] { (File: Example, Env: env), (File: configMap, Env: configMapEnv) };
        var workers = new ChildProcess?[2];
        try
        {
            var started = Stopwatch.StartNew();
            for (var i = 0; i < 2; i++) workers[i] = StartWorker(i, configs[i].File, configs[i].Env, ports[i]);
            await using var prometheus = await PrometheusServer.StartAsync(prometheusExecutable!, Root, tmp.Path, ports.Select(p => $"127.0.0.1:{p}"), ct);
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            await EventuallyAsync(async () => await ReadyAsync(http, ports[0], ct) && await ReadyAsync(http, ports[1], ct), "both workers ready", workers, ct);
            Figure($"two workers started and ready in {started.Elapsed.TotalSeconds:F1} s");
            (await HeldAsync(http, ports[0], ct) + await HeldAsync(http, ports[1], ct)).ShouldBe(8, "the group shares the 8 input partitions");

            // 4. The recommender's producer streams the other half (README: replay --after-bootstrap 0.5).
            await RunAsync("replay", env, ["replay", "--config", Example, "--model", model, "--after-bootstrap", "0.5", "--rate", "200"], ct);
            using var serving = new ServingTopic(brokers, "attrcloak.cloaked");
            var ids = data.UserIds.ToHashSet(StringComparer.Ordinal);
            await serving.WaitUntilAsync(latest => ids.All(id => latest.TryGetValue(id, out var v) && v is not null), Deadline,
                () => $"{ids.Count(id => serving.Latest.TryGetValue(id, out var v) && v is not null)} of {ids.Count} users served", ct);
            var records = ids.ToDictionary(id => id, id => ServingTopic.Decode(serving.Latest[id])!);
            records.Values.Count(r => r.Version == 0).ShouldBe(bootstrapped, "bootstrapped users are served at their bootstrap version");
            records.Values.Count(r => r.Version == 1).ShouldBe(data.UserCount - bootstrapped, "streamed users are served at the replayed version");
            Step($"every one of the {ids.Count} users is on the serving topic ({serving.Messages} records)");
            // What the cloak does NOT protect (docs/evaluation.md "What the cloak protects"): whoever holds the original embeddings can
            // link a served embedding to its owner. Measured, not asserted: a figure for docs/evaluation.md.
            var originals = AttrCloak.Core.IO.NpyFile.Read(Path.Combine(model, "users.npy"));
            var (own, ownDistance, otherDistance) = Linkability(data, originals, records);
            Figure($"linkability: for {own} of {ids.Count} served users the nearest original embedding is their own " +
                   $"(median distance to the own original {ownDistance:F3}, to the nearest other original {otherDistance:F3})");

            // 5. The shadow audit ran on each worker and its figures are in Prometheus.
            await EventuallyAsync(async () => (await prometheus.QueryAsync("attrcloak_audit_worst_advantage", ct))
                .Select(r => r.Labels["instance"]).Distinct().Count() == 2, "attrcloak_audit_worst_advantage of both workers in Prometheus", workers, ct, prometheus);
            // The alerts read the recording rule, evaluated every 2 s from the scraped series.
            await EventuallyAsync(async () => (await prometheus.QueryAsync("attrcloak:audit_worst_advantage:max", ct)).Count == 3,
                "attrcloak:audit_worst_advantage:max recorded for the three attributes", workers, ct, prometheus);
            var advantage = await prometheus.QueryAsync("attrcloak:audit_worst_advantage:max", ct);
            advantage.Select(r => r.Labels["attribute"]).ShouldBe(["age", "gender", "occupation"], ignoreOrder: true);
            (await prometheus.QueryAsync("sum(attrcloak_audit_failing)", ct)).Single().Value.ShouldBe(0);
            Figure("shadow audit, worst advantage over chance: " + string.Join(", ", advantage.OrderBy(r => r.Labels["attribute"], StringComparer.Ordinal)
                .Select(r => $"{r.Labels["attribute"]} {r.Value:+0.000;-0.000}")));

            // 6. A burst of bad events: each kind of producer mistake, keyed by real users.
            var burst = await ProduceBadBurstAsync(brokers, data.UserIds.Take(10).ToList());
            var burstAt = Stopwatch.StartNew();
            await EventuallyAsync(async () => (await prometheus.QueryAsync("sum(attrcloak_dead_letters_total)", ct)).SingleOrDefault().Value >= burst,
                $"{burst} dead letters counted in Prometheus", workers, ct, prometheus);
            Step($"{burst} bad events dead-lettered and scraped");

            // 7. kill -9 one worker while a new version of every user streams in: its partitions move, nothing is lost.
            await using var replay = ChildProcess.Attrcloak("replay v5", env, "replay", "--config", Example, "--model", model, "--first-version", "5", "--rate", "300", "--shuffle");
            // Part of the stream served, most still to come: then the kill.
            await serving.WaitUntilAsync(latest => latest.Values.Count(v => ServingTopic.Decode(v)?.Version == 5) >= 60, Deadline,
                () => $"version 5 of 60 users served (replay exited: {replay.HasExited})\n{replay.Output}", ct);
            await workers[0]!.KillAsync();
            var killed = Stopwatch.StartNew();
            Step("worker 0 killed (SIGKILL) mid-stream");
            await EventuallyAsync(async () => await HeldAsync(http, ports[1], ct) == 8, "the surviving worker holds all 8 partitions", workers, ct);
            Figure($"kill -9: the other worker held all 8 partitions {killed.Elapsed.TotalSeconds:F1} s later (session timeout 6 s + the mock's rebalance wait)");
            (await replay.WaitForExitAsync(Deadline, ct)).ShouldBe(0, replay.Output);
            await serving.WaitUntilAsync(latest => ids.All(id => ServingTopic.Decode(latest[id])?.Version == 5), Deadline,
                () => $"{ids.Count(id => ServingTopic.Decode(serving.Latest[id])?.Version == 5)} of {ids.Count} users at version 5", ct);
            Figure($"nothing lost: all {ids.Count} users served at their newest version {killed.Elapsed.TotalSeconds:F1} s after the kill");

            // 8. Restart and stop times (README figures; bounded stop is the contract, the seconds are printed).
            var restart = Stopwatch.StartNew();
            workers[0] = StartWorker(0, configs[0].File, configs[0].Env, ports[0]);
            await EventuallyAsync(async () => await ReadyAsync(http, ports[0], ct) && await HeldAsync(http, ports[0], ct) > 0, "the restarted worker serving partitions", workers, ct);
            Figure($"restart after kill -9: ready with partitions {restart.Elapsed.TotalSeconds:F1} s after the start");
            var stopped = await workers[0]!.TerminateAsync(TimeSpan.FromSeconds(30));
            stopped.ShouldNotBeNull("SIGTERM must stop the worker within its shutdown budget (10 s) plus process exit");
            workers[0]!.ExitCode.ShouldBe(0, workers[0]!.Output);
            Figure($"SIGTERM: exited in {stopped.Value.TotalSeconds:F1} s");
            restart.Restart();
            workers[0] = StartWorker(0, configs[0].File, configs[0].Env, ports[0]);
            await EventuallyAsync(async () => await ReadyAsync(http, ports[0], ct) && await HeldAsync(http, ports[0], ct) > 0, "the restarted worker serving partitions", workers, ct);
            Figure($"restart after SIGTERM: ready with partitions {restart.Elapsed.TotalSeconds:F1} s after the start");

            // The store agrees with a recomputation after all of it.
            var verify = await RunAsync("stats verify", env, ["stats", "verify", "--config", Example], ct);
            verify.ShouldContain("consistent");

            // 9. The burst fires DeadLetters (for: 1m over the last 10 minutes' dead letters).
            await EventuallyAsync(async () => (await prometheus.AlertsAsync(ct)).Any(a => a is { Name: "DeadLetters", State: "firing" }),
                "DeadLetters firing", workers, ct, prometheus);
            var firing = (await prometheus.AlertsAsync(ct)).Where(a => a is { Name: "DeadLetters", State: "firing" }).Select(a => a.Labels["reason"]).Order().ToList();
            firing.ShouldBe(["malformed_json", "wrong_dimension", "wrong_topic"]);
            Figure($"DeadLetters firing for {string.Join(", ", firing)} {burstAt.Elapsed.TotalSeconds:F0} s after the burst");

            // 10. The broker gone: a SIGTERM still ends both workers within the budget.
            await broker.KillAsync();
            await EventuallyAsync(async () => !await ReadyAsync(http, ports[0], ct) && !await ReadyAsync(http, ports[1], ct), "both workers not ready without the broker", workers, ct);
            for (var i = 0; i < 2; i++)
            {
                var exited = await workers[i]!.TerminateAsync(TimeSpan.FromSeconds(30));
                exited.ShouldNotBeNull($"worker {i} did not stop within 30 s of SIGTERM with the broker gone:\n{workers[i]!.Output}");
                Figure($"SIGTERM with the broker gone: worker {i} exited in {exited.Value.TotalSeconds:F1} s");
            }
            // Readiness logged its changes, not every probe (probes ran every 250 ms while waiting).
            var readinessLines = workers[1]!.Output.Split('\n').Count(l => l.Contains("Readiness:", StringComparison.Ordinal));
            readinessLines.ShouldBeLessThan(40, workers[1]!.Output);
            workers[1]!.Output.ShouldNotContain("Health check");
        }
        finally
        {
            foreach (var w in workers) if (w is not null) await w.DisposeAsync();
            TestContext.Current.TestOutputHelper?.WriteLine(string.Join(Environment.NewLine, _figures));
        }
    }

    // ---- steps --------------------------------------------------------------------------------------------------

    private static ChildProcess StartWorker(int index, string config, IReadOnlyDictionary<string, string> env, int port) =>
        ChildProcess.Attrcloak($"worker {index}", env, "serve", "--config", config, "--port", port.ToString(CultureInfo.InvariantCulture));

    /// <summary>Runs a command to its end; its output (exit code 0 required).</summary>
    private async Task<string> RunAsync(string name, IReadOnlyDictionary<string, string> env, string[] args, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        await using var child = ChildProcess.Attrcloak(name, env, args);
        var code = await child.WaitForExitAsync(TimeSpan.FromMinutes(5), ct);
        code.ShouldBe(0, $"attrcloak {string.Join(' ', args)}:\n{child.Output}");
        Step($"attrcloak {name}: {clock.Elapsed.TotalSeconds:F1} s");
        return child.Output;
    }

    /// <summary>10 malformed JSON, 10 wrong dimension, 10 opt_out on the embeddings topic (wrong_topic): 30 dead letters.</summary>
    private static async Task<int> ProduceBadBurstAsync(string brokers, IReadOnlyList<string> users)
    {
        using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = brokers, EnableIdempotence = true })
            .SetLogHandler((_, _) => { }).Build();
        var sent = new List<Task>();
        foreach (var user in users)
        {
            var key = EventCodec.KeyOf(user);
            sent.Add(producer.ProduceAsync("attrcloak.embeddings", new Message<byte[], byte[]> { Key = key, Value = Encoding.UTF8.GetBytes("{\"schema\": \"attrcloak.embedding_update.v1\", ") }));
            sent.Add(producer.ProduceAsync("attrcloak.embeddings", new Message<byte[], byte[]>
            {
                Key = key,
                Value = EventCodec.Encode(new EmbeddingUpdate($"bad-dim-{user}", user, 3, DateTimeOffset.UtcNow, "mf-walk", [0.1f, 0.2f, 0.3f], null)),
            }));
            sent.Add(producer.ProduceAsync("attrcloak.embeddings", new Message<byte[], byte[]>
            {
                Key = key,
                Value = EventCodec.Encode(new PrivacyRequest($"bad-topic-{user}", user, 3, DateTimeOffset.UtcNow, PrivacyRequestType.OptOut, null)),
            }));
        }
        await Task.WhenAll(sent);
        return sent.Count;
    }

    /// <summary>The Kubernetes ConfigMap's appsettings.json, as the pod mounts it (a literal block in configmap.yaml).</summary>
    private static string ConfigMapAppSettings()
    {
        var yaml = File.ReadAllText(Path.Combine(Root, "deploy", "kubernetes", "configmap.yaml"));
        var match = Regex.Match(yaml, @"appsettings\.json: \|\n(?<body>(    .*\n|\s*\n)+)");
        match.Success.ShouldBeTrue("configmap.yaml carries appsettings.json as a literal block");
        var json = string.Join('\n', match.Groups["body"].Value.Split('\n').Select(l => l.Length >= 4 ? l[4..] : l));
        System.Text.Json.JsonDocument.Parse(json).Dispose(); // valid JSON, or the walk would test nothing
        return json;
    }

    /// <summary>
    /// Re-identification by nearest original: how many served embeddings have their owner's original embedding as the
    /// nearest of all originals, and the median distances to the own and to the nearest other original.
    /// </summary>
    private static (int Own, double OwnDistance, double OtherDistance) Linkability(RecDataset data, EmbeddingMatrix originals, IReadOnlyDictionary<string, CloakedEmbedding> served)
    {
        var own = 0;
        var ownDistances = new List<double>();
        var otherDistances = new List<double>();
        for (var u = 0; u < data.UserCount; u++)
        {
            var x = served[data.UserIds[u]].Embedding;
            var nearest = -1;
            double best = double.MaxValue, nearestOther = double.MaxValue;
            for (var v = 0; v < data.UserCount; v++)
            {
                var row = originals.Row(v);
                double d2 = 0;
                for (var j = 0; j < x.Length; j++) d2 += (x[j] - row[j]) * (double)(x[j] - row[j]);
                if (d2 < best) (best, nearest) = (d2, v);
                if (v != u && d2 < nearestOther) nearestOther = d2;
            }
            if (nearest == u) own++;
            var o = originals.Row(u);
            double ownD2 = 0;
            for (var j = 0; j < x.Length; j++) ownD2 += (x[j] - o[j]) * (double)(x[j] - o[j]);
            ownDistances.Add(Math.Sqrt(ownD2));
            otherDistances.Add(Math.Sqrt(nearestOther));
        }
        static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
        return (own, Median(ownDistances), Median(otherDistances));
    }

    private static int UserSampleCount(int users) => Math.Clamp((int)Math.Round(0.5 * users), 1, users);

    private static async Task<bool> ReadyAsync(HttpClient http, int port, CancellationToken ct)
    {
        try { return (await http.GetAsync($"http://127.0.0.1:{port}/healthz/ready", ct)).IsSuccessStatusCode; }
        catch (HttpRequestException) { return false; }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested) { return false; }
    }

    /// <summary>attrcloak_assigned_partitions summed over the input topics, from the worker's /metrics (0 when unreachable).</summary>
    private static async Task<int> HeldAsync(HttpClient http, int port, CancellationToken ct)
    {
        string text;
        try { text = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics", ct); }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested) { return 0; }
        return (int)text.Split('\n').Where(l => l.StartsWith("attrcloak_assigned_partitions{", StringComparison.Ordinal))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
    }

    private async Task EventuallyAsync(Func<Task<bool>> condition, string what, ChildProcess?[] workers, CancellationToken ct, PrometheusServer? prometheus = null)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"not within {Deadline.TotalSeconds:F0} s: {what}\n" +
                    string.Join("\n", workers.Where(w => w is not null).Select(w => $"---- {w!.Name} (exited: {w.HasExited}):\n{Tail(w.Output)}")) +
                    (prometheus is null ? "" : $"\n---- prometheus:\n{Tail(prometheus.Output)}"));
            await Task.Delay(250, ct);
        }
        Step(what);
    }

    private static string Tail(string text) => string.Join('\n', text.Split('\n').TakeLast(60));

    private void Step(string what) => TestContext.Current.TestOutputHelper?.WriteLine($"[{_clock.Elapsed.TotalSeconds,6:F1} s] {what}");

    private void Figure(string what)
    {
        _figures.Add(what);
        Step(what);
    }
}
