namespace AttrCloak.Streaming.Contracts;

/// <summary>Schema names: the <c>schema</c> member of every v1 message, and the <see cref="KafkaHeaders.Schema"/> header.</summary>
public static class SchemaNames
{
    public const string EmbeddingUpdateV1 = "attrcloak.embedding_update.v1";
    public const string PrivacyRequestV1 = "attrcloak.privacy_request.v1";
    public const string CloakedEmbeddingV1 = "attrcloak.cloaked_embedding.v1";
    public const string DeadLetterV1 = "attrcloak.dead_letter.v1";
}

/// <summary>Values of the <see cref="KafkaHeaders.ContentType"/> header.</summary>
public static class ContentTypes
{
    /// <summary>UTF-8 JSON; also assumed when a message has no content-type header (e.g. plain kcat).</summary>
    public const string Json = "application/json";

    /// <summary>The compact little-endian embedding-update encoding described in schemas/README.md.</summary>
    public const string EmbeddingBinary = "application/vnd.attrcloak.embedding+binary";
}

/// <summary>Kafka header names the guard reads and writes. Header values are UTF-8.</summary>
public static class KafkaHeaders
{
    /// <summary><see cref="ContentTypes.Json"/> (the default when absent) or <see cref="ContentTypes.EmbeddingBinary"/>.</summary>
    public const string ContentType = "content-type";

    /// <summary>Informational copy of the schema name, for filtering without parsing; the decoder trusts the body.</summary>
    public const string Schema = "attrcloak-schema";

    /// <summary>On a dead letter: the <see cref="DeadLetter"/> record as UTF-8 JSON.</summary>
    public const string DeadLetter = "attrcloak-dead-letter";

    /// <summary>On a dead letter: just the reason label (e.g. <c>wrong_dimension</c>), handy with <c>kcat -f '%h'</c>.</summary>
    public const string DeadLetterReason = "attrcloak-dlq-reason";
}

/// <summary>The two input topics, by role (their names are configurable): which event type belongs on which.</summary>
public enum InputStream
{
    /// <summary>Embedding updates (<see cref="TopicDefaults.Embeddings"/>).</summary>
    Embeddings,
    /// <summary>Privacy requests (<see cref="TopicDefaults.PrivacyRequests"/>).</summary>
    PrivacyRequests,
}

/// <summary>Default topic names; each is configurable in the worker.</summary>
public static class TopicDefaults
{
    public const string Embeddings = "attrcloak.embeddings";
    public const string PrivacyRequests = "attrcloak.privacy-requests";

    /// <summary>Compacted; keyed by user id; a forgotten user gets a tombstone (null value).</summary>
    public const string Cloaked = "attrcloak.cloaked";

    public const string DeadLetter = "attrcloak.dead-letter";
}
