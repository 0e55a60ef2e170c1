using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Hosting;
using Microsoft.Extensions.Logging;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>What the worker says when it starts: where it reads and writes, its store and catalog, its generations.</summary>
internal static class StartupLog
{
    public static void Write(ILogger logger, KafkaOptions kafka, GuardOptions guard, IGenerationStore store, GenerationSet generations, GenerationOptions generationOptions)
    {
        var catalog = guard.Catalog();
        logger.LogInformation(
            "Privacy guard starting: brokers {Brokers}; consumer group {Group}; input topics {Embeddings}, {Requests}; serving topic {Cloaked}; dead-letter topic {DeadLetter}",
            kafka.BootstrapServers, kafka.ConsumerGroup, kafka.EmbeddingsTopic, kafka.PrivacyRequestsTopic, kafka.CloakedTopic, kafka.DeadLetterTopic);
        logger.LogInformation(
            "State store {Store}; dimension {Dimension}; catalog {Catalog}; batches of up to {MaxBatch} events / {Wait} ms; maps rebuilt after {RefreshEvents} changed users or {RefreshSeconds} s with changes",
            store.GetType().Name, guard.Dimension,
            string.Join(", ", catalog.AttributeNames.Select(a => $"{a} ({catalog.ClassesOf(a).Count} classes)")),
            guard.MaxBatchEvents, guard.MaxBatchWait.TotalMilliseconds, guard.CloakerRefreshEvents, guard.CloakerRefreshInterval.TotalSeconds);
        var registry = generations.Registry;
        foreach (var g in registry.Generations.Where(g => g.State != GenerationState.Retired))
        {
            var snapshot = generations.Context(g.ModelVersion)?.Cloakers.Snapshot;
            logger.LogInformation("Model generation '{Model}': {State}, seat epoch {Seat}, sweep epoch {Sweep}; users per class {Counts}",
                g.ModelVersion, g.StateLabel, g.SeatEpoch, g.SweepEpoch,
                snapshot is null ? "-" : string.Join("; ", snapshot.Attributes.Select(a => $"{a.Attribute} [{string.Join(", ", a.Counts)}]")));
        }
        if (registry.Serving is null)
            logger.LogWarning(
                "The state store is EMPTY (cold start): no model generation yet. The first model_version that arrives serves at once with conservative maps, " +
                "and is seated with batch AttrCloak-DF once every class has {MinClassUsers} users. Run `attrcloak bootstrap` to seed it from a batch run instead",
                generationOptions.MinClassUsers);
    }
}
