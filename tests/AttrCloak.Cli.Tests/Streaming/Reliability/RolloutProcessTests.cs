using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using AttrCloak.Audit;
using AttrCloak.Cli.Experiments;
using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Kafka;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Redis;
using AttrCloak.Tools.Kafka;
using StackExchange.Redis;
using static AttrCloak.Cli.Tests.Streaming.StreamingTestSupport;

namespace AttrCloak.Cli.Tests.Streaming.Reliability;

/// <summary>
/// A model rollout on MovieLens-100K as an operator runs it, every step a command: `train` model A (seed 1) and model
/// B (seed 2), `bootstrap` half of A, `serve` (a separate process), `replay` the other half of A, then `replay` B for
/// every user as a retrained recommender would publish it. B fills unserved, is promoted by itself, seated and swept
/// out; the worker is killed with SIGKILL during that sweep and restarted; then `generations retire` A. Checked: no
/// user is ever served B before B's promotion or A after B; the served B population is within +0.02 worst-attacker
/// balanced accuracy and 1 % NDCG@10 (scored with B's items) of batch AttrCloak-DF on B; the sweep resumed after the
/// kill and nothing was lost; no key of A is left; the statistics verify.
/// </summary>
public sealed class RolloutProcessTests(RedisServerFixture redis)
{
    private const string ModelA = "mf-A";
    private const string ModelB = "mf-B";
    /// <summary>
    /// Slow enough to kill the worker in the middle of the promotion's sweep (943 users: about 8 s);
    /// ATTRCLOAK_ROLLOUT_SWEEP_RATE measures another rate (the sweep's log line gives users and seconds).
    /// </summary>
    private static int SweepRate => int.TryParse(Environment.GetEnvironmentVariable("ATTRCLOAK_ROLLOUT_SWEEP_RATE"), out var r) ? r : 120;

