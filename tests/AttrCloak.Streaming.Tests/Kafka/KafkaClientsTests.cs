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
}
