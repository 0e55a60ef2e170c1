using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Hosting;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// What the loop does when the state store's data is gone (Redis came back empty): it never re-creates it (it would
/// cloak against statistics of a partial population and treat every known user as new) but holds the batch in hand
/// until the state is rebuilt (<see cref="AwaitRebuilt"/>), and at a start on an empty store it says loudly whether
/// the consumer group had consumed input before (<see cref="CheckEmptyStoreAgainstCommittedOffsets"/>).
/// </summary>
internal sealed class StateLossGuard(GenerationSet generations, PipelineStatus status, KafkaOptions kafka, GuardOptions guard, TimeProvider time, ILogger logger)
{
    private static readonly TimeSpan LostStateLogInterval = TimeSpan.FromMinutes(1);

    /// <summary>Started on an empty store: compare with the group's committed offsets once, at the first assignment.</summary>
    public bool EmptyStoreToCheck { get; set; }

    /// <summary>
    /// Blocks the consume loop (nothing published, no offsets stored, not ready, <c>attrcloak_state_missing</c> 1), logs
    /// what happened and how to rebuild at most once a minute, and checks every <see cref="GuardOptions.StateCheckInterval"/>
    /// whether the meta key is back (a rebuild, e.g. <c>attrcloak bootstrap</c>); then it rebuilds the cloaker from
    /// the new statistics and returns, and the caller redoes the batch in hand. Sent batches stay unfinished meanwhile
    /// (they predate the loss; their offsets are stored once the loop moves on). A wait longer than the consumer's
    /// max.poll.interval.ms (300 s by default) makes librdkafka leave the group; the next poll rejoins it.
    /// </summary>
    public void AwaitRebuilt(StateStoreLostException lost, CancellationToken cancellationToken)
    {
        status.SetStateMissing(true);
        foreach (var context in generations.Live) context.Forget(); // the redelivery watermarks went with the state; read again after the rebuild
        var since = time.GetTimestamp();
        var nextLog = since;
        while (true)
        {
            if (time.GetTimestamp() >= nextLog)
            {
                LogLostState(lost, time.GetElapsedTime(since));
                nextLog = time.GetTimestamp() + (long)(LostStateLogInterval.TotalSeconds * time.TimestampFrequency);
            }
            if (cancellationToken.WaitHandle.WaitOne(guard.StateCheckInterval)) cancellationToken.ThrowIfCancellationRequested();
            try
            {
                generations.InitializeAsync(cancellationToken).GetAwaiter().GetResult();
                if (generations.Registry.Version == 0) throw new StateStoreLostException(lost.Prefix); // the registry is not back yet
                status.SetStoreHealthy(true);
                status.SetStateMissing(false);
                logger.LogWarning(
                    "The state store's data is back after {Seconds:F0} s (generations: {Generations}); resuming with the batch in hand",
                    time.GetElapsedTime(since).TotalSeconds,
                    string.Join("; ", generations.Registry.Generations.Select(g => $"'{g.ModelVersion}' {g.StateLabel}")));
                return;
            }
            catch (StateStoreLostException)
            {
                // still missing
            }
            catch (Exception e) when (generations.Faults.IsUnreachable(e))
            {
                status.SetStoreHealthy(false);
                logger.LogWarning("Checking whether the state store's data is back failed ({Error}: {Message}); trying again in {Seconds} s",
                    e.GetType().Name, e.Message, guard.StateCheckInterval.TotalSeconds);
            }
        }
    }

    /// <summary>
    /// After a lost-state error: true when a generation of the batch (<paramref name="touched"/>) is no longer live
    /// (retired meanwhile, its store deleted), so the batch is simply redone without it; false when the state really is gone.
    /// </summary>
    public bool RetiredMeanwhile(IReadOnlyList<GenerationContext> touched, CancellationToken cancellationToken)
    {
        try
        {
            var models = touched.Select(c => c.ModelVersion).ToList();
            generations.RefreshAsync(force: true, cancellationToken).GetAwaiter().GetResult();
            var registry = generations.Registry;
            var gone = models.Where(m => registry.Find(m) is not { Live: true }).ToList();
            if (gone.Count == 0) return false;
            logger.LogInformation("Generation(s) {Models} retired during the batch; redoing it without them", string.Join(", ", gone));
            return true;
        }
        catch (StateStoreLostException)
        {
            return false;
        }
    }

