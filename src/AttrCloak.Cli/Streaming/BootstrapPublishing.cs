using AttrCloak.Cli.Rendering;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Tools.Replay;

namespace AttrCloak.Cli.Streaming;

/// <summary>
/// What `attrcloak bootstrap` publishes to the serving topic: each bootstrapped user's cloaked embedding as the store
/// holds it, read back right before publishing, so that the serving topic says what Redis says, also for users an
/// earlier run wrote (a <c>--force</c> re-run finds them as duplicates and publishes them again). A user whose stored
/// version is no longer the bootstrap's was changed by the stream meanwhile: the worker published that newer state, and
/// a bootstrap record after it would put an older embedding last on the compacted topic, so it is left out.
/// </summary>
public static class BootstrapPublishing
{
    /// <summary>
    /// The serving records of <paramref name="userIds"/> whose stored version is <paramref name="version"/>, read in
    /// batches of <paramref name="batchSize"/>; <paramref name="protectedAttributes"/> are the catalog's attribute names
    /// in the store's order (that of the stored classes), <paramref name="modelVersion"/> the population's model.
    /// </summary>
    public static async Task<List<CloakedEmbedding>> StoredRecordsAsync(
        IStateStore store, IReadOnlyList<string> userIds, long version, string modelVersion, IReadOnlyList<string> protectedAttributes,
        int batchSize, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(userIds);
        var records = new List<CloakedEmbedding>(userIds.Count);
        var now = DateTimeOffset.UtcNow;
        for (var start = 0; start < userIds.Count; start += batchSize)
        {
            var ids = userIds.Skip(start).Take(batchSize).ToArray();
            var states = await store.GetUsersAsync(ids, cancellationToken).ConfigureAwait(false);
            foreach (var state in states)
                if (state is not null && state.Version == version)
                    // As the worker does: an attribute whose class the user did not declare is not protected for them.
                    records.Add(new CloakedEmbedding(state.UserId, state.Version, modelVersion, state.Cloaked,
                        protectedAttributes.Where((_, a) => a < state.Classes.Length && state.Classes[a] >= 0).ToArray(), now));
        }
        return records;
    }

    /// <summary>
    /// Produces the serving records of <paramref name="userIds"/> (<see cref="StoredRecordsAsync"/>) to
    /// <paramref name="topic"/>, keyed by user id, with a live line of produced, acknowledged and failed records.
    /// </summary>
    public static async Task<ProduceSummary> PublishAsync(KafkaBulkProducer publisher, string topic, IStateStore store, IReadOnlyList<string> userIds,
        long version, string modelVersion, IReadOnlyList<string> protectedAttributes, int batchSize, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(publisher);
        var records = await StoredRecordsAsync(store, userIds, version, modelVersion, protectedAttributes, batchSize, cancellationToken);
        var messages = records.Select(record =>
            new OutboundMessage(topic, EventCodec.KeyOf(record.UserId), EventCodec.Encode(record), ContentTypes.Json, SchemaNames.CloakedEmbeddingV1));
        return await LiveStatus.RunAsync($"publishing {records.Count} cloaked embeddings to {topic}", records.Count,
            progress => publisher.ProduceAsync(messages, 0,
                new InlineProgress<ProduceProgress>(p => progress.Report(new LiveUpdate(p.Acked, $"published {p.Produced}, acknowledged {p.Acked}, failed {p.Failed}"))),
                cancellationToken: cancellationToken));
    }
}
