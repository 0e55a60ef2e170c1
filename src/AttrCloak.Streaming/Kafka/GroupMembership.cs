using System.Text.Json;
using AttrCloak.Streaming.Monitoring;
using Confluent.Kafka;

namespace AttrCloak.Streaming.Kafka;

/// <summary>
/// What this instance knows of its consumer group, for operators: the input partitions it holds now
/// (<c>attrcloak_assigned_partitions</c>), how many partitions the input topics have (<c>attrcloak_topic_partitions</c>,
/// from librdkafka's statistics, so no broker round trip) and the membership changes it saw
/// (<c>attrcloak_rebalances_total</c>). Summed over the instances, assigned &lt; topic partitions means partitions
/// nobody consumes: the <c>PartitionsUnassigned</c> alert, the way a stalled group shows. Thread-safe: the rebalance
/// handlers and statistics run on the consume thread, readiness probes on HTTP threads.
/// </summary>
public sealed class GroupMembership(WorkerMetrics metrics, IReadOnlyList<string> inputTopics)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, int> _assigned = inputTopics.ToDictionary(t => t, _ => 0, StringComparer.Ordinal);
    private readonly Dictionary<string, int> _partitions = inputTopics.ToDictionary(t => t, _ => 0, StringComparer.Ordinal);

    /// <summary>The consumer's whole current assignment (after any change).</summary>
    public void SetAssignment(IEnumerable<TopicPartition> assignment)
    {
        ArgumentNullException.ThrowIfNull(assignment);
        lock (_gate)
        {
            foreach (var topic in _assigned.Keys.ToArray()) _assigned[topic] = 0;
            foreach (var tp in assignment)
                if (_assigned.TryGetValue(tp.Topic, out var n)) _assigned[tp.Topic] = n + 1;
            foreach (var (topic, n) in _assigned) metrics.AssignedPartitions.WithLabels(topic).Set(n);
        }
    }

    /// <summary>A rebalance event: <c>assigned</c>, <c>revoked</c> or <c>lost</c>.</summary>
    public void Count(string kind) => metrics.Rebalances.WithLabels(kind).Inc();

    /// <summary>Reads the input topics' partition counts from a librdkafka statistics report (ignored when absent).</summary>
    public void OnStatistics(string statisticsJson)
    {
        if (PartitionCounts(statisticsJson, _partitions.Keys) is not { Count: > 0 } counts) return;
        lock (_gate)
            foreach (var (topic, n) in counts)
            {
                _partitions[topic] = n;
                metrics.TopicPartitions.WithLabels(topic).Set(n);
            }
    }

    /// <summary>E.g. "holds 4 of 8 input partitions" (readiness detail); empty before the metadata is known.</summary>
    public string Describe()
    {
        lock (_gate)
        {
            var total = _partitions.Values.Sum();
            return total == 0 ? "" : $"holds {_assigned.Values.Sum()} of {total} input partitions";
        }
    }

    /// <summary>
    /// Partition count per topic of <paramref name="topics"/> in a statistics report: the <c>partitions</c> object of
    /// each topic lists the real partitions and the internal "-1" (unassigned-messages) one, which is not counted.
    /// </summary>
    internal static Dictionary<string, int>? PartitionCounts(string statisticsJson, IEnumerable<string> topics)
    {
        try
        {
            using var document = JsonDocument.Parse(statisticsJson);
            if (!document.RootElement.TryGetProperty("topics", out var all) || all.ValueKind != JsonValueKind.Object) return null;
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var topic in topics)
            {
                if (!all.TryGetProperty(topic, out var t) || !t.TryGetProperty("partitions", out var partitions) || partitions.ValueKind != JsonValueKind.Object)
                    continue;
                var n = partitions.EnumerateObject().Count(p => p.Name != "-1");
                if (n > 0) counts[topic] = n;
            }
            return counts;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
