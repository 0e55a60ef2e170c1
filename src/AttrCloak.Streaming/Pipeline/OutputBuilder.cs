using System.Text;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Kafka;
using Confluent.Kafka;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// Turns a processed batch into its outputs: each event's outcome over the generations it went to, a dead letter per
/// event that failed (with its reason), and per user whose state changed the LAST serving record of the batch (a
/// tombstone on forget; for a duplicate, a redelivery after a crash between the store write and the publish, the
/// stored state again). Also encodes the outputs of a sweep chunk.
/// </summary>
internal sealed class OutputBuilder
{
    private readonly KafkaOptions _kafka;
    private readonly GenerationSet _generations;
    private readonly TimeProvider _time;
    private readonly Headers _cloakedHeaders;
    private readonly Dictionary<string, byte[]> _reasonLabels = new(StringComparer.Ordinal);
    private readonly HashSet<string> _publishedUsers = new(StringComparer.Ordinal);

    public OutputBuilder(KafkaOptions kafka, GenerationSet generations, TimeProvider time)
    {
        _kafka = kafka;
        _generations = generations;
        _time = time;
        _cloakedHeaders = new Headers
        {
            { KafkaHeaders.ContentType, BatchDecoder.JsonContentTypeBytes },
            { KafkaHeaders.Schema, Encoding.UTF8.GetBytes(SchemaNames.CloakedEmbeddingV1) },
        };
        foreach (var reason in ReasonCodes.All) _reasonLabels[reason.Label()] = Encoding.UTF8.GetBytes(reason.Label());
    }

    /// <summary>Fills <see cref="Batch.Outputs"/> and <see cref="Batch.Served"/> from the outcomes of the generations in <paramref name="touched"/>.</summary>
    public void Build(Batch batch, IReadOnlyList<GenerationContext> touched)
    {
        var outputs = batch.Outputs;
        outputs.Clear();
        batch.Served.Clear();
        var now = _time.GetUtcNow();
        var slots = batch.Slots;

        // Each event's outcome: the best of its changes over the generations it went to.
        for (var i = 0; i < batch.Count; i++)
        {
            slots[i].Decided = false;
            slots[i].Conflict = null;
            slots[i].RejectError = null;
        }
        foreach (var context in touched)
        {
            var planned = context.Planner.Planned;
            for (var j = 0; j < planned.Count; j++)
            {
                ref var slot = ref slots[planned[j].MessageIndex];
                var result = context.Results[j];
                if (!slot.Decided || Rank(result.Outcome) > Rank(slot.Outcome)) slot.Outcome = result.Outcome;
                slot.Decided = true;
                if (result.Outcome == ApplyOutcome.Rejected)
                    slot.RejectError ??= planned[j].Kind == PlannedKind.UnknownUser
                        ? BatchPlanner.UnknownUserError(slot.Event)
                        : new DecodeError(ReasonCode.StoreRejected, Printable(result.Reason ?? "rejected by the state store"));
                else if (result.Outcome == ApplyOutcome.Stale && planned[j].Conflict is { } conflict)
                    slot.Conflict ??= conflict;
            }
        }
        for (var i = 0; i < batch.Count; i++)
        {
            ref var slot = ref slots[i];
            if (!slot.Decided || slot.PlanError is not null) continue;
            if (slot.Outcome == ApplyOutcome.Rejected) slot.PlanError = slot.RejectError;
            else if (slot.Outcome == ApplyOutcome.Stale && !slot.Redelivered && slot.Conflict is { } conflict)
                // First delivered now, yet not above the user's applied version from the same topic: an out-of-order or conflicting producer.
                slot.PlanError = conflict == ReasonCode.VersionConflict
                    ? new DecodeError(ReasonCode.VersionConflict, "the user's applied version again with another event id; the applied event stays")
                    : new DecodeError(ReasonCode.StaleVersion, "a version older than the user's applied one, first delivered after it; nothing changed");
        }
        for (var i = 0; i < batch.Count; i++)
        {
            ref var slot = ref slots[i];
            if ((slot.DecodeError ?? slot.PlanError) is { } error)
                outputs.Add(DeadLetterOf(ref slot, error, now));
        }

        _publishedUsers.Clear();
        foreach (var context in touched)
            foreach (var user in context.Planner.Users)
                if (_publishedUsers.Add(user.UserId)) Publish(batch, touched, user.UserId, now);
    }

    /// <summary>The serving records of a sweep chunk (a tombstone for a user whose state went meanwhile).</summary>
    public void BuildSweep(SweepChunk chunk, List<OutboundMessage> outputs)
    {
        var now = _time.GetUtcNow();
        outputs.Clear();
        foreach (var u in chunk.Outputs)
        {
            var value = u.Cloaked is null ? null
                : EventCodec.Encode(new CloakedEmbedding(u.UserId, u.Version, chunk.ModelVersion, u.Cloaked, chunk.Context!.Planner.ProtectedNames(u.ProtectedMask), now));
            outputs.Add(new OutboundMessage(_kafka.CloakedTopic, EventCodec.KeyOf(u.UserId), value, value is null ? null : _cloakedHeaders));
        }
    }

