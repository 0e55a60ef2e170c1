namespace AttrCloak.Streaming.Contracts;

/// <summary>
/// An event the worker consumes: an <see cref="EmbeddingUpdate"/> or a <see cref="PrivacyRequest"/>, carrying
/// the envelope every inbound event has (schemas/v1/envelope.schema.json). Switch on the concrete type.
/// </summary>
/// <param name="EventId">Unique per event; for idempotence and tracing.</param>
/// <param name="UserId">1-128 characters, no control characters; also the Kafka key.</param>
/// <param name="Version">Per-user, monotonically increasing across the user's events; &gt;= 0.</param>
/// <param name="EventTime">When the event happened at the producer.</param>
public abstract record InboundEvent(string EventId, string UserId, long Version, DateTimeOffset EventTime)
{
    /// <summary>The <c>schema</c> name this event is encoded with, e.g. <see cref="SchemaNames.EmbeddingUpdateV1"/>.</summary>
    public abstract string SchemaName { get; }
}

/// <summary>
/// A user's new or updated embedding. Record equality compares <paramref name="Embedding"/> and
/// <paramref name="Attributes"/> by reference, as for any record holding an array.
/// </summary>
/// <param name="EventId">Unique per event; for idempotence and tracing.</param>
/// <param name="UserId">1-128 characters, no control characters; also the Kafka key.</param>
/// <param name="Version">Per-user, monotonically increasing across the user's events; &gt;= 0.</param>
/// <param name="EventTime">When the event happened at the producer.</param>
/// <param name="ModelVersion">The model that produced the embedding; echoed in the cloaked output.</param>
/// <param name="Embedding">Exactly the deployment's dimension of finite float32 values.</param>
/// <param name="Attributes">Attribute values that come with the update (attribute name -&gt; class), or null when none do.</param>
public sealed record EmbeddingUpdate(
    string EventId,
    string UserId,
    long Version,
    DateTimeOffset EventTime,
    string ModelVersion,
    float[] Embedding,
    IReadOnlyDictionary<string, string>? Attributes)
    : InboundEvent(EventId, UserId, Version, EventTime)
{
    public override string SchemaName => SchemaNames.EmbeddingUpdateV1;
}

/// <summary>The privacy request types of v1; on the wire <c>opt_out</c>, <c>forget</c>, <c>update_attributes</c>.</summary>
public enum PrivacyRequestType
{
    /// <summary>Re-cloak this user now for every protected attribute, and keep them cloaked.</summary>
    OptOut,
    /// <summary>Erase the user's data and statistics contribution; publish a tombstone on the serving topic.</summary>
    Forget,
    /// <summary>Declared or changed attribute values: move the contribution between classes and re-cloak.</summary>
    UpdateAttributes,
}

/// <summary>A user's privacy request.</summary>
/// <param name="EventId">Unique per event; for idempotence and tracing.</param>
/// <param name="UserId">1-128 characters, no control characters; also the Kafka key.</param>
/// <param name="Version">Per-user, monotonically increasing across the user's events; &gt;= 0.</param>
/// <param name="EventTime">When the event happened at the producer.</param>
/// <param name="Type">What the user asks for.</param>
/// <param name="Attributes">
/// Only for <see cref="PrivacyRequestType.UpdateAttributes"/> (then non-empty): attribute name -&gt; class,
/// or null to clear that attribute's value. Null for the other types.
/// </param>
public sealed record PrivacyRequest(
    string EventId,
    string UserId,
    long Version,
    DateTimeOffset EventTime,
    PrivacyRequestType Type,
    IReadOnlyDictionary<string, string?>? Attributes)
    : InboundEvent(EventId, UserId, Version, EventTime)
{
    public override string SchemaName => SchemaNames.PrivacyRequestV1;
}

/// <summary>
/// What the worker serves on the compacted serving topic, keyed by user id. By construction it has no
/// place for the original embedding nor for any attribute value: only the names of the protected attributes.
/// </summary>
/// <param name="UserId">The user; also the Kafka key.</param>
/// <param name="Version">The user's state version this output reflects (highest inbound version applied).</param>
/// <param name="ModelVersion">The model version of the embedding that was cloaked.</param>
/// <param name="Embedding">The cloaked embedding.</param>
/// <param name="ProtectedAttributes">Names of the attributes the embedding is cloaked against; no duplicates.</param>
/// <param name="CloakedAt">When the worker computed this embedding.</param>
public sealed record CloakedEmbedding(
    string UserId,
    long Version,
    string ModelVersion,
    float[] Embedding,
    IReadOnlyList<string> ProtectedAttributes,
    DateTimeOffset CloakedAt)
{
    public const string SchemaName = SchemaNames.CloakedEmbeddingV1;
}

/// <summary>
/// Why a message went to the dead-letter topic. The dead-letter message keeps the original key and value;
/// this record travels as JSON in its <see cref="KafkaHeaders.DeadLetter"/> header.
/// </summary>
/// <param name="Reason">Why; also the metric label.</param>
/// <param name="Message">At most <see cref="MaxMessageLength"/> characters; never a user id or attribute value.</param>
/// <param name="SourceTopic">Topic the original message was consumed from.</param>
/// <param name="SourcePartition">Its partition.</param>
/// <param name="SourceOffset">Its offset.</param>
/// <param name="OriginalSizeBytes">Size of the original value (0 for a null value).</param>
/// <param name="DeadLetteredAt">When the worker dead-lettered it.</param>
public sealed record DeadLetter(
    ReasonCode Reason,
    string Message,
    string SourceTopic,
    int SourcePartition,
    long SourceOffset,
    int OriginalSizeBytes,
    DateTimeOffset DeadLetteredAt)
{
    public const string SchemaName = SchemaNames.DeadLetterV1;
    public const int MaxMessageLength = 1024;

    /// <summary>A dead letter for a decode (or later) rejection; the message is cut to <see cref="MaxMessageLength"/>.</summary>
    public static DeadLetter For(
        DecodeError error, string sourceTopic, int sourcePartition, long sourceOffset, int originalSizeBytes, DateTimeOffset deadLetteredAt)
    {
        ArgumentNullException.ThrowIfNull(error);
        var message = error.Message;
        if (message.Length > MaxMessageLength)
        {
            var cut = MaxMessageLength - 1;
            if (char.IsHighSurrogate(message[cut - 1]))
                cut--;
            message = message[..cut] + "…";
        }
        return new DeadLetter(error.Reason, message, sourceTopic, sourcePartition, sourceOffset, originalSizeBytes, deadLetteredAt);
    }
}
