using AttrCloak.Streaming.Statistics;
using Confluent.Kafka;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// Watches the steps of the consume loop's batches and the maps it builds (<see cref="GuardPipeline"/>), and may hold their acknowledgements
/// back (tests: acknowledgements that are slow to come). Called on the consume thread; implementations must be quick.
/// </summary>
public interface IBatchObserver
{
    /// <summary>One step of one batch, in the order the loop takes them.</summary>
    void OnStep(BatchTrace trace);

    /// <summary>Whether acknowledgements may be taken in now (false: the loop treats sent batches as unacknowledged).</summary>
    bool AcknowledgementsAllowed => true;

    /// <summary>Blocks until <see cref="AcknowledgementsAllowed"/> (or <paramref name="cancellationToken"/> is cancelled).</summary>
    void WaitUntilAcknowledgementsAllowed(CancellationToken cancellationToken)
    {
    }

    /// <summary>New cloaking maps of <paramref name="modelVersion"/>'s generation, built from the statistics at <paramref name="version"/>, are in use.</summary>
    void OnMapsBuilt(string modelVersion, StatisticsVersion version)
    {
    }
}

/// <summary>What <see cref="GuardPipeline"/> did with one batch.</summary>
public enum BatchStep
{
    /// <summary>Stored in the state store and every output handed to the producer.</summary>
    Sent,
    /// <summary>Every output acknowledged.</summary>
    Acknowledged,
    /// <summary>The batch's offsets stored (committed by librdkafka soon after).</summary>
    OffsetsStored,
}

/// <summary>One step of one batch, numbered in consumption order; <paramref name="Offsets"/> only for <see cref="BatchStep.OffsetsStored"/>.</summary>
public sealed record BatchTrace(BatchStep Step, long Batch, IReadOnlyList<TopicPartitionOffset> Offsets);