    [Fact]
    public async Task A_retrained_model_rolls_out_on_movielens_without_mixing_spaces_and_the_sweep_survives_a_kill_9()
    {
        var dir = TestData.RequireMovieLens100K();
        var ct = TestContext.Current.CancellationToken;
        var output = TestContext.Current.TestOutputHelper;
        var clock = Stopwatch.StartNew();
        void Say(string line) => output?.WriteLine($"[{clock.Elapsed.TotalSeconds,6:F1} s] {line}");
        using var tmp = new TempDirectory();
        using var kafka = new MockKafkaCluster();
        const string embeddings = "embeddings-rollout", requests = "requests-rollout", cloaked = "cloaked-rollout", deadLetters = "dead-rollout";
        kafka.CreateTopics(embeddings, requests, cloaked, deadLetters);
        var prefix = redis.NewPrefix("rollout");
        var data = new DataSource("ml-100k", dir).Load();
        var config = WriteRolloutConfig(tmp["appsettings.json"], $"127.0.0.1:{redis.Port}", kafka.BootstrapServers, prefix, data, deadLetters);

        // Two trainings of the same recommender: unrelated embedding spaces.
        foreach (var (model, seed) in new[] { ("A", 1), ("B", 2) })
        {
            var (trained, trainOutput) = await CliRunner.RunAsync("train", "--dataset", "ml-100k", "--data", dir, "--seed", $"{seed}", "--out", tmp[model]);
            trained.ShouldBe(0, trainOutput);
        }
        Say("trained A and B");
        var (booted, bootOutput) = await CliRunner.RunAsync("bootstrap", "--config", config, "--model", tmp["A"], "--model-version", ModelA, "--fraction", "0.5", "--seed", "3");
        booted.ShouldBe(0, bootOutput);

        using var serving = new TopicTail(kafka.BootstrapServers, cloaked);
        var log = new StringBuilder();
        var run = 0;
        string Context() => $"\n--- worker output (tail) ---\n{Tail(log, 80)}";
        var worker = WorkerProcess.Start(config, tmp.Path, log, ++run);
        try
        {
            var (replayedA, replayAOutput) = await CliRunner.RunAsync("replay", "--config", config, "--model", tmp["A"], "--model-version", ModelA,
                "--after-bootstrap", "0.5", "--seed", "3", "--first-version", "1", "--rate", "0");
            replayedA.ShouldBe(0, replayAOutput);
            await WaitUntilAsync(() => Models(serving).Count(p => p.Value == ModelA) == data.UserCount, TimeSpan.FromSeconds(120), "every user served A", Context, ct);
            Say($"all {data.UserCount} users served {ModelA}");

            // The retrained recommender publishes B for every user.
            var (replayedB, replayBOutput) = await CliRunner.RunAsync("replay", "--config", config, "--model", tmp["B"], "--model-version", ModelB,
                "--seed", "4", "--shuffle", "--first-version", "2", "--rate", "400");
            replayedB.ShouldBe(0, replayBOutput);

            // Kill -9 the worker in the middle of the promotion's sweep, then restart it.
            await WaitUntilAsync(() => Metric(log, "attrcloak_sweep_users_total", ModelB) >= 150, TimeSpan.FromSeconds(180), "the sweep of B under way", Context, ct);
            var sweptBeforeKill = Metric(log, "attrcloak_sweep_users_total", ModelB);
            worker.KillHard();
            Say($"SIGKILL during the sweep of {ModelB} after about {sweptBeforeKill:F0} user actions");
            worker.Dispose();
            worker = WorkerProcess.Start(config, tmp.Path, log, ++run);
            await WaitUntilAsync(() => Models(serving).Count(p => p.Value == ModelB) == data.UserCount, TimeSpan.FromSeconds(180), "every user served B", Context, ct);
            await WaitUntilAsync(() => Metric(log, "attrcloak_sweep_active", ModelB) == 0, TimeSpan.FromSeconds(60), "the resumed sweep to finish", Context, ct);
            var sweptAfterRestart = Metric(log, "attrcloak_sweep_users_total", ModelB);
            Say($"every user served {ModelB}; the restarted worker swept {sweptAfterRestart:F0} users (of {data.UserCount})");
            sweptAfterRestart.ShouldBeLessThan(data.UserCount, "the restarted worker resumed the sweep instead of starting it again");

            // Never B before B's promotion, never A after B.
            using var deployment = new RedisGenerationStore(redis.Redis, StoreOptions(prefix, 64));
            var registry = await deployment.ReadRegistryAsync(ct);
            var promotedAt = registry.Find(ModelB)!.PromotedAt!.Value;
            registry.Serving!.ModelVersion.ShouldBe(ModelB);
            var perUser = new Dictionary<string, List<CloakedEmbedding>>(StringComparer.Ordinal);
            foreach (var (key, value, _) in serving.All())
            {
                value.ShouldNotBeNull("no user lost their record");
                EventCodec.TryDecodeCloaked(value, out var record, out _).ShouldBeTrue();
                (perUser.TryGetValue(record.UserId, out var list) ? list : perUser[record.UserId] = []).Add(record);
            }
            foreach (var (user, records) in perUser)
            {
                records.SkipWhile(r => r.ModelVersion == ModelA).ShouldAllBe(r => r.ModelVersion == ModelB, $"{user} was served A after B");
                records.Where(r => r.ModelVersion == ModelB).ShouldAllBe(r => r.CloakedAt >= promotedAt.AddMilliseconds(-5), $"{user} was served B before its promotion");
            }

            // Quality: the served B population against batch AttrCloak-DF on B, scored with B's items.
            var modelB = ModelFolder.Load(tmp["B"]);
            var split = DataSource.ReadBeside(tmp["B"])!.Split(data);
            var servedB = new float[data.UserCount * modelB.Users.Cols];
            for (var u = 0; u < data.UserCount; u++) perUser[data.UserIds[u]][^1].Embedding.CopyTo(servedB, u * modelB.Users.Cols);
            var served = new EmbeddingMatrix(data.UserCount, modelB.Users.Cols, servedB);
            var batch = new Cloaker().Cloak(modelB.Users, data.Attributes.Select((a, i) => new LabeledAttribute(a, data.Labels[i])).ToArray(),
                CloakPresets.DataFree, ct: ct).Embeddings;
            var audit = new AuditOptions { Attackers = ["lr", "lr+cal", "mlp"], Folds = 5, Seed = 1 };
            var audited = data.Attributes.Select((a, i) => new AuditedAttribute(a.Name, a.ClassCount, data.Labels[i])).ToArray();
            var servedPrivacy = PrivacyAudit.Run(served, audited, audit, ct: ct);
            var batchPrivacy = PrivacyAudit.Run(batch, audited, audit, ct: ct);
            var servedNdcg = UtilityEvaluator.Evaluate(served, modelB.Items, split.TestCandidates).Ndcg10;
            var batchNdcg = UtilityEvaluator.Evaluate(batch, modelB.Items, split.TestCandidates).Ndcg10;
            var originalNdcg = UtilityEvaluator.Evaluate(modelB.Users, modelB.Items, split.TestCandidates).Ndcg10;
            for (var a = 0; a < audited.Length; a++)
            {
                var s = servedPrivacy.Attributes[a];
                var b = batchPrivacy.Attributes[a];
                Say(string.Create(CultureInfo.InvariantCulture,
                    $"{s.Name}: served B worst balanced accuracy {s.WorstBalancedAccuracy:F3} ({s.WorstAttacker}), batch DF on B {b.WorstBalancedAccuracy:F3} ({b.WorstAttacker}), chance {1.0 / audited[a].ClassCount:F3}"));
                s.WorstBalancedAccuracy.ShouldBeLessThanOrEqualTo(b.WorstBalancedAccuracy + 0.02, $"{s.Name}: the served B population leaks more than batch DF on B");
            }
            Say(string.Create(CultureInfo.InvariantCulture, $"NDCG@10 with B's items: original {originalNdcg:F4}, batch DF {batchNdcg:F4}, served {servedNdcg:F4} ({servedNdcg / batchNdcg:F3}x of batch)"));
            // Issue 13: the DF preset's class targets carry a seeded draw of each class's sampling noise, so two batch runs
            // over different populations (the seating's and this reference over all users) differ in NDCG@10 by the draw
            // alone (ML-100K MF, 4 draws: 0.2881-0.2926); 0.99 was a bar for the deterministic targets before it.
            servedNdcg.ShouldBeGreaterThanOrEqualTo(0.97 * batchNdcg);

            // Retire A: nothing of it is left; B's users keep their records; the statistics verify.
            var (retired, retireOutput) = await CliRunner.RunAsync("generations", "retire", ModelA, "--config", config, "--wait", "120");
            retired.ShouldBe(0, retireOutput + Context());
            var keys = new List<string>();
            await foreach (var key in redis.Redis.GetServers()[0].KeysAsync(pattern: RedisGenerationStore.GenerationPrefix(prefix, ModelA) + ":*")) keys.Add(key!);
            keys.ShouldBeEmpty();
            var (listed, listOutput) = await CliRunner.RunAsync("generations", "list", "--config", config);
            listed.ShouldBe(0, listOutput);
            listOutput.ShouldContain("retired");
            Say(listOutput);
            await serving.WaitQuietAsync(TimeSpan.FromSeconds(1), ct);
            Models(serving).Values.ShouldAllBe(m => m == ModelB, "retiring A tombstoned nobody: every user has a B embedding");
            var (verified, verifyOutput) = await CliRunner.RunAsync("stats", "verify", "--config", config);
            verified.ShouldBe(0, verifyOutput);
            worker.Terminate(TimeSpan.FromSeconds(30)).ShouldBe(0, Context());
            Say($"sweep log: {string.Join(" | ", Regex.Matches(log.ToString(), @"Sweep of generation[^\n]*").Select(m => m.Value))}");
        }
        finally
        {
            worker.Dispose();
        }
    }

