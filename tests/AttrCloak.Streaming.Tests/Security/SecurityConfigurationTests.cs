using System.Collections.Concurrent;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Kafka;
using Confluent.Kafka;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace AttrCloak.Streaming.Tests.Security;

/// <summary>
/// The security keys the production docs name (Kafka SASL/SSL, Redis AUTH/TLS) bind from environment variables the
/// way Kubernetes sets them and reach the client configurations the worker builds; the secrets stay out of logs.
/// </summary>
public sealed class SecurityConfigurationTests
{
    private const string KafkaPassword = "kafka-S3cret-7f3a";
    private const string RedisPassword = "redis-S3cret-91bd";

    [Fact]
    public void Kafka_sasl_ssl_settings_from_environment_variables_reach_consumer_and_producer_configs()
    {
        var settings = StreamingSettings.Bind(FromEnvironment(new()
        {
            ["AttrCloak__Kafka__BootstrapServers"] = "broker-0:9093,broker-1:9093",
            // The names deploy/kubernetes/deployment.yaml sets, dots and all.
            ["AttrCloak__Kafka__Client__security.protocol"] = "SASL_SSL",
            ["AttrCloak__Kafka__Client__sasl.mechanism"] = "SCRAM-SHA-512",
            ["AttrCloak__Kafka__Client__sasl.username"] = "guard",
            ["AttrCloak__Kafka__Client__sasl.password"] = KafkaPassword,
            ["AttrCloak__Kafka__Client__ssl.ca.location"] = "/etc/attrcloak/kafka-ca/ca.crt",
        }));

        ClientConfig[] configs = [KafkaClients.ConsumerConfig(settings.Kafka), KafkaClients.ProducerConfig(settings.Kafka)];
        foreach (var config in configs)
        {
            config.BootstrapServers.ShouldBe("broker-0:9093,broker-1:9093");
            // As librdkafka receives them (Confluent's typed getters cannot read back its upper-case spelling).
            config.Get("security.protocol").ShouldBe("SASL_SSL");
            config.Get("sasl.mechanism").ShouldBe("SCRAM-SHA-512");
            config.SaslUsername.ShouldBe("guard");
            config.SaslPassword.ShouldBe(KafkaPassword);
            config.SslCaLocation.ShouldBe("/etc/attrcloak/kafka-ca/ca.crt");
        }
        // Security settings do not displace the ones at-least-once depends on.
        ((ConsumerConfig)configs[0]).EnableAutoOffsetStore.ShouldBe(false);
        ((ProducerConfig)configs[1]).EnableIdempotence.ShouldBe(true);
    }

    [Fact]
    public void Kafka_security_keys_in_the_file_are_overridden_by_the_environment()
    {
        // appsettings.json (the ConfigMap) sets the protocol; the Secret's environment variables add credentials.
        var file = new Dictionary<string, string?>(MinimalGuard)
        {
            ["AttrCloak:Kafka:BootstrapServers"] = "broker:9093",
            ["AttrCloak:Kafka:Client:security.protocol"] = "SASL_PLAINTEXT",
            ["AttrCloak:Kafka:Client:sasl.password"] = "stale",
        };
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(file).Add(EnvironmentSource(new()
        {
            ["AttrCloak__Kafka__Client__security.protocol"] = "SASL_SSL",
            ["AttrCloak__Kafka__Client__sasl.password"] = KafkaPassword,
        }, out var prefix)).Build();
        try
        {
            var consumer = KafkaClients.ConsumerConfig(StreamingSettings.Bind(configuration).Kafka);
            consumer.Get("security.protocol").ShouldBe("SASL_SSL");
            consumer.SaslPassword.ShouldBe(KafkaPassword);
        }
        finally { ClearEnvironment(prefix); }
    }

    [Fact]
    public void Redis_auth_and_tls_from_the_configuration_string_parse_as_StackExchange_Redis_options()
    {
        var settings = StreamingSettings.Bind(FromEnvironment(new()
        {
            ["AttrCloak__Redis__Configuration"] = $"redis.example:6380,password={RedisPassword},ssl=true,user=guard,sslHost=redis.example",
            ["AttrCloak__Redis__TombstoneSecret"] = Convert.ToBase64String(new byte[32]),
        }));
        settings.Redis.TombstoneSecret.ShouldBe(Convert.ToBase64String(new byte[32]));

        var options = ConfigurationOptions.Parse(settings.Redis.Configuration);
        options.Password.ShouldBe(RedisPassword);
        options.User.ShouldBe("guard");
        options.Ssl.ShouldBeTrue();
        options.SslHost.ShouldBe("redis.example");
        options.EndPoints.Single().ShouldBe(new System.Net.DnsEndPoint("redis.example", 6380));
        // What a log line would show of the options carries no password.
        options.ToString(includePassword: false).ShouldNotContain(RedisPassword);
    }