    private static int Rank(ApplyOutcome outcome) => outcome switch
    {
        ApplyOutcome.Applied => 3,
        ApplyOutcome.Duplicate => 2,
        ApplyOutcome.Stale => 1,
        _ => 0,
    };

    /// <summary>
    /// The user's serving record after the batch: from the first generation of the publish order that holds them
    /// (its last applied state, or for a redelivery its stored state), only when the batch changed them there; a
    /// tombstone when no generation holds them any more and a forget applied (or was redelivered).
    /// </summary>
    private void Publish(Batch batch, IReadOnlyList<GenerationContext> touched, string userId, DateTimeOffset now)
    {
        var slots = batch.Slots;
        foreach (var context in _generations.PublishOrder)
        {
            if (!context.Touches(userId)) continue;
            var fold = context.Planner.FoldOf(userId);
            if (!context.HoldsAfterBatch(fold)) continue;
            var lastApplied = -1;
            var duplicate = false;
            foreach (var j in fold.ChangeIndices)
            {
                if (context.Results[j].Outcome == ApplyOutcome.Applied) lastApplied = j;
                else if (context.Results[j].Outcome == ApplyOutcome.Duplicate) duplicate = true;
            }
            if (lastApplied >= 0)
            {
                var planned = context.Planner.Planned[lastApplied];
                var key = slots[planned.MessageIndex].Result.Message.Key;
                AddCloaked(batch, context, userId, key, planned.Version, planned.Cloaked!, planned.Classes!, planned.ProtectedMask, now);
            }
            else if (duplicate && fold.Stored is { } stored)
            {
                // A redelivery: the store has this state already, but its output may never have been acknowledged.
                var key = slots[context.Planner.Planned[fold.ChangeIndices[^1]].MessageIndex].Result.Message.Key;
                AddCloaked(batch, context, userId, key, stored.Version, stored.Cloaked, stored.Classes,
                    fold.StoredMeta.HasMask ? fold.StoredMeta.ProtectedMask : BatchPlanner.KnownClassMask(stored.Classes), now);
            }
            return; // the generation serving this user decides; others' changes are not published
        }
        // No generation holds the user: a tombstone if a forget applied, or was redelivered, in any of them.
        foreach (var context in touched)
        {
            if (!context.Touches(userId)) continue;
            var fold = context.Planner.FoldOf(userId);
            foreach (var j in fold.ChangeIndices)
                if (context.Results[j].Outcome is ApplyOutcome.Applied or ApplyOutcome.Duplicate)
                {
                    AddTombstone(batch, userId, slots[context.Planner.Planned[fold.ChangeIndices[^1]].MessageIndex].Result.Message.Key);
                    return;
                }
        }
    }

    private void AddCloaked(Batch batch, GenerationContext source, string userId, byte[] key, long version, float[] cloaked, int[] classes, uint mask, DateTimeOffset now)
    {
        var value = EventCodec.Encode(new CloakedEmbedding(userId, version, source.ModelVersion, cloaked, source.Planner.ProtectedNames(mask), now));
        batch.Outputs.Add(new OutboundMessage(_kafka.CloakedTopic, key, value, _cloakedHeaders));
        batch.Served.Add(new Served(userId, source.ModelVersion, cloaked, classes));
    }

    private void AddTombstone(Batch batch, string userId, byte[] key)
    {
        batch.Outputs.Add(new OutboundMessage(_kafka.CloakedTopic, key, null, null));
        batch.Served.Add(new Served(userId, null, null, null));
    }

    private OutboundMessage DeadLetterOf(ref Slot slot, DecodeError error, DateTimeOffset now)
    {
        var r = slot.Result;
        var record = DeadLetter.For(error, r.Topic, r.Partition.Value, r.Offset.Value, r.Message.Value?.Length ?? 0, now);
        var headers = new Headers();
        if (r.Message.Headers is { } original)
            foreach (var h in original)
                headers.Add(h.Key, h.GetValueBytes());
        headers.Add(KafkaHeaders.DeadLetter, EventCodec.Encode(record));
        headers.Add(KafkaHeaders.DeadLetterReason, _reasonLabels[error.Reason.Label()]);
        return new OutboundMessage(_kafka.DeadLetterTopic, r.Message.Key, r.Message.Value, headers);
    }

    /// <summary>The store's own wording (no ids, no values), without control characters, for the dead-letter header.</summary>
    private static string Printable(string text) =>
        string.Create(text.Length, text, (span, source) =>
        {
            for (var i = 0; i < span.Length; i++) span[i] = char.IsControl(source[i]) ? ' ' : source[i];
        });
}
