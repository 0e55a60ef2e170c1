namespace AttrCloak.Streaming.Contracts;

/// <summary>
/// Why an inbound message was rejected. A small closed set, so that it can be a Prometheus label
/// (<see cref="ReasonCodes.Label"/>) and the <c>reason</c> of a dead letter. Add a member only together with
/// its label and the <c>reason</c> enum of schemas/v1/dead_letter.schema.json (a test checks they agree).
/// </summary>
public enum ReasonCode
{
    /// <summary>No bytes at all (also a null Kafka value on an inbound topic).</summary>
    Empty,
    /// <summary>More bytes than <see cref="ContractLimits.MaxBytes"/>; nothing else was looked at.</summary>
    Oversized,
    /// <summary>A content-type header that is neither JSON nor the binary embedding encoding.</summary>
    UnsupportedContentType,
    /// <summary>Not UTF-8, not JSON (syntax, trailing data, depth), or a member given twice.</summary>
    MalformedJson,
    /// <summary>The binary embedding encoding is truncated, has a bad magic, bad lengths or trailing bytes.</summary>
    MalformedBinary,
    /// <summary>A <c>schema</c> name (or binary format version) this consumer does not know.</summary>
    UnknownSchema,
    /// <summary>Valid JSON that breaks the schema: missing/extra member, wrong type, bad time, negative version...</summary>
    SchemaViolation,
    /// <summary>The user id is empty, longer than 128 characters, has control characters or is not valid Unicode.</summary>
    BadUserId,
    /// <summary>A privacy request whose <c>type</c> is not opt_out, forget or update_attributes.</summary>
    UnknownRequestType,
    /// <summary>An embedding whose length is not the deployment's dimension.</summary>
    WrongDimension,
    /// <summary>NaN, ±Infinity (as a string, a bare literal, or a number beyond the float32 range).</summary>
    NonFiniteValue,
    /// <summary>An attribute name that is not in the deployment's attribute catalog.</summary>
    UnknownAttribute,
    /// <summary>A class that is not one of the attribute's classes in the catalog.</summary>
    UnknownClass,
    /// <summary>The Kafka key is not the event's user id (checked by the consumer with <see cref="EventCodec.KeyMatches"/>).</summary>
    KeyMismatch,
    /// <summary>A bug in the decoder caught as a last resort; the fuzz tests assert it never happens.</summary>
    InternalError,
    /// <summary>
    /// A privacy request (opt_out, update_attributes) for a user the worker holds no state for (never seen, or
    /// forgotten): nothing is served for them, so the request fails closed and is kept here for a replay.
    /// </summary>
    UnknownUser,
    /// <summary>The state store refused the event's state change (its message says why); nothing changed for that user.</summary>
    StoreRejected,
    /// <summary>
    /// An event whose version is older than the user's applied one from the same input topic, first delivered after it
    /// (an out-of-order producer). A redelivery after a crash (at or below the partition's applied-offset watermark) is
    /// not one, nor an older version from the other topic (the two topics are not ordered with each other).
    /// </summary>
    StaleVersion,
    /// <summary>The user's applied version again (same input topic) with another event id: two events claim one version.</summary>
    VersionConflict,
    /// <summary>
    /// An embedding update of a new <c>model_version</c> while the deployment already has as many filling (not yet
    /// promoted) generations as it allows: a new model generation is not opened (a hostile or broken producer cannot
    /// open unbounded ones). Retire an abandoned one, or raise <c>AttrCloak:Generations:MaxFilling</c>.
    /// </summary>
    GenerationLimit,
    /// <summary>
    /// A valid event on the other input topic than its type belongs to: an embedding update on the privacy-requests
    /// topic or a privacy request on the embeddings topic (<see cref="EventCodec.TopicError"/>). Each topic has its own
    /// producers and its own order; accepting both kinds on both would let a producer bypass the other topic's order.
    /// </summary>
    WrongTopic,
}

/// <summary>Stable snake_case names of <see cref="ReasonCode"/>, for metric labels and dead letters.</summary>
public static class ReasonCodes
{
    private static readonly string[] Labels =
    [
        "empty", "oversized", "unsupported_content_type", "malformed_json", "malformed_binary",
        "unknown_schema", "schema_violation", "bad_user_id", "unknown_request_type", "wrong_dimension",
        "non_finite_value", "unknown_attribute", "unknown_class", "key_mismatch", "internal_error",
        "unknown_user", "store_rejected", "stale_version", "version_conflict", "generation_limit", "wrong_topic",
    ];

    /// <summary>Every reason code, in declaration order (e.g. to pre-create metric series at start-up).</summary>
    public static IReadOnlyList<ReasonCode> All { get; } = Enum.GetValues<ReasonCode>();

    /// <summary>The snake_case label, e.g. <c>wrong_dimension</c>. Never allocates.</summary>
    public static string Label(this ReasonCode reason) =>
        (uint)reason < (uint)Labels.Length ? Labels[(int)reason] : throw new ArgumentOutOfRangeException(nameof(reason));

    /// <summary>Parses a label written by <see cref="Label"/>.</summary>
    public static bool TryParseLabel(string? label, out ReasonCode reason)
    {
        var index = Array.IndexOf(Labels, label);
        reason = index >= 0 ? (ReasonCode)index : default;
        return index >= 0;
    }
}