    /// <summary>The model version of each user's last served record (users with a tombstone left out).</summary>
    private static Dictionary<string, string> Models(TopicTail serving)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (user, value) in serving.LastByUser())
            if (value is not null && EventCodec.TryDecodeCloaked(value, out var record, out _)) result[user] = record.ModelVersion;
        return result;
    }

    /// <summary>A labelled value (summed over other labels) of the running worker's /metrics; 0 when absent or unreachable.</summary>
    private static double Metric(StringBuilder log, string name, string modelVersion)
    {
        string text;
        lock (log) text = log.ToString();
        var match = Regex.Matches(text, @"endpoints at (http://\S+) ").LastOrDefault();
        if (match is null) return 0;
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
            var metrics = http.GetStringAsync(match.Groups[1].Value + "/metrics").GetAwaiter().GetResult();
            return metrics.Split('\n')
                .Where(l => l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains($"model_version=\"{modelVersion}\"", StringComparison.Ordinal))
                .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return 0;
        }
    }

    private static string WriteRolloutConfig(string path, string redisAddress, string brokers, string prefix, RecDataset data, string deadLetters)
    {
        var catalog = data.Attributes.ToDictionary(a => a.Name, a => a.ClassNames.ToArray(), StringComparer.Ordinal);
        WriteConfig(path, redisAddress, prefix, 64, brokers, catalog: catalog, topicSuffix: "-rollout");
        var node = JsonNode.Parse(File.ReadAllText(path))!;
        var root = node["AttrCloak"]!;
        root["Kafka"]!["DeadLetterTopic"] = deadLetters;
        root["Kafka"]!["Client"] = new JsonObject { ["session.timeout.ms"] = "6000", ["heartbeat.interval.ms"] = "1000" };
        root["Guard"]!["HttpPort"] = 0;
        root["Audit"] = new JsonObject { ["Interval"] = "00:00:00" }; // the test audits the served population itself
        root["Generations"] = new JsonObject { ["SweepUsersPerSecond"] = SweepRate };
        File.WriteAllText(path, node.ToJsonString());
        return path;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what, Func<string> context, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"timed out after {timeout.TotalSeconds:F0} s waiting for {what}{context()}");
            await Task.Delay(200, ct); // polling interval, bounded by the deadline
        }
    }

    private static string Tail(StringBuilder log, int lines)
    {
        string text;
        lock (log) text = log.ToString();
        var all = text.Split('\n');
        return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
    }
}
