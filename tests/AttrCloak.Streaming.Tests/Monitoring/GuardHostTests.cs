using System.Net;
using System.Security.Cryptography;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Kafka;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Tools.Kafka;
using Confluent.Kafka;

namespace AttrCloak.Streaming.Tests.Monitoring;

/// <summary>
/// The whole guard as `serve` runs it (worker + real re-cloak + shadow auditor + HTTP endpoints) against the real
/// redis-server and the librdkafka mock cluster.
/// </summary>
public sealed class GuardHostTests(RedisServerFixture redis)
{
    private const int D = 8;
    private const float Signal = 1.5f;

    [Fact]
    public async Task Serves_cloaked_embeddings_that_hide_the_attribute_and_exports_the_audit_over_http()
    {
        var ct = TestContext.Current.CancellationToken;
        using var cluster = new MockKafkaCluster();
        var id = Guid.NewGuid().ToString("N")[..8];
        var kafka = new KafkaOptions
        {
            BootstrapServers = cluster.BootstrapServers,
            ConsumerGroup = $"host-{id}",
            EmbeddingsTopic = $"{id}.embeddings",
            PrivacyRequestsTopic = $"{id}.requests",
            CloakedTopic = $"{id}.cloaked",
            DeadLetterTopic = $"{id}.dead-letter",
            Client = new Dictionary<string, string> { ["session.timeout.ms"] = "6000" },
        };
        cluster.CreateTopics(kafka.EmbeddingsTopic, kafka.PrivacyRequestsTopic, kafka.CloakedTopic, kafka.DeadLetterTopic);
        var guard = new GuardOptions
        {
            Dimension = D,
            Attributes = new Dictionary<string, string[]>(StringComparer.Ordinal) { ["gender"] = ["F", "M"], ["age"] = ["young", "old"] },
            HttpPort = 0,
        };
        var settings = new StreamingSettings(kafka, new RedisConnectionOptions(), guard,
            new AuditOptions { Interval = TimeSpan.FromMilliseconds(300), Attackers = ["lr"], Folds = 3, SampleSize = 1000 });
        var storeOptions = new StateStoreOptions
        {
            Prefix = redis.NewPrefix("host"),
            Dimension = D,
            Attributes = guard.AttributeSpecs(),
            TombstoneSecret = RandomNumberGenerator.GetBytes(32),
        };
        using var generations = new RedisGenerationStore(redis.Redis, storeOptions);
        var store = generations.StoreOf("mf-test");

        // Bootstrap: 300 users whose original embedding carries their gender in dimension 0; served with it removed.
        var random = new Random(7);
        float[] Original(int gender)
        {
            var x = new float[D];
            for (var j = 0; j < D; j++) x[j] = (float)(random.NextDouble() * 2 - 1);
            x[0] += gender == 1 ? Signal : -Signal;
            return x;
        }
        var bootstrap = new List<SeedUser>();
        for (var u = 0; u < 300; u++)
        {
            var original = Original(u % 2);
            var cloaked = (float[])original.Clone();
            cloaked[0] -= u % 2 == 1 ? Signal : -Signal;
            bootstrap.Add(new SeedUser($"boot{u}", original, cloaked, [u % 2, (u / 2) % 2]));
        }
        // As `attrcloak bootstrap` seeds it: a seated, serving generation (the worker then republishes these users).
        (await GenerationSeeding.SeedAsync(generations, "mf-test", bootstrap, version: 0, batchSize: 512, cancellationToken: ct)).Applied.ShouldAllBe(a => a);

        await using var host = GuardHost.Build(settings, generations, new TransportCloakerFactory(), httpPort: 0, logging => { });
        await host.StartAsync(ct);
        using var http = new HttpClient { BaseAddress = new Uri(host.Address!) };
        await Eventually(async () => (await http.GetAsync(GuardEndpoints.ReadyPath, ct)).StatusCode == HttpStatusCode.OK, "ready");

        // Stream 200 new users with the same leak.
        var originals = new Dictionary<string, (float[] X, int Gender)>();
        using (var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = cluster.BootstrapServers, EnableIdempotence = true }).Build())
        {
            for (var u = 0; u < 200; u++)
            {
                var userGender = u % 2;
                var x = Original(userGender);
                var userId = $"new{u}";
                originals[userId] = (x, userGender);
                var update = new EmbeddingUpdate($"e{u}", userId, 1, DateTimeOffset.UtcNow, "mf-test", x,
                    new Dictionary<string, string> { ["gender"] = userGender == 1 ? "M" : "F", ["age"] = u % 4 < 2 ? "young" : "old" });
                producer.Produce(kafka.EmbeddingsTopic, new Message<byte[], byte[]> { Key = EventCodec.KeyOf(userId), Value = EventCodec.Encode(update) });
            }
            producer.Flush(ct);
        }

        // Everything streamed arrives cloaked, against both attributes, and the gender gap in dimension 0 is mostly gone.
        var served = new Dictionary<string, CloakedEmbedding>();
        using (var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers,
            GroupId = $"reader-{id}",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        }).Build())
        {
            consumer.Subscribe(kafka.CloakedTopic);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (!originals.Keys.All(served.ContainsKey) && DateTime.UtcNow < deadline)
            {
                var message = consumer.Consume(TimeSpan.FromMilliseconds(200));
                if (message?.Message?.Value is not { } value) continue;
                EventCodec.TryDecodeCloaked(value, out var cloaked, out var error).ShouldBeTrue(error?.Message);
                served[cloaked.UserId] = cloaked;
            }
            consumer.Close();
        }
        originals.Keys.ShouldAllBe(u => served.ContainsKey(u));
        double originalGap = 0, servedGap = 0;
        foreach (var (userId, (x, gender)) in originals)
        {
            var y = served[userId];
            y.Embedding.ShouldNotBe(x);
            y.ProtectedAttributes.ShouldBe(["gender", "age"], ignoreOrder: true);
            var sign = gender == 1 ? 1.0 : -1.0;
            originalGap += sign * x[0] / originals.Count * 2;
            servedGap += sign * y.Embedding[0] / originals.Count * 2;
        }
        originalGap.ShouldBeGreaterThan(2.5);
        servedGap.ShouldBeLessThan(originalGap * 0.3, $"served gender gap {servedGap:F3} vs original {originalGap:F3}");

        // The shadow audit ran on the served sample and its gauges are on /metrics.
        await Eventually(() => Task.FromResult(host.Auditor.Latest is { SampleUsers: >= 500 }), "an audit of all 500 served users (300 bootstrapped, seeded from Redis, and 200 streamed)");
        var metrics = await http.GetStringAsync(GuardEndpoints.MetricsPath, ct);
        metrics.ShouldContain("attrcloak_audit_balanced_accuracy{attribute=\"gender\",attacker=\"lr\"}");
        metrics.ShouldContain("attrcloak_audit_worst_advantage{attribute=\"age\"}");
        // 200 streamed, and the 300 bootstrapped ones published by the sweep of their (seated) generation.
        await Eventually(async () => (await http.GetStringAsync(GuardEndpoints.MetricsPath, ct)).Contains("attrcloak_published_total{kind=\"cloaked\"} 500"),
            "500 cloaked outputs: 300 swept out, 200 streamed");
        var genderAudit = host.Auditor.Latest!.Attributes.Single(a => a.Name == "gender");
        genderAudit.WorstBalancedAccuracy.ShouldBeLessThan(0.65, "the served population should not reveal gender");
        await host.StopAsync(ct);
    }

    private static async Task Eventually(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) return;
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
        throw new ShouldAssertException($"timed out waiting for {what}");
    }
}
