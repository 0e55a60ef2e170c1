using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Kafka;
using Confluent.Kafka;

namespace AttrCloak.Streaming.Tests.Kafka;

public sealed class KafkaClientsTests
{
    [Fact]
    public void At_least_once_settings_cannot_be_switched_off_by_extra_client_properties()
    {
        var options = new KafkaOptions
        {
            BootstrapServers = "broker:9092",
            Client = new() { ["enable.auto.offset.store"] = "true", ["enable.idempotence"] = "false", ["acks"] = "1", ["security.protocol"] = "SASL_SSL", ["linger.ms"] = "20" },
        };
        var consumer = KafkaClients.ConsumerConfig(options);
        consumer.EnableAutoOffsetStore.ShouldBe(false);
        consumer.GroupId.ShouldBe(options.ConsumerGroup);
        consumer.Get("security.protocol").ShouldBe("SASL_SSL"); // connection properties pass through
        var producer = KafkaClients.ProducerConfig(options);
        producer.EnableIdempotence.ShouldBe(true);
        producer.Acks.ShouldBe(Acks.All);
        producer.LingerMs.ShouldBe(20); // tuning passes through
    }

    [Fact]
    public void Empty_brokers_get_a_clear_message()
    {
        Should.Throw<StreamingConfigurationException>(() => KafkaClients.ConsumerConfig(new KafkaOptions()))
            .Message.ShouldContain("BootstrapServers is empty");
    }

    [Fact]
    public void Partition_counts_of_the_input_topics_come_from_librdkafka_statistics()
    {
        // The shape of librdkafka's statistics (STATISTICS.md): each topic's partitions, plus the internal "-1" one.
        const string json = """
            { "name": "c", "brokers": {}, "topics": {
                "in.embeddings": { "topic": "in.embeddings", "partitions": { "0": {}, "1": {}, "2": {}, "-1": {} } },
                "in.requests": { "topic": "in.requests", "partitions": { "0": {}, "1": {}, "2": {}, "-1": {} } },
                "other": { "topic": "other", "partitions": { "0": {} } } } }
            """;
        var counts = GroupMembership.PartitionCounts(json, ["in.embeddings", "in.requests", "missing"])!;
        counts.ShouldBe(new Dictionary<string, int> { ["in.embeddings"] = 3, ["in.requests"] = 3 });
        GroupMembership.PartitionCounts("not json", ["in.embeddings"]).ShouldBeNull();

        var metrics = new AttrCloak.Streaming.Monitoring.WorkerMetrics();
        var membership = new GroupMembership(metrics, ["in.embeddings", "in.requests"]);
        membership.Describe().ShouldBe("");
        membership.OnStatistics(json);
        membership.SetAssignment([new TopicPartition("in.embeddings", 1), new TopicPartition("in.requests", 1), new TopicPartition("other", 0)]);
        membership.Describe().ShouldBe("holds 2 of 6 input partitions");
        metrics.AssignedPartitions.WithLabels("in.embeddings").Value.ShouldBe(1);
        metrics.TopicPartitions.WithLabels("in.requests").Value.ShouldBe(3);
    }

    [Fact]
    public void Consumers_share_partitions_by_range_with_a_short_session_whatever_the_client_settings_say()
    {
        var options = new KafkaOptions { BootstrapServers = "b:9092" };
        options.Client["partition.assignment.strategy"] = "cooperative-sticky";
        options.Client["session.timeout.ms"] = "10000";
        var config = KafkaClients.ConsumerConfig(options);
        // Range keeps partition p of both input topics on one instance (a user's updates and requests meet there).
        config.PartitionAssignmentStrategy.ShouldBe(PartitionAssignmentStrategy.Range);
        config.SessionTimeoutMs.ShouldBe(10000, "the session timeout may be tuned");
        KafkaClients.ConsumerConfig(new KafkaOptions { BootstrapServers = "b:9092" }).SessionTimeoutMs.ShouldBe(6000);
    }

    [Fact]
    public void Each_client_gets_only_the_client_settings_it_understands()
    {
        // librdkafka warns on every start when a producer is given a consumer property (and the other way round).
        var options = new KafkaOptions { BootstrapServers = "b:9092" };
        options.Client["session.timeout.ms"] = "10000";
        options.Client["linger.ms"] = "20";
        options.Client["client.id"] = "guard-7";
        var consumer = KafkaClients.ConsumerConfig(options);
        var producer = KafkaClients.ProducerConfig(options);
        consumer.SessionTimeoutMs.ShouldBe(10000);
        consumer.Get("linger.ms").ShouldBeNull();
        producer.Get("session.timeout.ms").ShouldBeNull();
        producer.LingerMs.ShouldBe(20);
        consumer.ClientId.ShouldBe("guard-7");
        producer.ClientId.ShouldBe("guard-7");
    }

    [Fact]
    public void Client_settings_librdkafka_refuses_are_a_configuration_error_naming_the_reason()
    {
        var options = new KafkaOptions { BootstrapServers = "127.0.0.1:1" };
        KafkaClients.CheckConfiguration(options); // fine: connects to nothing
        options.Client["security.protocol"] = "SASL_SSL";
        options.Client["sasl.mechanism"] = "PLAIN";
        Should.Throw<StreamingConfigurationException>(() => KafkaClients.CheckConfiguration(options))
            .Message.ShouldContain("sasl.username and sasl.password must be set");
        var unknown = new KafkaOptions { BootstrapServers = "127.0.0.1:1" };
        unknown.Client["no.such.property"] = "1";
        Should.Throw<StreamingConfigurationException>(() => KafkaClients.CheckConfiguration(unknown)).Message.ShouldContain("no.such.property");
    }
}