    [Fact]
    public void Settings_as_text_never_show_the_secrets()
    {
        var settings = StreamingSettings.Bind(FromEnvironment(new()
        {
            ["AttrCloak__Kafka__Client__sasl.password"] = KafkaPassword,
            ["AttrCloak__Redis__Configuration"] = $"redis:6379,password={RedisPassword}",
        }));
        // Records print their members; none of the option classes prints its secret values.
        foreach (var text in new[] { settings.ToString(), settings.Kafka.ToString()!, settings.Redis.ToString()! })
        {
            text.ShouldNotContain(KafkaPassword);
            text.ShouldNotContain(RedisPassword);
        }
    }

    [Fact]
    public async Task Librdkafka_log_of_a_failing_sasl_connection_does_not_contain_the_password()
    {
        // A real client against a closed port, with librdkafka's configuration and security debugging on: the worker
        // routes that log to its logger (KafkaClients.ProducerBuilder), so nothing in it may carry the password.
        var options = new KafkaOptions
        {
            BootstrapServers = "127.0.0.1:1",
            Client = new()
            {
                ["security.protocol"] = "SASL_PLAINTEXT",
                ["sasl.mechanism"] = "PLAIN",
                ["sasl.username"] = "guard",
                ["sasl.password"] = KafkaPassword,
                ["debug"] = "conf,security,broker",
                ["reconnect.backoff.ms"] = "50",
            },
        };
        var lines = new ConcurrentQueue<string>();
        using (var producer = KafkaClients.ProducerBuilder(options, new ListLogger(lines)).Build())
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            // Wait until librdkafka has dumped its configuration and tried the broker at least once.
            while (DateTime.UtcNow < deadline && !(lines.Any(l => l.Contains("sasl.username", StringComparison.Ordinal)) && lines.Any(l => l.Contains("127.0.0.1:1", StringComparison.Ordinal))))
                await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        lines.ShouldContain(l => l.Contains("sasl.username", StringComparison.Ordinal), "librdkafka's configuration dump did not appear: the test would prove nothing");
        lines.ShouldContain(l => l.Contains("127.0.0.1:1", StringComparison.Ordinal), "no connection attempt was logged");
        lines.Where(l => l.Contains(KafkaPassword, StringComparison.Ordinal)).ShouldBeEmpty();
    }

    // ---- helpers ---------------------------------------------------------------------------------------------

    /// <summary>The smallest guard section binding accepts (the tests are about the other sections).</summary>
    private static readonly Dictionary<string, string?> MinimalGuard = new()
    {
        ["AttrCloak:Guard:Dimension"] = "4",
        ["AttrCloak:Guard:Attributes:gender:0"] = "F",
        ["AttrCloak:Guard:Attributes:gender:1"] = "M",
    };

    /// <summary>
    /// Real environment variables under a unique prefix (tests run in parallel and share the process environment),
    /// read by the same provider the CLI uses; removed again once read.
    /// </summary>
    private static IConfiguration FromEnvironment(Dictionary<string, string> variables)
    {
        var source = EnvironmentSource(variables, out var prefix);
        try { return new ConfigurationBuilder().AddInMemoryCollection(MinimalGuard).Add(source).Build(); }
        finally { ClearEnvironment(prefix); }
    }

    private static IConfigurationSource EnvironmentSource(Dictionary<string, string> variables, out string prefix)
    {
        prefix = $"ACSEC{Guid.NewGuid():N}_";
        foreach (var (name, value) in variables)
            Environment.SetEnvironmentVariable(prefix + name, value);
        return new Microsoft.Extensions.Configuration.EnvironmentVariables.EnvironmentVariablesConfigurationSource { Prefix = prefix };
    }

    private static void ClearEnvironment(string prefix)
    {
        foreach (var name in Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
            Environment.SetEnvironmentVariable(name, null);
    }

    private sealed class ListLogger(ConcurrentQueue<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue(formatter(state, exception) + (exception is null ? "" : " " + exception));
    }
}
