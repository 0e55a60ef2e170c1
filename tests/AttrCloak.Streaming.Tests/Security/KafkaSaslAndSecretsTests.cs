using System.Net;
using System.Security.Cryptography;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Kafka;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Tests.Pipeline;
using AttrCloak.Tools.Kafka;
using AttrCloak.Tools.Replay;
using Confluent.Kafka;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace AttrCloak.Streaming.Tests.Security;

/// <summary>
/// Kafka SASL/SSL settings reach every client the worker and the tools create, and the secrets (SASL password, Redis
/// password, tombstone secret) never reach a log: the whole guard host started at Trace level with librdkafka's
/// security debugging on, against a broker that cannot do SASL (the mock cluster's plain listener), so the handshake
/// fails; and the settings dumped as text.
/// </summary>
public sealed class KafkaSaslAndSecretsTests(RedisServerFixture redis)
{
    private const string SaslPassword = "sasl-S3cret-b41c";
    private const string RedisPassword = "redis-S3cret-2e7d";
    private static readonly string TombstoneSecret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    /// <summary>The security settings as Kubernetes sets them: environment variables, read by the provider the CLI uses.</summary>
    private static StreamingSettings BindFromEnvironment(string brokers, out IConfiguration configuration)
    {
        var prefix = $"ACSASL{Guid.NewGuid():N}_";
        var variables = new Dictionary<string, string>
        {
            ["AttrCloak__Kafka__BootstrapServers"] = brokers,
            ["AttrCloak__Kafka__ConsumerGroup"] = $"sasl-{Guid.NewGuid():N}",
            ["AttrCloak__Kafka__Client__security.protocol"] = "SASL_PLAINTEXT",
            ["AttrCloak__Kafka__Client__sasl.mechanism"] = "PLAIN",
            ["AttrCloak__Kafka__Client__sasl.username"] = "guard",
            ["AttrCloak__Kafka__Client__sasl.password"] = SaslPassword,
            ["AttrCloak__Kafka__Client__debug"] = "security,broker,conf",
            ["AttrCloak__Kafka__Client__reconnect.backoff.ms"] = "100",
            ["AttrCloak__Redis__Configuration"] = $"127.0.0.1:{1},user=guard,password={RedisPassword}",
            ["AttrCloak__Redis__TombstoneSecret"] = TombstoneSecret,
            ["AttrCloak__Guard__Dimension"] = "4",
            ["AttrCloak__Guard__Attributes__gender__0"] = "F",
            ["AttrCloak__Guard__Attributes__gender__1"] = "M",
            ["AttrCloak__Guard__HttpPort"] = "0",
        };
        foreach (var (name, value) in variables) Environment.SetEnvironmentVariable(prefix + name, value);
        try
        {
            configuration = new ConfigurationBuilder().AddEnvironmentVariables(prefix).Build();
            return StreamingSettings.Bind(configuration);
        }
        finally
        {
            foreach (var name in variables.Keys) Environment.SetEnvironmentVariable(prefix + name, null);
        }
    }

    [Fact]
    public void Sasl_settings_from_the_environment_reach_every_kafka_client_config()
    {
        var settings = BindFromEnvironment("broker:9093", out _);
        // The worker's consumer and producer (the pipeline builds exactly these two), and the tools' bulk producer
        // with its reachability admin client (same config object: see KafkaBulkProducer).
        ClientConfig[] configs = [KafkaClients.ConsumerConfig(settings.Kafka), KafkaClients.ProducerConfig(settings.Kafka)];
        foreach (var config in configs)
        {
            config.Get("security.protocol").ShouldBe("SASL_PLAINTEXT");
            config.Get("sasl.mechanism").ShouldBe("PLAIN");
            config.SaslUsername.ShouldBe("guard");
            config.SaslPassword.ShouldBe(SaslPassword);
        }
    }

    [Fact]
    public async Task Guard_host_with_sasl_against_a_plain_broker_stays_not_ready_and_logs_no_secret_at_trace_level()
    {
        var ct = TestContext.Current.CancellationToken;
        using var cluster = new MockKafkaCluster();
        var settings = BindFromEnvironment(cluster.BootstrapServers, out var configuration);
        var storeOptions = settings.StateStoreOptions(configuration);
        storeOptions.Prefix = redis.NewPrefix("sasl");
        using var generations = new RedisGenerationStore(redis.Redis, storeOptions);
        var logs = new FullLogCapture();
        await using var host = GuardHost.Build(settings, generations, new TransportCloakerFactory(), httpPort: 0, logging =>
        {
            logging.AddProvider(logs);
            logging.SetMinimumLevel(LogLevel.Trace);
        });
        await host.StartAsync(ct);
        using var http = new HttpClient { BaseAddress = new Uri(host.Address!) };

        // librdkafka tries the SASL handshake against the plain listener, which cannot answer it.
        Wait.Until(() => logs.Lines.Any(l => l.Contains("SASL", StringComparison.OrdinalIgnoreCase) && l.Contains(cluster.BootstrapServers.Split(',')[0].Split(':')[^1], StringComparison.Ordinal)),
            GuardHarness.Deadline, "a SASL connection attempt in the worker's log");
        await Task.Delay(TimeSpan.FromSeconds(2), ct); // a few more attempts and their errors
        host.Status.GroupJoined.ShouldBeFalse("no consumer group without authentication");
        (await http.GetAsync(GuardEndpoints.ReadyPath, ct)).StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable);
        await host.StopAsync(ct);

        // The tools' producer (replay, bootstrap --publish) checks the broker the same way: a clear failure.
        using (var bulk = new KafkaBulkProducer(cluster.BootstrapServers, settings.Kafka.Client))
        {
            var error = Should.Throw<KafkaException>(() => bulk.CheckReachable(TimeSpan.FromSeconds(3)));
            error.ToString().ShouldNotContain(SaslPassword);
        }

        var lines = logs.Lines;
        lines.ShouldContain(l => l.Contains("sasl.username", StringComparison.Ordinal), "librdkafka's configuration dump (debug=conf) did not reach the log: the test would prove nothing");
        foreach (var secret in new[] { SaslPassword, RedisPassword, TombstoneSecret })
            lines.Where(l => l.Contains(secret, StringComparison.Ordinal)).ShouldBeEmpty();
        // Settings printed as text (a settings dump) do not show them either.
        foreach (var text in new[] { settings.ToString(), settings.Kafka.ToString()!, settings.Redis.ToString()!, storeOptions.ToString()! })
            foreach (var secret in new[] { SaslPassword, RedisPassword, TombstoneSecret })
                text.ShouldNotContain(secret);
        TestContext.Current.TestOutputHelper?.WriteLine($"{lines.Count} log lines; SASL lines e.g.: {string.Join(" / ", lines.Where(l => l.Contains("SASL", StringComparison.OrdinalIgnoreCase)).Take(3))}");
    }
}
