using System.Text;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Kafka;
using AttrCloak.Streaming.Monitoring;
using Confluent.Kafka;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// Decodes a batch's messages (<see cref="EventCodec.TryDecode(ReadOnlySpan{byte}, string?, ContractLimits, AttributeCatalog)"/>):
/// a message that is malformed, whose Kafka key is not its user id, or that came on the other input topic gets its
/// <see cref="Slot.DecodeError"/> (dead-lettered later); the others their <see cref="Slot.Event"/>. Never throws on input.
/// </summary>
internal sealed class BatchDecoder(ContractLimits limits, AttributeCatalog catalog, InputTopicRule topicRule)
{
    private static readonly byte[] JsonContentType = Encoding.UTF8.GetBytes(ContentTypes.Json);
    private static readonly byte[] BinaryContentType = Encoding.UTF8.GetBytes(ContentTypes.EmbeddingBinary);

    /// <summary>The content-type header value of cloaked outputs.</summary>
    public static byte[] JsonContentTypeBytes => JsonContentType;

    public void Decode(Batch batch)
    {
        for (var i = 0; i < batch.Count; i++)
        {
            ref var slot = ref batch.Slots[i];
            var message = slot.Result.Message;
            var decoded = EventCodec.TryDecode(message.Value, ContentType(message.Headers), limits, catalog);
            if (!decoded.IsSuccess)
            {
                slot.DecodeError = decoded.Error;
                continue;
            }
            if (!EventCodec.KeyMatches(message.Key, decoded.Event.UserId))
            {
                slot.Type = WorkerMetrics.TypeLabel(decoded.Event);
                slot.DecodeError = new DecodeError(ReasonCode.KeyMismatch,
                    message.Key is null ? "the message has no key; the key must be the event's user id" : "the Kafka key is not the event's user id");
                continue;
            }
            slot.Type = WorkerMetrics.TypeLabel(decoded.Event);
            if (topicRule.Check(slot.Result.Topic, decoded.Event) is { } wrongTopic)
            {
                slot.DecodeError = wrongTopic;
                continue;
            }
            slot.Event = decoded.Event;
        }
    }

    private static string? ContentType(Headers? headers)
    {
        if (headers is null || !headers.TryGetLastBytes(KafkaHeaders.ContentType, out var bytes)) return null;
        // The two known values without allocating a string per message.
        if (bytes.AsSpan().SequenceEqual(JsonContentType)) return ContentTypes.Json;
        if (bytes.AsSpan().SequenceEqual(BinaryContentType)) return ContentTypes.EmbeddingBinary;
        return Encoding.UTF8.GetString(bytes);
    }
}
