using AttrCloak.Streaming.Monitoring;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// Readiness of the worker, read by the HTTP health endpoint: ready when the consumer joined its group (partitions
/// assigned), the state store was initialised (statistics read, first cloaker built), the last store call
/// succeeded, the store's data is there (not lost) and a Kafka broker is reachable. Mirrored into
/// <c>attrcloak_ready</c>, <c>attrcloak_store_up</c>, <c>attrcloak_state_missing</c> and <c>attrcloak_kafka_up</c>.
/// Thread-safe.
/// </summary>
public sealed class PipelineStatus(WorkerMetrics metrics)
{
    private volatile bool _groupJoined;
    private volatile bool _storeInitialized;
    private volatile bool _storeHealthy = true;
    private volatile bool _running;
    private volatile bool _stateMissing;
    private volatile bool _kafkaUp; // false until a broker connection is seen

    /// <summary>True while the worker can serve: see the class summary.</summary>
    public bool Ready => _running && _groupJoined && _storeInitialized && _storeHealthy && !_stateMissing && _kafkaUp;

    /// <summary>The consumer has joined its group and holds an assignment (possibly empty when there are more workers than partitions).</summary>
    public bool GroupJoined => _groupJoined;

    public bool StoreInitialized => _storeInitialized;

    /// <summary>The last state-store call succeeded.</summary>
    public bool StoreHealthy => _storeHealthy;

    /// <summary>The store's data was lost (Redis came back empty): nothing is served until it is rebuilt.</summary>
    public bool StateMissing => _stateMissing;

    /// <summary>
    /// A Kafka broker is reachable: false at start and from librdkafka's "all brokers down" until a broker connection
    /// is up (client statistics, every second), the group assigns partitions or a message arrives.
    /// </summary>
    public bool KafkaUp => _kafkaUp;

    /// <summary>The consume loop is running.</summary>
    public bool Running => _running;

    internal void SetRunning(bool value) { _running = value; Publish(); }

    internal void SetGroupJoined(bool value) { _groupJoined = value; Publish(); }

    internal void SetKafkaUp(bool value)
    {
        _kafkaUp = value;
        metrics.KafkaAvailable.Set(value ? 1 : 0);
        Publish();
    }

    internal void SetStoreInitialized() { _storeInitialized = true; Publish(); }

    internal void SetStoreHealthy(bool value)
    {
        _storeHealthy = value;
        metrics.StoreAvailable.Set(value ? 1 : 0);
        Publish();
    }

    internal void SetStateMissing(bool value)
    {
        _stateMissing = value;
        metrics.StateMissing.Set(value ? 1 : 0);
        Publish();
    }

    private void Publish() => metrics.Ready.Set(Ready ? 1 : 0);
}
