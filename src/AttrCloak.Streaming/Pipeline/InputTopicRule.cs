using AttrCloak.Streaming.Contracts;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// Which event type the worker accepts on which of its two input topics (<see cref="EventCodec.TopicError"/>): an
/// event on the other topic is dead-lettered as <see cref="ReasonCode.WrongTopic"/> instead of being applied.
/// </summary>
internal sealed class InputTopicRule(string embeddingsTopic, string privacyRequestsTopic)
{
    /// <summary>Null when <paramref name="inbound"/>, consumed from <paramref name="topic"/>, is on its own topic.</summary>
    public DecodeError? Check(string topic, InboundEvent inbound)
    {
        if (string.Equals(topic, embeddingsTopic, StringComparison.Ordinal)) return EventCodec.TopicError(inbound, InputStream.Embeddings);
        if (string.Equals(topic, privacyRequestsTopic, StringComparison.Ordinal)) return EventCodec.TopicError(inbound, InputStream.PrivacyRequests);
        return null; // not an input topic of this worker (never subscribed): nothing to say
    }
}