    /// <summary>
    /// An empty store is normal for a new deployment, but not when the consumer group has already consumed input that
    /// is still in the log: then Redis lost the state while no worker was running (a restart without persistence), and
    /// a worker that was running would have seen the loss (<see cref="AwaitRebuilt"/>). Checked once, at the first
    /// assignment after a start on an empty store (<see cref="EmptyStoreToCheck"/>). The worker keeps going (an empty
    /// store serves the warm-up vector, never a user's own embedding), but says loudly what happened and how to rebuild.
    /// </summary>
    public void CheckEmptyStoreAgainstCommittedOffsets(IConsumer<byte[], byte[]> consumer)
    {
        if (!EmptyStoreToCheck || consumer.Assignment.Count == 0) return;
        EmptyStoreToCheck = false;
        try
        {
            var consumed = 0L;
            foreach (var committed in consumer.Committed(consumer.Assignment, TimeSpan.FromSeconds(10)))
            {
                if (committed.Offset.Value < 0) continue; // never committed
                var low = consumer.QueryWatermarkOffsets(committed.TopicPartition, TimeSpan.FromSeconds(10)).Low.Value;
                if (committed.Offset.Value > low) consumed += committed.Offset.Value - low;
            }
            if (consumed == 0) return;
            logger.LogError(
                "The state store is EMPTY, but consumer group {Group} has already consumed {Events} events of its partitions that are still in the input topics: " +
                "Redis most likely lost the guard's state while no worker was running (restarted without persistence, flushed, evicted). The worker carries on from the " +
                "committed offsets (an empty store serves the population mean, never a user's own embedding), but those users' states and the statistics are gone. " +
                "To rebuild: stop the workers, seed the served population with `attrcloak bootstrap --config <appsettings.json> --model <DIR>`, reset the consumer group to the " +
                "earliest offsets (`kafka-consumer-groups --bootstrap-server <brokers> --group {Group} --reset-offsets --to-earliest --topic {Embeddings} --topic {Requests} --execute`), " +
                "start the workers and check with `attrcloak stats verify`. If this is a deliberate fresh start with an existing group, reset the group instead.",
                kafka.ConsumerGroup, consumed, kafka.ConsumerGroup, kafka.EmbeddingsTopic, kafka.PrivacyRequestsTopic);
        }
        catch (KafkaException e)
        {
            logger.LogWarning("Could not compare the empty state store with the group's committed offsets ({Reason})", e.Error.Reason);
        }
    }

    private void LogLostState(StateStoreLostException lost, TimeSpan missingFor)
    {
        var reset = $"kafka-consumer-groups --bootstrap-server <brokers> --group {kafka.ConsumerGroup} --reset-offsets --to-earliest " +
                    $"--topic {kafka.EmbeddingsTopic} --topic {kafka.PrivacyRequestsTopic} --execute";
        logger.LogError(
            "STATE LOST ({Missing:F0} s so far): {What}. The worker does not re-create it: it would cloak against statistics of a partial population and treat every known user as new. " +
            "Until the state is back it publishes nothing, stores no offsets and reports not ready (attrcloak_state_missing 1); it checks every {Check} s and resumes by itself. " +
            "To rebuild: (1) re-seed the served population from the last batch-cloaked population with `attrcloak bootstrap --config <appsettings.json> --model <DIR> [--embeddings <FILE>]` " +
            "against prefix '{Prefix}' (it re-creates the meta key and writes every user at --version 0; the worker resumes with the events it holds); " +
            "(2) the events applied since that population are not in it: to restore them, stop the workers, reset the consumer group to the earliest offsets of the input topics " +
            "(`{Reset}`) and start them again: replayed events newer than a user's stored version are applied, older ones are stale. Then `attrcloak stats verify` must say consistent. " +
            "(`attrcloak stats rebuild` cannot help: it recomputes the statistics from stored users, and there are none.)",
            missingFor.TotalSeconds, lost.Message, guard.StateCheckInterval.TotalSeconds, lost.Prefix, reset);
    }
}
